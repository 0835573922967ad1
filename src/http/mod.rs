//! The HTTP layer: translation only.
//!
//! Owns routing a request to an interface and a handler, building the
//! [`RequestView`] the protocol reads, bounded body reading, and turning
//! outcomes into responses. What a request *means* is decided elsewhere:
//! [`crate::auth`] (checks, sign-in) and [`crate::api`] (functions).
//!
//! Per interface (prefix `P`):
//!
//! | path | method | auth | answer |
//! |---|---|---|---|
//! | `P` | GET, HEAD | none | the interface's page |
//! | `P common.js`, `P style.css`, `P <kind>.js` | GET, HEAD | none | the page's script and style |
//! | `P` without the slash | GET, HEAD | none | 301 to `P` |
//! | `P api/LoginPrep`, `P api/Login` | POST | none | sherpa JSON |
//! | `P api/<Function>` | POST | session + csrf header | sherpa JSON |
//! | `P api/<Function>` | not POST | none (checked first) | 405 text |
//! | `P api/` | GET | session + csrf header | function list |
//! | `P import`, `P importprogress`, `P export...` (webaccount) | see [`mail`] | | |
//! | anything else under `P` | any | session | 403 text without, 404 with |
//!
//! The client IP and scheme come from [`client`] (the peer, or trusted
//! reverse proxies' headers on a forwarded listener). Every request gets one
//! log line (target `postern::request`) and the HTTP metrics; HTTPS answers
//! get `Strict-Transport-Security`. TLS and connection handling are in
//! [`server`] and [`tls`].
//!
//! Never: decides protocol outcomes itself; reads a body before the caller is
//! authenticated (except sign-in calls) or without a size bound.

pub mod client;
pub mod drain;
pub mod headwatch;
pub mod mail;
pub mod metrics;
pub mod pages;
pub mod response;
pub mod server;
pub mod tls;
pub mod upload;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use self::response::Body;
use crate::api;
use crate::app::Services;
use crate::auth::{Authed, Refused};
use crate::protocol::check::Csrf;
use crate::protocol::sherpa::{self, ApiError, Code};
use crate::protocol::{CookieHeaders, Interface, RequestView};
use crate::telemetry;

/// What a listener serves and how it is reached.
#[derive(Debug)]
pub struct ListenerCtx {
    /// Interfaces, longest prefix first (so `/admin/` wins over `/`).
    pub interfaces: Vec<Interface>,
    /// Whether this listener speaks TLS.
    pub https: bool,
    /// How clients are identified (peer, or trusted reverse proxies).
    pub client: client::ClientIdent,
}

impl ListenerCtx {
    /// A listener context; sorts the interfaces for routing.
    pub fn new(mut interfaces: Vec<Interface>, https: bool) -> ListenerCtx {
        interfaces.sort_by_key(|i| std::cmp::Reverse(i.prefix.len()));
        ListenerCtx {
            interfaces,
            https,
            client: client::ClientIdent::direct(),
        }
    }

    /// In forwarded mode behind the given trusted proxies.
    pub fn forwarded(mut self, trusted: Vec<crate::protocol::forwarded::Cidr>) -> ListenerCtx {
        self.client = client::ClientIdent::forwarded(trusted);
        self
    }
}

/// What the request log line and the HTTP metrics say about a request;
/// filled in while routing. Holds no path, token or cookie.
#[derive(Debug)]
struct RequestLog {
    /// Interface kind; `None` when no interface matched.
    kind: Option<crate::protocol::Kind>,
    /// API function.
    function: Option<telemetry::Function>,
    /// The account of an authenticated request (`admin` for the admin).
    account: Option<String>,
    /// Whether the client reached us over HTTPS.
    https: bool,
    /// The sherpa error code of an API answer.
    code: Option<&'static str>,
}

impl RequestLog {
    fn authed(&mut self, a: &Authed) {
        // Only the log line reads the account: no copy when it is off.
        if !tracing::enabled!(target: "postern::request", tracing::Level::INFO) {
            return;
        }
        self.account = Some(if a.kind == crate::protocol::Kind::WebAdmin {
            "admin".into()
        } else {
            a.account.clone()
        });
    }
}

/// The CSRF header of API calls.
const X_MOX_CSRF: header::HeaderName = header::HeaderName::from_static("x-mox-csrf");
/// The browser's fetch-metadata header read by the cross-site refusal.
const SEC_FETCH_SITE: header::HeaderName = header::HeaderName::from_static("sec-fetch-site");

