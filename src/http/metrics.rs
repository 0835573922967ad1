//! The metrics listener: `GET /metrics` in Prometheus text format.
//!
//! Owns nothing but rendering the recorder; served on its own address so it
//! can stay off the public network.

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use metrics_exporter_prometheus::PrometheusHandle;

use super::response::{self, Body};

/// Sets the gauges that are read from the services at scrape time: admin
/// sessions held and rate-limiter entries.
pub async fn collect(services: &crate::app::Services) {
    if let Ok(n) = services.auth.admin.count().await {
        crate::telemetry::sessions_set(crate::protocol::Kind::WebAdmin, n);
    }
    if let Ok(n) = services.auth.limiter.entries().await {
        crate::telemetry::ratelimit_entries(n);
    }
}

/// Answers a request on the metrics listener.
pub fn handle(handle: &PrometheusHandle, req: &Request<Incoming>) -> Response<Body> {
    if req.uri().path() != "/metrics" {
        return response::text(StatusCode::NOT_FOUND, "404 page not found");
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return response::text(
            StatusCode::METHOD_NOT_ALLOWED,
            "405 - method not allowed - use get",
        );
    }
    handle.run_upkeep();
    let mut r = Response::new(response::full(handle.render()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}
