//! The real binary and its signals. `postern serve --config FILE`: a
//! configuration refused naming the key; SIGHUP reloading the TLS
//! certificate; `localserve`'s HTTPS listener; and a sign-in and a use of the
//! session, then SIGTERM. The session tick is 60 s, so only the shutdown
//! flush can have written the use's lifetime extension; the test opens the
//! database file afterwards and finds it there. It also reads the log the
//! binary wrote: one line per request, no password, token or cookie value.

#![cfg(unix)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::json;

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("fits")
}

#[tokio::test]
async fn sigterm_flushes_session_extensions() {
    let dir = tempfile::tempdir().expect("tempdir");
    provision(dir.path(), &[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)]);
    let config = dir.path().join("postern.toml");
    std::fs::write(
        &config,
        r#"
data_dir = "data"
bad_auth_delay_ms = 10
log_level = "info"

[password_hash]
memory_kib = 8
iterations = 1
parallelism = 1

[[listener]]
address = "127.0.0.1:0"

[[listener.interface]]
kind = "webaccount"
prefix = "/account/"
"#,
    )
    .expect("write config");

    let mut child = Command::new(env!("CARGO_BIN_EXE_postern"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn postern");
    let stderr = child.stderr.take().expect("stderr");
    let stderr = std::thread::spawn(move || read_all(stderr));
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read stdout");
    let addr: std::net::SocketAddr = line
        .trim()
        .strip_prefix("listening on http://")
        .and_then(|s| s.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("address");

    let mut b = Browser::new(addr);
    b.login_account().await;
    let csrf = b.csrf.clone().expect("csrf");
    let session_cookie = b
        .cookies
        .get(&("webaccountsession".to_string(), "/account/".to_string()))
        .cloned()
        .expect("session cookie");
    // Let the wall clock move so the use is distinguishable from the sign-in,
    // and use the session from another agent: a use is recorded when it
    // changes what is kept (within a minute, only a new client IP or agent).
    tokio::time::sleep(Duration::from_millis(50)).await;
    b.agent = "postern-test/2".into();
    let used_at = now_ms();
    let r = b.api("/account/", "Version", json!([])).await;
    assert!(r.error_code().is_none(), "{}", r.text());

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(exit.success(), "postern exited with {exit}");

    let stores = postern::store::Stores::open(&dir.path().join("data")).expect("open");
    let (_, sessions) = postern::store::sessions::load(&stores.accounts, DEMO)
        .expect("load")
        .expect("account");
    assert_eq!(sessions.len(), 1);
    let s = &sessions[0].1;
    assert!(
        s.last_used >= used_at && s.last_used > s.created,
        "last_used {} should be the use at {used_at} (created {})",
        s.last_used,
        s.created
    );
    assert_eq!(s.expires, s.last_used + 24 * 3600 * 1000);
    assert_eq!(s.last_agent, "postern-test/2");

    // The log: one line per request with the account once signed in; no secrets.
    let log = stderr.join().expect("stderr reader");
    let requests: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("postern::request"))
        .collect();
    assert_eq!(requests.len(), 3, "LoginPrep, Login, Version:\n{log}");
    assert!(
        requests[2].contains("account=\"demo\"") || requests[2].contains("account=demo"),
        "{log}"
    );
    assert!(requests[2].contains("status=200"), "{log}");
    // Each line starts with an RFC 3339 UTC time with microseconds.
    for line in &requests {
        let (time, rest) = line.split_at(27);
        let shape: String = time
            .chars()
            .map(|c| if c.is_ascii_digit() { '9' } else { c })
            .collect();
        assert_eq!(shape, "9999-99-99T99:99:99.999999Z", "{line}");
        assert!(
            rest.starts_with("  INFO postern::request: request "),
            "{line}"
        );
    }
    let token = session_cookie
        .trim_matches('"')
        .split(' ')
        .next()
        .expect("token");
    for secret in [DEMO_PASSWORD, csrf.as_str(), token] {
        assert!(!log.contains(secret), "secret in log:\n{log}");
    }
}

fn read_all(mut r: impl std::io::Read) -> String {
    let mut s = String::new();
    let _ = r.read_to_string(&mut s);
    s
}

#[test]
fn serve_refuses_a_bad_configuration_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("postern.toml");
    for (text, key) in [
        (
            "data_dir = \"d\"\ncolour = 1\n[[listener]]\naddress = \"127.0.0.1:0\"\n[[listener.interface]]\nkind = \"webaccount\"\nprefix = \"/account/\"\n",
            "colour",
        ),
        (
            "data_dir = \"d\"\n[[listener]]\naddress = \"127.0.0.1:0\"\nforwarded = true\n[[listener.interface]]\nkind = \"webaccount\"\nprefix = \"/account/\"\n",
            "listener[0].trusted_proxies",
        ),
        (
            "data_dir = \"d\"\n[[listener]]\naddress = \"127.0.0.1:0\"\ntls = { cert = \"missing.pem\", key = \"missing-key.pem\" }\n[[listener.interface]]\nkind = \"webaccount\"\nprefix = \"/account/\"\n",
            "missing.pem",
        ),
    ] {
        std::fs::write(&config, text).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_postern"))
            .args(["serve", "--config"])
            .arg(&config)
            .output()
            .expect("run postern");
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{key} not in {err}");
    }
}

