//! A configured postback, compiled: what it fires on, which traffic it is
//! for, and how its request is rendered.

use super::app::Platform;
use super::state::Money;
use super::template::Template;
use super::trigger::{MoneyKind, Trigger};
use super::when::When;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Device-level or user-level variant of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Device,
    User,
}

/// Lifetime (first attribution) or current attribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Routing {
    Lt,
    Ca,
}

impl Routing {
    pub fn as_str(self) -> &'static str {
        match self {
            Routing::Lt => "lt",
            Routing::Ca => "ca",
        }
    }
}

/// attributed: only this partner's traffic; all: every event of the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sending {
    Attributed,
    All,
}

impl Sending {
    pub fn as_str(self) -> &'static str {
        match self {
            Sending::Attributed => "attributed",
            Sending::All => "all",
        }
    }
}

/// The `event` of a postback.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PostbackEvent {
    Install,
    Reinstall,
    Reengagement(Scope),
    NewUser,
    FirstRegistration,
    Registration,
    FirstLogin,
    Login,
    FirstPayment(Scope),
    Payment,
    FirstCustomPayment(Scope),
    CustomPayment,
    /// A custom event, by the app's event name.
    CustomEvent(String),
}

impl PostbackEvent {
    /// The config name of the event.
    pub fn name(&self) -> &'static str {
        match self {
            PostbackEvent::Install => "install",
            PostbackEvent::Reinstall => "reinstall",
            PostbackEvent::Reengagement(_) => "reengagement",
            PostbackEvent::NewUser => "new_user",
            PostbackEvent::FirstRegistration => "first_registration",
            PostbackEvent::Registration => "registration",
            PostbackEvent::FirstLogin => "first_login",
            PostbackEvent::Login => "login",
            PostbackEvent::FirstPayment(_) => "first_payment",
            PostbackEvent::Payment => "payment",
            PostbackEvent::FirstCustomPayment(_) => "first_custom_payment",
            PostbackEvent::CustomPayment => "custom_payment",
            PostbackEvent::CustomEvent(_) => "custom_event",
        }
    }

    /// Events whose attribution is fixed by docs/design.md §1.5 (no `attribution` key).
    pub fn has_fixed_routing(&self) -> bool {
        matches!(
            self,
            PostbackEvent::Install
                | PostbackEvent::Reinstall
                | PostbackEvent::Reengagement(_)
                | PostbackEvent::NewUser
                | PostbackEvent::FirstRegistration
                | PostbackEvent::FirstLogin
        )
    }

    /// Events that take `verified_only`.
    pub fn is_payment(&self) -> bool {
        matches!(
            self,
            PostbackEvent::FirstPayment(_)
                | PostbackEvent::Payment
                | PostbackEvent::FirstCustomPayment(_)
                | PostbackEvent::CustomPayment
        )
    }

    /// Web apps know new users, re-engagements, registrations, logins,
    /// custom payments and custom events (docs/design.md §1.6): no
    /// installs, and no store payments.
    pub fn valid_for(&self, platform: Platform) -> bool {
        platform == Platform::Mobile
            || matches!(
                self,
                PostbackEvent::NewUser
                    | PostbackEvent::Reengagement(_)
                    | PostbackEvent::FirstRegistration
                    | PostbackEvent::Registration
                    | PostbackEvent::FirstLogin
                    | PostbackEvent::Login
                    | PostbackEvent::FirstCustomPayment(_)
                    | PostbackEvent::CustomPayment
                    | PostbackEvent::CustomEvent(_)
            )
    }

    /// Which attribution the postback is sent in.
    pub fn routing(&self, configured: Routing) -> Routing {
        match self {
            PostbackEvent::Install | PostbackEvent::FirstRegistration | PostbackEvent::FirstLogin => Routing::Lt,
            PostbackEvent::Reinstall | PostbackEvent::Reengagement(_) | PostbackEvent::NewUser => Routing::Ca,
            _ => configured,
        }
    }
}

