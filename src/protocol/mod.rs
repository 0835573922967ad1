//! The web authentication protocol, as plain Rust.
//!
//! Owns what a request means, independent of any server: the interface kinds
//! and their cookie names ([`Kind`], [`Interface`]), the small view of a request
//! that the protocol looks at ([`RequestView`]), cookie parsing and formatting
//! ([`cookie`]), the sherpa JSON envelope and its error codes ([`sherpa`]) and
//! the first, pure part of the ordered session check ([`check`]).
//!
//! Never: touches hyper, tokio or the database. Everything here is synchronous
//! and total (no panics on any input), so it can be fuzzed without a server.

pub mod check;
pub mod cookie;
pub mod crosssite;
pub mod forwarded;
pub mod sherpa;

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The three web interfaces. The kind names cookies, metrics labels and the
/// session store; the URL prefix is configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The administrator's interface; sessions in memory only.
    #[serde(rename = "webadmin")]
    WebAdmin,
    /// An account holder's self-service interface; sessions persisted per account.
    #[serde(rename = "webaccount")]
    WebAccount,
    /// Webmail; shares the account's persisted sessions and their cap.
    #[serde(rename = "webmail")]
    WebMail,
}

impl Kind {
    /// Every kind, in a fixed order.
    pub const ALL: [Kind; 3] = [Kind::WebAdmin, Kind::WebAccount, Kind::WebMail];

    /// The kind's name: `webadmin`, `webaccount` or `webmail`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::WebAdmin => "webadmin",
            Kind::WebAccount => "webaccount",
            Kind::WebMail => "webmail",
        }
    }

    /// The name people read in messages: `admin`, `account` or `mail`.
    pub fn short_name(self) -> &'static str {
        match self {
            Kind::WebAdmin => "admin",
            Kind::WebAccount => "account",
            Kind::WebMail => "mail",
        }
    }

    /// Name of the cookie that carries the login token between LoginPrep and Login.
    pub fn login_cookie(self) -> &'static str {
        match self {
            Kind::WebAdmin => "webadminlogin",
            Kind::WebAccount => "webaccountlogin",
            Kind::WebMail => "webmaillogin",
        }
    }

    /// Name of the cookie that carries the session.
    pub fn session_cookie(self) -> &'static str {
        match self {
            Kind::WebAdmin => "webadminsession",
            Kind::WebAccount => "webaccountsession",
            Kind::WebMail => "webmailsession",
        }
    }

    /// Parses a kind name.
    pub fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Code of the kind in stored records.
    pub fn code(self) -> u8 {
        match self {
            Kind::WebAdmin => 0,
            Kind::WebAccount => 1,
            Kind::WebMail => 2,
        }
    }

    /// The kind for a stored code.
    pub fn from_code(c: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code() == c)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One web interface as configured: a kind served under a path prefix.
/// The three interfaces are this one mechanism configured three times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// What the interface is.
    pub kind: Kind,
    /// Path prefix, starting and ending with `/`, e.g. `/account/`. Cookies are
    /// scoped to it.
    pub prefix: String,
    /// Over HTTPS, prefix cookie names with `__Secure-`.
    pub secure_cookie_prefix: bool,
}

impl Interface {
    /// An interface with plain cookie names.
    pub fn new(kind: Kind, prefix: impl Into<String>) -> Interface {
        Interface {
            kind,
            prefix: prefix.into(),
            secure_cookie_prefix: false,
        }
    }

    /// The login cookie's name for a request (`__Secure-` prefixed when
    /// configured and the request came over HTTPS).
    pub fn login_cookie(&self, https: bool) -> &'static str {
        if self.secure_cookie_prefix && https {
            secure_name(self.kind.login_cookie())
        } else {
            self.kind.login_cookie()
        }
    }

    /// The session cookie's name for a request (see [`Interface::login_cookie`]).
    pub fn session_cookie(&self, https: bool) -> &'static str {
        if self.secure_cookie_prefix && https {
            secure_name(self.kind.session_cookie())
        } else {
            self.kind.session_cookie()
        }
    }
}

