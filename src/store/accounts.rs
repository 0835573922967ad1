//! Accounts, login addresses and settings.
//!
//! Owns reads and writes of the `accounts`, `addresses` and `settings` tables,
//! and the validation of account names and addresses.
//!
//! Never: writes the `sessions` table (the account's session actor owns it),
//! except for removing an account's sessions inside the same transaction that
//! changes its password or removes the account. Once an account exists, its
//! record is changed only through its session actor ([`edit`], [`remove`] and
//! [`set_password`] are called by that actor), so the copy it holds in memory
//! stays the truth.

use redb::{Database, ReadableDatabase as _, ReadableTable as _};
use unicode_normalization::UnicodeNormalization as _;

use super::codec::{self, AccountRecord, Destination};
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
    if local.is_empty() || domain.is_empty() || local.contains('@') || n.contains(' ') {
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

/// Longest full name, mailbox name, rule header or rule text, in bytes.
pub const MAX_FIELD: usize = 255;
/// Most rules per destination.
pub const MAX_RULES: usize = 100;

/// Checks a full name: at most [`MAX_FIELD`] bytes, no control characters.
pub fn check_full_name(s: &str) -> Result<(), String> {
    check_text("full name", s, true)
}

fn check_text(what: &str, s: &str, may_be_empty: bool) -> Result<(), String> {
    if !may_be_empty && s.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if s.len() > MAX_FIELD {
        return Err(format!("{what} is longer than {MAX_FIELD} bytes"));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{what} contains a control character"));
    }
    Ok(())
}

/// Checks a destination: bounded texts, non-empty mailboxes, at most
/// [`MAX_RULES`] rules, header names of visible ASCII without `:`.
pub fn check_destination(d: &Destination) -> Result<(), String> {
    check_text("full name", &d.full_name, true)?;
    check_text("mailbox", &d.mailbox, false)?;
    if d.rules.len() > MAX_RULES {
        return Err(format!("more than {MAX_RULES} rules"));
    }
    for (i, r) in d.rules.iter().enumerate() {
        check_text(&format!("rule {i}: header"), &r.header, false)?;
        if !r.header.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            return Err(format!(
                "rule {i}: header name must be visible ASCII without ':'"
            ));
        }
        check_text(&format!("rule {i}: text"), &r.contains, false)?;
        check_text(&format!("rule {i}: mailbox"), &r.mailbox, false)?;
    }
    Ok(())
}

/// A change to an existing account's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountEdit {
    /// Set the full name (checked with [`check_full_name`]).
    FullName(String),
    /// Replace the destination of `address` with `new` if it still equals
    /// `old` (optimistic concurrency).
    Destination {
        /// The login address whose destination changes.
        address: String,
        /// What the client last saw.
        old: Destination,
        /// What it wants stored (checked with [`check_destination`]).
        new: Destination,
    },
    /// Disable login with a reason, or enable it (`None`).
    LoginDisabled(Option<String>),
    /// Add a login address (normalized) with the default destination.
    AddAddress(String),
    /// Remove a login address (normalized) and its destination.
    RemoveAddress(String),
}

/// Why an edit was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// No such account.
    #[error("unknown account")]
    UnknownAccount,
    /// The account has no such destination.
    #[error("unknown destination")]
    UnknownDestination,
    /// The stored destination differs from the client's `old`.
    #[error("modified")]
    Modified,
    /// The address belongs to an account already.
    #[error("address already in use")]
    AddressExists,
    /// The address does not belong to this account.
    #[error("address does not belong to this account")]
    UnknownAddress,
    /// Removing the only login address would lock the account out.
    #[error("cannot remove the last address of an account")]
    LastAddress,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn se<E: Into<StoreError>>(e: E) -> EditError {
    EditError::Store(e.into())
}

