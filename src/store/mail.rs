//! Per-account mail in `mail.redb`: mailboxes, messages, and the staging of
//! imports.
//!
//! Owns every read and write of the mail tables (see [`super::tables`]). A
//! message is two rows: its bytes in `message_data` and its metadata in
//! `messages`; readers enumerate `messages` only, so bytes without metadata
//! are invisible.
//!
//! Imports are all or nothing: [`stage`] writes a batch of an import's
//! messages (bytes in `message_data` under fresh ids, metadata in
//! `import_staging` under the import's key) in a short transaction;
//! [`publish`] moves the staged metadata into `messages` and
//! creates the mailboxes in one durable transaction, so the import becomes
//! visible at once or not at all; [`discard`] removes a failed or aborted
//! import's rows; [`discard_all_staging`] runs when the file is opened and
//! removes whatever a crash left behind. Staging commits are durable although
//! losing them would be harmless: durable batches keep the amount of unsynced
//! data small, so no single fsync (of the publish, or of a sign-in's session
//! commit on the same disk) has to write a whole import.
//!
//! Never: is called from async code directly (run it on the blocking pool);
//! holds a write transaction longer than one batch, except [`publish`], whose
//! transaction touches metadata only.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use redb::{
    Database, ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _,
    WriteTransaction,
};

use super::codec::{self, MailboxRecord, MessageRecord, StagedRecord};
use super::error::StoreError;
use super::tables;
use crate::clock::UnixMillis;

/// Creates the mail tables (called when the file is opened).
pub fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(tables::MAILBOXES)?;
    txn.open_table(tables::MESSAGES)?;
    txn.open_table(tables::MESSAGE_DATA)?;
    txn.open_table(tables::MAIL_COUNTERS)?;
    txn.open_table(tables::IMPORT_STAGING)?;
    Ok(())
}

/// One message of an import, ready to stage.
#[derive(Debug, Clone)]
pub struct Staged {
    /// Metadata, maildir path and unresolved letters.
    pub record: StagedRecord,
    /// The raw bytes.
    pub raw: Vec<u8>,
}

/// Stages a batch of an import's messages in one short transaction.
pub fn stage(
    db: &Database,
    key: [u8; 16],
    account: &str,
    batch: &[Staged],
) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    // Durable on purpose, although a crash may lose staged rows: a
    // non-durable batch leaves its pages dirty, and the publish's fsync would
    // then write the whole import at once, stalling the fsync of every other
    // commit on the same disk (sign-ins included) for as long. See docs/mail.md.
    let txn = db.begin_write()?;
    {
        let mut counters = txn.open_table(tables::MAIL_COUNTERS)?;
        let mut next = counters.get(account)?.map_or(1, |v| v.value());
        let mut data = txn.open_table(tables::MESSAGE_DATA)?;
        let mut staging = txn.open_table(tables::IMPORT_STAGING)?;
        for m in batch {
            let id = next;
            next += 1;
            data.insert((account, id), m.raw.as_slice())?;
            let enc = codec::encode(&m.record)?;
            staging.insert((key, id), enc.as_slice())?;
        }
        counters.insert(account, next)?;
    }
    txn.commit()?;
    Ok(())
}

/// Parent names of a mailbox name, and the name itself: `a/b` → `a`, `a/b`.
fn with_parents(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('/')
        .map(move |(i, _)| &name[..i])
        .chain(std::iter::once(name))
}

/// What [`publish`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// This many messages are now visible.
    Messages(u64),
    /// The account was removed (or removed and created anew) since the
    /// import started: nothing was written; the caller discards the import.
    AccountGone,
}

