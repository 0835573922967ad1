//! The failed-auth rate limiter's rules, as pure state: fixed windows, subnet
//! classes, the memory cap. No tokio, no clock: every method that depends on
//! time takes `now` as an argument.
//!
//! Owns: per-window failure counts keyed by subnet class, the insertion order
//! used for eviction, and keeping the shared [`FailureFilter`] exactly in step
//! with its finest-class keys.
//!
//! Must never: read the clock, log or store full client addresses beyond the
//! masked class keys, panic on any input (any address, any `now`, any
//! [`Limits`]), or grow beyond [`Limits::max_entries`] keys.
//!
//! # Model
//!
//! Every client address belongs to three subnet classes at once:
//!
//! | class index | IPv4 | IPv6 |
//! |---|---|---|
//! | 0 (finest, "the client's own") | /32 | /64 |
//! | 1 | /26 | /48 |
//! | 2 (coarsest) | /21 | /32 |
//!
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are treated as the IPv4
//! address. Each configured [`WindowLimit`] is a *fixed* window in the style
//! of mox's `ratelimit.Limiter`: it has a start time, and once
//! `now - start >= window` all its counts are cleared and `start = now`.
//! The defaults are 1 minute with limits 10/30/90 and 24 hours with limits
//! 50/150/450 (class 0/1/2).
//!
//! [`Limiter::attempt`] counts one failed (or about-to-be-checked)
//! authentication for an address, in all three classes of every window, unless
//! counting it would take any (window, class) over its limit
//! (`count + 1 > limit`): then it is refused and *not* counted, so a blocked
//! client cannot push its own block further out.
//!
//! # Success resets the client's own count
//!
//! [`Limiter::reset`] (called after a successful sign-in or session check)
//! removes the finest-class count of the address (/32 or /64) in every window
//! **and subtracts that same amount from its /26 and /21 (or /48 and /32)
//! counts**. A user who mistyped a password three times and then got it right
//! thereby leaves nothing behind, not even against the neighbours sharing the
//! coarser classes. Failures of *other* addresses in those classes stay
//! counted. A coarser count that would reach zero (or below, if it had been
//! evicted and restarted in between) is removed.
//!
//! # Bounded memory
//!
//! The limiter never holds more than [`Limits::max_entries`] keys in total (a
//! key is one (window, class, masked address) count). When counting would
//! insert a new key beyond the cap, the oldest keys *by insertion order* are
//! evicted first; an evicted key simply forgets its count. Insertion order is
//! a `VecDeque` of (window, key, sequence number) with lazy deletion of keys
//! removed by other means, compacted whenever stale slots outnumber live keys,
//! so every operation is O(1) amortized. A flood of a million distinct IPv6
//! sources therefore cannot grow memory beyond the cap, and it is still
//! caught: all of a flood's /64s share their /48 and /32, which aggregate and
//! hit their limits (90 per minute for a whole /32) long before the cap
//! matters. The price of the cap is that an attacker able to create more than
//! `max_entries` keys can make the limiter forget older counts; the default
//! (100 000) needs that many distinct classes within a day.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::filter::FailureFilter;

/// Number of subnet classes per address.
pub const CLASSES: usize = 3;

/// Prefix lengths of the IPv4 classes, finest first.
pub const V4_PREFIX_LENS: [u8; CLASSES] = [32, 26, 21];

/// Prefix lengths of the IPv6 classes, finest first.
pub const V6_PREFIX_LENS: [u8; CLASSES] = [64, 48, 32];

/// Longest accepted window; longer configured windows are clamped to this so
/// `start + window` is always representable as an [`Instant`].
pub const MAX_WINDOW: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// Minimum `retry_after` reported in [`Limited`].
const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Compaction slack: the eviction queue is compacted when its stale slots
/// exceed the live keys plus this many.
const COMPACT_SLACK: usize = 64;

/// One fixed window and its per-class limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowLimit {
    /// Length of the fixed window (clamped to [`MAX_WINDOW`]).
    pub window: Duration,
    /// Maximum counted attempts per class within one window, indexed by
    /// class: finest (/32, /64) first, coarsest (/21, IPv6 /32) last.
    pub limits: [u32; CLASSES],
}

/// Rate limiter configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The fixed windows; an attempt must fit in all of them.
    pub windows: Vec<WindowLimit>,
    /// Maximum number of keys held in total (over all windows and classes);
    /// see the module documentation for the eviction policy. 0 keeps nothing
    /// (and thus limits nothing except limits of 0).
    pub max_entries: usize,
}

impl Default for Limits {
    /// 1 minute: 10/30/90; 24 hours: 50/150/450; at most 100 000 keys.
    fn default() -> Self {
        Limits {
            windows: vec![
                WindowLimit {
                    window: Duration::from_secs(60),
                    limits: [10, 30, 90],
                },
                WindowLimit {
                    window: Duration::from_secs(24 * 60 * 60),
                    limits: [50, 150, 450],
                },
            ],
            max_entries: 100_000,
        }
    }
}

/// An attempt was refused: too many failed authentications.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("too many authentication attempts, retry after {} s", .retry_after.as_secs())]
pub struct Limited {
    /// Time until every window that refuses this client has reset (the
    /// longest of them), at least one second.
    pub retry_after: Duration,
}

