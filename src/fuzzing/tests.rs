//! The fuzz properties under proptest: random bytes for every target, and
//! inputs built to reach deep (well-formed cookies, JSON calls, valid
//! records), so `cargo test` covers what a short fuzz run would.

use proptest::prelude::*;
use serde_json::Value;

use super::*;
use crate::store::codec::{self, SessionRecord};

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

/// A JSON value a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A `Cookie` header made of cookie-like pieces.
fn cookie_header() -> impl Strategy<Value = Vec<u8>> {
    let name = prop_oneof![
        Just("webaccountsession".to_string()),
        Just("webadminsession".to_string()),
        Just("webmaillogin".to_string()),
        "[a-z]{1,4}",
    ];
    let value = prop_oneof![
        "[A-Za-z0-9_-]{22} [a-zA-Z0-9%+]{0,12}",
        "\"[A-Za-z0-9_-]{22} [a-zA-Z0-9%+.]{0,12}\"",
        "[ -~]{0,30}",
    ];
    proptest::collection::vec((name, value), 0..4).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
            .into_bytes()
    })
}

fn session_record() -> impl Strategy<Value = SessionRecord> {
    (
        any::<u64>(),
        0u8..4,
        any::<[u8; 32]>(),
        any::<String>(),
        any::<(i64, i64, i64)>(),
        proptest::option::of(any::<std::net::IpAddr>()),
        "[ -~]{0,20}",
    )
        .prop_map(
            |(id, kind, csrf_hash, addr, (c, l, e), ip, agent)| SessionRecord {
                id,
                kind,
                csrf_hash,
                login_address: addr,
                created: c,
                last_used: l,
                expires: e,
                created_ip: ip,
                created_agent: agent.clone(),
                last_ip: ip,
                last_agent: agent,
            },
        )
}

proptest! {
    #[test]
    fn cookie_on_random_bytes(data in bytes(256)) {
        cookie(&data);
    }

    #[test]
    fn cookie_on_built_headers(
        h in proptest::collection::vec(cookie_header(), 1..3),
        csrf in "[A-Za-z0-9_-]{0,23}",
    ) {
        let mut data = csrf.into_bytes();
        for line in h {
            data.push(b'\n');
            data.extend(line);
        }
        cookie(&data);
    }

    #[test]
    fn query_escape_on_random_bytes(data in bytes(128)) {
        query_escape(&data);
    }

    #[test]
    fn query_escape_on_text_and_escapes(s in any::<String>(), e in "([a-zA-Z0-9+~]|%[0-9a-fA-F]{2}|%.?){0,16}") {
        query_escape(s.as_bytes());
        query_escape(e.as_bytes());
    }

    #[test]
    fn sherpa_call_on_random_bytes(data in bytes(128)) {
        sherpa_call(&data);
    }

    #[test]
    fn sherpa_call_on_json(params in proptest::collection::vec(json(), 0..5), wrap in 0u8..4) {
        let v = match wrap {
            0 => serde_json::json!({ "params": params }),
            1 => serde_json::json!({ "params": null, "x": params }),
            2 => Value::Array(params),
            _ => serde_json::json!({ "params": params.first().cloned().unwrap_or(Value::Null) }),
        };
        let body = serde_json::to_vec(&v).expect("json");
        sherpa_call(&body);
    }

    #[test]
    fn record_decode_on_random_bytes(data in bytes(160)) {
        record_decode(&data);
        let mut v = vec![codec::VERSION];
        v.extend(&data);
        record_decode(&v);
    }

    #[test]
    fn record_decode_on_mutated_records(rec in session_record(), at in any::<usize>(), b in any::<u8>()) {
        let mut enc = codec::encode(&rec).expect("encode");
        record_decode(&enc);
        let i = at % enc.len();
        enc[i] = b;
        record_decode(&enc);
        enc.truncate(i);
        record_decode(&enc);
    }

    #[test]
    fn session_model_on_random_programs(data in bytes(2048)) {
        session_model(&data);
    }

    #[test]
    fn ratelimit_model_on_random_programs(data in bytes(2048)) {
        ratelimit_model(&data);
    }
}

