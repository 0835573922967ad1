//! The import pipeline: archive entries → messages → staged batches →
//! one publish. Synchronous; runs on a blocking thread.
//!
//! Owns what each entry means: `*.mbox` files, maildir messages
//! (`…/cur/*`, `…/new/*`; `…/tmp/*` ignored), `dovecot-keywords` files
//! (applied at publish, so their place in the archive does not matter), and
//! the precise problem for everything else (bad names, zip-slip paths,
//! links, devices, messages over the limit). It reports progress through a
//! [`Sink`] and asks the sink whether to go on, so the same function serves
//! the importer actor (HTTP) and the command line.
//!
//! Every run ends in exactly one [`Outcome`]: `Done` after the publish
//! committed, or `Aborted` after the staged rows were discarded.
//!
//! Never: writes anything visible before the publish; holds a message beyond
//! the size limit in memory; follows or creates paths on disk.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read};
use std::sync::Arc;

use redb::Database;

use super::archive::{self, ArchiveKind, Bounds, EntryKind, Stop};
use super::progress::Event;
use crate::clock::UnixMillis;
use crate::mail::mbox::{self, Item, MboxError, Parsed};
use crate::mail::{MailLimits, maildir, normalize_mailbox_name};
use crate::store::codec::{MessageRecord, StagedRecord};
use crate::store::mail::{self as store, Published, Staged};

/// Where progress goes, and who decides whether the import goes on.
pub trait Sink {
    /// One progress event (never `Done`/`Aborted`: those are the [`Outcome`]).
    fn event(&self, e: Event);
    /// Whether the import was asked to stop.
    fn cancelled(&self) -> bool;
    /// Called once before publishing; `false` (an abort came first) means
    /// discard instead. After `true`, an abort is refused.
    fn begin_publish(&self) -> bool;
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Published: every message is visible.
    Done,
    /// Nothing is left behind.
    Aborted,
}

/// One import to run.
pub struct Job {
    /// `mail.redb`.
    pub db: Arc<Database>,
    /// `accounts.redb`: the publish checks the account still exists.
    pub accounts: Arc<Database>,
    /// The account importing.
    pub account: String,
    /// Staging key (derived from the import token's hash).
    pub key: [u8; 16],
    /// The uploaded archive.
    pub file: File,
    /// Its container.
    pub kind: ArchiveKind,
    /// Path prefix to remove from mailbox names.
    pub skip_prefix: String,
    /// Bounds.
    pub limits: MailLimits,
    /// Received time for messages whose format carries none.
    pub now: UnixMillis,
}

/// Messages per staging transaction.
const BATCH_MESSAGES: usize = 1000;
/// Bytes per staging transaction.
const BATCH_BYTES: usize = 16 << 20;
/// A count event at least this often (messages).
const COUNT_EVERY: u64 = 100;
/// Longest path in an archive we look at.
const MAX_PATH: usize = 1024;
/// Largest `dovecot-keywords` file.
const MAX_KEYWORDS_FILE: u64 = 64 * 1024;

struct Run<'a> {
    job: &'a Job,
    sink: &'a dyn Sink,
    batch: Vec<Staged>,
    batch_bytes: usize,
    counts: BTreeMap<String, u64>,
    current: Option<String>,
    since_count: u64,
    keywords: HashMap<String, BTreeMap<char, String>>,
}

