//! `process_batch` over in-memory stores: the batch logic of the processing
//! stage, checked record by record without a broker.

use super::*;
use crate::codec::JobEncoding;
use crate::codec::decode_job;
use crate::config::{Config, load_str};
use crate::domain::binary::{decode_activity, decode_device, encode_device};
use crate::domain::engine::state_key;
use crate::domain::job::job_id;
use crate::domain::reject::DlqReason;
use crate::domain::{DeviceState, Job};
use crate::kafka::admin::Layout;
use crate::kafka::admin::RecordLimits;
use crate::process::records::{Dest, OutRecord};
use crate::process::stage::{Feed, Part};
use crate::store::{MemStore, StoreMeta};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

const T0: i64 = 1_735_689_600_000;
const NOW: i64 = T0 + 3_600_000;

fn config() -> Config {
    let text = r#"
[[apps]]
id = "m"
platform = "mobile"

[[partners]]
id = "acme"

[[postbacks]]
id = "acme-install"
name = "Acme | install"
partner = "acme"
event = "install"
url = "https://pb.acme.example/i?c={click_id}&d={device_id}"

[[postbacks]]
id = "acme-new-user"
name = "Acme | new user"
partner = "acme"
event = "new_user"
url = "https://pb.acme.example/u?c={click_id}&u={user_id}"
"#;
    load_str(text, Path::new("t.toml"), Vec::<(String, String)>::new()).unwrap()
}

fn layout() -> Layout {
    Layout {
        events: 2,
        device_state: 1,
        user_activity: 4,
        jobs: 3,
        jobs_dlq: 3,
        events_dlq: 2,
        limits: RecordLimits::defaults(),
    }
}

fn env(config: &Config) -> BatchEnv<'_> {
    BatchEnv {
        rules: &config.rules,
        topics: &config.topics,
        layout: layout(),
        job_format: JobEncoding::Json,
        decode: config.decode_options(),
        max_record_bytes: config.input.max_record_bytes,
        partitioning: config.input.partitioned_by,
        now_ms: NOW,
    }
}

fn install(event_id: &str, device: &str, user: &str) -> Vec<u8> {
    format!(
        r#"{{"event_id":"{event_id}","app_id":"m","device_id":"{device}","user_id":"{user}","kind":"install","timestamp_ms":{T0},"attribution":{{"partner_id":"acme","click_id":"clk-1"}}}}"#
    )
    .into_bytes()
}

fn record(stage: Stage, partition: i32, offset: i64, key: &str, value: Vec<u8>) -> InRecord {
    InRecord { stage, via: Via::Input, partition, offset, key: Some(key.as_bytes().to_vec()), value: Some(value) }
}

/// Stores for device partitions 0-1 and user partitions 0-3, `seed` written
/// into device-0.
fn stores(seed: &[(&str, Vec<u8>)]) -> Stores {
    let mut stores: Stores = HashMap::new();
    for (stage, n) in [(Stage::Device, 2), (Stage::User, 4)] {
        for p in 0..n {
            stores.insert(Part::new(stage, p), Box::new(MemStore::new()));
        }
    }
    let puts: Vec<(&[u8], &[u8])> = seed.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())).collect();
    stores.get_mut(&Part::new(Stage::Device, 0)).unwrap().write(&puts, StoreMeta::default()).unwrap();
    stores
}

fn run(records: &[InRecord], stores: &Stores, prior: &Prior<'_>) -> BatchOutput {
    let config = config();
    process_batch(records, StateView { stores, prior }, &env(&config)).unwrap()
}

fn of(out: &BatchOutput, dest: Dest) -> Vec<&OutRecord> {
    out.records.iter().filter(|r| r.dest == dest).collect()
}

fn jobs(out: &BatchOutput) -> Vec<Job> {
    of(out, Dest::Jobs).iter().map(|r| decode_job(&r.value).unwrap()).collect()
}

#[test]
fn an_install_fires_writes_state_and_advances_the_position() {
    let stores = stores(&[]);
    let out = run(&[record(Stage::Device, 0, 7, "d1", install("e1", "d1", ""))], &stores, &Prior::default());
    let jobs = jobs(&out);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].job_id, job_id("m", "d1", "", "e1", "acme-install", "install"));
    assert_eq!(jobs[0].url, "https://pb.acme.example/i?c=clk-1&d=d1");
    let job_records = of(&out, Dest::Jobs);
    assert_eq!((job_records[0].key.as_slice(), job_records[0].partition), (&b"d1"[..], partition_for(b"d1", 3)));
    let changelog = of(&out, Dest::Changelog(Stage::Device));
    assert_eq!(changelog.len(), 1);
    assert_eq!((changelog[0].key.as_slice(), changelog[0].partition), (&b"m:d1"[..], 0));
    let state = decode_device(&changelog[0].value).unwrap();
    assert_eq!((state.install_ms, state.first.partner()), (T0, "acme"));
    assert_eq!(out.state[&Part::new(Stage::Device, 0)], vec![(b"m:d1".to_vec(), changelog[0].value.clone())]);
    assert_eq!(out.positions, BTreeMap::from([(Feed::input(Part::new(Stage::Device, 0)), 8)]));
    assert!(of(&out, Dest::Input(Stage::User)).is_empty(), "no user id, nothing forwarded");
}

