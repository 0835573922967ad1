//! The field walk of the import upload form (`POST <prefix>import`,
//! `multipart/form-data`): which parts count, where the file goes, and every
//! bound on the way.
//!
//! ```text
//!   Content-Type ──parse_boundary──▶ boundary
//!   body stream ──multer (whole-stream bound)──▶ part, part, ...   (≤ fields)
//!      "file" (first one)        ──▶ sink (AsyncWrite)               (≤ file bytes)
//!      "skipMailboxPrefix" (last) ──▶ Upload::prefix, UTF-8          (≤ prefix bytes)
//!      any other part, 2nd "file" ──▶ counted, dropped               (≤ other bytes, together)
//! ```
//!
//! [`read_form`] is generic over the byte stream and the sink, so the
//! handler ([`super::mail`]) drives it with the request body and a temporary
//! file, and the `multipart` fuzz target ([`crate::fuzzing::multipart()`])
//! with bytes in memory and a `Vec<u8>`. Every bound answers an
//! [`UploadError`], never a shortened upload.
//!
//! Never: holds a part in memory (only the prefix, bounded), decides what
//! the file is, or echoes more than [`MAX_ERROR`] bytes of client text in an
//! error.

use bytes::Bytes;
use futures_util::Stream;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

/// Bytes allowed in multipart fields other than `file`, together.
pub const MAX_OTHER_FIELDS: u64 = 64 * 1024;
/// Most multipart parts in an upload.
pub const MAX_FIELDS: usize = 16;
/// Longest `skipMailboxPrefix`.
pub const MAX_PREFIX: usize = 1024;
/// Bytes of framing (boundary line, part headers) allowed per part on top
/// of the parts' contents; browsers send about 150.
pub const FRAMING_PER_FIELD: u64 = 4096;
/// Longest error message, so client-controlled text (a field name in a
/// parse error) is echoed only in part.
pub const MAX_ERROR: usize = 200;

/// The bounds of one upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Largest file.
    pub file: u64,
    /// Largest sum of the other parts' contents.
    pub other: u64,
    /// Most parts.
    pub fields: usize,
    /// Longest `skipMailboxPrefix`.
    pub prefix: usize,
    /// Framing bytes allowed per part (see [`UploadLimits::whole`]).
    pub framing: u64,
}

impl UploadLimits {
    /// The import's bounds for a file of at most `file` bytes.
    pub fn new(file: u64) -> UploadLimits {
        UploadLimits {
            file,
            other: MAX_OTHER_FIELDS,
            fields: MAX_FIELDS,
            prefix: MAX_PREFIX,
            framing: FRAMING_PER_FIELD,
        }
    }

    /// Largest whole body: every content bound plus framing for each part
    /// and the closing line. A body past it is [`UploadError::TooLarge`]
    /// (the file is the part that can be large), whatever its shape, so
    /// part headers and preambles are bounded too.
    pub fn whole(&self) -> u64 {
        let parts = u64::try_from(self.fields).unwrap_or(u64::MAX);
        self.file
            .saturating_add(self.other)
            .saturating_add(parts.saturating_add(1).saturating_mul(self.framing))
    }
}

/// One part as the walk saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartSeen {
    /// Its `name` parameter (`None`: no `Content-Disposition` name).
    pub name: Option<String>,
    /// Bytes of content.
    pub bytes: u64,
}

/// A complete upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Bytes written to the sink (the first `file` part).
    pub file_bytes: u64,
    /// The last `skipMailboxPrefix` part, or empty.
    pub prefix: String,
    /// Every part, in order.
    pub parts: Vec<PartSeen>,
}

