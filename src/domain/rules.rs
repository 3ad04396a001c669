//! The compiled rule set: apps, partner parameters and postbacks, indexed by
//! trigger so routing an event touches only the postbacks that can fire.

use super::app::App;
use super::postback::Postback;
use super::privacy::PrivacyPolicy;
use super::trigger::Trigger;
use super::when::Rates;
// looked up several times per event: foldhash, not SipHash (1.2% of the
// processing thread); the keys are the config's
use foldhash::HashMap;
use std::collections::BTreeMap;

/// Per-partner values routing and rendering need.
#[derive(Debug, Clone, Default)]
pub struct PartnerParams {
    /// campaign id -> parameter name -> value (`{partner_param:NAME}`).
    pub campaign_params: BTreeMap<String, BTreeMap<String, String>>,
    /// Parameter values for every campaign (campaign values win).
    pub params: BTreeMap<String, String>,
    /// The partner's name of each postback event (`{partner_event}`); keys
    /// are event names or `custom_event:NAME`.
    pub event_names: BTreeMap<String, String>,
    /// What the partner gets from a device that limits tracking.
    pub privacy: PrivacyPolicy,
}

impl PartnerParams {
    /// `{partner_param:NAME}` for `campaign`: the campaign's value, else
    /// the partner's.
    pub fn param(&self, campaign: &str, name: &str) -> Option<&str> {
        self.campaign_params
            .get(campaign)
            .and_then(|c| c.get(name))
            .or_else(|| self.params.get(name))
            .map(String::as_str)
    }

    /// `{partner_event}`: the partner's name for the postback event
    /// `event` (custom events: `custom_event:NAME`, then the name itself).
    pub fn event_name<'a>(&'a self, event: &'a str, custom: &'a str) -> &'a str {
        if event == "custom_event" {
            // by the app's event name, else the partner's one name for all
            // custom events, else the app's event name as it is
            let key = format!("custom_event:{custom}");
            let named = self.event_names.get(&key).or_else(|| self.event_names.get(event));
            return named.map_or(custom, String::as_str);
        }
        self.event_names.get(event).map_or(event, String::as_str)
    }
}

/// Everything the rules and routing read, built once per config (re)load.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    apps: HashMap<String, App>,
    partners: HashMap<String, PartnerParams>,
    postbacks: Vec<Postback>,
    by_trigger: HashMap<Trigger, Vec<usize>>,
    /// `[currency_rates]`, for `{revenue_usd}`.
    usd_rates: Rates,
}

impl Rules {
    pub fn new(apps: Vec<App>, partners: Vec<(String, PartnerParams)>, postbacks: Vec<Postback>) -> Rules {
        let mut by_trigger: HashMap<Trigger, Vec<usize>> = HashMap::default();
        for (i, pb) in postbacks.iter().enumerate() {
            by_trigger.entry(pb.trigger()).or_default().push(i);
        }
        Rules {
            apps: apps.into_iter().map(|a| (a.id.clone(), a)).collect(),
            partners: partners.into_iter().collect(),
            postbacks,
            by_trigger,
            usd_rates: Rates::default(),
        }
    }

    pub fn with_rates(mut self, rates: Rates) -> Rules {
        self.usd_rates = rates;
        self
    }

    pub fn usd_rates(&self) -> &Rates {
        &self.usd_rates
    }

    pub fn app(&self, id: &str) -> Option<&App> {
        self.apps.get(id)
    }

    pub fn apps(&self) -> impl Iterator<Item = &App> {
        self.apps.values()
    }

    pub fn postbacks(&self) -> &[Postback] {
        &self.postbacks
    }

    /// The postbacks that listen to `trigger`, in config order.
    pub fn postbacks_for(&self, trigger: Trigger) -> impl Iterator<Item = &Postback> {
        self.by_trigger.get(&trigger).into_iter().flatten().map(|&i| &self.postbacks[i])
    }

    pub fn partner(&self, partner: &str) -> Option<&PartnerParams> {
        self.partners.get(partner)
    }

    /// The partner's privacy policy (send, when the partner is unknown).
    pub fn privacy_policy(&self, partner: &str) -> &PrivacyPolicy {
        static SEND: std::sync::LazyLock<PrivacyPolicy> = std::sync::LazyLock::new(PrivacyPolicy::default);
        self.partners.get(partner).map_or(&SEND, |p| &p.privacy)
    }
}
