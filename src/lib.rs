//! # postback
//!
//! Turns app-tracking events on Kafka into partner postbacks, exactly once.
//!
//! # Layout
//!
//! Each module uses only the modules listed before it.
//!
//! - [`domain`]: the pure rules engine — events, device and user state,
//!   triggers, routing, URL templates. No I/O, no clock: everything else
//!   wires it up, and `inspect` replays its decisions.
//! - [`codec`]: input events and jobs as JSON or Avro, pure and table-tested.
//! - [`clock`]: the wall clock, the one place that reads it.
//! - [`memory`]: the allocator (mimalloc) and its settings.
//! - [`telemetry`]: the metric registry with one typed method per fact,
//!   readiness, logging and the admin HTTP server.
//! - [`config`]: the TOML file, environment overrides, validation into
//!   [`domain::Rules`], and hot reload.
//! - [`registry`]: a Confluent-compatible schema registry's client and the
//!   writer schemas it gave, by id.
//! - [`store`]: one key-value store per stage partition — RocksDB, and an
//!   in-memory store with the same contract for tests.
//! - [`kafka`]: librdkafka settings, topic administration, the consumer
//!   group context, the murmur2 partitioner.
//! - [`process`]: the processing stage — the device and user [`process::Stage`]s,
//!   the per-stage batch step, and the exactly-once transactional loop.
//! - [`send`]: the sender stage — HTTP delivery with per-partner limits,
//!   retry tiers, the DLQ and the delivery log; its decisions are pure
//!   functions under a thin async shell.
//! - [`replay`]: `dlq replay`, both dead-letter queues back where their
//!   records came from, exactly once and resumable.
//! - [`inspect`]: why a postback did or did not fire, from stored state.
//! - [`trial`]: `postback test`, events through the rules on a copy of the
//!   state, the would-be postbacks printed (and sent, if asked).
//! - [`supervisor`]: runs a process's stages together; the first to fail
//!   stops the others and makes the process exit non-zero.
//! - [`server`]: runs the stages as a service (admin server, reload, signals).
//! - [`demo`]: the whole pipeline on librdkafka's mock cluster.
//! - [`cli`]: argument parsing; `main.rs` only calls into the modules above.
pub mod cli;
pub mod clock;
pub mod codec;
pub mod config;
pub mod demo;
pub mod domain;
pub mod inspect;
pub mod kafka;
pub mod memory;
pub mod process;
pub mod registry;
pub mod replay;
pub mod send;
pub mod server;
pub mod store;
pub mod supervisor;
pub mod telemetry;
pub mod trial;
