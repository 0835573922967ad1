//! Fuzz target `mbox`: the bounded mbox reader and the mboxrd writer
//! ([`crate::mail::mbox`]).
//!
//! Reads the input as an mbox twice (a small message limit, so the skipping
//! of large messages runs, and a large one), checks the bounds, then writes
//! every message read back out with [`write_message`] and reads that again:
//! the same bytes (`>From ` quoting undone exactly), flags, keywords and
//! received time come back. Then once more with every flag and with keywords
//! taken from the input's words (any that [`valid_keyword`] accepts, commas
//! and continuation-first headers included): they come back too.
//!
//! Never: does I/O.

use crate::mail::mbox::{Item, MboxError, Parsed, Reader, write_message};
use crate::mail::{Flags, MAX_KEYWORDS, add_keyword, valid_keyword};

/// Every item of `data` read with `max`, or `None` when it is not an mbox.
fn read_all(data: &[u8], max: u64) -> Option<Vec<Item>> {
    let mut r = Reader::new(data, max);
    let mut items = Vec::new();
    loop {
        match r.next_item() {
            Ok(Some(i)) => items.push(i),
            Ok(None) => return Some(items),
            Err(MboxError::NotMbox) => {
                assert!(items.is_empty(), "NotMbox after a message");
                return None;
            }
            Err(MboxError::Io(e)) => panic!("reading a slice failed: {e}"),
        }
    }
}

/// Checks the reader's bounds and the write → read round trip.
pub fn mbox(data: &[u8]) {
    let from_lines = data
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"From "))
        .count();
    for max in [64u64, 1 << 20] {
        let Some(items) = read_all(data, max) else {
            assert!(!data.starts_with(b"From "), "an mbox refused");
            continue;
        };
        assert!(data.starts_with(b"From "), "a non-mbox read");
        // One item per `From ` line, in order: none lost, none invented.
        assert_eq!(items.len(), from_lines);
        let mut total = 0usize;
        let mut msgs: Vec<&Parsed> = Vec::new();
        for (n, item) in items.iter().enumerate() {
            match item {
                Item::TooLarge(pos) => assert_eq!(*pos, n as u64 + 1),
                Item::Message(p) => {
                    assert!(p.raw.len() as u64 <= max, "message over the limit");
                    total += p.raw.len();
                    msgs.push(p);
                }
            }
        }
        assert!(total <= data.len(), "more message bytes than input");
        if max == 1 << 20 {
            round_trip(&msgs, None);
            round_trip(&msgs, Some(&words(data)));
        }
    }
}

/// The valid keywords among the input's words (split on whitespace only, so
/// commas stay in and must be refused by [`valid_keyword`]).
fn words(data: &[u8]) -> Vec<String> {
    let mut list = Vec::new();
    for w in data.split(u8::is_ascii_whitespace) {
        if let Ok(w) = std::str::from_utf8(w) {
            add_keyword(&mut list, w);
        }
    }
    assert!(list.len() <= MAX_KEYWORDS);
    assert!(list.iter().all(|k| valid_keyword(k)));
    list
}

/// Writes `msgs` as one mboxrd file and reads them back; with `keywords`,
/// every message is written with those and all flags instead of its own.
fn round_trip(msgs: &[&Parsed], keywords: Option<&[String]>) {
    let all = Flags(Flags::SEEN | Flags::ANSWERED | Flags::FLAGGED | Flags::DELETED | Flags::DRAFT);
    let meta = |p: &Parsed| match keywords {
        Some(k) => (all, k.to_vec()),
        None => (p.flags, p.keywords.clone()),
    };
    let mut out = Vec::new();
    for p in msgs {
        let (flags, kw) = meta(p);
        write_message(&mut out, &p.raw, flags, &kw, p.received.unwrap_or(0))
            .expect("writing to a Vec");
    }
    let back = read_all(&out, u64::MAX).unwrap_or_default();
    assert_eq!(back.len(), msgs.len(), "messages written vs read back");
    for (p, item) in msgs.iter().zip(&back) {
        let Item::Message(q) = item else {
            panic!("an unlimited read skipped a message")
        };
        // mbox cannot end a message without a newline: the writer adds one.
        let mut want = p.raw.clone();
        if !want.ends_with(b"\n") {
            want.push(b'\n');
        }
        assert_eq!(q.raw, want, "bytes changed by write -> read");
        let (flags, kw) = meta(p);
        assert_eq!(q.flags, flags);
        assert_eq!(q.keywords, kw);
        assert_eq!(q.received, Some(p.received.unwrap_or(0)));
    }
}
