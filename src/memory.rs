//! The allocator: mimalloc for every binary built on this crate, and its
//! settings.

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
/// runs, docs/performance.md). The cost: the heap stays at its peak size
/// (bounded by `process.max_batch`, `process.max_batch_bytes` and the
/// sender's in-flight limits).
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's options, which it reads atomically;
        // callable at any time from any thread
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
    keep_c_heap();
}

/// librdkafka allocates with the C library's malloc: a message and a copy
/// of its payload for every record produced, freed once the broker has it.
/// glibc gave each batch's worth back to the OS (its trim threshold starts
/// at 128 KiB), and the next batch faulted the pages in again: 1.4% of the
/// processing thread's profile, under `rd_kafka_msg_new`, 0.2% with this
/// threshold. An explicit `MALLOC_TRIM_THRESHOLD_` still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_c_heap() {
    if std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_none() {
        // SAFETY: mallopt only sets malloc's tunables; glibc serialises it
        // with its own arenas' locks
        unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, C_TRIM_THRESHOLD) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_c_heap() {}

/// Free memory glibc keeps at the top of a heap before it returns any.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const C_TRIM_THRESHOLD: libc::c_int = 256 << 20;

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