#[test]
fn corrupt_stored_state_sends_the_record_to_the_dlq_and_leaves_the_state() {
    let stores = stores(&[("m:d1", vec![0xFF, 0x01, 0x02])]);
    let value = install("e1", "d1", "");
    let out = run(&[record(Stage::Device, 0, 5, "d1", value.clone())], &stores, &Prior::default());
    assert_eq!(out.records.len(), 1, "{:?}", out.records);
    let dlq = &out.records[0];
    assert_eq!(dlq.dest, Dest::Dlq);
    assert_eq!(
        (dlq.key.as_slice(), dlq.value.as_slice(), dlq.partition),
        (&b"d1"[..], value.as_slice(), partition_for(b"d1", 2))
    );
    assert_eq!(
        dlq.headers,
        vec![
            ("reason", "corrupt_state".to_owned()),
            ("error", "stored state of 'm:d1' in store device-0 does not decode: format version 255 is not supported by this release (it reads up to 1); upgrade postback".to_owned()),
            ("source-topic", "tracker.events".to_owned()),
            ("source-partition", "0".to_owned()),
            ("source-offset", "5".to_owned()),
        ]
    );
    assert!(out.state.is_empty());
    assert_eq!(out.stats.rejected(DlqReason::CorruptState), 1);
    assert_eq!(out.positions, BTreeMap::from([(Feed::input(Part::new(Stage::Device, 0)), 6)]), "the batch moves on");
}

#[test]
fn a_duplicate_event_writes_nothing() {
    let mut state = None;
    let config = config();
    let event = crate::codec::decode_event(&install("e1", "d1", "")).unwrap();
    crate::domain::device::apply_device(&mut state, &event, config.rules.app("m").unwrap());
    let mut bytes = Vec::new();
    encode_device(&state.unwrap(), &mut bytes);
    let stores = stores(&[("m:d1", bytes)]);
    let out = run(&[record(Stage::Device, 0, 9, "d1", install("e1", "d1", ""))], &stores, &Prior::default());
    assert!(out.records.is_empty(), "{:?}", out.records);
    assert!(out.state.is_empty());
    assert_eq!(out.positions, BTreeMap::from([(Feed::input(Part::new(Stage::Device, 0)), 10)]));
}

#[test]
fn a_user_event_is_forwarded_with_the_devices_snapshot() {
    let stores = stores(&[]);
    let out = run(&[record(Stage::Device, 0, 0, "d2", install("e2", "d2", "u1"))], &stores, &Prior::default());
    let forwarded = of(&out, Dest::Input(Stage::User));
    assert_eq!(forwarded.len(), 1);
    assert_eq!(
        (forwarded[0].key.as_slice(), forwarded[0].partition),
        (&b"default:u1"[..], partition_for(b"default:u1", 4))
    );
    let act = decode_activity(&forwarded[0].value).unwrap();
    assert_eq!((act.event.event_id.as_str(), act.event.user_id.as_str()), ("e2", "u1"));
    assert_eq!((act.device_first.partner(), act.device_current.partner(), act.device_seq), ("acme", "acme", 0));
    assert_eq!(act.install_ms, T0);

    // the user stage turns it into a new user, in its own store
    let user_record = InRecord {
        stage: Stage::User,
        via: Via::Input,
        partition: forwarded[0].partition,
        offset: 0,
        key: Some(forwarded[0].key.clone()),
        value: Some(forwarded[0].value.clone()),
    };
    let out = run(&[user_record], &stores, &Prior::default());
    let jobs = jobs(&out);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].job_id, job_id("m", "d2", "u1", "e2", "acme-new-user", "new_user"));
    assert_eq!(jobs[0].url, "https://pb.acme.example/u?c=clk-1&u=u1");
    assert_eq!(of(&out, Dest::Jobs)[0].key, b"default:u1".to_vec(), "user jobs are keyed by project:user");
    let changelog = of(&out, Dest::Changelog(Stage::User));
    assert_eq!((changelog.len(), changelog[0].partition), (1, partition_for(b"default:u1", 4)));
}