/// Runs an import to its end.
pub fn run(job: Job, sink: &dyn Sink) -> Outcome {
    let mut r = Run {
        job: &job,
        sink,
        batch: Vec::new(),
        batch_bytes: 0,
        counts: BTreeMap::new(),
        current: None,
        since_count: 0,
        keywords: HashMap::new(),
    };
    // The account as it is now; the publish refuses if it is gone by then
    // (removed, or removed and created anew).
    let created = match crate::store::accounts::get(&job.accounts, &job.account) {
        Ok(Some(a)) => a.created,
        Ok(None) => return r.fail("the account does not exist (any more), nothing imported"),
        Err(e) => {
            tracing::error!(error = %e, "reading account for import");
            return r.fail("storing messages failed");
        }
    };
    sink.event(Event::Step {
        title: "importing messages".into(),
    });
    let bounds = Bounds {
        expanded: job.limits.import_expanded_bytes,
        entries: job.limits.import_entries,
    };
    let file = match job.file.try_clone() {
        Ok(f) => f,
        Err(e) => return r.fail(&format!("reading upload: {e}")),
    };
    let res = archive::for_each(file, job.kind, bounds, &mut |name, kind, data| {
        r.entry(name, kind, data, bounds)
    });
    if let Err(stop) = res {
        return match stop {
            Stop::Archive(e) => r.fail(&e.to_string()),
            Stop::Pipeline(m) => r.fail(&m),
        };
    }
    if let Err(stop) = r.flush() {
        let m = match stop {
            Stop::Archive(e) => e.to_string(),
            Stop::Pipeline(m) => m,
        };
        return r.fail(&m);
    }
    for (mailbox, count) in &r.counts {
        sink.event(Event::Count {
            mailbox: mailbox.clone(),
            count: *count,
        });
    }
    if !sink.begin_publish() {
        return r.fail("import aborted");
    }
    sink.event(Event::Step {
        title: "publishing".into(),
    });
    match store::publish(
        &job.db,
        &job.accounts,
        job.key,
        &job.account,
        created,
        &r.keywords,
        job.now,
    ) {
        Ok(Published::Messages(_)) => Outcome::Done,
        Ok(Published::AccountGone) => {
            r.fail("the account was removed during the import, nothing imported")
        }
        Err(e) => {
            tracing::error!(error = %e, "publishing import");
            r.fail("storing messages failed")
        }
    }
}

