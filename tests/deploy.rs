//! Deployment options over real sockets: forwarded mode behind trusted
//! proxies, session lifetimes from the configuration, the rate-limit
//! allowlist, `__Secure-` cookie names, and TLS listeners (HTTP/1.1 and
//! HTTP/2, certificate reload).

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use postern::config::{Config, TlsConfig};
use serde_json::json;

const ACCOUNTS: &[(&str, &str, &str)] = &[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)];

fn forwarded(trusted: &[&str]) -> impl FnOnce(&mut Config) {
    let trusted: Vec<_> = trusted.iter().map(|s| s.parse().expect("cidr")).collect();
    move |c: &mut Config| {
        c.listeners[0].forwarded = true;
        c.listeners[0].trusted_proxies = trusted;
    }
}

fn xff(b: &mut Browser, v: &str) {
    b.extra_headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case("x-forwarded-for"));
    b.extra_headers.push(("x-forwarded-for".into(), v.into()));
}

#[tokio::test]
async fn trusted_proxy_right_most_entry_is_the_client() {
    let t = TestApp::start_configured(ACCOUNTS, 1, forwarded(&["127.0.0.1"])).await;
    // The rate limiter is keyed on the right-most untrusted entry: forging
    // the left part of the header changes nothing.
    let mut b = t.browser().with_ip("127.0.0.1");
    for i in 0..10 {
        xff(&mut b, &format!("10.9.9.{i}, 198.51.100.7"));
        let r = b
            .login("/account/", Some(DEMO_ADDRESS), "wrong-password")
            .await;
        assert_eq!(r.error_code().as_deref(), Some("user:loginFailed"), "{i}");
    }
    xff(&mut b, "203.0.113.1, 198.51.100.7");
    let r = b
        .login("/account/", Some(DEMO_ADDRESS), DEMO_PASSWORD)
        .await;
    assert_eq!(r.error_message(), "too many authentication attempts");
    // Another client behind the same proxy is not affected.
    xff(&mut b, "198.51.100.200");
    b.login_account().await;
    let v = b.api("/account/", "Version", json!([])).await;
    assert_eq!(v.status, 200, "{}", v.text());
    // A trusted proxy appended after the client is skipped.
    let mut c = t.browser().with_ip("127.0.0.1");
    xff(&mut c, "198.51.100.7, 127.0.0.1");
    let r = c
        .login("/account/", Some(DEMO_ADDRESS), DEMO_PASSWORD)
        .await;
    assert_eq!(r.error_message(), "too many authentication attempts");
    t.stop().await;
}

#[tokio::test]
async fn untrusted_peer_headers_are_ignored() {
    let t = TestApp::start_configured(ACCOUNTS, 1, forwarded(&["127.0.0.2"])).await;
    let mut b = t.browser().with_ip("127.0.0.1");
    b.extra_headers
        .push(("x-forwarded-proto".into(), "https".into()));
    for i in 0..10 {
        xff(&mut b, &format!("198.51.100.{i}"));
        let r = b
            .login("/account/", Some(DEMO_ADDRESS), "wrong-password")
            .await;
        assert_eq!(r.error_code().as_deref(), Some("user:loginFailed"), "{i}");
    }
    // Every attempt counted against the peer, whatever the header said.
    xff(&mut b, "198.51.100.99");
    let r = b
        .login("/account/", Some(DEMO_ADDRESS), DEMO_PASSWORD)
        .await;
    assert_eq!(r.error_message(), "too many authentication attempts");
    // And X-Forwarded-Proto did not make cookies Secure.
    let prep = b.api("/account/", "LoginPrep", json!([])).await;
    let sc = prep.set_cookies();
    assert!(!sc[0].contains("Secure"), "{sc:?}");
    assert!(prep.header("strict-transport-security").is_none());
    t.stop().await;
}

#[tokio::test]
async fn forwarded_proto_https_gives_secure_cookies_and_hsts() {
    let t = TestApp::start_configured(ACCOUNTS, 1, forwarded(&["127.0.0.0/8"])).await;
    let mut b = t.browser().with_ip("127.0.0.1");
    xff(&mut b, "198.51.100.1");
    b.extra_headers
        .push(("x-forwarded-proto".into(), "https".into()));
    let r = b.login_account().await;
    let sc = r.set_cookies();
    assert!(
        sc.iter().all(|c| c.contains("; Secure")),
        "every cookie Secure: {sc:?}"
    );
    assert_eq!(
        r.header("strict-transport-security").as_deref(),
        Some("max-age=31536000")
    );
    // every answer over https, also one outside the interfaces
    let r = b.request("GET", "/nothing-here", &[], vec![]).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.header("strict-transport-security").as_deref(),
        Some("max-age=31536000")
    );
    // plain http through the proxy: no Secure, no HSTS
    let mut p = t.browser().with_ip("127.0.0.1");
    xff(&mut p, "198.51.100.2");
    p.extra_headers
        .push(("x-forwarded-proto".into(), "http".into()));
    let prep = p.api("/account/", "LoginPrep", json!([])).await;
    assert!(!prep.set_cookies()[0].contains("Secure"));
    assert!(prep.header("strict-transport-security").is_none());
    t.stop().await;
}

