//! Triggers: the facts the rules establish about one event ("this was the
//! device's first payment in its current attribution"). Routing then decides
//! which configured postbacks they fire.

use super::state::Money;
use std::fmt;

/// One established fact. A single event can produce several (a re-engagement
/// that is also a first payment CA and a payment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Trigger {
    Install,
    Reinstall,
    /// Re-engagement by device.
    Reengagement,
    FirstRegistration,
    Registration,
    FirstLogin,
    Login,
    /// First payment of the device (`ca`: of its current attribution).
    FirstMoney {
        money: MoneyKind,
        ca: bool,
    },
    /// Any payment (SDK or server-side).
    AnyMoney {
        custom: bool,
    },
    CustomEvent,
    NewUser,
    /// Re-engagement by user, over all the user's devices.
    UserReengagement,
    /// First payment of the user (`ca`: of the device's current attribution).
    UserFirstMoney {
        money: MoneyKind,
        ca: bool,
    },
}

/// `Money` in a form that orders and hashes inside `Trigger`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MoneyKind {
    Payment,
    VerifiedPayment,
    CustomPayment,
    VerifiedCustomPayment,
}

impl From<Money> for MoneyKind {
    fn from(m: Money) -> MoneyKind {
        match m {
            Money::Payment => MoneyKind::Payment,
            Money::VerifiedPayment => MoneyKind::VerifiedPayment,
            Money::CustomPayment => MoneyKind::CustomPayment,
            Money::VerifiedCustomPayment => MoneyKind::VerifiedCustomPayment,
        }
    }
}

impl From<MoneyKind> for Money {
    fn from(m: MoneyKind) -> Money {
        match m {
            MoneyKind::Payment => Money::Payment,
            MoneyKind::VerifiedPayment => Money::VerifiedPayment,
            MoneyKind::CustomPayment => Money::CustomPayment,
            MoneyKind::VerifiedCustomPayment => Money::VerifiedCustomPayment,
        }
    }
}

impl Trigger {
    /// Stable name: part of every job id, so it must never change.
    pub fn name(self) -> &'static str {
        use MoneyKind::*;
        match self {
            Trigger::Install => "install",
            Trigger::Reinstall => "reinstall",
            Trigger::Reengagement => "reengagement",
            Trigger::FirstRegistration => "first_registration",
            Trigger::Registration => "registration",
            Trigger::FirstLogin => "first_login",
            Trigger::Login => "login",
            Trigger::FirstMoney { money, ca } => match (money, ca) {
                (Payment, false) => "first_payment",
                (Payment, true) => "first_payment_ca",
                (VerifiedPayment, false) => "first_verified_payment",
                (VerifiedPayment, true) => "first_verified_payment_ca",
                (CustomPayment, false) => "first_custom_payment",
                (CustomPayment, true) => "first_custom_payment_ca",
                (VerifiedCustomPayment, false) => "first_verified_custom_payment",
                (VerifiedCustomPayment, true) => "first_verified_custom_payment_ca",
            },
            Trigger::AnyMoney { custom: false } => "payment",
            Trigger::AnyMoney { custom: true } => "custom_payment",
            Trigger::CustomEvent => "custom_event",
            Trigger::NewUser => "new_user",
            Trigger::UserReengagement => "user_reengagement",
            Trigger::UserFirstMoney { money, ca } => match (money, ca) {
                (Payment, false) => "user_first_payment",
                (Payment, true) => "user_first_payment_ca",
                (VerifiedPayment, false) => "user_first_verified_payment",
                (VerifiedPayment, true) => "user_first_verified_payment_ca",
                (CustomPayment, false) => "user_first_custom_payment",
                (CustomPayment, true) => "user_first_custom_payment_ca",
                (VerifiedCustomPayment, false) => "user_first_verified_custom_payment",
                (VerifiedCustomPayment, true) => "user_first_verified_custom_payment_ca",
            },
        }
    }

    /// Triggers established by the user stage rather than the device stage.
    pub fn is_user_level(self) -> bool {
        matches!(self, Trigger::NewUser | Trigger::UserReengagement | Trigger::UserFirstMoney { .. })
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The triggers of one event: a handful at most.
pub type Triggers = Vec<Trigger>;
