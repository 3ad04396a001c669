//! The admin HTTP server: `/metrics` (Prometheus text), `/healthz` (the
//! process is up) and `/readyz` (every assigned partition restored, the
//! stages running). Extra routes (inspect) are merged in by the caller.
//!
//! It faces whatever can reach its port, so it bounds what a client can
//! hold: at most [`MAX_CONNECTIONS`] connections (more are closed at
//! once), and a connection that has not sent a request's headers within
//! [`HEADER_TIMEOUT`] — a new connection, or a kept-alive one that went
//! idle — is closed.

use super::health::Health;
use super::metrics::metrics;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Connections served at once; more are closed as they come.
pub const MAX_CONNECTIONS: usize = 256;
/// Longest wait for a request's headers, on a new or an idle connection.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

pub fn router(health: Health) -> Router {
    Router::new()
        .route("/metrics", get(|| async { ([("content-type", "text/plain; version=0.0.4")], metrics().render()) }))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(health)
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    let reasons = health.reasons();
    if reasons.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready:\n{}\n", reasons.join("\n")))
    }
}

/// Binds `addr` and serves `app` until the task is dropped. Returns the
/// bound address (port 0 picks a free one).
pub async fn serve(addr: &str, app: Router) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // out of file descriptors, for one: wait rather than spin
                    tracing::warn!(error = %e, "admin server cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                tracing::debug!(%peer, "admin server at its connection cap; closing");
                continue;
            };
            let service = TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let served = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(e) = served {
                    tracing::debug!(%peer, error = %e, "admin connection ended");
                }
                drop(slot);
            });
        }
    });
    Ok((local, task))
}
