//! Provisioning accounts and the admin password directly on the databases.
//!
//! Owns the operations `localserve` (and tests, and later the command line)
//! run on a data directory before or without a server: create an account
//! with a login address and password, set the admin password.
//!
//! Never: runs while a server has the same data directory open (redb locks
//! the file; opening fails with a clear error).

use crate::clock::UnixMillis;
use crate::credentials::{self, HashCost};
use crate::store::Stores;
use crate::store::accounts::{self, CreateError};
use crate::store::codec::AccountRecord;

/// Creates an account with one login address and a password.
pub fn create_account(
    stores: &Stores,
    name: &str,
    address: &str,
    password: &str,
    cost: HashCost,
    now: UnixMillis,
) -> anyhow::Result<()> {
    let name = accounts::normalize_account_name(name)?;
    let address = accounts::normalize_address(address)?;
    let password = credentials::check_new(password)?;
    let rec = AccountRecord {
        name,
        full_name: String::new(),
        destinations: [(address.clone(), Default::default())].into(),
        addresses: vec![address],
        password: credentials::hash_sync(cost, &password)?,
        login_disabled: None,
        created: now,
    };
    match accounts::create(&stores.accounts, &rec) {
        Ok(()) => Ok(()),
        Err(e @ (CreateError::AccountExists | CreateError::AddressExists)) => Err(e.into()),
        Err(CreateError::Store(e)) => Err(e.into()),
    }
}

/// Sets the admin password.
pub fn set_admin_password(stores: &Stores, password: &str, cost: HashCost) -> anyhow::Result<()> {
    let password = credentials::check_new(password)?;
    let phc = credentials::hash_sync(cost, &password)?;
    accounts::set_admin_password(&stores.accounts, &phc)?;
    Ok(())
}