/// The `__Secure-` form of a cookie name.
fn secure_name(plain: &'static str) -> &'static str {
    match plain {
        "webadminlogin" => "__Secure-webadminlogin",
        "webaccountlogin" => "__Secure-webaccountlogin",
        "webmaillogin" => "__Secure-webmaillogin",
        "webadminsession" => "__Secure-webadminsession",
        "webaccountsession" => "__Secure-webaccountsession",
        _ => "__Secure-webmailsession",
    }
}

/// The `Cookie` header values of a request, in order, as a slice: up to two
/// are held inline (every HTTP/1.1 browser request), more on the heap.
#[derive(Debug, Clone)]
pub enum CookieHeaders<'a> {
    /// The first `n` of the array.
    Inline([&'a [u8]; 2], u8),
    /// Three or more.
    Heap(Vec<&'a [u8]>),
}

impl Default for CookieHeaders<'_> {
    fn default() -> Self {
        CookieHeaders::Inline([&[]; 2], 0)
    }
}

impl<'a> CookieHeaders<'a> {
    /// Adds the next header value.
    pub fn push(&mut self, v: &'a [u8]) {
        match self {
            CookieHeaders::Inline(a, n) if usize::from(*n) < a.len() => {
                a[usize::from(*n)] = v;
                *n += 1;
            }
            CookieHeaders::Inline(a, _) => {
                let mut all = Vec::from(*a);
                all.push(v);
                *self = CookieHeaders::Heap(all);
            }
            CookieHeaders::Heap(all) => all.push(v),
        }
    }
}

impl<'a> std::ops::Deref for CookieHeaders<'a> {
    type Target = [&'a [u8]];
    fn deref(&self) -> &Self::Target {
        match self {
            CookieHeaders::Inline(a, n) => &a[..usize::from(*n)],
            CookieHeaders::Heap(v) => v,
        }
    }
}

impl<'a> FromIterator<&'a [u8]> for CookieHeaders<'a> {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(iter: I) -> Self {
        let mut h = CookieHeaders::default();
        for v in iter {
            h.push(v);
        }
        h
    }
}

/// What the protocol needs to know about a request. Built by the HTTP layer;
/// borrowed, so building it costs no allocation (up to two `Cookie` headers,
/// which covers every browser request over HTTP/1.1).
#[derive(Debug, Clone)]
pub struct RequestView<'a> {
    /// Every `Cookie` header value, in order (HTTP/2 may split them).
    pub cookie_headers: CookieHeaders<'a>,
    /// The `x-mox-csrf` header, if present.
    pub csrf_header: Option<&'a [u8]>,
    /// The client's address as far as we can tell; `None` when it cannot be
    /// determined (a forwarded listener without the header).
    pub client_ip: Option<IpAddr>,
    /// Whether the request reached us over HTTPS (drives the Secure flag).
    pub https: bool,
    /// Whether the listener sits behind a reverse proxy (changes some hints).
    pub forwarded: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_headers_keep_order_inline_and_on_the_heap() {
        let values: [&[u8]; 5] = [b"a=1", b"b=2", b"c=3", b"d=4", b"e=5"];
        for n in 0..=values.len() {
            let h: CookieHeaders = values[..n].iter().copied().collect();
            assert_eq!(&h[..], &values[..n], "{n} headers");
            assert_eq!(matches!(h, CookieHeaders::Inline(..)), n <= 2, "{n}");
        }
        assert!(CookieHeaders::default().is_empty());
    }

    #[test]
    fn secure_prefix_only_over_https_and_when_configured() {
        for kind in Kind::ALL {
            let plain = Interface::new(kind, "/x/");
            let secure = Interface {
                secure_cookie_prefix: true,
                ..plain.clone()
            };
            assert_eq!(plain.session_cookie(true), kind.session_cookie());
            assert_eq!(plain.login_cookie(true), kind.login_cookie());
            assert_eq!(secure.session_cookie(false), kind.session_cookie());
            assert_eq!(secure.login_cookie(false), kind.login_cookie());
            assert_eq!(
                secure.session_cookie(true),
                format!("__Secure-{}", kind.session_cookie())
            );
            assert_eq!(
                secure.login_cookie(true),
                format!("__Secure-{}", kind.login_cookie())
            );
        }
    }
}
