//! Cookie parsing and formatting, and the session cookie's value.
//!
//! Owns the byte-level format of the `<kind>login` and `<kind>session` cookies:
//! `Set-Cookie` lines in the attribute order Go's `net/http` writes
//! (`Path`, `Max-Age`, `HttpOnly`, `Secure`, `SameSite`), values with a space or
//! comma double-quoted, and the session value `<token> SP <query-escaped
//! account>` (Go's `url.QueryEscape`, so non-ASCII account names survive).
//!
//! Never: logs or keeps cookie values; panics on any input.

/// Finds the first cookie called `name` in the `Cookie` header values, like Go's
/// `Request.Cookie`: browsers send the cookie of the most specific path first,
/// so the first well-formed one wins. Pairs with an invalid value are skipped.
/// Returns the value with one pair of surrounding double quotes removed.
///
/// `name` is a cookie name: a token, without `=`, `;`, space or tab.
///
/// Every request with a session runs this, so it makes one pass over each
/// pair and gives up on a pair at its first byte that differs from `name`.
pub fn find<'a>(headers: &[&'a [u8]], name: &str) -> Option<&'a str> {
    let name = name.as_bytes();
    debug_assert!(!name.iter().any(|b| b"=; \t".contains(b)));
    for &h in headers {
        let mut rest = h;
        loop {
            let (pair, next) = match rest.iter().position(|&b| b == b';') {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            if let Some(v) = value_named(pair, name) {
                return Some(v);
            }
            match next {
                Some(n) => rest = n,
                None => break,
            }
        }
    }
    None
}

/// The value of one `name=value` pair (blanks allowed around both), if the
/// pair is called `name` and its value is valid.
fn value_named<'a>(pair: &'a [u8], name: &[u8]) -> Option<&'a str> {
    let after = trim_start(pair).strip_prefix(name)?;
    let v = trim_start(after).strip_prefix(b"=")?;
    parse_value(trim_end(trim_start(v)))
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn trim_start(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| !is_blank(c)).unwrap_or(b.len());
    &b[start..]
}

fn trim_end(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&c| !is_blank(c)).map_or(0, |i| i + 1);
    &b[..end]
}

/// A cookie value as Go accepts it: optionally quoted, bytes 0x20..0x7e except
/// `"`, `;` and `\`.
fn parse_value(v: &[u8]) -> Option<&str> {
    let v = match v {
        [b'"', inner @ .., b'"'] => inner,
        _ => v,
    };
    if v.iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b';' && b != b'\\')
    {
        std::str::from_utf8(v).ok()
    } else {
        None
    }
}

/// Attributes of a cookie postern sets. Every cookie is HttpOnly and
/// SameSite=Strict; there is no way to make one that is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// A browser-session cookie: no Max-Age (the session cookie).
    Session,
    /// Lives this many seconds (the login cookie: 30).
    MaxAge(u32),
    /// Deletes the cookie (`Max-Age=0`).
    Delete,
}

/// Formats a `Set-Cookie` header value exactly as Go's `http.Cookie.String`
/// does for the cookies postern sets.
pub fn set_cookie(name: &str, value: &str, path: &str, lifetime: Lifetime, secure: bool) -> String {
    let mut s = String::with_capacity(name.len() + value.len() + path.len() + 64);
    s.push_str(name);
    s.push('=');
    if value.contains([' ', ',']) {
        s.push('"');
        s.push_str(value);
        s.push('"');
    } else {
        s.push_str(value);
    }
    s.push_str("; Path=");
    s.push_str(path);
    match lifetime {
        Lifetime::Session => {}
        Lifetime::MaxAge(n) => {
            s.push_str("; Max-Age=");
            s.push_str(&n.to_string());
        }
        Lifetime::Delete => s.push_str("; Max-Age=0"),
    }
    s.push_str("; HttpOnly");
    if secure {
        s.push_str("; Secure");
    }
    s.push_str("; SameSite=Strict");
    s
}

/// The session cookie's value: `<token> SP <query-escaped account>`. For admin
/// sessions the account is empty.
pub fn session_value(token: &str, account: &str) -> String {
    let mut s = String::with_capacity(token.len() + 1 + account.len() * 3);
    s.push_str(token);
    s.push(' ');
    query_escape_into(account, &mut s);
    s
}

/// Why a session cookie's value could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionValueError {
    /// No space between token and account.
    #[error("malformed session")]
    Malformed,
    /// The account part is not valid query escaping of UTF-8.
    #[error("malformed session account name")]
    BadAccount,
}

/// Splits a session cookie value into its token text and account name.
pub fn parse_session_value(v: &str) -> Result<(&str, String), SessionValueError> {
    let (token, account) = v.split_once(' ').ok_or(SessionValueError::Malformed)?;
    let account = query_unescape(account).ok_or(SessionValueError::BadAccount)?;
    Ok((token, account))
}

/// Go's `url.QueryEscape`: letters, digits and `-_.~` stay, space becomes `+`,
/// every other byte `%XX` with upper-case hex.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    query_escape_into(s, &mut out);
    out
}

fn query_escape_into(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
        }
    }
}

