//! Accounts, login addresses and settings.
//!
//! Owns reads and writes of the `accounts`, `addresses` and `settings` tables,
//! and the validation of account names and addresses.
//!
//! Never: writes the `sessions` table (the account's session actor owns it),
//! except for removing an account's sessions inside the same transaction that
//! changes its password.

use redb::{Database, ReadableDatabase as _, ReadableTable as _};
use unicode_normalization::UnicodeNormalization as _;

use super::codec::{self, AccountRecord};
use super::error::StoreError;
use super::tables;

/// Longest account name or address, in bytes.
pub const MAX_NAME: usize = 255;

/// Why a name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty.
    #[error("name is empty")]
    Empty,
    /// Over [`MAX_NAME`] bytes.
    #[error("name is longer than {MAX_NAME} bytes")]
    TooLong,
    /// Contains a control character, a path separator or surrounding space.
    #[error("name contains a control character, a slash or backslash, or leading/trailing space")]
    BadCharacter,
    /// An address without exactly one `@` between two non-empty parts.
    #[error("address must have the form localpart@domain")]
    NotAnAddress,
}

/// Normalizes (NFC) and validates an account name.
pub fn normalize_account_name(name: &str) -> Result<String, NameError> {
    let n: String = name.nfc().collect();
    if n.is_empty() {
        return Err(NameError::Empty);
    }
    if n.len() > MAX_NAME {
        return Err(NameError::TooLong);
    }
    if n.chars().any(|c| c.is_control() || c == '/' || c == '\\') || n.trim() != n {
        return Err(NameError::BadCharacter);
    }
    Ok(n)
}

/// Normalizes (NFC, domain lower-cased) and validates a login address.
pub fn normalize_address(addr: &str) -> Result<String, NameError> {
    let n = normalize_account_name(addr)?;
    let (local, domain) = n.rsplit_once('@').ok_or(NameError::NotAnAddress)?;
    if local.is_empty() || domain.is_empty() || domain.contains('@') || n.contains(' ') {
        return Err(NameError::NotAnAddress);
    }
    Ok(format!("{local}@{}", domain.to_lowercase()))
}

/// The account a login address belongs to.
pub fn account_for_address(db: &Database, address: &str) -> Result<Option<String>, StoreError> {
    let txn = db.begin_read()?;
    let t = txn.open_table(tables::ADDRESSES)?;
    Ok(t.get(address)?.map(|v| v.value().to_string()))
}

/// One account's record.
pub fn get(db: &Database, name: &str) -> Result<Option<AccountRecord>, StoreError> {
    let txn = db.begin_read()?;
    let t = txn.open_table(tables::ACCOUNTS)?;
    match t.get(name)? {
        Some(v) => Ok(Some(codec::decode(v.value())?)),
        None => Ok(None),
    }
}

/// Every account, by name.
pub fn list(db: &Database) -> Result<Vec<AccountRecord>, StoreError> {
    let txn = db.begin_read()?;
    let t = txn.open_table(tables::ACCOUNTS)?;
    let mut out = Vec::new();
    for e in t.iter()? {
        let (_, v) = e?;
        out.push(codec::decode(v.value())?);
    }
    Ok(out)
}

/// Why an account could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The name is taken.
    #[error("account already exists")]
    AccountExists,
    /// The address belongs to an account already.
    #[error("address already in use")]
    AddressExists,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates an account with one login address, atomically. Name and address
/// must be normalized already.
pub fn create(db: &Database, rec: &AccountRecord) -> Result<(), CreateError> {
    let txn = db.begin_write().map_err(StoreError::from)?;
    {
        let mut accounts = txn.open_table(tables::ACCOUNTS).map_err(StoreError::from)?;
        let mut addresses = txn
            .open_table(tables::ADDRESSES)
            .map_err(StoreError::from)?;
        if accounts
            .get(rec.name.as_str())
            .map_err(StoreError::from)?
            .is_some()
        {
            return Err(CreateError::AccountExists);
        }
        for a in &rec.addresses {
            if addresses
                .get(a.as_str())
                .map_err(StoreError::from)?
                .is_some()
            {
                return Err(CreateError::AddressExists);
            }
            addresses
                .insert(a.as_str(), rec.name.as_str())
                .map_err(StoreError::from)?;
        }
        let enc = codec::encode(rec)?;
        accounts
            .insert(rec.name.as_str(), enc.as_slice())
            .map_err(StoreError::from)?;
    }
    txn.commit().map_err(StoreError::from)?;
    Ok(())
}

/// Replaces an account's password hash and removes all its sessions except
/// `keep` (the token hash of the session that made the change), in one
/// durable transaction. Returns the updated record, or `None` if the account
/// does not exist.
pub fn set_password(
    db: &Database,
    name: &str,
    phc: &str,
    keep: Option<[u8; 32]>,
) -> Result<Option<AccountRecord>, StoreError> {
    let txn = db.begin_write()?;
    let rec = {
        let mut accounts = txn.open_table(tables::ACCOUNTS)?;
        let Some(mut rec) = accounts
            .get(name)?
            .map(|v| codec::decode::<AccountRecord>(v.value()))
            .transpose()?
        else {
            return Ok(None);
        };
        rec.password = phc.to_string();
        let enc = codec::encode(&rec)?;
        accounts.insert(name, enc.as_slice())?;
        let mut sessions = txn.open_table(tables::SESSIONS)?;
        let range = (name, [0u8; 32])..=(name, [0xffu8; 32]);
        sessions.retain_in(range, |(_, hash), _| Some(hash) == keep)?;
        rec
    };
    txn.commit()?;
    Ok(Some(rec))
}

/// The admin password's PHC string, if one is set.
pub fn admin_password(db: &Database) -> Result<Option<String>, StoreError> {
    let txn = db.begin_read()?;
    let t = txn.open_table(tables::SETTINGS)?;
    match t.get(tables::ADMIN_PASSWORD)? {
        Some(v) => Ok(Some(String::from_utf8_lossy(v.value()).into_owned())),
        None => Ok(None),
    }
}

/// Stores the admin password's PHC string.
pub fn set_admin_password(db: &Database, phc: &str) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        let mut t = txn.open_table(tables::SETTINGS)?;
        t.insert(tables::ADMIN_PASSWORD, phc.as_bytes())?;
    }
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(normalize_account_name("mjl☺").as_deref(), Ok("mjl☺"));
        // NFD e + combining acute becomes NFC é
        assert_eq!(normalize_account_name("e\u{301}").as_deref(), Ok("\u{e9}"));
        assert_eq!(normalize_account_name(""), Err(NameError::Empty));
        assert_eq!(normalize_account_name("a/b"), Err(NameError::BadCharacter));
        assert_eq!(normalize_account_name("a\nb"), Err(NameError::BadCharacter));
        assert_eq!(normalize_account_name(" a"), Err(NameError::BadCharacter));
        assert_eq!(
            normalize_account_name(&"x".repeat(256)),
            Err(NameError::TooLong)
        );
        assert_eq!(
            normalize_address("Demo@LocalHost").as_deref(),
            Ok("Demo@localhost")
        );
        assert_eq!(normalize_address("demo"), Err(NameError::NotAnAddress));
        assert_eq!(normalize_address("@x"), Err(NameError::NotAnAddress));
    }
}
