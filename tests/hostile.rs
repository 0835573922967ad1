//! Hostile clients over real sockets: slow headers and bodies, oversized and
//! too many headers, garbage instead of HTTP, floods of forged cookies and of
//! connections, oversized and deeply nested bodies, cross-site requests, and
//! a million distinct IPv6 sources against the rate limiter. Each test
//! asserts a clear answer (or a clean close), that a well-behaved client is
//! served during or right after the attack, and that nothing was lost.
//!
//! Every test holds [`SERIAL`]: some measure the process (tasks, memory),
//! and another test running in the same process would blur the numbers.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use postern::app::{AppHandle, StartOptions};
use postern::clock::ManualClock;
use postern::config::Config;
use postern::ratelimit::{Limits as RateLimits, RateLimiterHandle};
use postern::sessions::ActorTiming;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// Serializes the tests that measure process-wide numbers.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Liveness bound for anything we wait for; never a performance claim.
const PATIENCE: Duration = Duration::from_secs(30);

/// A fresh instance (demo account, 20 ms bad-auth delay) whose
/// configuration `tweak` adjusts.
async fn start(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    provision(dir.path(), &[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)]);
    let clock = ManualClock::starting_now();
    let mut c = config(dir.path(), 20);
    tweak(&mut c);
    let opts = StartOptions {
        clock: Arc::new(clock.clone()),
        timing: ActorTiming {
            tick: Duration::from_millis(200),
            idle_stop: Duration::from_secs(3600),
        },
    };
    let app = AppHandle::start(c, opts).await.expect("start app");
    TestApp {
        addr: app.addresses[0],
        metrics: app.metrics_address,
        app: Some(app),
        dir,
        clock,
        delay_ms: 20,
    }
}

async fn connect(addr: SocketAddr, from: Option<IpAddr>) -> TcpStream {
    let sock = TcpSocket::new_v4().expect("socket");
    if let Some(ip) = from {
        sock.bind(SocketAddr::new(ip, 0)).expect("bind source");
    }
    sock.connect(addr).await.expect("connect")
}

/// Reads until the server closes (or an error), within [`PATIENCE`].
async fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let read = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("server neither answered nor closed");
    out
}

/// Sends raw bytes on a new connection and returns everything the server
/// sends back before it closes.
async fn raw(addr: SocketAddr, from: Option<IpAddr>, req: &[u8]) -> Vec<u8> {
    let mut s = connect(addr, from).await;
    let _ = s.write_all(req).await;
    read_all(&mut s).await
}

