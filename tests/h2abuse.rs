//! HTTP/2 abuse against the real TLS listener: rapid reset (HEADERS and
//! RST_STREAM in a loop), more concurrent streams than allowed, a header
//! list over the bound and a CONTINUATION flood, and PING and SETTINGS
//! floods. The attacks are written as raw frames over tokio-rustls (a real
//! HTTP/2 client refuses to misbehave); the well-behaved client is hyper's
//! HTTP/2 client on another connection. Each test asserts the server's
//! answer (GOAWAY with its code, refused streams, 431), that the
//! well-behaved client is served during and after the attack, and that the
//! server shuts down cleanly afterwards. The bounds are
//! `postern::http::server::H2_*` (docs/hardening.md).

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use postern::config::TlsConfig;
use postern::http::server::{H2_MAX_HEADER_LIST, H2_MAX_LOCAL_ERROR_RESETS, H2_MAX_STREAMS};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, ReadHalf, WriteHalf};
use tokio::sync::mpsc;

/// Liveness bound for anything we wait for; never a performance claim.
const PATIENCE: Duration = Duration::from_secs(30);

const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const CANCEL: u32 = 0x8;
const REFUSED_STREAM: u32 = 0x7;
const ENHANCE_YOUR_CALM: u32 = 0xb;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn tls_app() -> (TestApp, PathBuf) {
    let certs = tempfile::tempdir().expect("tempdir").keep();
    let (cert, key) = postern::http::tls::self_signed(&certs, &["localhost".into()]).expect("cert");
    let t = TestApp::start_configured(&[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)], 1, move |c| {
        c.listeners[0].tls = Some(TlsConfig { cert, key });
    })
    .await;
    (t, certs.join("cert.pem"))
}

async fn tls_connect(addr: SocketAddr, cert: &Path) -> Tls {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).expect("pem") {
        roots.add(c.expect("cert")).expect("add root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .expect("tls handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls
}

/// A well-behaved HTTP/2 client on a new connection is served (LoginPrep
/// answers 200 with a login cookie).
async fn assert_served(addr: SocketAddr, cert: &Path) {
    let call = async {
        let tls = tls_connect(addr, cert).await;
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .expect("h2 handshake");
        tokio::spawn(conn);
        let req = hyper::Request::builder()
            .method("POST")
            .uri(format!(
                "https://localhost:{}/account/api/LoginPrep",
                addr.port()
            ))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(b"{\"params\":[]}")))
            .expect("request");
        let resp = send.send_request(req).await.expect("h2 request");
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert!(body.starts_with(b"{\"result\":"), "{body:?}");
    };
    tokio::time::timeout(PATIENCE, call)
        .await
        .expect("well-behaved client not served in time");
}

/// One HTTP/2 frame.
#[derive(Debug, Clone)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

impl Frame {
    /// The debug data of a GOAWAY (h2 names the bound that was hit).
    fn debug(&self) -> String {
        String::from_utf8_lossy(&self.payload[8..]).into_owned()
    }

    /// The error code of a RST_STREAM or GOAWAY.
    fn code(&self) -> u32 {
        let at = if self.kind == GOAWAY { 4 } else { 0 };
        u32::from_be_bytes(self.payload[at..at + 4].try_into().expect("4 bytes"))
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("small");
    let mut v = len.to_be_bytes()[1..].to_vec();
    v.extend_from_slice(&[kind, flags]);
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// An HPACK integer with an `n`-bit prefix under `first`.
fn hpack_int(out: &mut Vec<u8>, first: u8, n: u32, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | u8::try_from(v).expect("small"));
        return;
    }
    out.push(first | u8::try_from(max).expect("small"));
    v -= max;
    while v >= 128 {
        out.push(0x80 | u8::try_from(v % 128).expect("7 bits"));
        v /= 128;
    }
    out.push(u8::try_from(v).expect("7 bits"));
}

fn hpack_str(out: &mut Vec<u8>, s: &[u8]) {
    hpack_int(out, 0, 7, s.len());
    out.extend_from_slice(s);
}

/// A field "literal without indexing" with a static-table name.
fn hpack_indexed_name(out: &mut Vec<u8>, index: usize, value: &[u8]) {
    hpack_int(out, 0, 4, index);
    hpack_str(out, value);
}

/// A field "literal without indexing" with a new name.
fn hpack_new_name(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0);
    hpack_str(out, name);
    hpack_str(out, value);
}

