//! Target `record_decode`: the stored record codec.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::codec::{self, AccountRecord, SessionRecord, VERSION};

/// Properties, for session and account records:
/// - decoding any bytes never panics; anything not starting with the
///   current version byte is refused;
/// - a decoded record encodes to bytes that decode to the same record, and
///   that encoding is no longer than the input (decoding may accept
///   non-minimal integers, encoding writes minimal ones);
/// - appending a byte to a valid encoding makes it invalid (no trailing
///   garbage), and so does cutting its last byte off.
pub fn record_decode(data: &[u8]) {
    check::<SessionRecord>(data);
    check::<AccountRecord>(data);
}

fn check<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8]) {
    let Ok(rec) = codec::decode::<T>(data) else {
        return;
    };
    assert_eq!(data.first(), Some(&VERSION));
    let enc = codec::encode(&rec).expect("a decoded record encodes");
    assert!(enc.len() <= data.len());
    assert_eq!(codec::decode::<T>(&enc).expect("re-decode"), rec);
    let mut longer = enc.clone();
    longer.push(0);
    assert!(
        codec::decode::<T>(&longer).is_err(),
        "trailing byte accepted"
    );
    assert!(
        codec::decode::<T>(&enc[..enc.len() - 1]).is_err(),
        "truncated record accepted"
    );
}
