//! The partner HTTP client: one shared reqwest client (keep-alive, bounded
//! idle pool, redirects never followed) whose DNS resolver is the SSRF
//! guard, so a host name cannot resolve into a refused range; IP-literal
//! hosts never reach a resolver and are checked before the request.
//!
//! No proxy is taken from the environment (`HTTP_PROXY` would otherwise
//! make the guard judge the proxy's address while the proxy resolves the
//! partner's host). With `send.proxy` configured, the guard resolves and
//! judges the partner's host itself before the request leaves. Errors carry
//! the partner's host and path only ([`super::redact`]).

use super::outcome::{Attempt, parse_retry_after};
use super::redact::redact_url;
use super::signature::sign;
use super::ssrf::{allowed, blocked_class};
use crate::clock::now_secs;
use crate::config::{Config, PartnerConfig};
use crate::domain::{Job, Method};
use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use sha2::Digest as _;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Response bodies kept for the delivery log.
pub const BODY_LIMIT: usize = 1024;

/// The resolver refused every address of a host.
#[derive(Debug)]
pub struct Blocked(pub String);

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Blocked {}

struct GuardResolver {
    allow: Arc<Vec<IpNet>>,
    /// The configured proxy's host: the operator's choice, reachable
    /// wherever it is (the partner's host is judged before the request).
    proxy_host: Option<String>,
}

impl Resolve for GuardResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = Arc::clone(&self.allow);
        let trusted = self.proxy_host.as_deref() == Some(name.as_str());
        Box::pin(async move {
            let ok = if trusted {
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect()
            } else {
                guarded_lookup(name.as_str(), &allow).await?
            };
            Ok(Box::new(ok.into_iter()) as Addrs)
        })
    }
}

/// The addresses of `host` the guard lets through; an error when there are
/// none (or the name does not resolve).
async fn guarded_lookup(
    host: &str,
    allow: &[IpNet],
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
    let (ok, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = addrs.into_iter().partition(|a| allowed(a.ip(), allow));
    if ok.is_empty() {
        let why: Vec<String> =
            refused.iter().map(|a| format!("{} ({})", a.ip(), blocked_class(a.ip()).unwrap_or("refused"))).collect();
        return Err(Box::new(Blocked(format!("{host} resolves to {}", why.join(", ")))));
    }
    Ok(ok)
}

/// What one attempt produced, for the outcome and the delivery log.
#[derive(Debug, Clone)]
pub struct Report {
    pub attempt: Attempt,
    pub latency: Duration,
    /// The first `BODY_LIMIT` bytes of the response body.
    pub body: String,
}

/// What a partner's client is built from: partners whose keys are equal
/// share one client (and its connection pool).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    connect: Duration,
    timeout: Duration,
    pool_max_idle: usize,
    proxy: Option<String>,
    allow: Vec<IpNet>,
    /// SHA-256 of the partner's CA, certificate and key files, so that a
    /// rotated certificate gets a new client on reload.
    tls: Option<[u8; 32]>,
}

impl ClientKey {
    /// The key of `partner` under `config`, its certificate files read.
    pub fn read(partner: &PartnerConfig, config: &Config) -> Result<ClientKey, String> {
        let files = [&partner.ca_file, &partner.cert_file, &partner.key_file];
        let tls = if files.iter().any(|f| f.is_some()) {
            let mut hash = sha2::Sha256::new();
            for f in files.into_iter().flatten() {
                let bytes = std::fs::read(f).map_err(|e| format!("cannot read '{}': {e}", f.display()))?;
                sha2::Digest::update(&mut hash, &bytes);
            }
            Some(sha2::Digest::finalize(hash).into())
        } else {
            None
        };
        Ok(ClientKey::of(partner, config, tls))
    }

