//! Runs the stages of one process together (`postback run`, `process`,
//! `send`, the demo): they share one cancellation token, and the first
//! stage to stop with an error — or to stop at all while the others run —
//! cancels the others, turns `/readyz` to 503 with its reason, and makes
//! the process exit non-zero once everything has wound down. A stage that
//! fails never leaves the other running as if nothing happened.

use crate::telemetry::{Health, Reason};
use std::future::Future;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Why a stage ended, as it said it.
pub type StageError = Box<dyn std::error::Error + Send + Sync>;

/// A stage that ended without an error of its own.
#[derive(Debug, thiserror::Error)]
pub enum Ended {
    #[error("panicked")]
    Panicked,
    #[error("stopped on its own")]
    StoppedOnItsOwn,
}

/// The first stage that failed, with its error (and the error's sources).
#[derive(Debug, thiserror::Error)]
#[error("{stage} stage failed: {source}")]
pub struct StageFailed {
    pub stage: &'static str,
    #[source]
    pub source: StageError,
}

pub struct Supervisor {
    token: CancellationToken,
    health: Health,
    stages: JoinSet<(&'static str, Result<(), StageError>)>,
}

impl Supervisor {
    pub fn new(health: Health) -> Supervisor {
        Supervisor { token: CancellationToken::new(), health, stages: JoinSet::new() }
    }

    /// The token every stage stops on; cancel it to stop them all.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Supervises a stage running on the async runtime.
    pub fn spawn<E: Into<StageError>>(
        &mut self,
        stage: &'static str,
        run: impl Future<Output = Result<(), E>> + Send + 'static,
    ) {
        self.stages.spawn(async move { (stage, run.await.map_err(Into::into)) });
    }

    /// Supervises a stage running on a thread of its own.
    pub fn spawn_thread<E: Into<StageError> + Send + 'static>(
        &mut self,
        stage: &'static str,
        thread: std::thread::JoinHandle<Result<(), E>>,
    ) {
        self.stages.spawn(async move {
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            let result = match joined {
                Ok(Ok(r)) => r.map_err(Into::into),
                Ok(Err(_)) | Err(_) => Err(Ended::Panicked.into()),
            };
            (stage, result)
        });
    }

    /// Waits for every stage. The first to fail, or to end before being
    /// asked to, cancels the others; its error is returned.
    pub async fn wait(mut self) -> Result<(), StageFailed> {
        let mut first: Option<StageFailed> = None;
        while let Some(joined) = self.stages.join_next().await {
            let (stage, result) = joined.unwrap_or_else(|_| ("a", Err(Ended::Panicked.into())));
            let failure = match result {
                Err(source) => Some(source),
                Ok(()) if !self.token.is_cancelled() => Some(Ended::StoppedOnItsOwn.into()),
                Ok(()) => None,
            };
            if let Some(source) = failure {
                tracing::error!(stage, reason = %source, "stage failed; stopping the others");
                self.health.block_with(Reason::StageFailed, format!("{stage}: {source}"));
                self.token.cancel();
                first.get_or_insert(StageFailed { stage, source });
            }
        }
        first.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn the_first_failure_stops_the_others_and_is_reported() {
        let health = Health::new();
        let mut s = Supervisor::new(health.clone());
        let token = s.token();
        s.spawn("sender", async move {
            token.cancelled().await;
            Ok::<(), StageError>(())
        });
        s.spawn_thread(
            "processing",
            std::thread::spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                Err::<(), StageError>("fatal transaction error: fenced".into())
            }),
        );
        let err = s.wait().await.unwrap_err();
        assert_eq!(err.to_string(), "processing stage failed: fatal transaction error: fenced");
        assert_eq!(health.reasons(), vec!["stage failed: processing: fatal transaction error: fenced"]);
    }

    #[tokio::test]
    async fn a_clean_stop_is_no_failure() {
        let mut s = Supervisor::new(Health::new());
        let token = s.token();
        s.spawn("sender", {
            let token = token.clone();
            async move {
                token.cancelled().await;
                Ok::<(), StageError>(())
            }
        });
        token.cancel();
        assert!(s.wait().await.is_ok());
    }
}
