//! The `postern` binary's administration commands, run for real against a
//! data directory with no server (direct database access) and with a
//! running server (through its control socket).

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::{Value, json};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary (on the blocking pool, so an in-process server keeps
/// serving) with `args` and `stdin`.
async fn postern(dir: &Path, args: &[&str], stdin: &str) -> Out {
    let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    a.push("--dir".into());
    a.push(dir.display().to_string());
    let stdin = stdin.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut child = Command::new(env!("CARGO_BIN_EXE_postern"))
            .args(&a)
            .env("RUST_LOG", "off")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn postern");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let o = child.wait_with_output().expect("wait");
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    })
    .await
    .expect("join")
}

async fn ok(dir: &Path, args: &[&str], stdin: &str) -> String {
    let o = postern(dir, args, stdin).await;
    assert_eq!(o.code, 0, "{args:?}: stderr {:?}", o.stderr);
    o.stdout
}

/// Fails with exit code 1 and exactly one line on stderr containing `msg`.
async fn fails(dir: &Path, args: &[&str], stdin: &str, msg: &str) {
    let o = postern(dir, args, stdin).await;
    assert_ne!(o.code, 0, "{args:?} should fail: {:?}", o.stdout);
    assert_eq!(o.stderr.lines().count(), 1, "{args:?}: {:?}", o.stderr);
    assert!(
        o.stderr.starts_with("postern: ") && o.stderr.contains(msg),
        "{args:?}: {:?} does not contain {msg:?}",
        o.stderr
    );
}

/// A configuration next to the data with a cheap password hash, which the
/// offline commands read.
fn write_config(dir: &Path) {
    let mut c =
        postern::config::Config::local("127.0.0.1".parse().expect("ip"), PathBuf::from("data"));
    c.password_hash = postern::credentials::HashCost::minimal();
    std::fs::write(dir.join("postern.toml"), toml::to_string(&c).expect("toml")).expect("write");
}

#[tokio::test]
async fn commands_on_a_stopped_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    provision(d, &[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)]);
    write_config(d);

    ok(d, &["account", "add", "mjl", "mjl@Example.org"], "").await;
    fails(
        d,
        &["account", "add", "mjl", "x@example.org"],
        "",
        "account already exists",
    )
    .await;
    fails(
        d,
        &["account", "add", "a/b", "ab@example.org"],
        "",
        "account name:",
    )
    .await;
    fails(d, &["account", "add", "ab", "nope"], "", "address:").await;
    let list = ok(d, &["account", "list"], "").await;
    assert_eq!(list, "demo\nmjl\n");
    ok(d, &["account", "set-password", "mjl"], "mjlsecret\n").await;
    fails(d, &["account", "set-password", "mjl"], "", "no password").await;
    fails(d, &["account", "set-password", "mjl"], "short\n", "").await;
    ok(d, &["account", "disable", "mjl", "moved away"], "").await;
    let list = ok(d, &["account", "list"], "").await;
    assert_eq!(list, "demo\nmjl (login disabled: moved away)\n");
    ok(d, &["account", "enable", "mjl"], "").await;
    ok(d, &["address", "add", "second@example.org", "mjl"], "").await;
    fails(
        d,
        &["address", "add", "second@example.org", "demo"],
        "",
        "address already in use",
    )
    .await;
    let show: Value =
        serde_json::from_str(&ok(d, &["account", "show", "mjl"], "").await).expect("json");
    assert_eq!(
        show["Addresses"],
        json!(["mjl@example.org", "second@example.org"])
    );
    assert_eq!(show["LoginDisabled"], "");
    ok(d, &["address", "remove", "second@example.org"], "").await;
    fails(
        d,
        &["address", "remove", "mjl@example.org"],
        "",
        "last address",
    )
    .await;
    fails(d, &["account", "show", "nobody"], "", "unknown account").await;
    let s = ok(d, &["sessions", "list", "demo"], "").await;
    assert_eq!(serde_json::from_str::<Value>(&s).expect("json"), json!([]));
    assert_eq!(
        ok(d, &["sessions", "revoke", "demo"], "").await,
        "revoked 0 session(s)\n"
    );
    assert_eq!(ok(d, &["ratelimit", "list"], "").await, "");
    ok(d, &["ratelimit", "reset", "192.0.2.1"], "").await;
    fails(d, &["ratelimit", "reset", "nope"], "", "not an IP address").await;
    ok(d, &["admin", "set-password"], "newadminpw\n").await;
    ok(d, &["account", "remove", "mjl"], "").await;
    fails(d, &["account", "remove", "mjl"], "", "unknown account").await;

    // what was done offline is what a server then sees
    let t = TestApp::boot_on(dir).await;
    let mut admin = t.browser();
    let r = admin.login("/admin/", None, "newadminpw").await;
    assert!(r.error_code().is_none(), "{}", r.text());
    let l = admin.api("/admin/", "Accounts", json!([])).await.result();
    assert_eq!(l, json!([{"Name": "demo", "LoginDisabled": ""}]));
    t.stop().await;

    // errors outside the database
    let empty = tempfile::tempdir().expect("tempdir");
    fails(
        empty.path(),
        &["account", "list"],
        "",
        "no postern database",
    )
    .await;
}

