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
pub mod process;
pub mod registry;
pub mod send;
pub mod server;
pub mod store;
pub mod supervisor;
pub mod telemetry;
pub mod trial;

/// mimalloc for every binary built on this crate (the service, the
/// benchmarks, the tests): both stages allocate per record, and glibc's
/// malloc and free were the top of the sender's profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Makes the allocator keep memory freed by this process instead of
/// returning it to the OS, unless `MIMALLOC_PURGE_DELAY` says otherwise.
/// Called by both stages. Each processing batch allocates and frees
/// megabytes; returned to the OS and touched again by the next batch, every
/// page of it came back through a page fault zeroed by the kernel: 5–8% of
/// the processing thread's profile, and 7% more CPU per event than with
/// purging off; the sender used 8% more per postback (alternating bench
/// runs, README *Performance*). The cost: the heap stays at its peak size
/// (bounded by `process.max_batch`, `process.max_batch_bytes` and the
/// sender's in-flight limits).
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's options, which it reads atomically;
        // callable at any time from any thread
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (the Rust
/// bindings name only v2's options); a test checks it holds v3's default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // SAFETY: reads an option
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        // v3's default of 1 s, or already off (another test started a processor)
        assert!(matches!(get(), 1000 | -1), "{}", get());
        keep_freed_memory();
        assert_eq!(get(), -1);
    }
}
