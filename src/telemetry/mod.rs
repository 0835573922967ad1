//! Logging and metric names.
//!
//! Owns the tracing subscriber set-up, the Prometheus recorder, and the name of
//! every metric postern records (so names are spelled once). Labels are
//! interface kinds, variants and results: never accounts, IPs, paths or tokens.
//!
//! Never: logs secrets (see docs/logging.md).

mod logtime;
mod requestline;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// `postern_authentication_total{kind,variant,result}`: authentication
/// attempts and results (variant `weblogin` or `websession`).
pub const AUTH_TOTAL: &str = "postern_authentication_total";
/// `postern_authentication_ratelimited_total{kind}`: attempts refused by the
/// failed-auth rate limiter.
pub const AUTH_RATELIMITED: &str = "postern_authentication_ratelimited_total";
/// `postern_session_actors`: account session actors alive.
pub const SESSION_ACTORS: &str = "postern_session_actors";
/// `postern_session_actor_failures_total`: account session actors that failed.
pub const SESSION_ACTOR_FAILURES: &str = "postern_session_actor_failures_total";

/// `postern_sessions{kind}`: sessions held in memory (account sessions of
/// running account actors, admin sessions).
pub const SESSIONS: &str = "postern_sessions";
/// `postern_api_calls_total{kind,function}`: API calls answered.
pub const API_CALLS: &str = "postern_api_calls_total";
/// `postern_api_errors_total{kind,function,code}`: API calls answered with a
/// sherpa error, by code.
pub const API_ERRORS: &str = "postern_api_errors_total";
/// `postern_api_call_duration_seconds{kind,function}`: API call latency (the
/// request's, read once for both duration histograms).
pub const API_DURATION: &str = "postern_api_call_duration_seconds";
/// `postern_http_requests_total{kind,status}`: HTTP requests answered on the
/// interface listeners (`kind` is `none` when no interface matched).
pub const HTTP_REQUESTS: &str = "postern_http_requests_total";
/// `postern_http_request_duration_seconds{kind}`: time to the response head.
pub const HTTP_DURATION: &str = "postern_http_request_duration_seconds";
/// `postern_password_verify_duration_seconds`: argon2id verification time,
/// including the wait for a hashing slot.
pub const PASSWORD_VERIFY_DURATION: &str = "postern_password_verify_duration_seconds";
/// `postern_ratelimit_entries`: keys held by the failed-auth rate limiter
/// (set at each scrape).
pub const RATELIMIT_ENTRIES: &str = "postern_ratelimit_entries";
/// `postern_imports_started_total`: mail imports started.
pub const IMPORTS_STARTED: &str = "postern_imports_started_total";
/// `postern_imports_finished_total`: mail imports that completed.
pub const IMPORTS_FINISHED: &str = "postern_imports_finished_total";
/// `postern_imports_failed_total`: mail imports that failed or were aborted.
pub const IMPORTS_FAILED: &str = "postern_imports_failed_total";
/// `postern_connections_refused_total{answer}`: connections over a
/// listener's `max_connections`, answered `503` or `closed` (TLS, or too many
/// being refused at once).
pub const CONNECTIONS_REFUSED: &str = "postern_connections_refused_total";

/// Histogram buckets, in seconds: from fast session checks to slow hashing.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Adjusts `postern_sessions{kind}` from a reported count to a new one.
pub fn sessions_delta(kind: crate::protocol::Kind, before: u64, after: u64) {
    let g = metrics::gauge!(SESSIONS, "kind" => kind.name());
    if after > before {
        g.increment((after - before) as f64);
    } else if before > after {
        g.decrement((before - after) as f64);
    }
}

/// Sets `postern_sessions{kind}` outright (admin sessions, at scrape time).
pub fn sessions_set(kind: crate::protocol::Kind, n: usize) {
    metrics::gauge!(SESSIONS, "kind" => kind.name()).set(n as f64);
}