/// One (window, subnet class) count that currently refuses attempts, for the
/// admin view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitedClient {
    /// The subnet class, e.g. `192.0.2.0/26` or `2001:db8::/48`.
    pub prefix: String,
    /// Length of the window this count belongs to.
    pub window: Duration,
    /// Attempts counted in this window.
    pub count: u32,
    /// The class's limit in this window (`count >= limit`).
    pub limit: u32,
    /// When the window resets (the `now` passed to [`Limiter::list`] plus
    /// `clears_in`).
    pub clears_at: Instant,
    /// Time from the `now` passed to [`Limiter::list`] until the reset.
    pub clears_in: Duration,
}

/// A compact count key: the class index and the address masked to that
/// class's prefix. IPv4 addresses are stored in IPv4-mapped IPv6 form
/// (`::ffff:a.b.c.d`), which cannot collide with an IPv6 key: IPv6 keys are
/// masked to at most /64, so their bytes 10 and 11 are zero, never `0xff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key {
    /// Class index, 0 (finest) ..= 2 (coarsest).
    class: u8,
    /// Address masked to the class's prefix length.
    addr: [u8; 16],
}

impl Key {
    /// The key of `ip`'s class `class` (0..CLASSES; larger values are
    /// treated as the coarsest class).
    pub(crate) fn new(ip: IpAddr, class: usize) -> Key {
        let class = class.min(CLASSES - 1);
        let (addr, bits) = match canonical(ip) {
            IpAddr::V4(v4) => (
                v4.to_ipv6_mapped().octets(),
                96 + u32::from(V4_PREFIX_LENS[class]),
            ),
            IpAddr::V6(v6) => (v6.octets(), u32::from(V6_PREFIX_LENS[class])),
        };
        Key {
            // class < CLASSES = 3, fits a u8.
            class: class as u8,
            addr: mask(addr, bits),
        }
    }

    /// The client's own class: IPv4 /32 or IPv6 /64.
    pub(crate) fn finest(ip: IpAddr) -> Key {
        Key::new(ip, 0)
    }

    /// The coarsest class: IPv4 /21 or IPv6 /32 (used to pick a shard).
    pub(crate) fn coarsest(ip: IpAddr) -> Key {
        Key::new(ip, CLASSES - 1)
    }

    /// All classes of `ip`, finest first.
    fn all(ip: IpAddr) -> [Key; CLASSES] {
        [Key::new(ip, 0), Key::new(ip, 1), Key::new(ip, 2)]
    }

    /// Class index as a usize, for indexing limits.
    fn class(&self) -> usize {
        usize::from(self.class)
    }

    fn is_finest(&self) -> bool {
        self.class == 0
    }

    /// Whether the key holds an IPv4 class (stored IPv4-mapped).
    fn is_v4(&self) -> bool {
        self.addr[..10].iter().all(|b| *b == 0) && self.addr[10] == 0xff && self.addr[11] == 0xff
    }
}

impl fmt::Display for Key {
    /// CIDR notation of the class, e.g. `192.0.2.0/26` or `2001:db8::/48`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = self.class().min(CLASSES - 1);
        if self.is_v4() {
            let a = &self.addr;
            let v4 = Ipv4Addr::new(a[12], a[13], a[14], a[15]);
            write!(f, "{v4}/{}", V4_PREFIX_LENS[class])
        } else {
            write!(f, "{}/{}", Ipv6Addr::from(self.addr), V6_PREFIX_LENS[class])
        }
    }
}

impl Hash for Key {
    /// Hashes one `u64`: the two halves of the address xor-ed, and the
    /// class. Equal keys hash equally, as `Eq` requires. Nothing that
    /// matters is lost: IPv6 keys are masked to at most /64 (low half zero)
    /// and IPv4 keys live in the low half (high half zero), so at most a
    /// handful of keys (IPv4 vs IPv6, three classes) share an input; clients
    /// cannot build large collision sets, and the map's keyed SipHash does
    /// the rest. Hashing 8 bytes instead of 17 (plus a length prefix) makes
    /// the half-dozen lookups of every attempt cheaper.
    fn hash<H: Hasher>(&self, state: &mut H) {
        let bits = u128::from_be_bytes(self.addr);
        // Truncations are the point: fold the two 64-bit halves.
        let folded = (bits >> 64) as u64 ^ bits as u64 ^ u64::from(self.class);
        state.write_u64(folded);
    }
}

/// IPv4-mapped IPv6 addresses become IPv4; everything else is unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Keep the first `bits` bits of `addr` (all of them for `bits >= 128`),
/// zero the rest.
fn mask(addr: [u8; 16], bits: u32) -> [u8; 16] {
    let host = u128::MAX.checked_shr(bits).unwrap_or(0);
    (u128::from_be_bytes(addr) & !host).to_be_bytes()
}

/// A count and the sequence number of the insertion that created its key.
#[derive(Clone, Copy, Debug)]
struct Entry {
    count: u32,
    seq: u64,
}

/// State of one fixed window.
struct WindowState {
    window: Duration,
    limits: [u32; CLASSES],
    /// Start of the current window; `None` before first use.
    start: Option<Instant>,
    counts: HashMap<Key, Entry>,
}