/// Why an upload was refused. All but [`UploadError::Sink`] are the client's
/// doing (HTTP 400 `user:error`, the message is shown).
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The Content-Type is not `multipart/form-data` with a boundary.
    #[error("request must be multipart/form-data with a field \"file\"")]
    NotMultipart,
    /// The body is not well-formed multipart (message from multer, cut to
    /// [`MAX_ERROR`]).
    #[error("reading upload: {0}")]
    Malformed(String),
    /// The file, or the whole body, is over its bound (the file's limit).
    #[error("file is larger than the limit of {0} bytes")]
    TooLarge(u64),
    /// The other parts together are over their bound.
    #[error("form fields other than the file are too large")]
    OtherTooLarge,
    /// More parts than allowed.
    #[error("more than {0} form fields")]
    TooManyFields(usize),
    /// `skipMailboxPrefix` is over its bound.
    #[error("skipMailboxPrefix is longer than {0} bytes")]
    PrefixTooLong(usize),
    /// `skipMailboxPrefix` is not UTF-8.
    #[error("skipMailboxPrefix is not UTF-8")]
    PrefixNotUtf8,
    /// No `file` part.
    #[error("missing file")]
    MissingFile,
    /// Writing the sink failed (the server's fault).
    #[error("writing upload: {0}")]
    Sink(std::io::Error),
}

impl UploadError {
    /// Whether the server, not the client, failed.
    pub fn is_server(&self) -> bool {
        matches!(self, UploadError::Sink(_))
    }
}

fn malformed(e: &multer::Error, limits: &UploadLimits) -> UploadError {
    if let multer::Error::StreamSizeExceeded { .. } = e {
        return UploadError::TooLarge(limits.file);
    }
    let mut m = e.to_string();
    if m.len() > MAX_ERROR {
        let mut cut = MAX_ERROR;
        while !m.is_char_boundary(cut) {
            cut -= 1;
        }
        m.truncate(cut);
        m.push('…');
    }
    UploadError::Malformed(m)
}

