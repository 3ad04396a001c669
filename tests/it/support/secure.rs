//! The test broker's secured listeners (`scripts/kafka start --secure`):
//! SASL_SSL with PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER (OIDC), and
//! mutual TLS; their addresses, users and certificates from `secure.json`.

use super::kafka;
use std::path::PathBuf;
use std::sync::OnceLock;

#[derive(Debug, Clone)]
pub struct Secure {
    pub sasl_ssl: String,
    pub ssl: String,
    pub ca: PathBuf,
    pub other_ca: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// The broker's certificate for 127.0.0.1 and its key: test HTTPS
    /// servers present them too.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub scram_user: String,
    pub scram_password: String,
    pub plain_user: String,
    pub plain_password: String,
    pub oidc_token_url: String,
    pub oidc_client_id: String,
    pub oidc_client_secret: String,
}

/// The secured listeners of the test broker.
pub fn secure() -> &'static Secure {
    static SECURE: OnceLock<Secure> = OnceLock::new();
    SECURE.get_or_init(|| {
        let path = kafka::broker_dir().join("secure.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (start the test broker with scripts/kafka start --secure)", path.display())
        });
        let v: serde_json::Value = serde_json::from_str(&text).expect("secure.json");
        let s = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("secure.json: {k}")).to_owned();
        Secure {
            sasl_ssl: s("sasl_ssl"),
            ssl: s("ssl"),
            ca: s("ca").into(),
            other_ca: s("other_ca").into(),
            client_cert: s("client_cert").into(),
            client_key: s("client_key").into(),
            server_cert: s("server_cert").into(),
            server_key: s("server_key").into(),
            scram_user: s("scram_user"),
            scram_password: s("scram_password"),
            plain_user: s("plain_user"),
            plain_password: s("plain_password"),
            oidc_token_url: s("oidc_token_url"),
            oidc_client_id: s("oidc_client_id"),
            oidc_client_secret: s("oidc_client_secret"),
        }
    })
}

impl Secure {
    /// `[kafka.client]` for SASL_SSL with `mechanism`, the password given
    /// as `password` (a value or a `${env:…}` reference).
    pub fn sasl_client(&self, mechanism: &str, user: &str, password: &str) -> String {
        format!(
            "[kafka.client]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanism\" = \"{mechanism}\"\n\
             \"sasl.username\" = \"{user}\"\n\"sasl.password\" = \"{password}\"\n\"ssl.ca.location\" = \"{}\"\n",
            self.ca.display()
        )
    }

    /// `[kafka.client]` for mutual TLS with our client certificate.
    pub fn mtls_client(&self) -> String {
        format!(
            "[kafka.client]\n\"security.protocol\" = \"SSL\"\n\"ssl.ca.location\" = \"{}\"\n\
             \"ssl.certificate.location\" = \"{}\"\n\"ssl.key.location\" = \"{}\"\n",
            self.ca.display(),
            self.client_cert.display(),
            self.client_key.display()
        )
    }

    /// `[kafka.client]` for SASL_SSL with OAUTHBEARER, tokens from the
    /// OIDC stub by client credentials.
    pub fn oidc_client(&self) -> String {
        format!(
            "[kafka.client]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanism\" = \"OAUTHBEARER\"\n\
             \"sasl.oauthbearer.method\" = \"oidc\"\n\"sasl.oauthbearer.client.id\" = \"{}\"\n\
             \"sasl.oauthbearer.client.secret\" = \"{}\"\n\"sasl.oauthbearer.token.endpoint.url\" = \"{}\"\n\
             \"ssl.ca.location\" = \"{}\"\n",
            self.oidc_client_id,
            self.oidc_client_secret,
            self.oidc_token_url,
            self.ca.display()
        )
    }
}