#[test]
fn every_target_is_registered_once_and_found_by_name() {
    for (i, (name, _)) in TARGETS.iter().enumerate() {
        assert!(target(name).is_some());
        assert!(TARGETS[..i].iter().all(|(n, _)| n != name), "{name} twice");
    }
    assert!(target("nope").is_none());
}

#[test]
fn input_reads_to_the_end_and_then_nothing() {
    let mut i = Input::new(&[1, 2, 3, 4, 5]);
    assert_eq!(i.u8(), Some(1));
    assert_eq!(i.u16(), Some(0x0203));
    assert_eq!(i.bytes(10), &[4, 5]);
    assert_eq!(i.u8(), None);
    assert_eq!(i.u8_or_zero(), 0);
    assert_eq!(i.rest(), &[] as &[u8]);
}

/// An address as a proxy writes it in `X-Forwarded-For`: v4 or v6, bare,
/// with a port, in brackets, mapped, or garbage.
fn xff_entry() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u8..4, any::<u8>()).prop_map(|(a, b)| format!("10.0.{a}.{b}")),
        (0u8..4, any::<u8>(), any::<u16>()).prop_map(|(a, b, p)| format!("10.0.{a}.{b}:{p}")),
        any::<u16>().prop_map(|x| format!("2001:db8::{x:x}")),
        any::<u16>().prop_map(|x| format!("[2001:db8::{x:x}]:443")),
        any::<u8>().prop_map(|b| format!("::ffff:10.0.0.{b}")),
        "[ -~]{0,8}",
    ]
}

proptest! {
    #[test]
    fn forwarded_on_random_bytes(data in bytes(256)) {
        forwarded(&data);
    }

    #[test]
    fn forwarded_on_built_requests(
        peer in prop_oneof![Just("10.0.0.1"), Just("203.0.113.9"), Just("::1"), Just("::ffff:10.0.1.1")],
        trusted in proptest::collection::vec(
            prop_oneof![Just("10.0.0.0/24"), Just("10.0.0.0/8"), Just("::1"), Just("2001:db8::/64"), Just("0.0.0.0/0")], 0..3),
        headers in proptest::collection::vec(proptest::collection::vec(xff_entry(), 0..40), 0..3),
        proto in proptest::collection::vec(prop_oneof![Just("https"), Just("HTTP"), Just(""), Just("https, http")], 0..3),
    ) {
        let xff: Vec<String> = headers.iter().map(|h| h.join(", ")).collect();
        let data = format!("{peer}\n{}\n{}\n{}", trusted.join(" "), xff.join("\r"), proto.join("\n"));
        forwarded(data.as_bytes());
    }
}

/// An mbox built from messages with `From ` lines, quoted lines, status
/// fields and both line endings.
fn mbox_file() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just("Status: RO".to_string()),
        Just("X-Status: AFTD".to_string()),
        Just("X-Keywords: $Junk, work".to_string()),
        Just(" continued".to_string()),
        Just("From inside".to_string()),
        Just(">From quoted".to_string()),
        Just(">>From twice".to_string()),
        Just(String::new()),
        "[ -~]{0,20}",
    ];
    let eol = prop_oneof![Just("\n"), Just("\r\n")];
    let msg = (proptest::collection::vec((line, eol), 0..8), any::<bool>());
    proptest::collection::vec(msg, 1..5).prop_map(|msgs| {
        let mut out = Vec::new();
        for (lines, dated) in msgs {
            out.extend_from_slice(if dated {
                b"From MAILER-DAEMON Mon Nov 23 16:03:06 2026\n".as_slice()
            } else {
                b"From x\n".as_slice()
            });
            for (l, e) in lines {
                out.extend_from_slice(l.as_bytes());
                out.extend_from_slice(e.as_bytes());
            }
        }
        out
    })
}