impl WindowState {
    /// Time since the window started, if it is still running at `now`;
    /// `None` if it never started or has expired (its counts no longer
    /// apply, and it would restart at `now`).
    fn running_for(&self, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.start?);
        (elapsed < self.window).then_some(elapsed)
    }

    /// The count of `key` as it applies at `now` (0 once expired).
    fn count_at(&self, key: &Key, now: Instant) -> u32 {
        match self.running_for(now) {
            Some(_) => self.counts.get(key).map_or(0, |e| e.count),
            None => 0,
        }
    }

    /// Time from `now` until this window resets, counting an expired or
    /// unstarted window as starting at `now`.
    fn clears_in(&self, now: Instant) -> Duration {
        let elapsed = self.running_for(now).unwrap_or(Duration::ZERO);
        self.window.saturating_sub(elapsed)
    }
}

/// A slot in the eviction queue; stale once its key was removed (the
/// sequence number no longer matches the live entry).
#[derive(Clone, Copy, Debug)]
struct OrderSlot {
    window: usize,
    key: Key,
    seq: u64,
}

/// The failed-auth rate limiter (pure state; see the module documentation).
pub struct Limiter {
    windows: Vec<WindowState>,
    max_entries: usize,
    /// Keys held, over all windows.
    entries: usize,
    /// Insertion order for eviction, with lazily deleted stale slots.
    order: VecDeque<OrderSlot>,
    /// Next insertion sequence number (u64: never wraps in practice).
    next_seq: u64,
    /// Shared summary of our finest-class keys.
    filter: Arc<FailureFilter>,
}

impl Limiter {
    /// A limiter with its own, unshared [`FailureFilter`].
    pub fn new(limits: Limits) -> Self {
        Self::with_filter(limits, Arc::new(FailureFilter::new()))
    }

    /// A limiter that records its finest-class keys in `filter` (shared with
    /// other limiter shards and the handles).
    pub fn with_filter(limits: Limits, filter: Arc<FailureFilter>) -> Self {
        Limiter {
            windows: limits
                .windows
                .into_iter()
                .map(|w| WindowState {
                    window: w.window.min(MAX_WINDOW),
                    limits: w.limits,
                    start: None,
                    counts: HashMap::new(),
                })
                .collect(),
            max_entries: limits.max_entries,
            entries: 0,
            order: VecDeque::new(),
            next_seq: 0,
            filter,
        }
    }

    /// The filter this limiter keeps in step with its finest-class keys.
    pub fn filter(&self) -> &Arc<FailureFilter> {
        &self.filter
    }

    /// Count one failed (or attempted) authentication from `ip` at `now`.
    ///
    /// Refused, and not counted, when counting it would take any class over
    /// its limit in any window; the error says how long until every window
    /// that refuses has reset.
    pub fn attempt(&mut self, ip: IpAddr, now: Instant) -> Result<(), Limited> {
        self.roll(now);
        if let Some(limited) = self.is_limited(ip, now) {
            return Err(limited);
        }
        let keys = Key::all(ip);
        for w in 0..self.windows.len() {
            for key in keys {
                self.increment(w, key);
            }
        }
        self.maybe_compact();
        Ok(())
    }

    /// Whether an attempt from `ip` at `now` would be refused, without
    /// counting anything.
    pub fn is_limited(&self, ip: IpAddr, now: Instant) -> Option<Limited> {
        let keys = Key::all(ip);
        let mut retry_after: Option<Duration> = None;
        for ws in &self.windows {
            let blocked = keys
                .iter()
                .zip(ws.limits)
                .any(|(key, limit)| ws.count_at(key, now).saturating_add(1) > limit);
            if blocked {
                let left = ws.clears_in(now);
                retry_after = Some(retry_after.map_or(left, |r| r.max(left)));
            }
        }
        retry_after.map(|r| Limited {
            retry_after: r.max(MIN_RETRY_AFTER),
        })
    }

    /// A success from `ip` at `now`: forget the client's own (finest-class)
    /// count in every window and subtract it from the coarser classes'
    /// counts (see "Success resets the client's own count" in the module
    /// documentation).
    pub fn reset(&mut self, ip: IpAddr, now: Instant) {
        self.roll(now);
        let [finest, coarser @ ..] = Key::all(ip);
        for w in 0..self.windows.len() {
            let n = self.remove_entry(w, &finest).unwrap_or(0);
            if n > 0 {
                for key in &coarser {
                    self.subtract(w, key, n);
                }
            }
        }
        self.maybe_compact();
    }

    /// Admin: remove the counts of every class containing `ip` (its /32,
    /// /26 and /21, or /64, /48 and /32) in every window. Counts of other
    /// addresses' finer classes inside those prefixes are kept.
    pub fn reset_prefix(&mut self, ip: IpAddr) {
        for w in 0..self.windows.len() {
            for key in Key::all(ip) {
                self.remove_entry(w, &key);
            }
        }
        self.maybe_compact();
    }

    /// Number of keys held (over all windows and classes); never more than
    /// [`Limits::max_entries`].
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Every (class, window) count that refuses attempts at `now`, sorted by
    /// prefix then window length, for an admin view.
    pub fn list(&self, now: Instant) -> Vec<LimitedClient> {
        let mut out = Vec::new();
        for ws in &self.windows {
            if ws.running_for(now).is_none() {
                continue;
            }
            let clears_in = ws.clears_in(now);
            let clears_at = now.checked_add(clears_in).unwrap_or(now);
            for (key, entry) in &ws.counts {
                let limit = ws.limits[key.class().min(CLASSES - 1)];
                if entry.count >= limit {
                    out.push(LimitedClient {
                        prefix: key.to_string(),
                        window: ws.window,
                        count: entry.count,
                        limit,
                        clears_at,
                        clears_in,
                    });
                }
            }
        }
        sort_limited(&mut out);
        out
    }

