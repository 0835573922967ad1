//! Who the client is behind a reverse proxy: trusted-proxy CIDRs and the
//! `X-Forwarded-For` / `X-Forwarded-Proto` headers.
//!
//! Owns [`Cidr`] (an address or network, as written in the configuration) and
//! [`resolve`], the pure decision of a forwarded listener: when the TCP peer is
//! a trusted proxy, the client is the **right-most** `X-Forwarded-For` entry
//! that is not itself a trusted proxy (proxies append, so everything left of
//! the last untrusted entry was written by the client and may be forged; the
//! seeds take the left-most entry, a rate-limit bypass), and HTTPS is what
//! `X-Forwarded-Proto` says. From a peer that is not a trusted proxy both
//! headers are ignored: the peer is the client.
//!
//! Never: panics or allocates per entry on any header bytes; examines more than
//! [`MAX_ENTRIES`] entries (a longer chain gives no client IP).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Most `X-Forwarded-For` entries looked at, counted from the right.
pub const MAX_ENTRIES: usize = 32;

/// An IP network: an address and a prefix length (`10.0.0.0/8`,
/// `2001:db8::/32`); a bare address is a /32 or /128. IPv4-mapped IPv6
/// addresses are matched as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a CIDR text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or CIDR network (e.g. 10.0.0.0/8)")]
pub struct CidrError(pub String);

impl Cidr {
    /// A network; the prefix is clamped to the address family's length.
    pub fn new(addr: IpAddr, prefix: u8) -> Cidr {
        let canonical = addr.to_canonical();
        let prefix = if canonical.is_ipv4() && addr.is_ipv6() {
            prefix.saturating_sub(96)
        } else {
            prefix
        };
        let addr = canonical;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        Cidr {
            addr,
            prefix: prefix.min(max),
        }
    }

    /// Whether `ip` is inside the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let bad = || CidrError(s.to_string());
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().map_err(|_| bad())?;
        let max = if addr.to_canonical().is_ipv4() {
            32
        } else {
            128
        };
        let prefix = match p {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(bad)?,
        };
        Ok(Cidr::new(addr, prefix))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl TryFrom<String> for Cidr {
    type Error = CidrError;
    fn try_from(s: String) -> Result<Cidr, CidrError> {
        s.parse()
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        c.to_string()
    }
}

impl serde::Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether any network in `list` contains `ip`.
pub fn listed(list: &[Cidr], ip: IpAddr) -> bool {
    list.iter().any(|c| c.contains(ip))
}

/// What a forwarded listener concludes about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// The client's address; `None` when a trusted proxy sent no usable
    /// `X-Forwarded-For` (the check answers `user:noAuth`).
    pub client_ip: Option<IpAddr>,
    /// Whether the client reached the proxy over HTTPS.
    pub https: bool,
    /// Whether the headers were used (the peer is a trusted proxy).
    pub via_proxy: bool,
}

/// Decides the client IP and scheme of a request on a forwarded listener.
///
/// `xff` and `proto` are every `X-Forwarded-For` and `X-Forwarded-Proto`
/// header value in order; `listener_https` is whether the TCP connection
/// itself is TLS.
pub fn resolve(
    peer: IpAddr,
    trusted: &[Cidr],
    xff: &[&[u8]],
    proto: &[&[u8]],
    listener_https: bool,
) -> Resolved {
    let peer = peer.to_canonical();
    if !listed(trusted, peer) {
        return Resolved {
            client_ip: Some(peer),
            https: listener_https,
            via_proxy: false,
        };
    }
    Resolved {
        client_ip: client_ip(trusted, xff),
        https: match last_entry(proto) {
            Some(p) => p.eq_ignore_ascii_case(b"https"),
            None => listener_https,
        },
        via_proxy: true,
    }
}

/// The right-most entry of `xff` that is not a trusted proxy; when every
/// entry is trusted, the left-most. `None` without entries, when the
/// deciding entry is not an address, or beyond [`MAX_ENTRIES`].
fn client_ip(trusted: &[Cidr], xff: &[&[u8]]) -> Option<IpAddr> {
    let mut last_trusted = None;
    let entries = xff
        .iter()
        .rev()
        .flat_map(|h| h.rsplit(|&b| b == b','))
        .map(trim)
        .filter(|e| !e.is_empty());
    for (n, e) in entries.enumerate() {
        if n >= MAX_ENTRIES {
            return None;
        }
        let ip = parse_entry(e)?;
        if !listed(trusted, ip) {
            return Some(ip);
        }
        last_trusted = Some(ip);
    }
    last_trusted
}

