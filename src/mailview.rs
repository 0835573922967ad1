//! Reading a stored message for the webmail's read-only view.
//!
//! Owns the little MIME reading the webmail needs: the header fields a
//! message list shows (From, To, Subject, Date; RFC 2047 encoded words
//! decoded) and a message's plain text (the message itself when it is
//! text, else the first `text/plain` part of a multipart message; base64
//! and quoted-printable undone; UTF-8, US-ASCII and Latin-1 charsets, other
//! charsets read as UTF-8 with replacement characters).
//!
//! Pure: bytes in, strings out, no I/O. Every input is bounded (header
//! bytes read, nesting depth, parts, output length) and nothing panics on
//! malformed mail.
//!
//! Never: produces HTML or follows anything a message refers to; the text
//! it returns is shown as text.

use base64::Engine as _;

/// Header bytes read at most (a header section beyond this is cut).
const MAX_HEADER: usize = 64 * 1024;
/// Multipart nesting read at most.
const MAX_DEPTH: usize = 8;
/// Parts of one multipart looked at, at most.
const MAX_PARTS: usize = 100;
/// Characters of one header value kept.
const MAX_FIELD: usize = 1000;

/// The header fields a message list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// `From`, decoded.
    pub from: String,
    /// `To`, decoded.
    pub to: String,
    /// `Subject`, decoded.
    pub subject: String,
    /// `Date`, as written.
    pub date: String,
}

/// The list fields of a raw message.
pub fn summary(raw: &[u8]) -> Summary {
    let (header, _) = split(raw);
    let fields = fields(header);
    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| clip(&decode_words(v), MAX_FIELD))
            .unwrap_or_default()
    };
    Summary {
        from: get("From"),
        to: get("To"),
        subject: get("Subject"),
        date: get("Date"),
    }
}

/// The plain text of a raw message, at most `max_chars` characters (a cut
/// text ends with a line saying so).
pub fn plain_text(raw: &[u8], max_chars: usize) -> String {
    let text =
        part_text(raw, 0).unwrap_or_else(|| "(This message has no plain text part.)".to_string());
    if text.chars().count() > max_chars {
        let mut t: String = text.chars().take(max_chars).collect();
        t.push_str("\n\n(The message is longer; the rest is not shown.)");
        t
    } else {
        text
    }
}

fn part_text(raw: &[u8], depth: usize) -> Option<String> {
    let (header, body) = split(raw);
    let fields = fields(header);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let (media, params) = content_type(field("Content-Type").unwrap_or("text/plain"));
    if let Some(sub) = media.strip_prefix("multipart/") {
        let boundary = params.iter().find(|(k, _)| k == "boundary")?.1.clone();
        if depth >= MAX_DEPTH || boundary.is_empty() {
            return None;
        }
        let parts = multipart_parts(body, &boundary);
        // multipart/alternative lists the plainest first; everywhere, the
        // first text/plain found is the text
        let _ = sub;
        return parts.into_iter().find_map(|p| part_text(p, depth + 1));
    }
    if media != "text/plain" {
        return None;
    }
    let encoding = field("Content-Transfer-Encoding")
        .unwrap_or("7bit")
        .trim()
        .to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "base64" => {
            let clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(&clean)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&clean))
                .unwrap_or_else(|_| body.to_vec())
        }
        "quoted-printable" => quoted_printable(body),
        _ => body.to_vec(),
    };
    let charset = params
        .iter()
        .find(|(k, _)| k == "charset")
        .map(|(_, v)| v.as_str())
        .unwrap_or("us-ascii");
    Some(normalize_newlines(&decode_charset(&bytes, charset)))
}

/// Header and body: split at the first empty line (LF or CRLF).
fn split(raw: &[u8]) -> (&[u8], &[u8]) {
    let mut i = 0;
    while i < raw.len() {
        let line_end = raw[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |p| i + p + 1);
        let line = &raw[i..line_end];
        if line == b"\n" || line == b"\r\n" {
            return (&raw[..i], &raw[line_end..]);
        }
        i = line_end;
    }
    (raw, &[])
}

/// Header fields, unfolded, in order.
fn fields(header: &[u8]) -> Vec<(String, String)> {
    let header = &header[..header.len().min(MAX_HEADER)];
    let text = String::from_utf8_lossy(header);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                if v.len() < MAX_HEADER {
                    v.push(' ');
                    v.push_str(line.trim());
                }
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    out
}

/// `type/subtype` (lower case) and parameters (names lower case, values
/// unquoted).
fn content_type(v: &str) -> (String, Vec<(String, String)>) {
    let mut parts = v.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            Some((k.trim().to_ascii_lowercase(), v.to_string()))
        })
        .collect();
    let media = if media.contains('/') {
        media
    } else {
        "text/plain".to_string()
    };
    (media, params)
}

/// The parts of a multipart body.
fn multipart_parts<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < body.len() && parts.len() < MAX_PARTS {
        let line_end = body[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |p| i + p + 1);
        let line = trim_end(&body[i..line_end]);
        if line.starts_with(delim) {
            let rest = &line[delim.len()..];
            if let Some(s) = start {
                // the line break before the delimiter belongs to it
                let end = if i >= 2 && &body[i - 2..i] == b"\r\n" {
                    i - 2
                } else if i >= 1 && body[i - 1] == b'\n' {
                    i - 1
                } else {
                    i
                };
                parts.push(&body[s..end.max(s)]);
            }
            if rest.starts_with(b"--") {
                break;
            }
            start = Some(line_end);
        }
        i = line_end;
    }
    parts
}

