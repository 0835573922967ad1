//! Fuzz target `archive`: walking an uploaded zip or gzip/tar within its
//! bounds ([`crate::import::archive::for_each`]), and the mailbox names the
//! import derives from entry names ([`crate::mail::normalize_mailbox_name`]).
//!
//! Input: byte 0 picks zip or gzip and whether to build an archive; bytes 1
//! and 2 set the entry and expanded-byte bounds (small, so the limits are
//! hit); the rest is the archive, or, in build mode, the entries of a tgz
//! made here from it, which must walk back to the same names and contents.
//!
//! Never: does file I/O (the archive is a `Cursor` over the bytes).

use std::io::Cursor;

use crate::import::archive::{
    ArchiveError, ArchiveKind, Bounds, EntryKind, Stop, for_each, read_error,
};
use crate::mail::{MAX_MAILBOX_DEPTH, MAX_MAILBOX_NAME, normalize_mailbox_name};

/// What a walk saw: (name, kind, data) per entry, and how it ended.
type Walk = (Vec<(Vec<u8>, EntryKind, Vec<u8>)>, Result<(), Stop>);

fn walk(bytes: &[u8], kind: ArchiveKind, bounds: Bounds) -> Walk {
    let mut seen = Vec::new();
    let res = for_each(Cursor::new(bytes), kind, bounds, &mut |name, kind, data| {
        let mut buf = Vec::new();
        data.read_to_end(&mut buf)
            .map_err(|e| Stop::Archive(read_error(&e, bounds)))?;
        seen.push((name.to_vec(), kind, buf));
        Ok(())
    });
    (seen, res)
}

/// A mailbox name derived from an entry name is safe to use as a path part.
fn check_name(raw: &[u8]) {
    let text = String::from_utf8_lossy(raw);
    for candidate in [&text[..], text.rsplit_once('/').map_or("", |(d, _)| d)] {
        if let Ok(n) = normalize_mailbox_name(candidate) {
            assert!(!n.is_empty() && n.len() <= MAX_MAILBOX_NAME);
            assert!(!n.starts_with('/') && !n.ends_with('/'));
            assert!(!n.contains('\0') && !n.chars().any(char::is_control));
            let parts: Vec<&str> = n.split('/').collect();
            assert!(parts.len() <= MAX_MAILBOX_DEPTH);
            assert!(
                parts
                    .iter()
                    .all(|p| !p.is_empty() && *p != "." && *p != "..")
            );
            assert_eq!(
                normalize_mailbox_name(&n).as_deref(),
                Ok(&n[..]),
                "not idempotent"
            );
        }
    }
}

/// Checks the bounds of a walk over any bytes, and the build round trip.
pub fn archive(data: &[u8]) {
    let (mode, rest) = data.split_first().unwrap_or((&0, &[][..]));
    let (b1, rest) = rest.split_first().unwrap_or((&0, &[][..]));
    let (b2, rest) = rest.split_first().unwrap_or((&0, &[][..]));
    let bounds = Bounds {
        entries: u64::from(b1 % 16),
        expanded: u64::from(*b2) * 64,
    };
    if mode & 2 != 0 {
        return build(rest);
    }
    let kind = if mode & 1 == 0 {
        ArchiveKind::Zip
    } else {
        ArchiveKind::Gzip
    };
    let (seen, res) = walk(rest, kind, bounds);
    assert!(seen.len() as u64 <= bounds.entries, "entry limit passed");
    let total: usize = seen.iter().map(|(_, _, d)| d.len()).sum();
    assert!(total as u64 <= bounds.expanded, "byte budget passed");
    for (name, _, _) in &seen {
        check_name(name);
    }
    match res {
        Ok(()) | Err(Stop::Archive(ArchiveError::Corrupt(_))) => {}
        Err(Stop::Archive(ArchiveError::TooManyEntries(n))) => assert_eq!(n, bounds.entries),
        Err(Stop::Archive(ArchiveError::TooLarge(n))) => assert_eq!(n, bounds.expanded),
        Err(Stop::Pipeline(m)) => panic!("pipeline stop not from the callback: {m}"),
    }
}

/// Builds a tgz from entries described by `rest` and walks it back.
fn build(rest: &[u8]) {
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, chunk) in rest.split(|&b| b == 0).take(8).enumerate() {
        let name_len = usize::from(chunk.first().copied().unwrap_or(0) % 8).min(chunk.len());
        let name: String = chunk[..name_len]
            .iter()
            .map(|b| char::from(b'a' + b % 26))
            .collect();
        entries.push((format!("d{i}/{name}x"), chunk[name_len..].to_vec()));
    }
    let mut tgz = Vec::new();
    {
        let gz = flate2::write::GzEncoder::new(&mut tgz, flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (name, body) in &entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            b.append_data(&mut h, name, &body[..])
                .expect("appending to a Vec");
        }
        b.into_inner()
            .and_then(|gz| gz.finish())
            .expect("finishing a Vec");
    }
    let roomy = Bounds {
        entries: 8,
        expanded: 1 << 20,
    };
    let (seen, res) = walk(&tgz, ArchiveKind::Gzip, roomy);
    assert!(res.is_ok(), "a built archive failed: {:?}", res.err());
    let got: Vec<(String, Vec<u8>)> = seen
        .into_iter()
        .map(|(n, k, d)| {
            assert_eq!(k, EntryKind::File);
            (String::from_utf8(n).expect("ASCII name"), d)
        })
        .collect();
    assert_eq!(got, entries);
    // One entry fewer allowed than present: a precise error.
    if !entries.is_empty() {
        let tight = Bounds {
            entries: entries.len() as u64 - 1,
            expanded: 1 << 20,
        };
        let (seen, res) = walk(&tgz, ArchiveKind::Gzip, tight);
        assert_eq!(seen.len(), entries.len() - 1);
        assert!(matches!(
            res,
            Err(Stop::Archive(ArchiveError::TooManyEntries(n))) if n == tight.entries
        ));
    }
}
