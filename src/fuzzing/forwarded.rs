//! Fuzz target `forwarded`: client IP and scheme behind a reverse proxy
//! ([`crate::protocol::forwarded::resolve`]).
//!
//! Input layout (lines split on `\n`): the TCP peer's address, the trusted
//! networks separated by spaces, the `X-Forwarded-For` values (several
//! headers separated by `\r`), then one `X-Forwarded-Proto` value per line.
//! Unparsable peers fall back to 127.0.0.1, so every input reaches
//! `resolve`. The answer is checked against a naive model written from the
//! module's documentation, and the module's own checks
//! ([`crate::protocol::forwarded::fuzz_resolve`]) run on the same bytes.
//!
//! Never: does I/O.

use std::net::IpAddr;

use crate::protocol::forwarded::{Cidr, MAX_ENTRIES, fuzz_resolve, listed, resolve};

/// Parses an entry the way proxies write it, the slow way.
fn model_entry(e: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(e).ok()?;
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = s.strip_prefix('[') {
        let close = rest.find(']')?;
        return rest[..close]
            .parse::<IpAddr>()
            .ok()
            .map(|i| i.to_canonical());
    }
    let colon = s.rfind(':')?;
    s[colon + 1..].parse::<u16>().ok()?;
    s[..colon].parse::<IpAddr>().ok().map(|i| i.to_canonical())
}

/// Every non-empty, trimmed comma-separated entry of `headers`, in order.
fn entries<'a>(headers: &[&'a [u8]]) -> Vec<&'a [u8]> {
    let mut v = Vec::new();
    for h in headers {
        for e in h.split(|&b| b == b',') {
            let e = e.trim_ascii();
            if !e.is_empty() {
                v.push(e);
            }
        }
    }
    v
}

/// Checks `resolve` on the peer, networks and headers encoded in `data`.
pub fn forwarded(data: &[u8]) {
    fuzz_resolve(data);

    let mut lines = data.split(|&b| b == b'\n');
    let peer_text = lines.next().unwrap_or_default();
    let peer = std::str::from_utf8(peer_text)
        .ok()
        .and_then(|p| p.trim().parse::<IpAddr>().ok())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let trusted: Vec<Cidr> = lines
        .next()
        .and_then(|l| std::str::from_utf8(l).ok())
        .map(|l| l.split(' ').filter_map(|c| c.parse().ok()).collect())
        .unwrap_or_default();
    let xff: Vec<&[u8]> = lines
        .next()
        .map(|l| l.split(|&b| b == b'\r').collect())
        .unwrap_or_default();
    let proto: Vec<&[u8]> = lines.collect();

    for listener_https in [false, true] {
        let r = resolve(peer, &trusted, &xff, &proto, listener_https);
        let peer_c = peer.to_canonical();
        if !listed(&trusted, peer_c) {
            // An untrusted peer is the client, whatever the headers say.
            assert_eq!(r.client_ip, Some(peer_c));
            assert_eq!(r.https, listener_https);
            assert!(!r.via_proxy);
            continue;
        }
        assert!(r.via_proxy);

        // Model: right-most untrusted entry, else the left-most trusted one,
        // looking at no more than MAX_ENTRIES entries from the right.
        let all = entries(&xff);
        let mut want = None;
        let mut last_trusted = None;
        let mut decided = false;
        for (n, e) in all.iter().rev().enumerate() {
            if n >= MAX_ENTRIES {
                decided = true;
                break;
            }
            match model_entry(e) {
                None => {
                    decided = true;
                    break;
                }
                Some(ip) if !listed(&trusted, ip) => {
                    want = Some(ip);
                    decided = true;
                    break;
                }
                Some(ip) => last_trusted = Some(ip),
            }
        }
        if !decided {
            want = last_trusted;
        }
        assert_eq!(r.client_ip, want, "entries {all:?}");
        if let Some(ip) = r.client_ip {
            // The answer is one of the header's entries, never invented.
            assert!(all.iter().any(|e| model_entry(e) == Some(ip)));
            // Bounded work: it comes from the last MAX_ENTRIES entries.
            let tail = &all[all.len().saturating_sub(MAX_ENTRIES)..];
            assert!(tail.iter().any(|e| model_entry(e) == Some(ip)));
        }

        // Scheme: the last non-empty X-Forwarded-Proto entry, else the listener's.
        let want_https = match entries(&proto).last() {
            Some(p) => p.eq_ignore_ascii_case(b"https"),
            None => listener_https,
        };
        assert_eq!(r.https, want_https);
    }
}
