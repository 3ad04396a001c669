//! A rule set with a postback for every event kind in both flavours for two
//! partners, plus "send all" and campaign-only postbacks; and an event
//! builder. Postback ids read `partner.event[-flavour]`.

use postback::config::{self, Config};
use postback::domain::{Attribution, Custom, Event, Kind, Revenue};
use std::path::Path;

pub const T0: i64 = 1_735_689_600_000; // 2025-01-01T00:00:00Z
pub const DAY: i64 = 86_400_000;

/// (id suffix, event, extra keys)
const KINDS: &[(&str, &str, &str)] = &[
    ("install", "install", ""),
    ("reinstall", "reinstall", ""),
    ("reengagement", "reengagement", ""),
    ("reengagement-user", "reengagement", "by = \"user\""),
    ("new-user", "new_user", ""),
    ("first-registration", "first_registration", ""),
    ("registration", "registration", ""),
    ("registration-ca", "registration", "attribution = \"ca\""),
    ("first-login", "first_login", ""),
    ("login", "login", ""),
    ("login-ca", "login", "attribution = \"ca\""),
    ("first-payment", "first_payment", ""),
    ("first-payment-ca", "first_payment", "attribution = \"ca\""),
    ("first-payment-user", "first_payment", "by = \"user\""),
    ("first-payment-user-ca", "first_payment", "by = \"user\"\nattribution = \"ca\""),
    ("first-payment-verified", "first_payment", "verified_only = true"),
    ("payment", "payment", ""),
    ("payment-ca", "payment", "attribution = \"ca\""),
    ("payment-verified", "payment", "verified_only = true"),
    ("first-custom-payment", "first_custom_payment", ""),
    ("first-custom-payment-ca", "first_custom_payment", "attribution = \"ca\""),
    ("first-custom-payment-user", "first_custom_payment", "by = \"user\""),
    ("custom-payment", "custom_payment", ""),
    ("custom-payment-ca", "custom_payment", "attribution = \"ca\""),
    ("level-up", "custom_event", "custom_event = \"level_up\""),
    ("level-up-ca", "custom_event", "custom_event = \"level_up\"\nattribution = \"ca\""),
];

pub fn config_text(sink: &str) -> String {
    let mut t = String::from(
        "[[apps]]\nid = \"m\"\nplatform = \"mobile\"\n\n\
         [[apps]]\nid = \"m2\"\nplatform = \"mobile\"\nreattribute_to_organic = false\n\n\
         [[apps]]\nid = \"w\"\nplatform = \"web\"\ninactivity_window = \"30d\"\n\n\
         [[apps]]\nid = \"solo\"\nplatform = \"mobile\"\nproject = \"other\"\n\n\
         [[partners]]\nid = \"acme\"\n[partners.campaign_params]\n\"cmp-7\" = { key = \"k7\" }\n\n\
         [[partners]]\nid = \"zeta\"\n\n[[partners]]\nid = \"orbit\"\n\n",
    );
    for partner in ["acme", "zeta"] {
        for (suffix, event, extra) in KINDS {
            t.push_str(&format!(
                "[[postbacks]]\nid = \"{partner}.{suffix}\"\nname = \"{partner} | {suffix}\"\npartner = \"{partner}\"\nevent = \"{event}\"\n{extra}\n\
                 url = \"{sink}/{partner}/{suffix}?click={{click_id}}&ev={{event_id}}&dev={{device_id}}&rev={{revenue}}&pb={{postback_id}}\"\n\n"
            ));
        }
    }
    t.push_str(&format!(
        "[[postbacks]]\nid = \"orbit.all-install\"\nname = \"orbit | all installs\"\npartner = \"orbit\"\nevent = \"install\"\nsending = \"all\"\n\
         url = \"{sink}/orbit/all-install?p={{partner|default:organic}}&ev={{event_id}}\"\n\n\
         [[postbacks]]\nid = \"orbit.all-payment\"\nname = \"orbit | all payments\"\npartner = \"orbit\"\nevent = \"payment\"\nsending = \"all\"\n\
         url = \"{sink}/orbit/all-payment?p={{partner|default:organic}}&ev={{event_id}}\"\n\n\
         [[postbacks]]\nid = \"acme.install-cmp7\"\nname = \"acme | install cmp-7\"\npartner = \"acme\"\nevent = \"install\"\ncampaigns = [\"cmp-7\"]\n\
         url = \"{sink}/acme/install-cmp7?key={{partner_param:key}}&ev={{event_id}}\"\n\n"
    ));
    t
}

pub fn config(sink: &str) -> Config {
    config::load_str(&config_text(sink), Path::new("rules.toml"), Vec::<(String, String)>::new())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Builder for test events.
#[derive(Clone)]
pub struct Ev(pub Event);

pub fn ev(id: &str, kind: Kind, day: f64) -> Ev {
    Ev(Event::new(id, "m", "d1", kind, T0 + (day * DAY as f64) as i64))
}

impl Ev {
    pub fn at_ms(mut self, ms: i64) -> Ev {
        self.0.timestamp_ms = ms;
        self
    }
    pub fn app(mut self, app: &str) -> Ev {
        self.0.app_id = app.into();
        self
    }
    pub fn dev(mut self, device: &str) -> Ev {
        self.0.device_id = device.into();
        self
    }
    pub fn user(mut self, user: &str) -> Ev {
        self.0.user_id = user.into();
        self
    }
    pub fn from(self, partner: &str) -> Ev {
        self.campaign(partner, &format!("{partner}-cmp"))
    }
    pub fn campaign(mut self, partner: &str, campaign: &str) -> Ev {
        self.0.attribution = Some(Attribution {
            partner_id: partner.into(),
            campaign_id: campaign.into(),
            click_id: format!("clk-{}", self.0.event_id),
            ..Default::default()
        });
        self
    }
    pub fn pay(mut self, amount: &str, verified: bool) -> Ev {
        self.0.revenue = Some(Revenue {
            amount: amount.into(),
            currency: "USD".into(),
            transaction_id: format!("tx-{}", self.0.event_id),
            verified,
        });
        self
    }
    /// The payment's transaction id (by default `tx-<event id>`).
    pub fn tx(mut self, id: &str) -> Ev {
        if let Some(r) = &mut self.0.revenue {
            r.transaction_id = id.into();
        }
        self
    }
    pub fn country(mut self, country: &str) -> Ev {
        self.0.device.country = country.into();
        self
    }
    pub fn os(mut self, os: &str) -> Ev {
        self.0.device.os = os.into();
        self
    }
    pub fn param(mut self, name: &str, value: &str) -> Ev {
        if let Some(c) = &mut self.0.custom {
            c.params.insert(name.into(), value.into());
        }
        self
    }
    /// The payment's currency (USD by default).
    pub fn currency(mut self, code: &str) -> Ev {
        if let Some(r) = &mut self.0.revenue {
            r.currency = code.into();
        }
        self
    }
    pub fn named(mut self, name: &str) -> Ev {
        self.0.custom = Some(Custom { name: name.into(), params: Default::default() });
        self
    }
}
