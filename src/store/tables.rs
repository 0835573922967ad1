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

/// Key in [`SETTINGS`] of the admin password's PHC string.
pub const ADMIN_PASSWORD: &str = "admin-password";
