//! Integration tests: one binary, one module per area. Tests that need a
//! broker use `POSTBACK_TEST_BOOTSTRAP` (set by `make test`) or start one.

mod support;
mod trial;

mod conditions;
mod demo;
mod docs;
mod doors;
mod layout;
mod mock;
mod newcomer;
mod ops;
mod outage;
mod parity;
mod process;
mod projects;
mod properties;
mod registry;
mod reload;
mod replay;
mod robust;
mod scale;
mod scenarios;
mod secure;
mod send;