#[tokio::test]
async fn forwarded_without_header_is_no_auth_with_proxy_hint() {
    let t = TestApp::start_configured(ACCOUNTS, 1, forwarded(&["127.0.0.1"])).await;
    let mut b = t.browser().with_ip("127.0.0.1");
    // Login cookie lost by a proxy that rewrote the path: the hint.
    let r = b
        .api(
            "/account/",
            "Login",
            json!(["sometoken", DEMO_ADDRESS, DEMO_PASSWORD]),
        )
        .await;
    assert_eq!(r.error_code().as_deref(), Some("user:error"));
    assert_eq!(
        r.error_message(),
        "missing login token cookie (hint: reverse proxy must keep path, for login cookie)"
    );
    // No X-Forwarded-For from the trusted proxy: no client IP.
    let r = b
        .login("/account/", Some(DEMO_ADDRESS), DEMO_PASSWORD)
        .await;
    assert_eq!(
        r.error_code().as_deref(),
        Some("user:noAuth"),
        "{}",
        r.text()
    );
    // With the header it works; the session check without it is noAuth.
    xff(&mut b, "198.51.100.1");
    b.login_account().await;
    b.extra_headers.clear();
    let r = b.api("/account/", "Version", json!([])).await;
    assert_eq!(r.error_code().as_deref(), Some("user:noAuth"));
    assert!(r.error_message().contains("cannot find ip"), "{}", r.text());
    t.stop().await;
}

#[tokio::test]
async fn session_lifetimes_come_from_the_configuration() {
    let t = TestApp::start_configured(ACCOUNTS, 1, |c| {
        c.sessions.webaccount.idle_secs = 3600;
        c.sessions.webaccount.max_lifetime_secs = 3 * 3600;
        c.sessions.webadmin.idle_secs = 600;
    })
    .await;
    let mut b = t.browser();
    b.login_account().await;
    let mut a = t.browser();
    a.login_admin().await;
    // used every 50 minutes, the account session lives until the absolute limit
    for _ in 0..3 {
        t.clock.advance(Duration::from_secs(50 * 60));
        let r = b.api("/account/", "Version", json!([])).await;
        assert!(r.error_code().is_none(), "{}", r.text());
    }
    // the admin session's idle lifetime is 10 minutes
    let r = a.api("/admin/", "Version", json!([])).await;
    assert_eq!(r.error_code().as_deref(), Some("user:badAuth"));
    assert_eq!(r.error_message(), "session expired");
    t.clock.advance(Duration::from_secs(40 * 60));
    let r = b.api("/account/", "Version", json!([])).await;
    assert_eq!(r.error_message(), "session expired", "past 3 h absolute");
    // idle: a new session unused for over an hour expires
    let mut c = t.browser();
    c.login_account().await;
    t.clock.advance(Duration::from_secs(3601));
    let r = c.api("/account/", "Version", json!([])).await;
    assert_eq!(r.error_message(), "session expired");
    t.stop().await;
}

#[tokio::test]
async fn allowlisted_addresses_are_never_limited() {
    let t = TestApp::start_configured(ACCOUNTS, 1, |c| {
        c.ratelimit.allowlist = vec!["127.0.0.9".parse().expect("cidr")];
    })
    .await;
    let mut b = t.browser().with_ip("127.0.0.9");
    for i in 0..15 {
        let r = b
            .login("/account/", Some(DEMO_ADDRESS), "wrong-password")
            .await;
        assert_eq!(r.error_code().as_deref(), Some("user:loginFailed"), "{i}");
    }
    b.login_account().await;
    // a neighbour that is not on the list is limited after 10
    let mut n = t.browser().with_ip("127.0.0.10");
    for _ in 0..10 {
        n.login("/account/", Some(DEMO_ADDRESS), "wrong-password")
            .await;
    }
    let r = n
        .login("/account/", Some(DEMO_ADDRESS), DEMO_PASSWORD)
        .await;
    assert_eq!(r.error_message(), "too many authentication attempts");
    t.stop().await;
}

#[tokio::test]
async fn secure_cookie_prefix_over_https() {
    let t = TestApp::start_configured(ACCOUNTS, 1, |c| {
        forwarded(&["127.0.0.1"])(c);
        c.listeners[0].interfaces[0].secure_cookie_prefix = true;
    })
    .await;
    let mut b = t.browser().with_ip("127.0.0.1");
    xff(&mut b, "198.51.100.1");
    b.extra_headers
        .push(("x-forwarded-proto".into(), "https".into()));
    let r = b.login_account().await;
    let sc = r.set_cookies();
    assert!(
        sc[0].starts_with("__Secure-webaccountsession=") && sc[0].contains("; Secure"),
        "{sc:?}"
    );
    assert!(sc[1].starts_with("__Secure-webaccountlogin=;"), "{sc:?}");
    let v = b.api("/account/", "Version", json!([])).await;
    assert!(v.error_code().is_none(), "{}", v.text());
    // the plain name is not read on this interface over https
    let plain: Vec<_> = b.cookies.clone().into_iter().collect();
    b.cookies.clear();
    for ((n, p), v) in plain {
        b.cookies
            .insert((n.trim_start_matches("__Secure-").to_string(), p), v);
    }
    let v = b.api("/account/", "Version", json!([])).await;
    assert_eq!(v.error_code().as_deref(), Some("user:noAuth"));
    // over plain http the names stay plain
    let mut h = t.browser().with_ip("127.0.0.1");
    xff(&mut h, "198.51.100.2");
    let prep = h.api("/account/", "LoginPrep", json!([])).await;
    assert!(prep.set_cookies()[0].starts_with("webaccountlogin="));
    t.stop().await;
}

