//! Export: which messages a request selects, and writing them as mbox or
//! maildir inside a tgz, zip or tar archive (or as one plain mbox), streaming.
//!
//! [`ExportSpec::from_form`] reads the form fields of `POST <prefix>export`
//! (`format`, `archive`, `mailbox`, `recursive`, `messageids`) and refuses
//! bad values and combinations with a message for a 400. [`write()`] writes
//! the archive to any `Write` while reading messages one at a time, so memory
//! stays flat whatever the mailbox size; the HTTP layer and the control socket
//! give it a [`ChannelWriter`], which feeds a bounded channel. Layout:
//!
//! | format | entry per mailbox `M` |
//! |---|---|
//! | mbox | `M.mbox`, mboxrd with `Status`/`X-Status`/`X-Keywords` |
//! | maildir | `M/dovecot-keywords` (if any), `M/cur/<time>.<id>.postern:2,<flags>` |
//!
//! A tar entry needs its size before its data: for an mbox inside tar/tgz the
//! mailbox is rendered once into a byte counter, then again into the archive.
//!
//! Never: holds more than one message in memory, or a read transaction
//! across messages.

use std::collections::BTreeMap;
use std::io::{self, Write};

use flate2::write::GzEncoder;
use redb::Database;

use super::{Flags, maildir, mbox};
use crate::store::StoreError;
use crate::store::codec::MessageRecord;
use crate::store::mail as store;

/// mbox or maildir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One mboxrd file per mailbox.
    Mbox,
    /// One maildir per mailbox.
    Maildir,
}

/// The container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archive {
    /// gzip-compressed tar.
    Tgz,
    /// zip (deflate).
    Zip,
    /// Uncompressed tar.
    Tar,
    /// No archive: one plain mbox of one mailbox.
    None,
}

impl Format {
    /// `mbox` or `maildir`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Mbox => "mbox",
            Format::Maildir => "maildir",
        }
    }
}

impl Archive {
    /// `tgz`, `zip`, `tar` or `none`.
    pub fn name(self) -> &'static str {
        match self {
            Archive::Tgz => "tgz",
            Archive::Zip => "zip",
            Archive::Tar => "tar",
            Archive::None => "none",
        }
    }

    /// The Content-Type of the download (tgz as octet-stream so browsers do
    /// not "helpfully" decompress it).
    pub fn content_type(self) -> &'static str {
        match self {
            Archive::Tgz => "application/octet-stream",
            Archive::Zip => "application/zip",
            Archive::Tar => "application/x-tar",
            Archive::None => "application/mbox",
        }
    }
}

/// What to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSpec {
    /// mbox or maildir.
    pub format: Format,
    /// The container.
    pub archive: Archive,
    /// The mailbox; empty for all.
    pub mailbox: String,
    /// Whether the mailbox's children are included.
    pub recursive: bool,
    /// Only these message ids, if given.
    pub message_ids: Option<Vec<u64>>,
}

/// Most ids in `messageids`.
pub const MAX_MESSAGE_IDS: usize = 100_000;

impl ExportSpec {
    /// Everything, as the fixed paths `export/mail-export-<format>.<archive>` ask.
    pub fn all(format: Format, archive: Archive) -> ExportSpec {
        ExportSpec {
            format,
            archive,
            mailbox: String::new(),
            recursive: true,
            message_ids: None,
        }
    }

