//! The tests that need a real Kafka broker: `POSTBACK_TEST_BOOTSTRAP` (set
//! by `make test`) or one this binary starts. The tests that need none are
//! in `tests/unit`.

mod support;

mod demo;
mod doors;
mod newcomer;
mod ops;
mod outage;
mod process;
mod projects;
mod registry;
mod reload;
mod replay;
mod robust;
mod scale;
mod secure;
mod send;