    fn of(partner: &PartnerConfig, config: &Config, tls: Option<[u8; 32]>) -> ClientKey {
        ClientKey {
            connect: partner.connect_timeout.unwrap_or(config.send.connect_timeout).0,
            timeout: partner.timeout.unwrap_or(config.send.timeout).0,
            pool_max_idle: config.send.pool_max_idle_per_host,
            proxy: config.send.proxy.clone(),
            allow: config.allow_networks.clone(),
            tls,
        }
    }
}

/// One partner's way to send: its client and the guard's settings, fixed
/// for the lane it belongs to (a reload that changes any of them makes a
/// new lane).
#[derive(Clone)]
pub struct PartnerClient {
    pub key: ClientKey,
    client: reqwest::Client,
    allow: Arc<Vec<IpNet>>,
    /// `send.proxy`: requests go through it, so host names are judged here.
    proxied: bool,
    timeout: Duration,
    /// Why the client could not be built (a certificate file gone since
    /// the config was checked): every attempt fails with it, and so goes
    /// to a retry tier rather than out without its certificate.
    broken: Option<String>,
}

/// The partner clients of a sender, built on first use for each distinct
/// [`ClientKey`] — at start, and for partners added or changed by a reload.
pub struct Http {
    clients: std::sync::Mutex<HashMap<ClientKey, reqwest::Client>>,
    user_agent: String,
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl Http {
    pub fn new() -> Http {
        Http { clients: Default::default(), user_agent: format!("postback/{}", env!("CARGO_PKG_VERSION")) }
    }

    /// The client for `partner` under `config`. One that cannot be built
    /// (its certificate files unreadable since the config's check) fails
    /// every attempt with the reason, and the error is logged.
    pub fn client(&self, partner: &PartnerConfig, config: &Config) -> PartnerClient {
        match self.try_client(partner, config) {
            Ok(pc) => pc,
            Err(why) => {
                tracing::error!(partner = %partner.id, error = %why, "partner client cannot be built; its attempts fail until the config is fixed");
                PartnerClient {
                    key: ClientKey::of(partner, config, None),
                    client: reqwest::Client::new(),
                    allow: Arc::new(config.allow_networks.clone()),
                    proxied: config.send.proxy.is_some(),
                    timeout: config.send.timeout.0,
                    broken: Some(why),
                }
            }
        }
    }

    fn try_client(&self, partner: &PartnerConfig, config: &Config) -> Result<PartnerClient, String> {
        let key = ClientKey::read(partner, config)?;
        let mut clients = self.clients.lock().expect("http clients lock");
        let client = match clients.get(&key) {
            Some(c) => c.clone(),
            None => {
                let c = build_client(&key, partner)?;
                clients.insert(key.clone(), c.clone());
                c
            }
        };
        Ok(PartnerClient {
            allow: Arc::new(key.allow.clone()),
            proxied: key.proxy.is_some(),
            timeout: key.timeout,
            key,
            client,
            broken: None,
        })
    }

    /// One attempt of `job`; never fails, the report says how it went.
    pub async fn send(&self, pc: &PartnerClient, job: &Job, partner: &PartnerConfig) -> Report {
        let started = Instant::now();
        if let Some(why) = &pc.broken {
            return Report { attempt: Attempt::Connect(why.clone()), latency: started.elapsed(), body: String::new() };
        }
        let attempt = match self.request(pc, job, partner) {
            Err(a) => a,
            Ok((client, req, host)) => match judge_proxied(pc, host.as_deref()).await {
                Some(blocked) => blocked,
                None => match client.execute(req).await {
                    Ok(resp) => {
                        let attempt = status_attempt(&resp);
                        let body = read_prefix(resp).await;
                        return Report { attempt, latency: started.elapsed(), body };
                    }
                    Err(e) => error_attempt(e, &job.url),
                },
            },
        };
        Report { attempt, latency: started.elapsed(), body: String::new() }
    }

    /// The request, the client to send it with, and the host name the
    /// guard must judge when proxied.
    fn request<'a>(
        &self,
        pc: &'a PartnerClient,
        job: &Job,
        partner: &PartnerConfig,
    ) -> Result<(&'a reqwest::Client, reqwest::Request, Option<String>), Attempt> {
        // the URL is parsed once, by reqwest (a parse of our own came to
        // a third of the URL parsing in the sender's profile); a request
        // that does not build is judged on a parse of its own, as before
        let req = match self.build(pc, job, partner) {
            Ok(req) => req,
            Err(e) => {
                let url = url::Url::parse(&job.url).map_err(|bad| Attempt::Invalid(format!("url: {bad}")))?;
                judge_host(pc, &url)?;
                return Err(error_attempt(e, &job.url));
            }
        };
        let host = judge_host(pc, req.url())?;
        Ok((&pc.client, req, host))
    }

