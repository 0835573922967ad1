//! Record encoding: the only place bincode appears.
//!
//! Every stored value is one format-version byte followed by the bincode 2
//! (standard configuration, serde) encoding of the record. Decoding checks the
//! version, bounds the size, and refuses trailing bytes; it never panics. A
//! format change means a new version number and a decode arm for the old one.
//!
//! Each record type says its current version through [`Record::VERSION`] and
//! upgrades older encodings in [`Record::upgrade`]:
//!
//! | record | version | older versions |
//! |---|---|---|
//! | [`AccountRecord`] | 2 (adds `destinations`) | 1: [`AccountRecordV1`], upgraded with a default destination per address |
//! | [`SessionRecord`] | 1 | |
//! | [`LoginAttemptRecord`] | 1 | |
//! | [`MailboxRecord`], [`MessageRecord`], [`StagedRecord`] | 1 | |
//!
//! Never: is bypassed: no other module serializes records.

use std::net::IpAddr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::StoreError;
use crate::clock::UnixMillis;

/// Format version of records that have had only one format.
pub const VERSION: u8 = 1;
/// Largest record we decode (a session or account record is far smaller).
const MAX_RECORD: usize = 64 * 1024;

/// A stored record type: its current format version and how older formats
/// are read.
pub trait Record: Serialize + DeserializeOwned {
    /// The version byte written by [`encode`].
    const VERSION: u8;
    /// Decodes the body of an older format `version` (the version byte
    /// removed) into the current one. The default knows no older format.
    fn upgrade(version: u8, _body: &[u8]) -> Result<Self, StoreError> {
        Err(StoreError::Decode(format!(
            "unknown record version {version}"
        )))
    }
}

/// Where new mail for one login address goes, and its delivery rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// Full name used in messages sent from this address (empty: the
    /// account's full name).
    pub full_name: String,
    /// Mailbox new mail goes to when no rule matches.
    pub mailbox: String,
    /// Delivery rules, tried in order; the first that matches decides.
    pub rules: Vec<Rule>,
}

impl Default for Destination {
    /// Delivery to `Inbox`, no rules, no full name of its own.
    fn default() -> Self {
        Destination {
            full_name: String::new(),
            mailbox: "Inbox".into(),
            rules: Vec::new(),
        }
    }
}

/// One delivery rule: a message whose header `header` (case-insensitive
/// name) contains `contains` (case-insensitive) goes to `mailbox`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Header name, e.g. `List-Id`, `From`, `Subject`.
    pub header: String,
    /// Text the header value must contain.
    pub contains: String,
    /// Mailbox to deliver to.
    pub mailbox: String,
}

/// An account as stored in format version 1 (before destinations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecordV1 {
    /// See [`AccountRecord::name`].
    pub name: String,
    /// See [`AccountRecord::full_name`].
    pub full_name: String,
    /// See [`AccountRecord::addresses`].
    pub addresses: Vec<String>,
    /// See [`AccountRecord::password`].
    pub password: String,
    /// See [`AccountRecord::login_disabled`].
    pub login_disabled: Option<String>,
    /// See [`AccountRecord::created`].
    pub created: UnixMillis,
}

/// An account as stored (format version 2).
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
    /// Destination of each login address, keyed by address (the same set of
    /// keys as `addresses`).
    pub destinations: Destinations,
}

/// The destinations of an account's login addresses, sorted by address.
/// An exactly sized sorted vector rather than a `BTreeMap`, whose first node
/// alone takes ~1 KB, for the one or two addresses an account usually has:
/// every live account's record is held in memory (docs/sessions-memory.md).
/// Encoded as a map, byte for byte as the `BTreeMap` was.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Destinations(Vec<(String, Destination)>);

impl Destinations {
    /// The destination of `address`, if one is stored.
    pub fn get(&self, address: &str) -> Option<&Destination> {
        self.find(address).ok().map(|i| &self.0[i].1)
    }

