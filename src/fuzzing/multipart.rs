//! Fuzz target `multipart`: the import upload form's field walk
//! ([`crate::http::upload::read_form`]) over bytes in memory, with the file
//! written to a `Vec<u8>`.
//!
//! Input: byte 0 picks the mode and bytes 1-5 the bounds (small, so they
//! are hit). Raw mode: a Content-Type line, then the body, read twice: in one
//! piece and trickled in chunks of a size from the input with a pending poll
//! between chunks (so multer's partial-buffer paths run). Build mode: the rest
//! describes a boundary and parts (names `file`, `skipMailboxPrefix`, none, or
//! random; random contents), written as a body here, whose walk must answer
//! exactly what a naive model of the rules says.
//!
//! Never: does I/O or uses a runtime: [`block_on_ready`] polls the future
//! with a no-op waker until it is ready, which bytes in memory always allow.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::Stream;

use crate::http::upload::{MAX_ERROR, PartSeen, Upload, UploadError, UploadLimits, read_form};

/// Characters of a boundary (RFC 2046 `bchars`, without space).
const BCHARS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'()+_,-./:=?";

/// Polls `f` with a no-op waker until it is ready. For futures that only
/// wait on in-memory streams; panics if one stalls (a lost wake-up would
/// hang a real server's request instead).
pub fn block_on_ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000_000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("an in-memory future stalled");
}

/// A body stream that answers `Pending` (waking at once) before each chunk,
/// as a socket does.
struct Trickle {
    chunks: VecDeque<Bytes>,
    pend: bool,
}

impl Stream for Trickle {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.pend {
            self.pend = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.pend = true;
        Poll::Ready(self.chunks.pop_front().map(Ok))
    }
}

/// Walks `body` delivered in chunks of `chunk` bytes (0: one piece).
fn walk(
    ct: &str,
    body: &[u8],
    chunk: usize,
    limits: &UploadLimits,
) -> (Result<Upload, UploadError>, Vec<u8>) {
    let chunks: VecDeque<Bytes> = if chunk == 0 {
        VecDeque::from([Bytes::copy_from_slice(body)])
    } else {
        body.chunks(chunk).map(Bytes::copy_from_slice).collect()
    };
    let stream = Trickle {
        chunks,
        pend: chunk != 0,
    };
    let mut sink = Vec::new();
    let r = block_on_ready(read_form(ct, stream, limits, &mut sink));
    (r, sink)
}

fn limits(b: &[u8]) -> UploadLimits {
    let at = |i: usize| u64::from(b.get(i).copied().unwrap_or(0));
    UploadLimits {
        file: at(0) * 4,
        other: at(1) * 2,
        fields: usize::from(b.get(2).copied().unwrap_or(0) % 10),
        prefix: usize::from(b.get(3).copied().unwrap_or(0) % 40),
        framing: at(4) * 2,
    }
}