#[tokio::test]
async fn commands_on_a_running_server_use_the_control_socket() {
    let mut t = TestApp::start().await;
    let d = t.dir.path().to_path_buf();
    let sock = d.join("data").join("control.sock");
    let mode = std::fs::metadata(&sock)
        .expect("socket exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    let mut admin = t.browser();
    admin.login_admin().await;
    ok(&d, &["account", "add", "mjl", "mjl@localhost"], "").await;
    ok(&d, &["account", "set-password", "mjl"], "mjlsecret\n").await;
    let mut m = t.browser();
    let r = m
        .login("/account/", Some("mjl@localhost"), "mjlsecret")
        .await;
    assert!(r.error_code().is_none(), "{}", r.text());
    let s: Value =
        serde_json::from_str(&ok(&d, &["sessions", "list", "mjl"], "").await).expect("json");
    assert_eq!(s.as_array().map(Vec::len), Some(1));
    assert_eq!(s[0]["Kind"], "webaccount");

    // disabling stops the live session at once; enabling lets it in again
    ok(&d, &["account", "disable", "mjl", "audit"], "").await;
    let r = m.api("/account/", "Version", json!([])).await;
    assert_eq!(r.error_message(), "login disabled: audit");
    ok(&d, &["account", "enable", "mjl"], "").await;
    assert!(
        m.api("/account/", "Version", json!([]))
            .await
            .error_code()
            .is_none()
    );
    assert_eq!(
        ok(&d, &["sessions", "revoke", "mjl"], "").await,
        "revoked 1 session(s)\n"
    );
    let r = m.api("/account/", "Version", json!([])).await;
    assert_eq!(r.error_code().as_deref(), Some("user:badAuth"));
    fails(&d, &["account", "show", "nobody"], "", "unknown account").await;
    fails(
        &d,
        &["address", "add", "demo@localhost", "mjl"],
        "",
        "address already in use",
    )
    .await;

    // the server's rate limiter, seen and reset from the command line
    let mut x = t.browser().with_ip("127.0.0.6");
    for _ in 0..11 {
        x.login("/account/", Some(DEMO_ADDRESS), "wrongwrong").await;
    }
    let l = ok(&d, &["ratelimit", "list"], "").await;
    assert!(l.contains("127.0.0.6/32 window 60s"), "{l}");
    ok(&d, &["ratelimit", "reset", "127.0.0.6"], "").await;
    assert_eq!(ok(&d, &["ratelimit", "list"], "").await, "");

    // a new admin password ends the admin sessions
    ok(&d, &["admin", "set-password"], "anotheradmin\n").await;
    let r = admin.api("/admin/", "Accounts", json!([])).await;
    assert_eq!(r.error_code().as_deref(), Some("user:badAuth"));
    let r = t.browser().login("/admin/", None, "anotheradmin").await;
    assert!(r.error_code().is_none(), "{}", r.text());

    ok(&d, &["account", "remove", "mjl"], "").await;
    let r = t
        .browser()
        .login("/account/", Some("mjl@localhost"), "mjlsecret")
        .await;
    assert_eq!(r.error_code().as_deref(), Some("user:loginFailed"));

    // shutdown removes the socket; the commands then open the database
    t.app
        .take()
        .expect("app")
        .shutdown()
        .await
        .expect("shutdown");
    assert!(!sock.exists(), "socket removed at shutdown");
    write_config(&d);
    assert_eq!(ok(&d, &["account", "list"], "").await, "demo\n");
}

#[tokio::test]
async fn every_command_has_help() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &["account", "--help"][..],
        &["account", "add", "--help"],
        &["account", "remove", "--help"],
        &["account", "list", "--help"],
        &["account", "show", "--help"],
        &["account", "set-password", "--help"],
        &["account", "disable", "--help"],
        &["account", "enable", "--help"],
        &["address", "add", "--help"],
        &["address", "remove", "--help"],
        &["sessions", "list", "--help"],
        &["sessions", "revoke", "--help"],
        &["admin", "set-password", "--help"],
        &["ratelimit", "list", "--help"],
        &["ratelimit", "reset", "--help"],
    ] {
        let o = postern(dir.path(), args, "").await;
        assert_eq!(o.code, 0, "{args:?}: {}", o.stderr);
        assert!(
            o.stdout.contains("Usage: postern"),
            "{args:?}: {}",
            o.stdout
        );
        assert!(o.stdout.contains("--dir"), "{args:?}");
    }
    // argv has no password option
    let o = postern(
        dir.path(),
        &["account", "set-password", "demo", "secret"],
        "",
    )
    .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
}

