//! Target `ratelimit_model`: the failed-auth [`Limiter`] against a naive model.
//!
//! Input: the configuration (one or two windows of 0..=20 s with per-class
//! limits 0..=7, `max_entries` 0..=40), then operations on addresses from a
//! small pool that shares /26, /21, /48 and /32 classes (IPv4, IPv4-mapped
//! IPv6 and IPv6): attempt, is_limited, reset, reset_prefix, list, advance
//! the clock. The model keeps each window's counts in a `BTreeMap` and the
//! eviction order in a plain `Vec`, and spells the rules out: fixed windows
//! restarted when their time is up, refuse when any class would go over its
//! limit, a success removes the client's own count and subtracts it from its
//! coarser classes, a new key beyond the cap evicts the oldest-inserted key.
//! Besides equal answers, the limiter never holds more than `max_entries`
//! keys, and its shared filter never says "no failures" for a client the
//! model holds a count for, and is empty once the limiter is dropped.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Input, MAX_OPS};
use crate::ratelimit::{FailureFilter, LimitedClient, Limiter, Limits, WindowLimit};

/// A class key in the model: (class, is IPv4, masked address bits).
type K = (u8, bool, u128);

const V4_LENS: [u32; 3] = [32, 26, 21];
const V6_LENS: [u32; 3] = [64, 48, 32];

fn key(ip: IpAddr, class: u8) -> K {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let len = V4_LENS[usize::from(class)];
            let mask = u32::MAX << (32 - len);
            (class, true, u128::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let len = V6_LENS[usize::from(class)];
            let mask = u128::MAX << (128 - len);
            (class, false, u128::from(v6) & mask)
        }
    }
}

fn show(k: &K) -> String {
    let (class, v4, bits) = *k;
    if v4 {
        let a = Ipv4Addr::from(u32::try_from(bits).unwrap_or(0));
        format!("{a}/{}", V4_LENS[usize::from(class)])
    } else {
        format!("{}/{}", Ipv6Addr::from(bits), V6_LENS[usize::from(class)])
    }
}

