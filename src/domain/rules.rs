//! The compiled rule set: apps, partner parameters and postbacks, indexed by
//! trigger so routing an event touches only the postbacks that can fire.

use super::app::App;
use super::postback::Postback;
use super::trigger::Trigger;
use super::when::Rates;
// looked up several times per event: foldhash, not SipHash (1.2% of the
// processing thread); the keys are the config's
use foldhash::HashMap;
use std::collections::BTreeMap;

/// Per-partner values routing needs.
#[derive(Debug, Clone, Default)]
pub struct PartnerParams {
    /// campaign id -> parameter name -> value (`{partner_param:NAME}`).
    pub campaign_params: BTreeMap<String, BTreeMap<String, String>>,
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

    pub fn partner_params(&self, partner: &str, campaign: &str) -> Option<&BTreeMap<String, String>> {
        self.partners.get(partner)?.campaign_params.get(campaign)
    }
}