/// Publishes an import: its staged messages become visible in their
/// mailboxes (created with their parents as needed) in one durable
/// transaction. `keywords` maps a maildir path to its `dovecot-keywords`.
///
/// `account` must still be the account the import started for: its record
/// in `accounts` must exist with the creation time `created`. That is
/// checked while this transaction holds `mail.redb`'s writer, so it cannot
/// race with account removal, which commits to `accounts.redb` first and
/// then needs the same writer to remove the account's mail: either the check
/// sees the account gone and nothing is written, or the removal's mail
/// deletion runs after this commit and removes what was published.
pub fn publish(
    db: &Database,
    accounts: &Database,
    key: [u8; 16],
    account: &str,
    created: UnixMillis,
    keywords: &HashMap<String, BTreeMap<char, String>>,
    now: UnixMillis,
) -> Result<Published, StoreError> {
    let txn = db.begin_write()?;
    if super::accounts::get(accounts, account)?.is_none_or(|r| r.created != created) {
        txn.abort()?;
        return Ok(Published::AccountGone);
    }
    let mut n = 0;
    {
        let mut staging = txn.open_table(tables::IMPORT_STAGING)?;
        let mut messages = txn.open_table(tables::MESSAGES)?;
        let mut mailboxes = txn.open_table(tables::MAILBOXES)?;
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for e in staging.range((key, 0u64)..=(key, u64::MAX))? {
            let (k, v) = e?;
            let (_, id) = k.value();
            let s: StagedRecord = codec::decode(v.value())?;
            let mut rec = s.message;
            if let Some(map) = keywords.get(&s.maildir) {
                for c in s.letters.chars() {
                    if let Some(k) = map.get(&c) {
                        crate::mail::add_keyword(&mut rec.keywords, k);
                    }
                }
            }
            if !seen.contains(&rec.mailbox) {
                for p in with_parents(&rec.mailbox) {
                    if mailboxes.get((account, p))?.is_none() {
                        let enc = codec::encode(&MailboxRecord { created: now })?;
                        mailboxes.insert((account, p), enc.as_slice())?;
                    }
                }
                seen.insert(rec.mailbox.clone());
            }
            let enc = codec::encode(&rec)?;
            messages.insert((account, id), enc.as_slice())?;
            n += 1;
        }
        staging.retain_in((key, 0u64)..=(key, u64::MAX), |_, _| false)?;
    }
    txn.commit()?;
    Ok(Published::Messages(n))
}

/// Removes one import's staged rows (bytes and metadata).
pub fn discard(db: &Database, key: [u8; 16]) -> Result<u64, StoreError> {
    let txn = db.begin_write()?;
    let n = discard_in(&txn, Some(key))?;
    txn.commit()?;
    Ok(n)
}

/// Removes every import's staged rows: what a crash left behind. Called when
/// `mail.redb` is opened.
pub fn discard_all_staging(db: &Database) -> Result<u64, StoreError> {
    let txn = db.begin_write()?;
    let n = discard_in(&txn, None)?;
    txn.commit()?;
    Ok(n)
}

fn discard_in(txn: &WriteTransaction, key: Option<[u8; 16]>) -> Result<u64, StoreError> {
    let mut staging = txn.open_table(tables::IMPORT_STAGING)?;
    let mut data = txn.open_table(tables::MESSAGE_DATA)?;
    let range = match key {
        Some(k) => (k, 0u64)..=(k, u64::MAX),
        None => ([0u8; 16], 0u64)..=([0xffu8; 16], u64::MAX),
    };
    let mut gone = Vec::new();
    for e in staging.range(range.clone())? {
        let (k, v) = e?;
        let s: StagedRecord = codec::decode(v.value())?;
        gone.push((s.account, k.value().1));
    }
    for (account, id) in &gone {
        data.remove((account.as_str(), *id))?;
    }
    staging.retain_in(range, |_, _| false)?;
    Ok(gone.len() as u64)
}

/// Removes all mail of an account (mailboxes, messages, bytes, counter) in
/// one durable transaction. For account removal.
pub fn remove_account_mail(db: &Database, account: &str) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        let mut messages = txn.open_table(tables::MESSAGES)?;
        messages.retain_in((account, 0u64)..=(account, u64::MAX), |_, _| false)?;
        let mut data = txn.open_table(tables::MESSAGE_DATA)?;
        data.retain_in((account, 0u64)..=(account, u64::MAX), |_, _| false)?;
        let mut mailboxes = txn.open_table(tables::MAILBOXES)?;
        let names: Vec<String> = mailbox_names(&mailboxes, account)?;
        for n in names {
            mailboxes.remove((account, n.as_str()))?;
        }
        txn.open_table(tables::MAIL_COUNTERS)?.remove(account)?;
    }
    txn.commit()?;
    Ok(())
}

fn mailbox_names<T: redb::ReadableTable<(&'static str, &'static str), &'static [u8]>>(
    t: &T,
    account: &str,
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for e in t.range((account, "")..)? {
        let (k, _) = e?;
        let (a, name) = k.value();
        if a != account {
            break;
        }
        out.push(name.to_string());
    }
    Ok(out)
}

/// An account's mailbox names, sorted.
pub fn mailboxes(db: &Database, account: &str) -> Result<Vec<String>, StoreError> {
    let txn = db.begin_read()?;
    let t = txn.open_table(tables::MAILBOXES)?;
    mailbox_names(&t, account)
}

/// An account's messages (metadata only), by id.
pub fn messages(db: &Database, account: &str) -> Result<Vec<(u64, MessageRecord)>, StoreError> {
    let txn = db.begin_read()?;
    let t = txn.open_table(tables::MESSAGES)?;
    let mut out = Vec::new();
    for e in t.range((account, 0u64)..=(account, u64::MAX))? {
        let (k, v) = e?;
        out.push((k.value().1, codec::decode(v.value())?));
    }
    Ok(out)
}

