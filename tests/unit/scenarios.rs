//! The scenario table (tests/support/scenarios.rs) run through the rules
//! engine: each step's exact postbacks, every design bullet covered, and
//! the rules the table cannot say in one step.

use crate::support::rules::{DAY, T0, config};
use crate::support::scenarios::*;
use postback::domain::Kind::*;
use postback::domain::engine::Engine;
use std::sync::Arc;

#[test]
fn scenario_table() {
    let config = config("https://pb.example");
    let now = T0 + 400 * DAY;
    let mut failures = Vec::new();
    let table = scenarios();
    for sc in &table {
        let mut engine = Engine::new(Arc::clone(&config.rules));
        for (i, (ev, expect)) in sc.steps.iter().enumerate() {
            let got = engine.process(&ev.0, now);
            let ok = match (expect, &got) {
                (Fires(want), Ok(jobs)) => {
                    let mut ids: Vec<&str> = jobs.iter().map(|j| j.postback_id.as_str()).collect();
                    ids.sort();
                    ids == *want
                }
                (Rejected(want), Err(r)) => r.to_string() == *want,
                _ => false,
            };
            if !ok {
                let got = got.map(|jobs| {
                    let mut ids: Vec<String> = jobs.into_iter().map(|j| j.postback_id).collect();
                    ids.sort();
                    ids
                });
                failures.push(format!(
                    "{} — step {} ({}): got {:?}",
                    sc.name,
                    i + 1,
                    ev.0.event_id,
                    got.map_err(|r| r.to_string())
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} scenario steps failed:\n{}", failures.len(), failures.join("\n"));
    println!("{} scenarios, {} steps", table.len(), table.iter().map(|s| s.steps.len()).sum::<usize>());
}

#[test]
fn every_design_bullet_has_a_scenario() {
    let table = scenarios();
    let missing: Vec<_> = BULLETS.iter().filter(|b| !table.iter().any(|s| s.covers.contains(b))).collect();
    assert!(missing.is_empty(), "bullets without a scenario: {missing:?}");
    let unknown: Vec<_> = table.iter().flat_map(|s| s.covers.iter()).filter(|c| !BULLETS.contains(c)).collect();
    assert!(unknown.is_empty(), "scenarios naming unknown bullets: {unknown:?}");
}

#[test]
fn rendered_urls_carry_the_routed_attribution() {
    let config = config("https://pb.example");
    let mut engine = Engine::new(Arc::clone(&config.rules));
    let now = T0 + 400 * DAY;
    engine.process(&ev("i1", Install, 0.0).campaign("acme", "cmp-7").0, now).unwrap();
    engine.process(&ev("i2", Install, 40.0).from("zeta").0, now).unwrap();
    let jobs = engine.process(&ev("p1", Payment, 41.0).pay("4.99", false).0, now).unwrap();
    let mut urls: Vec<(String, String)> = jobs.iter().map(|j| (j.postback_id.clone(), j.url.clone())).collect();
    urls.sort();
    let id = |pb: &str| jobs.iter().find(|j| j.postback_id == pb).unwrap().job_id.clone();
    assert_eq!(
        urls,
        vec![
            (
                "acme.first-payment".into(),
                format!(
                    "https://pb.example/acme/first-payment?click=clk-i1&ev=p1&dev=d1&rev=4.99&pb={}",
                    id("acme.first-payment")
                )
            ),
            (
                "acme.payment".into(),
                format!("https://pb.example/acme/payment?click=clk-i1&ev=p1&dev=d1&rev=4.99&pb={}", id("acme.payment"))
            ),
            // send-all postbacks route like any other: lifetime by default
            ("orbit.all-payment".into(), "https://pb.example/orbit/all-payment?p=acme&ev=p1".into()),
            (
                "zeta.first-payment-ca".into(),
                format!(
                    "https://pb.example/zeta/first-payment-ca?click=clk-i2&ev=p1&dev=d1&rev=4.99&pb={}",
                    id("zeta.first-payment-ca")
                )
            ),
            (
                "zeta.payment-ca".into(),
                format!(
                    "https://pb.example/zeta/payment-ca?click=clk-i2&ev=p1&dev=d1&rev=4.99&pb={}",
                    id("zeta.payment-ca")
                )
            ),
        ]
    );
    let mut engine = Engine::new(Arc::clone(&config.rules));
    let jobs = engine.process(&ev("i1", Install, 0.0).campaign("acme", "cmp-7").0, now).unwrap();
    let cmp = jobs.iter().find(|j| j.postback_id == "acme.install-cmp7").unwrap();
    assert_eq!(cmp.url, "https://pb.example/acme/install-cmp7?key=k7&ev=i1");
}

/// `window`: a postback fires only within its window after the start of
/// the attribution it is sent in (lifetime: the first; CA: the current).
#[test]
fn postback_windows_count_from_the_attribution_they_are_sent_in() {
    let text = r#"
[[apps]]
id = "m"
platform = "mobile"

[[partners]]
id = "acme"

[[postbacks]]
id = "lt-7d"
name = "acme | payment within 7 days of install"
partner = "acme"
event = "payment"
window = "7d"
url = "https://pb.example/lt?ev={event_id}"

[[postbacks]]
id = "ca-7d"
name = "acme | payment within 7 days of the current attribution"
partner = "acme"
event = "payment"
attribution = "ca"
window = "7d"
url = "https://pb.example/ca?ev={event_id}"
"#;
    let config =
        postback::config::load_str(text, std::path::Path::new("w.toml"), Vec::<(String, String)>::new()).unwrap();
    let mut engine = Engine::new(Arc::clone(&config.rules));
    let steps: Vec<(Ev, &[&str])> = vec![
        (ev("i1", Install, 0.0).from("acme"), &[]),
        (ev("p1", Payment, 6.9).pay("1.00", false), &["ca-7d", "lt-7d"]),
        (ev("p2", Payment, 7.1).pay("1.00", false), &[]),
        // re-engaged through acme on day 40: a new current attribution
        (ev("l1", Launch, 40.0).from("acme"), &[]),
        (ev("p3", Payment, 42.0).pay("1.00", false), &["ca-7d"]),
        (ev("p4", Payment, 47.5).pay("1.00", false), &[]),
    ];
    for (e, want) in steps {
        let mut got: Vec<String> =
            engine.process(&e.0, T0 + 400 * DAY).unwrap().into_iter().map(|j| j.postback_id).collect();
        got.sort();
        assert_eq!(got, want, "event {}", e.0.event_id);
    }
    let refused = postback::config::load_str(
        &text.replace(
            "window = \"7d\"\nurl = \"https://pb.example/lt",
            "window = \"10s\"\nurl = \"https://pb.example/lt",
        ),
        std::path::Path::new("w.toml"),
        Vec::<(String, String)>::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(refused.contains("postbacks[0].window: 10s is out of range: must be between 1m and 3650d"), "{refused}");
}

/// `sending = "all"` without `share_other_attribution`: another partner's
/// click details render empty; its own attributions render in full.
#[test]
fn send_all_postbacks_do_not_leak_other_partners_click_details() {
    let text = r#"
[[apps]]
id = "m"
platform = "mobile"

[[partners]]
id = "acme"

[[partners]]
id = "orbit"

[[postbacks]]
id = "private"
name = "orbit | all installs"
partner = "orbit"
event = "install"
sending = "all"
url = "https://pb.example/a?p={partner}&c={click_id}&cmp={campaign_id}"

[[postbacks]]
id = "shared"
name = "orbit | all installs, shared"
partner = "orbit"
event = "install"
sending = "all"
share_other_attribution = true
url = "https://pb.example/b?p={partner}&c={click_id}&cmp={campaign_id}"
"#;
    let load = |t: &str| postback::config::load_str(t, std::path::Path::new("s.toml"), Vec::<(String, String)>::new());
    let config = load(text).unwrap();
    let mut engine = Engine::new(Arc::clone(&config.rules));
    let urls = |engine: &mut Engine, e: Ev| -> Vec<String> {
        let mut u: Vec<String> = engine.process(&e.0, T0 + 400 * DAY).unwrap().into_iter().map(|j| j.url).collect();
        u.sort();
        u
    };
    assert_eq!(
        urls(&mut engine, ev("i1", Install, 0.0).campaign("acme", "cmp-1")),
        ["https://pb.example/a?p=acme&c=&cmp=", "https://pb.example/b?p=acme&c=clk-i1&cmp=cmp-1"]
    );
    assert_eq!(
        urls(&mut engine, ev("i2", Install, 0.0).dev("d2").campaign("orbit", "cmp-2")),
        ["https://pb.example/a?p=orbit&c=clk-i2&cmp=cmp-2", "https://pb.example/b?p=orbit&c=clk-i2&cmp=cmp-2"]
    );
    let refused =
        load(&text.replace("sending = \"all\"\nshare_other_attribution", "share_other_attribution")).unwrap_err();
    assert!(
        refused.to_string().contains(
            "postbacks[1].share_other_attribution: only a postback with sending = \"all\" sees other partners' attributions"
        ),
        "{refused}"
    );
}
