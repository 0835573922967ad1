//! Target `query_escape`: Go's `url.QueryEscape` / `QueryUnescape` pair, as
//! used for the account name in the session cookie.

use crate::protocol::cookie::{query_escape as escape, query_unescape as unescape};

/// Properties:
/// - escaping any text gives only letters, digits and `-_.~+%` with
///   upper-case hex, at most three bytes per input byte, and unescapes back
///   to the text;
/// - unescaping any bytes that succeeds is stable: escaping the result and
///   unescaping again gives the same text;
/// - a failed unescape means a `%` without two hex digits after it or a
///   result that is not UTF-8.
pub fn query_escape(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let e = escape(&text);
    assert!(e.len() <= 3 * text.len());
    assert!(
        e.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~+%".contains(&b))
    );
    let b = e.as_bytes();
    for (i, _) in e.match_indices('%') {
        let hex = b.get(i + 1..i + 3).expect("two digits after %");
        assert!(
            hex.iter()
                .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c))
        );
    }
    assert_eq!(unescape(&e).as_deref(), Some(&*text));

    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    match unescape(raw) {
        Some(u) => {
            assert!(u.len() <= raw.len());
            assert_eq!(unescape(&escape(&u)), Some(u));
        }
        None => {
            let rb = raw.as_bytes();
            let bad_percent = rb.iter().enumerate().any(|(i, &c)| {
                c == b'%'
                    && !rb
                        .get(i + 1..i + 3)
                        .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
            });
            assert!(bad_percent || !percent_decodes_to_utf8(rb));
        }
    }
}

/// Naive decoding (assuming every `%` has two hex digits): is it UTF-8?
fn percent_decodes_to_utf8(b: &[u8]) -> bool {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(h, 16).unwrap_or(0));
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
    String::from_utf8(out).is_ok()
}
