//! Section 6 of the load benchmark: mail import and export over HTTP, as a
//! user does it.
//!
//! Starts its own server on a fresh data directory (so `--only mail` can run
//! it alone) with accounts made for it, then:
//! - imports 10,000 small messages and 1,000 messages of ~50 KB into their own
//!   accounts: sign in, `POST /account/import` (multipart, streamed from the
//!   archive file), follow `GET /account/importprogress` to `done`;
//!   messages/s and MB/s of mail (the account's `StorageUsed` afterwards);
//! - imports ~1 GiB of mail (100 MiB with `--quick`), nothing else running,
//!   while sampling the server's VmRSS every 10 ms: RSS before and peak;
//! - signs in ANOTHER account continuously (sequential LoginPrep + Login,
//!   default argon2id cost), quietly and then during an import of 100,000
//!   small messages; likewise a paced session check of a third account (one
//!   `Version` call every 2 ms on one keep-alive connection), quietly and
//!   during a second such import. The two probes run apart, so neither
//!   disturbs the other's figure;
//! - exports the big account as mbox.tgz and maildir.tgz through
//!   `POST /account/export`, counting the streamed bytes: MB/s and peak RSS.
//!
//! The archives are made here (realistic text with varied headers, `From `
//! lines in bodies, base64 attachments in the large messages, several
//! mailboxes) and cached in `target/loadbench-mail/`, so later runs reuse them.

