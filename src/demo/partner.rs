//! Partner endpoints on 127.0.0.1: the demo's (by path prefix: `/acme` always
//! 200; `/zeta` a 503 on the first attempt of about one job in twelve, so
//! retries show; `/orbit` a 400 for about one job in forty, so the DLQ
//! shows) and `postback partner-mock` (200 to everything, each request
//! logged), for docker-compose.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

#[derive(Default)]
struct Seen {
    /// Job ids whose first attempt already got its 503.
    failed_once: Mutex<HashSet<String>>,
}

fn bucket(id: &str, n: u64) -> bool {
    crate::domain::hash::fnv1a64(&[id.as_bytes()]) % n == 0
}

async fn demo_answer(State(seen): State<Arc<Seen>>, uri: Uri, headers: HeaderMap) -> (StatusCode, &'static str) {
    let id = headers.get("x-postback-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let path = uri.path();
    if path.starts_with("/zeta") && bucket(&id, 12) && seen.failed_once.lock().expect("lock").insert(id.clone()) {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy, try again");
    }
    if path.starts_with("/orbit") && bucket(&id, 40) {
        return (StatusCode::BAD_REQUEST, "unknown click id");
    }
    (StatusCode::OK, "ok")
}

/// Starts the demo partner on a free port of 127.0.0.1; returns its base URL.
pub async fn start_demo() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new().fallback(demo_answer).with_state(Arc::new(Seen::default()));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}

async fn mock_answer(method: Method, uri: Uri, headers: HeaderMap, body: String) -> &'static str {
    let id = headers.get("x-postback-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    tracing::info!(%method, %uri, postback_id = id, body_bytes = body.len(), "postback received");
    "ok"
}

/// `postback partner-mock --listen ADDR`: answers 200 to every request.
pub async fn serve_mock(addr: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(%addr, "partner mock listening");
    axum::serve(listener, Router::new().fallback(mock_answer)).await
}
