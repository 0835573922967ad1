//! Building responses.
//!
//! Owns the body type and every way postern answers: text errors in the
//! seeds' `"<status> - <text> - <detail>"` form, JSON results and errors, and
//! the headers every answer carries. The only place that turns a sherpa code
//! into an HTTP status ([`api_error`]).

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use crate::protocol::sherpa::ApiError;

/// The body of every response.
pub type Body = BoxBody<Bytes, Infallible>;

/// A body from bytes.
pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

fn base(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    // Room for every header an answer gets, so the map is allocated once.
    *r.headers_mut() = hyper::HeaderMap::with_capacity(16);
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    security_headers(h);
    r
}

/// The headers every answer carries, whatever built it (pages, API
/// answers, errors, downloads, event streams): the Content-Security-Policy
/// (which also forbids framing), the older `X-Frame-Options` for browsers
/// without `frame-ancestors`, `nosniff` and a same-origin referrer.
/// `Cache-Control` is set by each kind of answer.
/// Headers a handler set already are kept.
pub fn security_headers(h: &mut hyper::HeaderMap) {
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in fixed {
        h.entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    }
}

/// A plain-text answer, e.g. `403 - forbidden - unknown session token`.
/// Never cached: it says something about this request's credentials.
pub fn text(status: StatusCode, msg: &str) -> Response<Body> {
    let mut r = base(status, "text/plain; charset=utf-8", format!("{msg}\n"));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The Content-Security-Policy of every page: nothing from elsewhere, no
/// inline script, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// A static file (pages, scripts, styles), revalidated on each load so an
/// upgrade is picked up at once.
pub fn asset(content_type: &'static str, body: &'static str) -> Response<Body> {
    let mut r = base(StatusCode::OK, content_type, body);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// A JSON API answer (`Cache-Control: no-store`).
pub fn json(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut r = base(status, "application/json; charset=utf-8", body);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A sherpa error answer, with the status its code calls for.
pub fn api_error(e: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::OK);
    json(status, e.to_json())
}

/// 429 with `Retry-After` in whole seconds (at least 1).
pub fn too_many(retry_after: std::time::Duration) -> Response<Body> {
    let mut r = text(
        StatusCode::TOO_MANY_REQUESTS,
        "429 - too many auth attempts",
    );
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    r
}

/// Adds `Set-Cookie` headers.
pub fn with_cookies(mut r: Response<Body>, cookies: &[String]) -> Response<Body> {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

/// A redirect (to the interface root when the trailing slash is missing).
pub fn redirect(location: &str) -> Response<Body> {
    let mut r = text(StatusCode::MOVED_PERMANENTLY, "301 - moved permanently");
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}
