//! `postern import` and `postern export` against a running server: the real
//! binary talks to the server's control socket, and what it did is checked
//! over HTTP and against the same commands on the stopped server.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

struct Out {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs the binary on the blocking pool (the in-process server keeps serving).
async fn postern(dir: &Path, args: &[&str]) -> Out {
    let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    a.push("--dir".into());
    a.push(dir.display().to_string());
    tokio::task::spawn_blocking(move || {
        let o = Command::new(env!("CARGO_BIN_EXE_postern"))
            .args(&a)
            .env("RUST_LOG", "off")
            .stdin(Stdio::null())
            .output()
            .expect("run postern");
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: o.stdout,
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    })
    .await
    .expect("join")
}

async fn ok(dir: &Path, args: &[&str]) -> Out {
    let o = postern(dir, args).await;
    assert_eq!(o.code, 0, "{args:?}: stderr {:?}", o.stderr);
    o
}

async fn fails(dir: &Path, args: &[&str], msg: &str) -> Out {
    let o = postern(dir, args).await;
    assert_ne!(o.code, 0, "{args:?} should fail: {:?}", o.stderr);
    assert!(
        o.stderr.contains(msg),
        "{args:?}: {:?} lacks {msg:?}",
        o.stderr
    );
    o
}

fn fixtures() -> tempfile::TempDir {
    mail_fixtures()
}

fn write_config(dir: &Path) {
    let mut c =
        postern::config::Config::local("127.0.0.1".parse().expect("ip"), PathBuf::from("data"));
    c.password_hash = postern::credentials::HashCost::minimal();
    std::fs::write(dir.join("postern.toml"), toml::to_string(&c).expect("toml")).expect("write");
}

async fn http_export(b: &mut Browser, path: &str) -> Vec<u8> {
    let csrf = b.csrf.clone().expect("signed in");
    let r = b
        .request(
            "POST",
            &format!("/account/{path}"),
            &[("content-type", "application/x-www-form-urlencoded")],
            format!("csrf={csrf}").into_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.body.to_vec()
}

#[tokio::test]
async fn import_and_export_go_through_the_control_socket_of_a_running_server() {
    let fx = fixtures();
    let zip = fx.path().join("fixture.zip");
    let mut t = TestApp::start().await;
    let d = t.dir.path().to_path_buf();
    let mut b = t.browser();
    b.login_account().await;
    let empty = http_export(&mut b, "export/mail-export-mbox.tgz").await;

    // Import: the same progress lines as the stopped case, then done.
    let o = ok(&d, &["import", DEMO, zip.to_str().expect("utf8")]).await;
    let e = &o.stderr;
    assert!(e.contains("\rproblem: ") && e.contains("README.txt"), "{e}");
    assert!(e.contains("100%  261 messages"), "{e}");
    for line in [
        "Archive/2024: 250",
        "Inbox: 6",
        "Lists/dev: 5",
        "import done",
    ] {
        assert!(e.lines().any(|l| l == line), "{line:?} in {e}");
    }
    assert!(o.stdout.is_empty());

    // The imported mail is there over HTTP, and the CLI export of the
    // running server is the same archive.
    let http = http_export(&mut b, "export/mail-export-mbox.tgz").await;
    assert_ne!(http, empty);
    let running = ok(
        &d,
        &["export", DEMO, "--format", "mbox", "--archive", "tgz"],
    )
    .await;
    assert_eq!(running.stderr, "exported 261 messages\n");
    assert!(running.stdout == http, "CLI export equals the HTTP export");
    let one = ok(
        &d,
        &[
            "export",
            DEMO,
            "--format",
            "mbox",
            "--archive",
            "none",
            "--mailbox",
            "Inbox",
        ],
    )
    .await;
    assert!(one.stdout.starts_with(b"From "), "a plain mbox");
    let maildir = ok(
        &d,
        &["export", DEMO, "--format", "maildir", "--archive", "zip"],
    )
    .await;

    // Errors come back as one clear line and a non-zero exit.
    fails(
        &d,
        &["import", "nobody", zip.to_str().expect("utf8")],
        "no account",
    )
    .await;
    fails(
        &d,
        &["import", DEMO, "/nonexistent/x.zip"],
        "/nonexistent/x.zip",
    )
    .await;
    let readme = fx.path().join("src/README.txt");
    if readme.exists() {
        fails(
            &d,
            &["import", DEMO, readme.to_str().expect("utf8")],
            "not a zip or gzip file",
        )
        .await;
    }
    let trunc = fx.path().join("truncated.zip");
    let o = fails(
        &d,
        &["import", DEMO, trunc.to_str().expect("utf8")],
        "import aborted, nothing was stored",
    )
    .await;
    assert!(o.stderr.contains("archive is corrupt"), "{}", o.stderr);
    fails(
        &d,
        &[
            "export",
            DEMO,
            "--format",
            "mbox",
            "--archive",
            "tgz",
            "--mailbox",
            "Nope",
        ],
        "no such mailbox",
    )
    .await;
    fails(
        &d,
        &["export", "nobody", "--format", "mbox", "--archive", "tgz"],
        "no account",
    )
    .await;
    fails(
        &d,
        &["export", DEMO, "--format", "pdf", "--archive", "tgz"],
        "format",
    )
    .await;
    // Nothing from the aborted import was stored.
    assert!(http_export(&mut b, "export/mail-export-mbox.tgz").await == http);

    // The stopped server's exports are byte for byte the same.
    t.app
        .take()
        .expect("app")
        .shutdown()
        .await
        .expect("shutdown");
    write_config(&d);
    let stopped = ok(
        &d,
        &["export", DEMO, "--format", "mbox", "--archive", "tgz"],
    )
    .await;
    assert!(
        stopped.stdout == running.stdout,
        "stopped equals running (tgz)"
    );
    let stopped = ok(
        &d,
        &["export", DEMO, "--format", "maildir", "--archive", "zip"],
    )
    .await;
    assert!(
        stopped.stdout == maildir.stdout,
        "stopped equals running (zip)"
    );
    let stopped = ok(
        &d,
        &[
            "export",
            DEMO,
            "--format",
            "mbox",
            "--archive",
            "none",
            "--mailbox",
            "Inbox",
        ],
    )
    .await;
    assert!(
        stopped.stdout == one.stdout,
        "stopped equals running (mbox)"
    );
}
