//! Property tests of the rules: invariants that must hold for any order and
//! duplication of events.

use crate::support::rules::{DAY, T0, config};
use postback::domain::device::apply_device;
use postback::domain::engine::{Engine, state_key};
use postback::domain::{App, Attribution, Event, Kind, Platform, Revenue, Routing, Trigger};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

const PARTNERS: [&str; 2] = ["acme", "zeta"];

/// (device index, kind index, day, partner: 0 organic / 1 acme / 2 zeta, verified)
type Raw = (usize, usize, u32, usize, bool);

fn raw_events(devices: usize, max: usize) -> impl Strategy<Value = Vec<Raw>> {
    prop::collection::vec((0..devices, 0..Kind::ALL.len(), 0u32..200, 0usize..3, any::<bool>()), 1..max)
}

/// Turns raw tuples into events with unique ids, then repeats some of them
/// (upstream duplicates) at random positions.
fn build(raw: &[Raw], dups: &[(usize, usize)]) -> Vec<Event> {
    let mut events: Vec<Event> = raw
        .iter()
        .enumerate()
        .map(|(i, &(dev, kind, day, partner, verified))| {
            let kind = Kind::ALL[kind];
            let mut e = Event::new(&format!("e{i}"), "m", &format!("d{dev}"), kind, T0 + i64::from(day) * DAY / 2);
            if partner > 0 {
                let p = PARTNERS[partner - 1];
                e.attribution = Some(Attribution {
                    partner_id: p.into(),
                    campaign_id: format!("{p}-c"),
                    click_id: format!("k{i}"),
                    ..Default::default()
                });
            }
            if matches!(kind, Kind::Payment | Kind::CustomPayment) {
                e.revenue = Some(Revenue {
                    amount: "1.00".into(),
                    currency: "USD".into(),
                    transaction_id: format!("t{i}"),
                    verified,
                });
            }
            if kind == Kind::CustomEvent {
                e.custom = Some(postback::domain::Custom { name: "level_up".into(), params: Default::default() });
            }
            if dev % 2 == 0 {
                e.user_id = format!("u{}", dev / 2);
            }
            e
        })
        .collect();
    for &(from, to) in dups {
        if !events.is_empty() {
            let e = events[from % events.len()].clone();
            let at = to % (events.len() + 1);
            events.insert(at, e);
        }
    }
    events
}

fn dup_strategy() -> impl Strategy<Value = Vec<(usize, usize)>> {
    prop::collection::vec((0usize..1000, 0usize..1000), 0..8)
}

