//! Maildir file names and `dovecot-keywords` files.
//!
//! A message file is `<mailbox>/cur/<name>` or `<mailbox>/new/<name>`; the
//! part of the name after `:2,` holds the flags (`D` draft, `F` flagged, `R`
//! replied, `S` seen, `T` trashed; `P` passed has no IMAP flag and is
//! ignored) and keyword letters `a`-`z`. The mailbox's `dovecot-keywords`
//! file maps letter `a`+N to the keyword on its line `N keyword`. A leading
//! number in the name is taken as the received time (Unix seconds), as
//! maildir writers do.
//!
//! Never: does file I/O; the archive reader and the exporter feed it names and
//! bytes.

use std::collections::BTreeMap;

use super::Flags;

/// What a maildir file name says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameInfo {
    /// System flags.
    pub flags: Flags,
    /// Keyword letters, to be resolved with the mailbox's `dovecot-keywords`.
    pub letters: String,
    /// Received time from the leading number, if any.
    pub received: Option<i64>,
}

/// Parses a message file name (the last path part).
pub fn parse_name(name: &str) -> NameInfo {
    let mut info = NameInfo::default();
    let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
    if !digits.is_empty() && digits.len() <= 12 {
        info.received = digits.parse().ok();
    }
    let Some((_, fl)) = name.rsplit_once(":2,") else {
        return info;
    };
    for c in fl.chars() {
        match c {
            'D' => info.flags.set(Flags::DRAFT),
            'F' => info.flags.set(Flags::FLAGGED),
            'R' => info.flags.set(Flags::ANSWERED),
            'S' => info.flags.set(Flags::SEEN),
            'T' => info.flags.set(Flags::DELETED),
            'a'..='z' if !info.letters.contains(c) => info.letters.push(c),
            _ => {}
        }
    }
    info
}

/// The file name an exported message gets: `<secs>.<id>.postern:2,<flags>`,
/// flags and letters in ASCII order as maildir requires.
pub fn file_name(received_secs: i64, id: u64, flags: Flags, letters: &str) -> String {
    let mut f: Vec<char> = Vec::new();
    for (bit, c) in [
        (Flags::DRAFT, 'D'),
        (Flags::FLAGGED, 'F'),
        (Flags::ANSWERED, 'R'),
        (Flags::SEEN, 'S'),
        (Flags::DELETED, 'T'),
    ] {
        if flags.has(bit) {
            f.push(c);
        }
    }
    f.extend(letters.chars());
    f.sort_unstable();
    let f: String = f.into_iter().collect();
    format!("{}.{id}.postern:2,{f}", received_secs.max(0))
}

/// Parses a `dovecot-keywords` file into letter → keyword. Lines that are not
/// `N keyword` with N in 0..26 are ignored.
pub fn parse_keywords(content: &[u8]) -> BTreeMap<char, String> {
    let mut m = BTreeMap::new();
    for line in String::from_utf8_lossy(content).lines() {
        let Some((n, k)) = line.trim().split_once(' ') else {
            continue;
        };
        let (Ok(n), k) = (n.parse::<u8>(), k.trim()) else {
            continue;
        };
        if n < 26 && super::valid_keyword(k) {
            m.insert(char::from(b'a' + n), k.to_string());
        }
    }
    m
}

/// Assigns letters to a mailbox's keywords (at most 26) and renders its
/// `dovecot-keywords` file.
pub fn keyword_file(keywords: &[String]) -> (BTreeMap<String, char>, String) {
    let mut map = BTreeMap::new();
    let mut text = String::new();
    for (i, k) in keywords.iter().take(26).enumerate() {
        let c = char::from(b'a' + i as u8);
        map.insert(k.clone(), c);
        text.push_str(&format!("{i} {k}\n"));
    }
    (map, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip() {
        let n = file_name(1_700_000_000, 7, Flags(Flags::SEEN | Flags::DRAFT), "ba");
        assert_eq!(n, "1700000000.7.postern:2,DSab");
        let i = parse_name(&n);
        assert_eq!(i.flags.0, Flags::SEEN | Flags::DRAFT);
        assert_eq!(i.letters, "ab");
        assert_eq!(i.received, Some(1_700_000_000));
        assert_eq!(parse_name("plain").flags.0, 0);
        assert_eq!(
            parse_name("x:2,PRT").flags.0,
            Flags::ANSWERED | Flags::DELETED
        );
    }

    #[test]
    fn keyword_files() {
        let m = parse_keywords(b"0 $Important\n1 work\nbogus\n30 far\n2 bad word\n");
        assert_eq!(m.get(&'a').map(String::as_str), Some("$Important"));
        assert_eq!(m.get(&'b').map(String::as_str), Some("work"));
        assert_eq!(m.len(), 2);
        let (map, text) = keyword_file(&["x".into(), "y".into()]);
        assert_eq!(text, "0 x\n1 y\n");
        assert_eq!(map.get("y"), Some(&'b'));
    }
}