#[test]
fn two_events_of_a_key_give_one_changelog_record_with_the_last_state() {
    let stores = stores(&[]);
    let launch =
        format!(r#"{{"event_id":"e9","app_id":"m","device_id":"d1","kind":"launch","timestamp_ms":{}}}"#, T0 + 1000);
    let out = run(
        &[
            record(Stage::Device, 0, 0, "d1", install("e1", "d1", "")),
            record(Stage::Device, 0, 1, "d1", launch.into_bytes()),
        ],
        &stores,
        &Prior::default(),
    );
    let changelog = of(&out, Dest::Changelog(Stage::Device));
    assert_eq!(changelog.len(), 1);
    assert_eq!(decode_device(&changelog[0].value).unwrap().last_activity_ms, Some(T0 + 1000));
    assert_eq!(out.positions, BTreeMap::from([(Feed::input(Part::new(Stage::Device, 0)), 2)]));
}

#[test]
fn the_committing_batchs_state_is_read_before_the_stores() {
    let stores = stores(&[]);
    let first = run(&[record(Stage::Device, 0, 0, "d1", install("e1", "d1", ""))], &stores, &Prior::default());
    let prior = Prior::new(&first.state);
    // a second install of the same device, with a new event id: no trigger
    let out = run(&[record(Stage::Device, 0, 1, "d1", install("e2", "d1", ""))], &stores, &prior);
    assert!(jobs(&out).is_empty());
    let state = decode_device(&of(&out, Dest::Changelog(Stage::Device))[0].value).unwrap();
    assert_eq!(state.recent.len(), 2, "both event ids remembered: {state:?}");
    let _: DeviceState = state;
}

#[test]
fn undecodable_input_goes_to_the_dlq_with_the_reason() {
    let stores = stores(&[]);
    let out = run(
        &[
            record(Stage::Device, 0, 3, "x", b"{not json".to_vec()),
            InRecord { stage: Stage::Device, via: Via::Input, partition: 0, offset: 4, key: None, value: None },
            record(Stage::User, 2, 0, "m:u1", vec![9, 9, 9]),
        ],
        &stores,
        &Prior::default(),
    );
    let labels: Vec<&str> = out.records.iter().map(|r| r.headers[0].1.as_str()).collect();
    assert_eq!(labels, ["undecodable"; 3], "the reason header is the metric's label");
    let reasons: Vec<[&str; 3]> = out.records.iter().map(|r| [1, 2, 4].map(|i| r.headers[i].1.as_str())).collect();
    assert_eq!(
        reasons,
        vec![
            ["invalid JSON: key must be a string at line 1 column 2", "tracker.events", "3"],
            ["empty record (no value)", "tracker.events", "4"],
            [
                "user activity: format version 9 is not supported by this release (it reads up to 1); upgrade postback",
                "postback.user-activity",
                "0"
            ],
        ]
    );
    assert_eq!(out.stats.rejected(DlqReason::Undecodable), 3);
}

#[test]
fn a_partition_without_a_store_fails_the_batch() {
    let mut stores = stores(&[]);
    stores.remove(&Part::new(Stage::Device, 0));
    let config = config();
    let view = StateView { stores: &stores, prior: &Prior::default() };
    let err =
        process_batch(&[record(Stage::Device, 0, 0, "d1", install("e1", "d1", ""))], view, &env(&config)).unwrap_err();
    assert_eq!(err.to_string(), "no state store open for device-0, an assigned partition");
    let _ = state_key("m", "d1");
}

#[test]
fn records_off_their_state_partition_are_forwarded_unchanged_and_processed_from_there() {
    // the layout has one device state partition: input partition 1 holds none
    let stores = stores(&[]);
    let value = install("e1", "d1", "");
    let huge = vec![b' '; 70_000];
    let out = run(
        &[
            record(Stage::Device, 1, 7, "d1", value.clone()),
            InRecord { stage: Stage::Device, via: Via::Input, partition: 1, offset: 8, key: None, value: None },
            record(Stage::Device, 1, 9, "d1", huge),
        ],
        &stores,
        &Prior::default(),
    );
    let forwarded = of(&out, Dest::Repartition);
    let sent: Vec<(Vec<u8>, Vec<u8>, i32)> =
        forwarded.iter().map(|r| (r.key.clone(), r.value.clone(), r.partition)).collect();
    assert_eq!(sent, vec![(b"d1".to_vec(), value.clone(), 0), (Vec::new(), Vec::new(), 0)]);
    assert!(forwarded.iter().all(|r| r.headers.is_empty()));
    assert!(jobs(&out).is_empty() && out.state.is_empty(), "nothing processed on the input partition");
    // a record too large for any topic is not forwarded: it goes to the DLQ from where it is
    let dlq = of(&out, Dest::Dlq);
    assert_eq!((dlq.len(), dlq[0].headers[0].1.as_str(), dlq[0].headers[4].1.as_str()), (1, "record_too_large", "9"));
    assert!(
        dlq[0].headers[1].1.starts_with("record of 70002 bytes is over input.max_record_bytes"),
        "{:?}",
        dlq[0].headers
    );
    assert_eq!(out.positions, BTreeMap::from([(Feed::input(Part::new(Stage::Device, 1)), 10)]));

    // read back from the repartition topic, the record is processed in its state partition
    let again = InRecord { via: Via::Repartition, partition: 0, offset: 0, ..record(Stage::Device, 0, 0, "d1", value) };
    let out = run(&[again], &stores, &Prior::default());
    assert_eq!(jobs(&out)[0].job_id, job_id("m", "d1", "", "e1", "acme-install", "install"));
    assert_eq!(of(&out, Dest::Repartition).len(), 0);
    assert_eq!(of(&out, Dest::Changelog(Stage::Device))[0].partition, 0);
    assert_eq!(out.positions, BTreeMap::from([(Feed::repartition(0), 1)]));
}
