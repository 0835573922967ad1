//! Secret tokens: session, CSRF and login tokens.
//!
//! Owns the one place where postern makes secrets: every token is 128 bits from
//! the operating system's CSPRNG, written as base64url without padding (22
//! characters). Tokens are stored only as their SHA-256 hash ([`TokenHash`]), and
//! hashes are compared in constant time.
//!
//! Never: implements `Display` or a revealing `Debug` for a token (logs must not
//! see them), or compares secrets with `==` on bytes.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Length of a token's text form: 16 bytes in base64url without padding.
pub const TOKEN_TEXT_LEN: usize = 22;

/// Marks a byte outside the base64url alphabet in [`BASE64URL_VALUE`].
const INVALID: u8 = 0xc0;

/// The value of each byte as a base64url digit, [`INVALID`] if it is none.
const BASE64URL_VALUE: [u8; 256] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < alphabet.len() {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// A 128-bit random secret. The same type serves session, CSRF and login tokens;
/// what a token is for is told by where it travels, never by its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Token([u8; 16]);

/// The token could not be made: the operating system's random source failed.
#[derive(Debug, thiserror::Error)]
#[error("operating system random source failed")]
pub struct RandomError;

impl Token {
    /// A new token from the OS CSPRNG.
    pub fn generate() -> Result<Token, RandomError> {
        let mut b = [0u8; 16];
        rand::rngs::OsRng
            .try_fill_bytes(&mut b)
            .map_err(|_| RandomError)?;
        Ok(Token(b))
    }

    /// Parses the text form; `None` unless it is exactly 22 base64url characters
    /// that decode to 16 bytes (a non-canonical last character is refused too).
    ///
    /// Decoded here rather than by the general base64 engine: every session
    /// check parses two tokens, and this fixed-size path takes half the work.
    /// The loop over the characters has no branch on their values. The
    /// `parse_matches_the_base64_engine` property test holds it to the
    /// engine's answers.
    pub fn parse(s: &str) -> Option<Token> {
        let s: &[u8; TOKEN_TEXT_LEN] = s.as_bytes().try_into().ok()?;
        let mut v = [0u8; TOKEN_TEXT_LEN];
        let mut seen = 0u8;
        for (d, c) in v.iter_mut().zip(s) {
            *d = BASE64URL_VALUE[usize::from(*c)];
            seen |= *d;
        }
        // Values are below 64; only INVALID has the high bits. The last
        // character carries 2 bits of the 16th byte and 4 that must be zero.
        if seen & INVALID != 0 || v[21] & 0x0f != 0 {
            return None;
        }
        let mut b = [0u8; 16];
        for (out, q) in b.chunks_exact_mut(3).zip(v.chunks_exact(4)) {
            let n = u32::from(q[0]) << 18
                | u32::from(q[1]) << 12
                | u32::from(q[2]) << 6
                | u32::from(q[3]);
            out.copy_from_slice(&n.to_be_bytes()[1..]);
        }
        b[15] = v[20] << 2 | v[21] >> 4;
        Some(Token(b))
    }

    /// The text form sent to the client. The only way a token's value leaves.
    pub fn expose(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The hash stored at rest and used as lookup key.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0).into())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

/// SHA-256 of a token. A database leak of hashes yields no live session: the
/// token is 128 random bits, so the hash cannot be inverted.
#[derive(Clone, Copy, Hash, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Constant-time equality, for comparing a presented secret with a stored one.
    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

/// Constant-time comparison of two texts of possibly different length (the
/// length itself is not secret: tokens have a fixed length).
pub fn ct_eq_str(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A random 64-bit identifier (session ids shown to users), not a secret.
pub fn random_id() -> Result<u64, RandomError> {
    rand::rngs::OsRng.try_next_u64().map_err(|_| RandomError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_length() {
        let t = Token::generate().expect("random");
        let s = t.expose();
        assert_eq!(s.len(), TOKEN_TEXT_LEN);
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(Token::parse(&s), Some(t.clone()));
        assert_eq!(t.hash(), Token::parse(&s).expect("parse").hash());
    }

    #[test]
    fn tokens_differ() {
        let a = Token::generate().expect("random");
        let b = Token::generate().expect("random");
        assert_ne!(a, b);
        assert!(!a.hash().ct_eq(&b.hash()));
        assert!(a.hash().ct_eq(&a.hash()));
    }

    #[test]
    fn parse_refuses_bad_text() {
        for s in [
            "",
            "short",
            "AAAAAAAAAAAAAAAAAAAAAAA", // 23
            "AAAAAAAAAAAAAAAAAAAA+A",  // standard alphabet
            "AAAAAAAAAAAAAAAAAAAA=A",  // padding
            "AAAAAAAAAAAAAAAAAAAAAB",  // non-canonical trailing bits
            "ééééééééééé",             // 22 bytes, not base64
        ] {
            assert!(Token::parse(s).is_none(), "{s:?}");
        }
        assert!(Token::parse("AAAAAAAAAAAAAAAAAAAAAA").is_some());
    }

    proptest::proptest! {
        /// Same answer as the general base64 engine (the previous parser) on
        /// any text, mostly 22 characters near the alphabet.
        #[test]
        fn parse_matches_the_base64_engine(
            s in "[A-Za-z0-9_=+/.-]{22}|[A-Za-z0-9_-]{21}[A-Za-z0-9_-é]|\\PC{0,30}"
        ) {
            let mut b = [0u8; 16];
            let engine = match URL_SAFE_NO_PAD.decode_slice(s.as_bytes(), &mut b) {
                Ok(16) if s.len() == TOKEN_TEXT_LEN => Some(Token(b)),
                _ => None,
            };
            proptest::prop_assert_eq!(Token::parse(&s), engine);
        }

        /// Every token's text form parses back to it.
        #[test]
        fn parse_inverts_expose(bytes in proptest::array::uniform16(0u8..)) {
            let t = Token(bytes);
            proptest::prop_assert_eq!(Token::parse(&t.expose()), Some(t));
        }
    }

    #[test]
    fn debug_redacts() {
        let t = Token::generate().expect("random");
        let d = format!("{:?} {:?}", t, t.hash());
        assert!(!d.contains(&t.expose()));
        assert_eq!(d, "Token(..) TokenHash(..)");
    }

    #[test]
    fn ct_eq_str_works() {
        assert!(ct_eq_str("abc", "abc"));
        assert!(!ct_eq_str("abc", "abd"));
        assert!(!ct_eq_str("abc", "abcd"));
    }
}
