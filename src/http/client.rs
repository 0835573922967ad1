//! Who the client of a request is: the TCP peer, or, on a forwarded listener,
//! what a trusted reverse proxy says (decided by the pure
//! [`crate::protocol::forwarded::resolve`]).
//!
//! Owns the listener's trusted-proxy list and the "every request comes from
//! one address" watch, which warns once in the log when a listener looks like
//! it sits behind a proxy it does not know about (all clients would then share
//! one rate-limit budget): on a forwarded listener when the first
//! [`ONE_ADDRESS_WARN_AFTER`] resolved clients are one address (a proxy hop
//! missing from `trusted_proxies`), on a plain one when they are one address
//! and requests carry `X-Forwarded-For` (a proxy in front, `forwarded` off).
//! One person using `localserve` sends no such header and gets no warning.
//!
//! Never: believes forwarding headers from a peer that is not a trusted proxy;
//! logs client addresses.

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use hyper::HeaderMap;
use hyper::header::HeaderName;

use crate::protocol::forwarded::{self, Cidr, Resolved};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Requests from one single address after which the listener warns.
pub const ONE_ADDRESS_WARN_AFTER: u64 = 200;

/// How a listener identifies clients.
#[derive(Debug, Default)]
pub struct ClientIdent {
    /// `Some` on a forwarded listener: the proxies whose headers are believed.
    trusted: Option<Vec<Cidr>>,
    watch: OneAddress,
    /// A request carried `X-Forwarded-For` (direct listeners).
    saw_forwarding_header: AtomicBool,
    /// The warning was logged.
    warned: AtomicBool,
}

impl ClientIdent {
    /// The peer is the client.
    pub fn direct() -> ClientIdent {
        ClientIdent::default()
    }

    /// Behind reverse proxies at `trusted`.
    pub fn forwarded(trusted: Vec<Cidr>) -> ClientIdent {
        ClientIdent {
            trusted: Some(trusted),
            ..ClientIdent::default()
        }
    }

    /// Whether the listener is in forwarded mode.
    pub fn is_forwarded(&self) -> bool {
        self.trusted.is_some()
    }

    /// Resolves a request's client IP and scheme, and feeds the watch.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap, listener_https: bool) -> Resolved {
        let r = match &self.trusted {
            None => Resolved {
                client_ip: Some(peer.to_canonical()),
                https: listener_https,
                via_proxy: false,
            },
            Some(trusted) => {
                let xff: Vec<&[u8]> = headers
                    .get_all(X_FORWARDED_FOR)
                    .iter()
                    .map(|v| v.as_bytes())
                    .collect();
                let proto: Vec<&[u8]> = headers
                    .get_all(X_FORWARDED_PROTO)
                    .iter()
                    .map(|v| v.as_bytes())
                    .collect();
                forwarded::resolve(peer, trusted, &xff, &proto, listener_https)
            }
        };
        // Once warned, the watch has nothing left to say: skip its look-ups.
        if let Some(ip) = r.client_ip.filter(|_| !self.warned.load(Ordering::Relaxed)) {
            if self.should_warn(ip, headers.contains_key(X_FORWARDED_FOR)) {
                if self.is_forwarded() {
                    tracing::warn!(
                        "every request so far seems to come from one address: is a proxy in front of postern missing from trusted_proxies? All clients share one rate-limit budget"
                    );
                } else {
                    tracing::warn!(
                        "every request so far comes from one address: if postern runs behind a reverse proxy, set forwarded = true and trusted_proxies on this listener (docs/operations.md)"
                    );
                }
            }
        }
        r
    }

    /// Feeds the watch; true once, when the warning is due.
    fn should_warn(&self, ip: IpAddr, has_forwarding_header: bool) -> bool {
        if has_forwarding_header {
            self.saw_forwarding_header.store(true, Ordering::Relaxed);
        }
        self.watch.observe(ip)
            && (self.is_forwarded() || self.saw_forwarding_header.load(Ordering::Relaxed))
            && !self.warned.swap(true, Ordering::Relaxed)
    }
}

/// Watches whether every request comes from the same address.
#[derive(Debug, Default)]
pub struct OneAddress {
    first: Mutex<Option<IpAddr>>,
    same: AtomicU64,
    differs: AtomicBool,
}

impl OneAddress {
    /// Records a request from `ip`; true from the
    /// [`ONE_ADDRESS_WARN_AFTER`]th request on, as long as all came from one
    /// address.
    pub fn observe(&self, ip: IpAddr) -> bool {
        if self.differs.load(Ordering::Relaxed) {
            return false;
        }
        // Decided after the first N requests: from then on no request takes
        // the lock (this runs on every request).
        if self.same.load(Ordering::Relaxed) >= ONE_ADDRESS_WARN_AFTER {
            return true;
        }
        let same = {
            let Ok(mut first) = self.first.lock() else {
                return false;
            };
            *first.get_or_insert(ip) == ip
        };
        if !same {
            self.differs.store(true, Ordering::Relaxed);
            return false;
        }
        self.same.fetch_add(1, Ordering::Relaxed) + 1 >= ONE_ADDRESS_WARN_AFTER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: usize = ONE_ADDRESS_WARN_AFTER as usize;

    #[test]
    fn forwarded_listener_warns_once_when_one_address() {
        let c = ClientIdent::forwarded(vec!["10.0.0.1".parse().expect("cidr")]);
        let ip: IpAddr = "198.51.100.1".parse().expect("ip");
        let warned: Vec<bool> = (0..N * 2).map(|_| c.should_warn(ip, true)).collect();
        assert_eq!(warned.iter().filter(|w| **w).count(), 1);
        assert!(warned[N - 1]);
    }

    #[test]
    fn no_warning_with_two_addresses() {
        let c = ClientIdent::forwarded(vec!["10.0.0.1".parse().expect("cidr")]);
        let a: IpAddr = "127.0.0.1".parse().expect("ip");
        let b: IpAddr = "127.0.0.2".parse().expect("ip");
        assert!(!c.should_warn(a, true));
        assert!(!c.should_warn(b, true));
        assert!((0..N * 2).all(|_| !c.should_warn(a, true)));
    }

    #[test]
    fn direct_listener_warns_only_when_a_proxy_header_shows_up() {
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        // localserve: one person, no proxy headers
        let c = ClientIdent::direct();
        assert!((0..N * 2).all(|_| !c.should_warn(ip, false)));
        // a proxy in front of a listener without forwarded mode
        let c = ClientIdent::direct();
        let warned: Vec<bool> = (0..N * 2).map(|_| c.should_warn(ip, true)).collect();
        assert_eq!(warned.iter().filter(|w| **w).count(), 1);
    }

    #[test]
    fn headers_ignored_unless_from_trusted_proxy() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "198.51.100.7".parse().expect("hv"));
        h.insert("x-forwarded-proto", "https".parse().expect("hv"));
        let c = ClientIdent::forwarded(vec!["127.0.0.1".parse().expect("cidr")]);
        let r = c.resolve("127.0.0.1".parse().expect("ip"), &h, false);
        assert_eq!(r.client_ip, Some("198.51.100.7".parse().expect("ip")));
        assert!(r.https);
        let r = c.resolve("127.0.0.2".parse().expect("ip"), &h, false);
        assert_eq!(r.client_ip, Some("127.0.0.2".parse().expect("ip")));
        assert!(!r.https);
        let d = ClientIdent::direct();
        let r = d.resolve("127.0.0.1".parse().expect("ip"), &h, false);
        assert_eq!(r.client_ip, Some("127.0.0.1".parse().expect("ip")));
        assert!(!r.https);
    }
}
