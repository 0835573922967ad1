//! Persisted account sessions.
//!
//! Owns reads and writes of the `sessions` table: loading one account's
//! sessions, committing added/removed sessions durably, and flushing coalesced
//! lifetime extensions.
//!
//! Never: is called by anyone but the account's session actor (through
//! `spawn_blocking`), so there is one writer of an account's sessions.

use redb::{Database, ReadableDatabase as _, ReadableTable as _};

use super::codec::{self, AccountRecord, SessionRecord};
use super::error::StoreError;
use super::tables;
use crate::token::TokenHash;

fn range(account: &str) -> std::ops::RangeInclusive<(&str, [u8; 32])> {
    (account, [0u8; 32])..=(account, [0xffu8; 32])
}

/// An account's record and its stored sessions, keyed by token hash.
pub type Loaded = (AccountRecord, Vec<(TokenHash, SessionRecord)>);

/// An account's record and all its stored sessions, read in one transaction;
/// `None` if the account does not exist.
pub fn load(db: &Database, account: &str) -> Result<Option<Loaded>, StoreError> {
    let txn = db.begin_read()?;
    let accounts = txn.open_table(tables::ACCOUNTS)?;
    let Some(rec) = accounts.get(account)? else {
        return Ok(None);
    };
    let rec: AccountRecord = codec::decode(rec.value())?;
    let sessions = txn.open_table(tables::SESSIONS)?;
    let mut out = Vec::new();
    for e in sessions.range(range(account))? {
        let (k, v) = e?;
        let (_, hash) = k.value();
        out.push((TokenHash(hash), codec::decode(v.value())?));
    }
    Ok(Some((rec, out)))
}

/// Inserts and removes sessions of one account in one durable transaction.
pub fn commit(
    db: &Database,
    account: &str,
    insert: &[(TokenHash, SessionRecord)],
    remove: &[TokenHash],
) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        let mut t = txn.open_table(tables::SESSIONS)?;
        for h in remove {
            t.remove((account, h.0))?;
        }
        for (h, rec) in insert {
            let enc = codec::encode(rec)?;
            t.insert((account, h.0), enc.as_slice())?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// Removes every session of an account except `keep`, durably.
pub fn remove_all_except(
    db: &Database,
    account: &str,
    keep: Option<TokenHash>,
) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        let mut t = txn.open_table(tables::SESSIONS)?;
        let keep = keep.map(|h| h.0);
        t.retain_in(range(account), |(_, hash), _| Some(hash) == keep)?;
    }
    txn.commit()?;
    Ok(())
}

/// Client IP and user agent of a session at its creation.
pub type CreatedBy = (Option<std::net::IpAddr>, String);

/// [`CreatedBy`] of each of `hashes`, `None` where not stored (the session
/// actor does not hold these in memory).
pub fn created_info(
    db: &Database,
    account: &str,
    hashes: &[TokenHash],
) -> Result<Vec<Option<CreatedBy>>, StoreError> {
    let txn = db.begin_read()?;
    let t = txn.open_table(tables::SESSIONS)?;
    let mut out = Vec::with_capacity(hashes.len());
    for h in hashes {
        let rec = t
            .get((account, h.0))?
            .map(|v| codec::decode::<SessionRecord>(v.value()))
            .transpose()?;
        out.push(rec.map(|r| (r.created_ip, r.created_agent)));
    }
    Ok(out)
}

/// The new last-use fields of one session.
#[derive(Debug, Clone)]
pub struct Extension {
    /// Which session.
    pub hash: TokenHash,
    /// Last use.
    pub last_used: i64,
    /// New expiry.
    pub expires: i64,
    /// Client IP at last use.
    pub last_ip: Option<std::net::IpAddr>,
    /// User agent at last use.
    pub last_agent: String,
}

/// Writes coalesced lifetime extensions of one account in one transaction.
/// Sessions removed meanwhile are skipped (never resurrected).
pub fn flush(db: &Database, account: &str, ext: &[Extension]) -> Result<(), StoreError> {
    flush_many(db, &[(account, ext)])
}

/// Writes coalesced lifetime extensions of many accounts in one
/// transaction: one commit however many accounts were active.
pub fn flush_many(db: &Database, batches: &[(&str, &[Extension])]) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        let mut t = txn.open_table(tables::SESSIONS)?;
        for (account, ext) in batches {
            let account = *account;
            for e in *ext {
                let Some(rec) = t
                    .get((account, e.hash.0))?
                    .map(|v| codec::decode::<SessionRecord>(v.value()))
                else {
                    continue;
                };
                let mut rec = rec?;
                rec.last_used = e.last_used;
                rec.expires = e.expires;
                rec.last_ip = e.last_ip;
                rec.last_agent.clone_from(&e.last_agent);
                let enc = codec::encode(&rec)?;
                t.insert((account, e.hash.0), enc.as_slice())?;
            }
        }
    }
    txn.commit()?;
    Ok(())
}
