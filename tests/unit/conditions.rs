//! Per-postback conditions: `[postbacks.when]` filters, `occurrence` (the
//! nth event of a kind) and `[currency_rates]`, event by event with the
//! exact postbacks fired, and every new key's load error by message.

use crate::support::rules::{DAY, Ev, T0, ev};
use postback::config::{Config, load_str};
use postback::domain::Kind::*;
use postback::domain::engine::Engine;
use std::path::Path;
use std::sync::Arc;

const HEAD: &str = r#"
[[apps]]
id = "m"
platform = "mobile"

[[partners]]
id = "acme"

[[partners]]
id = "zeta"

[currency_rates]
EUR = "1.10"
"#;

const POSTBACKS: &str = r#"
[[postbacks]]
id = "big-us"
name = "acme | big payments in the US and Canada"
partner = "acme"
event = "payment"
url = "https://pb.example/big?rev={revenue_usd}&share={revenue|revenue_share:30}"
[postbacks.when]
country = ["US", "ca"]
revenue_min = "10.00 USD"
revenue_max = "500 USD"

[[postbacks]]
id = "ios-login"
name = "acme | logins on iOS"
partner = "acme"
event = "login"
attribution = "ca"
url = "https://pb.example/login"
[postbacks.when]
os = ["iOS"]

[[postbacks]]
id = "cmp-7"
name = "acme | registrations of campaign 7"
partner = "acme"
event = "registration"
url = "https://pb.example/reg"
[postbacks.when]
campaigns = ["acme-7"]

[[postbacks]]
id = "level-10"
name = "acme | level 10"
partner = "acme"
event = "custom_event"
custom_event = "level_up"
url = "https://pb.example/l10"
[postbacks.when]
event_params = { level = "10" }

[[postbacks]]
id = "acme-3rd-level-ca"
name = "acme | 3rd level-up CA"
partner = "acme"
event = "custom_event"
custom_event = "level_up"
attribution = "ca"
occurrence = 3
url = "https://pb.example/3rd"

[[postbacks]]
id = "zeta-3rd-level-ca"
name = "zeta | 3rd level-up CA"
partner = "zeta"
event = "custom_event"
custom_event = "level_up"
attribution = "ca"
occurrence = 3
url = "https://pb.example/3rd"

[[postbacks]]
id = "2nd-payment-lt"
name = "acme | 2nd payment"
partner = "acme"
event = "payment"
occurrence = 2
url = "https://pb.example/2nd"
"#;

fn config(text: &str) -> Result<Config, String> {
    load_str(text, Path::new("c.toml"), Vec::<(String, String)>::new()).map_err(|e| e.to_string())
}

/// Runs the events and checks the postback ids each one fires; returns
/// the URLs of all jobs.
fn run(steps: Vec<(Ev, &[&str])>) -> Vec<String> {
    let config = config(&format!("{HEAD}{POSTBACKS}")).unwrap();
    let mut engine = Engine::new(Arc::clone(&config.rules));
    let mut urls = Vec::new();
    for (e, want) in steps {
        let jobs = engine.process(&e.0, T0 + 400 * DAY).unwrap();
        let mut got: Vec<&str> = jobs.iter().map(|j| j.postback_id.as_str()).collect();
        got.sort();
        assert_eq!(got, want, "event {}", e.0.event_id);
        urls.extend(jobs.iter().map(|j| j.url.clone()));
    }
    urls
}

#[test]
fn revenue_and_country_filters_hold_at_their_edges() {
    let pay = |id: &str, day: f64, amount: &str| ev(id, Payment, day).pay(amount, false);
    let urls = run(vec![
        (ev("i1", Install, 0.0).from("acme"), &[]),
        (pay("p1", 1.0, "10.00").country("US"), &["big-us"]),
        (pay("p2", 1.1, "9.99").country("US"), &["2nd-payment-lt"]),
        (pay("p3", 1.2, "500").country("ca"), &["big-us"]),
        (pay("p4", 1.3, "500.01").country("CA"), &[]),
        (pay("p5", 1.4, "50").country("DE"), &[]),
        (pay("p6", 1.5, "50"), &[]),
        // 9.10 EUR = 10.01 USD; 9.09 EUR = 9.999 USD
        (pay("p7", 1.6, "9.10").currency("EUR").country("US"), &["big-us"]),
        (pay("p8", 1.7, "9.09").currency("EUR").country("US"), &[]),
        // no rate: not comparable, not sent
        (pay("p9", 1.8, "90").currency("GBP").country("US"), &[]),
    ]);
    assert_eq!(
        urls,
        [
            "https://pb.example/big?rev=10&share=3",
            "https://pb.example/2nd",
            "https://pb.example/big?rev=500&share=150",
            "https://pb.example/big?rev=10.01&share=2.73",
        ]
    );
}

