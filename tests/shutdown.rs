//! The real binary: `postern serve --config FILE`, a sign-in and a use of the
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
    // Let the wall clock move so the use is distinguishable from the sign-in.
    tokio::time::sleep(Duration::from_millis(50)).await;
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