/// Reads an upload form: `content_type` is the request's Content-Type, the
/// body comes from `stream`, the first `file` part goes to `sink` (flushed).
pub async fn read_form<'r, S, E, W>(
    content_type: &str,
    stream: S,
    limits: &UploadLimits,
    sink: &mut W,
) -> Result<Upload, UploadError>
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'r,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'r,
    W: AsyncWrite + Unpin,
{
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        return Err(UploadError::NotMultipart);
    };
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(limits.whole()));
    let mut mp = multer::Multipart::with_constraints(stream, boundary, constraints);
    let mut up = Upload {
        file_bytes: 0,
        prefix: String::new(),
        parts: Vec::new(),
    };
    let mut have_file = false;
    let mut other = 0u64;
    loop {
        let mut field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(malformed(&e, limits)),
        };
        if up.parts.len() >= limits.fields {
            return Err(UploadError::TooManyFields(limits.fields));
        }
        let name = field.name().map(str::to_owned);
        let mut n = 0u64;
        if name.as_deref() == Some("file") && !have_file {
            have_file = true;
            loop {
                match field.chunk().await {
                    Ok(Some(c)) => {
                        n += c.len() as u64;
                        if n > limits.file {
                            return Err(UploadError::TooLarge(limits.file));
                        }
                        sink.write_all(&c).await.map_err(UploadError::Sink)?;
                    }
                    Ok(None) => break,
                    Err(e) => return Err(malformed(&e, limits)),
                }
            }
            sink.flush().await.map_err(UploadError::Sink)?;
            up.file_bytes = n;
        } else {
            let is_prefix = name.as_deref() == Some("skipMailboxPrefix");
            let mut v = Vec::new();
            loop {
                match field.chunk().await {
                    Ok(Some(c)) => {
                        n += c.len() as u64;
                        other += c.len() as u64;
                        if other > limits.other {
                            return Err(UploadError::OtherTooLarge);
                        }
                        if is_prefix {
                            v.extend_from_slice(&c);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Err(malformed(&e, limits)),
                }
            }
            if is_prefix {
                if v.len() > limits.prefix {
                    return Err(UploadError::PrefixTooLong(limits.prefix));
                }
                up.prefix = String::from_utf8(v).map_err(|_| UploadError::PrefixNotUtf8)?;
            }
        }
        up.parts.push(PartSeen { name, bytes: n });
    }
    if !have_file {
        return Err(UploadError::MissingFile);
    }
    Ok(up)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ct: &str, body: &[u8], limits: &UploadLimits) -> (Result<Upload, UploadError>, Vec<u8>) {
        let mut sink = Vec::new();
        let chunks: Vec<Result<Bytes, std::io::Error>> = body
            .chunks(7)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let r = crate::fuzzing::multipart::block_on_ready(read_form(
            ct,
            futures_util::stream::iter(chunks),
            limits,
            &mut sink,
        ));
        (r, sink)
    }

    const CT: &str = "multipart/form-data; boundary=XyZ";

    fn part(name: &str, data: &str) -> String {
        format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{data}\r\n")
    }

    #[test]
    fn file_and_prefix_are_read_and_other_parts_counted() {
        let body = format!(
            "preamble\r\n{}{}{}{}--XyZ--\r\nepilogue",
            part("skipMailboxPrefix", "a/"),
            part("file", "PK\x03\x04 data"),
            part("file", "second file"),
            part("skipMailboxPrefix", "b/")
        );
        let (r, sink) = run(CT, body.as_bytes(), &UploadLimits::new(100));
        let up = r.expect("reads");
        assert_eq!(sink, b"PK\x03\x04 data");
        assert_eq!(up.file_bytes, 9);
        assert_eq!(up.prefix, "b/");
        let names: Vec<_> = up.parts.iter().map(|p| p.name.as_deref()).collect();
        assert_eq!(
            names,
            [
                Some("skipMailboxPrefix"),
                Some("file"),
                Some("file"),
                Some("skipMailboxPrefix")
            ]
        );
        assert_eq!(up.parts[2].bytes, 11);
    }

    #[test]
    fn every_bound_is_an_error() {
        let file = format!("{}--XyZ--\r\n", part("file", "0123456789"));
        let (r, _) = run(CT, file.as_bytes(), &UploadLimits::new(9));
        assert!(matches!(r, Err(UploadError::TooLarge(9))), "{r:?}");
        let (r, _) = run(CT, file.as_bytes(), &UploadLimits::new(10));
        assert!(r.is_ok());
        let mut l = UploadLimits::new(10);
        (l.framing, l.other, l.fields) = (10, 0, 1);
        let (r, _) = run(CT, file.as_bytes(), &l);
        assert!(matches!(r, Err(UploadError::TooLarge(10))), "whole body");
        l = UploadLimits::new(10);
        l.fields = 1;
        let two = format!("{}{}--XyZ--\r\n", part("x", ""), part("file", ""));
        let (r, _) = run(CT, two.as_bytes(), &l);
        assert!(matches!(r, Err(UploadError::TooManyFields(1))), "{r:?}");
        l = UploadLimits::new(10);
        l.other = 3;
        let other = format!("{}{}--XyZ--\r\n", part("x", "ab"), part("y", "cd"));
        let (r, _) = run(CT, other.as_bytes(), &l);
        assert!(matches!(r, Err(UploadError::OtherTooLarge)), "{r:?}");
        l = UploadLimits::new(10);
        l.prefix = 1;
        let p = format!("{}--XyZ--\r\n", part("skipMailboxPrefix", "ab"));
        let (r, _) = run(CT, p.as_bytes(), &l);
        assert!(matches!(r, Err(UploadError::PrefixTooLong(1))), "{r:?}");
        let (r, _) = run(CT, p.as_bytes(), &UploadLimits::new(10));
        assert!(matches!(r, Err(UploadError::MissingFile)), "{r:?}");
        let (r, _) = run("text/plain", p.as_bytes(), &UploadLimits::new(10));
        assert!(matches!(r, Err(UploadError::NotMultipart)), "{r:?}");
    }

    #[test]
    fn malformed_bodies_are_errors_with_a_bounded_message() {
        let long = "n".repeat(1000);
        let body =
            format!("--XyZ\r\nContent-Disposition: form-data; name=\"{long}\"\r\n\r\nno end");
        let (r, _) = run(CT, body.as_bytes(), &UploadLimits::new(10));
        match r {
            Err(e @ UploadError::Malformed(_)) => {
                assert!(e.to_string().len() <= MAX_ERROR + 30, "{e}");
                assert!(!e.is_server());
            }
            other => panic!("{other:?}"),
        }
        let bad = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--XyZ";
        let (r, _) = run(CT, bad.as_bytes(), &UploadLimits::new(10));
        assert!(matches!(r, Err(UploadError::Malformed(_))), "{r:?}");
    }
}