/// The status code of a raw HTTP/1.1 answer, if it is one.
fn status(resp: &[u8]) -> Option<u16> {
    let line = resp.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// The JSON of a `200` answer; fails on any other answer.
fn json_answer(resp: &[u8]) -> serde_json::Value {
    assert_eq!(status(resp), Some(200), "{}", String::from_utf8_lossy(resp));
    serde_json::from_str(&body(resp)).expect("json")
}

fn body(resp: &[u8]) -> String {
    let text = String::from_utf8_lossy(resp);
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// Resident memory of this process, in KiB.
fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Signs in and checks that the session serves an authenticated call.
async fn signed_in(t: &TestApp) -> Browser {
    let mut b = t.browser();
    b.login_account().await;
    assert_served(&mut b).await;
    b
}

/// A well-behaved, signed-in client is served. It closes its connection
/// (so its idle keep-alive connections do not blur task counts).
async fn assert_served(b: &mut Browser) {
    let csrf = b.csrf.clone().expect("signed in");
    let h = [
        ("content-type", "application/json"),
        ("x-mox-csrf", csrf.as_str()),
        ("connection", "close"),
    ];
    let call = b.request(
        "POST",
        "/account/api/Account",
        &h,
        b"{\"params\":[]}".to_vec(),
    );
    let r = tokio::time::timeout(PATIENCE, call)
        .await
        .expect("well-behaved client not served in time");
    assert_eq!(r.result()["Name"], json!(DEMO));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_by_the_header_timeout() {
    let _serial = SERIAL.lock().await;
    let t = start(|c| c.limits.header_timeout_secs = 1).await;
    let mut good = signed_in(&t).await;

    // Slowloris: one header byte every 100 ms, for up to 20 s.
    let mut s = connect(t.addr, None).await;
    s.write_all(b"GET /account/ HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let started = tokio::time::Instant::now();
    let mut cut = false;
    let mut probe = [0u8; 64];
    while started.elapsed() < Duration::from_secs(20) {
        if s.write_all(b"X-Slow: y\r\n").await.is_err() {
            cut = true;
            break;
        }
        match tokio::time::timeout(Duration::from_millis(100), s.read(&mut probe)).await {
            Ok(Ok(0) | Err(_)) => {
                cut = true;
                break;
            }
            Ok(Ok(n)) => panic!("answer to a request never finished: {:?}", &probe[..n]),
            Err(_) => {}
        }
        // Meanwhile a normal client is served.
        if started.elapsed() < Duration::from_millis(300) {
            assert_served(&mut good).await;
        }
    }
    assert!(cut, "a 1 s header timeout did not cut a 20 s trickle");

    // An idle keep-alive connection is cut the same way after its request.
    let mut s = connect(t.addr, None).await;
    s.write_all(b"GET /account/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let resp = read_all(&mut s).await;
    assert_eq!(status(&resp), Some(200), "answered, then closed when idle");

    // Silent connections (no byte at all) are cut too.
    let mut s = connect(t.addr, None).await;
    assert!(read_all(&mut s).await.is_empty());
    assert_served(&mut good).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_outlives_the_header_timeout_and_its_connection_closes_when_idle() {
    let _serial = SERIAL.lock().await;
    let t = start(|c| {
        c.limits.header_timeout_secs = 1;
        c.limits.body_timeout_secs = 30;
    })
    .await;
    // The head at once, then the body a byte every 250 ms: 3.25 s in all,
    // three header timeouts, all of it with the request in flight.
    let call = br#"{"params":[]}"#;
    let mut s = connect(t.addr, None).await;
    let head = format!(
        "POST /account/api/LoginPrep HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        call.len()
    );
    s.write_all(head.as_bytes()).await.expect("write head");
    let started = tokio::time::Instant::now();
    for b in call {
        tokio::time::sleep(Duration::from_millis(250)).await;
        s.write_all(&[*b])
            .await
            .expect("connection cut while its request was in flight");
    }
    let mut resp = Vec::new();
    let mut buf = [0u8; 4096];
    while !body(&resp).contains('}') {
        match tokio::time::timeout(PATIENCE, s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => break,
            Ok(Ok(n)) => resp.extend_from_slice(&buf[..n]),
        }
    }
    assert!(started.elapsed() > Duration::from_secs(3));
    let v = json_answer(&resp);
    assert!(v["result"].is_string(), "{v}");

    // Answered, the connection is idle: closed within the header timeout
    // (and a tick), not at once.
    let answered = tokio::time::Instant::now();
    let n = tokio::time::timeout(PATIENCE, s.read(&mut buf))
        .await
        .expect("idle connection not closed");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    let idle = answered.elapsed();
    assert!(
        idle >= Duration::from_millis(800) && idle < Duration::from_millis(2500),
        "{idle:?}"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_body_is_cut_by_the_body_timeout() {
    let _serial = SERIAL.lock().await;
    let t = start(|c| c.limits.body_timeout_secs = 1).await;
    let mut good = signed_in(&t).await;
    let mut s = connect(t.addr, None).await;
    s.write_all(
        b"POST /account/api/LoginPrep HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"params\":",
    )
    .await
    .expect("write");
    let (mut rd, mut wr) = s.into_split();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    // Trickle a byte every 100 ms: the timeout is on the whole body.
    let trickle = tokio::spawn(async move {
        while !stop2.load(Ordering::Relaxed) {
            if wr.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut resp = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        while !body(&resp).contains('}') {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => resp.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("slow body not cut");
    stop.store(true, Ordering::Relaxed);
    let _ = trickle.await;
    let v = json_answer(&resp);
    assert_eq!(v["error"]["code"], json!("user:error"));
    assert_eq!(
        v["error"]["message"],
        json!("timeout reading request body, limit is 1 s")
    );
    assert_served(&mut good).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_too_many_headers_get_431() {
    let _serial = SERIAL.lock().await;
    let t = start(|_| {}).await;
    let mut good = signed_in(&t).await;

    let big = format!(
        "GET /account/ HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let resp = raw(t.addr, None, big.as_bytes()).await;
    assert_eq!(
        status(&resp),
        Some(431),
        "{:?}",
        String::from_utf8_lossy(&resp)
    );

    let big_cookie = format!(
        "GET /account/x HTTP/1.1\r\nHost: x\r\nCookie: webaccountsession={}\r\n\r\n",
        "A".repeat(80 * 1024)
    );
    let resp = raw(t.addr, None, big_cookie.as_bytes()).await;
    assert_eq!(status(&resp), Some(431));

    // Exactly MAX_HEADERS fields (Host and Connection included) are fine,
    // one more is refused.
    let max = postern::http::server::MAX_HEADERS;
    let fields = |n: usize| {
        let mut r = String::from("GET /account/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        for i in 0..n - 2 {
            r.push_str(&format!("X-H{i}: v\r\n"));
        }
        r.push_str("\r\n");
        r
    };
    let resp = raw(t.addr, None, fields(max + 1).as_bytes()).await;
    assert_eq!(status(&resp), Some(431));
    let resp = raw(t.addr, None, fields(150).as_bytes()).await;
    assert_eq!(status(&resp), Some(431));
    assert_eq!(
        status(&raw(t.addr, None, fields(max).as_bytes()).await),
        Some(200)
    );
    assert_served(&mut good).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_http_gets_400_or_a_clean_close() {
    let _serial = SERIAL.lock().await;
    let t = start(|c| c.limits.header_timeout_secs = 1).await;
    let mut good = signed_in(&t).await;
    let mut garbage: Vec<Vec<u8>> = vec![
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(), // a TLS ClientHello
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00".to_vec(),
        b"GET / HTTP/9.9\r\n\r\n".to_vec(),
        b"\r\n\r\n\r\n".to_vec(),
        b"GET /account/ HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n".to_vec(),
        b"GET /account/ HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(),
        b"POST /account/api/Login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
            .to_vec(),
        b"G\x00T /\xff HTTP/1.1\r\n\r\n".to_vec(),
    ];
    let mut x: u32 = 0x1234_5678;
    garbage.push(
        (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x.to_le_bytes()[0]
            })
            .collect(),
    );
    for g in &garbage {
        let resp = raw(t.addr, None, g).await;
        match status(&resp) {
            None => assert!(
                resp.is_empty(),
                "not HTTP: {:?}",
                String::from_utf8_lossy(&resp)
            ),
            Some(s) => assert!(
                (400..500).contains(&s),
                "{s} for {:?}",
                String::from_utf8_lossy(g)
            ),
        }
        assert_served(&mut good).await;
    }
    t.stop().await;
}

/// Source of forged request `i`: 10 000 addresses in 2 000 /21s of 127/8,
/// so most forged cookies are counted and delayed rather than refused at
/// once by the rate limiter.
fn forged_source(i: usize) -> IpAddr {
    let n = u32::try_from(i).expect("small");
    IpAddr::V4(Ipv4Addr::from(
        0x7f00_0000 | ((n % 2000) << 11) | (1 + n / 2000),
    ))
}

/// Forged request `i`: well-formed tokens of no session, garbage, bad
/// escaping, broken quoting, and a new unknown account name each time.
fn forged_request(i: usize) -> Vec<u8> {
    const TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAA";
    let cookie = match i % 5 {
        0 => format!("webaccountsession=\"{TOKEN} demo\""),
        1 => format!("webaccountsession={}", "g".repeat(i % 4000)),
        2 => format!("webaccountsession=\"{TOKEN} %zz\""),
        3 => format!("webaccountsession=\"x{i} y\"; a=\"b; c=\\"),
        _ => format!("webaccountsession=\"{TOKEN} nosuch{i}\""),
    };
    format!("GET /account/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n")
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_forged_cookies_keep_tasks_and_memory_bounded() {
    let _serial = SERIAL.lock().await;
    let t = start(|c| c.limits.header_timeout_secs = 1).await;
    let mut good = signed_in(&t).await;
    // Let the sign-in's keep-alive connections time out first.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let addr = t.addr;
    let base_tasks = alive_tasks();
    let base_rss = vm_rss_kib();

    const REQUESTS: usize = 10_000;
    const CONCURRENCY: usize = 64;
    let next = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let limited = Arc::new(AtomicUsize::new(0));
    let peak_tasks = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));

    let sampler = {
        let (peak, done) = (peak_tasks.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(alive_tasks(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (next, answered, limited) = (next.clone(), answered.clone(), limited.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= REQUESTS {
                    break;
                }
                let resp = raw(addr, Some(forged_source(i)), &forged_request(i)).await;
                match status(&resp) {
                    Some(403) => {
                        assert!(body(&resp).starts_with("403 - forbidden - "));
                    }
                    Some(429) => {
                        limited.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        let text = String::from_utf8_lossy(&resp);
                        panic!("request {i}: {other:?} {text:?}");
                    }
                }
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // The signed-in person is served all along.
    let mut served = 0;
    while answered.load(Ordering::Relaxed) < REQUESTS && workers.iter().any(|w| !w.is_finished()) {
        assert_served(&mut good).await;
        served += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for w in workers {
        w.await.expect("worker");
    }
    done.store(true, Ordering::Relaxed);
    sampler.await.expect("sampler");
    assert_eq!(
        answered.load(Ordering::Relaxed),
        REQUESTS,
        "every request answered"
    );
    assert!(served > 0);

    // Each request in flight costs the server one connection task (plus the
    // client's worker); the delay holds nothing else.
    let peak = peak_tasks.load(Ordering::Relaxed);
    assert!(
        peak <= base_tasks + 3 * CONCURRENCY + 16,
        "peak {peak} tasks, base {base_tasks}"
    );
    // And everything is gone once the requests are.
    let mut after = alive_tasks();
    for _ in 0..100 {
        if after <= base_tasks + 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = alive_tasks();
    }
    assert!(
        after <= base_tasks + 4,
        "{after} tasks left, base {base_tasks}"
    );
    let grown = vm_rss_kib().saturating_sub(base_rss);
    assert!(
        grown < 64 * 1024,
        "RSS grew by {grown} KiB over {REQUESTS} requests"
    );
    let entries = t
        .app
        .as_ref()
        .expect("app")
        .services
        .auth
        .limiter
        .entries()
        .await
        .expect("limiter");
    assert!(entries <= 100_000, "{entries} limiter entries");
    // Nothing lost: the session still works.
    assert_served(&mut good).await;
    eprintln!(
        "forged cookies: {REQUESTS} answered ({} rate limited), peak {peak} tasks (base {base_tasks}), RSS +{grown} KiB",
        limited.load(Ordering::Relaxed)
    );
    t.stop().await;
}

/// `postern_connections_refused_total{answer="503"}` as the metrics
/// listener renders it (0 before the first refusal).
async fn refused_503(t: &TestApp) -> u64 {
    let r = send(
        t.metrics.expect("metrics listener"),
        "GET",
        "/metrics",
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 200);
    r.text()
        .lines()
        .find_map(|l| l.strip_prefix("postern_connections_refused_total{answer=\"503\"} "))
        .map_or(0, |v| v.trim().parse().expect("counter value"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_flood_beyond_the_cap_gets_503_at_once() {
    let _serial = SERIAL.lock().await;
    const CAP: usize = 4;
    const FLOOD: usize = 40;
    let t = start(|c| {
        c.limits.max_connections = CAP;
        c.limits.header_timeout_secs = 60;
    })
    .await;
    let mut good = signed_in(&t).await;
    // The sign-in's connections are closed; let the server see it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused_before = refused_503(&t).await;
    let base_tasks = alive_tasks();

    // CAP idle connections, each in the middle of its request head, hold
    // every slot (the header timeout is long).
    let mut idle = Vec::new();
    for _ in 0..CAP {
        let mut s = connect(t.addr, None).await;
        s.write_all(b"GET /account/ HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        idle.push(s);
    }
    // Every further connection is answered at once: 503, Retry-After,
    // Connection: close, then closed.
    let mut flood = Vec::new();
    for _ in 0..FLOOD {
        flood.push(tokio::spawn(raw(
            t.addr,
            None,
            b"GET /account/ HTTP/1.1\r\nHost: x\r\n\r\n",
        )));
    }
    for f in flood {
        let resp = f.await.expect("flood client");
        assert_eq!(
            status(&resp),
            Some(503),
            "{}",
            String::from_utf8_lossy(&resp)
        );
        let text = String::from_utf8_lossy(&resp).to_ascii_lowercase();
        assert!(text.contains("\r\nretry-after: 1\r\n"), "{text}");
        assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
        assert_eq!(body(&resp), "503 - service unavailable\n");
    }
    // Nothing is held for them: tasks are back to the base plus the idle
    // connections' within the linger bound.
    let settled = async {
        while alive_tasks() > base_tasks + CAP {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(PATIENCE, settled)
        .await
        .expect("refusal tasks did not end");
    // The metric counted every one of them.
    assert!(refused_503(&t).await >= refused_before + FLOOD as u64);
    // The idle connections were neither answered nor closed.
    for s in &idle {
        let mut buf = [0u8; 16];
        assert!(
            matches!(s.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "an idle connection got an answer or was closed"
        );
    }
    // One idle client leaves: a well-behaved client (retrying after a 503,
    // as Retry-After says) is served again.
    drop(idle.pop());
    let csrf = good.csrf.clone().expect("signed in");
    let cookie = good.cookie_header("/account/").expect("session cookie");
    let addr = t.addr;
    let retry = async {
        loop {
            let (csrf, cookie) = (csrf.clone(), cookie.clone());
            // The 503 is written at accept, possibly before the client has
            // sent its request; the client then fails with a connection
            // error (a panic in `send`, caught by the task), which means the
            // same: refused, retry.
            let attempt = tokio::spawn(async move {
                send(
                    addr,
                    "POST",
                    "/account/api/Account",
                    &[
                        ("cookie", cookie.as_str()),
                        ("content-type", "application/json"),
                        ("x-mox-csrf", csrf.as_str()),
                        ("connection", "close"),
                    ],
                    b"{\"params\":[]}".to_vec(),
                )
                .await
            })
            .await;
            match attempt {
                Ok(r) if r.status != 503 => return r,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    };
    let r = tokio::time::timeout(PATIENCE, retry)
        .await
        .expect("never served after a slot freed");
    assert_eq!(r.result()["Name"], json!(DEMO));
    drop(idle);
    assert_served(&mut good).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_bodies_over_the_limit_are_refused() {
    let _serial = SERIAL.lock().await;
    let t = start(|c| c.limits.api_body_bytes = 1024).await;
    let mut good = signed_in(&t).await;
    let big = format!("{{\"params\":[\"{}\"]}}", "x".repeat(2000));
    let h = [("content-type", "application/json")];
    // Declared too large.
    let r = send(
        t.addr,
        "POST",
        "/account/api/LoginPrep",
        &h,
        big.clone().into_bytes(),
    )
    .await;
    assert_eq!(r.error_code().as_deref(), Some("user:error"));
    assert_eq!(
        r.error_message(),
        "request body too large, limit is 1024 bytes"
    );
    // Chunked, no length declared: cut while reading.
    let req = format!(
        "POST /account/api/LoginPrep HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let resp = raw(t.addr, None, req.as_bytes()).await;
    assert_eq!(status(&resp), Some(200));
    assert!(
        body(&resp).contains("request body too large, limit is 1024 bytes"),
        "{}",
        body(&resp)
    );
    // An authenticated call too.
    let csrf = good.csrf.clone().expect("csrf");
    let r = good
        .request(
            "POST",
            "/account/api/Account",
            &[("content-type", "application/json"), ("x-mox-csrf", &csrf)],
            big.into_bytes(),
        )
        .await;
    assert_eq!(r.error_code().as_deref(), Some("user:error"));
    // A body within the limit sent in several chunks is joined whole: the
    // call's answer echoes the account name only if the JSON parsed.
    let pieces = ["{\"par", "ams\"", ":[]", "}"];
    let chunks: String = pieces
        .iter()
        .map(|p| format!("{:x}\r\n{p}\r\n", p.len()))
        .collect();
    let cookies = good
        .cookie_header("/account/api/Account")
        .expect("session cookie");
    let req = format!(
        "POST /account/api/Account HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nx-mox-csrf: {csrf}\r\nCookie: {cookies}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunks}0\r\n\r\n",
    );
    let resp = raw(t.addr, None, req.as_bytes()).await;
    assert_eq!(status(&resp), Some(200), "{}", body(&resp));
    let v: serde_json::Value = serde_json::from_str(&body(&resp)).expect("json answer");
    assert_eq!(v["result"]["Name"], json!(DEMO), "{v}");
    assert_served(&mut good).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json_is_a_bad_request() {
    let _serial = SERIAL.lock().await;
    let t = start(|_| {}).await;
    let mut good = signed_in(&t).await;
    let h = [("content-type", "application/json")];
    for depth in [200, 100_000] {
        let body = format!("{{\"params\":[{}", "[".repeat(depth));
        let r = send(
            t.addr,
            "POST",
            "/account/api/LoginPrep",
            &h,
            body.into_bytes(),
        )
        .await;
        assert_eq!(r.status, 400);
        assert_eq!(r.error_code().as_deref(), Some("sherpa:badRequest"));
        let closed = format!(
            "{{\"params\":[{}{}]}}",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let r = send(
            t.addr,
            "POST",
            "/account/api/LoginPrep",
            &h,
            closed.into_bytes(),
        )
        .await;
        assert_eq!(r.status, 400, "depth {depth}");
        assert!(
            r.error_message().contains("recursion limit"),
            "{}",
            r.error_message()
        );
    }
    assert_served(&mut good).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_state_changes_are_refused_first() {
    let _serial = SERIAL.lock().await;
    let t = start(|_| {}).await;
    let mut good = signed_in(&t).await;
    let csrf = good.csrf.clone().expect("csrf");
    let cross = [
        ("content-type", "application/json"),
        ("x-mox-csrf", csrf.as_str()),
        ("sec-fetch-site", "cross-site"),
    ];
    // Logout from another site: refused, and the session survives.
    let r = good
        .request(
            "POST",
            "/account/api/Logout",
            &cross,
            b"{\"params\":[]}".to_vec(),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.text(),
        "403 - forbidden - cross-site request refused (Sec-Fetch-Site: cross-site)\n"
    );
    assert_served(&mut good).await;
    // Before anything else: even a request with no cookie, body or CSRF.
    let r = send(
        t.addr,
        "POST",
        "/account/api/LoginPrep",
        &[("sec-fetch-site", "Cross-Site")],
        vec![],
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(r.set_cookies().is_empty());
    // Safe methods from another site (a link) still work.
    let r = send(
        t.addr,
        "GET",
        "/account/",
        &[("sec-fetch-site", "cross-site")],
        vec![],
    )
    .await;
    assert_eq!(r.status, 200);
    // Same-origin, same-site, none, and no header at all are unaffected.
    for site in ["same-origin", "same-site", "none"] {
        let mut h = cross.to_vec();
        h[2] = ("sec-fetch-site", site);
        let r = good
            .request(
                "POST",
                "/account/api/Account",
                &h,
                b"{\"params\":[]}".to_vec(),
            )
            .await;
        assert_eq!(r.result()["Name"], json!(DEMO), "{site}");
    }
    assert_served(&mut good).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_answers_carry_retry_after() {
    let _serial = SERIAL.lock().await;
    let t = start(|_| {}).await;
    let from = Some("127.9.0.1".parse().expect("ip"));
    let forged = [(
        "cookie",
        "webaccountsession=\"AAAAAAAAAAAAAAAAAAAAAA demo\"",
    )];
    let mut last = None;
    for _ in 0..11 {
        last = Some(send_from(from, t.addr, "GET", "/account/x", &forged, vec![]).await);
    }
    let r = last.expect("sent");
    assert_eq!(r.status, 429);
    let secs: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&secs), "{secs}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_distinct_ipv6_sources_keep_the_limiter_bounded() {
    let _serial = SERIAL.lock().await;
    const CAP: usize = 6_000;
    const SOURCES: u64 = 1_000_000;
    const TASKS: u64 = 8;
    let limits = RateLimits {
        max_entries: CAP,
        ..RateLimits::default()
    };
    let rl = RateLimiterHandle::spawn(limits, 4).await.expect("limiter");
    let base_rss = vm_rss_kib();
    let mut workers = Vec::new();
    for w in 0..TASKS {
        let rl = rl.clone();
        workers.push(tokio::spawn(async move {
            let mut max_seen = 0;
            for i in (w..SOURCES).step_by(usize::try_from(TASKS).expect("small")) {
                // Distinct /64s spread over distinct /32s: every attempt
                // brings new keys, so only the cap keeps memory bounded.
                let hi = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                let ip = IpAddr::V6(Ipv6Addr::from((u128::from(hi) << 64) | 1));
                rl.attempt(ip)
                    .await
                    .expect("limiter available")
                    .expect("not limited");
                if i % 50_000 == w {
                    let n = rl.entries().await.expect("entries");
                    assert!(n <= CAP, "{n} entries after {i} sources");
                    max_seen = max_seen.max(n);
                }
            }
            max_seen
        }));
    }
    let mut max_seen = 0;
    for w in workers {
        max_seen = max_seen.max(w.await.expect("worker"));
    }
    let n = rl.entries().await.expect("entries");
    assert!(n <= CAP && max_seen <= CAP, "{n} / {max_seen} entries");
    let grown = vm_rss_kib().saturating_sub(base_rss);
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
    // The limiter still limits: a fresh client is refused after its 10.
    let ip: IpAddr = "2001:db8::7".parse().expect("ip");
    for _ in 0..10 {
        assert_eq!(rl.attempt(ip).await.expect("available"), Ok(()));
    }
    assert!(rl.attempt(ip).await.expect("available").is_err());
    rl.stop();
}
