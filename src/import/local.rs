//! Import and export on a data directory, without a server: what the
//! `postern import` and `postern export` commands run.
//!
//! [`import_file`] and [`export_to`] are library functions over open
//! [`Stores`]: a control socket of a running server can call the same
//! functions with its own stores and sink. The command line adds the
//! progress bar ([`BarSink`]) and opens the data directory itself, which
//! fails while a server holds it (redb locks its files).
//!
//! An interrupted command (Ctrl-C) leaves only staged rows, which the next
//! open of `mail.redb` discards: the import is all or nothing here too.
//!
//! Never: writes to stdout except the export itself.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read as _, Seek as _, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use super::archive::{self, ArchiveKind};
use super::progress::Event;
use super::run::{self, Job, Outcome, Sink};
use crate::clock::UnixMillis;
use crate::mail::MailLimits;
use crate::mail::export::{self, ExportSpec};
use crate::store::{self, Stores};
use crate::token::Token;

/// Why a local import or export could not run.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// No such account.
    #[error("no account {0:?}")]
    NoAccount(String),
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a zip or gzip file.
    #[error("file is not a zip or gzip file")]
    NotArchive,
    /// The import ended without storing anything.
    #[error("import aborted, nothing was stored")]
    Aborted,
    /// The export request is not valid.
    #[error("{0}")]
    BadExport(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Export failed.
    #[error(transparent)]
    Export(#[from] export::ExportError),
}

fn check_account(stores: &Stores, account: &str) -> Result<(), LocalError> {
    match store::accounts::get(&stores.accounts, account)? {
        Some(_) => Ok(()),
        None => Err(LocalError::NoAccount(account.to_string())),
    }
}

/// Opens an archive to import.
pub fn open(path: &Path) -> Result<File, LocalError> {
    File::open(path).map_err(|source| LocalError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Imports an archive file into an account, reporting to `sink`.
pub fn import_file(
    stores: &Stores,
    account: &str,
    mut file: File,
    skip_prefix: &str,
    limits: MailLimits,
    now: UnixMillis,
    sink: &dyn Sink,
) -> Result<(), LocalError> {
    check_account(stores, account)?;
    let read_err = |source| LocalError::Read {
        path: "archive".into(),
        source,
    };
    let mut head = [0u8; 4];
    let n = file.read(&mut head).map_err(read_err)?;
    file.rewind().map_err(read_err)?;
    let kind: ArchiveKind = archive::detect(&head[..n]).ok_or(LocalError::NotArchive)?;
    let token = Token::generate().map_err(|_| LocalError::Aborted)?;
    let job = Job {
        db: stores.mail.clone(),
        accounts: stores.accounts.clone(),
        account: account.to_string(),
        key: super::actor::staging_key(&token.hash()),
        file,
        kind,
        skip_prefix: skip_prefix.to_string(),
        limits,
        now,
    };
    match run::run(job, sink) {
        Outcome::Done => Ok(()),
        Outcome::Aborted => Err(LocalError::Aborted),
    }
}

/// Exports an account's mail to `out`; returns the number of messages.
pub fn export_to<W: Write>(
    stores: &Stores,
    account: &str,
    spec: &ExportSpec,
    out: W,
) -> Result<u64, LocalError> {
    check_account(stores, account)?;
    export::check(&stores.mail, account, spec)?;
    Ok(export::write(&stores.mail, account, spec, out)?)
}

/// A progress bar on stderr: position in the archive file, and messages so far.
pub struct BarSink {
    pos: File,
    total: u64,
    counts: RefCell<BTreeMap<String, u64>>,
    last: Cell<Option<Instant>>,
}

impl BarSink {
    /// A bar for an archive; `pos` is a `try_clone` of the handle the
    /// importer reads, so it shares the file offset, which gives the position.
    pub fn new(pos: File) -> std::io::Result<BarSink> {
        let total = pos.metadata()?.len().max(1);
        Ok(BarSink {
            pos,
            total,
            counts: RefCell::new(BTreeMap::new()),
            last: Cell::new(None),
        })
    }

    fn draw(&self, force: bool) {
        let now = Instant::now();
        if !force
            && self
                .last
                .get()
                .is_some_and(|t| now.duration_since(t) < Duration::from_millis(100))
        {
            return;
        }
        self.last.set(Some(now));
        let n: u64 = self.counts.borrow().values().sum();
        eprint!("\r{}", bar(self.fraction(), n));
    }

    fn fraction(&self) -> f64 {
        let at = (&self.pos).stream_position().unwrap_or(0);
        at as f64 / self.total as f64
    }

    /// Ends the bar line.
    pub fn finish(&self) {
        self.draw(true);
        eprintln!();
    }
}

/// `[#####---------------]  25%  1234 messages`.
pub fn bar(fraction: f64, messages: u64) -> String {
    let f = fraction.clamp(0.0, 1.0);
    let filled = (f * 30.0).round() as usize;
    format!(
        "[{}{}] {:3.0}%  {messages} messages",
        "#".repeat(filled),
        "-".repeat(30 - filled),
        f * 100.0
    )
}

impl Sink for BarSink {
    fn event(&self, e: Event) {
        match e {
            Event::Count { mailbox, count } => {
                self.counts.borrow_mut().insert(mailbox, count);
                self.draw(false);
            }
            Event::Problem { message } | Event::Numbered { message, .. } => {
                eprintln!("\rproblem: {message}");
            }
            Event::Step { title } => {
                eprintln!("\r{title}");
            }
            Event::Done | Event::Aborted => {}
        }
    }
    fn cancelled(&self) -> bool {
        false
    }
    fn begin_publish(&self) -> bool {
        self.finish();
        for (m, c) in self.counts.borrow().iter() {
            eprintln!("{m}: {c}");
        }
        true
    }
}
