//! Per-postback filters (`[postbacks.when]`): conditions on the event and on
//! the attribution the postback is sent in. Each failed condition says
//! which, so `inspect` and `postback test` can explain a skipped postback.

use super::decimal::Decimal;
use super::event::Event;
use super::state::Attributed;
use std::collections::BTreeMap;

/// An amount in a currency (`"5.00 USD"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    pub amount: Decimal,
    pub currency: String,
}

impl Money {
    /// `"5.00 USD"`.
    pub fn parse(s: &str) -> Option<Money> {
        let (amount, currency) = s.trim().split_once(' ')?;
        let currency = currency.trim();
        let valid = currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase());
        Some(Money { amount: Decimal::parse(amount)?, currency: currency.to_owned() }).filter(|_| valid)
    }
}

/// USD per unit of each currency (`[currency_rates]`); USD itself is 1.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rates(pub BTreeMap<String, Decimal>);

impl Rates {
    /// `amount` of `currency` in USD, when the rate is known.
    pub fn to_usd(&self, amount: &Decimal, currency: &str) -> Option<Decimal> {
        if currency == "USD" {
            return Some(amount.clone());
        }
        self.0.get(currency).map(|rate| amount.mul(rate))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct When {
    /// Country codes, compared without case.
    pub country: Vec<String>,
    /// Operating systems (`ios`, `android`, ...), compared without case.
    pub os: Vec<String>,
    /// Campaigns of the attribution the postback is sent in.
    pub campaigns: Vec<String>,
    pub revenue_min: Option<Money>,
    pub revenue_max: Option<Money>,
    /// Custom event parameters that must be equal.
    pub event_params: BTreeMap<String, String>,
    /// For revenue bounds in another currency than the event's.
    pub rates: Rates,
}

impl When {
    pub fn is_empty(&self) -> bool {
        self.country.is_empty()
            && self.os.is_empty()
            && self.campaigns.is_empty()
            && self.revenue_min.is_none()
            && self.revenue_max.is_none()
            && self.event_params.is_empty()
    }

    /// `Err(why)` when a condition does not hold.
    pub fn check(&self, event: &Event, attributed: &Attributed) -> Result<(), String> {
        let listed = |list: &[String], value: &str| list.iter().any(|v| v.eq_ignore_ascii_case(value));
        if !self.country.is_empty() && !listed(&self.country, &event.device.country) {
            return Err(format!("country '{}' is not in when.country {:?}", event.device.country, self.country));
        }
        if !self.os.is_empty() && !listed(&self.os, &event.device.os) {
            return Err(format!("os '{}' is not in when.os {:?}", event.device.os, self.os));
        }
        let campaign = attributed.campaign();
        if !self.campaigns.is_empty() && !self.campaigns.iter().any(|c| c == campaign) {
            return Err(format!("campaign '{campaign}' is not in when.campaigns {:?}", self.campaigns));
        }
        self.check_revenue(event)?;
        for (name, want) in &self.event_params {
            let got = event.custom.as_ref().and_then(|c| c.params.get(name)).map_or("", String::as_str);
            if got != want {
                return Err(format!("event parameter '{name}' is '{got}', not '{want}'"));
            }
        }
        Ok(())
    }

    fn check_revenue(&self, event: &Event) -> Result<(), String> {
        if self.revenue_min.is_none() && self.revenue_max.is_none() {
            return Ok(());
        }
        let Some(r) = &event.revenue else { return Err("the event has no revenue".into()) };
        let amount = Decimal::parse(&r.amount).ok_or_else(|| format!("revenue '{}' is not a decimal", r.amount))?;
        for (bound, is_min) in [(&self.revenue_min, true), (&self.revenue_max, false)] {
            let Some(bound) = bound else { continue };
            let (got, limit) = if bound.currency == r.currency {
                (amount.clone(), bound.amount.clone())
            } else {
                let convert = |a: &Decimal, c: &str| self.rates.to_usd(a, c);
                match (convert(&amount, &r.currency), convert(&bound.amount, &bound.currency)) {
                    (Some(g), Some(l)) => (g, l),
                    _ => {
                        return Err(format!(
                            "revenue in {} cannot be compared with {} {}: no rate in [currency_rates]",
                            r.currency, bound.amount, bound.currency
                        ));
                    }
                }
            };
            if is_min && got < limit {
                return Err(format!("revenue {} {} is under when.revenue_min", r.amount, r.currency));
            }
            if !is_min && got > limit {
                return Err(format!("revenue {} {} is over when.revenue_max", r.amount, r.currency));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::{Kind, Revenue};

    fn payment(amount: &str, currency: &str) -> Event {
        let mut e = Event::new("e1", "m", "d1", Kind::Payment, 1);
        e.revenue = Some(Revenue { amount: amount.into(), currency: currency.into(), ..Default::default() });
        e
    }

    #[test]
    fn revenue_bounds_hold_at_their_edge_and_convert_by_rate() {
        let rates = Rates(BTreeMap::from([("EUR".to_owned(), Decimal::parse("1.10").unwrap())]));
        let when = When {
            revenue_min: Money::parse("5.00 USD"),
            revenue_max: Money::parse("100 USD"),
            rates,
            ..When::default()
        };
        let none = Attributed::new(None, 0);
        assert_eq!(when.check(&payment("5", "USD"), &none), Ok(()));
        assert_eq!(
            when.check(&payment("4.99", "USD"), &none),
            Err("revenue 4.99 USD is under when.revenue_min".into())
        );
        assert_eq!(when.check(&payment("100.00", "USD"), &none), Ok(()));
        assert_eq!(
            when.check(&payment("100.01", "USD"), &none),
            Err("revenue 100.01 USD is over when.revenue_max".into())
        );
        // 4.55 EUR = 5.005 USD
        assert_eq!(when.check(&payment("4.55", "EUR"), &none), Ok(()));
        assert_eq!(
            when.check(&payment("4.54", "EUR"), &none),
            Err("revenue 4.54 EUR is under when.revenue_min".into())
        );
        assert_eq!(
            when.check(&payment("9", "GBP"), &none),
            Err("revenue in GBP cannot be compared with 5 USD: no rate in [currency_rates]".into())
        );
    }

    #[test]
    fn money_is_an_amount_and_a_currency_code() {
        assert_eq!(
            Money::parse("5.00 USD").map(|m| (m.amount.to_string(), m.currency)),
            Some(("5".into(), "USD".into()))
        );
        for bad in ["5", "USD 5", "5 usd", "5 US", "-5 USD", "5.00  "] {
            assert_eq!(Money::parse(bad), None, "{bad:?}");
        }
    }
}
