//! The tests that need no broker and no network beyond 127.0.0.1: the
//! rules (scenario table, properties, conditions, presets and MyTracker
//! parity), the docs against the code, the module layering, `postback
//! test`, the quickstart's commands, and the processing loop and the demo
//! on librdkafka's mock cluster. `make unit` runs them with the library's
//! and the binary's unit tests; `make test` runs them with the broker tests
//! of `tests/it`.

mod support;

mod conditions;
mod demo;
mod docs;
mod layout;
mod mock;
mod parity;
mod properties;
mod quickstart;
mod scenarios;
mod trial;