    fn build(
        &self,
        pc: &PartnerClient,
        job: &Job,
        partner: &PartnerConfig,
    ) -> Result<reqwest::Request, reqwest::Error> {
        let method = match job.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
        };
        let mut req = pc
            .client
            .request(method, job.url.as_str())
            .timeout(pc.timeout)
            .header("User-Agent", &self.user_agent)
            .header("X-Postback-Id", &job.job_id);
        for (k, v) in &job.headers {
            req = req.header(k, v);
        }
        let body = job.body.clone().unwrap_or_default();
        if let Some(secret) = &partner.signing_secret {
            let now = now_secs();
            req = req.header(&partner.signature_header, sign(secret.as_bytes(), now, &job.job_id, body.as_bytes()));
        }
        if job.body.is_some() {
            req = req.body(body);
        }
        req.build()
    }
}

/// Through a proxy, the proxy resolves the partner's host: the guard
/// resolves and judges it first, and a refused host never reaches it.
async fn judge_proxied(pc: &PartnerClient, host: Option<&str>) -> Option<Attempt> {
    let host = host.filter(|_| pc.proxied)?;
    match guarded_lookup(host, &pc.allow).await {
        Ok(_) => None,
        Err(e) => match e.downcast::<Blocked>() {
            Ok(b) => Some(Attempt::Blocked(b.0)),
            Err(e) => Some(Attempt::Connect(format!("resolving {host}: {e}"))),
        },
    }
}

/// Refuses an IP-literal host outside `send.allow_networks`; the host
/// name (for the proxied check) otherwise.
fn judge_host(pc: &PartnerClient, url: &url::Url) -> Result<Option<String>, Attempt> {
    let (ip, host) = match url.host() {
        Some(url::Host::Ipv4(v4)) => (Some(IpAddr::V4(v4)), None),
        Some(url::Host::Ipv6(v6)) => (Some(IpAddr::V6(v6)), None),
        Some(url::Host::Domain(d)) => (None, Some(d.to_owned())),
        None => (None, None),
    };
    if let Some(ip) = ip.filter(|ip| !allowed(*ip, &pc.allow)) {
        return Err(Attempt::Blocked(format!("{ip} ({})", blocked_class(ip).unwrap_or("refused"))));
    }
    Ok(host)
}