    /// Reads the export form; the error is a message for a 400.
    pub fn from_form(fields: &[(String, String)]) -> Result<ExportSpec, String> {
        let get = |k: &str| {
            fields
                .iter()
                .find(|(n, _)| n == k)
                .map_or("", |(_, v)| v.as_str())
        };
        let format = match get("format") {
            "mbox" => Format::Mbox,
            "maildir" => Format::Maildir,
            v => return Err(format!("format must be mbox or maildir, not {v:?}")),
        };
        let archive = match get("archive") {
            "tgz" => Archive::Tgz,
            "zip" => Archive::Zip,
            "tar" => Archive::Tar,
            "none" => Archive::None,
            v => return Err(format!("archive must be tgz, zip, tar or none, not {v:?}")),
        };
        let recursive = match get("recursive") {
            "" | "false" | "off" | "0" => false,
            "on" | "true" | "1" => true,
            v => return Err(format!("recursive must be on/true/1 or empty, not {v:?}")),
        };
        let mailbox = get("mailbox").to_string();
        if !mailbox.is_empty() {
            super::normalize_mailbox_name(&mailbox).map_err(|e| format!("mailbox: {e}"))?;
        }
        let ids = get("messageids").trim();
        let message_ids = if ids.is_empty() {
            None
        } else {
            let mut v = Vec::new();
            for p in ids.split(',') {
                let p = p.trim();
                let id: u64 = p
                    .parse()
                    .map_err(|_| format!("messageids: {p:?} is not a message id number"))?;
                v.push(id);
                if v.len() > MAX_MESSAGE_IDS {
                    return Err(format!("messageids: more than {MAX_MESSAGE_IDS} ids"));
                }
            }
            Some(v)
        };
        if archive == Archive::None {
            if format != Format::Mbox {
                return Err("archive none exports a single mbox file: format must be mbox".into());
            }
            if recursive {
                return Err(
                    "archive none exports a single mailbox: recursive is not possible".into(),
                );
            }
            if mailbox.is_empty() && message_ids.is_none() {
                return Err("archive none exports a single mailbox: name the mailbox".into());
            }
        }
        Ok(ExportSpec {
            format,
            archive,
            mailbox: super::normalize_mailbox_name(&mailbox).unwrap_or_default(),
            recursive,
            message_ids,
        })
    }

    /// The download's file name:
    /// `mailexport-<account>-<YYYYMMDD-HHMMSS>.<format>.<archive>` (a plain
    /// mbox ends in `.mbox`).
    pub fn file_name(&self, account: &str, now_secs: i64) -> String {
        let base = format!("mailexport-{account}-{}", super::compact_time(now_secs));
        match self.archive {
            Archive::None => format!("{base}.mbox"),
            a => format!("{base}.{}.{}", self.format.name(), a.name()),
        }
    }

    fn selects(&self, id: u64, rec: &MessageRecord) -> bool {
        if let Some(ids) = &self.message_ids {
            return ids.contains(&id);
        }
        self.mailbox.is_empty()
            || rec.mailbox == self.mailbox
            || self.recursive
                && rec.mailbox.len() > self.mailbox.len()
                && rec.mailbox.starts_with(&self.mailbox)
                && rec.mailbox.as_bytes()[self.mailbox.len()] == b'/'
    }
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing failed (the client went away, usually).
    #[error("writing export: {0}")]
    Io(#[from] io::Error),
    /// The named mailbox does not exist.
    #[error("no such mailbox")]
    NoMailbox,
}

/// Checks that the spec's mailbox exists (so a bad name is a 400 before the
/// download starts).
pub fn check(db: &Database, account: &str, spec: &ExportSpec) -> Result<(), ExportError> {
    if spec.mailbox.is_empty() {
        return Ok(());
    }
    if store::mailboxes(db, account)?.contains(&spec.mailbox) {
        Ok(())
    } else {
        Err(ExportError::NoMailbox)
    }
}

enum Out<W: Write> {
    Tar(tar::Builder<W>),
    Tgz(Box<tar::Builder<GzEncoder<W>>>),
    Zip(Box<zip::ZipWriter<zip::write::StreamWriter<W>>>),
    Plain(W),
}

fn zip_err(e: zip::result::ZipError) -> io::Error {
    io::Error::other(e.to_string())
}

impl<W: Write> Out<W> {
    /// Adds a file of `size` bytes, written by `f`.
    fn file(
        &mut self,
        path: &str,
        size: u64,
        mtime: i64,
        f: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        match self {
            Out::Tar(b) => tar_file(b, path, size, mtime, f),
            Out::Tgz(b) => tar_file(b.as_mut(), path, size, mtime, f),
            Out::Zip(z) => {
                let (y, mo, d, h, mi, s, _) = super::civil(mtime.max(315_532_800));
                let t = zip::DateTime::from_date_and_time(
                    u16::try_from(y).unwrap_or(1980),
                    mo as u8,
                    d as u8,
                    h as u8,
                    mi as u8,
                    s as u8,
                )
                .unwrap_or_default();
                let opts = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .last_modified_time(t)
                    .large_file(size >= u64::from(u32::MAX));
                z.start_file(path, opts).map_err(zip_err)?;
                f(z.as_mut())
            }
            Out::Plain(w) => f(w),
        }
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Out::Tar(b) => b.into_inner()?.flush(),
            Out::Tgz(b) => b.into_inner()?.finish()?.flush(),
            Out::Zip(z) => z.finish().map_err(zip_err)?.into_inner().flush(),
            Out::Plain(mut w) => w.flush(),
        }
    }
}

