//! Reading an uploaded archive entry by entry, within bounds.
//!
//! Owns format detection by magic bytes ([`detect`]) and the iteration over
//! a zip (central directory, random access) or a gzip-compressed tar
//! (streaming), handing each entry's raw name, kind and a reader to a
//! callback. Every decompressed byte is counted against one budget and every
//! entry against a count limit, so zip bombs and tar bombs stop with a
//! precise error. Symlinks, devices and other special entries are reported
//! as such, never followed; nothing is written to the file system.
//!
//! Never: trusts sizes declared in the archive; interprets names (the
//! pipeline validates them).

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use flate2::read::MultiGzDecoder;

/// The container of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// A zip file.
    Zip,
    /// gzip (a tgz).
    Gzip,
}

/// The container an upload's first bytes announce.
pub fn detect(head: &[u8]) -> Option<ArchiveKind> {
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Some(ArchiveKind::Zip)
    } else if head.starts_with(&[0x1f, 0x8b]) {
        Some(ArchiveKind::Gzip)
    } else {
        None
    }
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic or hard link.
    Link,
    /// A character or block device, or a fifo.
    Device,
    /// Anything else.
    Other,
}

/// Why reading the archive stopped. Each ends the import.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The container is damaged (broken gzip, truncated zip, bad tar).
    #[error("archive is corrupt: {0}")]
    Corrupt(String),
    /// More entries than allowed.
    #[error("archive has more than {0} entries")]
    TooManyEntries(u64),
    /// Decompresses to more bytes than allowed.
    #[error("archive expands to more than {0} bytes")]
    TooLarge(u64),
}

/// Why the callback stopped the iteration.
#[derive(Debug)]
pub enum Stop {
    /// Reading an entry failed: the archive's fault ([`ArchiveError`]).
    Archive(ArchiveError),
    /// The pipeline's own reason (cancelled, storage failure).
    Pipeline(String),
}

/// Bounds on one archive.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Most decompressed bytes.
    pub expanded: u64,
    /// Most entries.
    pub entries: u64,
}

/// Counts bytes read through it against a shared budget.
struct Budget<R> {
    inner: R,
    used: Rc<Cell<u64>>,
    limit: u64,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let used = self.used.get() + n as u64;
        self.used.set(used);
        if used > self.limit {
            return Err(io::Error::other(BudgetExceeded));
        }
        Ok(n)
    }
}

#[derive(Debug)]
struct BudgetExceeded;

impl std::fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("decompression budget exceeded")
    }
}

impl std::error::Error for BudgetExceeded {}

/// Maps an error from reading an entry's data to why the archive stopped.
pub fn read_error(e: &io::Error, bounds: Bounds) -> ArchiveError {
    if e.get_ref().is_some_and(|i| i.is::<BudgetExceeded>()) {
        ArchiveError::TooLarge(bounds.expanded)
    } else {
        ArchiveError::Corrupt(e.to_string())
    }
}

/// The callback: raw name, kind, data.
pub type Visit<'a> = dyn FnMut(&[u8], EntryKind, &mut dyn Read) -> Result<(), Stop> + 'a;