/// One message's raw bytes.
pub fn message_data(db: &Database, account: &str, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
    let txn = db.begin_read()?;
    let t = txn.open_table(tables::MESSAGE_DATA)?;
    Ok(t.get((account, id))?.map(|v| v.value().to_vec()))
}

/// Rows in the staging table (tests and start-up reporting).
pub fn staged_count(db: &Database) -> Result<u64, StoreError> {
    let txn = db.begin_read()?;
    let t = txn.open_table(tables::IMPORT_STAGING)?;
    Ok(t.len()?)
}

/// Rows in `message_data` of an account (tests: nothing left behind).
pub fn data_count(db: &Database, account: &str) -> Result<u64, StoreError> {
    let txn = db.begin_read()?;
    let t = txn.open_table(tables::MESSAGE_DATA)?;
    Ok(t.range((account, 0u64)..=(account, u64::MAX))?.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Stores;

    fn staged(account: &str, mailbox: &str, raw: &[u8], maildir: &str, letters: &str) -> Staged {
        Staged {
            record: StagedRecord {
                account: account.into(),
                message: MessageRecord {
                    mailbox: mailbox.into(),
                    flags: 1,
                    keywords: vec![],
                    received: 5,
                    size: raw.len() as u64,
                },
                maildir: maildir.into(),
                letters: letters.into(),
            },
            raw: raw.to_vec(),
        }
    }

    fn account(stores: &Stores, name: &str, created: UnixMillis) {
        crate::setup::create_account(
            stores,
            name,
            &format!("{name}@localhost"),
            "password1234",
            crate::credentials::HashCost::minimal(),
            created,
        )
        .expect("account");
    }

    #[test]
    fn publish_for_a_removed_account_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stores = Stores::open(dir.path()).expect("open");
        let db = &stores.mail;
        account(&stores, "a", 5);
        stage(db, [1; 16], "a", &[staged("a", "Inbox", b"one", "", "")]).expect("stage");
        assert!(super::super::accounts::remove(&stores.accounts, "a").expect("remove"));
        let kw = HashMap::new();
        assert_eq!(
            publish(db, &stores.accounts, [1; 16], "a", 5, &kw, 9).expect("publish"),
            Published::AccountGone
        );
        assert!(messages(db, "a").expect("list").is_empty());
        assert!(mailboxes(db, "a").expect("mb").is_empty());
        assert_eq!(staged_count(db).expect("staged"), 1, "left to discard");
        assert_eq!(discard(db, [1; 16]).expect("discard"), 1);
        assert_eq!(data_count(db, "a").expect("count"), 0);
    }

    #[test]
    fn stage_publish_discard_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stores = Stores::open(dir.path()).expect("open");
        let db = &stores.mail;
        stage(
            db,
            [1; 16],
            "a",
            &[
                staged("a", "x/y", b"one", "m", "ab"),
                staged("a", "z", b"two", "", ""),
            ],
        )
        .expect("stage");
        stage(db, [2; 16], "a", &[staged("a", "q", b"three", "", "")]).expect("stage");
        stage(db, [3; 16], "b", &[staged("b", "Inbox", b"four", "", "")]).expect("stage");
        assert!(
            messages(db, "a").expect("list").is_empty(),
            "staged is invisible"
        );
        let mut kw = HashMap::new();
        kw.insert("m".to_string(), BTreeMap::from([('a', "work".to_string())]));
        account(&stores, "a", 5);
        assert_eq!(
            publish(db, &stores.accounts, [1; 16], "a", 6, &kw, 9).expect("publish"),
            Published::AccountGone,
            "an account of the same name created at another time is another account"
        );
        assert_eq!(
            publish(db, &stores.accounts, [1; 16], "a", 5, &kw, 9).expect("publish"),
            Published::Messages(2)
        );
        assert_eq!(discard(db, [2; 16]).expect("discard"), 1);
        assert_eq!(mailboxes(db, "a").expect("mb"), vec!["x", "x/y", "z"]);
        let msgs = messages(db, "a").expect("list");
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].1.keywords, vec!["work".to_string()]);
        assert_eq!(
            message_data(db, "a", msgs[0].0).expect("data").as_deref(),
            Some(&b"one"[..])
        );
        assert_eq!(
            data_count(db, "a").expect("count"),
            2,
            "discarded bytes are gone"
        );
        drop(stores);
        // A crash with account b's import staged: reopening discards it.
        let stores = Stores::open(dir.path()).expect("reopen");
        assert_eq!(staged_count(&stores.mail).expect("staged"), 0);
        assert_eq!(data_count(&stores.mail, "b").expect("count"), 0);
        remove_account_mail(&stores.mail, "a").expect("remove");
        assert!(mailboxes(&stores.mail, "a").expect("mb").is_empty());
        assert_eq!(data_count(&stores.mail, "a").expect("count"), 0);
    }
}