/// The header block of a request (`:method` from the static table: 2 GET,
/// 3 POST).
fn request_block(method_index: u8, path: &str) -> Vec<u8> {
    let mut b = vec![0x80 | method_index, 0x87];
    hpack_indexed_name(&mut b, 4, path.as_bytes());
    hpack_indexed_name(&mut b, 1, b"localhost");
    b
}

/// A LoginPrep POST whose body never comes: the stream stays open.
fn held_request(stream: u32) -> Vec<u8> {
    let mut b = request_block(3, "/account/api/LoginPrep");
    hpack_indexed_name(&mut b, 28, b"13");
    hpack_indexed_name(&mut b, 31, b"application/json");
    frame(HEADERS, END_HEADERS, stream, &b)
}

/// Whether a response header block says `:status 431`: the value as a
/// literal, plain or Huffman-coded (`4` `3` `1` = 011010 011001 00001, padded
/// with ones: 69 90 ff).
fn is_431(block: &[u8]) -> bool {
    let plain = [0x03, b'4', b'3', b'1'];
    let huffman = [0x83, 0x69, 0x90, 0xff];
    block.windows(4).any(|w| w == plain || w == huffman)
}

/// A raw HTTP/2 connection: frames are written by hand and read by a task.
struct Raw {
    w: WriteHalf<Tls>,
    frames: mpsc::UnboundedReceiver<Frame>,
    /// The server's first SETTINGS.
    settings: Vec<(u16, u32)>,
}

async fn read_frames(mut r: ReadHalf<Tls>, tx: mpsc::UnboundedSender<Frame>) {
    loop {
        let mut head = [0u8; 9];
        if r.read_exact(&mut head).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        if r.read_exact(&mut payload).await.is_err() {
            return;
        }
        let stream = u32::from_be_bytes(head[5..9].try_into().expect("4 bytes")) & 0x7fff_ffff;
        let f = Frame {
            kind: head[3],
            flags: head[4],
            stream,
            payload,
        };
        if tx.send(f).is_err() {
            return;
        }
    }
}

impl Raw {
    /// Connects, exchanges prefaces and acknowledges the server's SETTINGS.
    async fn open(addr: SocketAddr, cert: &Path) -> Raw {
        let (r, mut w) = tokio::io::split(tls_connect(addr, cert).await);
        let (tx, frames) = mpsc::unbounded_channel();
        tokio::spawn(read_frames(r, tx));
        let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        preface.extend(frame(SETTINGS, 0, 0, &[]));
        w.write_all(&preface).await.expect("preface");
        let mut c = Raw {
            w,
            frames,
            settings: Vec::new(),
        };
        // The server's SETTINGS and its ACK of ours, in either order.
        let (mut server, mut acked) = (None, false);
        while server.is_none() || !acked {
            let f = c
                .until(|f| f.kind == SETTINGS)
                .await
                .expect("server SETTINGS");
            if f.flags & ACK != 0 {
                acked = true;
            } else {
                server = Some(f);
            }
        }
        let s = server.expect("server SETTINGS");
        c.settings = s
            .payload
            .chunks(6)
            .map(|p| {
                (
                    u16::from_be_bytes([p[0], p[1]]),
                    u32::from_be_bytes([p[2], p[3], p[4], p[5]]),
                )
            })
            .collect();
        c.send(&frame(SETTINGS, ACK, 0, &[])).await;
        c
    }