/// Handles of the labelled metrics every request records, kept per thread
/// and label set: the registry hashes the whole key (name and labels) on each
/// look-up, a cost paid once here. Labels are `&'static str`s from fixed
/// tables, so a label set is known by the addresses of its strings. Until the
/// process-wide recorder is installed nothing is kept (a handle made before
/// it would record nowhere, forever).
mod hot {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};

    use metrics::{Counter, Histogram};

    /// Set once the Prometheus recorder is the global one.
    pub static INSTALLED: AtomicBool = AtomicBool::new(false);

    /// The (address, length) of the metric's name and of up to three labels:
    /// integers only, so hashing and comparing a key never reads the strings.
    type Key = [usize; 8];

    type Map<T> = HashMap<Key, T, foldhash::fast::RandomState>;

    thread_local! {
        static COUNTERS: RefCell<Map<Counter>> = RefCell::new(Map::default());
        static HISTOGRAMS: RefCell<Map<Histogram>> = RefCell::new(Map::default());
    }

    fn key(name: &'static str, labels: [&'static str; 3]) -> Key {
        let [a, b, c] = labels.map(|l| (l.as_ptr() as usize, l.len()));
        [
            name.as_ptr() as usize,
            name.len(),
            a.0,
            a.1,
            b.0,
            b.1,
            c.0,
            c.1,
        ]
    }

    /// Adds `n` to the counter `name` with these labels (`""` for unused
    /// slots), made by `make` on first use in this thread.
    pub fn count(
        name: &'static str,
        labels: [&'static str; 3],
        n: u64,
        make: impl FnOnce() -> Counter,
    ) {
        cached(&COUNTERS, name, labels, make, |c| c.increment(n));
    }

    /// Records `v` in the histogram `name` with these labels.
    pub fn record(
        name: &'static str,
        labels: [&'static str; 3],
        v: f64,
        make: impl FnOnce() -> Histogram,
    ) {
        cached(&HISTOGRAMS, name, labels, make, |h| h.record(v));
    }

    /// Uses this thread's handle for `name` and `labels` from `cache`, made
    /// by `make` on first use (or each time, before the recorder is in).
    fn cached<T>(
        cache: &'static std::thread::LocalKey<RefCell<Map<T>>>,
        name: &'static str,
        labels: [&'static str; 3],
        make: impl FnOnce() -> T,
        apply: impl FnOnce(&T),
    ) {
        if !INSTALLED.load(Ordering::Relaxed) {
            return apply(&make());
        }
        cache.with_borrow_mut(|m| apply(m.entry(key(name, labels)).or_insert_with(make)));
    }
}

/// Records one API call. `function` must be a known function name (the
/// caller maps anything else to `other`) and `code` a sherpa code.
pub fn api_call(
    k: &'static str,
    function: &'static str,
    error: Option<&'static str>,
    elapsed: std::time::Duration,
) {
    hot::count(
        API_CALLS,
        [k, function, ""],
        1,
        || metrics::counter!(API_CALLS, "kind" => k, "function" => function),
    );
    if let Some(code) = error {
        hot::count(
            API_ERRORS,
            [k, function, code],
            1,
            || metrics::counter!(API_ERRORS, "kind" => k, "function" => function, "code" => code),
        );
    }
    hot::record(
        API_DURATION,
        [k, function, ""],
        elapsed.as_secs_f64(),
        || metrics::histogram!(API_DURATION, "kind" => k, "function" => function),
    );
}

/// Records one HTTP request on an interface listener.
pub fn http_request(kind: &'static str, status: u16, elapsed: std::time::Duration) {
    let status = status_label(status);
    hot::count(
        HTTP_REQUESTS,
        [kind, status, ""],
        1,
        || metrics::counter!(HTTP_REQUESTS, "kind" => kind, "status" => status),
    );
    hot::record(
        HTTP_DURATION,
        [kind, "", ""],
        elapsed.as_secs_f64(),
        || metrics::histogram!(HTTP_DURATION, "kind" => kind),
    );
}

/// The `status` label: the code for those postern answers with, else its
/// class (`4xx`), so the label needs no allocation and stays bounded.
fn status_label(status: u16) -> &'static str {
    const EXACT: [(u16, &str); 11] = [
        (200, "200"),
        (301, "301"),
        (400, "400"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (413, "413"),
        (429, "429"),
        (431, "431"),
        (500, "500"),
        (503, "503"),
    ];
    if let Some((_, label)) = EXACT.iter().find(|(code, _)| *code == status) {
        return label;
    }
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// Records one password verification.
pub fn password_verify(elapsed: std::time::Duration) {
    metrics::histogram!(PASSWORD_VERIFY_DURATION).record(elapsed.as_secs_f64());
}

/// Sets the rate limiter's entry count.
pub fn ratelimit_entries(n: usize) {
    metrics::gauge!(RATELIMIT_ENTRIES).set(n as f64);
}

/// Counts one authentication attempt.
pub fn auth(kind: crate::protocol::Kind, variant: &'static str, result: &'static str) {
    let k = kind.name();
    hot::count(
        AUTH_TOTAL,
        [k, variant, result],
        1,
        || metrics::counter!(AUTH_TOTAL, "kind" => k, "variant" => variant, "result" => result),
    );
}

/// Counts one rate-limited attempt.
pub fn auth_ratelimited(kind: crate::protocol::Kind) {
    metrics::counter!(AUTH_RATELIMITED, "kind" => kind.name()).increment(1);
}

/// Counts one connection refused over the cap (`answer`: `503` or `closed`).
pub fn connection_refused(answer: &'static str) {
    metrics::counter!(CONNECTIONS_REFUSED, "answer" => answer).increment(1);
}

/// Installs the process-wide Prometheus recorder, once; later calls (tests
/// starting several apps in one process) get the same handle.
pub fn recorder() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Buckets make histograms render as Prometheus histograms
            // (without them the exporter renders summaries).
            let recorder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first (a host program
            // embedding postern); then our handle renders nothing, which is safe.
            if metrics::set_global_recorder(recorder).is_ok() {
                hot::INSTALLED.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            handle
        })
        .clone()
}

/// Sets up logging to stderr, filtered by `RUST_LOG` or `level`.
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .event_format(requestline::LogFormat::default())
        .with_writer(std::io::stderr)
        .try_init();
}
