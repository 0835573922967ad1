//! Storage: redb files in the data directory, synchronous.
//!
//! Owns the database files and every read and write of them:
//! `accounts.redb` (accounts, addresses, sessions, settings; see [`tables`]).
//! Mail lives in its own file, `mail.redb` (see [`mail`]), so a long import
//! never holds the single writer of the file that logins write to; opening it
//! discards whatever a crash left of an unfinished import.
//!
//! Never: spawns, awaits, or holds a transaction beyond one function call.
//! Async callers run these functions on the blocking pool ([`blocking`]).

pub mod accounts;
pub mod attempts;
pub mod codec;
pub mod error;
pub mod hooks;
pub mod mail;
pub mod sessions;
pub mod tables;

use std::path::Path;
use std::sync::Arc;

use redb::Database;

pub use error::StoreError;

/// Page cache of `mail.redb`. redb's default (1 GiB) would let memory grow
/// with every message an import writes or an export reads; mail is streamed,
/// so a small cache keeps memory flat.
pub const MAIL_CACHE_BYTES: usize = 32 << 20;

/// Page cache of `accounts.redb`. Sessions are read once per account (then
/// held by its actor) and written in batches, so the cache serves account
/// look-ups at sign-in; redb's default (1 GiB) would instead keep every page
/// ever read, growing memory with every account loaded.
pub const ACCOUNTS_CACHE_BYTES: usize = 32 << 20;

/// The open database files of one postern instance.
#[derive(Clone, Debug)]
pub struct Stores {
    /// `accounts.redb`.
    pub accounts: Arc<Database>,
    /// `mail.redb`: mailboxes, messages, import staging.
    pub mail: Arc<Database>,
}

impl Stores {
    /// Opens (creating if needed) the databases in `dir`, and makes sure every
    /// table exists so read transactions never see a missing table.
    pub fn open(dir: &Path) -> Result<Stores, StoreError> {
        std::fs::create_dir_all(dir)?;
        let db = Database::builder()
            .set_cache_size(ACCOUNTS_CACHE_BYTES)
            .create(dir.join("accounts.redb"))?;
        let txn = db.begin_write()?;
        txn.open_table(tables::ACCOUNTS)?;
        txn.open_table(tables::ADDRESSES)?;
        txn.open_table(tables::SESSIONS)?;
        txn.open_table(tables::SETTINGS)?;
        txn.open_table(tables::LOGIN_ATTEMPTS)?;
        txn.commit()?;
        let mail = Database::builder()
            .set_cache_size(MAIL_CACHE_BYTES)
            .create(dir.join("mail.redb"))?;
        let txn = mail.begin_write()?;
        mail::create_tables(&txn)?;
        txn.commit()?;
        let leftover = mail::discard_all_staging(&mail)?;
        if leftover > 0 {
            tracing::info!(messages = leftover, "discarded an unfinished import");
        }
        Ok(Stores {
            accounts: Arc::new(db),
            mail: Arc::new(mail),
        })
    }
}

/// Runs a storage function on tokio's blocking pool.
pub async fn blocking<T, F>(f: F) -> Result<T, StoreError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| StoreError::Task)?
}
