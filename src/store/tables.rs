//! Every redb table of postern, in one place.
//!
//! `accounts.redb` (see [`super::Stores`]) holds:
//!
//! | table | key | value | written by |
//! |---|---|---|---|
//! | `accounts` | account name | [`AccountRecord`](super::codec::AccountRecord) | account administration; the account's session actor for its password |
//! | `addresses` | login address (NFC) | account name | account administration |
//! | `sessions` | (account name, SHA-256 of the session token) | [`SessionRecord`](super::codec::SessionRecord) | that account's session actor only |
//! | `settings` | setting name (`admin-password`) | bytes | administration |
//! | `login_attempts` | (account name, time in ms, sequence) | [`LoginAttemptRecord`](super::codec::LoginAttemptRecord) | the login-attempt writer ([`crate::attempts`]); account removal |
//!
//! In `login_attempts` the admin's own attempts use the empty account name,
//! which no account can have.
//!
//! `mail.redb` holds (all written by [`super::mail`] only):
//!
//! | table | key | value |
//! |---|---|---|
//! | `mailboxes` | (account, mailbox name) | [`MailboxRecord`](super::codec::MailboxRecord) |
//! | `messages` | (account, message id) | [`MessageRecord`](super::codec::MessageRecord) |
//! | `message_data` | (account, message id) | raw message bytes |
//! | `mail_counters` | account | next message id |
//! | `import_staging` | (import key, message id) | [`StagedRecord`](super::codec::StagedRecord) |
//!
//! Never: defines a table anywhere else in the crate.

use redb::TableDefinition;

/// Account name → encoded `AccountRecord`.
pub const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");
/// Login address → account name.
pub const ADDRESSES: TableDefinition<&str, &str> = TableDefinition::new("addresses");
/// (account, token hash) → encoded `SessionRecord`.
pub const SESSIONS: TableDefinition<(&str, [u8; 32]), &[u8]> = TableDefinition::new("sessions");
/// Setting name → value.
pub const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("settings");

/// (account, unix ms, sequence) → encoded `LoginAttemptRecord`; iterate a
/// range backwards for newest first.
pub const LOGIN_ATTEMPTS: TableDefinition<(&str, u64, u32), &[u8]> =
    TableDefinition::new("login_attempts");

/// Key in [`SETTINGS`] of the admin password's PHC string.
pub const ADMIN_PASSWORD: &str = "admin-password";

// mail.redb (see [`super::mail`]): one account's mail is every key whose first
// part is the account name.

/// (account, mailbox name) → encoded `MailboxRecord`.
pub const MAILBOXES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("mailboxes");
/// (account, message id) → encoded `MessageRecord`: a message is visible once
/// it is here.
pub const MESSAGES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("messages");
/// (account, message id) → the raw message bytes, exactly as received.
pub const MESSAGE_DATA: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("message_data");
/// Account → next message id.
pub const MAIL_COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("mail_counters");
/// (import key, message id) → encoded `StagedRecord`: a message of an import
/// that has not been published yet (its bytes are in `message_data`).
pub const IMPORT_STAGING: TableDefinition<([u8; 16], u64), &[u8]> =
    TableDefinition::new("import_staging");
