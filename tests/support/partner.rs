//! A partner endpoint on 127.0.0.1 that records every request and answers
//! by path: `/ok` 200, `/fail2` 500 twice per job then 200, `/bad` 400,
//! `/redirect` 301, `/hang` never, `/slow` 200 after 50 ms, `/flaky` 500
//! until `set_healthy(true)`, `/later` 503 with `Retry-After: 1` once per job.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Req {
    pub at: Instant,
    pub method: String,
    pub uri: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Req {
    pub fn id(&self) -> &str {
        self.headers.get("x-postback-id").map_or("", String::as_str)
    }
}

#[derive(Default)]
struct Inner {
    requests: Mutex<Vec<Req>>,
    healthy: AtomicBool,
}

pub struct Partner {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    scheme: &'static str,
}

impl Partner {
    pub fn start() -> Partner {
        let inner = Arc::new(Inner::default());
        let state = Arc::clone(&inner);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                tx.send(listener.local_addr().expect("addr")).expect("send addr");
                let app = Router::new().fallback(handle).with_state(state);
                axum::serve(listener, app).await.expect("serve");
            });
        });
        Partner { addr: rx.recv().expect("partner address"), inner, scheme: "http" }
    }

    /// The same endpoint over HTTPS with `tls` (a partner behind a private
    /// PKI, maybe requiring client certificates).
    pub fn start_tls(tls: std::sync::Arc<tokio_rustls::rustls::ServerConfig>) -> Partner {
        let inner = Arc::new(Inner::default());
        let app = Router::new().fallback(handle).with_state(Arc::clone(&inner));
        Partner { addr: super::tls::serve(app, tls), inner, scheme: "https" }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    pub fn requests(&self) -> Vec<Req> {
        self.inner.requests.lock().expect("lock").clone()
    }

    pub fn set_healthy(&self, healthy: bool) {
        self.inner.healthy.store(healthy, Ordering::Relaxed);
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = Req {
        at: Instant::now(),
        method: method.to_string(),
        uri: uri.to_string(),
        headers: headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let id = req.id().to_owned();
    let seen = {
        let mut all = inner.requests.lock().expect("lock");
        all.push(req);
        all.iter().filter(|r| r.id() == id).count()
    };
    let path = uri.path();
    if path.starts_with("/ok") {
        (StatusCode::OK, "ok").into_response()
    } else if path.starts_with("/fail2") {
        if seen <= 2 {
            (StatusCode::INTERNAL_SERVER_ERROR, "try again").into_response()
        } else {
            (StatusCode::OK, "ok").into_response()
        }
    } else if path.starts_with("/bad") {
        (StatusCode::BAD_REQUEST, "unknown click id").into_response()
    } else if path.starts_with("/redirect") {
        (StatusCode::MOVED_PERMANENTLY, [("location", "/ok/redirected")], "moved").into_response()
    } else if path.starts_with("/hang") {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        StatusCode::OK.into_response()
    } else if path.starts_with("/slow") {
        tokio::time::sleep(Duration::from_millis(50)).await;
        (StatusCode::OK, "ok").into_response()
    } else if path.starts_with("/flaky") {
        if inner.healthy.load(Ordering::Relaxed) {
            (StatusCode::OK, "ok").into_response()
        } else {
            (StatusCode::BAD_GATEWAY, "down").into_response()
        }
    } else if path.starts_with("/later") {
        if seen <= 1 {
            (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "1")], "later").into_response()
        } else {
            (StatusCode::OK, "ok").into_response()
        }
    } else {
        (StatusCode::NOT_FOUND, "no such path").into_response()
    }
}
