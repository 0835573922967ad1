//! The background pool: a blocking pool for CPU-heavy work that must not
//! delay requests — argon2id password hashing and the import pipeline.
//!
//! Owns the pool's threads: the blocking threads of a tokio runtime of their
//! own (never driven; only `spawn_blocking` is used), started at a lower CPU
//! priority ([`NICE`]). Where this work and request handling share a core,
//! the scheduler lets a session check in first, and the background work takes
//! what is left: the whole core when requests leave it idle, about 1.5 % of
//! it per thread while requests keep it saturated (so under saturation a
//! sign-in's 40 ms hash stretches to seconds: requests come first, on
//! purpose). Callers bound their own use (the hasher's semaphore, one import
//! per account). Measured in docs/performance.md.
//!
//! Never: runs async request handling, or raises a thread's priority (a
//! process started at a higher nice value keeps it).

/// The nice value of the pool's threads (Linux: per thread): 19, the
/// lowest, gives a thread a CPU weight of 15 against 1024 for a
/// request-handling thread. Nice 10 (weight 110) still let a hash hold the
/// core for a scheduler slice while a session check waited (check p99 5.7×
/// quiet during sign-ins; 1.5× at 19).
pub const NICE: i32 = 19;

/// Most threads the pool starts.
const MAX_THREADS: usize = 64;

/// The pool, made on first use; `None` if it could not be made (then work
/// runs on tokio's blocking pool at the normal priority).
fn pool() -> Option<&'static tokio::runtime::Runtime> {
    static POOL: std::sync::OnceLock<Option<tokio::runtime::Runtime>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .thread_name("postern-bg")
            .max_blocking_threads(MAX_THREADS)
            .on_thread_start(lower_priority)
            .build()
            .map_err(
                |e| tracing::warn!(error = %e, "no background pool; using the main blocking pool"),
            )
            .ok()
    })
    .as_ref()
}

/// Best effort: a failure leaves the thread at the normal priority.
fn lower_priority() {
    let now = rustix::process::getpriority_process(None).unwrap_or(0);
    if now < NICE {
        let _ = rustix::process::setpriority_process(None, NICE);
    }
}

/// Runs `f` on the background pool.
pub fn spawn<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    match pool() {
        Some(rt) => rt.spawn_blocking(f),
        None => tokio::task::spawn_blocking(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn background_threads_run_at_the_lower_priority() {
        let here = rustix::process::getpriority_process(None).expect("getpriority");
        let there = spawn(|| {
            (
                rustix::process::getpriority_process(None).expect("getpriority"),
                std::thread::current().name().map(str::to_string),
            )
        })
        .await
        .expect("join");
        assert_eq!(there, (NICE.max(here), Some("postern-bg".into())));
        assert_eq!(
            rustix::process::getpriority_process(None).expect("getpriority"),
            here,
            "the caller's own priority is untouched"
        );
    }
}
