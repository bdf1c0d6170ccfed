//! How the process uses the C allocator: one arena, and free pages handed back between runs.
//!
//! Owns: `one_arena` (called first thing in `main`) and `release_free_memory` (after each job
//! run). glibc's malloc gives each new thread its own arena (up to 8 per core); the daemon's
//! store reads run on tokio's blocking threads, so the mirror's page caches and each run's
//! transient allocations ended up spread over a dozen arenas, and the pages pinned by the few
//! long-lived objects among them made resident memory creep up run after run (the soak of
//! issue 16: 28 → 32 MB in 25 minutes while heaptrack measured a live heap of 4-5 MB, and
//! `malloc_trim` did not stop it). Measured with every job every 5 s (medians of the first
//! and last minute after a 5-minute warm-up): a dozen arenas +9.5 % resident memory over 13
//! minutes, one arena +1.7 % over 10, one arena with the page caches released after each run
//! (`Store::release_memory`) +1.0 % at 22 MB instead of 32. The daemon's threads mostly wait on the network, so one arena's lock costs nothing
//! measurable. Written by hand because these are two libc calls no crate wraps; swapping the
//! global allocator was measured too and did not help (jemalloc +7.1 %, mimalloc +11 % and
//! 80 MB). Both calls are no-ops where the C library is not glibc (musl builds).

/// Makes every thread allocate from one malloc arena. Call before any thread starts.
pub fn one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a glibc tunable; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Returns the allocator's free pages to the operating system (glibc only).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas under their locks; it takes no
    // pointer from us and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
