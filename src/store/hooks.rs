//! Where other stores learn about account changes and report on accounts.
//!
//! The mail store (its own file, `mail.redb`) plugs in here, in one place:
//!
//! - [`on_account_removed`] runs after an account's records, addresses,
//!   sessions and login attempts were removed from `accounts.redb` (one
//!   transaction); it must remove the account's mail.
//! - [`storage_used`] answers how many bytes of mail an account holds (the
//!   sum of its messages' sizes).
//!
//! Never: touches `accounts.redb` (account removal there is already done and
//! durable when [`on_account_removed`] runs).

use super::Stores;
use super::error::StoreError;

/// Called once after `account` was removed from `accounts.redb`. The mail
/// store removes the account's mail here. If this fails the account is gone
/// but its mail is not: the error is returned to the caller (and logged), and
/// calling it again for the same name must be safe.
pub fn on_account_removed(stores: &Stores, account: &str) -> Result<(), StoreError> {
    super::mail::remove_account_mail(&stores.mail, account)
}

/// Bytes of mail stored for `account`.
pub fn storage_used(stores: &Stores, account: &str) -> Result<u64, StoreError> {
    Ok(super::mail::messages(&stores.mail, account)?
        .iter()
        .map(|(_, m)| m.size)
        .sum())
}
