//! The pure first half of the ordered session check.
//!
//! Owns the order and the answers of everything a check decides from the
//! request alone: CSRF value present (when required), session cookie present,
//! client IP known, cookie value well formed. What follows (the session lookup,
//! the rate limiter, the bad-auth delay) needs actors and time and is done by
//! `crate::auth`; the codes and messages of both halves are defined here, in
//! [`Failure`], so the protocol's texts live in one place.
//!
//! Never: looks up sessions, sleeps, or touches shared state.

use std::net::IpAddr;

use super::cookie::{self, SessionValueError};
use super::sherpa::Code;
use super::{Kind, RequestView};
use crate::token::Token;

/// Where the CSRF value comes from, if the request needs one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Csrf<'a> {
    /// Not required (plain page requests; they rely on SameSite=Strict).
    NotRequired,
    /// Required, from the `x-mox-csrf` header (API calls, import).
    Header,
    /// Required, from a form field (export form posts); the value is given.
    Form(Option<&'a str>),
}

/// What a well-formed request presents: the rest of the check uses these.
#[derive(Debug)]
pub struct Presented {
    /// Client IP for the rate limiter.
    pub ip: IpAddr,
    /// The session token.
    pub token: Token,
    /// The account named in the cookie (empty for admin sessions).
    pub account: String,
    /// The CSRF token presented; `None` when not required. A value that is
    /// not token-shaped can never match, so it is kept as `Some(None)`.
    pub csrf: Option<Option<Token>>,
}

/// Why a check failed, with the protocol's code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// CSRF value required but absent.
    MissingCsrf,
    /// No session cookie for this interface.
    NoSession(Kind),
    /// The client's IP is unknown (forwarded listener without the header).
    NoClientIp,
    /// The cookie value is not `<token> SP <account>`, or the token is not
    /// 22 base64url characters.
    Malformed,
    /// The account part of the cookie is not valid query escaping.
    MalformedAccount,
    /// The session is unknown.
    UnknownSession,
    /// The session expired.
    Expired,
    /// The CSRF value does not belong to the session.
    CsrfMismatch,
    /// The account's login is disabled.
    LoginDisabled(String),
}

impl Failure {
    /// The sherpa code of this failure.
    pub fn code(&self) -> Code {
        match self {
            Failure::MissingCsrf | Failure::NoSession(_) | Failure::NoClientIp => Code::NoAuth,
            _ => Code::BadAuth,
        }
    }

    /// Whether this failure counts against the client's rate limit and gets the
    /// bad-auth delay: every failure where credentials were presented.
    pub fn counts(&self) -> bool {
        self.code() == Code::BadAuth
    }

    /// The metric result label of a counted failure: a malformed cookie is
    /// `error`, the rest `badcreds` (`disabled` for a disabled login).
    pub fn metric_result(&self) -> &'static str {
        match self {
            Failure::Malformed | Failure::MalformedAccount => "error",
            Failure::LoginDisabled(_) => "disabled",
            _ => "badcreds",
        }
    }

    /// The message people see.
    pub fn message(&self) -> String {
        match self {
            Failure::MissingCsrf => "missing required csrf header".into(),
            Failure::NoSession(k) => format!("no session for \"{}\" web interface", k.short_name()),
            Failure::NoClientIp => {
                "cannot find ip for rate limit check (missing x-forwarded-for header?)".into()
            }
            Failure::Malformed => "malformed session".into(),
            Failure::MalformedAccount => "malformed session account name".into(),
            Failure::UnknownSession => "unknown session token".into(),
            Failure::Expired => "session expired".into(),
            Failure::CsrfMismatch => "mismatch between csrf and session tokens".into(),
            Failure::LoginDisabled(reason) => login_disabled_message(reason),
        }
    }
}

/// The message for a disabled login, shared by Login and session checks.
pub fn login_disabled_message(reason: &str) -> String {
    format!("login disabled: {reason}")
}

/// The pure part of the check, in the protocol's order: CSRF, cookie, IP,
/// cookie value. A failure of the last step still carries the IP so it can be
/// counted against the client.
pub fn presented(
    view: &RequestView<'_>,
    kind: Kind,
    csrf: Csrf<'_>,
) -> Result<Presented, (Failure, Option<IpAddr>)> {
    presented_named(view, kind, kind.session_cookie(), csrf)
}