impl Run<'_> {
    fn problem(&self, message: String) {
        self.sink.event(Event::Problem { message });
    }

    /// Reports `why`, discards what was staged, and ends aborted.
    fn fail(&mut self, why: &str) -> Outcome {
        if why != "import aborted" {
            self.problem(why.to_string());
        }
        self.batch.clear();
        if let Err(e) = store::discard(&self.job.db, self.job.key) {
            // Left for the discard at the next start-up; never visible.
            tracing::error!(error = %e, "discarding aborted import");
        }
        Outcome::Aborted
    }

    fn flush(&mut self) -> Result<(), Stop> {
        let res = store::stage(&self.job.db, self.job.key, &self.job.account, &self.batch);
        self.batch.clear();
        self.batch_bytes = 0;
        res.map_err(|e| {
            tracing::error!(error = %e, "staging import batch");
            Stop::Pipeline("storing messages failed".into())
        })
    }

    fn count_event(&self, mailbox: &str) {
        self.sink.event(Event::Count {
            mailbox: mailbox.to_string(),
            count: self.counts.get(mailbox).copied().unwrap_or(0),
        });
    }

    fn add(
        &mut self,
        mailbox: &str,
        p: Parsed,
        maildir: &str,
        letters: String,
    ) -> Result<(), Stop> {
        if self.sink.cancelled() {
            return Err(Stop::Pipeline("import aborted".into()));
        }
        // Offer the core to whatever else is runnable, once per message: on
        // a server with one core, a request of another account that arrives
        // while this thread runs then waits for at most one message's work,
        // not for a scheduler slice (docs/performance.md, "Import and
        // export"). Costs about a microsecond when nothing else is runnable.
        std::thread::yield_now();
        if self.current.as_deref() != Some(mailbox) {
            if let Some(prev) = self.current.take() {
                self.count_event(&prev);
            }
            self.current = Some(mailbox.to_string());
            self.since_count = 0;
        }
        *self.counts.entry(mailbox.to_string()).or_default() += 1;
        self.since_count += 1;
        if self.since_count >= COUNT_EVERY {
            self.count_event(mailbox);
            self.since_count = 0;
        }
        self.batch_bytes += p.raw.len();
        self.batch.push(Staged {
            record: StagedRecord {
                account: self.job.account.clone(),
                message: MessageRecord {
                    mailbox: mailbox.to_string(),
                    flags: p.flags.0,
                    keywords: p.keywords,
                    received: p.received.map_or(self.job.now, |s| s.saturating_mul(1000)),
                    size: p.raw.len() as u64,
                },
                maildir: maildir.to_string(),
                letters,
            },
            raw: p.raw,
        });
        if self.batch.len() >= BATCH_MESSAGES || self.batch_bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// The mailbox a path (without `.mbox` or `/cur`) stands for.
    fn mailbox(&self, path: &str) -> Result<String, String> {
        let prefix = self.job.skip_prefix.trim_matches('/');
        let mut name = path;
        if !prefix.is_empty() {
            if name == prefix {
                name = "";
            } else if let Some(rest) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) {
                name = rest;
            }
        }
        if name.is_empty() {
            name = "Inbox";
        }
        normalize_mailbox_name(name).map_err(|e| format!("{e}: {name:?}"))
    }

    fn entry(
        &mut self,
        raw: &[u8],
        kind: EntryKind,
        data: &mut dyn Read,
        bounds: Bounds,
    ) -> Result<(), Stop> {
        if self.sink.cancelled() {
            return Err(Stop::Pipeline("import aborted".into()));
        }
        let Ok(name) = std::str::from_utf8(raw) else {
            self.problem(format!(
                "file name is not UTF-8, skipped: {:?}",
                String::from_utf8_lossy(raw)
            ));
            return Ok(());
        };
        if name.len() > MAX_PATH {
            self.problem(format!("file name longer than {MAX_PATH} bytes, skipped"));
            return Ok(());
        }
        let b = name.as_bytes();
        if name.starts_with('/') || name.starts_with('\\') || b.len() >= 2 && b[1] == b':' {
            self.problem(format!("absolute path {name:?} skipped"));
            return Ok(());
        }
        let parts: Vec<&str> = name
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if parts.contains(&"..") {
            self.problem(format!(
                "path {name:?} points outside the archive (\"..\"), skipped"
            ));
            return Ok(());
        }
        match kind {
            EntryKind::Dir => return Ok(()),
            EntryKind::Link => {
                self.problem(format!("link {name:?} skipped"));
                return Ok(());
            }
            EntryKind::Device => {
                self.problem(format!("device or fifo {name:?} skipped"));
                return Ok(());
            }
            EntryKind::Other => {
                self.problem(format!("{name:?} is not a regular file, skipped"));
                return Ok(());
            }
            EntryKind::File => {}
        }
        let Some((&last, dirs)) = parts.split_last() else {
            return Ok(());
        };
        let parent = dirs.last().copied();
        let read_err = |e: std::io::Error| Stop::Archive(archive::read_error(&e, bounds));
        if parent == Some("tmp") {
            return Ok(());
        }
        if matches!(parent, Some("cur" | "new")) {
            let dir = dirs[..dirs.len() - 1].join("/");
            let mailbox = match self.mailbox(&dir) {
                Ok(m) => m,
                Err(e) => {
                    self.problem(format!("{name:?}: bad mailbox name, skipped: {e}"));
                    return Ok(());
                }
            };
            let max = self.job.limits.message_bytes;
            let mut buf = Vec::new();
            data.take(max.saturating_add(1))
                .read_to_end(&mut buf)
                .map_err(read_err)?;
            if buf.len() as u64 > max {
                self.problem(format!(
                    "message {name:?} is larger than the limit of {max} bytes, skipped"
                ));
                return Ok(());
            }
            let info = maildir::parse_name(last);
            let p = Parsed {
                raw: buf,
                flags: info.flags,
                keywords: Vec::new(),
                received: info.received,
            };
            return self.add(&mailbox, p, &dir, info.letters);
        }
        if last == "dovecot-keywords" {
            let mut buf = Vec::new();
            data.take(MAX_KEYWORDS_FILE)
                .read_to_end(&mut buf)
                .map_err(read_err)?;
            self.keywords
                .insert(dirs.join("/"), maildir::parse_keywords(&buf));
            return Ok(());
        }
        if let Some(stem) = parts.join("/").strip_suffix(".mbox") {
            let mailbox = match self.mailbox(stem) {
                Ok(m) => m,
                Err(e) => {
                    self.problem(format!("{name:?}: bad mailbox name, skipped: {e}"));
                    return Ok(());
                }
            };
            let mut r = mbox::Reader::new(BufReader::new(data), self.job.limits.message_bytes);
            loop {
                match r.next_item() {
                    Ok(None) => break,
                    Ok(Some(Item::Message(p))) => self.add(&mailbox, p, "", String::new())?,
                    Ok(Some(Item::TooLarge(n))) => self.problem(format!(
                        "{name:?}: message {n} is larger than the limit of {} bytes, skipped",
                        self.job.limits.message_bytes
                    )),
                    Err(MboxError::NotMbox) => {
                        self.problem(format!("{name:?} is not an mbox file, skipped"));
                        break;
                    }
                    Err(MboxError::Io(e)) => return Err(read_err(e)),
                }
            }
            return Ok(());
        }
        if is_maildir_bookkeeping(last) {
            return Ok(());
        }
        self.problem(format!(
            "{name:?} is neither an mbox file (*.mbox) nor a maildir message, skipped"
        ));
        Ok(())
    }
}