// ---- TLS ----

fn tls_client(cert: &std::path::Path, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
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
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

async fn tls_connect(
    addr: std::net::SocketAddr,
    cert: &std::path::Path,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    tls_client(cert, alpn)
        .connect(name, tcp)
        .await
        .expect("tls handshake")
}

fn login_prep_request(addr: std::net::SocketAddr) -> hyper::Request<Full<Bytes>> {
    hyper::Request::builder()
        .method("POST")
        .uri(format!(
            "https://localhost:{}/account/api/LoginPrep",
            addr.port()
        ))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(b"{\"params\":[]}")))
        .expect("request")
}

async fn tls_app() -> (TestApp, std::path::PathBuf) {
    let certs = tempfile::tempdir().expect("tempdir").keep();
    let (cert, key) = postern::http::tls::self_signed(&certs, &["localhost".into()]).expect("cert");
    let t = TestApp::start_configured(ACCOUNTS, 1, move |c| {
        c.listeners[0].tls = Some(TlsConfig { cert, key });
    })
    .await;
    (t, certs)
}

#[tokio::test]
async fn tls_http2_and_http1_with_secure_cookies() {
    let (t, certs) = tls_app().await;
    let cert = certs.join("cert.pem");

    // HTTP/2 by ALPN
    let tls = tls_connect(t.addr, &cert, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let resp = send
        .send_request(login_prep_request(t.addr))
        .await
        .expect("h2 request");
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        cookie.starts_with("webaccountlogin=") && cookie.contains("; Secure"),
        "{cookie}"
    );
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert!(body.starts_with(b"{\"result\":"), "{body:?}");

    // HTTP/1.1 when the client offers only that
    let tls = tls_connect(t.addr, &cert, &[b"http/1.1"]).await;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("h1 handshake");
    tokio::spawn(conn);
    let resp = send
        .send_request(login_prep_request(t.addr))
        .await
        .expect("h1 request");
    assert_eq!(resp.version(), hyper::Version::HTTP_11);
    assert!(
        resp.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .contains("; Secure")
    );
    t.stop().await;
    let _ = std::fs::remove_dir_all(certs);
}

#[tokio::test]
async fn tls_reload_keeps_connections_and_serves_the_new_certificate() {
    let (t, certs) = tls_app().await;
    let cert = certs.join("cert.pem");
    let old = std::fs::read(&cert).expect("read");

    let tls = tls_connect(t.addr, &cert, &[b"h2"]).await;
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);

    // new certificate on disk, reload (what SIGHUP does)
    std::fs::remove_file(&cert).expect("rm");
    std::fs::remove_file(certs.join("key.pem")).expect("rm");
    postern::http::tls::self_signed(&certs, &["localhost".into()]).expect("new cert");
    assert_ne!(std::fs::read(&cert).expect("read"), old);
    t.app.as_ref().expect("app").reload_tls().expect("reload");

    // the open connection keeps working
    let resp = send
        .send_request(login_prep_request(t.addr))
        .await
        .expect("request on the old connection");
    assert_eq!(resp.status(), 200);
    // a new connection trusting only the new certificate succeeds
    let tls = tls_connect(t.addr, &cert, &[b"h2"]).await;
    drop(tls);
    // broken files: reload fails, the listener keeps serving
    std::fs::write(&cert, "garbage").expect("write");
    assert!(t.app.as_ref().expect("app").reload_tls().is_err());
    t.stop().await;
    let _ = std::fs::remove_dir_all(certs);
}

#[tokio::test]
async fn rate_limit_windows_come_from_the_configuration() {
    let t = TestApp::start_configured(ACCOUNTS, 1, |c| {
        c.ratelimit.windows = vec![postern::config::WindowConfig {
            secs: 3600,
            limits: [2, 30, 90],
        }];
    })
    .await;
    let mut b = t.browser().with_ip("127.0.0.31");
    for _ in 0..2 {
        let r = b
            .login("/account/", Some(DEMO_ADDRESS), "wrong-password")
            .await;
        assert_eq!(r.error_code().as_deref(), Some("user:loginFailed"));
    }
    let r = b
        .login("/account/", Some(DEMO_ADDRESS), DEMO_PASSWORD)
        .await;
    assert_eq!(r.error_message(), "too many authentication attempts");
    t.stop().await;
}
