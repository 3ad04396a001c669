//! `postback test CONFIG EVENTS.jsonl`: the would-be postbacks of a small
//! stream printed exactly, from empty and from stored state, and sent with
//! `--send` (answers printed, the SSRF guard on).

use crate::support::partner::Partner;
use postback::domain::binary::encode_device;
use postback::domain::engine::state_key;
use postback::domain::{Attributed, Attribution, DeviceState};
use postback::store::{RocksStore, Store, StoreMeta};
use std::path::Path;

const CONFIG: &str = r#"
[[apps]]
id = "game"
platform = "mobile"

[[partners]]
id = "acme"

[[postbacks]]
name = "acme | install"
partner = "acme"
event = "install"
url = "SINK/ok/i?click={click_id}&ifa={idfa_or_gaid|lower}"

[[postbacks]]
name = "acme | 2nd payment"
partner = "acme"
event = "payment"
occurrence = 2
method = "POST"
url = "SINK/ok/p"
headers = { "X-Key" = "k1" }
body = '{{"rev":"{revenue|revenue_share:30}","ev":"{event_id}"}}'
"#;

const EVENTS: &str = r#"{"event_id":"e1","app_id":"game","device_id":"d1","kind":"install","timestamp_ms":1767225600000,"attribution":{"partner_id":"acme","click_id":"c-1"},"device":{"os":"android","gaid":"G-1"}}

{"event_id":"e2","app_id":"game","device_id":"d1","kind":"payment","timestamp_ms":1767225700000,"revenue":{"amount":"4.99","currency":"USD","transaction_id":"t1","verified":false}}
{"event_id":"e3","app_id":"game","device_id":"d1","kind":"payment","timestamp_ms":1767225800000,"revenue":{"amount":"4.99","currency":"USD","transaction_id":"t2","verified":false}}
{"event_id":"e4","app_id":"nope","device_id":"d1","kind":"launch","timestamp_ms":1767225800000}
not json
"#;

/// Runs `postback test` with the config pointing at `sink`: (code, stdout, stderr).
fn trial(dir: &Path, sink: &str, extra_config: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let config = dir.join("c.toml");
    std::fs::write(&config, format!("{extra_config}\n{}", CONFIG.replace("SINK", sink))).unwrap();
    let events = dir.join("e.jsonl");
    std::fs::write(&events, EVENTS).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postback"))
        .arg("test")
        .arg(&config)
        .arg(&events)
        .args(args)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn the_would_be_postbacks_of_a_stream_are_printed_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = trial(dir.path(), "https://pb.acme.example", "", &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        "line 1: install e1 of app game, device d1, via acme\n\
         \x20 acme | install (acme-install): GET https://pb.acme.example/ok/i?click=c-1&ifa=g-1\n\
         line 3: payment e2 of app game, device d1\n\
         \x20 no postback fires\n\
         line 4: payment e3 of app game, device d1\n\
         \x20 acme | 2nd payment (acme-2nd-payment): POST https://pb.acme.example/ok/p\n\
         \x20   header Content-Type: application/json\n\
         \x20   header X-Key: k1\n\
         \x20   body {\"rev\":\"1.497\",\"ev\":\"e3\"}\n\
         line 5: launch e4 of app nope, device d1\n\
         \x20 rejected: unknown app 'nope': not in the config's [[apps]]\n\
         line 6: not an event: invalid JSON: expected ident at line 1 column 2\n"
    );
}

#[test]
fn stored_state_is_read_and_never_written() {
    let dir = tempfile::tempdir().unwrap();
    // the device installed via acme before, and paid once
    let state_dir = dir.path().join("state");
    let source = Attribution { partner_id: "acme".into(), click_id: "c-0".into(), ..Default::default() };
    let mut st = DeviceState {
        first_seen_ms: 1_767_000_000_000,
        install_ms: 1_767_000_000_000,
        first: Attributed::new(Some(source), 1_767_000_000_000),
        flags: postback::domain::state::flags::INSTALLED,
        ..DeviceState::default()
    };
    st.current = st.first.clone();
    st.count(postback_count_key("payment"), 0);
    let mut value = Vec::new();
    encode_device(&st, &mut value);
    let key = state_key("game", "d1");
    {
        let mut store = RocksStore::open(&state_dir.join("device-0")).unwrap();
        store.write(&[(key.as_bytes(), value.as_slice())], StoreMeta::default()).unwrap();
    }
    let dir_arg = state_dir.display().to_string();
    let (code, out, err) = trial(dir.path(), "https://pb.acme.example", "", &["--state-dir", &dir_arg]);
    assert_eq!(code, Some(0), "{err}");
    // the stored install makes e1 no install, and e2 the second payment
    assert!(out.starts_with("line 1: install e1 of app game, device d1, via acme\n  no postback fires\nline 3: payment e2 of app game, device d1\n  acme | 2nd payment (acme-2nd-payment): POST"), "{out}");
    let store = RocksStore::open_read_only(&state_dir.join("device-0")).unwrap();
    assert_eq!(store.get_many(&[key.as_bytes()]).unwrap(), vec![Some(value)], "the stored state is unchanged");
}

/// The counter key of a kind, as the device rules compute it.
fn postback_count_key(kind: &str) -> u64 {
    postback::domain::hash::fnv1a64(&[b"count", kind.as_bytes(), b""])
}

#[test]
fn send_delivers_each_postback_and_prints_the_answer() {
    let partner = Partner::start();
    let dir = tempfile::tempdir().unwrap();
    let sink = partner.url("");
    let allow = "[send]\nallow_networks = [\"127.0.0.1/32\"]\n";
    let (code, out, err) = trial(dir.path(), &sink, allow, &["--send"]);
    assert_eq!(code, Some(0), "{err}");
    let answers: Vec<&str> = out.lines().filter(|l| l.starts_with("    -> ")).collect();
    assert_eq!(answers.len(), 2, "{out}");
    assert!(answers.iter().all(|a| a.starts_with("    -> 200 in ") && a.ends_with(" ms: ok")), "{out}");
    let reqs = partner.requests();
    assert_eq!(
        reqs.iter().map(|r| (r.method.as_str(), r.uri.as_str(), r.body.as_str())).collect::<Vec<_>>(),
        [("GET", "/ok/i?click=c-1&ifa=g-1", ""), ("POST", "/ok/p", "{\"rev\":\"1.497\",\"ev\":\"e3\"}")]
    );
    // without the allowance the guard refuses the loopback partner
    let (code, out, _) = trial(dir.path(), &sink, "", &["--send"]);
    assert_eq!(code, Some(0));
    let answers: Vec<&str> = out.lines().filter(|l| l.starts_with("    -> ")).collect();
    assert_eq!(answers.len(), 2, "{out}");
    assert!(answers.iter().all(|a| a.starts_with("    -> blocked by the SSRF guard: ")), "{out}");
    assert_eq!(partner.requests().len(), 2, "nothing more reached the partner");
}