/// Files maildir programs keep next to `cur/`, `new/`, `tmp/`: not mail.
fn is_maildir_bookkeeping(name: &str) -> bool {
    matches!(name, "maildirfolder" | "dovecot-uidlist" | "subscriptions")
        || name.starts_with("dovecot-uidvalidity")
        || name.starts_with("dovecot.")
        || name.starts_with("courierimap")
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::io::{Seek as _, Write as _};

    use super::*;
    use crate::store::Stores;

    #[derive(Default)]
    struct TestSink {
        events: RefCell<Vec<Event>>,
        cancel_after: Option<usize>,
        published: Cell<bool>,
    }

    impl Sink for TestSink {
        fn event(&self, e: Event) {
            self.events.borrow_mut().push(e);
        }
        fn cancelled(&self) -> bool {
            self.cancel_after
                .is_some_and(|n| self.events.borrow().len() >= n)
        }
        fn begin_publish(&self) -> bool {
            self.published.set(true);
            !self.cancelled()
        }
    }

    fn zip(entries: &[(&str, &[u8])]) -> File {
        let mut f = tempfile::tempfile().expect("tmp");
        {
            let mut z = zip::ZipWriter::new(&mut f);
            for (name, data) in entries {
                z.start_file(*name, zip::write::SimpleFileOptions::default())
                    .expect("start");
                z.write_all(data).expect("write");
            }
            z.finish().expect("finish");
        }
        f.rewind().expect("rewind");
        f
    }

    fn job(stores: &Stores, file: File) -> Job {
        crate::setup::create_account(
            stores,
            "a",
            "a@localhost",
            "password1234",
            crate::credentials::HashCost::minimal(),
            0,
        )
        .expect("account");
        Job {
            db: stores.mail.clone(),
            accounts: stores.accounts.clone(),
            account: "a".into(),
            key: [7; 16],
            file,
            kind: ArchiveKind::Zip,
            skip_prefix: String::new(),
            limits: MailLimits::default(),
            now: 1000,
        }
    }

    fn counts(events: &[Event]) -> Vec<(String, u64)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Count { mailbox, count } => Some((mailbox.clone(), *count)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn counts_at_mailbox_changes_and_keywords_after_messages() {
        let dir = tempfile::tempdir().expect("tmp");
        let stores = Stores::open(dir.path()).expect("open");
        let f = zip(&[
            ("A/cur/1:2,Sa", b"Subject: 1\n\n"),
            ("B.mbox", b"From x\nSubject: 2\n\n"),
            ("A/new/2", b"Subject: 3\n\n"),
            ("A/dovecot-keywords", b"0 later\n"),
        ]);
        let sink = TestSink::default();
        assert_eq!(run(job(&stores, f), &sink), Outcome::Done);
        let ev = sink.events.borrow();
        assert_eq!(
            counts(&ev),
            vec![
                ("A".into(), 1),
                ("B".into(), 1),
                ("A".into(), 2),
                ("B".into(), 1)
            ],
            "a count at each change, then a final count per mailbox"
        );
        let msgs = store::messages(&stores.mail, "a").expect("messages");
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[0].1.keywords, vec!["later".to_string()]);
        assert_eq!(msgs[0].1.flags, crate::mail::Flags::SEEN);
        assert_eq!(
            msgs[1].1.received, 1000,
            "no time in the format: import time"
        );
    }

    /// Removes the account just before the publish, as an admin might.
    struct RemovingSink<'a>(&'a Stores, TestSink);

    impl Sink for RemovingSink<'_> {
        fn event(&self, e: Event) {
            self.1.event(e);
        }
        fn cancelled(&self) -> bool {
            false
        }
        fn begin_publish(&self) -> bool {
            crate::store::accounts::remove(&self.0.accounts, "a").expect("remove");
            true
        }
    }

    #[test]
    fn account_removed_before_the_publish_gets_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let stores = Stores::open(dir.path()).expect("open");
        let f = zip(&[("A.mbox", b"From x\nSubject: 1\n\n")]);
        let sink = RemovingSink(&stores, TestSink::default());
        assert_eq!(run(job(&stores, f), &sink), Outcome::Aborted);
        assert!(
            sink.1.events.borrow().contains(&Event::Problem {
                message: "the account was removed during the import, nothing imported".into()
            }),
            "{:?}",
            sink.1.events.borrow()
        );
        assert!(
            store::messages(&stores.mail, "a")
                .expect("messages")
                .is_empty()
        );
        assert!(store::mailboxes(&stores.mail, "a").expect("mb").is_empty());
        assert_eq!(store::data_count(&stores.mail, "a").expect("data"), 0);
        assert_eq!(store::staged_count(&stores.mail).expect("staged"), 0);
        // An import for an account that does not exist stops at once.
        let f = zip(&[("A.mbox", b"From x\nSubject: 1\n\n")]);
        let mut j = job(&stores, f);
        j.account = "nobody".into();
        let sink = TestSink::default();
        assert_eq!(run(j, &sink), Outcome::Aborted);
        assert_eq!(store::data_count(&stores.mail, "nobody").expect("data"), 0);
    }

    #[test]
    fn cancelled_import_stores_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let stores = Stores::open(dir.path()).expect("open");
        let mut mbox = Vec::new();
        for i in 0..3000 {
            mbox.extend_from_slice(format!("From x\nSubject: {i}\n\nbody\n\n").as_bytes());
        }
        let f = zip(&[("Big.mbox", &mbox)]);
        let sink = TestSink {
            cancel_after: Some(15),
            ..TestSink::default()
        };
        assert_eq!(run(job(&stores, f), &sink), Outcome::Aborted);
        assert!(!sink.published.get(), "stopped before the end");
        assert!(
            store::messages(&stores.mail, "a")
                .expect("messages")
                .is_empty()
        );
        assert_eq!(store::data_count(&stores.mail, "a").expect("data"), 0);
        assert_eq!(store::staged_count(&stores.mail).expect("staged"), 0);
    }
}
