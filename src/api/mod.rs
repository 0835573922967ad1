//! The JSON API functions of each interface.
//!
//! Owns what each function does, as plain async Rust over the services:
//! decoding its parameters ([`Params::decode`]), calling handles, and the
//! value it returns. Functions are looked up by name per interface kind;
//! an unknown name is `sherpa:badFunction`.
//!
//! Never: sees hyper types (the HTTP layer hands over a [`Call`]), or builds
//! actor messages (it uses handles).

mod account;
pub mod admin;
mod webmail;

use serde::Serialize;

use crate::app::Services;
use crate::auth::Authed;
use crate::protocol::sherpa::{self, ApiError, Code, Params};
use crate::protocol::{Interface, Kind, RequestView};

/// One API call as the functions see it.
pub struct Call<'a> {
    /// The services.
    pub services: &'a Services,
    /// The interface called.
    pub iface: &'a Interface,
    /// The request.
    pub view: &'a RequestView<'a>,
    /// User agent (bounded later where stored).
    pub agent: &'a str,
    /// The authenticated caller; `None` only for LoginPrep and Login.
    pub authed: Option<Authed>,
}

/// A function's answer: the JSON body and cookies to set.
#[derive(Debug)]
pub struct Reply {
    /// `{"result": ...}`.
    pub body: Vec<u8>,
    /// `Set-Cookie` values.
    pub cookies: Vec<String>,
}

impl Reply {
    /// A result without cookies.
    pub fn result<T: Serialize>(v: &T) -> Result<Reply, ApiError> {
        Ok(Reply {
            body: sherpa::result_body(v)?,
            cookies: Vec::new(),
        })
    }
}

/// Whether a function needs an authenticated session.
pub fn needs_auth(function: &str) -> bool {
    !matches!(function, "LoginPrep" | "Login")
}

/// Every function of an interface kind, for `GET <prefix>api/`.
pub fn functions(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::WebAccount => &[
            "LoginPrep",
            "Login",
            "Logout",
            "Version",
            "Account",
            "AccountSaveFullName",
            "DestinationSave",
            "SetPassword",
            "GeneratePassword",
            "Sessions",
            "SessionRevoke",
            "SessionRevokeOthers",
            "LoginAttempts",
            "ImportAbort",
            "Types",
        ],
        Kind::WebAdmin => &[
            "LoginPrep",
            "Login",
            "Logout",
            "Version",
            "Accounts",
            "Account",
            "AccountAdd",
            "AccountRemove",
            "AddressAdd",
            "AddressRemove",
            "SetPassword",
            "AccountLoginDisabledSave",
            "AccountSessions",
            "AccountSessionsRevoke",
            "RateLimits",
            "RateLimitReset",
            "LoginAttempts",
            "AdminLoginAttempts",
        ],
        Kind::WebMail => &[
            "LoginPrep",
            "Login",
            "Logout",
            "Version",
            "Mailboxes",
            "Messages",
            "Message",
        ],
    }
}

/// The version `Version()` returns.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs a function.
pub async fn call(c: Call<'_>, function: &str, params: Params) -> Result<Reply, ApiError> {
    let kind = c.iface.kind;
    match function {
        "LoginPrep" => {
            params.decode::<()>(function)?;
            let (token, cookie) = c.services.auth.login_prep(c.iface, c.view.https)?;
            Ok(Reply {
                body: sherpa::result_body(&token)?,
                cookies: vec![cookie],
            })
        }
        "Login" => {
            let (login_token, username, password) = if kind == Kind::WebAdmin {
                let (t, p): (String, String) = params.decode(function)?;
                (t, None, p)
            } else {
                let (t, u, p): (String, String, String) = params.decode(function)?;
                (t, Some(u), p)
            };
            let ok = Box::pin(c.services.auth.login(
                c.iface,
                c.view,
                c.agent,
                &login_token,
                username.as_deref(),
                &password,
            ))
            .await?;
            Ok(Reply {
                body: sherpa::result_body(&ok.csrf.expose())?,
                cookies: ok.cookies,
            })
        }
        "Logout" => {
            params.decode::<()>(function)?;
            let authed = authed(&c)?;
            let cookie = Box::pin(c.services.auth.logout(c.iface, authed, c.view.https)).await?;
            Ok(Reply {
                body: sherpa::result_body(&())?,
                cookies: vec![cookie],
            })
        }
        "Version" => {
            params.decode::<()>(function)?;
            Reply::result(&VERSION)
        }
        // The other functions' futures are boxed: kept inline, the largest
        // of them would set the size of every request's future, which is
        // moved several times before it first runs (docs/performance.md).
        _ => match kind {
            Kind::WebAccount => Box::pin(account::call(&c, function, params)).await,
            Kind::WebAdmin => Box::pin(admin::call(&c, function, params)).await,
            Kind::WebMail => Box::pin(webmail::call(&c, function, params)).await,
        },
    }
}

/// The caller, for functions that need one.
fn authed<'a>(c: &'a Call<'_>) -> Result<&'a Authed, ApiError> {
    c.authed
        .as_ref()
        .ok_or_else(|| ApiError::new(Code::NoAuth, "not authenticated"))
}

/// `sherpa:badFunction` for an unknown name.
pub fn bad_function(function: &str) -> ApiError {
    ApiError::new(
        Code::BadFunction,
        format!("function {function:?} does not exist"),
    )
}
