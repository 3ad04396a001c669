//! The scenario table's data: every rule of docs/design.md §1.3–§1.6,
//! event by event, with the exact postbacks each event fires (its tests:
//! tests/unit/scenarios.rs); and the table as one stream, for the
//! pipeline tests.

pub use super::rules::{DAY, Ev, T0, ev};
use postback::domain::Kind::*;

pub struct Scenario {
    /// The docs/design.md bullets it covers.
    pub covers: &'static [&'static str],
    pub name: &'static str,
    pub steps: Vec<(Ev, Expect)>,
}

pub enum Expect {
    Fires(&'static [&'static str]),
    Rejected(&'static str),
}

pub use Expect::*;

fn s(covers: &'static [&'static str], name: &'static str, steps: Vec<(Ev, Expect)>) -> Scenario {
    Scenario { covers, name, steps }
}

/// Every bullet of docs/design.md §1.3–§1.6 that a scenario must name.
pub const BULLETS: &[&str] = &[
    "1.3 install",
    "1.3 install in earlier first attribution",
    "1.3 duplicate install",
    "1.3 re-install",
    "1.3 re-engagement by device",
    "1.3 window exactly",
    "1.3 window just under",
    "1.3 window just over",
    "1.2 reattribute to organic on",
    "1.2 reattribute to organic off",
    "1.3 first event not an install",
    "1.3 registration",
    "1.3 login",
    "1.3 payment",
    "1.3 first payment ca after re-install",
    "1.3 verified only",
    "1.3 custom payment",
    "1.1 custom payment is not activity",
    "1.3 custom event",
    "1.3 late events",
    "1.1 duplicates",
    "1.4 new user",
    "1.4 user re-engagement",
    "1.4 first payment by user",
    "1.4 user across two devices",
    "1.4 users of a project",
    "1.5 lt in first attribution",
    "1.5 ca in current attribution",
    "1.6 web apps",
    "1.6 custom events on sites",
    "2 sending all",
    "2 campaigns",
];

