//! mbox files: a bounded streaming reader and an mboxrd writer.
//!
//! Reading: a message starts at each line beginning with `From `; the blank
//! line before the next `From ` line (LF or CRLF) is the separator and is not
//! part of the message. Lines matching `^>+From ` lose one `>` (mboxrd; this
//! also undoes mboxo quoting, which only ever wrote `>From `). `Status`,
//! `X-Status` and `X-Keywords` header fields become flags and keywords and are
//! removed from the stored bytes; everything else is kept byte for byte, with
//! its own line endings. No message is held beyond the size limit: a larger
//! one is skipped and reported.
//!
//! Writing (export): `From MAILER-DAEMON <asctime>`, then `Status`, `X-Status`
//! and `X-Keywords` fields before the message's first field (after any
//! continuation lines the header starts with), the message with
//! every `^>*From ` line quoted by one more `>`, and one LF as separator, so
//! reading an export gives back the stored bytes.
//!
//! Never: reads a line or message beyond its bound into memory.

use std::io::{self, BufRead, Write};

use super::{Flags, add_keyword, asctime, parse_asctime};

/// One item read from an mbox file.
#[derive(Debug, PartialEq, Eq)]
pub enum Item {
    /// A message with what its header said about flags and keywords.
    Message(Parsed),
    /// A message over the size limit, skipped; its 1-based position.
    TooLarge(u64),
}

/// A message as parsed from mbox or maildir.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    /// The bytes to store.
    pub raw: Vec<u8>,
    /// System flags.
    pub flags: Flags,
    /// Keywords.
    pub keywords: Vec<String>,
    /// Received time from the `From ` line, Unix seconds.
    pub received: Option<i64>,
}

/// Why an mbox cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum MboxError {
    /// The first line is not a `From ` line.
    #[error("not an mbox file: does not start with a \"From \" line")]
    NotMbox,
    /// Reading failed (a corrupt archive layer shows up here).
    #[error("reading: {0}")]
    Io(#[from] io::Error),
}

/// A streaming mbox reader.
pub struct Reader<R> {
    r: R,
    max: usize,
    /// The `From ` line that starts the next message, if read already.
    next_from: Option<Vec<u8>>,
    started: bool,
    count: u64,
}

impl<R: BufRead> Reader<R> {
    /// A reader that skips messages over `max_message` bytes.
    pub fn new(r: R, max_message: u64) -> Reader<R> {
        Reader {
            r,
            max: usize::try_from(max_message).unwrap_or(usize::MAX),
            next_from: None,
            started: false,
            count: 0,
        }
    }

