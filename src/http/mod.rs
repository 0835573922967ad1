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
//! | anything else under `P` | any | session | 403 text without, 404 with |
//!
//! Never: decides protocol outcomes itself; reads a body before the caller is
//! authenticated (except sign-in calls) or without a size bound.

pub mod metrics;
pub mod pages;
pub mod response;
pub mod server;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap};
use hyper::{Method, Request, Response, StatusCode};

use self::response::Body;
use crate::api;
use crate::app::Services;
use crate::auth::{Authed, Refused};
use crate::protocol::check::Csrf;
use crate::protocol::sherpa::{self, ApiError, Code};
use crate::protocol::{Interface, RequestView};

/// What a listener serves and how it is reached.
#[derive(Debug)]
pub struct ListenerCtx {
    /// Interfaces, longest prefix first (so `/admin/` wins over `/`).
    pub interfaces: Vec<Interface>,
    /// Whether this listener speaks TLS.
    pub https: bool,
}

impl ListenerCtx {
    /// A listener context; sorts the interfaces for routing.
    pub fn new(mut interfaces: Vec<Interface>, https: bool) -> ListenerCtx {
        interfaces.sort_by_key(|i| std::cmp::Reverse(i.prefix.len()));
        ListenerCtx { interfaces, https }
    }
}

/// Answers one request. Never fails: every outcome is a response, and every
/// response carries [`response::security_headers`], whichever handler built it.
pub async fn handle(
    services: Arc<Services>,
    lctx: Arc<ListenerCtx>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let mut resp = route(services, lctx, peer, req).await;
    response::security_headers(resp.headers_mut());
    resp
}

async fn route(
    services: Arc<Services>,
    lctx: Arc<ListenerCtx>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let Some(iface) = lctx.interfaces.iter().find(|i| path.starts_with(&i.prefix)) else {
        if let Some(i) = lctx.interfaces.iter().find(|i| {
            i.prefix.len() > 1 && path.len() + 1 == i.prefix.len() && i.prefix.starts_with(&path)
        }) {
            if matches!(*req.method(), Method::GET | Method::HEAD) {
                return response::redirect(&i.prefix);
            }
        }
        return response::text(StatusCode::NOT_FOUND, "404 page not found");
    };
    let sub = &path[iface.prefix.len()..];
    let (parts, body) = req.into_parts();
    let view = RequestView {
        cookie_headers: parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .map(|v| v.as_bytes())
            .collect(),
        csrf_header: parts.headers.get("x-mox-csrf").map(|v| v.as_bytes()),
        client_ip: Some(peer.ip().to_canonical()),
        https: lctx.https,
        forwarded: false,
    };
    let agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");

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
        return api_call(
            &services,
            iface,
            &view,
            agent,
            &parts.method,
            &parts.headers,
            function,
            body,
        )
        .await;
    }
    match services
        .auth
        .check(iface.kind, &view, Csrf::NotRequired, agent)
        .await
    {
        Ok(_) => response::text(StatusCode::NOT_FOUND, "404 page not found"),
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

#[expect(
    clippy::too_many_arguments,
    reason = "the pieces of one request, borrowed"
)]
async fn api_call(
    services: &Arc<Services>,
    iface: &Interface,
    view: &RequestView<'_>,
    agent: &str,
    method: &Method,
    headers: &HeaderMap,
    function: &str,
    body: Incoming,
) -> Response<Body> {
    let describe = function.is_empty();
    if describe && *method != Method::GET || !describe && *method != Method::POST {
        let want = if describe { "get" } else { "post" };
        return response::text(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("405 - method not allowed - use {want}"),
        );
    }
    let authed = if api::needs_auth(function) {
        match services
            .auth
            .check(iface.kind, view, Csrf::Header, agent)
            .await
        {
            Ok(a) => Some(a),
            Err(Refused::Failure(f)) => {
                return response::api_error(&ApiError::new(f.code(), f.message()));
            }
            Err(Refused::RateLimited(d)) => return response::too_many(d),
            Err(Refused::Internal) => return response::api_error(&ApiError::server()),
        }
    } else {
        None
    };
    if describe {
        let doc = serde_json::json!({ "Kind": iface.kind.name(), "Functions": api::functions(iface.kind) });
        return response::json(StatusCode::OK, doc.to_string().into_bytes());
    }
    match call_function(
        services, iface, view, agent, headers, function, body, authed,
    )
    .await
    {
        Ok(reply) => {
            response::with_cookies(response::json(StatusCode::OK, reply.body), &reply.cookies)
        }
        Err(e) => response::api_error(&e),
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the pieces of one request, borrowed"
)]
async fn call_function(
    services: &Arc<Services>,
    iface: &Interface,
    view: &RequestView<'_>,
    agent: &str,
    headers: &HeaderMap,
    function: &str,
    body: Incoming,
    authed: Option<Authed>,
) -> Result<api::Reply, ApiError> {
    if !sherpa::is_json_content_type(headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes())) {
        return Err(ApiError::new(
            Code::BadRequest,
            "content-type must be application/json",
        ));
    }
    let body = read_body(body, headers, services.limits.api_body_bytes).await?;
    let params = sherpa::parse_call(&body)?;
    let call = api::Call {
        services,
        iface,
        view,
        agent,
        authed,
    };
    api::call(call, function, params).await
}

/// Reads a body of at most `limit` bytes.
async fn read_body(body: Incoming, headers: &HeaderMap, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::user(format!("request body too large, limit is {limit} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(ApiError::user("error reading request body")),
    }
}
