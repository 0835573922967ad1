//! Passwords: normalization, rules, and argon2id hashing.
//!
//! Owns how a password becomes a PHC string and how one is verified: PRECIS
//! OpaqueString (RFC 8265) on the way in, argon2id on the low-priority
//! blocking pool of [`crate::background`] behind a semaphore (so hashing never
//! occupies the async workers that answer session checks, and a burst of
//! logins queues instead of using every core), and a dummy verification for
//! unknown users so their answer takes as long as a known user's.
//!
//! Never: logs a password or a hash; runs argon2 on an async worker thread.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use precis_profiles::OpaqueString;
use precis_profiles::precis_core::profile::PrecisFastInvocation as _;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

/// Shortest password, in characters (not bytes).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password, in bytes: bounds the hashing work an attacker can ask for.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for HashCost {
    /// OWASP's argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        HashCost {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl HashCost {
    /// The cheapest valid cost, for tests.
    pub fn minimal() -> HashCost {
        HashCost {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        }
    }

    fn params(&self) -> Result<Params, PasswordError> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|_| PasswordError::BadCost)
    }
}

/// Why a password was refused or could not be processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    #[error("password must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// More than [`MAX_PASSWORD_BYTES`] bytes.
    #[error("password must be at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// PRECIS OpaqueString refuses it (e.g. control characters).
    #[error("password contains characters that are not allowed")]
    Precis,
    /// The configured cost is not valid for argon2.
    #[error("invalid password hash cost")]
    BadCost,
    /// Hashing failed or its task died.
    #[error("password hashing failed")]
    Hashing,
}

/// Applies PRECIS OpaqueString: maps non-ASCII spaces to ASCII space and
/// normalizes to NFC.
pub fn normalize(password: &str) -> Result<String, PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    OpaqueString::enforce(password)
        .map(|c| c.into_owned())
        .map_err(|_| PasswordError::Precis)
}

/// Normalizes a new password and checks the rules.
pub fn check_new(password: &str) -> Result<String, PasswordError> {
    let p = normalize(password)?;
    if p.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    Ok(p)
}

/// Hashes and verifies passwords on the background pool, a bounded number at once.
#[derive(Clone)]
pub struct Hasher {
    cost: HashCost,
    permits: Arc<Semaphore>,
    dummy: Arc<String>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

impl Hasher {
    /// A hasher with this cost, running at most `concurrency` hashes at once.
    pub fn new(cost: HashCost, concurrency: usize) -> Result<Hasher, PasswordError> {
        let dummy = hash_sync(cost, "postern dummy password for unknown users")?;
        Ok(Hasher {
            cost,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: Arc::new(dummy),
        })
    }

    /// The configured cost.
    pub fn cost(&self) -> HashCost {
        self.cost
    }

    /// Hashes an already normalized password into a PHC string.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Hashing)?;
        let cost = self.cost;
        crate::background::spawn(move || hash_sync(cost, &password))
            .await
            .map_err(|_| PasswordError::Hashing)?
    }

    /// Verifies a password as typed against a PHC string. `None` (unknown user,
    /// or no password set) verifies against a dummy hash and fails, taking the
    /// same time.
    pub async fn verify(&self, password: &str, phc: Option<String>) -> bool {
        let started = std::time::Instant::now();
        let ok = self.verify_inner(password, phc).await;
        crate::telemetry::password_verify(started.elapsed());
        ok
    }

    async fn verify_inner(&self, password: &str, phc: Option<String>) -> bool {
        let Ok(password) = normalize(password) else {
            return false;
        };
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let known = phc.as_ref().is_some_and(|p| !p.is_empty());
        let phc = if known {
            phc.unwrap_or_default()
        } else {
            (*self.dummy).clone()
        };
        let ok = crate::background::spawn(move || {
            PasswordHash::new(&phc)
                .map(|h| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &h)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        ok && known
    }
}

/// Hashes synchronously (CLI use and start-up).
pub fn hash_sync(cost: HashCost, password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| PasswordError::Hashing)?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| PasswordError::Hashing)?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, cost.params()?);
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hashing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(check_new("short"), Err(PasswordError::TooShort));
        // 8 characters, 16 bytes: long enough
        assert!(check_new("☺☺☺☺☺☺☺☺").is_ok());
        // 7 characters, 21 bytes: too short
        assert_eq!(check_new("☺☺☺☺☺☺☺"), Err(PasswordError::TooShort));
        assert_eq!(check_new("abc\u{7}defgh"), Err(PasswordError::Precis));
        assert_eq!(check_new(&"x".repeat(2000)), Err(PasswordError::TooLong));
        // non-ASCII space becomes ASCII space
        assert_eq!(normalize("a\u{3000}b").as_deref(), Ok("a b"));
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = Hasher::new(HashCost::minimal(), 2).expect("hasher");
        let phc = h
            .hash(check_new("e\u{301}tudiant!").expect("ok"))
            .await
            .expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(h.verify("e\u{301}tudiant!", Some(phc.clone())).await);
        assert!(
            h.verify("\u{e9}tudiant!", Some(phc.clone())).await,
            "NFC and NFD both work"
        );
        assert!(!h.verify("wrong password", Some(phc)).await);
        assert!(
            !h.verify("postern dummy password for unknown users", None)
                .await
        );
        assert!(!h.verify("anything", Some(String::new())).await);
    }
}