proptest! {
    #[test]
    fn at_most_one_install_per_device(raw in raw_events(1, 40), dups in dup_strategy()) {
        let app = App::new("m", Platform::Mobile);
        let mut state = None;
        let (mut installs, mut fresh_installs) = (0, 0);
        for e in build(&raw, &dups) {
            let out = apply_device(&mut state, &e, &app);
            installs += out.triggers.iter().filter(|t| **t == Trigger::Install).count();
            fresh_installs += usize::from(e.kind == Kind::Install && !out.duplicate);
        }
        prop_assert_eq!(installs, fresh_installs.min(1));
    }

    #[test]
    fn payment_postbacks_equal_distinct_attributed_payments(raw in raw_events(4, 60), dups in dup_strategy()) {
        let config = config("https://pb.example");
        let mut engine = Engine::new(Arc::clone(&config.rules));
        let events = build(&raw, &dups);
        let mut jobs = Vec::new();
        for e in &events {
            jobs.extend(engine.process(e, T0 + 400 * DAY).unwrap());
        }
        // model: a device's first attribution is its first event's; every
        // distinct payment id counts once for that partner
        let mut first: HashMap<&str, &str> = HashMap::new();
        let mut payments: HashSet<(&str, &str)> = HashSet::new();
        for e in &events {
            first.entry(&e.device_id).or_insert_with(|| e.attribution.as_ref().map_or("", |a| a.partner_id.as_str()));
            if e.kind == Kind::Payment {
                payments.insert((&e.device_id, &e.event_id));
            }
        }
        for p in PARTNERS {
            let want = payments.iter().filter(|(d, _)| first[d] == p).count();
            let got = jobs.iter().filter(|j| j.postback_id == format!("{p}.payment")).count();
            prop_assert_eq!(got, want, "partner {}", p);
        }
        let all = jobs.iter().filter(|j| j.postback_id == "orbit.all-payment").count();
        prop_assert_eq!(all, payments.len());
    }

    #[test]
    fn a_transaction_is_counted_once_at_any_distance(raw in raw_events(2, 120), resend in dup_strategy()) {
        let config = config("https://pb.example");
        let mut engine = Engine::new(Arc::clone(&config.rules));
        let mut events = build(&raw, &[]);
        // the same purchase reported again under a new event id, anywhere
        for (k, &(from, to)) in resend.iter().enumerate() {
            let mut e = events[from % events.len()].clone();
            if e.kind != Kind::Payment {
                continue;
            }
            e.event_id = format!("resent-{k}");
            let at = to % (events.len() + 1);
            events.insert(at, e);
        }
        let mut jobs = Vec::new();
        for e in &events {
            jobs.extend(engine.process(e, T0 + 400 * DAY).unwrap());
        }
        let mut first: HashMap<&str, &str> = HashMap::new();
        let mut transactions: HashSet<(&str, &str)> = HashSet::new();
        for e in &events {
            first.entry(&e.device_id).or_insert_with(|| e.attribution.as_ref().map_or("", |a| a.partner_id.as_str()));
            if let (Kind::Payment, Some(r)) = (e.kind, &e.revenue) {
                transactions.insert((&e.device_id, &r.transaction_id));
            }
        }
        for p in PARTNERS {
            let want = transactions.iter().filter(|(d, _)| first[d] == p).count();
            let got = jobs.iter().filter(|j| j.postback_id == format!("{p}.payment")).count();
            prop_assert_eq!(got, want, "partner {}", p);
        }
    }

    #[test]
    fn ca_jobs_follow_the_current_attribution(raw in raw_events(3, 60), dups in dup_strategy()) {
        let config = config("https://pb.example");
        let mut engine = Engine::new(Arc::clone(&config.rules));
        // an independent model of the current partner per device
        let mut current: HashMap<String, Vec<(i64, String)>> = HashMap::new();
        let mut last: HashMap<String, i64> = HashMap::new();
        let mut seen: HashSet<(String, String)> = HashSet::new();
        let mut installed: HashSet<String> = HashSet::new();
        for e in build(&raw, &dups) {
            let jobs = engine.process(&e, T0 + 400 * DAY).unwrap();
            if !seen.insert((e.device_id.clone(), e.event_id.clone())) {
                prop_assert!(jobs.is_empty());
                continue;
            }
            let partner = e.attribution.as_ref().map_or(String::new(), |a| a.partner_id.clone());
            let dev = e.device_id.clone();
            let dormant = e.kind.is_activity() && last.get(&dev).is_some_and(|l| e.timestamp_ms >= *l && e.timestamp_ms - l >= 30 * DAY);
            // a device's first install never reattributes
            let first_install = e.kind == Kind::Install && installed.insert(dev.clone());
            // (start, partner) of the device's attributions, as many as it keeps
            let t = e.timestamp_ms;
            match current.get_mut(&dev) {
                None => { current.insert(dev.clone(), vec![(t, partner.clone())]); }
                Some(h) if dormant && !first_install => {
                    h.push((t, partner.clone()));
                    if h.len() > postback::domain::state::ATTRIBUTIONS_KEPT + 1 {
                        h.remove(0);
                    }
                }
                Some(_) => {}
            }
            if e.kind.is_activity() {
                let l = last.entry(dev.clone()).or_insert(e.timestamp_ms);
                *l = (*l).max(e.timestamp_ms);
            }
            // a late event's CA goes to the attribution of its time
            let h = &current[&dev];
            let at_time = h.iter().rev().find(|(start, _)| *start <= t).unwrap_or(&h[0]);
            for j in jobs.iter().filter(|j| j.attribution == Routing::Ca && j.partner_id != "orbit") {
                prop_assert_eq!(&j.partner_id, &at_time.1, "CA job {} for event {}", j.postback_id, e.event_id);
            }
            let key = state_key("m", &dev);
            prop_assert_eq!(engine.devices[&key].current.partner(), current[&dev].last().unwrap().1.as_str());
        }
    }

    #[test]
    fn job_ids_are_stable_and_unique(raw in raw_events(3, 50), dups in dup_strategy()) {
        let config = config("https://pb.example");
        let events = build(&raw, &dups);
        let run = || {
            let mut engine = Engine::new(Arc::clone(&config.rules));
            events.iter().flat_map(|e| engine.process(e, T0 + 400 * DAY).unwrap()).map(|j| j.job_id).collect::<Vec<_>>()
        };
        let (a, b) = (run(), run());
        prop_assert_eq!(&a, &b);
        let unique: HashSet<&String> = a.iter().collect();
        prop_assert_eq!(unique.len(), a.len());
    }
}

/// Payments of two users over four devices in two apps of one project
/// (user `u{dev % 2}`, device `d{dev}` in app `m` or `m2`).
fn project_payments(raw: &[Raw]) -> Vec<Event> {
    raw.iter()
        .enumerate()
        .map(|(i, &(dev, kind, day, partner, _))| {
            let kind = if kind % 3 == 0 { Kind::Launch } else { Kind::Payment };
            let app = if dev < 2 { "m" } else { "m2" };
            let mut e = Event::new(&format!("e{i}"), app, &format!("d{dev}"), kind, T0 + i64::from(day) * DAY / 2);
            e.user_id = format!("u{}", dev % 2);
            if partner > 0 {
                let p = PARTNERS[partner - 1];
                e.attribution =
                    Some(Attribution { partner_id: p.into(), campaign_id: format!("{p}-c"), ..Default::default() });
            }
            if kind == Kind::Payment {
                e.revenue = Some(Revenue { amount: "1.00".into(), currency: "USD".into(), ..Default::default() });
            }
            e
        })
        .collect()
}

proptest! {
    #[test]
    fn by_user_payments_count_once_per_user_and_attribution_across_a_project(raw in raw_events(4, 80)) {
        let config = config("https://pb.example");
        let mut engine = Engine::new(Arc::clone(&config.rules));
        let mut lifetime: HashSet<(String, String)> = HashSet::new();
        let mut per_attribution: HashSet<(String, String, u32)> = HashSet::new();
        for e in project_payments(&raw) {
            let jobs = engine.process(&e, T0 + 400 * DAY).unwrap();
            let key = state_key(&e.app_id, &e.device_id);
            let (_, seq, _) = engine.devices[&key].attribution_at(e.timestamp_ms);
            for j in &jobs {
                if j.postback_id.ends_with(".first-payment-user") {
                    prop_assert!(lifetime.insert((j.partner_id.clone(), e.user_id.clone())), "second lt for {}", e.user_id);
                }
                if j.postback_id.ends_with(".first-payment-user-ca") {
                    prop_assert!(per_attribution.insert((e.user_id.clone(), key.clone(), seq)), "second CA in {key} #{seq}");
                }
            }
        }
        // one lifetime first payment per user of the project, whichever app it paid in
        let payers: HashSet<&str> = lifetime.iter().map(|(_, u)| u.as_str()).collect();
        prop_assert_eq!(payers.len(), lifetime.len());
    }
}