    /// Sets the destination of `address`.
    pub fn insert(&mut self, address: String, d: Destination) {
        match self.find(&address) {
            Ok(i) => self.0[i].1 = d,
            Err(i) => {
                self.0.reserve_exact(1);
                self.0.insert(i, (address, d));
            }
        }
    }

    /// Removes the destination of `address`.
    pub fn remove(&mut self, address: &str) {
        if let Ok(i) = self.find(address) {
            self.0.remove(i);
            self.0.shrink_to_fit();
        }
    }

    /// Number of destinations.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The destinations, by address.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Destination)> {
        self.0.iter().map(|(a, d)| (a.as_str(), d))
    }

    fn find(&self, address: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(a, _)| a.as_str().cmp(address))
    }
}

impl FromIterator<(String, Destination)> for Destinations {
    /// Later entries for the same address win, as with a map.
    fn from_iter<I: IntoIterator<Item = (String, Destination)>>(iter: I) -> Self {
        let mut v: Vec<(String, Destination)> = iter.into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0)); // stable: equal keys keep their order
        v.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        v.shrink_to_fit();
        Destinations(v)
    }
}

impl<const N: usize> From<[(String, Destination); N]> for Destinations {
    fn from(a: [(String, Destination); N]) -> Self {
        a.into_iter().collect()
    }
}

impl Serialize for Destinations {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(a, d)| (a, d)))
    }
}

impl<'de> Deserialize<'de> for Destinations {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = Destinations;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of address to destination")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Destinations, A::Error> {
                // The size hint comes from the input: bounded, not trusted.
                let mut v = Vec::with_capacity(m.size_hint().unwrap_or(0).min(64));
                while let Some(e) = m.next_entry::<String, Destination>()? {
                    v.push(e);
                }
                Ok(v.into_iter().collect())
            }
        }
        d.deserialize_map(Entries)
    }
}

impl AccountRecord {
    /// The destination of a login address (the default if none is stored).
    pub fn destination(&self, address: &str) -> Destination {
        self.destinations.get(address).cloned().unwrap_or_default()
    }
}

impl Record for AccountRecord {
    const VERSION: u8 = 2;
    fn upgrade(version: u8, body: &[u8]) -> Result<Self, StoreError> {
        match version {
            1 => {
                let v1: AccountRecordV1 = decode_body(body)?;
                let destinations = v1
                    .addresses
                    .iter()
                    .map(|a| (a.clone(), Destination::default()))
                    .collect();
                Ok(AccountRecord {
                    name: v1.name,
                    full_name: v1.full_name,
                    addresses: v1.addresses,
                    password: v1.password,
                    login_disabled: v1.login_disabled,
                    created: v1.created,
                    destinations,
                })
            }
            v => Err(StoreError::Decode(format!("unknown record version {v}"))),
        }
    }
}

impl Record for AccountRecordV1 {
    const VERSION: u8 = 1;
}

impl Record for SessionRecord {
    const VERSION: u8 = VERSION;
}

/// The outcome of one sign-in attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttemptResult {
    /// Signed in.
    Ok,
    /// Wrong password.
    BadPassword,
    /// Right password, but login is disabled.
    Disabled,
}

impl AttemptResult {
    /// The name shown in the API (`ok`, `badpassword`, `disabled`).
    pub fn name(self) -> &'static str {
        match self {
            AttemptResult::Ok => "ok",
            AttemptResult::BadPassword => "badpassword",
            AttemptResult::Disabled => "disabled",
        }
    }
}

/// One sign-in attempt as stored (the time and account are in the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginAttemptRecord {
    /// `Kind::code()` of the interface signed in to.
    pub kind: u8,
    /// The login address given (empty for the admin).
    pub login_address: String,
    /// Client IP.
    pub ip: Option<IpAddr>,
    /// User agent (bounded).
    pub agent: String,
    /// Outcome.
    pub result: AttemptResult,
}

