//! Target `cookie`: `Cookie` header parsing, the session cookie value, the
//! pure first half of the request check, and the build → parse round trip.

use std::net::{IpAddr, Ipv4Addr};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::protocol::check::{self, Csrf, Failure};
use crate::protocol::cookie::{self, Lifetime};
use crate::protocol::{Kind, RequestView};
use crate::token::{TOKEN_TEXT_LEN, Token};

/// Whether every byte may appear in a cookie value as [`cookie::find`]
/// returns it (no quotes, no `;`, no `\`, printable ASCII).
fn valid_value(v: &str) -> bool {
    v.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b';' && b != b'\\')
}

/// Properties:
/// - [`cookie::find`] returns only valid cookie values that occur in a header;
/// - a found session value that parses gives a token without a space, and
///   rebuilding it with [`cookie::session_value`] parses back to the same;
/// - [`check::presented`] never panics, answers in the protocol's order
///   (an IP comes back exactly with the counted failures), and a success
///   carries a 22-character token;
/// - any 16 bytes and any account name survive
///   `set_cookie(session_value(..))` → `find` → `parse_session_value` →
///   `Token::parse`, and the line is HttpOnly and SameSite=Strict.
pub fn cookie(data: &[u8]) {
    let headers: Vec<&[u8]> = data.split(|&b| b == b'\n').take(8).collect();
    let mut names: Vec<&str> = Kind::ALL
        .iter()
        .flat_map(|k| [k.login_cookie(), k.session_cookie()])
        .collect();
    names.push("x");
    for name in names {
        let Some(v) = cookie::find(&headers, name) else {
            continue;
        };
        assert!(valid_value(v), "find returned an invalid value");
        assert!(
            headers
                .iter()
                .any(|h| h.windows(v.len().max(1)).any(|w| w == v.as_bytes()) || v.is_empty()),
            "value not from a header"
        );
        if let Ok((token, account)) = cookie::parse_session_value(v) {
            assert!(!token.contains(' '));
            let rebuilt = cookie::session_value(token, &account);
            assert_eq!(
                cookie::parse_session_value(&rebuilt),
                Ok((token, account.clone()))
            );
        }
    }

    let csrf_header = headers.first().copied();
    for kind in Kind::ALL {
        for ip in [None, Some(IpAddr::V4(Ipv4Addr::LOCALHOST))] {
            let view = RequestView {
                cookie_headers: headers.iter().copied().collect(),
                csrf_header,
                client_ip: ip,
                https: false,
                forwarded: false,
            };
            let form = csrf_header.and_then(|h| std::str::from_utf8(h).ok());
            for csrf in [Csrf::NotRequired, Csrf::Header, Csrf::Form(form)] {
                match check::presented(&view, kind, csrf) {
                    Ok(p) => {
                        assert_eq!(p.token.expose().len(), TOKEN_TEXT_LEN);
                        assert_eq!(Some(p.ip), ip);
                        assert_eq!(p.csrf.is_some(), csrf != Csrf::NotRequired);
                        assert!(cookie::find(&headers, kind.session_cookie()).is_some());
                    }
                    Err((f, got_ip)) => {
                        assert_eq!(got_ip.is_some(), f.counts(), "{f:?}");
                        if got_ip.is_some() {
                            assert_eq!(got_ip, ip);
                        }
                        assert!(matches!(
                            f,
                            Failure::MissingCsrf
                                | Failure::NoSession(_)
                                | Failure::NoClientIp
                                | Failure::Malformed
                                | Failure::MalformedAccount
                        ));
                        assert!(!f.message().is_empty());
                    }
                }
            }
        }
    }

    // Build → parse round trip.
    let mut raw = [0u8; 16];
    let n = data.len().min(16);
    raw[..n].copy_from_slice(&data[..n]);
    let text = URL_SAFE_NO_PAD.encode(raw);
    let token = Token::parse(&text).expect("base64url of 16 bytes is a token");
    assert_eq!(token.expose(), text);
    let account = String::from_utf8_lossy(&data[n..]);
    let secure = data.first().is_some_and(|b| b & 1 == 1);
    for kind in Kind::ALL {
        let value = cookie::session_value(&token.expose(), &account);
        let line = cookie::set_cookie(
            kind.session_cookie(),
            &value,
            "/p/",
            Lifetime::Session,
            secure,
        );
        assert!(line.ends_with("; HttpOnly; Secure; SameSite=Strict") == secure);
        assert!(line.ends_with("; HttpOnly; SameSite=Strict") != secure);
        // Go quotes a value with a space or comma (a session value always
        // has the space); browsers send the quotes back.
        let quoted = format!("{}=\"{value}\"; Path=/p/", kind.session_cookie());
        assert!(line.starts_with(&quoted), "not quoted like Go: {line}");
        let sent = line.split("; ").next().unwrap_or_default();
        // What a browser sends, after another cookie and a stray one.
        let header = format!("other=1; {sent}; {sent}x");
        let got = cookie::find(&[header.as_bytes()], kind.session_cookie());
        assert_eq!(got, Some(value.as_str()));
        let (t, a) = cookie::parse_session_value(&value).expect("round trip");
        assert_eq!(Token::parse(t).as_ref(), Some(&token));
        assert_eq!(a, account);
    }
}
