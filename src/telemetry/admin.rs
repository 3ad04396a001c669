//! The admin HTTP server: `/metrics` (Prometheus text), `/healthz`
//! (the process is up) and `/readyz` (every assigned partition restored,
//! the producer initialised). Extra routes (inspect) are merged in by the
//! caller.

use super::health::Health;
use super::metrics::metrics;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use std::net::SocketAddr;
use tokio::net::TcpListener;

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
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "admin server stopped");
        }
    });
    Ok((local, task))
}