impl Record for LoginAttemptRecord {
    const VERSION: u8 = 1;
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

impl Record for MailboxRecord {
    const VERSION: u8 = VERSION;
}

impl Record for MessageRecord {
    const VERSION: u8 = VERSION;
}

impl Record for StagedRecord {
    const VERSION: u8 = VERSION;
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_RECORD>()
}

/// Encodes a record with its current version byte.
pub fn encode<T: Record>(rec: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![T::VERSION];
    bincode::serde::encode_into_std_write(rec, &mut out, config())
        .map_err(|e| StoreError::Encode(e.to_string()))?;
    Ok(out)
}

/// Decodes a record, checking version and length; older versions go through
/// [`Record::upgrade`].
pub fn decode<T: Record>(bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&v, rest)) if v == T::VERSION => decode_body(rest),
        Some((&v, rest)) => {
            if rest.len() > MAX_RECORD {
                return Err(StoreError::Decode("record too large".into()));
            }
            T::upgrade(v, rest)
        }
        None => Err(StoreError::Decode("empty record".into())),
    }
}

/// Decodes one record body (no version byte): bounded, no trailing bytes.
fn decode_body<T: DeserializeOwned>(rest: &[u8]) -> Result<T, StoreError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn dest(mailbox: &str) -> Destination {
        Destination {
            mailbox: mailbox.into(),
            ..Destination::default()
        }
    }

    proptest! {
        /// `Destinations` encodes exactly as the `BTreeMap` it replaced and
        /// behaves like one: sorted, later entries for an address win.
        #[test]
        fn destinations_match_a_btreemap(
            entries in proptest::collection::vec(("[a-d]{1,2}", "[A-Z]{0,3}"), 0..12),
            remove in "[a-d]{1,2}",
        ) {
            let pairs: Vec<(String, Destination)> =
                entries.iter().map(|(a, m)| (a.clone(), dest(m))).collect();
            let mut map: BTreeMap<String, Destination> = pairs.iter().cloned().collect();
            let mut ours: Destinations = pairs.iter().cloned().collect();
            let cfg = bincode::config::standard();
            prop_assert_eq!(
                bincode::serde::encode_to_vec(&ours, cfg).expect("encode"),
                bincode::serde::encode_to_vec(&map, cfg).expect("encode")
            );
            ours.insert("c".into(), dest("X"));
            map.insert("c".into(), dest("X"));
            ours.remove(&remove);
            map.remove(&remove);
            prop_assert_eq!(ours.len(), map.len());
            prop_assert!(ours.iter().map(|(a, d)| (a.to_string(), d.clone())).eq(map.clone()));
            for (a, d) in &map {
                prop_assert_eq!(ours.get(a), Some(d));
            }
            let enc = bincode::serde::encode_to_vec(&map, cfg).expect("encode");
            let (back, _): (Destinations, usize) =
                bincode::serde::decode_from_slice(&enc, cfg).expect("decode");
            prop_assert_eq!(back, ours);
        }
    }

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

    #[test]
    fn account_v1_upgrades_to_v2() {
        let v1 = AccountRecordV1 {
            name: "mjl".into(),
            full_name: "M".into(),
            addresses: vec!["a@x".into(), "b@x".into()],
            password: "phc".into(),
            login_disabled: Some("no".into()),
            created: 5,
        };
        let b = encode(&v1).expect("encode");
        assert_eq!(b[0], 1);
        let v2: AccountRecord = decode(&b).expect("upgrade");
        assert_eq!(v2.name, "mjl");
        assert_eq!(v2.addresses, v1.addresses);
        assert_eq!(v2.login_disabled.as_deref(), Some("no"));
        assert_eq!(v2.destinations.len(), 2);
        assert_eq!(v2.destination("a@x"), Destination::default());
        let again = encode(&v2).expect("encode");
        assert_eq!(again[0], 2);
        assert_eq!(decode::<AccountRecord>(&again).expect("decode"), v2);
        assert!(decode::<AccountRecord>(&[3, 0]).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<SessionRecord>(&b);
            let _ = decode::<AccountRecord>(&b);
            let _ = decode::<LoginAttemptRecord>(&b);
        }
    }
}