/// The request headers postern reads, taken in one pass over the map. A
/// look-up hashes the name each time; a browser's request has few headers,
/// so one pass costs less than the six look-ups it replaces.
#[derive(Debug, Default)]
struct Heads<'a> {
    /// Every `Cookie` value, in order.
    cookies: CookieHeaders<'a>,
    /// The first value of each of these, as `HeaderMap::get` would give.
    csrf: Option<&'a [u8]>,
    sec_fetch_site: Option<&'a [u8]>,
    user_agent: Option<&'a HeaderValue>,
    content_type: Option<&'a [u8]>,
    content_length: Option<&'a HeaderValue>,
}

impl<'a> Heads<'a> {
    fn of(headers: &'a HeaderMap) -> Heads<'a> {
        let mut h = Heads::default();
        // Standard names compare by tag; the two custom ones by bytes, and
        // only against other custom names.
        for (name, value) in headers {
            if *name == header::COOKIE {
                h.cookies.push(value.as_bytes());
            } else if *name == header::USER_AGENT {
                h.user_agent.get_or_insert(value);
            } else if *name == header::CONTENT_TYPE {
                h.content_type.get_or_insert(value.as_bytes());
            } else if *name == header::CONTENT_LENGTH {
                h.content_length.get_or_insert(value);
            } else if *name == X_MOX_CSRF {
                h.csrf.get_or_insert(value.as_bytes());
            } else if *name == SEC_FETCH_SITE {
                h.sec_fetch_site.get_or_insert(value.as_bytes());
            }
        }
        h
    }
}

/// `Strict-Transport-Security` on HTTPS answers: one year.
const HSTS: &str = "max-age=31536000";

/// Answers one request. Never fails: every outcome is a response, and every
/// response carries [`response::security_headers`], whichever handler built it.
///
/// Logs one line per request (target `postern::request`: kind, function,
/// status, duration, account) and records the HTTP metrics.
pub async fn handle(
    services: Arc<Services>,
    lctx: Arc<ListenerCtx>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let started = std::time::Instant::now();
    let mut log = RequestLog {
        kind: None,
        function: None,
        account: None,
        https: lctx.https,
        code: None,
    };
    let method = req.method().clone();
    let mut resp = route(&services, &lctx, peer, req, &mut log).await;
    response::security_headers(resp.headers_mut());
    if log.https {
        resp.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            header::HeaderValue::from_static(HSTS),
        );
    }
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    telemetry::http_request(log.kind, status, elapsed);
    if let (Some(kind), Some(function)) = (log.kind, log.function) {
        // The call's latency is its request's: one clock reading for both.
        telemetry::api_call(kind, function, log.code, elapsed);
    }
    tracing::info!(
        target: "postern::request",
        kind = telemetry::kind_name(log.kind),
        method = %method,
        function = log.function.map(telemetry::Function::name),
        status,
        code = log.code,
        duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        account = log.account.as_deref(),
        "request"
    );
    resp
}

