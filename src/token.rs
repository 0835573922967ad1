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
    pub fn parse(s: &str) -> Option<Token> {
        if s.len() != TOKEN_TEXT_LEN {
            return None;
        }
        let mut b = [0u8; 16];
        match URL_SAFE_NO_PAD.decode_slice(s.as_bytes(), &mut b) {
            Ok(16) => Some(Token(b)),
            _ => None,
        }
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
