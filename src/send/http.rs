//! The partner HTTP client: one shared reqwest client (keep-alive, bounded
//! idle pool, redirects never followed) whose DNS resolver is the SSRF
//! guard, so a host name cannot resolve into a refused range; IP-literal
//! hosts never reach a resolver and are checked before the request.

use super::outcome::{Attempt, parse_retry_after};
use super::signature::sign;
use super::ssrf::{allowed, blocked_class};
use crate::clock::now_secs;
use crate::config::{Config, PartnerConfig};
use crate::domain::{Job, Method};
use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
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
}

impl Resolve for GuardResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = Arc::clone(&self.allow);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (ok, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                addrs.into_iter().partition(|a| allowed(a.ip(), &allow));
            if ok.is_empty() {
                let why: Vec<String> = refused
                    .iter()
                    .map(|a| format!("{} ({})", a.ip(), blocked_class(a.ip()).unwrap_or("refused")))
                    .collect();
                return Err(Box::new(Blocked(format!("{host} resolves to {}", why.join(", "))))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(ok.into_iter()) as Addrs)
        })
    }
}

/// What one attempt produced, for the outcome and the delivery log.
#[derive(Debug, Clone)]
pub struct Report {
    pub attempt: Attempt,
    pub latency: Duration,
    /// The first `BODY_LIMIT` bytes of the response body.
    pub body: String,
}

pub struct Http {
    /// Clients by connect timeout: one shared client unless partners
    /// override the connect timeout.
    clients: HashMap<Duration, reqwest::Client>,
    allow: Arc<Vec<IpNet>>,
    default_connect: Duration,
    default_timeout: Duration,
    user_agent: String,
}

impl Http {
    pub fn new(config: &Config) -> Result<Http, reqwest::Error> {
        let allow = Arc::new(config.allow_networks.clone());
        let default_connect = config.send.connect_timeout.0;
        let mut connects: Vec<Duration> =
            config.partners.iter().filter_map(|p| p.connect_timeout.map(|d| d.0)).collect();
        connects.push(default_connect);
        let mut clients = HashMap::new();
        for c in connects {
            if let std::collections::hash_map::Entry::Vacant(slot) = clients.entry(c) {
                slot.insert(build_client(config, c, Arc::clone(&allow))?);
            }
        }
        Ok(Http {
            clients,
            allow,
            default_connect,
            default_timeout: config.send.timeout.0,
            user_agent: format!("postback/{}", env!("CARGO_PKG_VERSION")),
        })
    }

    /// One attempt of `job`; never fails, the report says how it went.
    pub async fn send(&self, job: &Job, partner: &PartnerConfig) -> Report {
        let started = Instant::now();
        let attempt = match self.request(job, partner) {
            Err(a) => a,
            Ok(req) => match req.send().await {
                Ok(resp) => {
                    let attempt = status_attempt(&resp);
                    let body = read_prefix(resp).await;
                    return Report { attempt, latency: started.elapsed(), body };
                }
                Err(e) => error_attempt(&e),
            },
        };
        Report { attempt, latency: started.elapsed(), body: String::new() }
    }

    fn request(&self, job: &Job, partner: &PartnerConfig) -> Result<reqwest::RequestBuilder, Attempt> {
        let url = url::Url::parse(&job.url).map_err(|e| Attempt::Invalid(format!("url: {e}")))?;
        let ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            _ => None,
        };
        if let Some(ip) = ip.filter(|ip| !allowed(*ip, &self.allow)) {
            return Err(Attempt::Blocked(format!("{ip} ({})", blocked_class(ip).unwrap_or("refused"))));
        }
        let connect = partner.connect_timeout.map_or(self.default_connect, |d| d.0);
        let client = &self.clients[&connect];
        let method = match job.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
        };
        let mut req = client
            .request(method, url)
            .timeout(partner.timeout.map_or(self.default_timeout, |d| d.0))
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
        Ok(req)
    }
}

fn build_client(config: &Config, connect: Duration, allow: Arc<Vec<IpNet>>) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(connect)
        .timeout(config.send.timeout.0)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(config.send.pool_max_idle_per_host)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .dns_resolver(Arc::new(GuardResolver { allow }))
        .build()
}

fn status_attempt(resp: &reqwest::Response) -> Attempt {
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    Attempt::Status {
        code: resp.status().as_u16(),
        retry_after: header("retry-after").and_then(|v| parse_retry_after(&v, now_secs())),
        location: header("location"),
    }
}

fn error_attempt(e: &reqwest::Error) -> Attempt {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(b) = s.downcast_ref::<Blocked>() {
            return Attempt::Blocked(b.0.clone());
        }
        source = s.source();
    }
    if e.is_timeout() { Attempt::Timeout } else { Attempt::Connect(chain(e)) }
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
