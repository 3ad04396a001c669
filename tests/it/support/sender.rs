//! The sender tests' helpers: fast retry tiers, a job to send, a sender
//! instance, requests by job id, the job DLQ.

use super::env::TestEnv;
use super::kafka::read_all;
use super::partner::Req;
use super::proc::Instance;
use postback::domain::{Job, Method, Routing};
use std::collections::{BTreeMap, HashMap};

/// Fast tiers for tests; loopback allowed (the partner lives there).
pub const SEND: &str = "[send]\nretry_delays = [\"1s\", \"1s\", \"1s\"]\nretry_jitter = 0.0\ncommit_interval = \"200ms\"\nallow_networks = [\"127.0.0.0/8\"]\ntimeout = \"2s\"\n";

pub fn job(id: &str, partner: &str, url: String) -> Job {
    let now = postback::clock::now_ms();
    Job {
        job_id: id.to_owned(),
        postback_id: format!("{partner}.test"),
        postback_name: format!("{partner} | test"),
        partner_id: partner.to_owned(),
        app_id: "m".into(),
        event: "install".into(),
        attribution: Routing::Lt,
        device_id: format!("dev-{id}"),
        user_id: String::new(),
        event_id: format!("ev-{id}"),
        event_ts_ms: now,
        created_ms: now,
        method: Method::Get,
        url,
        headers: BTreeMap::new(),
        body: None,
        attempt: 0,
        not_before_ms: 0,
        expires_ms: now + 3_600_000,
    }
}

pub fn sender(env: &TestEnv, name: &str, extra: &[(&str, &str)]) -> Instance {
    let extra: Vec<(&str, String)> = extra.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    env.start_cmd("send", name, &extra)
}

pub fn by_id(reqs: &[Req]) -> HashMap<String, Vec<Req>> {
    let mut m: HashMap<String, Vec<Req>> = HashMap::new();
    for r in reqs {
        m.entry(r.id().to_owned()).or_default().push(r.clone());
    }
    m
}

/// DLQ records as (job id, error header).
pub fn dlq(env: &TestEnv) -> BTreeMap<String, String> {
    read_all(&env.topic("jobs.dlq"))
        .iter()
        .map(|r| {
            (
                postback::codec::decode_job(&r.value).map(|j| j.job_id).unwrap_or_default(),
                r.headers.get("error").cloned().unwrap_or_default(),
            )
        })
        .collect()
}
