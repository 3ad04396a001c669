//! `process.threads`: one process runs several processing loops, each a
//! member of the group with its own consumer, transactional producer and
//! stores — the same as that many instances, without sharing anything on
//! the hot path (no lock between threads, no commit waiting for another
//! thread's batch). The group's assignor splits the partitions between
//! them; a partition moving between two threads of one process goes
//! through a rebalance like one moving between instances.
//!
//! Identity: thread 0 keeps the instance's `instance_id` (so a single-thread
//! instance that gains threads still fences what it left open), thread `i`
//! uses `<instance_id>.t<i>` for its `transactional.id` and `client.id`.
//!
//! Every thread joins as a static member (with `kafka.static_membership`)
//! under its own identity, so after a restart each one rejoins as itself and
//! gets its partitions back at once; a thread that joined dynamically would
//! wait, after a `kill -9`, for its dead predecessor's session to expire
//! (`session.timeout.ms`, 45 s) before any partition moved. Earlier versions
//! kept threads 1… dynamic: under the cooperative assignor they used then, a
//! process killed between the two rounds of a rebalance among its own
//! threads left the partitions revoked in the first round to no one in the
//! members' cached assignments. The `range` assignor assigns every partition
//! in each rebalance (`kafka::client::processor_consumer`), so that state no
//! longer exists. A restart with fewer threads leaves the missing threads'
//! members in the group until their sessions expire.

use super::ProcessError;
use super::runner::Runner;
use crate::config::Config;
use crate::kafka::admin::Layout;
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The threads to run: as many as wanted, but no more than the partitions
/// a member can be assigned (more would sit idle in the group).
pub fn effective(wanted: usize, layout: &Layout) -> usize {
    capped(wanted, layout.events, layout.user_activity)
}

fn capped(wanted: usize, events: i32, user_activity: i32) -> usize {
    let most = usize::try_from(events.max(user_activity)).unwrap_or(1);
    wanted.clamp(1, most.max(1))
}

/// One processing thread's name and config (its instance identity).
pub struct Member {
    pub name: String,
    pub config: Config,
}

pub fn members(fixed: &Config, threads: usize) -> Vec<Member> {
    (0..threads)
        .map(|i| {
            let mut config = fixed.clone();
            if i > 0 {
                config.kafka.instance_id = Some(format!("{}.t{i}", fixed.instance_id()));
            }
            let name = if threads == 1 { "processor".to_owned() } else { format!("processor-{i}") };
            Member { name, config }
        })
        .collect()
}

/// What a processing thread reports when it ends.
enum Ended {
    Returned(Result<(), ProcessError>),
    Panicked,
}

/// Runs each runner on its own thread, and returns a handle that ends when
/// all have: with the first error (the others are stopped by `stop` as soon
/// as one fails), or with the first panic resumed.
pub fn spawn(
    runners: Vec<(String, Runner)>,
    stop: CancellationToken,
) -> Result<JoinHandle<Result<(), ProcessError>>, ProcessError> {
    let (tx, rx) = channel();
    let mut threads = Vec::with_capacity(runners.len());
    for (name, runner) in runners {
        threads.push(spawn_one(name, runner, tx.clone())?);
    }
    drop(tx);
    let supervise = move || {
        let mut first = Ok(());
        // every thread sends exactly once, panicking or not
        for (name, ended) in rx.iter() {
            let failed = match ended {
                Ended::Returned(Ok(())) => false,
                Ended::Returned(Err(e)) => {
                    tracing::error!(thread = %name, error = %e, "processing thread failed; stopping the others");
                    if first.is_ok() {
                        first = Err(e);
                    }
                    true
                }
                Ended::Panicked => true,
            };
            if failed {
                stop.cancel();
            }
        }
        for thread in threads {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
        first
    };
    std::thread::Builder::new().name("process-stage".into()).spawn(supervise).map_err(ProcessError::Thread)
}

fn spawn_one(name: String, runner: Runner, tx: Sender<(String, Ended)>) -> Result<JoinHandle<()>, ProcessError> {
    let thread_name = name.clone();
    let body = move || {
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner.run()));
        match ran {
            Ok(result) => {
                let _ = tx.send((name, Ended::Returned(result)));
            }
            Err(panic) => {
                let _ = tx.send((name, Ended::Panicked));
                std::panic::resume_unwind(panic);
            }
        }
    };
    std::thread::Builder::new().name(thread_name).spawn(body).map_err(ProcessError::Thread)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use std::path::Path;

    #[test]
    fn threads_are_capped_by_the_partitions_a_member_can_get() {
        assert_eq!(capped(2, 8, 8), 2);
        assert_eq!(capped(16, 8, 4), 8);
        assert_eq!(capped(16, 2, 6), 6);
        assert_eq!(capped(0, 8, 8), 1);
    }

    #[test]
    fn thread_zero_keeps_the_instance_id_and_the_others_derive_theirs() {
        let text = "[kafka]\nbootstrap_servers = \"b:9092\"\ninstance_id = \"pod-a\"\n\
                    [[apps]]\nid = \"game\"\nplatform = \"mobile\"\n";
        let config = load_str(text, Path::new("pb.toml"), Vec::<(String, String)>::new()).unwrap();
        let m = members(&config, 3);
        let got: Vec<(String, String)> = m.iter().map(|m| (m.name.clone(), m.config.instance_id())).collect();
        let want = [("processor-0", "pod-a"), ("processor-1", "pod-a.t1"), ("processor-2", "pod-a.t2")];
        assert_eq!(got, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
        let statics: Vec<bool> = m.iter().map(|m| m.config.kafka.static_membership).collect();
        assert_eq!(statics, [true, true, true], "every thread joins as a static member, under its own id");
        assert_eq!(members(&config, 1)[0].name, "processor");
        assert_eq!(members(&config, 1)[0].config.instance_id(), "pod-a");
    }
}