/// Checks one walk's answer against the bounds.
fn check_bounds(
    ct: &str,
    body: &[u8],
    l: &UploadLimits,
    r: &Result<Upload, UploadError>,
    sink: &[u8],
) {
    match r {
        Ok(up) => {
            let boundary = multer::parse_boundary(ct).expect("Ok needs a boundary");
            assert!(up.parts.len() <= l.fields, "part limit passed");
            assert_eq!(up.file_bytes, sink.len() as u64);
            assert!(up.file_bytes <= l.file, "file limit passed");
            let first_file = up
                .parts
                .iter()
                .position(|p| p.name.as_deref() == Some("file"))
                .expect("Ok has a file part");
            assert_eq!(up.parts[first_file].bytes, up.file_bytes);
            let other: u64 = up
                .parts
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != first_file)
                .map(|(_, p)| p.bytes)
                .sum();
            assert!(other <= l.other, "other-field limit passed");
            assert!(up.prefix.len() <= l.prefix);
            let last_prefix = up
                .parts
                .iter()
                .rfind(|p| p.name.as_deref() == Some("skipMailboxPrefix"));
            assert_eq!(up.prefix.len() as u64, last_prefix.map_or(0, |p| p.bytes));
            // Each part costs at least `--B`, CRLF, the CRLFCRLF ending its
            // headers and the CRLF before the next boundary; the end `--B--`.
            let min_part = boundary.len() as u64 + 10;
            let framed: u64 = up.parts.iter().map(|p| p.bytes + min_part).sum();
            assert!(
                framed + boundary.len() as u64 + 4 <= body.len() as u64,
                "more parts or bytes than the body holds"
            );
            assert!(up.parts.len() as u64 <= body.len() as u64 / min_part);
            assert!(contains(body, sink), "file bytes not from the body");
            assert!(contains(body, up.prefix.as_bytes()));
        }
        Err(e) => {
            assert!(
                e.to_string().len() <= MAX_ERROR + 40,
                "unbounded message: {e}"
            );
            match e {
                UploadError::NotMultipart => assert!(multer::parse_boundary(ct).is_err()),
                UploadError::TooLarge(n) => assert_eq!(*n, l.file),
                UploadError::TooManyFields(n) => assert_eq!(*n, l.fields),
                UploadError::PrefixTooLong(n) => assert_eq!(*n, l.prefix),
                UploadError::Sink(e) => panic!("a Vec failed: {e}"),
                UploadError::Malformed(_)
                | UploadError::OtherTooLarge
                | UploadError::PrefixNotUtf8
                | UploadError::MissingFile => {}
            }
            assert!(sink.len() as u64 <= l.file, "file limit passed");
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Checks the bounds of the walk over any bytes, and the build round trip.
pub fn multipart(data: &[u8]) {
    let (&mode, rest) = data.split_first().unwrap_or((&0, &[][..]));
    let (conf, rest) = rest.split_at(rest.len().min(5));
    let l = limits(conf);
    if mode & 1 != 0 {
        return build(mode, &l, rest);
    }
    let (ct, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let ct = String::from_utf8_lossy(ct);
    let (whole, sink) = walk(&ct, body, 0, &l);
    check_bounds(&ct, body, &l, &whole, &sink);
    if whole.is_ok() {
        assert!(body.len() as u64 <= l.whole(), "whole-body limit passed");
    }
    let chunk = usize::from(mode >> 1) + 1;
    let (trickled, tsink) = walk(&ct, body, chunk, &l);
    check_bounds(&ct, body, &l, &trickled, &tsink);
    // How the body is split into reads never changes a success.
    if body.len() as u64 <= l.whole() && (whole.is_ok() || trickled.is_ok()) {
        assert_eq!(whole.ok(), trickled.ok(), "chunking changed the answer");
        assert_eq!(sink, tsink);
    }
}

/// A part to write: name (or none), whether to add a filename and a
/// Content-Type, contents.
struct Part {
    name: Option<String>,
    file_name: bool,
    data: Vec<u8>,
}

/// What the rules say about `parts` (the model): the same walk, obviously.
fn model(parts: &[Part], l: &UploadLimits, body_len: usize) -> Result<Upload, UploadError> {
    if body_len as u64 > l.whole() {
        return Err(UploadError::TooLarge(l.file));
    }
    let mut up = Upload {
        file_bytes: 0,
        prefix: String::new(),
        parts: Vec::new(),
    };
    let mut have_file = false;
    let mut other = 0;
    for (i, p) in parts.iter().enumerate() {
        if i >= l.fields {
            return Err(UploadError::TooManyFields(l.fields));
        }
        let len = p.data.len() as u64;
        if p.name.as_deref() == Some("file") && !have_file {
            have_file = true;
            if len > l.file {
                return Err(UploadError::TooLarge(l.file));
            }
            up.file_bytes = len;
        } else {
            other += len;
            if other > l.other {
                return Err(UploadError::OtherTooLarge);
            }
            if p.name.as_deref() == Some("skipMailboxPrefix") {
                if p.data.len() > l.prefix {
                    return Err(UploadError::PrefixTooLong(l.prefix));
                }
                up.prefix =
                    String::from_utf8(p.data.clone()).map_err(|_| UploadError::PrefixNotUtf8)?;
            }
        }
        up.parts.push(PartSeen {
            name: p.name.clone(),
            bytes: len,
        });
    }
    if !have_file {
        return Err(UploadError::MissingFile);
    }
    Ok(up)
}

/// Builds a body from parts described by `rest` and walks it back.
fn build(mode: u8, l: &UploadLimits, rest: &[u8]) {
    let (&blen, rest) = rest.split_first().unwrap_or((&0, &[][..]));
    let blen = usize::from(blen % 70) + 1;
    let (bbytes, rest) = rest.split_at(rest.len().min(blen));
    let boundary: String = bbytes
        .iter()
        .map(|b| char::from(BCHARS[usize::from(*b) % BCHARS.len()]))
        .chain(std::iter::once('x'))
        .collect();
    let delim = format!("\r\n--{boundary}");
    let mut parts = Vec::new();
    for chunk in rest.split(|&b| b == 0).take(12) {
        let (&sel, data) = chunk.split_first().unwrap_or((&0, &[][..]));
        let name = match sel % 5 {
            0 => Some("file".to_string()),
            1 => Some("skipMailboxPrefix".to_string()),
            2 => None,
            _ => Some(
                data.iter()
                    .take(usize::from(sel >> 5))
                    .map(|b| char::from(b'a' + b % 26))
                    .collect(),
            ),
        };
        let mut data = data.to_vec();
        // Contents holding the delimiter cannot round-trip: cut there.
        if let Some(i) = data
            .windows(delim.len())
            .position(|w| w == delim.as_bytes())
        {
            data.truncate(i);
        }
        parts.push(Part {
            name,
            file_name: sel & 8 != 0,
            data,
        });
    }
    let mut body = Vec::new();
    if mode & 2 != 0 {
        body.extend_from_slice(b"This is the preamble.\r\n");
    }
    for p in &parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match &p.name {
            Some(n) if p.file_name => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{n}\"; filename=\"mail.zip\"\r\nContent-Type: application/zip\r\n").as_bytes(),
            ),
            Some(n) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{n}\"\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(b"Content-Type: text/plain\r\n"),
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&p.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    if mode & 4 != 0 {
        body.extend_from_slice(b"epilogue --");
    }
    let ct = format!("multipart/form-data; boundary=\"{boundary}\"");
    let want = model(&parts, l, body.len());
    let chunk = usize::from(mode >> 3);
    let (got, sink) = walk(&ct, &body, chunk, l);
    check_bounds(&ct, &body, l, &got, &sink);
    let roomy = body.len() as u64 <= l.whole();
    match (&want, &got) {
        (Ok(w), Ok(g)) => {
            assert_eq!(w, g);
            let file = parts
                .iter()
                .find(|p| p.name.as_deref() == Some("file"))
                .expect("a file part");
            assert_eq!(sink, file.data, "file contents");
        }
        // Trickled, the whole-body bound is met only as far as the walk reads.
        (Err(UploadError::TooLarge(_)), _) if chunk != 0 && !roomy => {}
        (Err(w), Err(g)) => assert_eq!(w.to_string(), g.to_string()),
        _ => panic!("model {want:?}, walk {got:?}"),
    }
}