fn trim_end(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Quoted-printable (RFC 2045): `=XX` and soft line breaks.
fn quoted_printable(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            if b.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            if let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn decode_charset(b: &[u8], charset: &str) -> String {
    let cs = charset.trim().to_ascii_lowercase();
    if matches!(
        cs.as_str(),
        "iso-8859-1" | "latin1" | "iso_8859-1" | "l1" | "windows-1252" | "cp1252"
    ) {
        b.iter().map(|&c| char::from(c)).collect()
    } else {
        String::from_utf8_lossy(b).into_owned()
    }
}

fn normalize_newlines(s: &str) -> String {
    s.replace("\r\n", "\n")
}

/// Decodes RFC 2047 encoded words (`=?charset?B|Q?text?=`); whitespace
/// between two encoded words is dropped, as the RFC says.
fn decode_words(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, after) = rest.split_at(start);
        match encoded_word(after) {
            Some((text, len)) => {
                if !(last_was_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&text);
                rest = &after[len..];
                last_was_word = true;
            }
            None => {
                out.push_str(before);
                out.push_str("=?");
                rest = &after[2..];
                last_was_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// One encoded word at the start of `s`: its text and its length.
fn encoded_word(s: &str) -> Option<(String, usize)> {
    let inner = s.strip_prefix("=?")?;
    let (charset, inner) = inner.split_once('?')?;
    let (enc, inner) = inner.split_once('?')?;
    let end = inner.find("?=")?;
    let text = &inner[..end];
    if text.contains(' ') || charset.len() > 40 {
        return None;
    }
    let len = 2 + charset.len() + 1 + enc.len() + 1 + end + 2;
    let charset = charset.split('*').next().unwrap_or(charset);
    let bytes = match enc {
        "B" | "b" => base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .ok()?,
        "Q" | "q" => quoted_printable(text.replace('_', " ").as_bytes()),
        _ => return None,
    };
    Some((decode_charset(&bytes, charset), len))
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_decodes_encoded_words_and_unfolds() {
        let raw = b"From: =?UTF-8?B?SsO8cmdlbg==?= <j@example.org>\r\nTo: a@example.org\r\nSubject: =?iso-8859-1?Q?caf=E9_au?=\r\n =?utf-8?q?_lait?= today\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nbody\r\n";
        let s = summary(raw);
        assert_eq!(s.from, "Jürgen <j@example.org>");
        assert_eq!(s.to, "a@example.org");
        assert_eq!(s.subject, "café au lait today");
        assert_eq!(s.date, "Mon, 23 Nov 2026 10:00:00 +0000");
    }

    #[test]
    fn plain_text_of_simple_and_encoded_messages() {
        assert_eq!(
            plain_text(b"Subject: x\n\nhello\nworld\n", 100),
            "hello\nworld\n"
        );
        let qp = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 a very long line that is=\r\n soft broken\r\n";
        assert_eq!(
            plain_text(qp, 100),
            "café a very long line that is soft broken\n"
        );
        let b64 = b"Content-Type: text/plain; charset=\"UTF-8\"\nContent-Transfer-Encoding: base64\n\naMOkbGxv\nIQ==\n";
        assert_eq!(plain_text(b64, 100), "hällo!");
        let latin1 = b"Content-Type: text/plain; charset=iso-8859-1\n\ncaf\xe9\n";
        assert_eq!(plain_text(latin1, 100), "café\n");
    }

    #[test]
    fn plain_text_finds_the_text_part_of_a_multipart() {
        let raw = b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\npreamble\r\n--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/html\r\n\r\n<b>html</b>\r\n--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nthe text\r\n--inner--\r\n--outer\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n--outer--\r\n";
        assert_eq!(plain_text(raw, 100), "the text");
        let html_only = b"Content-Type: text/html\n\n<p>x</p>\n";
        assert_eq!(
            plain_text(html_only, 100),
            "(This message has no plain text part.)"
        );
    }

    #[test]
    fn long_texts_are_cut_and_garbage_does_not_panic() {
        let raw = format!("\n{}", "x".repeat(50));
        let t = plain_text(raw.as_bytes(), 10);
        assert!(t.starts_with("xxxxxxxxxx\n\n(The message is longer"), "{t}");
        for junk in [
            &b""[..],
            b"\xff\xfe\x00",
            b"Content-Type: multipart/mixed; boundary=\n\n--\n",
            b"Content-Type: multipart/mixed\n\nx",
            b"Subject: =?utf-8?B?!!!?= =?x?Z?y?= =?\n\n",
            b"Content-Transfer-Encoding: base64\n\n!!!!",
            b"Content-Transfer-Encoding: quoted-printable\n\n=\n=4\n=zz",
        ] {
            let _ = plain_text(junk, 100);
            let _ = summary(junk);
        }
        // nesting deeper than the bound ends without a text
        let mut deep = String::new();
        for i in 0..50 {
            deep.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n"
            ));
        }
        deep.push_str("\ntext\n");
        assert_eq!(
            plain_text(deep.as_bytes(), 100),
            "(This message has no plain text part.)"
        );
    }
}
