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

    const STEP: Duration = Duration::from_millis(1);

    #[test]
    fn a_call_that_fails_a_few_times_is_answered() {
        let calls = Cell::new(0);
        let got = ask_again(
            "test",
            Duration::from_secs(10),
            STEP,
            || false,
            || {
                calls.set(calls.get() + 1);
                if calls.get() < 3 { Err("not coordinator") } else { Ok(7) }
            },
        );
        assert_eq!((got, calls.get()), (Ok(7), 3));
    }

    #[test]
    fn the_last_error_stands_after_the_patience() {
        let calls = Cell::new(0);
        let got: Result<(), String> = ask_again(
            "test",
            Duration::from_millis(20),
            STEP,
            || false,
            || {
                calls.set(calls.get() + 1);
                Err(format!("failure {}", calls.get()))
            },
        );
        assert_eq!(got, Err(format!("failure {}", calls.get())));
        assert!(calls.get() > 1, "asked again within the patience");
    }

    #[test]
    fn nobody_waiting_stops_the_asking() {
        let calls = Cell::new(0);
        let got: Result<(), &str> = ask_again(
            "test",
            Duration::from_secs(10),
            STEP,
            || true,
            || {
                calls.set(calls.get() + 1);
                Err("loading")
            },
        );
        assert_eq!((got, calls.get()), (Err("loading"), 1));
    }
}
