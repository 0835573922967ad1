//! Storage errors.
//!
//! Owns [`StoreError`]: redb's per-operation errors and codec failures, as one
//! narrow enum for the storage layer. Callers map it to `server:error`; the
//! details are logged once, at the boundary.

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened.
    #[error("opening database: {0}")]
    Open(#[from] redb::DatabaseError),
    /// A transaction could not start.
    #[error("transaction: {0}")]
    Transaction(#[from] redb::TransactionError),
    /// A table could not be opened.
    #[error("table: {0}")]
    Table(#[from] redb::TableError),
    /// Reading or writing a table failed.
    #[error("storage: {0}")]
    Storage(#[from] redb::StorageError),
    /// The commit failed; the database may refuse writes until reopened.
    #[error("commit: {0}")]
    Commit(#[from] redb::CommitError),
    /// A record could not be encoded.
    #[error("encoding record: {0}")]
    Encode(String),
    /// A stored record could not be decoded.
    #[error("decoding record: {0}")]
    Decode(String),
    /// The actor that owns the records did not answer (busy or stopped).
    #[error("store owner unavailable: {0}")]
    Busy(String),
    /// A blocking task panicked or was cancelled.
    #[error("storage task failed")]
    Task,
    /// Creating the data directory failed.
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
}