/// Go's `url.QueryUnescape`, refusing results that are not UTF-8.
pub fn query_unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hi = hex(*b.get(i + 1)?)?;
                let lo = hex(*b.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_first_valid_cookie() {
        let h: Vec<&[u8]> = vec![b"a=1; webaccountsession=\"tok mjl%E2%98%BA\"; b=2"];
        assert_eq!(find(&h, "webaccountsession"), Some("tok mjl%E2%98%BA"));
        assert_eq!(find(&h, "a"), Some("1"));
        assert_eq!(find(&h, "c"), None);
        // duplicates: first wins; an invalid first one is skipped
        let h: Vec<&[u8]> = vec![b"x=\\bad; x=good; x=later"];
        assert_eq!(find(&h, "x"), Some("good"));
        // split headers (HTTP/2)
        let h: Vec<&[u8]> = vec![b"a=1", b"b=2"];
        assert_eq!(find(&h, "b"), Some("2"));
        // garbage
        let h: Vec<&[u8]> = vec![b"\xff\xfe;;;==;=", b"", b"x"];
        assert_eq!(find(&h, "x"), None);
        let h: Vec<&[u8]> = vec![b"x=\xe2\x98\xba"];
        assert_eq!(find(&h, "x"), None, "non-ASCII value is not a valid cookie");
        let h: Vec<&[u8]> = vec![b"x="];
        assert_eq!(find(&h, "x"), Some(""));
    }

    #[test]
    fn set_cookie_matches_go() {
        assert_eq!(
            set_cookie(
                "webaccountlogin",
                "abc",
                "/account/",
                Lifetime::MaxAge(30),
                false
            ),
            "webaccountlogin=abc; Path=/account/; Max-Age=30; HttpOnly; SameSite=Strict"
        );
        assert_eq!(
            set_cookie(
                "webaccountsession",
                "tok demo",
                "/account/",
                Lifetime::Session,
                true
            ),
            "webaccountsession=\"tok demo\"; Path=/account/; HttpOnly; Secure; SameSite=Strict"
        );
        assert_eq!(
            set_cookie("webadminlogin", "", "/admin/", Lifetime::Delete, false),
            "webadminlogin=; Path=/admin/; Max-Age=0; HttpOnly; SameSite=Strict"
        );
    }

    #[test]
    fn query_escape_matches_go() {
        assert_eq!(query_escape("mjl☺"), "mjl%E2%98%BA");
        assert_eq!(query_escape("a b+c/d*e~f"), "a+b%2Bc%2Fd%2Ae~f");
        assert_eq!(query_unescape("a+b%2bc").as_deref(), Some("a b+c"));
        assert_eq!(query_unescape("%"), None);
        assert_eq!(query_unescape("%zz"), None);
        assert_eq!(query_unescape("%ff"), None, "not UTF-8");
    }

    #[test]
    fn session_value_parse() {
        assert_eq!(
            parse_session_value("tok mjl%E2%98%BA"),
            Ok(("tok", "mjl☺".to_string()))
        );
        assert_eq!(parse_session_value("tok "), Ok(("tok", String::new())));
        assert_eq!(
            parse_session_value("tok"),
            Err(SessionValueError::Malformed)
        );
        assert_eq!(
            parse_session_value("tok %"),
            Err(SessionValueError::BadAccount)
        );
    }

    /// The first, plain form of [`find`]: split, trim, compare. Kept as the
    /// model the one-pass version must agree with.
    fn find_model<'a>(headers: &[&'a [u8]], name: &str) -> Option<&'a str> {
        fn trim(b: &[u8]) -> &[u8] {
            trim_end(trim_start(b))
        }
        for h in headers {
            for part in h.split(|&b| b == b';') {
                let part = trim(part);
                let Some(eq) = part.iter().position(|&b| b == b'=') else {
                    continue;
                };
                if trim(&part[..eq]) != name.as_bytes() {
                    continue;
                }
                if let Some(v) = parse_value(trim(&part[eq + 1..])) {
                    return Some(v);
                }
            }
        }
        None
    }

    proptest! {
        #[test]
        fn find_agrees_with_model(
            h in proptest::collection::vec(
                proptest::collection::vec(
                    prop_oneof![
                        Just(b'a'), Just(b'x'), Just(b'='), Just(b';'), Just(b' '),
                        Just(b'\t'), Just(b'"'), Just(b'\\'), any::<u8>(),
                    ],
                    0..40,
                ),
                0..4,
            ),
            name in "[ax]{0,3}",
        ) {
            let hs: Vec<&[u8]> = h.iter().map(|v| v.as_slice()).collect();
            prop_assert_eq!(find(&hs, &name), find_model(&hs, &name));
        }

        #[test]
        fn escape_roundtrip(s in any::<String>()) {
            let e = query_escape(&s);
            prop_assert!(e.bytes().all(|b| b.is_ascii_graphic()));
            prop_assert_eq!(query_unescape(&e), Some(s));
        }

        #[test]
        fn session_cookie_roundtrip(token in "[A-Za-z0-9_-]{22}", account in any::<String>(), secure: bool) {
            let value = session_value(&token, &account);
            let line = set_cookie("webaccountsession", &value, "/account/", Lifetime::Session, secure);
            // What a browser sends back: name=value as set (quotes included).
            let sent = line.split("; ").next().unwrap_or_default().to_string();
            let headers: Vec<&[u8]> = vec![sent.as_bytes()];
            let got = find(&headers, "webaccountsession");
            prop_assert_eq!(got, Some(value.as_str()));
            let (t, a) = parse_session_value(got.unwrap_or_default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(t, token.as_str());
            prop_assert_eq!(a, account);
        }

        #[test]
        fn find_never_panics(h in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..4), name in "[a-z]{0,8}") {
            let hs: Vec<&[u8]> = h.iter().map(|v| v.as_slice()).collect();
            if let Some(v) = find(&hs, &name) {
                prop_assert!(v.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b';' && b != b'\\'));
            }
        }
    }
}