#[test]
fn os_campaign_and_event_parameter_filters() {
    run(vec![
        (ev("i1", Install, 0.0).campaign("acme", "acme-7"), &[]),
        (ev("g1", Login, 1.0).os("ios"), &["ios-login"]),
        (ev("g2", Login, 1.1).os("android"), &[]),
        (ev("g3", Login, 1.2), &[]),
        (ev("r1", Registration, 1.3), &["cmp-7"]),
        (ev("e1", CustomEvent, 1.4).named("level_up").param("level", "10"), &["level-10"]),
        (ev("e2", CustomEvent, 1.5).named("level_up").param("level", "9"), &[]),
        // the third level-up of the attribution, whatever its parameters
        (ev("e3", CustomEvent, 1.6).named("level_up"), &["acme-3rd-level-ca"]),
        (ev("e4", CustomEvent, 1.7).named("level_up").param("level", "10"), &["level-10"]),
    ]);
    // another campaign of the same partner
    run(vec![(ev("i1", Install, 0.0).campaign("acme", "acme-8"), &[]), (ev("r1", Registration, 1.0), &[])]);
}

#[test]
fn the_nth_event_counts_in_the_attribution_it_is_sent_in() {
    let level = |id: &str, day: f64| ev(id, CustomEvent, day).named("level_up");
    run(vec![
        (ev("i1", Install, 0.0).from("acme"), &[]),
        (level("e1", 1.0), &[]),
        (level("e2", 2.0), &[]),
        (level("e2", 2.0), &[]),                             // a duplicate does not count
        (ev("t1", CustomEvent, 2.5).named("tutorial"), &[]), // another name counts apart
        (level("e3", 3.0), &["acme-3rd-level-ca"]),
        (level("e4", 4.0), &[]),
        // re-engaged via zeta: its attribution counts from one again
        (ev("l1", Launch, 40.0).from("zeta"), &[]),
        (level("e5", 41.0), &[]),
        (level("e6", 42.0), &[]),
        (level("e7", 43.0), &["zeta-3rd-level-ca"]),
        (level("e8", 44.0), &[]),
        // a late level-up stamped in acme's attribution is not its 3rd
        (level("e9", 5.0), &[]),
    ]);
    // lifetime: the second payment of the device, across a reattribution
    run(vec![
        (ev("i1", Install, 0.0).from("acme"), &[]),
        (ev("p1", Payment, 1.0).pay("1.00", false), &[]),
        (ev("l1", Launch, 40.0).from("zeta"), &[]),
        (ev("p2", Payment, 41.0).pay("1.00", false), &["2nd-payment-lt"]),
        (ev("p2", Payment, 41.0).pay("1.00", false), &[]),
        (ev("p3", Payment, 42.0).pay("1.00", false), &[]),
    ]);
}

#[test]
fn every_new_key_is_checked_at_load() {
    let base = format!("{HEAD}{POSTBACKS}");
    let cases = [
        (
            "revenue_min = \"10.00 USD\"",
            "revenue_min = \"10\"",
            "postbacks[0].when.revenue_min: '10' is not an amount with a currency such as \"5.00 USD\"",
        ),
        (
            "revenue_max = \"500 USD\"",
            "revenue_max = \"5 USD\"",
            "postbacks[0].when.revenue_max: is less than when.revenue_min",
        ),
        (
            "country = [\"US\", \"ca\"]",
            "country = [\"USA\"]",
            "postbacks[0].when.country: [\"USA\"]: countries are two-letter codes such as \"US\"",
        ),
        (
            "os = [\"iOS\"]",
            "os = [\"\"]",
            "postbacks[1].when.os: has an empty entry (it would match events without the field)",
        ),
        (
            "os = [\"iOS\"]",
            "os = [\"iOS\"]\nrevenue_min = \"1 USD\"",
            "postbacks[1].when.revenue_min: event 'login' has no revenue (only payment events take .when.revenue_min)",
        ),
        (
            "campaigns = [\"acme-7\"]",
            "campaigns = [\"acme-7\"]\nevent_params = { a = \"b\" }",
            "postbacks[2].when.event_params: event 'registration' has no parameters (only custom_event does)",
        ),
        ("occurrence = 2", "occurrence = 0", "postbacks[6].occurrence: 0 is out of range: from 1 (the first) to 1000"),
        (
            "occurrence = 2",
            "occurrence = 2\nverified_only = true",
            "postbacks[6].occurrence: counts every payment and cannot be combined with verified_only",
        ),
        (
            "event = \"login\"",
            "event = \"first_login\"\noccurrence = 2",
            "postbacks[1].occurrence: event 'first_login' happens once; only registration, login, payment, custom_payment and custom_event take `occurrence`",
        ),
        (
            "EUR = \"1.10\"",
            "EUR = \"-1\"",
            "currency_rates.EUR: '-1' is not a positive decimal (USD per unit, e.g. \"1.08\")",
        ),
        ("EUR = \"1.10\"", "eur = \"1.10\"", "currency_rates.eur: 'eur' is not an ISO 4217 code such as EUR"),
        (
            "[currency_rates]\nEUR = \"1.10\"",
            "",
            "postbacks[0].url: {revenue_usd} needs [currency_rates] (USD per unit of each currency)",
        ),
        ("country = [\"US\", \"ca\"]", "country = [\"US\"]\ncity = [\"x\"]", "unknown field `city`"),
    ];
    for (from, to, want) in cases {
        let text = base.replacen(from, to, 1);
        assert_ne!(text, base, "{from}");
        let err = config(&text).unwrap_err();
        assert!(err.contains(want), "{to}:\n{err}");
    }
}