use std::convert::Infallible;
use std::io::{BufWriter, Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper::body::{Frame, SizeHint};
use hyper_util::rt::TokioIo;
use postern::credentials::HashCost;
use postern::store::Stores;
use serde_json::{Value, json};

use super::{Session, api, login, one, rss_kib, start_server, stop_server, write_config};

/// Fixture format version: bump when the generator changes.
const FIXTURE_VERSION: u32 = 1;
/// The mailboxes messages are spread over (as `<name>.mbox` in the archive).
const MAILBOXES: [&str; 5] = [
    "Inbox",
    "Sent",
    "Archive/2023",
    "Archive/2024",
    "Lists/rust",
];

/// One archive to import: the file and what it holds.
struct Fixture {
    path: PathBuf,
    messages: u64,
    mail_bytes: u64,
}

/// xorshift64*: fixtures are the same from run to run.
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

const WORDS: &[&str] = &[
    "the",
    "meeting",
    "about",
    "server",
    "mail",
    "please",
    "find",
    "attached",
    "report",
    "tomorrow",
    "we",
    "should",
    "discuss",
    "release",
    "and",
    "of",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "with",
    "as",
    "on",
    "be",
    "at",
    "by",
    "this",
    "have",
    "from",
    "or",
    "an",
    "they",
    "which",
    "you",
    "were",
    "her",
    "all",
    "she",
    "there",
    "would",
    "their",
    "will",
    "when",
    "who",
    "him",
    "been",
    "has",
    "more",
    "if",
    "no",
    "out",
    "so",
    "said",
    "what",
    "up",
    "its",
    "than",
    "into",
    "them",
    "only",
    "could",
    "new",
    "some",
    "these",
    "two",
    "may",
    "first",
    "then",
    "do",
    "any",
    "like",
    "my",
    "now",
    "over",
    "such",
    "our",
    "man",
    "me",
    "even",
    "most",
    "made",
    "after",
    "also",
    "did",
    "many",
    "before",
    "must",
    "through",
    "years",
    "where",
    "much",
    "your",
    "way",
    "well",
    "down",
    "budget",
    "quarterly",
    "deploy",
    "backup",
    "invoice",
    "schedule",
    "Grüße",
    "naïve",
    "café",
    "déjà",
    "configuration",
    "password",
    "account",
    "session",
    "latency",
    "throughput",
    "kernel",
    "filesystem",
];

fn text(rng: &mut Rng, bytes: usize, out: &mut Vec<u8>) {
    let end = out.len() + bytes;
    let mut line = 0;
    while out.len() < end {
        let w = WORDS[rng.below(WORDS.len() as u64) as usize];
        if line + w.len() + 1 > 72 {
            // Now and then a line starting with "From ": quoted in the mbox.
            if rng.below(40) == 0 {
                out.extend_from_slice(b"\nFrom the desk of the administrator");
            }
            out.push(b'\n');
            line = 0;
        } else if line > 0 {
            out.push(b' ');
            line += 1;
        }
        out.extend_from_slice(w.as_bytes());
        line += w.len();
    }
    out.extend_from_slice(b"\n");
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// One message of about `size` bytes (a text part and, from 8 KB, a base64
/// attachment of random bytes), and its mbox `From ` line.
fn message(rng: &mut Rng, i: u64, size: usize) -> (String, Vec<u8>) {
    let (d, m, day) = (
        DAYS[rng.below(7) as usize],
        MONTHS[rng.below(12) as usize],
        1 + rng.below(28),
    );
    let (h, mi, s) = (rng.below(24), rng.below(60), rng.below(60));
    let year = 2020 + rng.below(6);
    let from = format!("user{}@example.org", rng.below(500));
    let mut out = Vec::with_capacity(size + 512);
    out.extend_from_slice(
        format!(
            "Received: from mx{}.example.org (mx{}.example.org [192.0.2.{}])\n\tby mail.example.com with ESMTPS id {:016x}\n\tfor <me@example.com>; {d}, {day} {m} {year} {h:02}:{mi:02}:{s:02} +0000\n\
             From: Sender {} <{from}>\nTo: me@example.com\nSubject: Re: message {i} about the {}\n\
             Date: {d}, {day} {m} {year} {h:02}:{mi:02}:{s:02} +0000\nMessage-ID: <{:016x}.{i}@example.org>\nMIME-Version: 1.0\n",
            rng.below(9),
            rng.below(9),
            rng.below(250),
            rng.next(),
            rng.below(500),
            WORDS[rng.below(WORDS.len() as u64) as usize],
            rng.next(),
        )
        .as_bytes(),
    );
    let text_bytes = if size >= 8192 {
        4096
    } else {
        size.saturating_sub(900).max(200)
    };
    if size < 8192 {
        out.extend_from_slice(
            b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n",
        );
        text(rng, text_bytes, &mut out);
    } else {
        let boundary = format!("b{:016x}", rng.next());
        out.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\n\n--{boundary}\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n").as_bytes(),
        );
        text(rng, text_bytes, &mut out);
        out.extend_from_slice(
            format!("--{boundary}\nContent-Type: application/pdf; name=\"report-{i}.pdf\"\nContent-Disposition: attachment; filename=\"report-{i}.pdf\"\nContent-Transfer-Encoding: base64\n\n").as_bytes(),
        );
        let raw_len = (size.saturating_sub(out.len() + 200)) * 3 / 4 * 76 / 77;
        let mut raw = vec![0u8; raw_len];
        for c in raw.chunks_mut(8) {
            let v = rng.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
        for line in b64.as_bytes().chunks(76) {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out.extend_from_slice(format!("--{boundary}--\n").as_bytes());
    }
    let from_line = format!("From {from} {d} {m} {day:>2} {h:02}:{mi:02}:{s:02} {year}\n");
    (from_line, out)
}

/// Writes `msg` as an mboxrd entry: `^>*From ` lines get one more `>`.
fn write_mbox_entry(
    w: &mut impl std::io::Write,
    from_line: &str,
    msg: &[u8],
) -> std::io::Result<()> {
    w.write_all(from_line.as_bytes())?;
    for line in msg.split_inclusive(|&b| b == b'\n') {
        let gts = line.iter().take_while(|&&b| b == b'>').count();
        if line[gts..].starts_with(b"From ") {
            w.write_all(b">")?;
        }
        w.write_all(line)?;
    }
    w.write_all(b"\n")
}

/// The archive `name` with `count` messages of about `size` bytes, or (with
/// `count` 0) as many as make `total` bytes of mail; made once, then cached.
fn fixture(cache: &Path, name: &str, count: u64, size: usize, total: u64) -> Fixture {
    let stem = format!("{name}-v{FIXTURE_VERSION}-{count}x{size}-{total}");
    let path = cache.join(format!("{stem}.tgz"));
    let meta = cache.join(format!("{stem}.json"));
    if let (true, Ok(m)) = (path.exists(), std::fs::read(&meta)) {
        let v: Value = serde_json::from_slice(&m).expect("fixture meta");
        return Fixture {
            path,
            messages: v["messages"].as_u64().expect("messages"),
            mail_bytes: v["mail_bytes"].as_u64().expect("bytes"),
        };
    }
    let t0 = Instant::now();
    std::fs::create_dir_all(cache).expect("cache dir");
    let work = tempfile::tempdir_in(cache).expect("tmp");
    let mut files: Vec<BufWriter<std::fs::File>> = MAILBOXES
        .iter()
        .map(|m| {
            let p = work.path().join(format!("{m}.mbox"));
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            BufWriter::new(std::fs::File::create(p).expect("create"))
        })
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (count << 20) ^ size as u64);
    let (mut n, mut bytes) = (0u64, 0u64);
    while (count > 0 && n < count) || (count == 0 && bytes < total) {
        // Sizes vary ±50 % around the mean.
        let s = size / 2 + rng.below(size as u64 + 1) as usize;
        let (from, msg) = message(&mut rng, n, s);
        // Inbox gets the most.
        let mb = match rng.below(10) {
            0..=3 => 0,
            k => (k as usize % 4) + 1,
        };
        write_mbox_entry(&mut files[mb], &from, &msg).expect("write mbox");
        n += 1;
        bytes += msg.len() as u64;
    }
    for f in files {
        f.into_inner().expect("flush").sync_all().expect("sync");
    }
    let tmp = work.path().join("archive.tgz");
    {
        let gz = flate2::write::GzEncoder::new(
            BufWriter::new(std::fs::File::create(&tmp).expect("create")),
            flate2::Compression::default(),
        );
        let mut tar = tar::Builder::new(gz);
        for m in MAILBOXES {
            let name = format!("{m}.mbox");
            tar.append_path_with_name(work.path().join(&name), &name)
                .expect("tar");
        }
        tar.into_inner()
            .expect("tar")
            .finish()
            .expect("gzip")
            .flush()
            .expect("flush");
    }
    std::fs::rename(&tmp, &path).expect("rename");
    std::fs::write(
        &meta,
        serde_json::to_vec(&json!({"messages": n, "mail_bytes": bytes})).expect("json"),
    )
    .expect("meta");
    println!(
        "  made {} ({n} messages, {:.1} MB of mail, {:.1} MB archive) in {:.1} s",
        path.display(),
        bytes as f64 / 1e6,
        file_len(&path) as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    );
    Fixture {
        path,
        messages: n,
        mail_bytes: bytes,
    }
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// A request body fed from a channel (the upload, streamed from disk).
struct ChanBody {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    len: u64,
}

impl hyper::body::Body for ChanBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

/// `POST /account/import` of `archive`, streamed; the import token.
async fn upload(addr: SocketAddr, s: &Session, archive: &Path) -> String {
    let boundary = "loadbench-boundary-5b1e";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"mail.tgz\"\r\nContent-Type: application/gzip\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let len = head.len() as u64 + file_len(archive) + tail.len() as u64;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let archive = archive.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let _ = tx.blocking_send(Bytes::from(head));
        let mut f = std::fs::File::open(&archive).expect("open archive");
        loop {
            let mut buf = vec![0u8; 256 * 1024];
            let n = f.read(&mut buf).expect("read archive");
            if n == 0 {
                break;
            }
            buf.truncate(n);
            if tx.blocking_send(Bytes::from(buf)).is_err() {
                return;
            }
        }
        let _ = tx.blocking_send(Bytes::from(tail));
    });
    let req = Request::post("/account/import")
        .header("host", "bench")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("content-length", len)
        .header("cookie", &s.cookie)
        .header("x-mox-csrf", &s.csrf)
        .body(ChanBody { rx, len })
        .expect("req");
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("hs");
    tokio::spawn(conn);
    let r = sender.send_request(req).await.expect("upload");
    let status = r.status().as_u16();
    let body = r.into_body().collect().await.expect("body").to_bytes();
    let v: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("import answer: {status} {}", String::from_utf8_lossy(&body)));
    v["Token"]
        .as_str()
        .unwrap_or_else(|| panic!("import refused: {status} {v}"))
        .to_string()
}

