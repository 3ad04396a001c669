//! Load checks of the per-postback conditions (`[postbacks.when]`,
//! `occurrence`) and of `[currency_rates]`: a condition on a field the
//! postback's event does not have is refused, naming the key.

use super::model::{PostbackConfig, WhenConfig};
use crate::domain::PostbackEvent;
use crate::domain::decimal::Decimal;
use crate::domain::template::Macro;
use crate::domain::template::Template;
use crate::domain::when::{Money, Rates, When};
use std::collections::BTreeMap;

/// The most `occurrence` may ask for.
const MAX_OCCURRENCE: u32 = 1000;

/// `[currency_rates]`: ISO codes to decimals.
pub fn rates(raw: &BTreeMap<String, String>, err: &mut impl FnMut(String, String)) -> Rates {
    let mut out = BTreeMap::new();
    for (code, rate) in raw {
        let key = format!("currency_rates.{code}");
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            err(key, format!("'{code}' is not an ISO 4217 code such as EUR"));
            continue;
        }
        match Decimal::parse(rate) {
            Some(r) if r > Decimal::parse("0").expect("a decimal") => {
                out.insert(code.clone(), r);
            }
            _ => err(key, format!("'{rate}' is not a positive decimal (USD per unit, e.g. \"1.08\")")),
        }
    }
    Rates(out)
}

/// `[postbacks.when]` of one postback.
pub fn when(pc: &PostbackConfig, event: &PostbackEvent, rates: &Rates, err: &mut impl FnMut(&str, String)) -> When {
    let Some(w) = &pc.when else { return When::default() };
    let money = |k: &str, v: &Option<String>, err: &mut dyn FnMut(&str, String)| -> Option<Money> {
        let v = v.as_ref()?;
        if !event.is_payment() {
            err(k, format!("event '{}' has no revenue (only payment events take {k})", event.name()));
            return None;
        }
        let m = Money::parse(v);
        if m.is_none() {
            err(k, format!("'{v}' is not an amount with a currency such as \"5.00 USD\""));
        }
        m
    };
    let revenue_min = money(".when.revenue_min", &w.revenue_min, err);
    let revenue_max = money(".when.revenue_max", &w.revenue_max, err);
    if let (Some(lo), Some(hi)) = (&revenue_min, &revenue_max) {
        if lo.currency == hi.currency && lo.amount > hi.amount {
            err(".when.revenue_max", "is less than when.revenue_min".into());
        }
    }
    if !w.event_params.is_empty() && !matches!(event, PostbackEvent::CustomEvent(_)) {
        err(".when.event_params", format!("event '{}' has no parameters (only custom_event does)", event.name()));
    }
    check_lists(w, err);
    When {
        country: w.country.clone(),
        os: w.os.clone(),
        campaigns: w.campaigns.clone(),
        revenue_min,
        revenue_max,
        event_params: w.event_params.clone(),
        rates: rates.clone(),
    }
}

fn check_lists(w: &WhenConfig, err: &mut impl FnMut(&str, String)) {
    for (k, list) in [(".when.country", &w.country), (".when.os", &w.os), (".when.campaigns", &w.campaigns)] {
        if list.iter().any(String::is_empty) {
            err(k, "has an empty entry (it would match events without the field)".into());
        }
    }
    if w.country.iter().any(|c| c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic())) {
        err(".when.country", format!("{:?}: countries are two-letter codes such as \"US\"", w.country));
    }
}

/// `occurrence`: repeatable device events only, from 1.
pub fn occurrence(pc: &PostbackConfig, event: &PostbackEvent, err: &mut impl FnMut(&str, String)) -> Option<u32> {
    let n = pc.occurrence?;
    let counted = matches!(
        event,
        PostbackEvent::Registration
            | PostbackEvent::Login
            | PostbackEvent::Payment
            | PostbackEvent::CustomPayment
            | PostbackEvent::CustomEvent(_)
    );
    if !counted {
        err(
            ".occurrence",
            format!(
                "event '{}' happens once; only registration, login, payment, custom_payment and custom_event take `occurrence`",
                event.name()
            ),
        );
    } else if pc.verified_only {
        err(".occurrence", "counts every payment and cannot be combined with verified_only".into());
    } else if n == 0 || n > MAX_OCCURRENCE {
        err(".occurrence", format!("{n} is out of range: from 1 (the first) to {MAX_OCCURRENCE}"));
    }
    Some(n)
}

/// `{revenue_usd}` needs rates (USD alone needs none, but a table says the
/// intent was thought through).
pub fn check_macros(templates: &[&Template], rates: &Rates, err: &mut impl FnMut(&str, String)) {
    let uses_usd = templates.iter().flat_map(|t| t.macros()).any(|m| *m == Macro::RevenueUsd);
    if uses_usd && rates.0.is_empty() {
        err(".url", "{revenue_usd} needs [currency_rates] (USD per unit of each currency)".into());
    }
}