/// The last comma-separated entry of the last header.
fn last_entry<'a>(values: &[&'a [u8]]) -> Option<&'a [u8]> {
    values
        .iter()
        .rev()
        .flat_map(|h| h.rsplit(|&b| b == b','))
        .map(trim)
        .find(|e| !e.is_empty())
}

/// An entry as proxies write it: `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]`,
/// `1.2.3.4:5678` or `[2001:db8::1]:5678`.
fn parse_entry(e: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(e).ok()?;
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let host = if let Some(rest) = s.strip_prefix('[') {
        rest.split_once(']')?.0
    } else {
        let (h, port) = s.rsplit_once(':')?;
        port.parse::<u16>().ok()?;
        h
    };
    host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

fn trim(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// The body of a fuzz target: splits `data` into a peer, trusted networks
/// and header values and checks [`resolve`]'s invariants (it never panics;
/// an untrusted peer is always the client; a resolved client is never a
/// trusted proxy unless every entry was one). A normal test runs it over
/// seeds, so stable CI exercises it without a fuzzer.
pub fn fuzz_resolve(data: &[u8]) {
    let mut parts = data.split(|&b| b == b'\n');
    let peer = parts
        .next()
        .and_then(|p| std::str::from_utf8(p).ok())
        .and_then(|p| p.parse::<IpAddr>().ok())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let trusted: Vec<Cidr> = parts
        .next()
        .and_then(|p| std::str::from_utf8(p).ok())
        .map(|p| p.split(' ').filter_map(|c| c.parse().ok()).collect())
        .unwrap_or_default();
    let xff: Vec<&[u8]> = parts.next().into_iter().collect();
    let proto: Vec<&[u8]> = parts.collect();
    let r = resolve(peer, &trusted, &xff, &proto, false);
    if !listed(&trusted, peer) {
        assert_eq!(r.client_ip, Some(peer.to_canonical()));
        assert!(!r.https && !r.via_proxy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fuzz_seeds() {
        let seeds: &[&[u8]] = &[
            b"",
            b"127.0.0.1\n127.0.0.0/8\n1.2.3.4, 5.6.7.8\nhttps",
            b"10.0.0.1\n10.0.0.0/8 ::1\n[2001:db8::1]:80,10.0.0.2\nhttp,https",
            b"203.0.113.1\n127.0.0.1\n1.1.1.1\nhttps",
            b"::1\n::1/128\n\xff\xfe,,,\n\x00",
            b"127.0.0.1\n0.0.0.0/0\n1.2.3.4:99999, garbage, 1.2.3.4",
        ];
        for s in seeds {
            fuzz_resolve(s);
        }
    }

    proptest! {
        #[test]
        fn fuzz_body_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            fuzz_resolve(&data);
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }
    fn nets(v: &[&str]) -> Vec<Cidr> {
        v.iter().map(|s| s.parse().expect("cidr")).collect()
    }

    #[test]
    fn cidr_parse_and_contains() {
        let c: Cidr = "10.0.0.0/8".parse().expect("cidr");
        assert!(c.contains(ip("10.1.2.3")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.9.9.9")), "mapped v4 matches");
        let one: Cidr = "192.0.2.1".parse().expect("bare");
        assert_eq!(one.to_string(), "192.0.2.1/32");
        assert!(one.contains(ip("192.0.2.1")) && !one.contains(ip("192.0.2.2")));
        let v6: Cidr = "2001:db8::/32".parse().expect("v6");
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let all: Cidr = "0.0.0.0/0".parse().expect("all");
        assert!(all.contains(ip("203.0.113.9")));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "foo",
            "10.0.0.0/",
            "10.0.0.0/x",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn untrusted_peer_headers_ignored() {
        let t = nets(&["10.0.0.1"]);
        let r = resolve(
            ip("203.0.113.5"),
            &t,
            &[b"198.51.100.7"],
            &[b"https"],
            false,
        );
        assert_eq!(
            r,
            Resolved {
                client_ip: Some(ip("203.0.113.5")),
                https: false,
                via_proxy: false
            }
        );
    }

    #[test]
    fn right_most_untrusted_entry() {
        let t = nets(&["10.0.0.0/8"]);
        let p = ip("10.0.0.1");
        // client forged the first entry; the proxy appended the real one
        let r = resolve(p, &t, &[b"1.1.1.1, 198.51.100.7"], &[], false);
        assert_eq!(r.client_ip, Some(ip("198.51.100.7")));
        // a chain of trusted proxies is skipped
        let r = resolve(p, &t, &[b"1.1.1.1, 198.51.100.7, 10.0.0.2"], &[], false);
        assert_eq!(r.client_ip, Some(ip("198.51.100.7")));
        // several headers are one list
        let r = resolve(p, &t, &[b"1.1.1.1", b"198.51.100.8 , 10.0.0.3"], &[], false);
        assert_eq!(r.client_ip, Some(ip("198.51.100.8")));
        // ports and brackets
        let r = resolve(p, &t, &[b"[2001:db8::7]:443"], &[], false);
        assert_eq!(r.client_ip, Some(ip("2001:db8::7")));
        let r = resolve(p, &t, &[b"198.51.100.9:5000"], &[], false);
        assert_eq!(r.client_ip, Some(ip("198.51.100.9")));
        // only trusted entries: the left-most is the client
        let r = resolve(p, &t, &[b"10.0.0.9, 10.0.0.2"], &[], false);
        assert_eq!(r.client_ip, Some(ip("10.0.0.9")));
    }

    #[test]
    fn missing_or_garbage_gives_no_ip() {
        let t = nets(&["127.0.0.1"]);
        let p = ip("127.0.0.1");
        assert_eq!(resolve(p, &t, &[], &[], false).client_ip, None);
        assert_eq!(resolve(p, &t, &[b""], &[], false).client_ip, None);
        assert_eq!(resolve(p, &t, &[b" , ,"], &[], false).client_ip, None);
        assert_eq!(resolve(p, &t, &[b"unknown"], &[], false).client_ip, None);
        assert_eq!(resolve(p, &t, &[b"\xff\xfe"], &[], false).client_ip, None);
        // garbage left of the deciding entry does not matter
        assert_eq!(
            resolve(p, &t, &[b"garbage, 198.51.100.1"], &[], false).client_ip,
            Some(ip("198.51.100.1"))
        );
        let long = vec!["127.0.0.1"; MAX_ENTRIES + 1].join(",");
        assert_eq!(
            resolve(p, &t, &[long.as_bytes()], &[], false).client_ip,
            None
        );
    }

    #[test]
    fn proto() {
        let t = nets(&["127.0.0.1"]);
        let p = ip("127.0.0.1");
        let x: &[&[u8]] = &[b"198.51.100.1"];
        assert!(resolve(p, &t, x, &[b"https"], false).https);
        assert!(resolve(p, &t, x, &[b"HTTPS"], false).https);
        assert!(!resolve(p, &t, x, &[b"http"], true).https);
        assert!(resolve(p, &t, x, &[b"http, https"], false).https);
        assert!(
            resolve(p, &t, x, &[], true).https,
            "no header: the listener's"
        );
        assert!(!resolve(p, &t, x, &[], false).https);
    }

    proptest! {
        #[test]
        fn never_panics(peer in any::<[u8; 4]>(), xff in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..4),
                        proto in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..16), 0..3)) {
            let t = nets(&["127.0.0.0/8", "::1"]);
            let x: Vec<&[u8]> = xff.iter().map(|v| v.as_slice()).collect();
            let p: Vec<&[u8]> = proto.iter().map(|v| v.as_slice()).collect();
            let r = resolve(IpAddr::from(peer), &t, &x, &p, false);
            if !r.via_proxy {
                prop_assert_eq!(r.client_ip, Some(IpAddr::from(peer)));
            }
        }

        #[test]
        fn forged_prefix_never_wins(forged in proptest::collection::vec(any::<[u8; 4]>(), 0..6), real in any::<[u8; 4]>(), proxies in 0usize..3) {
            // what a client can write is left of what the proxy appends
            let t = nets(&["10.0.0.0/8"]);
            let real = IpAddr::from(real);
            prop_assume!(!t[0].contains(real));
            let mut entries: Vec<String> = forged.iter().map(|f| IpAddr::from(*f).to_string()).collect();
            entries.push(real.to_string());
            for i in 0..proxies { entries.push(format!("10.0.0.{}", i + 1)); }
            let h = entries.join(", ");
            let r = resolve(ip("10.0.0.1"), &t, &[h.as_bytes()], &[], false);
            prop_assert_eq!(r.client_ip, Some(real));
        }

        #[test]
        fn cidr_display_roundtrips(a in any::<[u8; 16]>(), p in 0u8..=128) {
            let c = Cidr::new(IpAddr::from(a), p);
            prop_assert_eq!(c.to_string().parse::<Cidr>(), Ok(c));
        }
    }
}
