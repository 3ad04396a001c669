//! # postback
//!
//! Turns app-tracking events on Kafka into partner postbacks, exactly once.
//!
//! # Layout
//!
//! - [`domain`]: the pure rules engine — events, device and user state,
//!   triggers, routing, URL templates. No I/O; everything else wires it up.
pub mod cli;
pub mod codec;
pub mod config;
pub mod demo;
pub mod domain;
pub mod inspect;
pub mod kafka;
pub mod process;
pub mod send;
pub mod server;
pub mod store;
pub mod telemetry;

/// mimalloc for every binary built on this crate (the service, the
/// benchmarks, the tests): both stages allocate per record, and glibc's
/// malloc and free were the top of the sender's profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
