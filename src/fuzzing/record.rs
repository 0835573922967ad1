//! Target `record_decode`: the stored record codec.

use crate::store::codec::{self, AccountRecord, Record, SessionRecord};

/// Properties, for session and account records:
/// - decoding any bytes never panics; anything not starting with the
///   current version byte of the type, or an older version the type
///   upgrades, is refused;
/// - a decoded record encodes to bytes that decode to the same record, and
///   when the input was in the current format, that encoding is no longer
///   than the input (decoding may accept non-minimal integers, encoding
///   writes minimal ones);
/// - appending a byte to a valid encoding makes it invalid (no trailing
///   garbage), and so does cutting its last byte off.
pub fn record_decode(data: &[u8]) {
    check::<SessionRecord>(data);
    check::<AccountRecord>(data);
}

fn check<T: Record + PartialEq + std::fmt::Debug>(data: &[u8]) {
    let Ok(rec) = codec::decode::<T>(data) else {
        return;
    };
    let version = data.first().copied().unwrap_or(0);
    assert!(
        version >= 1 && version <= T::VERSION,
        "decoded version {version}"
    );
    let enc = codec::encode(&rec).expect("a decoded record encodes");
    assert_eq!(enc.first(), Some(&T::VERSION));
    if version == T::VERSION {
        assert!(enc.len() <= data.len());
    }
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