impl fmt::Display for PostbackEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostbackEvent::Reengagement(Scope::User)
            | PostbackEvent::FirstPayment(Scope::User)
            | PostbackEvent::FirstCustomPayment(Scope::User) => write!(f, "{} (by user)", self.name()),
            PostbackEvent::CustomEvent(name) => write!(f, "custom_event {name}"),
            _ => f.write_str(self.name()),
        }
    }
}

/// HTTP method of a postback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
        }
    }
}

/// One configured postback, ready to route and render.
#[derive(Debug, Clone)]
pub struct Postback {
    /// Stable id: part of job ids and metric labels.
    pub id: String,
    /// Display name ("Partner | event").
    pub name: String,
    pub partner_id: String,
    pub event: PostbackEvent,
    pub routing: Routing,
    pub sending: Sending,
    /// The apps it applies to, resolved at load (never empty).
    pub apps: Vec<String>,
    /// Campaign-only postback when not empty.
    pub campaigns: Vec<String>,
    pub verified_only: bool,
    /// Fires only this long after the start of the attribution it is sent in.
    pub window_ms: Option<i64>,
    /// `sending = "all"`: render another partner's attribution details
    /// (click id, campaign, sub-ids, click parameters) instead of empty.
    pub share_other_attribution: bool,
    /// Conditions on the event (`[postbacks.when]`).
    pub when: When,
    /// Fires only on this one of the device's events of its kind (in the
    /// attribution it is sent in for `ca`, over the lifetime for `lt`).
    pub occurrence: Option<u32>,
    pub method: Method,
    pub url: Template,
    pub headers: Vec<(String, Template)>,
    pub body: Option<Template>,
    /// How long a job may wait for delivery, from its creation.
    pub ttl_ms: i64,
}

impl Postback {
    /// Whether rendering in `attributed` must leave out its details: a
    /// send-all postback and an attribution of another partner.
    pub fn hides(&self, attributed: &super::state::Attributed) -> bool {
        self.sending == Sending::All
            && !self.share_other_attribution
            && attributed.source.as_ref().is_some_and(|a| a.partner_id != self.partner_id)
    }

    /// The one trigger this postback fires on.
    pub fn trigger(&self) -> Trigger {
        let ca = self.routing == Routing::Ca;
        let money = |custom: bool| -> MoneyKind {
            match (custom, self.verified_only) {
                (false, false) => Money::Payment.into(),
                (false, true) => Money::VerifiedPayment.into(),
                (true, false) => Money::CustomPayment.into(),
                (true, true) => Money::VerifiedCustomPayment.into(),
            }
        };
        match &self.event {
            PostbackEvent::Install => Trigger::Install,
            PostbackEvent::Reinstall => Trigger::Reinstall,
            PostbackEvent::Reengagement(Scope::Device) => Trigger::Reengagement,
            PostbackEvent::Reengagement(Scope::User) => Trigger::UserReengagement,
            PostbackEvent::NewUser => Trigger::NewUser,
            PostbackEvent::FirstRegistration => Trigger::FirstRegistration,
            PostbackEvent::Registration => Trigger::Registration,
            PostbackEvent::FirstLogin => Trigger::FirstLogin,
            PostbackEvent::Login => Trigger::Login,
            PostbackEvent::FirstPayment(Scope::Device) => Trigger::FirstMoney { money: money(false), ca },
            PostbackEvent::FirstPayment(Scope::User) => Trigger::UserFirstMoney { money: money(false), ca },
            PostbackEvent::Payment => Trigger::AnyMoney { custom: false },
            PostbackEvent::FirstCustomPayment(Scope::Device) => Trigger::FirstMoney { money: money(true), ca },
            PostbackEvent::FirstCustomPayment(Scope::User) => Trigger::UserFirstMoney { money: money(true), ca },
            PostbackEvent::CustomPayment => Trigger::AnyMoney { custom: true },
            PostbackEvent::CustomEvent(_) => Trigger::CustomEvent,
        }
    }

    /// The postback event name as sent in jobs and `{event}`.
    pub fn event_name(&self) -> &'static str {
        self.event.name()
    }
}
