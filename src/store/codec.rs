//! Record encoding: the only place bincode appears.
//!
//! Every stored value is one format-version byte followed by the bincode 2
//! (standard configuration, serde) encoding of the record. Decoding checks the
//! version, bounds the size, and refuses trailing bytes; it never panics. A
//! format change means a new version number and a decode arm for the old one.
//!
//! Never: is bypassed: no other module serializes records.

use std::net::IpAddr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::StoreError;
use crate::clock::UnixMillis;

/// Current format version of every record type.
pub const VERSION: u8 = 1;
/// Largest record we decode (a session or account record is far smaller).
const MAX_RECORD: usize = 64 * 1024;

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// The account's name (also its key).
    pub name: String,
    /// Full name of the account holder.
    pub full_name: String,
    /// Login addresses, NFC, in the order they were added.
    pub addresses: Vec<String>,
    /// argon2id hash in PHC string form; empty when no password is set (no
    /// login possible).
    pub password: String,
    /// `Some(reason)` when login is disabled.
    pub login_disabled: Option<String>,
    /// When the account was created.
    pub created: UnixMillis,
}

/// A session as stored. The token itself is never stored: the key holds its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Opaque identifier shown to the account holder (not a secret).
    pub id: u64,
    /// `Kind::code()` of the interface that created it.
    pub kind: u8,
    /// SHA-256 of the CSRF token.
    pub csrf_hash: [u8; 32],
    /// The address used to sign in.
    pub login_address: String,
    /// Creation time.
    pub created: UnixMillis,
    /// Last use.
    pub last_used: UnixMillis,
    /// Expiry (last use + idle lifetime).
    pub expires: UnixMillis,
    /// Client IP at creation.
    pub created_ip: Option<IpAddr>,
    /// User agent at creation (bounded).
    pub created_agent: String,
    /// Client IP at last use.
    pub last_ip: Option<IpAddr>,
    /// User agent at last use (bounded).
    pub last_agent: String,
}

/// A mailbox as stored (the name is the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxRecord {
    /// When the mailbox was created.
    pub created: UnixMillis,
}

/// A message's metadata as stored (the bytes are in `message_data`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// The mailbox it is in.
    pub mailbox: String,
    /// System flags ([`crate::mail::Flags`] bits).
    pub flags: u8,
    /// Keywords.
    pub keywords: Vec<String>,
    /// When it was received.
    pub received: UnixMillis,
    /// Size of the raw bytes.
    pub size: u64,
}

/// A message of an import in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedRecord {
    /// The account importing.
    pub account: String,
    /// The message as it will be published.
    pub message: MessageRecord,
    /// For maildir messages: the maildir's path in the archive, whose
    /// `dovecot-keywords` resolves `letters` at publish time.
    pub maildir: String,
    /// Unresolved maildir keyword letters.
    pub letters: String,
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_RECORD>()
}

/// Encodes a record with the current version byte.
pub fn encode<T: Serialize>(rec: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![VERSION];
    bincode::serde::encode_into_std_write(rec, &mut out, config())
        .map_err(|e| StoreError::Encode(e.to_string()))?;
    Ok(out)
}

/// Decodes a record, checking version and length.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&VERSION, rest)) => {
            if rest.len() > MAX_RECORD {
                return Err(StoreError::Decode("record too large".into()));
            }
            let (v, used) = bincode::serde::decode_from_slice(rest, config())
                .map_err(|e| StoreError::Decode(e.to_string()))?;
            if used != rest.len() {
                return Err(StoreError::Decode("trailing bytes after record".into()));
            }
            Ok(v)
        }
        Some((v, _)) => Err(StoreError::Decode(format!("unknown record version {v}"))),
        None => Err(StoreError::Decode("empty record".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn session() -> SessionRecord {
        SessionRecord {
            id: 7,
            kind: 1,
            csrf_hash: [3; 32],
            login_address: "mjl☺@example.org".into(),
            created: 1,
            last_used: 2,
            expires: 3,
            created_ip: Some("2001:db8::1".parse().expect("ip")),
            created_agent: "Mozilla".into(),
            last_ip: None,
            last_agent: String::new(),
        }
    }

    #[test]
    fn roundtrip() {
        let s = session();
        let b = encode(&s).expect("encode");
        assert_eq!(b[0], VERSION);
        assert_eq!(decode::<SessionRecord>(&b).expect("decode"), s);
    }

    #[test]
    fn refuses_bad_bytes() {
        let mut b = encode(&session()).expect("encode");
        assert!(decode::<SessionRecord>(&[]).is_err());
        assert!(decode::<SessionRecord>(&[9, 0]).is_err());
        b.push(0);
        assert!(decode::<SessionRecord>(&b).is_err(), "trailing byte");
        b.truncate(b.len() - 5);
        assert!(decode::<SessionRecord>(&b).is_err(), "truncated");
    }

    proptest! {
        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<SessionRecord>(&b);
            let _ = decode::<AccountRecord>(&b);
        }
    }
}