proptest! {
    #[test]
    fn mbox_on_random_bytes(data in bytes(256)) {
        mbox(&data);
        let mut with_from = b"From ".to_vec();
        with_from.extend_from_slice(&data);
        mbox(&with_from);
    }

    #[test]
    fn mbox_on_built_files(data in mbox_file()) {
        mbox(&data);
    }

    #[test]
    fn maildir_on_random_bytes(data in bytes(128)) {
        maildir(&data);
    }

    #[test]
    fn maildir_on_built_names_and_files(
        secs in "[0-9]{0,14}",
        flags in "[DFPRSTa-z0-9]{0,12}",
        kw in proptest::collection::vec(("[0-9]{1,2}", "[ -~]{0,10}"), 0..30),
    ) {
        maildir(format!("{secs}.1.host:2,{flags}").as_bytes());
        let file: String = kw.iter().map(|(n, k)| format!("{n} {k}\n")).collect();
        maildir(file.as_bytes());
    }
}

proptest! {
    #[test]
    fn archive_on_random_bytes(mode in 0u8..2, b1 in any::<u8>(), b2 in any::<u8>(), data in bytes(256)) {
        let magic: &[u8] = if mode == 0 { b"PK\x03\x04" } else { &[0x1f, 0x8b, 8, 0] };
        let mut input = vec![mode, b1, b2];
        input.extend_from_slice(magic);
        input.extend_from_slice(&data);
        archive(&input);
    }

    #[test]
    fn archive_built_tgz_walks_back(data in bytes(256)) {
        let mut input = vec![2, 0, 0];
        input.extend_from_slice(&data);
        archive(&input);
    }
}

/// A part of an upload form as the build mode of the `multipart` target
/// reads it: a selector byte, then contents (no zero byte: it separates
/// parts).
fn upload_part() -> impl Strategy<Value = Vec<u8>> {
    let data = prop_oneof![
        proptest::collection::vec(1u8..=255, 0..40),
        "[ -~\r\n]{0,40}".prop_map(String::into_bytes),
        Just(b"\r\n--x\r\n".to_vec()),
    ];
    (any::<u8>(), data).prop_map(|(sel, d)| {
        let mut v = vec![sel.max(1)];
        v.extend(d);
        v
    })
}

proptest! {
    #[test]
    fn multipart_on_random_bytes(mode in any::<u8>(), conf in any::<[u8; 5]>(), ct in prop_oneof![
        Just("multipart/form-data; boundary=b".to_string()),
        Just("multipart/form-data; boundary=\"a b\"".to_string()),
        "[ -~]{0,40}",
    ], body in bytes(300)) {
        let mut input = vec![mode & !1];
        input.extend_from_slice(&conf);
        input.extend_from_slice(ct.as_bytes());
        input.push(b'\n');
        input.extend_from_slice(&body);
        multipart(&input);
    }

    #[test]
    fn multipart_on_nearly_valid_bodies(
        mode in any::<u8>(),
        conf in any::<[u8; 5]>(),
        parts in proptest::collection::vec(
            (prop_oneof![Just("file"), Just("skipMailboxPrefix"), Just("x")], "[ -~\r\n]{0,30}"), 0..5),
        cut in any::<usize>(),
    ) {
        let mut body = String::new();
        for (n, d) in &parts {
            body.push_str(&format!("--b\r\nContent-Disposition: form-data; name=\"{n}\"\r\n\r\n{d}\r\n"));
        }
        body.push_str("--b--\r\n");
        let mut input = vec![mode & !1];
        input.extend_from_slice(&conf);
        input.extend_from_slice(b"multipart/form-data; boundary=b\n");
        input.extend_from_slice(body.as_bytes());
        multipart(&input);
        // The same body cut short anywhere is an error or a success that
        // keeps the bounds, never a panic.
        let keep = input.len() - cut % (body.len() + 1);
        multipart(&input[..keep]);
    }

    #[test]
    fn multipart_built_bodies_walk_back(
        mode in any::<u8>(),
        conf in any::<[u8; 5]>(),
        boundary in bytes(72),
        parts in proptest::collection::vec(upload_part(), 0..6),
    ) {
        let mut input = vec![mode | 1];
        input.extend_from_slice(&conf);
        input.push(boundary.len() as u8);
        input.extend(boundary.iter().map(|b| b.max(&1)));
        for p in parts {
            input.push(0);
            input.extend(p);
        }
        multipart(&input);
    }
}
