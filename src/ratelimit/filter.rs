//! The "may have failures" filter: a lock-free, fixed-size summary of which
//! clients currently have failed-auth counts, so that the hot path (a
//! successful session check) can skip the rate limiter actor entirely.
//!
//! Owns: an array of [`FailureFilter::SLOTS`] atomic counters, shared (`Arc`)
//! between every limiter shard and every [`RateLimiterHandle`] clone. Slot `i`
//! holds exactly the number of finest-class entries (IPv4 /32, IPv6 /64, one
//! per window) present in the limiters that hash to `i`. The limiters keep it
//! that way: [`Limiter`] adds a slot count when a finest-class key gets its
//! first count and removes it when that key goes (success reset, admin reset,
//! window rollover, eviction, or the limiter being dropped).
//!
//! So `may_have_failures(ip) == false` means "no shard holds a count for this
//! client's own address": a reset would change nothing and need not be sent.
//! A `true` may be a collision with another client; that only costs one
//! redundant message.
//!
//! Must never: block, allocate, or lock on the read path
//! ([`FailureFilter::may_have_failures`] is one relaxed atomic load); never
//! store addresses (only anonymous counters).
//!
//! Memory ordering: all operations are `Relaxed`. A check racing with a
//! concurrent failed attempt of the same client may miss it; that attempt and
//! the success were concurrent, so either order is a valid outcome.
//!
//! [`RateLimiterHandle`]: super::RateLimiterHandle
//! [`Limiter`]: super::Limiter

use std::fmt;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};

use super::limiter::Key;

/// Shared, lock-free summary of which finest-class keys have failure counts.
///
/// See the [module documentation](self) for the exact invariant.
pub struct FailureFilter {
    /// Per-slot count of present finest-class entries hashing to the slot.
    /// `AtomicU32` suffices: a slot never counts more entries than the
    /// limiters hold in total, which is bounded by their `max_entries` and far
    /// below `u32::MAX` for any memory this process could have.
    slots: Box<[AtomicU32]>,
    /// Keyed hash (random per filter), so clients cannot aim at a chosen
    /// slot from outside; a collision only costs a redundant reset message.
    /// foldhash, not SipHash: it runs on every successful request, and a
    /// slot is not a bucket an attacker could make long.
    hasher: foldhash::quality::RandomState,
}

impl FailureFilter {
    /// Number of counters in the filter (a power of two).
    pub const SLOTS: usize = 4096;

    /// An empty filter (every slot zero).
    pub fn new() -> Self {
        FailureFilter {
            slots: (0..Self::SLOTS).map(|_| AtomicU32::new(0)).collect(),
            hasher: foldhash::quality::RandomState::default(),
        }
    }

    /// Whether any limiter sharing this filter may hold a failure count for
    /// `ip`'s finest class (IPv4 /32 or IPv6 /64; IPv4-mapped IPv6 addresses
    /// count as IPv4). `false` is definite; `true` may be a hash collision.
    ///
    /// One relaxed atomic load: cheap enough for every successful request.
    pub fn may_have_failures(&self, ip: IpAddr) -> bool {
        self.slots
            .get(self.slot_of(&Key::finest(ip)))
            .is_some_and(|s| s.load(Ordering::Relaxed) != 0)
    }

    /// The slot a finest-class key maps to.
    pub(crate) fn slot_of(&self, key: &Key) -> usize {
        // SLOTS is a power of two, so masking is an unbiased modulo; the
        // masked value is < SLOTS and so fits any usize.
        (self.hasher.hash_one(key) & (Self::SLOTS as u64 - 1)) as usize
    }

    /// Record that a finest-class key became present.
    pub(crate) fn add(&self, key: &Key) {
        if let Some(slot) = self.slots.get(self.slot_of(key)) {
            // Checked: saturating at u32::MAX instead of wrapping to 0 (which
            // would hide failures). Unreachable in practice, see `slots`.
            let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_add(1));
        }
    }

    /// Record that a finest-class key was removed.
    pub(crate) fn remove(&self, key: &Key) {
        if let Some(slot) = self.slots.get(self.slot_of(key)) {
            // Checked: never wraps below zero even if a caller were unbalanced.
            let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
        }
    }

    /// Current value of slot `i` (0 for an index out of range).
    #[cfg(test)]
    pub(crate) fn slot_value(&self, i: usize) -> u32 {
        self.slots.get(i).map_or(0, |s| s.load(Ordering::Relaxed))
    }

    /// Number of nonzero slots (for Debug output and tests).
    pub fn occupied_slots(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.load(Ordering::Relaxed) != 0)
            .count()
    }
}

impl Default for FailureFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for FailureFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never dumps the 4096 counters (or the hash keys).
        f.debug_struct("FailureFilter")
            .field("slots", &Self::SLOTS)
            .field("occupied", &self.occupied_slots())
            .finish()
    }
}

#[cfg(test)]
// `allow`, not `expect`: the lint is silent once clippy.toml sets
// allow-unwrap-in-tests, and an unfulfilled `expect` would then warn.
#[allow(clippy::unwrap_used, reason = "a failing test should panic loudly")]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn add_remove_round_trip() {
        let f = FailureFilter::new();
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        assert!(!f.may_have_failures(ip));
        f.add(&Key::finest(ip));
        assert!(f.may_have_failures(ip));
        // Same /32 via its IPv4-mapped IPv6 form.
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        assert!(f.may_have_failures(mapped));
        f.remove(&Key::finest(ip));
        assert!(!f.may_have_failures(ip));
        // Removing again never wraps below zero.
        f.remove(&Key::finest(ip));
        assert_eq!(f.occupied_slots(), 0);
    }

    #[test]
    fn v6_finest_is_the_64() {
        let f = FailureFilter::new();
        let a: Ipv6Addr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        f.add(&Key::finest(IpAddr::V6(a)));
        assert!(f.may_have_failures(IpAddr::V6(b)));
        assert_eq!(f.occupied_slots(), 1);
        assert!(format!("{f:?}").contains("occupied: 1"));
    }
}
