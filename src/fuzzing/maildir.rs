//! Fuzz target `maildir`: maildir file names and `dovecot-keywords` files
//! ([`crate::mail::maildir`]).
//!
//! The whole input is parsed as a file name (lossy UTF-8) and as a
//! keywords file; then flags, letters, a time and an id taken from the
//! input are written as a file name and parsed back.
//!
//! Never: does I/O.

use std::collections::BTreeSet;

use crate::mail::maildir::{file_name, keyword_file, parse_keywords, parse_name};
use crate::mail::{Flags, valid_keyword};

/// All system flag bits.
const ALL: u8 = Flags::SEEN | Flags::ANSWERED | Flags::FLAGGED | Flags::DELETED | Flags::DRAFT;

/// Checks name parsing, name round trips and keyword files.
pub fn maildir(data: &[u8]) {
    let text = String::from_utf8_lossy(data);

    // Parsing any name: only real flag bits, distinct letters a-z, a time
    // only from a leading number of at most 12 digits.
    let info = parse_name(&text);
    assert_eq!(info.flags.0 & !ALL, 0);
    assert!(info.letters.chars().all(|c| c.is_ascii_lowercase()));
    let set: BTreeSet<char> = info.letters.chars().collect();
    assert_eq!(set.len(), info.letters.len(), "letters repeat");
    if let Some(t) = info.received {
        assert!((0..=999_999_999_999).contains(&t));
        assert!(text.starts_with(&t.to_string()) || text.starts_with('0'));
    }
    if !text.contains(":2,") {
        assert_eq!(info.flags.0, 0);
        assert!(info.letters.is_empty());
    }

    // Parsed → name → parsed keeps everything (letters sorted).
    let id = u64::from_le_bytes(
        data.iter()
            .copied()
            .chain(std::iter::repeat(0))
            .take(8)
            .collect::<Vec<u8>>()
            .try_into()
            .expect("8 bytes"),
    );
    let name = file_name(info.received.unwrap_or(0), id, info.flags, &info.letters);
    let again = parse_name(&name);
    assert_eq!(again.flags, info.flags);
    assert_eq!(again.letters.chars().collect::<BTreeSet<_>>(), set);
    assert_eq!(again.received, Some(info.received.unwrap_or(0)));
    let (_, flag_part) = name.rsplit_once(":2,").expect("written with :2,");
    let mut sorted: Vec<char> = flag_part.chars().collect();
    sorted.sort_unstable();
    assert_eq!(
        flag_part.chars().collect::<Vec<_>>(),
        sorted,
        "flags not in ASCII order"
    );

    // Built from raw input bytes: any flags and letters survive.
    let flags = Flags(data.first().copied().unwrap_or(0) & ALL);
    let letters: String = data
        .iter()
        .skip(1)
        .filter(|b| b.is_ascii_lowercase())
        .map(|&b| char::from(b))
        .collect::<BTreeSet<char>>()
        .into_iter()
        .collect();
    let secs = i64::from(data.get(1).copied().unwrap_or(0)) * 1_000_003 - 7;
    let built = parse_name(&file_name(secs, id, flags, &letters));
    assert_eq!(built.flags, flags);
    assert_eq!(built.letters, letters);
    assert_eq!(built.received, Some(secs.max(0)));

    // Keyword files: letters a-z, valid keywords; write → parse gives the
    // same keywords in order, under the letters the writer assigned.
    let kw = parse_keywords(data);
    assert!(kw.len() <= 26);
    for (c, k) in &kw {
        assert!(c.is_ascii_lowercase());
        assert!(valid_keyword(k), "{k:?}");
    }
    let list: Vec<String> = kw.values().cloned().collect();
    let (map, file) = keyword_file(&list);
    let back = parse_keywords(file.as_bytes());
    assert_eq!(back.values().cloned().collect::<Vec<_>>(), list);
    for (k, c) in &map {
        assert_eq!(back.get(c), Some(k));
    }
    assert_eq!(parse_keywords(file.as_bytes()), back, "parse not stable");
}
