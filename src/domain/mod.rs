//! The pure heart of postback: events, state, rules, triggers, routing and
//! templates. Nothing in here does I/O: no Kafka, RocksDB, HTTP or tokio, so
//! thousands of scenarios run in milliseconds and `inspect` can replay any
//! decision with the same code.
//!
//! The flow for one event is:
//! [`check::check_event`] → [`device::apply_device`] → [`routing::route`]
//! (and for events with a user id, later in the user stage:
//! [`user::apply_user`] → [`routing::route`]).

pub mod app;
pub mod binary;
pub mod check;
pub mod decimal;
pub mod device;
pub mod engine;
pub mod event;
pub mod explain;
pub mod hash;
pub mod job;
pub mod postback;
pub mod privacy;
pub mod reject;
pub mod routing;
pub mod rules;
pub mod state;
pub mod template;
pub mod time;
pub mod trigger;
pub mod user;
pub mod when;

pub use app::{App, Platform};
pub use event::{Attribution, Custom, DeviceInfo, Event, Kind, Revenue};
pub use job::Job;
pub use postback::{Method, Postback, PostbackEvent, Routing, Scope, Sending};
pub use privacy::Privacy;
pub use rules::{PartnerParams, Rules};
pub use state::{Attributed, DeviceState, UserState};
pub use trigger::Trigger;
pub use user::UserActivity;
