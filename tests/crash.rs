//! Crash safety of the real binary: `postern serve --config` is killed with
//! SIGKILL right after a successful Login, restarted on the same data
//! directory, and the cookie handed out must still work; after the last
//! kill, the database opens cleanly and holds exactly the sessions handed
//! out. (The mid-import variant waits for import; see docs/hardening.md.)

mod common;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use postern::store::Stores;
use serde_json::json;

/// Starts `postern serve --config <dir>/postern.toml` and returns the child
/// and the address it reports listening on.
fn serve(dir: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_postern"))
        .args(["serve", "--config"])
        .arg(dir.join("postern.toml"))
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start postern");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    // Reads the log until the process ends, so it never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && line.contains("listening") {
                if let Some(addr) = line
                    .split(|c: char| c.is_whitespace() || c == '=')
                    .find_map(|w| {
                        w.trim_matches(|c: char| c == '"')
                            .parse::<SocketAddr>()
                            .ok()
                    })
                {
                    let _ = tx.send(addr);
                    sent = true;
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("postern did not report its address");
    (child, addr)
}

/// SIGKILL, nothing else: no shutdown hook runs.
fn kill(mut child: Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

fn write_config(dir: &Path) {
    let toml = r#"
data_dir = "data"
bad_auth_delay_ms = 20
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

[[listener.interface]]
kind = "webmail"
prefix = "/webmail/"
"#;
    std::fs::write(dir.join("postern.toml"), toml).expect("write config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_sigkill_right_after_login() {
    let dir = tempfile::tempdir().expect("tempdir");
    provision(dir.path(), &[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)]);
    write_config(dir.path());

    let mut browsers: Vec<(Browser, &str)> = Vec::new();
    for round in 0..3 {
        let (child, addr) = serve(dir.path());
        // Everyone signed in before still is, after each kill.
        for (b, prefix) in &mut browsers {
            b.addr = addr;
            let r = b.api(prefix, "Version", json!([])).await;
            assert!(
                r.json().get("result").is_some(),
                "round {round}: cookie from before the kill refused: {}",
                r.text()
            );
        }
        let prefix = if round % 2 == 0 {
            "/account/"
        } else {
            "/webmail/"
        };
        let mut b = Browser::new(addr);
        let r = b.login(prefix, Some(DEMO_ADDRESS), DEMO_PASSWORD).await;
        assert!(r.json().get("result").is_some(), "login: {}", r.text());
        // The instant the answer is in: SIGKILL.
        kill(child);
        browsers.push((b, prefix));
    }

    // Once more, to check the last one, then kill again.
    let (child, addr) = serve(dir.path());
    for (b, prefix) in &mut browsers {
        b.addr = addr;
        let r = b.api(prefix, "Version", json!([])).await;
        assert!(r.json().get("result").is_some(), "{}", r.text());
    }
    kill(child);

    // The database, left by a killed process, opens and holds exactly the
    // three sessions handed out.
    let stores = Stores::open(&dir.path().join("data")).expect("database opens after SIGKILL");
    let (account, sessions) = postern::store::sessions::load(&stores.accounts, DEMO)
        .expect("load")
        .expect("account");
    assert_eq!(account.name, DEMO);
    assert_eq!(sessions.len(), 3);
}