    /// Appends one line (with its `\n`) to `buf`, at most `cap` bytes.
    /// Returns (bytes read, whether the line is complete).
    fn read_line(&mut self, buf: &mut Vec<u8>, cap: usize) -> io::Result<(usize, bool)> {
        let mut n = 0;
        loop {
            let avail = self.r.fill_buf()?;
            if avail.is_empty() {
                return Ok((n, true));
            }
            let room = cap.saturating_sub(n);
            if room == 0 {
                return Ok((n, false));
            }
            let take = avail.len().min(room);
            let (used, done) = match avail[..take].iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (take, false),
            };
            buf.extend_from_slice(&avail[..used]);
            self.r.consume(used);
            n += used;
            if done {
                return Ok((n, true));
            }
        }
    }

    /// Discards the rest of the current line.
    fn skip_line(&mut self) -> io::Result<()> {
        loop {
            let avail = self.r.fill_buf()?;
            if avail.is_empty() {
                return Ok(());
            }
            match avail.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.r.consume(i + 1);
                    return Ok(());
                }
                None => {
                    let l = avail.len();
                    self.r.consume(l);
                }
            }
        }
    }

    /// The next message, or `None` at the end of the file.
    pub fn next_item(&mut self) -> Result<Option<Item>, MboxError> {
        let from = match self.next_from.take() {
            Some(f) => f,
            None => {
                let mut line = Vec::new();
                let (n, complete) = self.read_line(&mut line, 4096)?;
                if n == 0 {
                    return if self.started {
                        Ok(None)
                    } else {
                        Err(MboxError::NotMbox)
                    };
                }
                if !complete {
                    self.skip_line()?;
                }
                if !line.starts_with(b"From ") {
                    return Err(MboxError::NotMbox);
                }
                line
            }
        };
        self.started = true;
        self.count += 1;
        let mut cur: Vec<u8> = Vec::new();
        let mut too_large = false;
        let mut line = Vec::new();
        loop {
            line.clear();
            let cap = if too_large {
                4096
            } else {
                self.max.saturating_add(2).saturating_sub(cur.len()).max(5)
            };
            let (n, complete) = self.read_line(&mut line, cap)?;
            if n == 0 {
                break;
            }
            if line.starts_with(b"From ") {
                if !complete {
                    self.skip_line()?;
                }
                self.next_from = Some(std::mem::take(&mut line));
                break;
            }
            if too_large {
                if !complete {
                    self.skip_line()?;
                }
                continue;
            }
            // mboxrd unquoting: ">From " -> "From ", ">>From " -> ">From ".
            let gts = line.iter().take_while(|&&b| b == b'>').count();
            let body = if gts > 0 && line[gts..].starts_with(b"From ") {
                &line[1..]
            } else {
                &line[..]
            };
            cur.extend_from_slice(body);
            if !complete || cur.len() > self.max.saturating_add(2) {
                too_large = true;
                cur = Vec::new();
                if !complete {
                    self.skip_line()?;
                }
            }
        }
        if too_large {
            return Ok(Some(Item::TooLarge(self.count)));
        }
        strip_separator(&mut cur);
        if cur.len() > self.max {
            return Ok(Some(Item::TooLarge(self.count)));
        }
        let received = std::str::from_utf8(&from)
            .ok()
            .and_then(|s| s.trim_end().splitn(3, ' ').nth(2).map(str::to_string))
            .and_then(|d| parse_asctime(&d));
        let mut p = extract_status(&cur);
        p.received = received;
        Ok(Some(Item::Message(p)))
    }
}

/// Removes the blank separator line at the end of a message.
fn strip_separator(b: &mut Vec<u8>) {
    if b.ends_with(b"\r\n\r\n") {
        b.truncate(b.len() - 2);
    } else if b.ends_with(b"\n\n") {
        b.truncate(b.len() - 1);
    } else if b == b"\n" || b == b"\r\n" {
        b.clear();
    }
}

/// Splits a message into its header lines (each with its line ending) and the
/// offset where the header ends (the blank line's start, or the end).
fn header_lines(raw: &[u8]) -> (Vec<(usize, usize)>, usize) {
    let mut lines = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        let end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| pos + i + 1);
        let line = &raw[pos..end];
        if line == b"\n" || line == b"\r\n" {
            return (lines, pos);
        }
        lines.push((pos, end));
        pos = end;
    }
    (lines, pos)
}

/// Takes `Status`, `X-Status` and `X-Keywords` out of a message's header.
pub fn extract_status(raw: &[u8]) -> Parsed {
    let (lines, hend) = header_lines(raw);
    let mut out = Vec::with_capacity(raw.len());
    let mut flags = Flags::default();
    let mut keywords = Vec::new();
    let mut dropping = false;
    for (s, e) in lines {
        let line = &raw[s..e];
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            let name_end = line.iter().position(|&b| b == b':');
            let name = name_end.map(|i| line[..i].to_ascii_lowercase());
            let value = name_end.map_or(&[][..], |i| &line[i + 1..]);
            dropping = true;
            match name.as_deref() {
                Some(b"status") => {
                    for c in value {
                        if *c == b'R' {
                            flags.set(Flags::SEEN);
                        }
                    }
                }
                Some(b"x-status") => {
                    for c in value {
                        match c {
                            b'A' => flags.set(Flags::ANSWERED),
                            b'F' => flags.set(Flags::FLAGGED),
                            b'D' => flags.set(Flags::DELETED),
                            b'T' => flags.set(Flags::DRAFT),
                            _ => {}
                        }
                    }
                }
                Some(b"x-keywords") => {
                    let v = String::from_utf8_lossy(value);
                    for k in v.split(|c: char| c == ',' || c.is_ascii_whitespace()) {
                        add_keyword(&mut keywords, k);
                    }
                }
                _ => dropping = false,
            }
        }
        if !dropping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(&raw[hend..]);
    Parsed {
        raw: out,
        flags,
        keywords,
        received: None,
    }
}

