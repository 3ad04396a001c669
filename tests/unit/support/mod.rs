//! Helpers of the tests that need no broker: the shared ones of
//! `tests/support/`. The broker's address and the helpers that start one
//! are not here, so a test in this binary cannot reach a broker.

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
