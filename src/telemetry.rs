//! Logging and metric names.
//!
//! Owns the tracing subscriber set-up, the Prometheus recorder, and the name of
//! every metric postern records (so names are spelled once). Labels are
//! interface kinds, variants and results: never accounts, IPs, paths or tokens.
//!
//! Never: logs secrets (see docs/logging.md).

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

/// `postern_imports_started_total`: mail imports started.
pub const IMPORTS_STARTED: &str = "postern_imports_started_total";
/// `postern_imports_finished_total`: mail imports published.
pub const IMPORTS_FINISHED: &str = "postern_imports_finished_total";
/// `postern_imports_failed_total`: mail imports aborted or failed (nothing stored).
pub const IMPORTS_FAILED: &str = "postern_imports_failed_total";

/// Counts one authentication attempt.
pub fn auth(kind: crate::protocol::Kind, variant: &'static str, result: &'static str) {
    metrics::counter!(AUTH_TOTAL, "kind" => kind.name(), "variant" => variant, "result" => result)
        .increment(1);
}

/// Counts one rate-limited attempt.
pub fn auth_ratelimited(kind: crate::protocol::Kind) {
    metrics::counter!(AUTH_RATELIMITED, "kind" => kind.name()).increment(1);
}

/// Installs the process-wide Prometheus recorder, once; later calls (tests
/// starting several apps in one process) get the same handle.
pub fn recorder() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first (a host program
            // embedding postern); then our handle renders nothing, which is safe.
            let _ = metrics::set_global_recorder(recorder);
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
        .with_writer(std::io::stderr)
        .try_init();
}