/// Applies one edit to an account's record (and the `addresses` table for
/// address edits) in one durable transaction; returns the new record.
pub fn edit(db: &Database, name: &str, edit: &AccountEdit) -> Result<AccountRecord, EditError> {
    let txn = db.begin_write().map_err(se)?;
    let rec = {
        let mut accounts = txn.open_table(tables::ACCOUNTS).map_err(se)?;
        let mut addresses = txn.open_table(tables::ADDRESSES).map_err(se)?;
        let Some(mut rec) = accounts
            .get(name)
            .map_err(se)?
            .map(|v| codec::decode::<AccountRecord>(v.value()))
            .transpose()?
        else {
            return Err(EditError::UnknownAccount);
        };
        match edit {
            AccountEdit::FullName(n) => rec.full_name.clone_from(n),
            AccountEdit::Destination { address, old, new } => {
                if !rec.addresses.iter().any(|a| a == address) {
                    return Err(EditError::UnknownDestination);
                }
                if rec.destination(address) != *old {
                    return Err(EditError::Modified);
                }
                rec.destinations.insert(address.clone(), new.clone());
            }
            AccountEdit::LoginDisabled(r) => rec.login_disabled.clone_from(r),
            AccountEdit::AddAddress(a) => {
                if addresses.get(a.as_str()).map_err(se)?.is_some() {
                    return Err(EditError::AddressExists);
                }
                addresses.insert(a.as_str(), name).map_err(se)?;
                rec.addresses.push(a.clone());
                rec.destinations.insert(a.clone(), Destination::default());
            }
            AccountEdit::RemoveAddress(a) => {
                if !rec.addresses.iter().any(|x| x == a) {
                    return Err(EditError::UnknownAddress);
                }
                if rec.addresses.len() == 1 {
                    return Err(EditError::LastAddress);
                }
                addresses.remove(a.as_str()).map_err(se)?;
                rec.addresses.retain(|x| x != a);
                rec.destinations.remove(a);
            }
        }
        let enc = codec::encode(&rec)?;
        accounts.insert(name, enc.as_slice()).map_err(se)?;
        rec
    };
    txn.commit().map_err(se)?;
    Ok(rec)
}