    fn setting(&self, id: u16) -> Option<u32> {
        self.settings
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, v)| *v)
    }

    /// Writes bytes; a server that already closed is not an error here.
    async fn send(&mut self, bytes: &[u8]) {
        let _ = self.w.write_all(bytes).await;
        let _ = self.w.flush().await;
    }

    /// The next frame, `None` once the server closed.
    async fn next(&mut self) -> Option<Frame> {
        tokio::time::timeout(PATIENCE, self.frames.recv())
            .await
            .expect("server neither sent a frame nor closed")
    }

    /// Skips frames until one matches; `None` if the server closed first.
    async fn until(&mut self, want: impl Fn(&Frame) -> bool) -> Option<Frame> {
        loop {
            let f = self.next().await?;
            if want(&f) {
                return Some(f);
            }
        }
    }

    /// The connection is still open and answering: a PING comes back.
    async fn assert_alive(&mut self) {
        self.send(&frame(PING, 0, 0, b"alive?!!")).await;
        let ack = self
            .until(|f| f.kind == PING && f.flags & ACK != 0)
            .await
            .expect("connection closed");
        assert_eq!(ack.payload, b"alive?!!");
    }

    /// The server closes the connection (after whatever it still sends).
    async fn assert_closed(&mut self) {
        while self.next().await.is_some() {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_gets_goaway_enhance_your_calm() {
    let (t, cert) = tls_app().await;
    let mut c = Raw::open(t.addr, &cert).await;
    // Streams opened and cancelled at once, a thousand times, in one write.
    let block = request_block(2, "/account/");
    let mut flood = Vec::new();
    for i in 0..1000u32 {
        let id = 2 * i + 1;
        flood.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, &block));
        flood.extend(frame(RST_STREAM, 0, id, &CANCEL.to_be_bytes()));
    }
    c.send(&flood).await;
    assert_served(t.addr, &cert).await;
    let goaway = c
        .until(|f| f.kind == GOAWAY)
        .await
        .expect("GOAWAY before the close");
    assert_eq!(goaway.code(), ENHANCE_YOUR_CALM, "{goaway:?}");
    assert_eq!(goaway.debug(), "too_many_resets");
    c.assert_closed().await;
    assert_served(t.addr, &cert).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_over_the_concurrency_bound_are_refused_then_goaway() {
    let (t, cert) = tls_app().await;
    let mut c = Raw::open(t.addr, &cert).await;
    assert_eq!(
        c.setting(SETTINGS_MAX_CONCURRENT_STREAMS),
        Some(H2_MAX_STREAMS)
    );
    assert_eq!(
        c.setting(SETTINGS_MAX_HEADER_LIST_SIZE),
        Some(H2_MAX_HEADER_LIST)
    );
    // The bound's worth of streams held open (bodies never sent), then 50
    // more: exactly those 50 are refused, and the connection goes on.
    let mut out = Vec::new();
    let max = H2_MAX_STREAMS;
    for i in 0..max + 50 {
        out.extend(held_request(2 * i + 1));
    }
    c.send(&out).await;
    let want: BTreeSet<u32> = (max..max + 50).map(|i| 2 * i + 1).collect();
    let mut refused = BTreeSet::new();
    while refused.len() < want.len() {
        let f = c
            .until(|f| f.kind == RST_STREAM || f.kind == GOAWAY)
            .await
            .expect("closed");
        assert_eq!(f.kind, RST_STREAM, "{f:?}");
        assert_eq!(f.code(), REFUSED_STREAM, "{f:?}");
        refused.insert(f.stream);
    }
    assert_eq!(refused, want);
    c.assert_alive().await;
    assert_served(t.addr, &cert).await;

    // Keep opening streams beyond the bound: after the bound on refusals
    // the connection gets GOAWAY ENHANCE_YOUR_CALM and is closed.
    let mut more = Vec::new();
    let first = 2 * (max + 50) + 1;
    for i in 0..2 * H2_MAX_LOCAL_ERROR_RESETS as u32 {
        more.extend(held_request(first + 2 * i));
    }
    c.send(&more).await;
    let mut n = refused.len();
    let goaway = loop {
        let f = c
            .until(|f| f.kind == RST_STREAM || f.kind == GOAWAY)
            .await
            .expect("GOAWAY before the close");
        if f.kind == GOAWAY {
            break f;
        }
        assert_eq!(f.code(), REFUSED_STREAM, "{f:?}");
        n += 1;
    };
    assert_eq!(goaway.code(), ENHANCE_YOUR_CALM, "{goaway:?}");
    assert_eq!(goaway.debug(), "too_many_internal_resets");
    assert_eq!(n, H2_MAX_LOCAL_ERROR_RESETS, "refusals before the GOAWAY");
    c.assert_closed().await;
    assert_served(t.addr, &cert).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_list_over_the_bound_is_431_and_continuation_flood_is_goaway() {
    let (t, cert) = tls_app().await;
    let mut c = Raw::open(t.addr, &cert).await;
    // About 80 KiB of header fields in frames of the default 16 KiB
    // (HEADERS and four CONTINUATION): the stream is answered 431 and ended,
    // the connection stays.
    let mut block = request_block(2, "/account/");
    let value = vec![b'v'; 200];
    let mut i = 0;
    while block.len() < 80 * 1024 {
        hpack_new_name(&mut block, format!("x-h{i}").as_bytes(), &value);
        i += 1;
    }
    let pieces: Vec<&[u8]> = block.chunks(16 * 1024).collect();
    let mut out = Vec::new();
    for (n, p) in pieces.iter().enumerate() {
        let last = n + 1 == pieces.len();
        let (kind, flags) = match (n, last) {
            (0, _) => (HEADERS, END_STREAM),
            (_, true) => (CONTINUATION, END_HEADERS),
            _ => (CONTINUATION, 0),
        };
        out.extend(frame(kind, flags, 1, p));
    }
    c.send(&out).await;
    let answer = c
        .until(|f| f.stream == 1 || f.kind == GOAWAY)
        .await
        .expect("an answer");
    assert_eq!((answer.kind, answer.stream), (HEADERS, 1), "{answer:?}");
    assert!(is_431(&answer.payload), "{answer:?}");
    assert_eq!(answer.flags & END_STREAM, END_STREAM, "stream ended");
    c.assert_alive().await;
    // A well-behaved request on the same connection is still served.
    c.send(&frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        3,
        &request_block(2, "/account/"),
    ))
    .await;
    let h = c
        .until(|f| f.stream == 3 && (f.kind == HEADERS || f.kind == RST_STREAM))
        .await
        .expect("closed");
    assert_eq!(h.kind, HEADERS, "{h:?}");
    assert_served(t.addr, &cert).await;

    // Endless empty CONTINUATION frames: GOAWAY after a few.
    let mut flood = frame(HEADERS, END_STREAM, 5, &request_block(2, "/account/"));
    for _ in 0..10_000 {
        flood.extend(frame(CONTINUATION, 0, 5, &[]));
    }
    c.send(&flood).await;
    let goaway = c
        .until(|f| f.kind == GOAWAY)
        .await
        .expect("GOAWAY before the close");
    assert_eq!(goaway.code(), ENHANCE_YOUR_CALM, "{goaway:?}");
    assert_eq!(goaway.debug(), "too_many_continuations");
    c.assert_closed().await;

    // hyper's own client sends an oversized header list too: 431.
    let tls = tls_connect(t.addr, &cert).await;
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .uri(format!("https://localhost:{}/account/", t.addr.port()))
        .header("x-big", "b".repeat(70 * 1024))
        .body(Full::new(Bytes::new()))
        .expect("request");
    match send.send_request(req).await {
        Ok(resp) => assert_eq!(resp.status(), 431),
        Err(e) => panic!("no 431: {e}"),
    }
    assert_served(t.addr, &cert).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_and_settings_floods_are_answered_one_for_one() {
    let (t, cert) = tls_app().await;
    let c = Raw::open(t.addr, &cert).await;
    const PINGS: u64 = 20_000;
    const SETTINGS_FRAMES: usize = 2_000;
    let mut flood = Vec::new();
    for i in 0..PINGS {
        flood.extend(frame(PING, 0, 0, &i.to_be_bytes()));
        if i % 10 == 0 {
            let mut s = SETTINGS_INITIAL_WINDOW_SIZE.to_be_bytes().to_vec();
            s.extend(65_535u32.to_be_bytes());
            flood.extend(frame(SETTINGS, 0, 0, &s));
        }
    }
    let Raw {
        mut w, mut frames, ..
    } = c;
    let writer = tokio::spawn(async move {
        w.write_all(&flood).await.expect("server kept reading");
        w
    });
    // A well-behaved client is served while the flood is being answered.
    let good = tokio::spawn({
        let (addr, cert) = (t.addr, cert.clone());
        async move { assert_served(addr, &cert).await }
    });
    let mut next_ping = 0u64;
    let mut settings_acks = 0;
    while next_ping < PINGS || settings_acks < SETTINGS_FRAMES {
        let f = tokio::time::timeout(PATIENCE, frames.recv())
            .await
            .expect("flood not answered in time")
            .expect("connection closed");
        match (f.kind, f.flags & ACK != 0) {
            (PING, true) => {
                assert_eq!(f.payload, next_ping.to_be_bytes(), "PING ACKs in order");
                next_ping += 1;
            }
            (SETTINGS, true) => settings_acks += 1,
            (GOAWAY, _) | (RST_STREAM, _) => panic!("{f:?}"),
            _ => {}
        }
    }
    assert_eq!(next_ping, PINGS);
    assert_eq!(settings_acks, SETTINGS_FRAMES);
    good.await.expect("well-behaved client");
    // The flooded connection still serves a request.
    let mut w = writer.await.expect("writer");
    w.write_all(&frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &request_block(2, "/account/"),
    ))
    .await
    .expect("write");
    loop {
        let f = tokio::time::timeout(PATIENCE, frames.recv())
            .await
            .expect("request not answered")
            .expect("connection closed");
        if f.stream == 1 && f.kind == HEADERS {
            break;
        }
        assert_ne!(f.kind, GOAWAY, "{f:?}");
    }
    assert_served(t.addr, &cert).await;
    t.stop().await;
}
