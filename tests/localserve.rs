//! `postern localserve` as a person runs it: the real binary, its printed
//! instructions, the demo account, and a restart on the same directory.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use common::*;
use serde_json::json;

/// A loopback address of its own, so the fixed ports 1080/1081 do not clash.
const IP: &str = "127.0.0.77";

fn start(dir: &std::path::Path) -> (Child, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_postern"))
        .args(["localserve", "--dir"])
        .arg(dir)
        .args(["--ip", IP])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn postern");
    let out = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line.expect("line");
        let done = line.contains("stop with ctrl-c");
        lines.push(line);
        if done {
            break;
        }
    }
    (child, lines)
}

fn stop(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn localserve_creates_demo_and_keeps_data_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, lines) = start(dir.path());
    let text = lines.join("\n");
    assert!(
        text.contains("created account \"demo\", login demo@localhost, password demodemo"),
        "{text}"
    );
    assert!(text.contains("created admin password adminadmin"), "{text}");
    assert!(
        text.contains(&format!("http://{IP}:1080/account/")),
        "{text}"
    );
    assert!(
        text.contains(&format!("http://{IP}:1081/metrics")),
        "{text}"
    );
    assert!(dir.path().join("postern.toml").exists());

    let addr = format!("{IP}:1080").parse().expect("addr");
    let mut b = Browser::new(addr);
    b.login_account().await;
    let mut a = Browser::new(addr);
    a.login_admin().await;
    assert_eq!(
        a.api("/admin/", "Accounts", json!([])).await.result()[0]["Name"],
        json!("demo")
    );
    let m = send(
        format!("{IP}:1081").parse().expect("addr"),
        "GET",
        "/metrics",
        &[],
        vec![],
    )
    .await;
    assert_eq!(m.status, 200);
    stop(child);

    let (child, lines) = start(dir.path());
    assert!(
        !lines.join("\n").contains("created"),
        "nothing is created again: {lines:?}"
    );
    let r = b.api("/account/", "Account", json!([])).await;
    assert_eq!(
        r.result()["Name"],
        json!("demo"),
        "account session survived the restart"
    );
    let r = a.api("/admin/", "Version", json!([])).await;
    assert_eq!(
        r.error_message(),
        "unknown session token",
        "admin sessions do not survive"
    );
    stop(child);
}