fn addr(b: u8, c: u8) -> IpAddr {
    match b % 3 {
        0 => IpAddr::V4(Ipv4Addr::new(192, 0, b >> 2 & 15, c % 130)),
        1 => IpAddr::V6(Ipv4Addr::new(192, 0, 2, c % 70).to_ipv6_mapped()),
        _ => {
            let bits = (0x2001_0db8u128 << 96)
                | (u128::from(b >> 2 & 3) << 80)
                | (u128::from(c % 20) << 64)
                | u128::from(c >> 5);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

struct W {
    window: Duration,
    limits: [u32; 3],
    start: Option<Instant>,
    counts: BTreeMap<K, u32>,
}

impl W {
    fn running(&self, now: Instant) -> Option<Duration> {
        let e = now.saturating_duration_since(self.start?);
        (e < self.window).then_some(e)
    }
}

struct Model {
    windows: Vec<W>,
    cap: usize,
    /// Live keys, oldest insertion first.
    order: Vec<(usize, K)>,
}

impl Model {
    fn total(&self) -> usize {
        self.windows.iter().map(|w| w.counts.len()).sum()
    }

    fn remove(&mut self, w: usize, k: &K) -> Option<u32> {
        let n = self.windows[w].counts.remove(k)?;
        self.order.retain(|o| o != &(w, *k));
        Some(n)
    }

    fn roll(&mut self, now: Instant) {
        for w in 0..self.windows.len() {
            if self.windows[w].running(now).is_none() {
                self.windows[w].start = Some(now);
                self.windows[w].counts.clear();
                self.order.retain(|o| o.0 != w);
            }
        }
    }

    fn is_limited(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let mut retry: Option<Duration> = None;
        for w in &self.windows {
            let running = w.running(now);
            let blocked = (0..3u8).any(|c| {
                let n = match running {
                    Some(_) => w.counts.get(&key(ip, c)).copied().unwrap_or(0),
                    None => 0,
                };
                u64::from(n) + 1 > u64::from(w.limits[usize::from(c)])
            });
            if blocked {
                let left = w.window.saturating_sub(running.unwrap_or(Duration::ZERO));
                retry = Some(retry.map_or(left, |r| r.max(left)));
            }
        }
        retry.map(|r| r.max(Duration::from_secs(1)))
    }

    fn attempt(&mut self, ip: IpAddr, now: Instant) -> Option<Duration> {
        self.roll(now);
        if let Some(r) = self.is_limited(ip, now) {
            return Some(r);
        }
        for w in 0..self.windows.len() {
            for c in 0..3u8 {
                let k = key(ip, c);
                if let Some(n) = self.windows[w].counts.get_mut(&k) {
                    *n = n.saturating_add(1);
                    continue;
                }
                self.windows[w].counts.insert(k, 1);
                self.order.push((w, k));
                while self.total() > self.cap && !self.order.is_empty() {
                    let (ow, ok) = self.order.remove(0);
                    self.windows[ow].counts.remove(&ok);
                }
            }
        }
        None
    }

    fn reset(&mut self, ip: IpAddr, now: Instant) {
        self.roll(now);
        for w in 0..self.windows.len() {
            let n = self.remove(w, &key(ip, 0)).unwrap_or(0);
            if n == 0 {
                continue;
            }
            for c in 1..3u8 {
                let k = key(ip, c);
                match self.windows[w].counts.get_mut(&k) {
                    Some(m) if *m > n => *m -= n,
                    Some(_) => {
                        self.remove(w, &k);
                    }
                    None => {}
                }
            }
        }
    }

    fn reset_prefix(&mut self, ip: IpAddr) {
        for w in 0..self.windows.len() {
            for c in 0..3u8 {
                self.remove(w, &key(ip, c));
            }
        }
    }

    fn list(&self, now: Instant) -> Vec<(String, Duration, u32, u32, Duration)> {
        let mut out = Vec::new();
        for w in &self.windows {
            let Some(run) = w.running(now) else { continue };
            for (k, n) in &w.counts {
                let limit = w.limits[usize::from(k.0)];
                if *n >= limit {
                    out.push((show(k), w.window, *n, limit, w.window - run));
                }
            }
        }
        out.sort();
        out
    }
}

fn tuple(c: &LimitedClient) -> (String, Duration, u32, u32, Duration) {
    (c.prefix.clone(), c.window, c.count, c.limit, c.clears_in)
}

/// See the module documentation.
pub fn ratelimit_model(data: &[u8]) {
    let mut input = Input::new(data);
    let nwin = 1 + usize::from(input.u8_or_zero() % 2);
    let mut windows = Vec::new();
    for _ in 0..nwin {
        let window = Duration::from_secs(u64::from(input.u8_or_zero() % 21));
        let mut limits = [0u32; 3];
        for l in &mut limits {
            *l = u32::from(input.u8_or_zero() % 8);
        }
        windows.push(WindowLimit { window, limits });
    }
    let cap = usize::from(input.u8_or_zero() % 41);
    let filter = Arc::new(FailureFilter::new());
    let mut limiter = Limiter::with_filter(
        Limits {
            windows: windows.clone(),
            max_entries: cap,
        },
        filter.clone(),
    );
    let mut model = Model {
        windows: windows
            .into_iter()
            .map(|w| W {
                window: w.window,
                limits: w.limits,
                start: None,
                counts: BTreeMap::new(),
            })
            .collect(),
        cap,
        order: Vec::new(),
    };
    let t0 = Instant::now();
    let mut now = t0;

    for _ in 0..MAX_OPS {
        let Some(op) = input.u8() else { break };
        let (b, c) = (input.u8_or_zero(), input.u8_or_zero());
        let ip = addr(b, c);
        match op % 8 {
            0..=2 => {
                let got = limiter.attempt(ip, now).err().map(|l| l.retry_after);
                assert_eq!(got, model.attempt(ip, now), "attempt");
            }
            3 => {
                let got = limiter.is_limited(ip, now).map(|l| l.retry_after);
                assert_eq!(got, model.is_limited(ip, now), "is_limited");
            }
            4 => {
                limiter.reset(ip, now);
                model.reset(ip, now);
            }
            5 => {
                limiter.reset_prefix(ip);
                model.reset_prefix(ip);
            }
            6 => {
                let mut got: Vec<_> = limiter.list(now).iter().map(tuple).collect();
                got.sort();
                assert_eq!(got, model.list(now), "list");
            }
            _ => now += Duration::from_millis(u64::from(b) * 50 + u64::from(c % 4)),
        }
        assert_eq!(limiter.entries(), model.total(), "entries");
        assert!(limiter.entries() <= cap, "cap");
        for w in &model.windows {
            for k in w.counts.keys().filter(|k| k.0 == 0) {
                let probe = if k.1 {
                    IpAddr::V4(Ipv4Addr::from(u32::try_from(k.2).unwrap_or(0)))
                } else {
                    IpAddr::V6(Ipv6Addr::from(k.2))
                };
                assert!(filter.may_have_failures(probe), "filter lost a client");
            }
        }
    }
    drop(limiter);
    assert_eq!(filter.occupied_slots(), 0, "filter not emptied");
}