/// Follows an import's progress stream to its end: (`done`/`aborted`,
/// messages counted, problems).
async fn follow(addr: SocketAddr, token: &str) -> (String, u64, u64) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("hs");
    tokio::spawn(conn);
    let req = Request::get(format!("/account/importprogress?token={token}"))
        .header("host", "bench")
        .body(Full::new(Bytes::new()))
        .expect("req");
    let r = sender.send_request(req).await.expect("progress");
    assert_eq!(r.status(), 200, "progress stream");
    let mut body = r.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    let mut problems = 0;
    while let Some(f) = body.frame().await {
        let Ok(data) = f.expect("frame").into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(i) = buf.windows(2).position(|w| w == b"\n\n") {
            let ev: Vec<u8> = buf.drain(..i + 2).collect();
            let ev = String::from_utf8_lossy(&ev);
            let name = ev
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or("");
            let data: Value = ev
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or(Value::Null);
            match name {
                "count" => {
                    let mb = data["Mailbox"].as_str().unwrap_or("").to_string();
                    counts.insert(mb, data["Count"].as_u64().unwrap_or(0));
                }
                "problem" => {
                    problems += 1;
                    if problems <= 3 {
                        println!("  problem: {}", data["Message"]);
                    }
                }
                "done" | "aborted" => return (name.to_string(), counts.values().sum(), problems),
                _ => {}
            }
        }
    }
    ("eof".into(), counts.values().sum(), problems)
}