/// Removes an account, its login addresses, its sessions and its login
/// attempts in one durable transaction. Whether it existed. (Its mail lives
/// in another file; see [`super::hooks::on_account_removed`].)
pub fn remove(db: &Database, name: &str) -> Result<bool, StoreError> {
    let txn = db.begin_write()?;
    {
        let mut accounts = txn.open_table(tables::ACCOUNTS)?;
        let Some(rec) = accounts
            .remove(name)?
            .map(|v| codec::decode::<AccountRecord>(v.value()))
            .transpose()?
        else {
            return Ok(false);
        };
        let mut addresses = txn.open_table(tables::ADDRESSES)?;
        for a in &rec.addresses {
            addresses.remove(a.as_str())?;
        }
        // Addresses pointing at the account that the record does not list
        // (never expected) go too, so nothing dangles.
        addresses.retain(|_, acc| acc != name)?;
        let mut sessions = txn.open_table(tables::SESSIONS)?;
        sessions.retain_in((name, [0u8; 32])..=(name, [0xffu8; 32]), |_, _| false)?;
        let mut attempts = txn.open_table(tables::LOGIN_ATTEMPTS)?;
        attempts.retain_in((name, 0, 0)..=(name, u64::MAX, u32::MAX), |_, _| false)?;
    }
    txn.commit()?;
    Ok(true)
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
        assert_eq!(normalize_address("a@b@c"), Err(NameError::NotAnAddress));
    }

    fn rec(name: &str, addr: &str) -> AccountRecord {
        AccountRecord {
            name: name.into(),
            full_name: String::new(),
            addresses: vec![addr.into()],
            password: String::new(),
            login_disabled: None,
            created: 0,
            destinations: [(addr.to_string(), Destination::default())].into(),
        }
    }

    #[test]
    fn edits_and_removal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stores = crate::store::Stores::open(dir.path()).expect("open");
        let db = &stores.accounts;
        create(db, &rec("a", "a@x")).expect("create a");
        create(db, &rec("b", "b@x")).expect("create b");
        let e = edit(db, "a", &AccountEdit::AddAddress("b@x".into())).expect_err("dup");
        assert!(matches!(e, EditError::AddressExists));
        edit(db, "a", &AccountEdit::AddAddress("a2@x".into())).expect("add");
        let changed = Destination {
            mailbox: "Other".into(),
            ..Destination::default()
        };
        let d = AccountEdit::Destination {
            address: "a2@x".into(),
            old: changed.clone(),
            new: Destination::default(),
        };
        assert!(matches!(edit(db, "a", &d), Err(EditError::Modified)));
        let d = AccountEdit::Destination {
            address: "a2@x".into(),
            old: Destination::default(),
            new: changed.clone(),
        };
        let r = edit(db, "a", &d).expect("save");
        assert_eq!(r.destination("a2@x"), changed);
        assert_eq!(get(db, "a").expect("get"), Some(r));
        assert!(matches!(
            edit(db, "zz", &AccountEdit::FullName("x".into())),
            Err(EditError::UnknownAccount)
        ));
        edit(db, "a", &AccountEdit::RemoveAddress("a2@x".into())).expect("remove address");
        assert!(matches!(
            edit(db, "a", &AccountEdit::RemoveAddress("a@x".into())),
            Err(EditError::LastAddress)
        ));
        assert_eq!(account_for_address(db, "a2@x").expect("lookup"), None);

        // removal takes sessions and attempts of that account only
        let txn = db.begin_write().expect("txn");
        {
            let mut s = txn.open_table(tables::SESSIONS).expect("t");
            s.insert(("a", [1u8; 32]), &[1u8][..]).expect("ins");
            s.insert(("b", [1u8; 32]), &[1u8][..]).expect("ins");
            let mut t = txn.open_table(tables::LOGIN_ATTEMPTS).expect("t");
            t.insert(("a", 1, 1), &[1u8][..]).expect("ins");
            t.insert(("b", 1, 1), &[1u8][..]).expect("ins");
        }
        txn.commit().expect("commit");
        assert!(remove(db, "a").expect("remove"));
        assert!(!remove(db, "a").expect("again"));
        assert_eq!(get(db, "a").expect("get"), None);
        assert_eq!(account_for_address(db, "a@x").expect("lookup"), None);
        assert_eq!(
            account_for_address(db, "b@x").expect("lookup").as_deref(),
            Some("b")
        );
        let txn = db.begin_read().expect("read");
        let s = txn.open_table(tables::SESSIONS).expect("t");
        assert_eq!(s.iter().expect("iter").count(), 1);
        let t = txn.open_table(tables::LOGIN_ATTEMPTS).expect("t");
        assert_eq!(t.iter().expect("iter").count(), 1);
    }

    #[test]
    fn version_1_records_are_read_and_rewritten_as_version_2() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stores = crate::store::Stores::open(dir.path()).expect("open");
        let db = &stores.accounts;
        let v1 = codec::AccountRecordV1 {
            name: "old".into(),
            full_name: "Old".into(),
            addresses: vec!["old@x".into()],
            password: "phc".into(),
            login_disabled: None,
            created: 1,
        };
        let txn = db.begin_write().expect("txn");
        {
            let mut t = txn.open_table(tables::ACCOUNTS).expect("t");
            let enc = codec::encode(&v1).expect("encode");
            t.insert("old", enc.as_slice()).expect("insert");
        }
        txn.commit().expect("commit");
        let r = get(db, "old").expect("get").expect("exists");
        assert_eq!(r.full_name, "Old");
        assert_eq!(r.destination("old@x"), Destination::default());
        edit(db, "old", &AccountEdit::FullName("New".into())).expect("edit");
        let txn = db.begin_read().expect("read");
        let t = txn.open_table(tables::ACCOUNTS).expect("t");
        let raw = t.get("old").expect("get").expect("exists");
        assert_eq!(raw.value()[0], 2, "rewritten as version 2");
    }
}
