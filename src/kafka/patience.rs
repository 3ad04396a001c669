//! Asking the broker again. Right after a broker comes back, its group
//! coordinator answers `NotCoordinator` or "loading" for a while; a call
//! made once at that moment would fail a stage (the processor) or make it
//! redo work (the sender re-sending finished jobs). Such calls are asked
//! again for a bounded time instead.

use std::time::{Duration, Instant};

/// How long a committed-offset read is asked again before its error stands.
pub const COMMITTED_PATIENCE: Duration = Duration::from_secs(60);

/// Calls `op` until it succeeds, `patience` has passed since the first
/// call, or `give_up` says the answer is no longer wanted; waits `step`
/// between calls. Returns the last result. `what` names the call in the
/// warning logged for each failure.
pub fn ask_again<T, E: std::fmt::Display>(
    what: &str,
    patience: Duration,
    step: Duration,
    give_up: impl Fn() -> bool,
    mut op: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let started = Instant::now();
    loop {
        match op() {
            Ok(v) => return Ok(v),
            Err(e) if started.elapsed() < patience && !give_up() => {
                tracing::warn!(call = what, error = %e, "the broker cannot answer yet; asking again");
                std::thread::sleep(step);
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// Runs `ask_again` over `outcome(n)` for the n-th call (from 1);
    /// returns the result and how many calls were made.
    fn asked<T>(
        patience: Duration,
        give_up: bool,
        outcome: impl Fn(u32) -> Result<T, String>,
    ) -> (Result<T, String>, u32) {
        let calls = Cell::new(0);
        let op = || {
            calls.set(calls.get() + 1);
            outcome(calls.get())
        };
        let got = ask_again("test", patience, Duration::from_millis(1), || give_up, op);
        (got, calls.get())
    }

    #[test]
    fn a_call_that_fails_a_few_times_is_answered() {
        let got = asked(Duration::from_secs(10), false, |n| if n < 3 { Err("not coordinator".into()) } else { Ok(7) });
        assert_eq!(got, (Ok(7), 3));
    }

    #[test]
    fn the_last_error_stands_after_the_patience() {
        let (got, calls) = asked::<()>(Duration::from_millis(20), false, |n| Err(format!("failure {n}")));
        assert_eq!(got, Err(format!("failure {calls}")));
        assert!(calls > 1, "asked again within the patience");
    }

    #[test]
    fn nobody_waiting_stops_the_asking() {
        let got = asked::<()>(Duration::from_secs(10), true, |_| Err("loading".into()));
        assert_eq!(got, (Err("loading".to_owned()), 1));
    }
}
