//! Building responses.
//!
//! Owns the body type and every way postern answers: text errors in the
//! seeds' `"<status> - <text> - <detail>"` form, JSON results and errors, and
//! the headers every answer carries. The only place that turns a sherpa code
//! into an HTTP status ([`api_error`]).

use std::convert::Infallible;
use std::sync::LazyLock;

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

/// The headers of one kind of answer: content type, cache control and
/// [`security_headers`].
fn headers_of(content_type: &'static str, cache: &'static str) -> hyper::HeaderMap {
    let mut h = hyper::HeaderMap::with_capacity(8);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    security_headers(&mut h);
    h
}

/// JSON answers' headers, made once: a copy is cheaper than six inserts.
static JSON_HEADERS: LazyLock<hyper::HeaderMap> =
    LazyLock::new(|| headers_of("application/json; charset=utf-8", "no-store"));
/// Text answers' headers, made once.
static TEXT_HEADERS: LazyLock<hyper::HeaderMap> =
    LazyLock::new(|| headers_of("text/plain; charset=utf-8", "no-store"));

fn with_headers(
    status: StatusCode,
    headers: &hyper::HeaderMap,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    *r.headers_mut() = headers.clone();
    r
}

/// The headers every answer carries, whatever built it (pages, API
/// answers, errors, downloads, event streams): the Content-Security-Policy
/// (which also forbids framing), the older `X-Frame-Options` for browsers
/// without `frame-ancestors`, `nosniff` and a same-origin referrer.
/// `Cache-Control` is set by each kind of answer.
/// Headers a handler set already are kept. A map that has a
/// Content-Security-Policy already has all four: only this function sets
/// that header (the prebuilt maps of `headers_of` are filled by it), so
/// most answers cost one look-up here instead of four.
pub fn security_headers(h: &mut hyper::HeaderMap) {
    if h.contains_key(header::CONTENT_SECURITY_POLICY) {
        return;
    }
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
    with_headers(status, &TEXT_HEADERS, format!("{msg}\n"))
}

/// The Content-Security-Policy of every page: nothing from elsewhere, no
/// inline script, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// A static file (pages, scripts, styles), revalidated on each load so an
/// upgrade is picked up at once.
pub fn asset(content_type: &'static str, body: &'static str) -> Response<Body> {
    static PAGES: LazyLock<[(&str, hyper::HeaderMap); 3]> = LazyLock::new(|| {
        use super::pages::{CSS, HTML, JS};
        [HTML, JS, CSS].map(|t| (t, headers_of(t, "no-cache")))
    });
    match PAGES.iter().find(|(t, _)| *t == content_type) {
        Some((_, h)) => with_headers(StatusCode::OK, h, body),
        None => with_headers(StatusCode::OK, &headers_of(content_type, "no-cache"), body),
    }
}

/// A JSON API answer (`Cache-Control: no-store`).
pub fn json(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    with_headers(status, &JSON_HEADERS, body)
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
