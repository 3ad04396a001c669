//! What the rules engine predicts for a stream of events: the jobs a
//! pipeline must commit, compared by job id and rendered request.

use super::rules;
use postback::domain::engine::Engine;
use postback::domain::{Event, Job};
use std::collections::BTreeSet;
use std::sync::Arc;

/// What a job is, for comparing sets: its id and its rendered request.
pub type JobKey = (String, String, String, Option<String>);

pub fn job_key(j: &Job) -> JobKey {
    (j.job_id.clone(), j.postback_id.clone(), j.url.clone(), j.body.clone())
}

/// The jobs the rules engine predicts for `events` (partner URLs at `sink`).
pub fn predict_with(events: &[Event], sink: &str) -> Vec<Job> {
    let config = rules::config(sink);
    let mut engine = Engine::new(Arc::clone(&config.rules));
    let now = postback::clock::now_ms();
    events.iter().filter_map(|e| engine.process(e, now).ok()).flatten().collect()
}

/// The jobs the rules engine predicts for `events`.
pub fn predict(events: &[Event]) -> BTreeSet<JobKey> {
    let config = rules::config("https://pb.example");
    let mut engine = Engine::new(Arc::clone(&config.rules));
    let now = postback::clock::now_ms();
    events.iter().filter_map(|e| engine.process(e, now).ok()).flatten().map(|j| job_key(&j)).collect()
}

/// Generated events on the test apps (`m` for mobile, `w` for web).
pub fn generated(devices: usize, count: usize, seed: u64) -> Vec<Event> {
    use postback::demo::generator::{Generator, MOBILE_APP, Mix};
    Generator::new(&Mix { devices, seed, ..Mix::default() })
        .take(count)
        .map(|mut e| {
            e.app_id = if e.app_id == MOBILE_APP { "m".into() } else { "w".into() };
            e.device_id = format!("g{seed}-{}", e.device_id);
            if !e.user_id.is_empty() {
                e.user_id = format!("g{seed}-{}", e.user_id);
            }
            e
        })
        .collect()
}