/// A tar entry whose data is streamed: the header (with the size) is written
/// by the tar crate, the data and padding by us.
fn tar_file<W: Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    mtime: i64,
    f: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(u64::try_from(mtime).unwrap_or(0));
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, path, io::empty())?;
    let mut cw = Counter {
        inner: b.get_mut(),
        n: 0,
    };
    f(&mut cw)?;
    if cw.n != size {
        return Err(io::Error::other("message changed during export"));
    }
    let pad = (512 - size % 512) % 512;
    cw.inner.write_all(&vec![0u8; pad as usize])
}

/// Counts what passes through (or only counts, with `io::sink()`).
struct Counter<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// Writes the export. Returns the number of messages written.
pub fn write<W: Write>(
    db: &Database,
    account: &str,
    spec: &ExportSpec,
    out: W,
) -> Result<u64, ExportError> {
    let mut by_mailbox: BTreeMap<String, Vec<(u64, MessageRecord)>> = BTreeMap::new();
    for (id, rec) in store::messages(db, account)? {
        if spec.selects(id, &rec) {
            by_mailbox
                .entry(rec.mailbox.clone())
                .or_default()
                .push((id, rec));
        }
    }
    let mut out = match spec.archive {
        Archive::Tar => Out::Tar(tar::Builder::new(out)),
        Archive::Tgz => Out::Tgz(Box::new(tar::Builder::new(GzEncoder::new(
            out,
            flate2::Compression::default(),
        )))),
        Archive::Zip => Out::Zip(Box::new(zip::ZipWriter::new_stream(out))),
        Archive::None => Out::Plain(out),
    };
    let tarred = matches!(spec.archive, Archive::Tar | Archive::Tgz);
    let mut n = 0;
    for (mailbox, msgs) in &by_mailbox {
        match spec.format {
            Format::Mbox => {
                let size = if tarred {
                    let mut c = Counter {
                        inner: io::sink(),
                        n: 0,
                    };
                    write_mbox(db, account, msgs, &mut c)?;
                    c.n
                } else {
                    0
                };
                let mtime = msgs.iter().map(|m| secs(m.1.received)).max().unwrap_or(0);
                let mut res: Result<u64, ExportError> = Ok(0);
                out.file(&format!("{mailbox}.mbox"), size, mtime, &mut |w| {
                    res = write_mbox(db, account, msgs, w);
                    res.as_ref()
                        .map(|_| ())
                        .map_err(|e| io::Error::other(e.to_string()))
                })?;
                n += res?;
            }
            Format::Maildir => {
                let mut keywords: Vec<String> = Vec::new();
                for (_, r) in msgs {
                    for k in &r.keywords {
                        if !keywords.contains(k) {
                            keywords.push(k.clone());
                        }
                    }
                }
                let (letters, text) = maildir::keyword_file(&keywords);
                if !text.is_empty() {
                    out.file(
                        &format!("{mailbox}/dovecot-keywords"),
                        text.len() as u64,
                        0,
                        &mut |w| w.write_all(text.as_bytes()),
                    )?;
                }
                for (id, rec) in msgs {
                    let Some(raw) = store::message_data(db, account, *id)? else {
                        continue;
                    };
                    let l: String = rec.keywords.iter().filter_map(|k| letters.get(k)).collect();
                    let name = maildir::file_name(secs(rec.received), *id, Flags(rec.flags), &l);
                    out.file(
                        &format!("{mailbox}/cur/{name}"),
                        raw.len() as u64,
                        secs(rec.received),
                        &mut |w| w.write_all(&raw),
                    )?;
                    n += 1;
                }
            }
        }
    }
    out.finish()?;
    Ok(n)
}