/// `localserve` serves HTTPS on IP:1443 with a self-signed certificate it
/// generates and prints the path of; a TLS client trusting that file gets
/// HTTP/2 and Secure cookies. (A loopback address of its own keeps the fixed
/// ports free of other tests.)
#[tokio::test]
async fn localserve_serves_https_with_its_self_signed_certificate() {
    use std::sync::Arc;

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use rustls_pki_types::pem::PemObject as _;

    let dir = tempfile::tempdir().expect("tempdir");
    let ip = "127.83.17.9";
    let mut child = Command::new(env!("CARGO_BIN_EXE_postern"))
        .args(["localserve", "--ip", ip, "--dir"])
        .arg(dir.path().join("local"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn postern");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut cert = None;
    let mut printed = String::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).expect("read") == 0 {
            break;
        }
        printed.push_str(&line);
        if let Some(rest) = line.split("self-signed certificate ").nth(1) {
            cert = Some(std::path::PathBuf::from(rest.trim().trim_end_matches(')')));
        }
        if line.starts_with("stop with") {
            break;
        }
    }
    let cert = cert.unwrap_or_else(|| panic!("no certificate path in:\n{printed}"));
    assert!(
        printed.contains(&format!("https://{ip}:1443/account/")),
        "{printed}"
    );

    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(&cert).expect("pem") {
        roots.add(c.expect("cert")).expect("root");
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let addr: std::net::SocketAddr = format!("{ip}:1443").parse().expect("addr");
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name =
        rustls_pki_types::ServerName::IpAddress(ip.parse::<std::net::IpAddr>().expect("ip").into());
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .expect("handshake with the printed certificate");
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("h2");
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method("POST")
        .uri(format!("https://{addr}/account/api/LoginPrep"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(b"{\"params\":[]}")))
        .expect("request");
    let resp = send.send_request(req).await.expect("send");
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .contains("; Secure")
    );

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(exit.success(), "{exit}");
}

/// SIGHUP makes the running binary read its TLS certificate again.
#[tokio::test]
async fn sighup_reloads_the_tls_certificate() {
    use std::sync::Arc;

    use rustls_pki_types::pem::PemObject as _;

    let dir = tempfile::tempdir().expect("tempdir");
    provision(dir.path(), &[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)]);
    let tls = dir.path().join("tls");
    postern::http::tls::self_signed(&tls, &["localhost".into()]).expect("cert");
    let first = std::fs::read(tls.join("cert.pem")).expect("read");
    let config = dir.path().join("postern.toml");
    std::fs::write(
        &config,
        "data_dir = \"data\"\n[[listener]]\naddress = \"127.0.0.1:0\"\ntls = { cert = \"tls/cert.pem\", key = \"tls/key.pem\" }\n[[listener.interface]]\nkind = \"webaccount\"\nprefix = \"/account/\"\n",
    )
    .expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_postern"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn postern");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read stdout");
    let addr: std::net::SocketAddr = line
        .trim()
        .strip_prefix("listening on https://")
        .and_then(|s| s.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("address");

    // Handshake trusting only one certificate file's contents.
    let handshake = |pem: Vec<u8>| async move {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            roots.add(c.expect("cert")).expect("root");
        }
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(name, tcp)
            .await
            .is_ok()
    };
    assert!(handshake(first.clone()).await);

    std::fs::remove_file(tls.join("cert.pem")).expect("rm");
    std::fs::remove_file(tls.join("key.pem")).expect("rm");
    postern::http::tls::self_signed(&tls, &["localhost".into()]).expect("new cert");
    let second = std::fs::read(tls.join("cert.pem")).expect("read");
    assert!(
        !handshake(second.clone()).await,
        "new cert not served before SIGHUP"
    );

    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !handshake(second.clone()).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "new certificate not served after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!handshake(first).await, "old certificate replaced");

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(exit.success(), "{exit}");
}