async fn route(
    services: &Arc<Services>,
    lctx: &ListenerCtx,
    peer: SocketAddr,
    req: Request<Incoming>,
    log: &mut RequestLog,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let client = lctx.client.resolve(peer.ip(), &parts.headers, lctx.https);
    log.https = client.https;
    let mut heads = Heads::of(&parts.headers);
    if let Some(msg) =
        crate::protocol::crosssite::refusal(parts.method.as_str(), heads.sec_fetch_site)
    {
        return response::text(StatusCode::FORBIDDEN, msg);
    }
    let path = parts.uri.path();
    let Some(iface) = lctx.interfaces.iter().find(|i| path.starts_with(&i.prefix)) else {
        if let Some(i) = lctx.interfaces.iter().find(|i| {
            i.prefix.len() > 1 && path.len() + 1 == i.prefix.len() && i.prefix.starts_with(path)
        }) {
            if matches!(parts.method, Method::GET | Method::HEAD) {
                return response::redirect(&i.prefix);
            }
        }
        return response::text(StatusCode::NOT_FOUND, "404 page not found");
    };
    log.kind = Some(iface.kind);
    let sub = &path[iface.prefix.len()..];
    let view = RequestView {
        cookie_headers: std::mem::take(&mut heads.cookies),
        csrf_header: heads.csrf,
        client_ip: client.client_ip,
        https: client.https,
        forwarded: lctx.client.is_forwarded(),
    };
    let agent = heads.user_agent.and_then(|v| v.to_str().ok()).unwrap_or("");

    if let Some(a) = pages::asset(iface.kind, sub) {
        return match parts.method {
            Method::GET | Method::HEAD => response::asset(a.content_type, a.body),
            _ => response::text(
                StatusCode::METHOD_NOT_ALLOWED,
                "405 - method not allowed - use get",
            ),
        };
    }
    if let Some(function) = sub.strip_prefix("api/") {
        let r = ApiRequest {
            services,
            iface,
            view: &view,
            agent,
            heads: &heads,
            function,
        };
        return api_call(&r, &parts.method, body, log).await;
    }
    if iface.kind == crate::protocol::Kind::WebAccount && mail::is_mail_path(sub) {
        let query = parts.uri.query();
        return Box::pin(mail::handle(
            services,
            iface,
            &view,
            agent,
            &parts.method,
            &parts.headers,
            sub,
            query,
            body,
        ))
        .await;
    }
    match services
        .auth
        .check_in(iface, &view, Csrf::NotRequired, agent)
        .await
    {
        Ok(a) => {
            log.authed(&a);
            response::text(StatusCode::NOT_FOUND, "404 page not found")
        }
        Err(Refused::Failure(f)) => response::text(
            StatusCode::FORBIDDEN,
            &format!("403 - forbidden - {}", f.message()),
        ),
        Err(Refused::RateLimited(d)) => response::too_many(d),
        Err(Refused::Internal) => response::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "500 - internal server error",
        ),
    }
}

/// The borrowed pieces of one API request, handed down the API path.
struct ApiRequest<'a> {
    services: &'a Arc<Services>,
    iface: &'a Interface,
    view: &'a RequestView<'a>,
    agent: &'a str,
    heads: &'a Heads<'a>,
    /// The function name after `api/` (empty for the description).
    function: &'a str,
}

async fn api_call(
    r: &ApiRequest<'_>,
    method: &Method,
    body: Incoming,
    log: &mut RequestLog,
) -> Response<Body> {
    let (iface, function) = (r.iface, r.function);
    let describe = function.is_empty();
    if describe && *method != Method::GET || !describe && *method != Method::POST {
        let want = if describe { "get" } else { "post" };
        return response::text(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("405 - method not allowed - use {want}"),
        );
    }
    // A label from a fixed set: unknown names never become label values.
    let functions = api::functions(iface.kind);
    log.function = Some(if describe {
        telemetry::Function::Describe
    } else {
        match functions.iter().position(|f| *f == function) {
            Some(i) => telemetry::Function::Known(functions[i], i),
            None => telemetry::Function::Other,
        }
    });
    api_answer(r, body, describe, log).await
}

async fn api_answer(
    r: &ApiRequest<'_>,
    body: Incoming,
    describe: bool,
    log: &mut RequestLog,
) -> Response<Body> {
    let iface = r.iface;
    let authed = if api::needs_auth(r.function) {
        match r
            .services
            .auth
            .check_in(iface, r.view, Csrf::Header, r.agent)
            .await
        {
            Ok(a) => {
                log.authed(&a);
                Some(a)
            }
            Err(Refused::Failure(f)) => {
                log.code = Some(f.code().as_str());
                return response::api_error(&ApiError::new(f.code(), f.message()));
            }
            Err(Refused::RateLimited(d)) => {
                log.code = Some("ratelimited");
                return response::too_many(d);
            }
            Err(Refused::Internal) => {
                log.code = Some(Code::ServerError.as_str());
                return response::api_error(&ApiError::server());
            }
        }
    } else {
        None
    };
    if describe {
        let doc = serde_json::json!({ "Kind": iface.kind.name(), "Functions": api::functions(iface.kind) });
        return response::json(StatusCode::OK, doc.to_string().into_bytes());
    }
    match call_function(r, body, authed).await {
        Ok(reply) => {
            response::with_cookies(response::json(StatusCode::OK, reply.body), &reply.cookies)
        }
        Err(e) => {
            log.code = Some(e.code.as_str());
            response::api_error(&e)
        }
    }
}