/// Writes lines of a message, quoting every `^>*From ` line with one more `>`.
fn write_quoted<W: Write + ?Sized>(w: &mut W, text: &[u8]) -> io::Result<()> {
    let mut pos = 0;
    while pos < text.len() {
        let end = text[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |i| pos + i + 1);
        let line = &text[pos..end];
        let gts = line.iter().take_while(|&&b| b == b'>').count();
        if line[gts..].starts_with(b"From ") {
            w.write_all(b">")?;
        }
        w.write_all(line)?;
        pos = end;
    }
    Ok(())
}

/// Writes one message in mboxrd form.
///
/// The `Status`/`X-Status`/`X-Keywords` fields go before the message's
/// first field. Continuation lines (space or tab) at the very start of a
/// header belong to no field: they are written before the fields, since
/// after them they would read back as a continuation of `X-Keywords`.
pub fn write_message<W: Write + ?Sized>(
    w: &mut W,
    raw: &[u8],
    flags: Flags,
    keywords: &[String],
    received_secs: i64,
) -> io::Result<()> {
    writeln!(w, "From MAILER-DAEMON {}", asctime(received_secs))?;
    let first_end = raw.iter().position(|&b| b == b'\n');
    let eol: &[u8] = match first_end {
        Some(i) if i > 0 && raw[i - 1] == b'\r' => b"\r\n",
        _ => b"\n",
    };
    let mut lead = 0;
    while matches!(raw.get(lead), Some(b' ' | b'\t')) {
        lead = raw[lead..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| lead + i + 1);
    }
    let (orphans, rest) = raw.split_at(lead);
    write_quoted(w, orphans)?;
    // An orphan line without its newline ends the message: the newline an
    // mbox message always ends with goes before the fields instead.
    let ended = !orphans.is_empty() && !orphans.ends_with(b"\n");
    if ended {
        w.write_all(b"\n")?;
    }
    if flags.has(Flags::SEEN) {
        w.write_all(b"Status: R")?;
        w.write_all(eol)?;
    }
    let mut xs = Vec::new();
    for (f, c) in [
        (Flags::ANSWERED, b'A'),
        (Flags::FLAGGED, b'F'),
        (Flags::DRAFT, b'T'),
        (Flags::DELETED, b'D'),
    ] {
        if flags.has(f) {
            xs.push(c);
        }
    }
    if !xs.is_empty() {
        w.write_all(b"X-Status: ")?;
        w.write_all(&xs)?;
        w.write_all(eol)?;
    }
    if !keywords.is_empty() {
        w.write_all(b"X-Keywords: ")?;
        w.write_all(keywords.join(" ").as_bytes())?;
        w.write_all(eol)?;
    }
    write_quoted(w, rest)?;
    if !ended && !raw.ends_with(b"\n") {
        w.write_all(b"\n")?;
    }
    w.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8], max: u64) -> Vec<Item> {
        let mut r = Reader::new(data, max);
        let mut v = Vec::new();
        while let Some(i) = r.next_item().expect("read") {
            v.push(i);
        }
        v
    }

    fn msg(i: &Item) -> &Parsed {
        match i {
            Item::Message(p) => p,
            Item::TooLarge(n) => panic!("message {n} too large"),
        }
    }

    #[test]
    fn reads_lf_and_crlf_and_unquotes() {
        let data = b"From a Thu Jan  1 00:00:00 1970\nStatus: RO\nX-Status: AF\nSubject: x\n\n>From here\n>>From there\n\nFrom b Mon Nov 23 16:03:06 2026\r\nSubject: y\r\n\r\nbody\r\n\r\n";
        let items = read_all(data, 1000);
        assert_eq!(items.len(), 2);
        let a = msg(&items[0]);
        assert_eq!(a.raw, b"Subject: x\n\nFrom here\n>From there\n");
        assert_eq!(a.flags.0, Flags::SEEN | Flags::ANSWERED | Flags::FLAGGED);
        assert_eq!(a.received, Some(0));
        let b = msg(&items[1]);
        assert_eq!(b.raw, b"Subject: y\r\n\r\nbody\r\n");
        assert_eq!(b.received, parse_asctime("Mon Nov 23 16:03:06 2026"));
    }

    #[test]
    fn refuses_non_mbox_and_skips_large() {
        let mut r = Reader::new(&b"Subject: x\n\nhi\n"[..], 100);
        assert!(matches!(r.next_item(), Err(MboxError::NotMbox)));
        let mut r = Reader::new(&b""[..], 100);
        assert!(matches!(r.next_item(), Err(MboxError::NotMbox)));
        let big = format!(
            "From a x\nSubject: big\n\n{}\n\nFrom b x\nSubject: small\n\nok\n",
            "y".repeat(500)
        );
        let items = read_all(big.as_bytes(), 100);
        assert_eq!(items[0], Item::TooLarge(1));
        assert_eq!(msg(&items[1]).raw, b"Subject: small\n\nok\n");
        let long_lines = format!("From a x\nS: b\n\n{}\n", "z\n".repeat(300));
        assert_eq!(
            read_all(long_lines.as_bytes(), 100),
            vec![Item::TooLarge(1)]
        );
    }

    #[test]
    fn write_then_read_is_exact() {
        let cases: Vec<(&[u8], u8, Vec<String>)> = vec![
            (
                b"Subject: a\n\nFrom x\n>From y\n",
                Flags::SEEN | Flags::DRAFT,
                vec!["$Junk".into(), "work".into()],
            ),
            (
                b"Subject: b\r\n\r\nFrom crlf\r\n\r\n",
                Flags::DELETED,
                vec![],
            ),
            (b"From: first line\nSubject: c\n\nbody\n", 0, vec![]),
            // A header starting with continuation lines keeps them, with
            // flags and keywords written after them.
            (
                b" folded\r\n\tagain\r\nSubject: d\r\n\r\nbody\r\n",
                Flags::SEEN | Flags::FLAGGED,
                vec!["k".into()],
            ),
            (b"\tonly\n\nbody\n", Flags::ANSWERED, vec![]),
        ];
        let mut out = Vec::new();
        for (raw, f, k) in &cases {
            write_message(&mut out, raw, Flags(*f), k, 1_700_000_000).expect("write");
        }
        let items = read_all(&out, 1 << 20);
        assert_eq!(items.len(), cases.len());
        for (i, (raw, f, k)) in items.iter().zip(&cases) {
            let p = msg(i);
            assert_eq!(p.raw, *raw);
            assert_eq!(p.flags.0, *f);
            assert_eq!(&p.keywords, k);
            assert_eq!(p.received, Some(1_700_000_000));
        }
    }

    #[test]
    fn a_lone_continuation_line_without_newline_gains_only_the_newline() {
        let mut out = Vec::new();
        write_message(&mut out, b" x", Flags(Flags::SEEN), &["k".into()], 0).expect("write");
        let items = read_all(&out, 1 << 20);
        let p = msg(&items[0]);
        assert_eq!(p.raw, b" x\n");
        assert_eq!(p.flags.0, Flags::SEEN);
        assert_eq!(p.keywords, ["k"]);
    }
}
