//! Logging and metric names.
//!
//! Owns the tracing subscriber set-up, the Prometheus recorder, and the name of
//! every metric postern records (so names are spelled once). Labels are
//! interface kinds, variants and results: never accounts, IPs, paths or tokens.
//!
//! Never: logs secrets (see docs/logging.md).

mod logtime;
mod requestline;

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use self::slots::Slots;
use crate::protocol::Kind;

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
pub fn sessions_delta(kind: Kind, before: u64, after: u64) {
    let g = metrics::gauge!(SESSIONS, "kind" => kind.name());
    if after > before {
        g.increment((after - before) as f64);
    } else if before > after {
        g.decrement((before - after) as f64);
    }
}

/// Sets `postern_sessions{kind}` outright (admin sessions, at scrape time).
pub fn sessions_set(kind: Kind, n: usize) {
    metrics::gauge!(SESSIONS, "kind" => kind.name()).set(n as f64);
}

/// Handles of the labelled metrics the request path records, in fixed
/// tables indexed by their labels (an interface kind, a status label, a
/// function's place in its interface's list, an authentication result): the
/// registry hashes the whole key (name and labels) on each look-up, a cost
/// paid once per slot here; after that a use is an index, one atomic load
/// and the metric's own atomic update. Until the process-wide recorder is
/// installed nothing is kept (a handle made before it would record nowhere,
/// forever).
mod slots {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Set once the Prometheus recorder is the global one.
    pub static INSTALLED: AtomicBool = AtomicBool::new(false);

    /// `N` handles, each made on first use.
    pub struct Slots<T, const N: usize>([OnceLock<T>; N]);

    impl<T, const N: usize> Slots<T, N> {
        pub const fn new() -> Self {
            Slots([const { OnceLock::new() }; N])
        }

        /// Applies `apply` to the handle in slot `i`, made by `make` on
        /// first use. A slot past the table (a label the table was not
        /// sized for) and any use before the recorder is in get a handle
        /// made for this use alone: slower, never wrong.
        pub fn with(&self, i: usize, make: impl FnOnce() -> T, apply: impl FnOnce(&T)) {
            match self.0.get(i) {
                Some(slot) if INSTALLED.load(Ordering::Relaxed) => apply(slot.get_or_init(make)),
                _ => apply(&make()),
            }
        }
    }
}

/// The `kind` label of a request (and its log line's `kind`): an interface
/// kind, or `none` when no interface matched.
pub fn kind_name(kind: Option<Kind>) -> &'static str {
    kind.map_or("none", Kind::name)
}

/// The `kind` label and its slot.
fn kind_label(kind: Option<Kind>) -> (usize, &'static str) {
    (
        kind.map_or(Kind::ALL.len(), |k| k as usize),
        kind_name(kind),
    )
}

/// How many `kind` labels there are: the kinds and `none`.
const KIND_LABELS: usize = Kind::ALL.len() + 1;

/// The `function` label of an API call: a fixed set per interface, so
/// unknown names never become label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// One of the interface's functions: its name and its place in the
    /// interface's list ([`crate::api::functions`]).
    Known(&'static str, usize),
    /// A name the interface does not have.
    Other,
    /// The function list (`GET api/`).
    Describe,
}

/// Slots per kind for API functions: the longest list and `other` and
/// `describe`, with room to grow (a longer list still works, unslotted).
const FUNCTION_SLOTS: usize = 48;

impl Function {
    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            Function::Known(name, _) => name,
            Function::Other => "other",
            Function::Describe => "describe",
        }
    }

    /// The slot of this function of interface `kind`; past the table for
    /// a function beyond the room the table has.
    fn slot(self, kind: Kind) -> usize {
        let i = match self {
            Function::Known(_, i) if i < FUNCTION_SLOTS - 2 => i,
            Function::Known(..) => return usize::MAX,
            Function::Other => FUNCTION_SLOTS - 2,
            Function::Describe => FUNCTION_SLOTS - 1,
        };
        kind as usize * FUNCTION_SLOTS + i
    }
}

const API_SLOTS: usize = Kind::ALL.len() * FUNCTION_SLOTS;
static API_CALL_SLOTS: Slots<Counter, API_SLOTS> = Slots::new();
static API_DURATION_SLOTS: Slots<Histogram, API_SLOTS> = Slots::new();

/// Records one API call. `code` is the sherpa error code of a failed call.
pub fn api_call(
    kind: Kind,
    function: Function,
    error: Option<&'static str>,
    elapsed: std::time::Duration,
) {
    let (k, f, slot) = (kind.name(), function.name(), function.slot(kind));
    API_CALL_SLOTS.with(
        slot,
        || metrics::counter!(API_CALLS, "kind" => k, "function" => f),
        |c| c.increment(1),
    );
    if let Some(code) = error {
        // Errors are the rare answer: the registry's look-up is fine here.
        metrics::counter!(API_ERRORS, "kind" => k, "function" => f, "code" => code).increment(1);
    }
    API_DURATION_SLOTS.with(
        slot,
        || metrics::histogram!(API_DURATION, "kind" => k, "function" => f),
        |h| h.record(elapsed.as_secs_f64()),
    );
}