    /// Clear every window whose time is up at `now` and start it at `now`.
    fn roll(&mut self, now: Instant) {
        for ws in &mut self.windows {
            if ws.running_for(now).is_some() {
                continue;
            }
            ws.start = Some(now);
            if ws.counts.is_empty() {
                continue;
            }
            let old = std::mem::take(&mut ws.counts);
            self.entries = self.entries.saturating_sub(old.len());
            for key in old.keys().filter(|k| k.is_finest()) {
                self.filter.remove(key);
            }
        }
        self.maybe_compact();
    }

    /// Add one to `key` in window `w`, inserting it when absent; an insert
    /// beyond the cap then evicts the oldest keys (never the new one, which
    /// is the newest, unless the cap is 0 and it is the only key).
    fn increment(&mut self, w: usize, key: Key) {
        let Some(ws) = self.windows.get_mut(w) else {
            return;
        };
        let seq = self.next_seq;
        match ws.counts.entry(key) {
            MapEntry::Occupied(mut e) => {
                let entry = e.get_mut();
                entry.count = entry.count.saturating_add(1);
                return;
            }
            MapEntry::Vacant(e) => {
                e.insert(Entry { count: 1, seq });
            }
        }
        self.next_seq = seq.wrapping_add(1);
        self.order.push_back(OrderSlot {
            window: w,
            key,
            seq,
        });
        self.entries += 1;
        if key.is_finest() {
            self.filter.add(&key);
        }
        while self.entries > self.max_entries {
            if !self.evict_oldest() {
                break;
            }
        }
    }

    /// Subtract `n` from `key` in window `w`, removing it when it reaches 0.
    fn subtract(&mut self, w: usize, key: &Key, n: u32) {
        let Some(entry) = self
            .windows
            .get_mut(w)
            .and_then(|ws| ws.counts.get_mut(key))
        else {
            return;
        };
        if entry.count > n {
            entry.count -= n;
        } else {
            self.remove_entry(w, key);
        }
    }

    /// Remove `key` from window `w`, returning its count if it was present.
    fn remove_entry(&mut self, w: usize, key: &Key) -> Option<u32> {
        let entry = self.windows.get_mut(w)?.counts.remove(key)?;
        self.entries = self.entries.saturating_sub(1);
        if key.is_finest() {
            self.filter.remove(key);
        }
        Some(entry.count)
    }

    /// Whether an eviction-queue slot still refers to a live key.
    fn is_live(&self, slot: &OrderSlot) -> bool {
        self.windows
            .get(slot.window)
            .and_then(|ws| ws.counts.get(&slot.key))
            .is_some_and(|e| e.seq == slot.seq)
    }

    /// Evict the oldest live key; `false` if there is none.
    fn evict_oldest(&mut self) -> bool {
        while let Some(slot) = self.order.pop_front() {
            let Some(ws) = self.windows.get_mut(slot.window) else {
                continue;
            };
            // One lookup: remove only if this slot is the key's live one.
            // (No let-chains: the crate's rust-version is 1.85.)
            if let MapEntry::Occupied(e) = ws.counts.entry(slot.key) {
                if e.get().seq == slot.seq {
                    e.remove();
                    self.entries = self.entries.saturating_sub(1);
                    if slot.key.is_finest() {
                        self.filter.remove(&slot.key);
                    }
                    return true;
                }
            }
        }
        false
    }

    /// Drop stale eviction-queue slots once they outnumber the live keys
    /// (plus slack): each stale slot is dropped once, so O(1) amortized.
    fn maybe_compact(&mut self) {
        let stale = self.order.len().saturating_sub(self.entries);
        if stale <= self.entries.saturating_add(COMPACT_SLACK) {
            return;
        }
        let mut order = std::mem::take(&mut self.order);
        order.retain(|slot| self.is_live(slot));
        self.order = order;
    }
}