/// Bytes of mail the account holds (`Account().StorageUsed`).
async fn storage_used(addr: SocketAddr, s: &Session) -> u64 {
    let (_, _, body) = one(
        addr,
        api(
            "/account/api/Account",
            &s.cookie,
            &s.csrf,
            b"{\"params\":[]}",
        ),
    )
    .await
    .expect("Account");
    let v: Value = serde_json::from_slice(&body).expect("json");
    v["result"]["StorageUsed"].as_u64().expect("StorageUsed")
}

/// Samples the server's VmRSS every 10 ms until `stop`: the maximum, KiB.
fn rss_sampler(pid: u32, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut max = rss_kib(pid);
        while !stop.load(Ordering::Relaxed) {
            max = max.max(rss_kib(pid));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        max.max(rss_kib(pid))
    })
}

/// One import over HTTP, from the start of the upload to `done`.
struct ImportRun {
    secs: f64,
    upload_secs: f64,
    messages: u64,
    stored_bytes: u64,
    rss_before: u64,
    rss_max: u64,
}

async fn import(addr: SocketAddr, pid: u32, s: &Session, fx: &Fixture) -> ImportRun {
    let used0 = storage_used(addr, s).await;
    let rss_before = rss_kib(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = rss_sampler(pid, stop.clone());
    let t0 = Instant::now();
    let token = upload(addr, s, &fx.path).await;
    let upload_secs = t0.elapsed().as_secs_f64();
    let (end, counted, problems) = follow(addr, &token).await;
    let secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let rss_max = sampler.await.expect("sampler");
    assert_eq!(end, "done", "import of {} ended {end}", fx.path.display());
    assert_eq!(problems, 0, "import problems");
    assert_eq!(
        counted, fx.messages,
        "messages counted by the progress stream"
    );
    let stored_bytes = storage_used(addr, s).await - used0;
    assert_eq!(
        stored_bytes, fx.mail_bytes,
        "bytes stored = bytes generated"
    );
    ImportRun {
        secs,
        upload_secs,
        messages: counted,
        stored_bytes,
        rss_before,
        rss_max,
    }
}

impl ImportRun {
    fn json(&self, archive: u64) -> Value {
        json!({"messages": self.messages, "mail_bytes": self.stored_bytes, "archive_bytes": archive,
               "secs": round3(self.secs), "upload_secs": round3(self.upload_secs),
               "messages_per_s": (self.messages as f64 / self.secs).round(),
               "mail_mb_per_s": round1(self.stored_bytes as f64 / 1e6 / self.secs),
               "rss_kib_before": self.rss_before, "rss_kib_max": self.rss_max})
    }
    fn row(&self, name: &str) {
        println!(
            "{name:<44} {:>8} msgs {:>7.1} MB {:>7.2} s {:>8.0} msg/s {:>6.1} MB/s  RSS {} -> max {} KiB",
            self.messages,
            self.stored_bytes as f64 / 1e6,
            self.secs,
            self.messages as f64 / self.secs,
            self.stored_bytes as f64 / 1e6 / self.secs,
            self.rss_before,
            self.rss_max
        );
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Sign-in and session-check latencies of accounts other than the importing one.
struct Probe {
    signin: Histogram<u64>,
    check: Histogram<u64>,
    check_errors: u64,
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

impl Probe {
    fn json(&self) -> Value {
        if self.signin.is_empty() {
            json!({"n": self.check.len(), "errors": self.check_errors, "p50_ms": ms(&self.check, 0.5), "p99_ms": ms(&self.check, 0.99), "max_ms": self.check.max() as f64 / 1000.0})
        } else {
            json!({"n": self.signin.len(), "p50_ms": ms(&self.signin, 0.5), "p99_ms": ms(&self.signin, 0.99), "max_ms": self.signin.max() as f64 / 1000.0})
        }
    }
    fn rows(&self, when: &str) {
        for (what, h) in [("sign-in", &self.signin), ("session check", &self.check)] {
            if h.is_empty() {
                continue;
            }
            println!(
                "  {what:<14} {when:<34} n {:>6}  p50 {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms",
                h.len(),
                ms(h, 0.5),
                ms(h, 0.99),
                h.max() as f64 / 1000.0
            );
        }
    }
}

/// What a probe does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ProbeKind {
    /// Sequential sign-ins of [`SIGNER`] (LoginPrep + Login).
    SignIn,
    /// One session check of the checker account every 2 ms on a keep-alive
    /// connection.
    Check,
}

/// Runs `kind` until `stop`.
fn probe(
    addr: SocketAddr,
    kind: ProbeKind,
    checker: Session,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Probe> {
    tokio::spawn(async move {
        let mut h = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("h");
        if kind == ProbeKind::SignIn {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                login(addr, SIGNER.0, SIGNER.1).await;
                let _ = h.record(t.elapsed().as_micros().max(1) as u64);
            }
            return Probe {
                signin: h,
                check: Histogram::new_with_bounds(1, 600_000_000, 3).expect("h"),
                check_errors: 0,
            };
        }
        let errors = AtomicU64::new(0);
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let _ = stream.set_nodelay(true);
        let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("hs");
        tokio::spawn(conn);
        let mut tick = tokio::time::interval(Duration::from_millis(2));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let t = Instant::now();
            let req = api(
                "/account/api/Version",
                &checker.cookie,
                &checker.csrf,
                b"{\"params\":[]}",
            );
            match tx.send_request(req).await {
                Ok(r) => {
                    let ok = r.status() == 200;
                    let _ = r.into_body().collect().await;
                    let _ = h.record(t.elapsed().as_micros().max(1) as u64);
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(_) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        Probe {
            signin: Histogram::new_with_bounds(1, 600_000_000, 3).expect("h"),
            check: h,
            check_errors: errors.load(Ordering::Relaxed),
        }
    })
}

/// The probe for `dur` with nothing else running.
async fn quiet_probe(addr: SocketAddr, kind: ProbeKind, checker: &Session, dur: Duration) -> Probe {
    let stop = Arc::new(AtomicBool::new(false));
    let p = probe(addr, kind, checker.clone(), stop.clone());
    tokio::time::sleep(dur).await;
    stop.store(true, Ordering::Relaxed);
    p.await.expect("probe")
}

/// `POST /account/export` of the whole account; (seconds, archive bytes, peak RSS KiB).
async fn export(addr: SocketAddr, pid: u32, s: &Session, format: &str) -> (f64, u64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = rss_sampler(pid, stop.clone());
    let t0 = Instant::now();
    let form = format!(
        "csrf={}&format={format}&archive=tgz&mailbox=&recursive=on",
        s.csrf
    );
    let req = Request::post("/account/export")
        .header("host", "bench")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", &s.cookie)
        .body(Full::new(Bytes::from(form)))
        .expect("req");
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("hs");
    tokio::spawn(conn);
    let r = sender.send_request(req).await.expect("export");
    assert_eq!(r.status(), 200, "export {format}");
    let mut body = r.into_body();
    let mut n = 0u64;
    while let Some(f) = body.frame().await {
        if let Ok(d) = f.expect("frame").into_data() {
            n += d.len() as u64;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    (secs, n, sampler.await.expect("sampler"))
}

const SIGNER: (&str, &str) = ("signer@localhost", "signerpassword");

/// Runs the section; its figures go into `report["mail"]`.
pub async fn run(
    quick: bool,
    bin: &Path,
    server_cpu: Option<usize>,
    report: &mut serde_json::Map<String, Value>,
) {
    println!("-- import/export (HTTP, upload to done) --");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let cache = root.join("target/loadbench-mail");
    let big_total: u64 = if quick { 100 << 20 } else { 1 << 30 };
    let small = fixture(&cache, "small", 10_000, 2_500, 0);
    let large = fixture(&cache, "large", 1_000, 50_000, 0);
    let big = fixture(&cache, "big", 0, 50_000, big_total);
    let many = fixture(&cache, "many", 100_000, 2_500, 0);

    let dir = tempfile::tempdir().expect("tempdir");
    let importers = ["small", "large", "big", "many", "many2"];
    {
        let stores = Stores::open(&dir.path().join("data")).expect("open");
        for name in importers.iter().chain(&["checker"]) {
            postern::setup::create_account(
                &stores,
                name,
                &format!("{name}@localhost"),
                "benchpassword",
                HashCost::minimal(),
                0,
            )
            .expect("account");
        }
        postern::setup::create_account(
            &stores,
            "signer",
            SIGNER.0,
            SIGNER.1,
            HashCost::default(),
            0,
        )
        .expect("signer");
    }
    let port = super::free_port();
    let config = write_config(dir.path(), port, None);
    let mut cfg = std::fs::read_to_string(&config).expect("config");
    cfg.push_str("[mail]\nimport_upload_bytes = 4294967296\n");
    std::fs::write(&config, cfg).expect("config");
    let (server, _) = start_server(bin, &config, port, server_cpu).await;
    let (addr, pid) = (server.addr, server.child.id());
    let mut sessions = std::collections::HashMap::new();
    for name in importers.iter().chain(&["checker"]) {
        sessions.insert(
            *name,
            login(addr, &format!("{name}@localhost"), "benchpassword").await,
        );
    }
    let mut out = serde_json::Map::new();
    out.insert("big_target_bytes".into(), json!(big_total));

    for (label, key, fx) in [
        ("import 10,000 small messages", "small", &small),
        ("import 1,000 messages of ~50 KB", "large", &large),
    ] {
        let r = import(addr, pid, &sessions[key], fx).await;
        r.row(label);
        out.insert(format!("import_{key}"), r.json(file_len(&fx.path)));
    }

    // Peak RSS during the big import, nothing else running.
    let r = import(addr, pid, &sessions["big"], &big).await;
    r.row(if quick {
        "import ~100 MiB (~50 KB messages)"
    } else {
        "import ~1 GiB (~50 KB messages)"
    });
    out.insert("import_big".into(), r.json(file_len(&big.path)));

    // Another account's sign-ins, and a third account's session checks,
    // each quiet and then during an import of 100,000 small messages.
    let quiet_dur = Duration::from_secs(if quick { 3 } else { 10 });
    let checker = sessions["checker"].clone();
    let mut probes = serde_json::Map::new();
    for (kind, key, name) in [
        (ProbeKind::SignIn, "many", "signin"),
        (ProbeKind::Check, "many2", "check"),
    ] {
        let quiet = quiet_probe(addr, kind, &checker, quiet_dur).await;
        quiet.rows("quiet");
        let stop = Arc::new(AtomicBool::new(false));
        let p = probe(addr, kind, checker.clone(), stop.clone());
        let r = import(addr, pid, &sessions[key], &many).await;
        stop.store(true, Ordering::Relaxed);
        let p = p.await.expect("probe");
        r.row("import 100,000 small messages");
        p.rows("during that import");
        probes.insert(
            name.into(),
            json!({"quiet": quiet.json(), "during_import": p.json(), "import": r.json(file_len(&many.path))}),
        );
    }
    out.insert("other_accounts_during_import".into(), Value::Object(probes));

    // Export of the big account.
    let mut exports = serde_json::Map::new();
    for format in ["mbox", "maildir"] {
        let rss0 = rss_kib(pid);
        let (secs, bytes, rss_max) = export(addr, pid, &sessions["big"], format).await;
        println!(
            "{:<44} {:>7.1} MB of mail {:>7.2} s {:>6.1} MB/s of mail, {:.1} MB {format}.tgz ({:.1} MB/s)  RSS {rss0} -> max {rss_max} KiB",
            format!("export big account as {format}.tgz"),
            big.mail_bytes as f64 / 1e6,
            secs,
            big.mail_bytes as f64 / 1e6 / secs,
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / secs,
        );
        exports.insert(
            format!("{format}_tgz"),
            json!({"mail_bytes": big.mail_bytes, "archive_bytes": bytes, "secs": round3(secs),
                   "mail_mb_per_s": round1(big.mail_bytes as f64 / 1e6 / secs),
                   "archive_mb_per_s": round1(bytes as f64 / 1e6 / secs),
                   "rss_kib_before": rss0, "rss_kib_max": rss_max}),
        );
    }
    out.insert("export_big".into(), Value::Object(exports));
    stop_server(server);
    report.insert("mail".into(), Value::Object(out));
}