async fn call_function(
    r: &ApiRequest<'_>,
    body: Incoming,
    authed: Option<Authed>,
) -> Result<api::Reply, ApiError> {
    let services = r.services;
    if !sherpa::is_json_content_type(r.heads.content_type) {
        return Err(ApiError::new(
            Code::BadRequest,
            "content-type must be application/json",
        ));
    }
    let timeout = std::time::Duration::from_secs(services.limits.body_timeout_secs);
    let declared = r.heads.content_length;
    let body = read_body(body, declared, services.limits.api_body_bytes, timeout).await?;
    let params = sherpa::parse_call(&body)?;
    let call = api::Call {
        services,
        iface: r.iface,
        view: r.view,
        agent: r.agent,
        authed,
    };
    api::call(call, r.function, params).await
}

/// Reads a body of at most `limit` bytes (its `Content-Length` is
/// `declared`), arriving within `timeout`.
async fn read_body(
    body: Incoming,
    declared: Option<&HeaderValue>,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::user(format!("request body too large, limit is {limit} bytes"));
    let declared = declared
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    // A small body has usually arrived with the head: then no timer is set.
    let collect = collect_limited(body, limit);
    tokio::pin!(collect);
    let read = match futures_util::FutureExt::now_or_never(&mut collect) {
        Some(read) => read,
        None => match tokio::time::timeout(timeout, collect).await {
            Ok(read) => read,
            Err(_) => {
                return Err(ApiError::user(format!(
                    "timeout reading request body, limit is {} s",
                    timeout.as_secs()
                )));
            }
        },
    };
    match read {
        Ok(b) => Ok(b),
        Err(BodyError::TooLarge) => Err(too_large()),
        Err(BodyError::Read) => Err(ApiError::user("error reading request body")),
    }
}

/// Why [`collect_limited`] gave up.
enum BodyError {
    TooLarge,
    Read,
}

/// A body's bytes, at most `limit` of them. A body that comes in one piece,
/// as a small API call's does, is returned as that piece, without a copy.
async fn collect_limited(mut body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    let mut first = Bytes::new();
    let mut joined: Option<Vec<u8>> = None;
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| BodyError::Read)?.into_data() else {
            continue; // trailers
        };
        total += data.len();
        if total > limit {
            return Err(BodyError::TooLarge);
        }
        match &mut joined {
            Some(v) => v.extend_from_slice(&data),
            None if first.is_empty() => first = data,
            None => {
                let mut v = Vec::with_capacity(total);
                v.extend_from_slice(&first);
                v.extend_from_slice(&data);
                joined = Some(v);
            }
        }
    }
    Ok(joined.map_or(first, Bytes::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One pass finds what the look-ups found: the first value of each
    /// header, every `Cookie` value in order, whatever the order of names.
    #[test]
    fn heads_match_the_header_map_look_ups() {
        let names = [
            header::COOKIE,
            header::USER_AGENT,
            header::CONTENT_TYPE,
            header::CONTENT_LENGTH,
            X_MOX_CSRF,
            SEC_FETCH_SITE,
            header::HOST,
            header::HeaderName::from_static("x-other"),
        ];
        // Rotations and 1-3 values per name: duplicates, splits over
        // inline and heap cookie storage, interleaved names.
        for rot in 0..names.len() {
            for count in 1..=3 {
                let mut map = HeaderMap::new();
                for round in 0..count {
                    for (i, name) in names.iter().cycle().skip(rot).take(names.len()).enumerate() {
                        let v = HeaderValue::from_str(&format!("v{round}-{i}")).expect("value");
                        map.append(name.clone(), v);
                    }
                }
                let h = Heads::of(&map);
                let first = |n: &header::HeaderName| map.get(n).map(|v| v.as_bytes());
                let cookies: Vec<&[u8]> = map
                    .get_all(header::COOKIE)
                    .iter()
                    .map(|v| v.as_bytes())
                    .collect();
                assert_eq!(
                    &h.cookies[..],
                    &cookies[..],
                    "rotation {rot}, {count} values"
                );
                assert_eq!(h.csrf, first(&X_MOX_CSRF));
                assert_eq!(h.sec_fetch_site, first(&SEC_FETCH_SITE));
                assert_eq!(h.user_agent, map.get(header::USER_AGENT));
                assert_eq!(h.content_type, first(&header::CONTENT_TYPE));
                assert_eq!(h.content_length, map.get(header::CONTENT_LENGTH));
            }
        }
        let empty = HeaderMap::new();
        let h = Heads::of(&empty);
        assert!(h.cookies.is_empty() && h.csrf.is_none() && h.user_agent.is_none());
    }
}