/// [`presented`] with the session cookie's name given (it differs with the
/// `__Secure-` prefix, see [`super::Interface::session_cookie`]).
pub fn presented_named(
    view: &RequestView<'_>,
    kind: Kind,
    session_cookie: &str,
    csrf: Csrf<'_>,
) -> Result<Presented, (Failure, Option<IpAddr>)> {
    let csrf = match csrf {
        Csrf::NotRequired => None,
        Csrf::Header => match view.csrf_header {
            None | Some(b"") => return Err((Failure::MissingCsrf, None)),
            Some(v) => Some(std::str::from_utf8(v).ok().and_then(Token::parse)),
        },
        Csrf::Form(v) => match v {
            None | Some("") => return Err((Failure::MissingCsrf, None)),
            Some(v) => Some(Token::parse(v)),
        },
    };
    let Some(value) = cookie::find(&view.cookie_headers, session_cookie) else {
        return Err((Failure::NoSession(kind), None));
    };
    let Some(ip) = view.client_ip else {
        return Err((Failure::NoClientIp, None));
    };
    let (token, account) = cookie::parse_session_value(value).map_err(|e| match e {
        SessionValueError::Malformed => (Failure::Malformed, Some(ip)),
        SessionValueError::BadAccount => (Failure::MalformedAccount, Some(ip)),
    })?;
    let token = Token::parse(token).ok_or((Failure::Malformed, Some(ip)))?;
    Ok(Presented {
        ip,
        token,
        account,
        csrf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(
        cookies: Vec<&'a [u8]>,
        csrf: Option<&'a [u8]>,
        ip: Option<IpAddr>,
    ) -> RequestView<'a> {
        RequestView {
            cookie_headers: cookies.into_iter().collect(),
            csrf_header: csrf,
            client_ip: ip,
            https: false,
            forwarded: false,
        }
    }
    const IP: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn order_and_codes() {
        let tok = Token::generate().expect("rand").expose();
        let good = format!("webaccountsession=\"{tok} demo\"");
        let csrf = Token::generate().expect("rand").expose();

        let v = view(vec![good.as_bytes()], None, IP);
        let e = presented(&v, Kind::WebAccount, Csrf::Header).expect_err("no csrf");
        assert_eq!(e.0, Failure::MissingCsrf);
        assert_eq!(e.0.code(), Code::NoAuth);

        let v = view(vec![], Some(csrf.as_bytes()), IP);
        let e = presented(&v, Kind::WebAccount, Csrf::Header).expect_err("no cookie");
        assert_eq!(e.0.message(), "no session for \"account\" web interface");

        let v = view(vec![good.as_bytes()], Some(csrf.as_bytes()), None);
        assert_eq!(
            presented(&v, Kind::WebAccount, Csrf::Header)
                .expect_err("ip")
                .0,
            Failure::NoClientIp
        );

        let v = view(
            vec![b"webaccountsession=nospace"],
            Some(csrf.as_bytes()),
            IP,
        );
        let e = presented(&v, Kind::WebAccount, Csrf::Header).expect_err("malformed");
        assert_eq!(e, (Failure::Malformed, IP));
        assert!(e.0.counts());

        let v = view(vec![b"webaccountsession=\"short demo\""], None, IP);
        assert_eq!(
            presented(&v, Kind::WebAccount, Csrf::NotRequired)
                .expect_err("short")
                .0,
            Failure::Malformed
        );

        let bad_acc = format!("webaccountsession=\"{tok} %zz\"");
        let v = view(vec![bad_acc.as_bytes()], None, IP);
        assert_eq!(
            presented(&v, Kind::WebAccount, Csrf::NotRequired)
                .expect_err("acc")
                .0,
            Failure::MalformedAccount
        );

        let v = view(vec![good.as_bytes()], Some(csrf.as_bytes()), IP);
        let p = presented(&v, Kind::WebAccount, Csrf::Header).expect("good");
        assert_eq!(p.account, "demo");
        assert_eq!(p.token.expose(), tok);
        assert!(matches!(p.csrf, Some(Some(_))));

        let v = view(vec![good.as_bytes()], Some(b"garbage"), IP);
        let p = presented(&v, Kind::WebAccount, Csrf::Header).expect("present but garbage");
        assert!(matches!(p.csrf, Some(None)));

        // the other interfaces' cookies do not count
        let v = view(vec![good.as_bytes()], None, IP);
        assert_eq!(
            presented(&v, Kind::WebAdmin, Csrf::NotRequired)
                .expect_err("admin")
                .0,
            Failure::NoSession(Kind::WebAdmin)
        );
    }
}