pub fn scenarios() -> Vec<Scenario> {
    vec![
        s(
            &["1.3 install"],
            "first install of a device fires install in its attribution",
            vec![(ev("i1", Install, 0.0).from("acme"), Fires(&["acme.install", "orbit.all-install"]))],
        ),
        s(
            &["1.3 install", "2 sending all"],
            "an organic install fires only send-all postbacks",
            vec![(ev("i1", Install, 0.0), Fires(&["orbit.all-install"]))],
        ),
        s(
            &["1.3 install in earlier first attribution", "1.3 first event not an install"],
            "install after an attributed launch is sent in that first attribution",
            vec![
                (ev("l1", Launch, 0.0).from("acme"), Fires(&[])),
                (ev("i1", Install, 0.01), Fires(&["acme.install", "orbit.all-install"])),
            ],
        ),
        s(
            &["1.3 duplicate install"],
            "a second install inside the window fires nothing",
            vec![
                (ev("i1", Install, 0.0).from("acme"), Fires(&["acme.install", "orbit.all-install"])),
                (ev("i2", Install, 5.0).from("zeta"), Fires(&[])),
            ],
        ),
        s(
            &["1.3 re-install", "1.5 lt in first attribution", "1.5 ca in current attribution"],
            "re-install after the window reattributes; LT stays, CA moves",
            vec![
                (ev("i1", Install, 0.0).from("acme"), Fires(&["acme.install", "orbit.all-install"])),
                (ev("i2", Install, 31.0).from("zeta"), Fires(&["zeta.reinstall"])),
                (
                    ev("p1", Payment, 32.0).pay("1.00", false),
                    Fires(&[
                        "acme.first-payment",
                        "acme.payment",
                        "orbit.all-payment",
                        "zeta.first-payment-ca",
                        "zeta.payment-ca",
                    ]),
                ),
                (ev("i3", Install, 80.0).from("acme"), Fires(&["acme.reinstall"])),
                (
                    ev("p2", Payment, 81.0).pay("2.00", false),
                    Fires(&["acme.first-payment-ca", "acme.payment", "acme.payment-ca", "orbit.all-payment"]),
                ),
            ],
        ),
        s(
            &["1.3 window exactly", "1.3 re-engagement by device"],
            "activity exactly one window after the last re-engages",
            vec![
                (ev("i1", Install, 0.0).from("acme"), Fires(&["acme.install", "orbit.all-install"])),
                (ev("l1", Launch, 0.0).at_ms(T0 + 30 * DAY).from("zeta"), Fires(&["zeta.reengagement"])),
            ],
        ),
        s(
            &["1.3 window just under"],
            "activity 1 ms short of the window does not re-engage",
            vec![
                (ev("i1", Install, 0.0).from("acme"), Fires(&["acme.install", "orbit.all-install"])),
                (ev("l1", Launch, 0.0).at_ms(T0 + 30 * DAY - 1).from("zeta"), Fires(&[])),
                (
                    ev("r1", Registration, 0.0).at_ms(T0 + 30 * DAY),
                    Fires(&["acme.first-registration", "acme.registration", "acme.registration-ca"]),
                ),
            ],
        ),
        s(
            &["1.3 window just over"],
            "activity 1 ms past the window re-engages",
            vec![
                (ev("i1", Install, 0.0).from("acme"), Fires(&["acme.install", "orbit.all-install"])),
                (ev("l1", Launch, 0.0).at_ms(T0 + 30 * DAY + 1).from("zeta"), Fires(&["zeta.reengagement"])),
            ],
        ),
        s(
            &["1.2 reattribute to organic on"],
            "an organic return starts an organic attribution: CA stops for the old partner",
            vec![
                (ev("i1", Install, 0.0).from("acme"), Fires(&["acme.install", "orbit.all-install"])),
                (ev("l1", Launch, 40.0), Fires(&[])),
                (
                    ev("p1", Payment, 41.0).pay("1.00", false),
                    Fires(&["acme.first-payment", "acme.payment", "orbit.all-payment"]),
                ),
                (ev("i2", Install, 90.0), Fires(&[])),
                (ev("r1", Registration, 91.0), Fires(&["acme.first-registration", "acme.registration"])),
            ],
        ),
        s(
            &["1.2 reattribute to organic off"],
            "an organic return keeps the previous attribution",
            vec![
                (ev("i1", Install, 0.0).app("m2").from("acme"), Fires(&["acme.install", "orbit.all-install"])),
                (ev("l1", Launch, 40.0).app("m2"), Fires(&["acme.reengagement"])),
                (
                    ev("p1", Payment, 41.0).app("m2").pay("1.00", false),
                    Fires(&[
                        "acme.first-payment",
                        "acme.first-payment-ca",
                        "acme.payment",
                        "acme.payment-ca",
                        "orbit.all-payment",
                    ]),
                ),
                (ev("l2", Launch, 80.0).app("m2").from("zeta"), Fires(&["zeta.reengagement"])),
            ],
        ),
        s(
            &["1.3 first payment ca after re-install", "1.3 payment"],
            "first payment is once per lifetime, first payment CA once per attribution",
            vec![
                (ev("i1", Install, 0.0).from("acme"), Fires(&["acme.install", "orbit.all-install"])),
                (
                    ev("p1", Payment, 1.0).pay("1.00", false),
                    Fires(&[
                        "acme.first-payment",
                        "acme.first-payment-ca",
                        "acme.payment",
                        "acme.payment-ca",
                        "orbit.all-payment",
                    ]),
                ),
                (
                    ev("p2", Payment, 2.0).pay("1.00", false),
                    Fires(&["acme.payment", "acme.payment-ca", "orbit.all-payment"]),
                ),
                (ev("i2", Install, 40.0).from("zeta"), Fires(&["zeta.reinstall"])),
                (
                    ev("p3", Payment, 41.0).pay("1.00", false),
                    Fires(&["acme.payment", "orbit.all-payment", "zeta.first-payment-ca", "zeta.payment-ca"]),
                ),
                (
                    ev("p4", Payment, 42.0).pay("1.00", false),
                    Fires(&["acme.payment", "orbit.all-payment", "zeta.payment-ca"]),
                ),
            ],
        ),
        s(
            &["1.3 first payment ca after re-install"],
            "a re-engagement to the same partner is a new attribution",
            vec![
                (ev("i1", Install, 0.0).from("acme"), Fires(&["acme.install", "orbit.all-install"])),
                (
                    ev("p1", Payment, 1.0).pay("1.00", false),
                    Fires(&[
                        "acme.first-payment",
                        "acme.first-payment-ca",
                        "acme.payment",
                        "acme.payment-ca",
                        "orbit.all-payment",
                    ]),
                ),
                (ev("l1", Launch, 40.0).from("acme"), Fires(&["acme.reengagement"])),
                (
                    ev("p2", Payment, 41.0).pay("1.00", false),
                    Fires(&["acme.first-payment-ca", "acme.payment", "acme.payment-ca", "orbit.all-payment"]),
                ),
            ],
        ),
        s(
            &["1.3 first event not an install", "1.3 registration"],
            "a web visit gives the first attribution; one first registration per device",
            vec![
                (ev("v1", Visit, 0.0).app("w").from("acme"), Fires(&[])),
                (
                    ev("r1", Registration, 1.0).app("w").user("u1"),
                    Fires(&["acme.first-registration", "acme.new-user", "acme.registration", "acme.registration-ca"]),
                ),
                (
                    ev("r2", Registration, 2.0).app("w").user("u2"),
                    Fires(&["acme.new-user", "acme.registration", "acme.registration-ca"]),
                ),
            ],
        ),
        s(
            &["1.6 web apps", "1.5 ca in current attribution"],
            "a site attributes by the last visit: an attributed visit moves the current attribution, an organic one does not",
            vec![
                (ev("v1", Visit, 0.0).app("w").from("acme"), Fires(&[])),
                (ev("v2", Visit, 2.0).app("w").from("zeta"), Fires(&[])),
                (ev("v3", Visit, 2.5).app("w"), Fires(&[])),
                (
                    ev("r1", Registration, 3.0).app("w").user("u1"),
                    Fires(&["acme.first-registration", "acme.registration", "zeta.new-user", "zeta.registration-ca"]),
                ),
                // another click of the same partner is a new touch, CA stays with zeta
                (ev("v4", Visit, 3.5).app("w").from("zeta"), Fires(&[])),
                (ev("g1", Login, 4.0).app("w").user("u1"), Fires(&["acme.first-login", "acme.login", "zeta.login-ca"])),
            ],
        ),
        s(
            &["1.3 login", "1.5 ca in current attribution"],
            "first login once per device; login CA follows reattribution",
            vec![
                (ev("i1", Install, 0.0).from("acme"), Fires(&["acme.install", "orbit.all-install"])),
                (ev("g1", Login, 1.0), Fires(&["acme.first-login", "acme.login", "acme.login-ca"])),
                (ev("g2", Login, 2.0), Fires(&["acme.login", "acme.login-ca"])),
                (ev("l1", Launch, 40.0).from("zeta"), Fires(&["zeta.reengagement"])),
                (ev("g3", Login, 41.0), Fires(&["acme.login", "zeta.login-ca"])),
            ],
        ),
        s(
            &["1.3 verified only"],
            "verified_only counts store-verified purchases only",
            vec![
                (ev("i1", Install, 0.0).from("acme"), Fires(&["acme.install", "orbit.all-install"])),
                (
                    ev("p1", Payment, 1.0).pay("1.00", false),
                    Fires(&[
                        "acme.first-payment",
                        "acme.first-payment-ca",
                        "acme.payment",
                        "acme.payment-ca",
                        "orbit.all-payment",
                    ]),
                ),
                (
                    ev("p2", Payment, 2.0).pay("3.00", true),
                    Fires(&[
                        "acme.first-payment-verified",
                        "acme.payment",
                        "acme.payment-ca",
                        "acme.payment-verified",
                        "orbit.all-payment",
                    ]),
                ),
                (
                    ev("p3", Payment, 3.0).pay("3.00", true),
                    Fires(&["acme.payment", "acme.payment-ca", "acme.payment-verified", "orbit.all-payment"]),
                ),
            ],
        ),
        s(
            &["1.3 custom payment", "1.1 custom payment is not activity"],
            "server-side payments: first, CA, any; they never re-engage",
            vec![
                (ev("i1", Install, 0.0).from("acme"), Fires(&["acme.install", "orbit.all-install"])),
                (
                    ev("c1", CustomPayment, 1.0).pay("9.00", false),
                    Fires(&[
                        "acme.custom-payment",
                        "acme.custom-payment-ca",
                        "acme.first-custom-payment",
                        "acme.first-custom-payment-ca",
                    ]),
                ),
                (
                    ev("c2", CustomPayment, 45.0).pay("9.00", false).from("zeta"),
                    Fires(&["acme.custom-payment", "acme.custom-payment-ca"]),
                ),
                (ev("l1", Launch, 46.0).from("zeta"), Fires(&["zeta.reengagement"])),
                (
                    ev("c3", CustomPayment, 47.0).pay("9.00", false),
                    Fires(&["acme.custom-payment", "zeta.custom-payment-ca", "zeta.first-custom-payment-ca"]),
                ),
            ],
        ),
        s(
            &["1.3 custom event"],
            "custom events fire per name, every time",
            vec![
                (ev("i1", Install, 0.0).from("acme"), Fires(&["acme.install", "orbit.all-install"])),
                (ev("e1", CustomEvent, 1.0).named("level_up"), Fires(&["acme.level-up", "acme.level-up-ca"])),
                (ev("e2", CustomEvent, 2.0).named("tutorial"), Fires(&[])),
                (ev("e3", CustomEvent, 3.0).named("level_up"), Fires(&["acme.level-up", "acme.level-up-ca"])),
            ],
        ),
        s(
            &["1.3 first event not an install", "1.1 custom payment is not activity"],
            "a non-activity first event gives the first attribution but starts no clock",
            vec![
                (
                    ev("e1", CustomEvent, 0.0).named("level_up").from("acme"),
                    Fires(&["acme.level-up", "acme.level-up-ca"]),
                ),
                (ev("l1", Launch, 40.0), Fires(&[])),
                (ev("i1", Install, 41.0), Fires(&["acme.install", "orbit.all-install"])),
            ],
        ),
        s(
            &["1.3 late events"],
            "late events never re-engage and never move the clock back",
            vec![
                (ev("i1", Install, 0.0).from("acme"), Fires(&["acme.install", "orbit.all-install"])),
                (ev("l1", Launch, 50.0).from("zeta"), Fires(&["zeta.reengagement"])),
                (ev("l2", Launch, 45.0).from("acme"), Fires(&[])),
                (ev("l3", Launch, 79.0).from("acme"), Fires(&[])),
                (ev("l4", Launch, 109.0).from("acme"), Fires(&["acme.reengagement"])),
            ],
        ),
        s(
            &["1.1 duplicates"],
            "an event id seen before on the device is dropped",
            vec![
                (ev("i1", Install, 0.0).from("acme"), Fires(&["acme.install", "orbit.all-install"])),
                (
                    ev("p1", Payment, 1.0).pay("1.00", false),
                    Fires(&[
                        "acme.first-payment",
                        "acme.first-payment-ca",
                        "acme.payment",
                        "acme.payment-ca",
                        "orbit.all-payment",
                    ]),
                ),
                (ev("p1", Payment, 1.0).pay("1.00", false), Fires(&[])),
                (ev("i1", Install, 0.0).from("acme"), Fires(&[])),
                (ev("p1", Payment, 1.0).dev("d2").pay("1.00", false), Fires(&["orbit.all-payment"])),
            ],
        ),
        s(
            &["1.4 new user"],
            "new user on the first event with a user id, in the current attribution",
            vec![
                (ev("i1", Install, 0.0).from("acme"), Fires(&["acme.install", "orbit.all-install"])),
                (ev("l1", Launch, 40.0).from("zeta"), Fires(&["zeta.reengagement"])),
                (
                    ev("g1", Login, 41.0).user("u1"),
                    Fires(&["acme.first-login", "acme.login", "zeta.login-ca", "zeta.new-user"]),
                ),
                (ev("g2", Login, 42.0).user("u1"), Fires(&["acme.login", "zeta.login-ca"])),
            ],
        ),
        s(
            &["1.4 new user", "1.4 first payment by user"],
            "a payment can be a user's first event",
            vec![
                (ev("i1", Install, 0.0).from("acme"), Fires(&["acme.install", "orbit.all-install"])),
                (
                    ev("p1", Payment, 1.0).user("u1").pay("1.00", false),
                    Fires(&[
                        "acme.first-payment",
                        "acme.first-payment-ca",
                        "acme.first-payment-user",
                        "acme.first-payment-user-ca",
                        "acme.new-user",
                        "acme.payment",
                        "acme.payment-ca",
                        "orbit.all-payment",
                    ]),
                ),
                (
                    ev("p2", Payment, 2.0).user("u1").pay("1.00", false),
                    Fires(&["acme.payment", "acme.payment-ca", "orbit.all-payment"]),
                ),
            ],
        ),
        s(
            &["1.5 ca in current attribution", "1.3 payment"],
            "a late payment belongs to the attribution current at its timestamp",
            vec![
                (ev("i1", Install, 0.0).from("acme"), Fires(&["acme.install", "orbit.all-install"])),
                (ev("l1", Launch, 40.0).from("zeta"), Fires(&["zeta.reengagement"])),
                // stamped on day 20, arriving after the reattribution of day 40
                (
                    ev("p1", Payment, 20.0).pay("1.00", false),
                    Fires(&[
                        "acme.first-payment",
                        "acme.first-payment-ca",
                        "acme.payment",
                        "acme.payment-ca",
                        "orbit.all-payment",
                    ]),
                ),
                (
                    ev("p2", Payment, 41.0).pay("1.00", false),
                    Fires(&["acme.payment", "orbit.all-payment", "zeta.first-payment-ca", "zeta.payment-ca"]),
                ),
                // another late one: acme's first CA payment already fired
                (
                    ev("p3", Payment, 21.0).pay("1.00", false),
                    Fires(&["acme.payment", "acme.payment-ca", "orbit.all-payment"]),
                ),
            ],
        ),
        s(&["1.3 payment"], "a purchase reported again is one transaction, however many events came between", {
            let mut steps = vec![
                (ev("i1", Install, 0.0).from("acme"), Fires(&["acme.install", "orbit.all-install"])),
                (
                    ev("p1", Payment, 0.5).pay("2.00", false).tx("T-1"),
                    Fires(&[
                        "acme.first-payment",
                        "acme.first-payment-ca",
                        "acme.payment",
                        "acme.payment-ca",
                        "orbit.all-payment",
                    ]),
                ),
            ];
            // more events than the event-id ring remembers
            for i in 0..40 {
                steps.push((ev(&format!("l{i}"), Launch, 0.6 + f64::from(i) * 0.001), Fires(&[])));
            }
            steps.push((ev("p2", Payment, 0.7).pay("2.00", false).tx("T-1"), Fires(&[])));
            steps.push((
                ev("p3", Payment, 0.8).pay("2.00", false).tx("T-2"),
                Fires(&["acme.payment", "acme.payment-ca", "orbit.all-payment"]),
            ));
            steps
        }),
        s(
            &["1.4 first payment by user"],
            "by-user first payment CA fires once per attribution, also after paying on another device between",
            vec![
                (
                    ev("i1", Install, 0.0).user("u1").from("acme"),
                    Fires(&["acme.install", "acme.new-user", "orbit.all-install"]),
                ),
                (
                    ev("i2", Install, 1.0).dev("d2").user("u1").from("zeta"),
                    Fires(&["orbit.all-install", "zeta.install"]),
                ),
                (
                    ev("p1", Payment, 2.0).user("u1").pay("5.00", false),
                    Fires(&[
                        "acme.first-payment",
                        "acme.first-payment-ca",
                        "acme.first-payment-user",
                        "acme.first-payment-user-ca",
                        "acme.payment",
                        "acme.payment-ca",
                        "orbit.all-payment",
                    ]),
                ),
                (
                    ev("p2", Payment, 3.0).dev("d2").user("u1").pay("5.00", false),
                    Fires(&[
                        "orbit.all-payment",
                        "zeta.first-payment",
                        "zeta.first-payment-ca",
                        "zeta.first-payment-user-ca",
                        "zeta.payment",
                        "zeta.payment-ca",
                    ]),
                ),
                // back on d1, still in acme's attribution: not a second time
                (
                    ev("p3", Payment, 4.0).user("u1").pay("5.00", false),
                    Fires(&["acme.payment", "acme.payment-ca", "orbit.all-payment"]),
                ),
            ],
        ),
        s(
            &["1.4 users of a project", "1.4 new user"],
            "a user is one user across the apps of a project: mobile then web is one new user",
            vec![
                (
                    ev("i1", Install, 0.0).user("u1").from("acme"),
                    Fires(&["acme.install", "acme.new-user", "orbit.all-install"]),
                ),
                (
                    ev("r1", Registration, 0.1).user("u1"),
                    Fires(&["acme.first-registration", "acme.registration", "acme.registration-ca"]),
                ),
                (ev("v1", Visit, 5.0).app("w").dev("web-1").from("zeta"), Fires(&[])),
                (
                    ev("g1", Login, 5.1).app("w").dev("web-1").user("u1"),
                    Fires(&["zeta.first-login", "zeta.login", "zeta.login-ca"]),
                ),
                // another project counts its users on its own
                (
                    ev("i2", Install, 6.0).app("solo").dev("s-1").user("u1").from("zeta"),
                    Fires(&["orbit.all-install", "zeta.install", "zeta.new-user"]),
                ),
            ],
        ),
        s(
            &["1.4 users of a project", "1.4 first payment by user", "1.4 user re-engagement"],
            "by-user payments and re-engagement count over the project's apps",
            vec![
                (
                    ev("i1", Install, 0.0).user("u1").from("acme"),
                    Fires(&["acme.install", "acme.new-user", "orbit.all-install"]),
                ),
                (
                    ev("c1", CustomPayment, 1.0).user("u1").pay("5.00", false),
                    Fires(&[
                        "acme.custom-payment",
                        "acme.custom-payment-ca",
                        "acme.first-custom-payment",
                        "acme.first-custom-payment-ca",
                        "acme.first-custom-payment-user",
                    ]),
                ),
                // the same device id in another app of the project is another device
                (ev("v1", Visit, 2.0).app("w").from("zeta").user("u1"), Fires(&[])),
                (
                    ev("c2", CustomPayment, 2.1).app("w").user("u1").pay("5.00", false),
                    Fires(&[
                        "zeta.custom-payment",
                        "zeta.custom-payment-ca",
                        "zeta.first-custom-payment",
                        "zeta.first-custom-payment-ca",
                    ]),
                ),
                // active on the site in between: the app's launch is not a user re-engagement
                (ev("v2", Visit, 30.0).app("w").user("u1"), Fires(&[])),
                (ev("l1", Launch, 35.0).user("u1").from("acme"), Fires(&["acme.reengagement"])),
                // 30 days without activity anywhere in the project
                (
                    ev("l2", Launch, 66.0).user("u1").from("acme"),
                    Fires(&["acme.reengagement", "acme.reengagement-user"]),
                ),
            ],
        ),
        s(
            &["1.4 user across two devices", "1.4 first payment by user"],
            "by-user triggers span devices: LT in the first device's attribution",
            vec![
                (
                    ev("i1", Install, 0.0).user("u1").from("acme"),
                    Fires(&["acme.install", "acme.new-user", "orbit.all-install"]),
                ),
                (
                    ev("i2", Install, 1.0).dev("d2").user("u1").from("zeta"),
                    Fires(&["orbit.all-install", "zeta.install"]),
                ),
                (
                    ev("p1", Payment, 2.0).dev("d2").user("u1").pay("5.00", false),
                    Fires(&[
                        "acme.first-payment-user",
                        "orbit.all-payment",
                        "zeta.first-payment",
                        "zeta.first-payment-ca",
                        "zeta.first-payment-user-ca",
                        "zeta.payment",
                        "zeta.payment-ca",
                    ]),
                ),
                (
                    ev("p2", Payment, 3.0).user("u1").pay("5.00", false),
                    Fires(&[
                        "acme.first-payment",
                        "acme.first-payment-ca",
                        "acme.first-payment-user-ca",
                        "acme.payment",
                        "acme.payment-ca",
                        "orbit.all-payment",
                    ]),
                ),
                (
                    ev("c1", CustomPayment, 4.0).dev("d2").user("u1").pay("5.00", false),
                    Fires(&[
                        "acme.first-custom-payment-user",
                        "zeta.custom-payment",
                        "zeta.custom-payment-ca",
                        "zeta.first-custom-payment",
                        "zeta.first-custom-payment-ca",
                    ]),
                ),
            ],
        ),
        s(
            &["1.4 user re-engagement", "1.4 user across two devices"],
            "user re-engagement counts activity on all of the user's devices",
            vec![
                (
                    ev("i1", Install, 0.0).user("u1").from("acme"),
                    Fires(&["acme.install", "acme.new-user", "orbit.all-install"]),
                ),
                (
                    ev("i2", Install, 20.0).dev("d2").user("u1").from("zeta"),
                    Fires(&["orbit.all-install", "zeta.install"]),
                ),
                (ev("l1", Launch, 45.0).user("u1").from("acme"), Fires(&["acme.reengagement"])),
                (
                    ev("l2", Launch, 80.0).dev("d2").user("u1").from("zeta"),
                    Fires(&["zeta.reengagement", "zeta.reengagement-user"]),
                ),
            ],
        ),
        s(
            &["1.6 custom events on sites", "1.5 lt in first attribution", "1.5 ca in current attribution"],
            "a site's custom events go to the first visit's source (lt) and to the last visit's (ca); a late one keeps its own",
            vec![
                (ev("v1", Visit, 0.0).app("w").from("acme"), Fires(&[])),
                (ev("e1", CustomEvent, 0.5).app("w").named("level_up"), Fires(&["acme.level-up", "acme.level-up-ca"])),
                // a visit from another source moves the current attribution (last visit)
                (ev("v2", Visit, 1.0).app("w").from("zeta"), Fires(&[])),
                (ev("e2", CustomEvent, 1.5).app("w").named("level_up"), Fires(&["acme.level-up", "zeta.level-up-ca"])),
                // an organic visit does not take it back; another name fires nothing
                (ev("v3", Visit, 2.0).app("w"), Fires(&[])),
                (ev("e3", CustomEvent, 2.5).app("w").named("level_up"), Fires(&["acme.level-up", "zeta.level-up-ca"])),
                (ev("e4", CustomEvent, 2.6).app("w").named("checkout"), Fires(&[])),
                // late: before the last visit, sent in the attribution current then
                (ev("e5", CustomEvent, 0.7).app("w").named("level_up"), Fires(&["acme.level-up", "acme.level-up-ca"])),
            ],
        ),
        s(
            &["1.6 web apps"],
            "web apps send new user, re-engagement, registration, login, custom payment and custom event postbacks",
            vec![
                (ev("v1", Visit, 0.0).app("w").user("u1").from("acme"), Fires(&["acme.new-user"])),
                (ev("p1", Payment, 1.0).app("w").user("u1").pay("1.00", false), Fires(&[])),
                (
                    ev("c1", CustomPayment, 2.0).app("w").user("u1").pay("1.00", false),
                    Fires(&[
                        "acme.custom-payment",
                        "acme.custom-payment-ca",
                        "acme.first-custom-payment",
                        "acme.first-custom-payment-ca",
                        "acme.first-custom-payment-user",
                    ]),
                ),
                (ev("e1", CustomEvent, 3.0).app("w").named("level_up"), Fires(&["acme.level-up", "acme.level-up-ca"])),
                (
                    ev("v2", Visit, 40.0).app("w").user("u1").from("zeta"),
                    Fires(&["zeta.reengagement", "zeta.reengagement-user"]),
                ),
                (
                    ev("g1", Login, 41.0).app("w").user("u1"),
                    Fires(&["acme.first-login", "acme.login", "zeta.login-ca"]),
                ),
                (ev("i1", Install, 42.0).app("w"), Rejected("kind 'install' is not valid for a web app")),
            ],
        ),
        s(
            &["2 sending all"],
            "send-all postbacks cover organic traffic too",
            vec![
                (ev("i1", Install, 0.0), Fires(&["orbit.all-install"])),
                (ev("p1", Payment, 1.0).pay("1.00", false), Fires(&["orbit.all-payment"])),
            ],
        ),
        s(
            &["2 campaigns"],
            "campaign-only postbacks fire for their campaigns only",
            vec![
                (
                    ev("i1", Install, 0.0).campaign("acme", "cmp-7"),
                    Fires(&["acme.install", "acme.install-cmp7", "orbit.all-install"]),
                ),
                (
                    ev("i2", Install, 0.0).dev("d2").campaign("acme", "cmp-8"),
                    Fires(&["acme.install", "orbit.all-install"]),
                ),
            ],
        ),
        s(
            &["1.1 duplicates"],
            "events of unknown apps and out-of-range times are rejected",
            vec![
                (ev("x1", Launch, 0.0).app("nope"), Rejected("unknown app 'nope': not in the config's [[apps]]")),
                (ev("x2", Launch, 0.0).at_ms(1_000), Rejected("timestamp_ms 1000 is before 2010-01-01")),
            ],
        ),
    ]
}

/// Every event of the table, as one stream: device and user ids are made
/// unique per scenario, so the scenarios do not meet.
pub fn scripted_events() -> Vec<postback::domain::Event> {
    let mut out = Vec::new();
    for (i, sc) in scenarios().into_iter().enumerate() {
        for (ev, _) in sc.steps {
            let mut e = ev.0;
            e.device_id = format!("s{i}-{}", e.device_id);
            if !e.user_id.is_empty() {
                e.user_id = format!("s{i}-{}", e.user_id);
            }
            out.push(e);
        }
    }
    out
}

/// The device id and reason of each step of [`scripted_events`] that the
/// scenario table expects to be rejected.
pub fn scripted_rejections() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, sc) in scenarios().into_iter().enumerate() {
        for (ev, expect) in sc.steps {
            if let Rejected(reason) = expect {
                out.push((format!("s{i}-{}", ev.0.device_id), reason.to_owned()));
            }
        }
    }
    out
}
