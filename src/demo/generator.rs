//! A synthetic, deterministic stream of tracker events with a realistic mix:
//! installs from three partners and organic, launches, re-engagements after
//! the inactivity window (simulated time), registrations, logins, payments
//! (some store-verified), server-side payments and custom events, for a
//! mobile app and a web site. The demo, the benchmarks and the end-to-end
//! tests use it; the same seed always gives the same stream.

use crate::domain::{Attribution, Custom, Event, Kind, Revenue};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const MOBILE_APP: &str = "game-ios";
pub const WEB_APP: &str = "shop-web";
pub const PARTNERS: [&str; 3] = ["acme", "zeta", "orbit"];

const MINUTE: i64 = 60_000;
const DAY: i64 = 86_400_000;

#[derive(Debug, Clone)]
struct Device {
    id: String,
    app: &'static str,
    user: Option<String>,
    clock_ms: i64,
    seen: bool,
}

/// Generator settings.
#[derive(Debug, Clone)]
pub struct Mix {
    pub devices: usize,
    pub seed: u64,
    /// Simulated start time of every device's history.
    pub start_ms: i64,
    /// Share of web devices.
    pub web_share: f64,
}

impl Default for Mix {
    fn default() -> Self {
        Mix { devices: 1000, seed: 7, start_ms: 1_735_689_600_000, web_share: 0.2 }
    }
}

pub struct Generator {
    rng: StdRng,
    devices: Vec<Device>,
    next_id: u64,
}

impl Generator {
    pub fn new(mix: &Mix) -> Generator {
        let mut rng = StdRng::seed_from_u64(mix.seed);
        let users = (mix.devices * 3 / 5).max(1);
        let devices = (0..mix.devices)
            .map(|i| {
                let web = rng.random_bool(mix.web_share);
                Device {
                    id: format!("dev-{i:07}"),
                    app: if web { WEB_APP } else { MOBILE_APP },
                    // most devices log a user in; some users own two devices
                    user: rng.random_bool(0.7).then(|| format!("user-{:07}", rng.random_range(0..users))),
                    clock_ms: mix.start_ms + rng.random_range(0..DAY),
                    seen: false,
                }
            })
            .collect();
        Generator { rng, devices, next_id: 0 }
    }

    /// What to partition an event by so that every event of a user (across
    /// devices) lands in one partition, in order: the device's user, or the
    /// device itself.
    pub fn partition_key<'a>(&'a self, e: &'a Event) -> &'a str {
        let index = e.device_id.strip_prefix("dev-").and_then(|n| n.parse::<usize>().ok());
        index.and_then(|i| self.devices.get(i)).and_then(|d| d.user.as_deref()).unwrap_or(&e.device_id)
    }

    /// The next event of a random device.
    pub fn next_event(&mut self) -> Event {
        let i = self.rng.random_range(0..self.devices.len());
        self.next_id += 1;
        let id = format!("ev-{:09}", self.next_id);
        let mut dev = self.devices[i].clone();
        let (kind, gap) = self.pick(&dev);
        dev.clock_ms += gap;
        let mut e = Event::new(&id, dev.app, &dev.id, kind, dev.clock_ms);
        let reengaging = gap >= 30 * DAY;
        if (!dev.seen || reengaging) && self.rng.random_bool(0.65) {
            e.attribution = Some(self.attribution(&id));
        }
        if dev.seen || kind != Kind::Install {
            e.user_id = dev.user.clone().filter(|_| kind != Kind::Install).unwrap_or_default();
        }
        self.fill(&mut e, &id);
        dev.seen = true;
        self.devices[i] = dev;
        e
    }

    fn pick(&mut self, dev: &Device) -> (Kind, i64) {
        let web = dev.app == WEB_APP;
        if !dev.seen {
            return (if web { Kind::Visit } else { Kind::Install }, 0);
        }
        let gap = if self.rng.random_bool(0.03) {
            self.rng.random_range(30 * DAY..60 * DAY)
        } else {
            self.rng.random_range(MINUTE..2 * DAY)
        };
        let roll = self.rng.random_range(0..100);
        let kind = match (web, roll) {
            (false, 0..=1) => Kind::Install,
            (false, 2..=44) => Kind::Launch,
            (true, 0..=49) => Kind::Visit,
            (_, 50..=54) | (false, 45..=49) => Kind::Impression,
            (_, 55..=61) => Kind::Registration,
            (_, 62..=71) => Kind::Login,
            (false, 72..=79) => Kind::Payment,
            (true, 72..=79) => Kind::Login,
            (_, 80..=84) => Kind::CustomPayment,
            _ => Kind::CustomEvent,
        };
        (kind, gap)
    }

    fn attribution(&mut self, id: &str) -> Attribution {
        let partner = PARTNERS[self.rng.random_range(0..PARTNERS.len())];
        let campaign = format!("cmp-{}", self.rng.random_range(6..10));
        let mut a = Attribution {
            partner_id: partner.into(),
            campaign_id: campaign,
            click_id: format!("clk-{id}"),
            adset: format!("adset-{}", self.rng.random_range(1..4)),
            creative: "banner-a".into(),
            touch_ms: 0,
            ..Default::default()
        };
        a.subs[0] = "s1".into();
        a.click_params.insert("utm_source".into(), partner.into());
        a
    }

    fn fill(&mut self, e: &mut Event, id: &str) {
        e.device.idfa = format!("IDFA-{}", &e.device_id[4..]);
        e.device.country = "de".into();
        e.device.os = if e.app_id == MOBILE_APP { "ios".into() } else { "web".into() };
        match e.kind {
            Kind::Payment | Kind::CustomPayment => {
                let cents = self.rng.random_range(99..9999);
                e.revenue = Some(Revenue {
                    amount: format!("{}.{:02}", cents / 100, cents % 100),
                    currency: "USD".into(),
                    transaction_id: format!("tx-{id}"),
                    verified: self.rng.random_bool(0.8),
                });
            }
            Kind::CustomEvent => {
                let name = if self.rng.random_bool(0.7) { "level_up" } else { "tutorial_done" };
                let level = self.rng.random_range(1..50).to_string();
                e.custom = Some(Custom { name: name.into(), params: [("level".to_owned(), level)].into() });
            }
            _ => {}
        }
    }
}

impl Iterator for Generator {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        Some(self.next_event())
    }
}