fn build_client(key: &ClientKey, partner: &PartnerConfig) -> Result<reqwest::Client, String> {
    let proxy_host = key.proxy.as_deref().and_then(|p| url::Url::parse(p).ok()?.host_str().map(str::to_owned));
    let mut builder = match &key.proxy {
        // HTTP_PROXY and friends are ignored: only a configured proxy is used
        None => reqwest::Client::builder().no_proxy(),
        Some(proxy) => reqwest::Client::builder().proxy(reqwest::Proxy::all(proxy).map_err(|e| e.to_string())?),
    };
    if key.tls.is_some() {
        let tls = crate::config::tls::load(
            partner.ca_file.as_deref(),
            partner.cert_file.as_deref(),
            partner.key_file.as_deref(),
        )?;
        for cert in tls.roots {
            builder = builder.add_root_certificate(cert);
        }
        if let Some(identity) = tls.identity {
            builder = builder.identity(identity);
        }
    }
    builder
        .connect_timeout(key.connect)
        .timeout(key.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(key.pool_max_idle)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .dns_resolver(Arc::new(GuardResolver { allow: Arc::new(key.allow.clone()), proxy_host }))
        .build()
        .map_err(|e| format!("partner {}: http client: {}", partner.id, chain(&e)))
}

fn status_attempt(resp: &reqwest::Response) -> Attempt {
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    Attempt::Status {
        code: resp.status().as_u16(),
        retry_after: header("retry-after").and_then(|v| parse_retry_after(&v, now_secs())),
        location: header("location"),
    }
}

/// An error of the request to `url`, naming the partner by host and path
/// only (reqwest's text carries the whole URL, tokens included).
fn error_attempt(e: reqwest::Error, url: &str) -> Attempt {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(b) = s.downcast_ref::<Blocked>() {
            return Attempt::Blocked(b.0.clone());
        }
        source = s.source();
    }
    if e.is_timeout() {
        return Attempt::Timeout;
    }
    Attempt::Connect(format!("{}: {}", redact_url(url), chain(&e.without_url())))
}

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

async fn read_prefix(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < BODY_LIMIT {
        match resp.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c),
            _ => break,
        }
    }
    buf.truncate(BODY_LIMIT);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn http() -> (Http, PartnerClient, PartnerConfig) {
        let text = "[send]\nallow_networks = [\"127.0.0.0/8\"]\n[[partners]]\nid = \"acme\"\n";
        let config = crate::config::load_str(text, Path::new("pb.toml"), Vec::<(String, String)>::new()).unwrap();
        let http = Http::new();
        let pc = http.client(&config.partners[0], &config);
        (http, pc, config.partners[0].clone())
    }

    fn job(url: &str) -> Job {
        Job { url: url.into(), ..crate::send::step::tests::job(0, 0) }
    }

    fn judged(job: &Job) -> Result<(String, Option<String>), Attempt> {
        let (http, pc, partner) = http();
        http.request(&pc, job, &partner).map(|(_, req, host)| (req.url().to_string(), host))
    }

    #[test]
    fn the_request_carries_the_url_as_given_and_names_its_host() {
        let (url, host) = judged(&job("https://pb.acme.example/i?c=x%20y&ifa=A")).unwrap();
        assert_eq!(url, "https://pb.acme.example/i?c=x%20y&ifa=A");
        assert_eq!(host.as_deref(), Some("pb.acme.example"));
        assert_eq!(judged(&job("http://127.0.0.1:9/x")).unwrap(), ("http://127.0.0.1:9/x".to_owned(), None));
    }

    #[test]
    fn a_url_that_does_not_parse_is_invalid() {
        let Err(Attempt::Invalid(why)) = judged(&job("pb.acme.example/i")) else { panic!("not invalid") };
        assert_eq!(why, "url: relative URL without a base");
    }

    #[test]
    fn a_refused_ip_literal_is_blocked_before_anything_else() {
        let Err(Attempt::Blocked(why)) = judged(&job("http://10.1.2.3/x")) else { panic!("not blocked") };
        assert_eq!(why, "10.1.2.3 (private)");
        // a header that cannot be sent does not hide the refused address
        let mut bad = job("http://[::ffff:10.1.2.3]/x");
        bad.headers.insert("bad header".into(), "v".into());
        let Err(Attempt::Blocked(why)) = judged(&bad) else { panic!("not blocked") };
        assert_eq!(why, "::ffff:10.1.2.3 (private)");
    }

    #[test]
    fn a_header_that_cannot_be_sent_fails_the_attempt_naming_host_and_path_only() {
        let mut bad = job("https://pb.acme.example/i?token=secret");
        bad.headers.insert("bad header".into(), "v".into());
        let Err(Attempt::Connect(why)) = judged(&bad) else { panic!("not a connect error") };
        // the query, where partners put their tokens, is left out
        assert_eq!(why, "https://pb.acme.example/i: builder error: invalid HTTP header name");
    }
}
