//! What the pipeline tests expect of committed jobs: the rules engine's
//! prediction, reached within a deadline, with no job id twice.

use super::env::{TestEnv, job_key, predict, predict_with};
use super::kafka::wait_until;
use super::proc::{Instance, tail};
use postback::domain::{Event, Job};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// Waits until the committed jobs reach the predicted number, then returns
/// them; panics with what is missing and the instances' logs on timeout.
pub fn await_jobs(env: &TestEnv, events: &[Event], timeout: Duration, instances: &[&Instance]) -> Vec<Job> {
    let want = predict(events);
    let mut jobs = Vec::new();
    // a read held short of the end by a transaction an outage left open
    // is looked at again, not a failure: recovery may take a request timeout
    let done = wait_until(timeout, || {
        if let Some(now) = env.jobs_if_settled() {
            jobs = now;
        }
        jobs.len() >= want.len()
    });
    if !done {
        let logs: Vec<String> = instances.iter().map(|i| format!("--- {} ---\n{}", i.name, tail(&i.log()))).collect();
        let got: BTreeSet<_> = jobs.iter().map(job_key).collect();
        let missing: Vec<_> = want.difference(&got).take(10).collect();
        panic!(
            "only {} of {} jobs after {timeout:?}; missing e.g. {missing:#?}\n{}",
            jobs.len(),
            want.len(),
            logs.join("\n")
        );
    }
    // anything beyond the prediction would show up as a duplicate or an unexpected job
    std::thread::sleep(Duration::from_secs(2));
    env.jobs()
}

/// Exactly once: no job id twice among committed records, and the set is
/// the one the rules engine predicts, URL by URL.
pub fn assert_exact(jobs: &[Job], events: &[Event]) {
    assert_exact_at(jobs, events, "https://pb.example");
}

/// [`assert_exact`] for partner URLs at `sink`.
pub fn assert_exact_at(jobs: &[Job], events: &[Event], sink: &str) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for j in jobs {
        *seen.entry(&j.job_id).or_default() += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "{} job ids committed more than once: {:?}", dups.len(), &dups[..dups.len().min(5)]);
    let got: BTreeSet<_> = jobs.iter().map(job_key).collect();
    let want: BTreeSet<_> = predict_with(events, sink).iter().map(job_key).collect();
    let missing: Vec<_> = want.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&want).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "job sets differ ({} got, {} want)\nmissing: {missing:#?}\nextra: {extra:#?}",
        got.len(),
        want.len()
    );
}
