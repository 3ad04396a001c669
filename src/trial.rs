//! `postback test CONFIG EVENTS.jsonl`: runs events through the rules on a
//! copy of the state (empty, or read from a state directory and never
//! written back) and prints, per event, the postbacks that would fire with
//! their final URLs, headers and bodies; `--send` sends them to their
//! partners through the sender's HTTP client (SSRF guard on) and prints each
//! answer. The rules are the engine's, not a second implementation.

use crate::codec;
use crate::config::Config;
use crate::domain::binary::{decode_device, decode_user};
use crate::domain::engine::{Engine, state_key, user_key};
use crate::domain::{Event, Job, privacy};
use crate::inspect::{InspectError, find};
use crate::process::stage::Stage;
use crate::send::http::{Http, Report};
use crate::send::outcome::Attempt;
use std::collections::hash_map::Entry;
use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TrialError {
    #[error(transparent)]
    State(#[from] InspectError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// The report for every line of `events` (JSON, one event per line).
pub fn run(
    config: &Config,
    events: &str,
    state_dir: Option<&Path>,
    send: bool,
    now_ms: i64,
) -> Result<String, TrialError> {
    let mut engine = Engine::new(Arc::clone(&config.rules));
    let sender = if send { Some(Sender::new(config)?) } else { None };
    // the file is JSON lines, whatever the input topic carries
    let decode = codec::DecodeOptions { format: codec::InputFormat::Json, ..config.decode_options() };
    let mut out = String::new();
    for (i, line) in events.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event = match codec::decode_event_with(line.as_bytes(), &decode) {
            Ok(e) => e,
            Err(e) => {
                let _ = writeln!(out, "line {}: not an event: {e}", i + 1);
                continue;
            }
        };
        if let Some(dir) = state_dir {
            load_state(&mut engine, dir, &event)?;
        }
        let _ = writeln!(out, "line {}: {}", i + 1, describe(&event));
        let processed = engine.process(&event, now_ms);
        write_privacy(&mut out, &engine, &event);
        match processed {
            Err(rejected) => {
                let _ = writeln!(out, "  rejected: {rejected}");
            }
            Ok(jobs) if jobs.is_empty() => out.push_str("  no postback fires\n"),
            Ok(jobs) => {
                for job in &jobs {
                    write_job(&mut out, job);
                    if let Some(s) = &sender {
                        let _ = writeln!(out, "    -> {}", s.send(config, job));
                    }
                }
            }
        }
    }
    Ok(out)
}

fn describe(e: &Event) -> String {
    let mut s = format!("{} {} of app {}, device {}", e.kind, e.event_id, e.app_id, e.device_id);
    if !e.user_id.is_empty() {
        let _ = write!(s, ", user {}", e.user_id);
    }
    if let Some(a) = &e.attribution {
        let _ = write!(s, ", via {}", a.partner_id);
    }
    s
}

/// What each partner's privacy policy did for the event's device, when
/// it did anything (stripped identifiers, or suppressed its postbacks).
fn write_privacy(out: &mut String, engine: &Engine, event: &Event) {
    let Some(device) = engine.devices.get(&state_key(&event.app_id, &event.device_id)) else { return };
    let mut partners: Vec<&str> = engine.rules.postbacks().iter().map(|p| p.partner_id.as_str()).collect();
    partners.sort_unstable();
    partners.dedup();
    for partner in partners {
        let applied = privacy::applied(&device.privacy, engine.rules.privacy_policy(partner));
        if applied != privacy::Applied::Send {
            let _ = writeln!(out, "  privacy, partner {partner}: {applied}");
        }
    }
}

fn write_job(out: &mut String, job: &Job) {
    let _ = writeln!(out, "  {} ({}): {} {}", job.postback_name, job.postback_id, job.method.as_str(), job.url);
    for (name, value) in &job.headers {
        let _ = writeln!(out, "    header {name}: {value}");
    }
    if let Some(body) = &job.body {
        let _ = writeln!(out, "    body {body}");
    }
}

/// The stored states the event touches, unless already in the copy.
fn load_state(engine: &mut Engine, dir: &Path, event: &Event) -> Result<(), TrialError> {
    let Some(app) = engine.rules.app(&event.app_id).cloned() else { return Ok(()) };
    let key = state_key(&event.app_id, &event.device_id);
    if let Entry::Vacant(slot) = engine.devices.entry(key) {
        if let Some(bytes) = find(dir, Stage::Device, slot.key())? {
            let st = decode_device(&bytes).map_err(|e| InspectError::Corrupt(slot.key().clone(), e.to_string()))?;
            slot.insert(st);
        }
    }
    if event.user_id.is_empty() {
        return Ok(());
    }
    if let Entry::Vacant(slot) = engine.users.entry(user_key(&app, &event.user_id)) {
        if let Some(bytes) = find(dir, Stage::User, slot.key())? {
            let st = decode_user(&bytes).map_err(|e| InspectError::Corrupt(slot.key().clone(), e.to_string()))?;
            slot.insert(st);
        }
    }
    Ok(())
}

/// One request per job, one at a time: this is a test, not a stage.
struct Sender {
    http: Http,
    runtime: tokio::runtime::Runtime,
}

impl Sender {
    fn new(config: &Config) -> Result<Sender, TrialError> {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(TrialError::Runtime)?;
        // reqwest's resolver needs the runtime while the client is built
        let _ = config;
        Ok(Sender { http: Http::new(), runtime })
    }

    fn send(&self, config: &Config, job: &Job) -> String {
        let Some(partner) = config.partners.iter().find(|p| p.id == job.partner_id) else {
            return format!("not sent: unknown partner '{}'", job.partner_id);
        };
        // reqwest's resolver needs the runtime while the client is built
        let client = self.runtime.block_on(async { self.http.client(partner, config) });
        let report = self.runtime.block_on(self.http.send(&client, job, partner));
        answer(&report)
    }
}

fn answer(r: &Report) -> String {
    let ms = r.latency.as_millis();
    match &r.attempt {
        Attempt::Status { code, .. } if r.body.is_empty() => format!("{code} in {ms} ms"),
        Attempt::Status { code, .. } => format!("{code} in {ms} ms: {}", r.body.chars().take(200).collect::<String>()),
        Attempt::Timeout => format!("timed out after {ms} ms"),
        Attempt::Connect(e) => format!("cannot connect: {e}"),
        Attempt::Blocked(e) => format!("blocked by the SSRF guard: {e}"),
        Attempt::Invalid(e) => format!("not sent: {e}"),
    }
}
