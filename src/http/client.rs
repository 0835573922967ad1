//! Who the client of a request is: the TCP peer, or, on a forwarded listener,
//! what a trusted reverse proxy says (decided by the pure
//! [`crate::protocol::forwarded::resolve`]).
//!
//! Owns the listener's trusted-proxy list and the "every request comes from
//! one address" watch, which warns once in the log when a listener looks like
//! it sits behind a proxy it does not know about (all clients would then share
//! one rate-limit budget).
//!
//! Never: believes forwarding headers from a peer that is not a trusted proxy;
//! logs client addresses.

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use hyper::HeaderMap;

use crate::protocol::forwarded::{self, Cidr, Resolved};

/// Requests from one single address after which the listener warns.
pub const ONE_ADDRESS_WARN_AFTER: u64 = 200;

/// How a listener identifies clients.
#[derive(Debug, Default)]
pub struct ClientIdent {
    /// `Some` on a forwarded listener: the proxies whose headers are believed.
    trusted: Option<Vec<Cidr>>,
    watch: OneAddress,
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
            watch: OneAddress::default(),
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
                    .get_all("x-forwarded-for")
                    .iter()
                    .map(|v| v.as_bytes())
                    .collect();
                let proto: Vec<&[u8]> = headers
                    .get_all("x-forwarded-proto")
                    .iter()
                    .map(|v| v.as_bytes())
                    .collect();
                forwarded::resolve(peer, trusted, &xff, &proto, listener_https)
            }
        };
        if let Some(ip) = r.client_ip {
            if self.watch.observe(ip) {
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
}

/// Watches whether every request comes from the same address.
#[derive(Debug, Default)]
pub struct OneAddress {
    first: Mutex<Option<IpAddr>>,
    same: AtomicU64,
    differs: AtomicBool,
}

impl OneAddress {
    /// Records a request from `ip`; true exactly once, when
    /// [`ONE_ADDRESS_WARN_AFTER`] requests all came from one address.
    pub fn observe(&self, ip: IpAddr) -> bool {
        if self.differs.load(Ordering::Relaxed) {
            return false;
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
        self.same.fetch_add(1, Ordering::Relaxed) + 1 == ONE_ADDRESS_WARN_AFTER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_once_when_one_address() {
        let w = OneAddress::default();
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let warned: Vec<bool> = (0..ONE_ADDRESS_WARN_AFTER * 2)
            .map(|_| w.observe(ip))
            .collect();
        assert_eq!(warned.iter().filter(|w| **w).count(), 1);
        assert!(warned[usize::try_from(ONE_ADDRESS_WARN_AFTER - 1).expect("small")]);
    }

    #[test]
    fn no_warning_with_two_addresses() {
        let w = OneAddress::default();
        let a: IpAddr = "127.0.0.1".parse().expect("ip");
        let b: IpAddr = "127.0.0.2".parse().expect("ip");
        assert!(!w.observe(a));
        assert!(!w.observe(b));
        assert!((0..ONE_ADDRESS_WARN_AFTER * 2).all(|_| !w.observe(a)));
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
