//! Helpers of the broker tests: the shared ones of `tests/support/`, and
//! what needs the real broker (its address, topic administration, test
//! environments, processes, the registry, the secured listeners).

// Each test binary uses a different part of the shared helpers.
#![allow(dead_code)]

#[path = "../../support/clients.rs"]
pub mod clients;
#[path = "../../support/demo.rs"]
pub mod demo;
#[path = "../../support/partner.rs"]
pub mod partner;
#[path = "../../support/predict.rs"]
pub mod predict;
#[path = "../../support/rules.rs"]
pub mod rules;
#[path = "../../support/scenarios.rs"]
pub mod scenarios;
#[path = "../../support/tls.rs"]
pub mod tls;

pub mod env;
pub mod expect;
pub mod kafka;
pub mod proc;
pub mod registry;
pub mod secure;
pub mod sender;
