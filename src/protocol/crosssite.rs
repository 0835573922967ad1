//! Cross-site request refusal from `Sec-Fetch-Site` (defence in depth).
//!
//! Owns one decision: a state-changing request (any method but `GET`, `HEAD`,
//! `OPTIONS` and `TRACE`) that the browser labels `Sec-Fetch-Site:
//! cross-site` is refused with HTTP 403 before anything else is looked at
//! (no cookie, no body, no rate limiter). This sits on top of the two
//! defences the protocol already has, SameSite=Strict cookies and the CSRF
//! token: a browser with a SameSite bug, or a page on another site that
//! somehow learnt a CSRF token, still cannot make a signed-in browser change
//! state. Requests without the header (old browsers, curl, the test client)
//! and the values `same-origin`, `same-site` and `none` (typed into the
//! address bar, bookmarks) pass unchanged; an unknown value passes too, since
//! only browsers send the header and a future value must not lock users out.
//!
//! Never: refuses a safe method (a link from another site to the account
//! page must keep working), or reads anything but the method and this one
//! header.

/// The message of the 403 answer to a refused cross-site request.
pub const REFUSED: &str =
    "403 - forbidden - cross-site request refused (Sec-Fetch-Site: cross-site)";

/// Whether a method changes state (everything but GET, HEAD, OPTIONS, TRACE).
pub fn is_state_changing(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE")
}

/// The refusal message when the request must be refused as cross-site, or
/// `None` when it may go on. `sec_fetch_site` is the raw header value, if
/// the request has one; it is compared case-insensitively after trimming
/// spaces, so `Cross-Site` is refused too.
pub fn refusal(method: &str, sec_fetch_site: Option<&[u8]>) -> Option<&'static str> {
    let site = sec_fetch_site?;
    if is_state_changing(method) && site.trim_ascii().eq_ignore_ascii_case(b"cross-site") {
        Some(REFUSED)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refuses_state_changing_cross_site_only() {
        for m in ["POST", "PUT", "DELETE", "PATCH", "CONNECT", "FOO"] {
            assert_eq!(refusal(m, Some(b"cross-site")), Some(REFUSED), "{m}");
            assert_eq!(refusal(m, Some(b" Cross-Site ")), Some(REFUSED), "{m}");
            for ok in [&b"same-origin"[..], b"same-site", b"none", b"", b"\xff"] {
                assert_eq!(refusal(m, Some(ok)), None, "{m} {ok:?}");
            }
            assert_eq!(refusal(m, None), None, "{m} without the header");
        }
        for m in ["GET", "HEAD", "OPTIONS", "TRACE"] {
            assert_eq!(refusal(m, Some(b"cross-site")), None, "{m}");
        }
    }

    proptest! {
        #[test]
        fn refused_exactly_when_unsafe_and_cross_site(
            m in "[A-Z]{1,8}",
            v in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..16),
                "[ \t]{0,2}[cC][rR][oO][sS][sS]-[sS][iI][tT][eE][ \t]{0,2}".prop_map(String::into_bytes),
                "[ \t]{0,2}[a-z-]{0,12}[ \t]{0,2}".prop_map(String::into_bytes),
            ],
        ) {
            let got = refusal(&m, Some(&v));
            let cross = std::str::from_utf8(&v).is_ok_and(|s| {
                s.trim_matches(|c: char| c.is_ascii_whitespace())
                    .eq_ignore_ascii_case("cross-site")
            });
            prop_assert_eq!(got.is_some(), cross && is_state_changing(&m));
            prop_assert_eq!(refusal(&m, None), None);
        }
    }
}
