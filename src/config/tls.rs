//! TLS material named by the config (a schema registry's or a partner's
//! extra CA roots and client certificate), read and parsed once: at load,
//! so that a missing or bad file is a config error with its key, and again
//! where the client is built.

use std::path::Path;

/// Extra roots, and a client identity for mutual TLS.
pub struct Tls {
    pub roots: Vec<reqwest::Certificate>,
    pub identity: Option<reqwest::Identity>,
}

/// Reads `ca` (a PEM bundle of CA certificates) and the client certificate
/// chain `cert` with its private key `key` (PEM; both or neither).
pub fn load(ca: Option<&Path>, cert: Option<&Path>, key: Option<&Path>) -> Result<Tls, String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read '{}': {e}", p.display()));
    let mut roots = Vec::new();
    if let Some(ca) = ca {
        let certs = reqwest::Certificate::from_pem_bundle(&read(ca)?)
            .map_err(|e| format!("'{}' is not a PEM bundle of certificates: {e}", ca.display()))?;
        if certs.is_empty() {
            return Err(format!("'{}' holds no PEM certificate", ca.display()));
        }
        roots = certs;
    }
    let identity = match (cert, key) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let mut pem = read(key)?;
            pem.push(b'\n');
            pem.extend(read(cert)?);
            Some(reqwest::Identity::from_pem(&pem).map_err(|e| {
                format!(
                    "'{}' and '{}' are not a PEM certificate and its private key: {e}",
                    cert.display(),
                    key.display()
                )
            })?)
        }
        (Some(_), None) => return Err("a client certificate needs its private key (key_file)".into()),
        (None, Some(_)) => return Err("a private key needs its client certificate (cert_file)".into()),
    };
    Ok(Tls { roots, identity })
}