/// The `status` label for the codes postern answers with: the code.
const STATUS_EXACT: [(u16, &str); 11] = [
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
/// The `status` label for any other code: its class, so the label needs no
/// allocation and stays bounded.
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const STATUS_LABELS: usize = STATUS_EXACT.len() + STATUS_CLASSES.len();

/// The `status` label of a code and its place among the labels (the exact
/// codes, then the classes).
fn status_label(status: u16) -> (usize, &'static str) {
    if let Some(i) = STATUS_EXACT.iter().position(|(code, _)| *code == status) {
        return (i, STATUS_EXACT[i].1);
    }
    let class = usize::from(status / 100).clamp(1, 5) - 1;
    (STATUS_EXACT.len() + class, STATUS_CLASSES[class])
}

static HTTP_REQUEST_SLOTS: Slots<Counter, { KIND_LABELS * STATUS_LABELS }> = Slots::new();
static HTTP_DURATION_SLOTS: Slots<Histogram, KIND_LABELS> = Slots::new();

/// Records one HTTP request on an interface listener (`kind` `None` when no
/// interface matched).
pub fn http_request(kind: Option<Kind>, status: u16, elapsed: std::time::Duration) {
    let ((ki, k), (si, s)) = (kind_label(kind), status_label(status));
    HTTP_REQUEST_SLOTS.with(
        ki * STATUS_LABELS + si,
        || metrics::counter!(HTTP_REQUESTS, "kind" => k, "status" => s),
        |c| c.increment(1),
    );
    HTTP_DURATION_SLOTS.with(
        ki,
        || metrics::histogram!(HTTP_DURATION, "kind" => k),
        |h| h.record(elapsed.as_secs_f64()),
    );
}

/// Records one password verification.
pub fn password_verify(elapsed: std::time::Duration) {
    metrics::histogram!(PASSWORD_VERIFY_DURATION).record(elapsed.as_secs_f64());
}

/// Sets the rate limiter's entry count.
pub fn ratelimit_entries(n: usize) {
    metrics::gauge!(RATELIMIT_ENTRIES).set(n as f64);
}

/// The `variant` and `result` labels of authentication attempts.
const AUTH_VARIANTS: [&str; 2] = ["websession", "weblogin"];
const AUTH_RESULTS: [&str; 5] = ["ok", "badcreds", "baduser", "disabled", "error"];
const AUTH_SLOTS: usize = Kind::ALL.len() * AUTH_VARIANTS.len() * AUTH_RESULTS.len();
static AUTH_TOTAL_SLOTS: Slots<Counter, AUTH_SLOTS> = Slots::new();

/// The slot of an authentication counter; past the table for labels it
/// does not list.
fn auth_slot(kind: Kind, variant: &str, result: &str) -> usize {
    let place = |list: &[&str], s: &str| list.iter().position(|l| *l == s);
    match (place(&AUTH_VARIANTS, variant), place(&AUTH_RESULTS, result)) {
        (Some(v), Some(r)) => (kind as usize * AUTH_VARIANTS.len() + v) * AUTH_RESULTS.len() + r,
        _ => usize::MAX,
    }
}

/// Counts one authentication attempt.
pub fn auth(kind: Kind, variant: &'static str, result: &'static str) {
    let k = kind.name();
    AUTH_TOTAL_SLOTS.with(
        auth_slot(kind, variant, result),
        || metrics::counter!(AUTH_TOTAL, "kind" => k, "variant" => variant, "result" => result),
        |c| c.increment(1),
    );
}

/// Counts one rate-limited attempt.
pub fn auth_ratelimited(kind: Kind) {
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
                slots::INSTALLED.store(true, std::sync::atomic::Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn status_labels_are_the_code_or_its_class_each_in_its_own_slot() {
        let mut slots = HashSet::new();
        for code in 100..=999u16 {
            let (i, label) = status_label(code);
            assert!(i < STATUS_LABELS, "{code}");
            let want = if STATUS_EXACT.iter().any(|(c, _)| *c == code) {
                code.to_string()
            } else {
                format!("{}xx", (code / 100).min(5))
            };
            assert_eq!(label, want, "{code}");
            slots.insert((i, label));
        }
        // One slot per label, every label reached.
        assert_eq!(slots.len(), STATUS_LABELS);
        assert_eq!(
            slots.iter().map(|s| s.0).collect::<HashSet<_>>().len(),
            STATUS_LABELS
        );
    }

    #[test]
    fn every_function_of_every_interface_has_its_own_slot() {
        let mut slots = HashSet::new();
        for kind in Kind::ALL {
            let functions = crate::api::functions(kind);
            assert!(
                functions.len() <= FUNCTION_SLOTS - 2,
                "{kind}: grow FUNCTION_SLOTS"
            );
            let labels = functions
                .iter()
                .enumerate()
                .map(|(i, f)| Function::Known(f, i))
                .chain([Function::Other, Function::Describe]);
            for f in labels {
                let slot = f.slot(kind);
                assert!(slot < API_SLOTS, "{kind} {f:?}");
                assert!(slots.insert(slot), "{kind} {f:?} shares slot {slot}");
            }
        }
        // Past the table: no slot, so the registry is asked each time.
        assert!(Function::Known("x", FUNCTION_SLOTS).slot(Kind::WebMail) >= API_SLOTS);
    }

    #[test]
    fn kind_labels_have_distinct_slots() {
        let all = Kind::ALL.map(Some).into_iter().chain([None]);
        let slots: HashSet<_> = all.map(kind_label).collect();
        assert_eq!(slots.len(), KIND_LABELS);
        assert!(slots.iter().all(|(i, _)| *i < KIND_LABELS));
        assert!(slots.contains(&(KIND_LABELS - 1, "none")));
    }

    #[test]
    fn auth_labels_have_distinct_slots() {
        let mut slots = HashSet::new();
        for kind in Kind::ALL {
            for v in AUTH_VARIANTS {
                for r in AUTH_RESULTS {
                    let slot = auth_slot(kind, v, r);
                    assert!(slot < AUTH_SLOTS && slots.insert(slot), "{kind} {v} {r}");
                }
            }
        }
        assert!(auth_slot(Kind::WebMail, "weblogin", "other") >= AUTH_SLOTS);
    }
}