#[tokio::test]
async fn control_socket_protocol_errors() {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
    let t = TestApp::start().await;
    let sock = t.dir.path().join("data").join("control.sock");
    let s = tokio::net::UnixStream::connect(&sock)
        .await
        .expect("connect");
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    let mut ask = async |line: &[u8]| -> Value {
        w.write_all(line).await.expect("write");
        let mut buf = String::new();
        r.read_line(&mut buf).await.expect("read");
        serde_json::from_str(&buf).expect("json answer")
    };
    let a = ask(b"not json\n").await;
    assert_eq!(a["error"]["code"], "sherpa:badRequest");
    let a = ask(b"{\"function\":\"Nope\",\"params\":[]}\n").await;
    assert_eq!(a["error"]["code"], "sherpa:badFunction");
    let a = ask(b"{\"function\":\"Account\",\"params\":[1]}\n").await;
    assert_eq!(a["error"]["code"], "sherpa:badParams");
    // several requests on one connection
    let a = ask(b"{\"function\":\"Accounts\"}\n").await;
    assert_eq!(a["result"][0]["Name"], "demo");
    let mut long = vec![b'x'; postern::control::MAX_LINE + 10];
    long.push(b'\n');
    let a = ask(&long).await;
    assert_eq!(a["error"]["code"], "user:error");
    t.stop().await;
}

#[tokio::test]
async fn a_stale_socket_from_a_crashed_server_is_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    provision(dir.path(), &[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)]);
    let sock = dir.path().join("data").join("control.sock");
    std::fs::write(&sock, b"stale").expect("stale file");
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let t = TestApp::boot_on(dir).await;
    let mode = std::fs::metadata(&sock)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(ok(t.dir.path(), &["account", "list"], "").await, "demo\n");
    t.stop().await;
}