/// Calls `visit` for every entry, in archive order. `file` is the upload's
/// temporary file (any seekable reader: the `archive` fuzz target passes
/// bytes in memory).
pub fn for_each<F: Read + io::Seek>(
    file: F,
    kind: ArchiveKind,
    bounds: Bounds,
    visit: &mut Visit<'_>,
) -> Result<(), Stop> {
    let used = Rc::new(Cell::new(0));
    match kind {
        ArchiveKind::Zip => {
            let mut z = zip::ZipArchive::new(io::BufReader::new(file))
                .map_err(|e| Stop::Archive(ArchiveError::Corrupt(format!("reading zip: {e}"))))?;
            if z.len() as u64 > bounds.entries {
                return Err(Stop::Archive(ArchiveError::TooManyEntries(bounds.entries)));
            }
            for i in 0..z.len() {
                let f = z.by_index(i).map_err(|e| {
                    Stop::Archive(ArchiveError::Corrupt(format!("zip entry {i}: {e}")))
                })?;
                let name = f.name_raw().to_vec();
                let kind = if f.is_dir() {
                    EntryKind::Dir
                } else if f.is_symlink() {
                    EntryKind::Link
                } else if f.unix_mode().is_some_and(|m| {
                    let t = m & 0o170000;
                    t != 0 && t != 0o100000 && t != 0o040000
                }) {
                    EntryKind::Device
                } else {
                    EntryKind::File
                };
                let mut r = Budget {
                    inner: f,
                    used: used.clone(),
                    limit: bounds.expanded,
                };
                visit(&name, kind, &mut r)?;
            }
            Ok(())
        }
        ArchiveKind::Gzip => {
            let gz = Budget {
                inner: MultiGzDecoder::new(io::BufReader::new(file)),
                used: used.clone(),
                limit: bounds.expanded,
            };
            let mut t = tar::Archive::new(gz);
            let entries = t
                .entries()
                .map_err(|e| Stop::Archive(read_error(&e, bounds)))?;
            let mut n = 0u64;
            for e in entries {
                let mut e = e.map_err(|e| Stop::Archive(read_error(&e, bounds)))?;
                n += 1;
                if n > bounds.entries {
                    return Err(Stop::Archive(ArchiveError::TooManyEntries(bounds.entries)));
                }
                let name = e.path_bytes().into_owned();
                let kind = match e.header().entry_type() {
                    tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
                    tar::EntryType::Directory => EntryKind::Dir,
                    tar::EntryType::Symlink | tar::EntryType::Link => EntryKind::Link,
                    tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                        EntryKind::Device
                    }
                    _ => EntryKind::Other,
                };
                visit(&name, kind, &mut e)?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::{Seek as _, Write as _};

    fn tgz(entries: &[(&str, &[u8], tar::EntryType)]) -> File {
        let mut f = tempfile::tempfile().expect("tmp");
        {
            let gz = flate2::write::GzEncoder::new(&mut f, flate2::Compression::fast());
            let mut b = tar::Builder::new(gz);
            for (name, data, t) in entries {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_entry_type(*t);
                h.set_mode(0o644);
                b.append_data(&mut h, name, *data).expect("append");
            }
            b.into_inner().expect("tar").finish().expect("gz");
        }
        f.rewind().expect("rewind");
        f
    }

    type Seen = Vec<(String, EntryKind, Vec<u8>)>;

    fn collect(f: File, kind: ArchiveKind, bounds: Bounds) -> (Seen, Option<Stop>) {
        let mut v = Vec::new();
        let r = for_each(f, kind, bounds, &mut |n, k, r| {
            let mut d = Vec::new();
            r.read_to_end(&mut d)
                .map_err(|e| Stop::Archive(read_error(&e, bounds)))?;
            v.push((String::from_utf8_lossy(n).into_owned(), k, d));
            Ok(())
        });
        (v, r.err())
    }

    const BIG: Bounds = Bounds {
        expanded: 1 << 20,
        entries: 100,
    };

    #[test]
    fn detects() {
        assert_eq!(detect(b"PK\x03\x04rest"), Some(ArchiveKind::Zip));
        assert_eq!(detect(&[0x1f, 0x8b, 8]), Some(ArchiveKind::Gzip));
        assert_eq!(detect(b"From x"), None);
        assert_eq!(detect(b""), None);
    }

    #[test]
    fn tar_entries_and_bounds() {
        let f = tgz(&[
            ("a.mbox", b"From x\n", tar::EntryType::Regular),
            ("dev", b"", tar::EntryType::Char),
        ]);
        let (v, stop) = collect(f, ArchiveKind::Gzip, BIG);
        assert!(stop.is_none());
        assert_eq!(v[0].1, EntryKind::File);
        assert_eq!(v[0].2, b"From x\n");
        assert_eq!(v[1].1, EntryKind::Device);
        let f = tgz(&[("a", &[0u8; 5000], tar::EntryType::Regular)]);
        let (_, stop) = collect(
            f,
            ArchiveKind::Gzip,
            Bounds {
                expanded: 4096,
                entries: 10,
            },
        );
        assert!(
            matches!(stop, Some(Stop::Archive(ArchiveError::TooLarge(4096)))),
            "{stop:?}"
        );
        let f = tgz(&[
            ("a", b"", tar::EntryType::Regular),
            ("b", b"", tar::EntryType::Regular),
        ]);
        let (_, stop) = collect(
            f,
            ArchiveKind::Gzip,
            Bounds {
                expanded: 1 << 20,
                entries: 1,
            },
        );
        assert!(matches!(
            stop,
            Some(Stop::Archive(ArchiveError::TooManyEntries(1)))
        ));
    }

    #[test]
    fn broken_containers() {
        let mut f = tempfile::tempfile().expect("tmp");
        f.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3])
            .expect("w");
        f.rewind().expect("rewind");
        let (_, stop) = collect(f, ArchiveKind::Gzip, BIG);
        assert!(
            matches!(stop, Some(Stop::Archive(ArchiveError::Corrupt(_)))),
            "{stop:?}"
        );
        let mut f = tempfile::tempfile().expect("tmp");
        f.write_all(b"PK\x03\x04truncated").expect("w");
        f.rewind().expect("rewind");
        let (_, stop) = collect(f, ArchiveKind::Zip, BIG);
        assert!(
            matches!(stop, Some(Stop::Archive(ArchiveError::Corrupt(_)))),
            "{stop:?}"
        );
    }
}