fn write_mbox(
    db: &Database,
    account: &str,
    msgs: &[(u64, MessageRecord)],
    w: &mut dyn Write,
) -> Result<u64, ExportError> {
    let mut n = 0;
    for (id, rec) in msgs {
        let Some(raw) = store::message_data(db, account, *id)? else {
            continue;
        };
        mbox::write_message(w, &raw, Flags(rec.flags), &rec.keywords, secs(rec.received))?;
        n += 1;
    }
    Ok(n)
}

/// Largest chunk a [`ChannelWriter`] sends.
pub const CHUNK: usize = 64 * 1024;

/// Feeds what a blocking exporter writes to an async consumer over a bounded
/// channel, in chunks of at most [`CHUNK`] bytes (so a slow client holds
/// back the exporter instead of growing memory). Call `flush` at the end.
pub struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<bytes::Bytes>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    /// A writer sending into `tx`.
    pub fn new(tx: tokio::sync::mpsc::Sender<bytes::Bytes>) -> ChannelWriter {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = b.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&b[..n]);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(v: &[(&str, &str)]) -> Result<ExportSpec, String> {
        ExportSpec::from_form(
            &v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn form_rules() {
        let s = form(&[
            ("format", "maildir"),
            ("archive", "zip"),
            ("recursive", "on"),
        ])
        .expect("ok");
        assert_eq!(s.format, Format::Maildir);
        assert!(s.recursive);
        assert!(form(&[("format", "x"), ("archive", "zip")]).is_err());
        assert!(form(&[("format", "mbox"), ("archive", "rar")]).is_err());
        assert!(
            form(&[
                ("format", "mbox"),
                ("archive", "zip"),
                ("recursive", "maybe")
            ])
            .is_err()
        );
        let e = form(&[
            ("format", "mbox"),
            ("archive", "zip"),
            ("messageids", "1,x"),
        ])
        .expect_err("ids");
        assert!(e.contains("\"x\""), "{e}");
        let s = form(&[
            ("format", "mbox"),
            ("archive", "none"),
            ("mailbox", "inbox"),
        ])
        .expect("none");
        assert_eq!(s.mailbox, "Inbox");
        assert!(form(&[("format", "maildir"), ("archive", "none"), ("mailbox", "a")]).is_err());
        assert!(form(&[("format", "mbox"), ("archive", "none")]).is_err());
        assert!(
            form(&[
                ("format", "mbox"),
                ("archive", "none"),
                ("mailbox", "a"),
                ("recursive", "on")
            ])
            .is_err()
        );
        assert!(
            form(&[
                ("format", "mbox"),
                ("archive", "tgz"),
                ("mailbox", "a/../b")
            ])
            .is_err()
        );
        let s = form(&[
            ("format", "mbox"),
            ("archive", "tgz"),
            ("messageids", " 3, 4 "),
        ])
        .expect("ids");
        assert_eq!(s.message_ids, Some(vec![3, 4]));
        assert_eq!(
            s.file_name("demo", 1_700_000_000),
            "mailexport-demo-20231114-221320.mbox.tgz"
        );
    }

    #[test]
    fn selection() {
        let rec = |m: &str| MessageRecord {
            mailbox: m.into(),
            flags: 0,
            keywords: vec![],
            received: 0,
            size: 0,
        };
        let mut s = ExportSpec::all(Format::Mbox, Archive::Zip);
        s.mailbox = "a".into();
        s.recursive = false;
        assert!(s.selects(1, &rec("a")));
        assert!(!s.selects(1, &rec("a/b")));
        s.recursive = true;
        assert!(s.selects(1, &rec("a/b")));
        assert!(!s.selects(1, &rec("ab")));
        s.message_ids = Some(vec![2]);
        assert!(!s.selects(1, &rec("a")));
        assert!(s.selects(2, &rec("x")));
    }
}
