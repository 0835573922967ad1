//! Stored sign-in attempts.
//!
//! Owns reads and writes of the `login_attempts` table: appending a batch of
//! attempts and pruning each touched account to its bounds (count and age) in
//! the same transaction, and listing an account's attempts newest first.
//!
//! Never: is written by anyone but the login-attempt writer
//! ([`crate::attempts`]) and account removal; writes one transaction per
//! attempt (the writer batches).

use std::collections::BTreeSet;

use redb::{Database, ReadableDatabase as _, ReadableTable as _};

use super::codec::{self, LoginAttemptRecord};
use super::error::StoreError;
use super::tables;
use crate::clock::UnixMillis;

/// How many attempts are kept per account, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Most attempts kept per account (oldest dropped first).
    pub max_per_account: usize,
    /// Attempts older than this many milliseconds are dropped.
    pub max_age: i64,
}

impl Default for Retention {
    /// 10,000 per account, 30 days.
    fn default() -> Self {
        Retention {
            max_per_account: 10_000,
            max_age: 30 * 24 * 3600 * 1000,
        }
    }
}

/// One attempt to append: account (empty for the admin), time, a sequence
/// number that orders attempts of the same millisecond, and the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttempt {
    /// Account name; empty for the admin.
    pub account: String,
    /// When.
    pub time: UnixMillis,
    /// Orders attempts within one millisecond.
    pub seq: u32,
    /// What happened.
    pub record: LoginAttemptRecord,
}

/// A stored attempt, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAttempt {
    /// When.
    pub time: UnixMillis,
    /// What happened.
    pub record: LoginAttemptRecord,
}

fn range(account: &str) -> std::ops::RangeInclusive<(&str, u64, u32)> {
    (account, 0, 0)..=(account, u64::MAX, u32::MAX)
}

fn key_time(t: UnixMillis) -> u64 {
    u64::try_from(t).unwrap_or(0)
}

/// Appends a batch in one durable transaction and prunes every account it
/// touched: attempts older than `now - max_age` go, then the oldest beyond
/// `max_per_account`.
pub fn append(
    db: &Database,
    batch: &[NewAttempt],
    now: UnixMillis,
    keep: Retention,
) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let txn = db.begin_write()?;
    {
        let mut t = txn.open_table(tables::LOGIN_ATTEMPTS)?;
        let mut touched = BTreeSet::new();
        for a in batch {
            let enc = codec::encode(&a.record)?;
            // A writer restarted within the same millisecond starts its
            // sequence again: never overwrite an attempt, take the next free key.
            let (time, mut seq) = (key_time(a.time), a.seq);
            while t.get((a.account.as_str(), time, seq))?.is_some() {
                seq = seq.wrapping_add(1);
            }
            t.insert((a.account.as_str(), time, seq), enc.as_slice())?;
            touched.insert(a.account.as_str());
        }
        let cutoff = key_time(now.saturating_sub(keep.max_age));
        for account in touched {
            if cutoff > 0 {
                t.retain_in((account, 0, 0)..(account, cutoff, 0), |_, _| false)?;
            }
            let n = t.range(range(account))?.count();
            if n > keep.max_per_account {
                let excess = n - keep.max_per_account;
                let mut old = Vec::with_capacity(excess);
                for e in t.range(range(account))?.take(excess) {
                    let (k, _) = e?;
                    let (_, time, seq) = k.value();
                    old.push((time, seq));
                }
                for (time, seq) in old {
                    t.remove((account, time, seq))?;
                }
            }
        }
    }
    txn.commit()?;
    Ok(())
}

/// Up to `limit` attempts of an account, newest first.
pub fn list(db: &Database, account: &str, limit: usize) -> Result<Vec<StoredAttempt>, StoreError> {
    let txn = db.begin_read()?;
    let t = txn.open_table(tables::LOGIN_ATTEMPTS)?;
    let mut out = Vec::new();
    for e in t.range(range(account))?.rev().take(limit) {
        let (k, v) = e?;
        let (_, time, _) = k.value();
        out.push(StoredAttempt {
            time: i64::try_from(time).unwrap_or(i64::MAX),
            record: codec::decode(v.value())?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::codec::AttemptResult;

    fn attempt(account: &str, time: i64, seq: u32) -> NewAttempt {
        NewAttempt {
            account: account.into(),
            time,
            seq,
            record: LoginAttemptRecord {
                kind: 1,
                login_address: format!("{account}@x"),
                ip: None,
                agent: String::new(),
                result: AttemptResult::BadPassword,
            },
        }
    }

    #[test]
    fn newest_first_bounded_by_count_and_age() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stores = crate::store::Stores::open(dir.path()).expect("open");
        let db = &stores.accounts;
        let keep = Retention {
            max_per_account: 5,
            max_age: 1000,
        };
        let batch: Vec<_> = (0..8).map(|i| attempt("a", 10_000 + i, 0)).collect();
        append(db, &batch, 10_010, keep).expect("append");
        append(db, &[attempt("b", 10_000, 0)], 10_010, keep).expect("append");
        let l = list(db, "a", 100).expect("list");
        let times: Vec<_> = l.iter().map(|a| a.time).collect();
        assert_eq!(times, vec![10_007, 10_006, 10_005, 10_004, 10_003]);
        assert_eq!(list(db, "a", 2).expect("list").len(), 2);
        assert_eq!(list(db, "b", 100).expect("list").len(), 1);
        // 2 s later, an append to "a" drops everything older than 1 s
        append(db, &[attempt("a", 12_000, 0)], 12_000, keep).expect("append");
        let l = list(db, "a", 100).expect("list");
        assert_eq!(l.len(), 1);
        assert_eq!(list(db, "", 100).expect("admin").len(), 0);
    }
}