impl fmt::Debug for Limiter {
    /// Sizes only: never dumps the (masked) client prefixes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("windows", &self.windows.len())
            .field("entries", &self.entries)
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

impl Drop for Limiter {
    /// Take our finest-class keys out of the shared filter, so that a
    /// stopped (or restarted) shard leaves no stale slots behind.
    fn drop(&mut self) {
        for ws in &self.windows {
            for key in ws.counts.keys().filter(|k| k.is_finest()) {
                self.filter.remove(key);
            }
        }
    }
}

/// The order [`Limiter::list`] returns (and shard merges keep): by prefix,
/// then window length.
pub(crate) fn sort_limited(list: &mut [LimitedClient]) {
    list.sort_by(|a, b| a.prefix.cmp(&b.prefix).then(a.window.cmp(&b.window)));
}

#[cfg(test)]
// `allow`, not `expect`: the lint is silent once clippy.toml sets
// allow-unwrap-in-tests, and an unfulfilled `expect` would then warn.
#[allow(clippy::unwrap_used, reason = "a failing test should panic loudly")]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);
    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse().unwrap())
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Only the one-minute window, so tests of class limits stay small.
    fn minute_only() -> Limits {
        Limits {
            windows: vec![WindowLimit {
                window: MIN,
                limits: [10, 30, 90],
            }],
            max_entries: 100_000,
        }
    }

    #[test]
    fn default_limits_match_design() {
        let l = Limits::default();
        assert_eq!(l.max_entries, 100_000);
        assert_eq!(
            l.windows,
            vec![
                WindowLimit {
                    window: MIN,
                    limits: [10, 30, 90]
                },
                WindowLimit {
                    window: DAY,
                    limits: [50, 150, 450]
                },
            ]
        );
    }

    #[test]
    fn keys_and_prefix_strings() {
        assert_eq!(Key::new(v4(192, 0, 2, 77), 0).to_string(), "192.0.2.77/32");
        assert_eq!(Key::new(v4(192, 0, 2, 77), 1).to_string(), "192.0.2.64/26");
        assert_eq!(Key::new(v4(192, 0, 2, 77), 2).to_string(), "192.0.0.0/21");
        let ip = v6("2001:db8:aaaa:bbbb:1:2:3:4");
        assert_eq!(Key::new(ip, 0).to_string(), "2001:db8:aaaa:bbbb::/64");
        assert_eq!(Key::new(ip, 1).to_string(), "2001:db8:aaaa::/48");
        assert_eq!(Key::new(ip, 2).to_string(), "2001:db8::/32");
        // Out-of-range class is clamped, never panics.
        assert_eq!(Key::new(ip, 99), Key::coarsest(ip));
        // IPv6 ::/32 is not confused with any IPv4 class.
        assert_eq!(Key::new(v6("::1"), 2).to_string(), "::/32");
        assert_ne!(Key::new(v6("::"), 2), Key::new(v4(0, 0, 0, 0), 2));
        // Mapped form is IPv4.
        assert_eq!(
            Key::new(v6("::ffff:192.0.2.77"), 1),
            Key::new(v4(192, 0, 2, 77), 1)
        );
    }

    #[test]
    fn mask_bits() {
        let all = [0xffu8; 16];
        assert_eq!(mask(all, 0), [0; 16]);
        assert_eq!(mask(all, 128), all);
        let m = mask(all, 117);
        assert_eq!(&m[..14], &[0xff; 14]);
        assert_eq!(m[14], 0xf8);
        assert_eq!(m[15], 0);
        // More than 128 bits keeps everything.
        assert_eq!(mask(all, 500), all);
    }

    #[test]
    fn ten_failures_from_one_address_then_refused() {
        let t0 = Instant::now();
        let mut l = Limiter::new(minute_only());
        let ip = v4(192, 0, 2, 1);
        for i in 0..10 {
            assert_eq!(l.attempt(ip, t0 + secs(i)), Ok(()), "attempt {i}");
        }
        let err = l.attempt(ip, t0 + secs(10)).unwrap_err();
        assert_eq!(err.retry_after, secs(50));
        assert_eq!(l.is_limited(ip, t0 + secs(10)), Some(err));
        // Refused attempts are not counted: still 10.
        assert_eq!(l.windows[0].counts[&Key::finest(ip)].count, 10);
        // A neighbour in the same /26 is still allowed.
        assert_eq!(l.attempt(v4(192, 0, 2, 2), t0 + secs(10)), Ok(()));
    }

    #[test]
    fn thirty_from_distinct_addresses_in_one_26() {
        let t0 = Instant::now();
        let mut l = Limiter::new(minute_only());
        // 192.0.2.0/26 holds .0 .. .63; spread 30 attempts over 10 addresses.
        for i in 0..30u8 {
            assert_eq!(l.attempt(v4(192, 0, 2, i % 10), t0), Ok(()), "attempt {i}");
        }
        // Any address in the /26, even a fresh one, is now refused...
        assert!(l.attempt(v4(192, 0, 2, 63), t0).is_err());
        // ...but the next /26 within the same /21 is not.
        assert_eq!(l.attempt(v4(192, 0, 2, 64), t0), Ok(()));
        let listed = l.list(t0);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].prefix, "192.0.2.0/26");
        assert_eq!((listed[0].count, listed[0].limit), (30, 30));
        assert_eq!(listed[0].clears_in, MIN);
        assert_eq!(listed[0].clears_at, t0 + MIN);
    }

    #[test]
    fn ninety_in_one_21() {
        let t0 = Instant::now();
        let mut l = Limiter::new(minute_only());
        // 192.0.0.0/21 = 192.0.0.0 .. 192.0.7.255: 9 /26s x 10 each.
        for n in 0..90u32 {
            let sub = (n / 10) as u8; // which /26
            let ip = v4(192, 0, sub / 4, (sub % 4) * 64 + (n % 10) as u8);
            assert_eq!(l.attempt(ip, t0), Ok(()), "attempt {n}");
        }
        assert!(l.attempt(v4(192, 0, 7, 200), t0).is_err());
        assert_eq!(l.attempt(v4(192, 0, 8, 1), t0), Ok(()));
        let listed = l.list(t0);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].prefix, "192.0.0.0/21");
    }

    #[test]
    fn ipv6_classes() {
        let t0 = Instant::now();
        let mut l = Limiter::new(minute_only());
        // Different addresses in one /64 share the finest class.
        for i in 0..10 {
            let ip = v6(&format!("2001:db8:0:1::{i:x}"));
            assert_eq!(l.attempt(ip, t0), Ok(()));
        }
        assert!(l.attempt(v6("2001:db8:0:1:ffff::1"), t0).is_err());
        // 20 more from two other /64s in the same /48 reach 30 in the /48.
        for i in 0..20 {
            let ip = v6(&format!("2001:db8:0:{:x}::1", 2 + i / 10));
            assert_eq!(l.attempt(ip, t0), Ok(()));
        }
        assert!(l.attempt(v6("2001:db8:0:99::1"), t0).is_err());
        assert_eq!(l.attempt(v6("2001:db8:1::1"), t0), Ok(()));
        let prefixes: Vec<String> = l.list(t0).into_iter().map(|c| c.prefix).collect();
        // Sorted as strings (":" sorts after "0"); each /64 reached its 10.
        assert_eq!(
            prefixes,
            [
                "2001:db8:0:1::/64",
                "2001:db8:0:2::/64",
                "2001:db8:0:3::/64",
                "2001:db8::/48"
            ]
        );
    }

    #[test]
    fn ipv4_mapped_ipv6_is_ipv4() {
        let t0 = Instant::now();
        let mut l = Limiter::new(minute_only());
        for _ in 0..5 {
            l.attempt(v4(198, 51, 100, 9), t0).unwrap();
            l.attempt(v6("::ffff:198.51.100.9"), t0).unwrap();
        }
        assert!(l.attempt(v4(198, 51, 100, 9), t0).is_err());
        assert!(l.is_limited(v6("::ffff:198.51.100.9"), t0).is_some());
        assert_eq!(l.list(t0)[0].prefix, "198.51.100.9/32");
        l.reset(v6("::ffff:198.51.100.9"), t0);
        assert_eq!(l.entries(), 0);
        assert!(l.is_limited(v4(198, 51, 100, 9), t0).is_none());
    }

    #[test]
    fn minute_window_resets() {
        let t0 = Instant::now();
        let mut l = Limiter::new(minute_only());
        let ip = v4(203, 0, 113, 5);
        for _ in 0..10 {
            l.attempt(ip, t0 + secs(30)).unwrap();
        }
        // The window started at the first attempt (t0 + 30 s).
        assert_eq!(
            l.attempt(ip, t0 + secs(89)).unwrap_err().retry_after,
            secs(1)
        );
        assert_eq!(l.is_limited(ip, t0 + secs(90)), None);
        assert!(l.list(t0 + secs(90)).is_empty());
        assert_eq!(l.attempt(ip, t0 + secs(90)), Ok(()));
        assert_eq!(l.entries(), 3);
        // Time going backwards never panics and never rolls a window.
        assert_eq!(l.attempt(ip, t0), Ok(()));
    }

    #[test]
    fn day_window_limits_across_minutes() {
        let t0 = Instant::now();
        let mut l = Limiter::new(Limits::default());
        let ip = v4(203, 0, 113, 5);
        // 10 per minute for five minutes: 50 in the day window.
        for m in 0..5u64 {
            for s in 0..10u64 {
                assert_eq!(l.attempt(ip, t0 + secs(m * 60 + s)), Ok(()));
            }
        }
        // Minute 5: the minute window is fresh but the day is full.
        let now = t0 + secs(5 * 60);
        let err = l.attempt(ip, now).unwrap_err();
        assert_eq!(err.retry_after, DAY - secs(5 * 60));
        // After the day: allowed again.
        assert_eq!(l.attempt(ip, t0 + DAY), Ok(()));
    }

    #[test]
    fn retry_after_is_max_of_blocking_windows_and_at_least_one_second() {
        let t0 = Instant::now();
        let limits = Limits {
            windows: vec![
                WindowLimit {
                    window: secs(10),
                    limits: [1, 100, 100],
                },
                WindowLimit {
                    window: secs(100),
                    limits: [1, 100, 100],
                },
                WindowLimit {
                    window: secs(1000),
                    limits: [100, 100, 100],
                },
            ],
            max_entries: 100,
        };
        let mut l = Limiter::new(limits);
        let ip = v4(10, 0, 0, 1);
        l.attempt(ip, t0).unwrap();
        // Windows 0 and 1 block; 2 does not: max(10, 100) - 3.
        assert_eq!(
            l.attempt(ip, t0 + secs(3)).unwrap_err().retry_after,
            secs(97)
        );
        // After window 0 rolled, only window 1 blocks.
        assert_eq!(
            l.attempt(ip, t0 + secs(50)).unwrap_err().retry_after,
            secs(50)
        );
        // Sub-second remainders report one second.
        let almost = t0 + Duration::from_millis(99_900);
        assert_eq!(l.is_limited(ip, almost).unwrap().retry_after, secs(1));
    }

    #[test]
    fn zero_limits_and_zero_windows_do_not_panic() {
        let t0 = Instant::now();
        let limits = Limits {
            windows: vec![
                WindowLimit {
                    window: Duration::ZERO,
                    limits: [1, 1, 1],
                },
                WindowLimit {
                    window: Duration::MAX,
                    limits: [u32::MAX, u32::MAX, u32::MAX],
                },
            ],
            max_entries: 100,
        };
        let mut l = Limiter::new(limits);
        let ip = v4(10, 0, 0, 1);
        // A zero window restarts on every call, so its limit of 1 never bites.
        for _ in 0..5 {
            assert_eq!(l.attempt(ip, t0), Ok(()));
        }
        assert_eq!(l.list(t0).len(), 0);
        let mut none = Limiter::new(Limits {
            windows: vec![WindowLimit {
                window: MIN,
                limits: [0, 5, 5],
            }],
            max_entries: 100,
        });
        assert_eq!(none.attempt(ip, t0).unwrap_err().retry_after, MIN);
        assert_eq!(none.entries(), 0);
        // No windows at all: nothing is limited.
        let mut empty = Limiter::new(Limits {
            windows: vec![],
            max_entries: 100,
        });
        assert_eq!(empty.attempt(ip, t0), Ok(()));
    }

    #[test]
    fn reset_removes_own_count_and_subtracts_from_coarser_classes() {
        let t0 = Instant::now();
        let mut l = Limiter::new(minute_only());
        let me = v4(192, 0, 2, 1);
        let neighbour = v4(192, 0, 2, 2);
        for _ in 0..7 {
            l.attempt(me, t0).unwrap();
        }
        for _ in 0..4 {
            l.attempt(neighbour, t0).unwrap();
        }
        let count = |l: &Limiter, ip, class| {
            l.windows[0]
                .counts
                .get(&Key::new(ip, class))
                .map_or(0, |e| e.count)
        };
        assert_eq!(
            (count(&l, me, 0), count(&l, me, 1), count(&l, me, 2)),
            (7, 11, 11)
        );
        l.reset(me, t0 + secs(1));
        assert_eq!(
            (count(&l, me, 0), count(&l, me, 1), count(&l, me, 2)),
            (0, 4, 4)
        );
        assert_eq!(count(&l, neighbour, 0), 4);
        assert_eq!(l.entries(), 3);
        // Resetting the neighbour now empties everything (zero entries removed).
        l.reset(neighbour, t0 + secs(2));
        assert_eq!(l.entries(), 0);
        // Reset of an unknown client is a no-op.
        l.reset(v6("2001:db8::1"), t0 + secs(3));
        assert_eq!(l.entries(), 0);
    }

    #[test]
    fn reset_after_coarse_key_was_evicted_does_not_underflow() {
        let t0 = Instant::now();
        let mut l = Limiter::new(minute_only());
        let me = v4(192, 0, 2, 1);
        for _ in 0..3 {
            l.attempt(me, t0).unwrap();
        }
        // Simulate an eviction of the /26 key followed by one new failure.
        l.remove_entry(0, &Key::new(me, 1));
        l.attempt(me, t0).unwrap();
        assert_eq!(l.windows[0].counts[&Key::new(me, 1)].count, 1);
        l.reset(me, t0);
        assert_eq!(l.entries(), 0);
    }

    #[test]
    fn reset_prefix_clears_every_class_of_the_address() {
        let t0 = Instant::now();
        let mut l = Limiter::new(Limits::default());
        for i in 0..30u8 {
            l.attempt(v4(192, 0, 2, i), t0).unwrap();
        }
        assert!(l.is_limited(v4(192, 0, 2, 40), t0).is_some());
        assert_eq!(l.list(t0).len(), 1);
        l.reset_prefix(v4(192, 0, 2, 40));
        assert!(l.is_limited(v4(192, 0, 2, 40), t0).is_none());
        assert!(l.list(t0).is_empty());
        // Other addresses' own counts remain (30 /32s x 2 windows).
        assert_eq!(l.entries(), 60);
    }

    #[test]
    fn cap_holds_under_a_million_distinct_ipv6_sources() {
        let t0 = Instant::now();
        let cap = 1000;
        // One window keeps this million-attempt test quick in debug builds;
        // the cap counts keys over all windows alike (see
        // `filter_stays_exactly_consistent_under_random_operations` for two).
        let mut l = Limiter::new(Limits {
            max_entries: cap,
            ..minute_only()
        });
        let mut refused = 0u32;
        for i in 0..1_000_000u64 {
            // Spread over many /32s, /48s and /64s.
            let hi = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let ip = IpAddr::V6(Ipv6Addr::from((u128::from(hi) << 64) | 1));
            if l.attempt(ip, t0 + Duration::from_micros(i)).is_err() {
                refused += 1;
            }
            assert!(l.entries() <= cap);
            assert!(l.order.len() <= 2 * cap + COMPACT_SLACK + 6);
        }
        assert_eq!(l.entries(), cap);
        // Distinct /32s each get their own 90: nothing is refused here.
        assert_eq!(refused, 0);
        assert!(l.filter().occupied_slots() > 0);
    }

    #[test]
    fn flood_from_one_ipv6_32_is_caught_by_the_coarse_class() {
        let t0 = Instant::now();
        let mut l = Limiter::new(Limits {
            max_entries: 1000,
            ..Limits::default()
        });
        let mut accepted = 0;
        for i in 0..100_000u32 {
            // Distinct /64s (and many /48s), all inside 2001:db8::/32.
            let bits = (0x2001_0db8u128 << 96) | (u128::from(i.wrapping_mul(0x9e37_79b9)) << 64);
            if l.attempt(IpAddr::V6(Ipv6Addr::from(bits)), t0).is_ok() {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 90);
        assert!(l.entries() <= 1000);
        assert!(l.is_limited(v6("2001:db8:ffff::1"), t0).is_some());
    }

    #[test]
    fn eviction_is_in_insertion_order_and_cap_zero_keeps_nothing() {
        let t0 = Instant::now();
        let mut l = Limiter::new(Limits {
            max_entries: 3,
            ..minute_only()
        });
        let a = v4(10, 0, 0, 1);
        let b = v4(10, 9, 0, 1); // different /21
        l.attempt(a, t0).unwrap();
        l.attempt(a, t0).unwrap();
        l.attempt(b, t0).unwrap();
        // a's three keys were inserted first and are gone.
        assert_eq!(l.entries(), 3);
        assert!(!l.windows[0].counts.contains_key(&Key::finest(a)));
        assert!(!l.filter().may_have_failures(a));
        assert!(l.filter().may_have_failures(b));

        let mut zero = Limiter::new(Limits {
            max_entries: 0,
            ..Limits::default()
        });
        for _ in 0..100 {
            assert_eq!(zero.attempt(a, t0), Ok(()));
        }
        assert_eq!(zero.entries(), 0);
        assert!(!zero.filter().may_have_failures(a));
    }

    /// xorshift64*: deterministic pseudo-random numbers without extra crates.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// A small address pool with much sharing of /26, /21, /48 and /32.
    fn pool_ip(rng: &mut Rng) -> IpAddr {
        match rng.below(3) {
            0 => v4(192, 0, rng.below(9) as u8, rng.below(130) as u8),
            1 => IpAddr::V6(Ipv4Addr::new(192, 0, 2, rng.below(70) as u8).to_ipv6_mapped()),
            _ => {
                let s = format!(
                    "2001:db8:{:x}:{:x}::{:x}",
                    rng.below(3),
                    rng.below(20),
                    rng.below(4)
                );
                v6(&s)
            }
        }
    }

    /// Every invariant the limiter promises, checked from its internals.
    fn check_invariants(l: &Limiter) {
        let mut expected = vec![0u32; FailureFilter::SLOTS];
        let mut total = 0;
        for ws in &l.windows {
            total += ws.counts.len();
            for (key, entry) in &ws.counts {
                assert!(entry.count > 0, "zero count kept for {key}");
                if key.is_finest() {
                    expected[l.filter.slot_of(key)] += 1;
                }
            }
        }
        assert_eq!(total, l.entries, "entries counter");
        assert!(l.entries <= l.max_entries, "cap");
        for (i, want) in expected.iter().enumerate() {
            assert_eq!(l.filter.slot_value(i), *want, "filter slot {i}");
            // The property as stated: nonzero iff some present finest key
            // hashes to the slot.
            assert_eq!(l.filter.slot_value(i) != 0, *want != 0);
        }
        // Every live key has exactly one live queue slot.
        let live = l.order.iter().filter(|s| l.is_live(s)).count();
        assert_eq!(live, l.entries, "one live queue slot per key");
        assert!(l.order.len() <= 2 * l.entries + COMPACT_SLACK + 6 * 2);
    }

    #[test]
    fn filter_stays_exactly_consistent_under_random_operations() {
        for (seed, cap) in [(1u64, 40usize), (7, 200), (42, 100_000), (99, 7)] {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let filter = Arc::new(FailureFilter::new());
            let limits = Limits {
                windows: vec![
                    WindowLimit {
                        window: secs(10),
                        limits: [3, 8, 20],
                    },
                    WindowLimit {
                        window: secs(95),
                        limits: [6, 15, 40],
                    },
                ],
                max_entries: cap,
            };
            let mut l = Limiter::with_filter(limits, filter.clone());
            let t0 = Instant::now();
            let mut now = t0;
            for _ in 0..2000 {
                now += Duration::from_millis(rng.below(1500));
                let ip = pool_ip(&mut rng);
                match rng.below(10) {
                    0..=5 => {
                        let predicted = l.is_limited(ip, now);
                        let got = l.attempt(ip, now);
                        assert_eq!(got.err(), predicted, "is_limited predicts attempt");
                    }
                    6 | 7 => l.reset(ip, now),
                    8 => l.reset_prefix(ip),
                    _ => {
                        for c in l.list(now) {
                            assert!(c.count >= c.limit);
                            assert!(c.clears_in <= c.window);
                        }
                    }
                }
                check_invariants(&l);
            }
            // Dropping the limiter leaves the shared filter empty.
            drop(l);
            assert_eq!(filter.occupied_slots(), 0, "seed {seed}");
        }
    }

    #[test]
    fn debug_output_shows_no_prefixes() {
        let mut l = Limiter::new(Limits::default());
        l.attempt(v4(192, 0, 2, 1), Instant::now()).unwrap();
        let dbg = format!("{l:?}");
        assert!(dbg.contains("entries: 6"), "{dbg}");
        assert!(!dbg.contains("192"), "{dbg}");
    }

    #[test]
    fn shared_filter_counts_sum_over_limiters() {
        let t0 = Instant::now();
        let filter = Arc::new(FailureFilter::new());
        let mut a = Limiter::with_filter(Limits::default(), filter.clone());
        let mut b = Limiter::with_filter(Limits::default(), filter.clone());
        let ip = v4(192, 0, 2, 1);
        a.attempt(ip, t0).unwrap();
        b.attempt(ip, t0).unwrap();
        a.reset(ip, t0);
        assert!(filter.may_have_failures(ip));
        b.reset(ip, t0);
        assert!(!filter.may_have_failures(ip));
    }
}
