//! Mail import and export over real HTTP, with fixtures made at test time by
//! Python's `mailbox`/`email` modules and packed with `zip` and `tar`
//! (tests/fixtures/mailfix.py), and exports read back by Python.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{Browser, DEMO, DEMO_ADDRESS, DEMO_PASSWORD, Resp, TestApp, mail_fixtures, mailfix};
use postern::store::Stores;
use postern::store::mail as store;
use serde_json::Value;

const COPY: (&str, &str, &str) = ("copy", "copy@localhost", "copycopy");

/// Writes a tgz of `n` generated messages (`mailfix.py big`) to `path`.
fn big_archive(path: &Path, n: u32) {
    mailfix(&["big", path.to_str().expect("utf-8"), &n.to_string()]);
}

/// Makes the fixtures in a new temporary directory.
fn fixtures() -> tempfile::TempDir {
    mail_fixtures()
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// What Python's mailbox module reads from an export.
fn py_read(data: &[u8]) -> Vec<Value> {
    let f = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(f.path(), data).expect("write");
    let out = mailfix(&["read", f.path().to_str().expect("utf-8")]);
    serde_json::from_slice::<Value>(&out)
        .expect("json")
        .as_array()
        .expect("list")
        .clone()
}

fn expected(dir: &Path) -> Vec<Value> {
    serde_json::from_slice::<Value>(&read(dir, "expected.json"))
        .expect("json")
        .as_array()
        .expect("list")
        .clone()
}

fn multipart(file: Option<&[u8]>, prefix: Option<&str>) -> (String, Vec<u8>) {
    let b = "postern-test-boundary-7f3a";
    let mut body = Vec::new();
    if let Some(p) = prefix {
        body.extend_from_slice(
            format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"skipMailboxPrefix\"\r\n\r\n{p}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some(f) = file {
        body.extend_from_slice(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(f);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

async fn upload(b: &mut Browser, file: Option<&[u8]>, prefix: Option<&str>) -> Resp {
    let (ct, body) = multipart(file, prefix);
    let csrf = b.csrf.clone().expect("signed in");
    b.request(
        "POST",
        "/account/import",
        &[("content-type", ct.as_str()), ("x-mox-csrf", csrf.as_str())],
        body,
    )
    .await
}

async fn start_import(b: &mut Browser, file: &[u8], prefix: Option<&str>) -> String {
    let r = upload(b, Some(file), prefix).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["Token"].as_str().expect("token").to_string()
}

/// One SSE event: (name, data).
type Ev = (String, Value);

/// Reads a progress stream to its end.
async fn progress(app: &TestApp, token: &str) -> Vec<Ev> {
    progress_at(app.addr, token.to_string()).await
}

async fn progress_at(addr: std::net::SocketAddr, token: String) -> Vec<Ev> {
    let r = common::send(
        addr,
        "GET",
        &format!("/account/importprogress?token={token}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    let text = r.text();
    assert!(text.starts_with(": keepalive\n\n"), "{text}");
    let mut v = Vec::new();
    for block in text
        .split("\n\n")
        .filter(|b| !b.is_empty() && !b.starts_with(':'))
    {
        let mut name = String::new();
        let mut data = Value::Null;
        for line in block.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = n.to_string();
            } else if let Some(d) = line.strip_prefix("data: ") {
                data = serde_json::from_str(d).expect("event data");
            }
        }
        v.push((name, data));
    }
    let ends = v
        .iter()
        .filter(|(n, _)| n == "done" || n == "aborted")
        .count();
    assert_eq!(ends, 1, "exactly one end event: {v:?}");
    assert!(matches!(
        v.last().map(|e| e.0.as_str()),
        Some("done" | "aborted")
    ));
    v
}

fn final_counts(evs: &[Ev]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for (n, d) in evs {
        if n == "count" {
            m.insert(
                d["Mailbox"].as_str().expect("mailbox").to_string(),
                d["Count"].as_u64().expect("count"),
            );
        }
    }
    m
}

fn problems(evs: &[Ev]) -> Vec<String> {
    evs.iter()
        .filter(|(n, _)| n == "problem")
        .map(|(_, d)| d["Message"].as_str().expect("message").to_string())
        .collect()
}

fn end(evs: &[Ev]) -> &str {
    evs.last().map(|e| e.0.as_str()).unwrap_or("")
}

async fn signed_in(app: &TestApp) -> Browser {
    let mut b = app.browser();
    b.login_account().await;
    b
}

async fn export(b: &mut Browser, path: &str, fields: &[(&str, &str)]) -> Resp {
    let csrf = b.csrf.clone().expect("signed in");
    let mut body: Vec<String> = vec![format!("csrf={csrf}")];
    for (k, v) in fields {
        body.push(format!("{k}={}", v.replace('/', "%2F").replace(' ', "+")));
    }
    b.request(
        "POST",
        &format!("/account/{path}"),
        &[("content-type", "application/x-www-form-urlencoded")],
        body.join("&").into_bytes(),
    )
    .await
}

fn expected_counts() -> BTreeMap<String, u64> {
    BTreeMap::from([
        ("Archive/2024".to_string(), 250),
        ("Inbox".to_string(), 6),
        ("Lists/dev".to_string(), 5),
    ])
}

/// Stops the app and returns its stores (the databases are locked while it runs).
async fn stop_and_open(app: &mut TestApp) -> Stores {
    if let Some(a) = app.app.take() {
        a.shutdown().await.expect("shutdown");
    }
    Stores::open(&app.dir.path().join("data")).expect("open stores")
}

type Stored = Vec<(String, u8, Vec<String>, i64, Vec<u8>)>;

fn stored(stores: &Stores, account: &str) -> Stored {
    let mut v: Stored = store::messages(&stores.mail, account)
        .expect("messages")
        .into_iter()
        .map(|(id, r)| {
            let raw = store::message_data(&stores.mail, account, id)
                .expect("data")
                .expect("present");
            assert_eq!(raw.len() as u64, r.size);
            let mut k = r.keywords;
            k.sort();
            (r.mailbox, r.flags, k, r.received, raw)
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn zip_and_tgz_imports_reach_done_with_counts_and_late_listeners_replay() {
    let fx = fixtures();
    let app = TestApp::start().await;
    let mut b = signed_in(&app).await;
    for name in ["fixture.zip", "fixture.tgz"] {
        let token = start_import(&mut b, &read(fx.path(), name), None).await;
        let evs = progress(&app, &token).await;
        assert_eq!(end(&evs), "done", "{name}: {evs:?}");
        assert_eq!(final_counts(&evs), expected_counts(), "{name}");
        let p = problems(&evs);
        assert_eq!(p.len(), 1, "{name}: {p:?}");
        assert!(
            p[0].contains("README.txt") && p[0].contains("neither an mbox"),
            "{p:?}"
        );
        // Counts at least every 100 messages within a mailbox.
        let archive: Vec<u64> = evs
            .iter()
            .filter(|(n, d)| n == "count" && d["Mailbox"] == "Archive/2024")
            .map(|(_, d)| d["Count"].as_u64().expect("n"))
            .collect();
        assert!(archive.starts_with(&[100, 200]), "{name}: {archive:?}");
        assert_eq!(archive.last(), Some(&250));
        assert!(
            evs.iter()
                .any(|(n, d)| n == "step" && d["Title"].is_string())
        );
        // A listener that comes after the end gets the whole state, ending in done.
        let late = progress(&app, &token).await;
        assert_eq!(end(&late), "done");
        assert_eq!(final_counts(&late), expected_counts());
        assert_eq!(problems(&late), p);
    }
    let r = common::send(
        app.addr,
        "GET",
        "/account/importprogress?token=AAAAAAAAAAAAAAAAAAAAAA",
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("unknown token"), "{}", r.text());
    let r = common::send(app.addr, "GET", "/account/importprogress", &[], vec![]).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("missing token"));
    app.stop().await;
}

#[tokio::test]
async fn skip_mailbox_prefix_removes_the_archive_path() {
    let fx = fixtures();
    let app = TestApp::start().await;
    let mut b = signed_in(&app).await;
    let token = start_import(
        &mut b,
        &read(fx.path(), "prefixed.tgz"),
        Some("backup/home/"),
    )
    .await;
    let evs = progress(&app, &token).await;
    assert_eq!(end(&evs), "done");
    assert_eq!(final_counts(&evs), expected_counts());
    app.stop().await;
}

#[tokio::test]
async fn exports_read_back_by_python_and_round_trip_byte_for_byte() {
    let fx = fixtures();
    let want = expected(fx.path());
    let mut app = TestApp::start_with(&[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD), COPY], 20).await;
    let mut b = signed_in(&app).await;
    let token = start_import(&mut b, &read(fx.path(), "fixture.zip"), None).await;
    assert_eq!(end(&progress(&app, &token).await), "done");

    let mut exports = BTreeMap::new();
    for (path, ct, suffix) in [
        (
            "export/mail-export-maildir.zip",
            "application/zip",
            ".maildir.zip",
        ),
        (
            "export/mail-export-maildir.tgz",
            "application/octet-stream",
            ".maildir.tgz",
        ),
        (
            "export/mail-export-mbox.zip",
            "application/zip",
            ".mbox.zip",
        ),
        (
            "export/mail-export-mbox.tgz",
            "application/octet-stream",
            ".mbox.tgz",
        ),
    ] {
        let r = export(&mut b, path, &[]).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.header("content-type").as_deref(), Some(ct));
        let cd = r.header("content-disposition").expect("disposition");
        assert!(
            cd.starts_with("attachment; filename=\"mailexport-demo-"),
            "{cd}"
        );
        assert!(cd.contains(&format!("{suffix}\"")), "{cd}");
        let got = py_read(&r.body);
        assert_eq!(got.len(), want.len(), "{path}");
        assert!(
            got == want,
            "{path}: python reads something else than the fixture"
        );
        exports.insert(path, r.body.to_vec());
    }
    // The form: tar, one mailbox recursive, and a plain mbox of one mailbox.
    let r = export(
        &mut b,
        "export",
        &[
            ("format", "mbox"),
            ("archive", "tar"),
            ("mailbox", "Lists"),
            ("recursive", "on"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/x-tar")
    );
    let lists: Vec<Value> = want
        .iter()
        .filter(|m| m["mailbox"] == "Lists/dev")
        .cloned()
        .collect();
    assert!(py_read(&r.body) == lists);
    let r = export(
        &mut b,
        "export",
        &[
            ("format", "maildir"),
            ("archive", "tgz"),
            ("mailbox", "Lists"),
            ("recursive", ""),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(py_read(&r.body).is_empty(), "Lists itself has no messages");
    let r = export(
        &mut b,
        "export",
        &[
            ("format", "mbox"),
            ("archive", "none"),
            ("mailbox", "Inbox"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let cd = r.header("content-disposition").expect("disposition");
    assert!(cd.contains(".mbox\""), "{cd}");
    let plain = py_read(&r.body);
    let inbox: Vec<Value> = want
        .iter()
        .filter(|m| m["mailbox"] == "Inbox")
        .cloned()
        .collect();
    assert_eq!(plain.len(), inbox.len());
    let strip = |v: &[Value]| -> Vec<Value> {
        let mut v: Vec<Value> = v
            .iter()
            .map(|m| {
                let mut m = m.clone();
                m["mailbox"] = Value::Null;
                m
            })
            .collect();
        v.sort_by_key(|m| m.to_string());
        v
    };
    assert!(strip(&plain) == strip(&inbox));
    // Message ids: the zip lists Archive/2024.mbox first, so ids 1 and 2 are there.
    let r = export(
        &mut b,
        "export",
        &[
            ("format", "maildir"),
            ("archive", "zip"),
            ("messageids", "1, 2"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let two = py_read(&r.body);
    assert_eq!(two.len(), 2);
    assert!(two.iter().all(|m| m["mailbox"] == "Archive/2024"));

    // import(export(x)) == x: the mbox export into "copy", byte for byte.
    let mut c = app.browser();
    let r = c.login("/account/", Some(COPY.1), COPY.2).await;
    assert!(r.json().get("result").is_some(), "{}", r.text());
    let token = start_import(&mut c, &exports["export/mail-export-mbox.tgz"], None).await;
    let evs = progress(&app, &token).await;
    assert_eq!(end(&evs), "done", "{evs:?}");
    assert!(problems(&evs).is_empty(), "{:?}", problems(&evs));
    let stores = stop_and_open(&mut app).await;
    let original = stored(&stores, DEMO);
    assert_eq!(original.len(), 261);
    assert!(
        original
            .iter()
            .any(|m| m.4.windows(2).any(|w| w == b"\r\n")),
        "a CRLF message is in the fixture"
    );
    assert!(
        stored(&stores, COPY.0) == original,
        "mbox round trip differs"
    );
    drop(stores);

    // And the maildir export, into a fresh instance.
    let mut app2 = TestApp::start().await;
    let mut b2 = signed_in(&app2).await;
    let token = start_import(&mut b2, &exports["export/mail-export-maildir.zip"], None).await;
    assert_eq!(end(&progress(&app2, &token).await), "done");
    let stores2 = stop_and_open(&mut app2).await;
    assert!(
        stored(&stores2, DEMO) == original,
        "maildir round trip differs"
    );
}

#[tokio::test]
async fn abort_leaves_nothing_and_the_importer_keeps_serving() {
    let big = tempfile::tempdir().expect("tmp");
    let path = big.path().join("big.tgz");
    big_archive(&path, 40000);
    let data = std::fs::read(&path).expect("read");
    let mut app = TestApp::start_with(&[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD), COPY], 20).await;
    let mut b = signed_in(&app).await;
    let token = start_import(&mut b, &data, None).await;
    // Another account signs in, uses and ends its session meanwhile (its
    // session writes go to accounts.redb, never behind the import's writer).
    let mut other = app.browser();
    let r = other.login("/account/", Some(COPY.1), COPY.2).await;
    assert!(r.json().get("result").is_some(), "{}", r.text());
    let r = other
        .api("/account/", "Account", serde_json::json!([]))
        .await;
    assert_eq!(r.result()["Name"], "copy");
    let r = other
        .api("/account/", "Logout", serde_json::json!([]))
        .await;
    assert!(r.json().get("error").is_none(), "{}", r.text());
    // One import at a time per account.
    let r = upload(&mut b, Some(&data), None).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code().as_deref(), Some("user:error"));
    assert!(
        r.error_message().contains("already running"),
        "{}",
        r.text()
    );
    // A listener connected while the import runs gets the live end.
    let early = tokio::spawn(progress_at(app.addr, token.clone()));
    let r = b
        .api("/account/", "ImportAbort", serde_json::json!([token]))
        .await;
    assert!(r.json().get("error").is_none(), "abort: {}", r.text());
    let evs = progress(&app, &token).await;
    assert_eq!(end(&evs), "aborted", "{evs:?}");
    assert_eq!(end(&early.await.expect("listener")), "aborted");
    // Aborting again, or an unknown import: user errors, nothing stops.
    let r = b
        .api("/account/", "ImportAbort", serde_json::json!([token]))
        .await;
    assert_eq!(r.error_code().as_deref(), Some("user:error"));
    assert!(r.error_message().contains("finished"), "{}", r.text());
    let r = b
        .api("/account/", "ImportAbort", serde_json::json!(["nonsense"]))
        .await;
    assert_eq!(r.error_code().as_deref(), Some("user:error"));
    let r = b.api("/account/", "Types", serde_json::json!([])).await;
    assert_eq!(r.result(), serde_json::json!({"Token": ""}));
    // The importer still serves: a small import now completes.
    let fx = fixtures();
    let token = start_import(&mut b, &read(fx.path(), "fixture.tgz"), None).await;
    assert_eq!(end(&progress(&app, &token).await), "done");
    let m = common::send(
        app.metrics.expect("metrics"),
        "GET",
        "/metrics",
        &[],
        vec![],
    )
    .await;
    for name in [
        "postern_imports_started_total",
        "postern_imports_finished_total",
        "postern_imports_failed_total",
    ] {
        assert!(m.text().contains(name), "{name} missing");
    }
    let stores = stop_and_open(&mut app).await;
    let msgs = store::messages(&stores.mail, DEMO).expect("messages");
    assert_eq!(msgs.len(), 261, "only the second import is stored");
    assert!(msgs.iter().all(|(_, m)| m.mailbox != "Big"));
    assert_eq!(
        store::data_count(&stores.mail, DEMO).expect("count"),
        261,
        "no bytes of the aborted import"
    );
    assert_eq!(store::staged_count(&stores.mail).expect("staged"), 0);
}

fn small_limits(c: &mut postern::config::Config) {
    c.mail.import_expanded_bytes = 1 << 20;
    c.mail.import_entries = 20;
    c.mail.message_bytes = 100_000;
    c.mail.import_upload_bytes = 200_000;
}

#[tokio::test]
async fn corrupt_and_oversized_archives_abort_with_nothing_stored() {
    let fx = fixtures();
    let mut app =
        TestApp::start_tweaked(&[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)], small_limits).await;
    let mut b = signed_in(&app).await;
    for (name, want) in [
        ("broken.tgz", "archive is corrupt"),
        ("truncated.zip", "archive is corrupt"),
        ("truncated.tgz", "archive is corrupt"),
        ("badtar.tgz", "archive is corrupt"),
        ("bomb.zip", "expands to more than 1048576 bytes"),
        ("many.tgz", "more than 20 entries"),
    ] {
        let token = start_import(&mut b, &read(fx.path(), name), None).await;
        let evs = progress(&app, &token).await;
        assert_eq!(end(&evs), "aborted", "{name}: {evs:?}");
        let p = problems(&evs);
        assert!(p.iter().any(|m| m.contains(want)), "{name}: {p:?}");
    }
    let stores = stop_and_open(&mut app).await;
    assert!(
        store::messages(&stores.mail, DEMO)
            .expect("messages")
            .is_empty()
    );
    assert!(
        store::mailboxes(&stores.mail, DEMO)
            .expect("mailboxes")
            .is_empty()
    );
    assert_eq!(store::data_count(&stores.mail, DEMO).expect("count"), 0);
    assert_eq!(store::staged_count(&stores.mail).expect("staged"), 0);
}

#[tokio::test]
async fn bad_entries_are_precise_problems_and_the_rest_imports() {
    let fx = fixtures();
    let app = TestApp::start_tweaked(&[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)], small_limits).await;
    let mut b = signed_in(&app).await;
    let token = start_import(&mut b, &read(fx.path(), "slip.zip"), None).await;
    let evs = progress(&app, &token).await;
    assert_eq!(end(&evs), "done", "{evs:?}");
    let p = problems(&evs);
    assert!(
        p.iter()
            .any(|m| m.contains("\"../evil.mbox\" points outside the archive")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m.contains("\"a/../../evil2.mbox\" points outside")),
        "{p:?}"
    );
    assert!(
        p.iter().any(|m| m.contains("absolute path \"/abs.mbox\"")),
        "{p:?}"
    );
    assert_eq!(
        final_counts(&evs),
        BTreeMap::from([("good".to_string(), 1)])
    );

    let token = start_import(&mut b, &read(fx.path(), "special.tgz"), None).await;
    let evs = progress(&app, &token).await;
    assert_eq!(end(&evs), "done", "{evs:?}");
    let p = problems(&evs);
    for want in [
        "link \"link.mbox\" skipped",
        "device or fifo \"dev.mbox\" skipped",
        "device or fifo \"fifo.mbox\" skipped",
        "file name is not UTF-8",
        "\"big.mbox\": message 1 is larger than the limit of 100000 bytes",
    ] {
        assert!(p.iter().any(|m| m.contains(want)), "{want}: {p:?}");
    }
    assert_eq!(
        final_counts(&evs),
        BTreeMap::from([("big".to_string(), 1), ("good".to_string(), 1)]),
        "good.mbox, and the small message after the big one"
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_uploads_are_user_errors() {
    let fx = fixtures();
    let app = TestApp::start_tweaked(&[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)], small_limits).await;
    let mut b = signed_in(&app).await;
    let csrf = b.csrf.clone().expect("csrf");
    // Not multipart.
    let r = b
        .request(
            "POST",
            "/account/import",
            &[("content-type", "application/json"), ("x-mox-csrf", &csrf)],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code().as_deref(), Some("user:error"));
    assert!(r.error_message().contains("multipart/form-data"));
    // Not an archive.
    let r = upload(&mut b, Some(b"From x\nSubject: hi\n\nbody\n"), None).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_message(), "file is not a zip or gzip file");
    // No file.
    let r = upload(&mut b, None, Some("x")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_message(), "missing file");
    // Over the upload limit (200000 bytes here).
    let r = upload(&mut b, Some(&vec![0x1f; 300_000]), None).await;
    assert_eq!(r.status, 400);
    assert!(
        r.error_message()
            .contains("larger than the limit of 200000 bytes"),
        "{}",
        r.text()
    );
    // Truncated multipart body.
    let (ct, mut body) = multipart(Some(&read(fx.path(), "fixture.zip")), None);
    body.truncate(body.len() - 20);
    let r = b
        .request(
            "POST",
            "/account/import",
            &[("content-type", ct.as_str()), ("x-mox-csrf", &csrf)],
            body,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error_code().as_deref(), Some("user:error"));
    // Without the csrf header, or without a session.
    let (ct, body) = multipart(Some(&read(fx.path(), "fixture.zip")), None);
    let r = b
        .request(
            "POST",
            "/account/import",
            &[("content-type", ct.as_str())],
            body.clone(),
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(
        r.text().contains("missing required csrf header"),
        "{}",
        r.text()
    );
    let r = common::send(
        app.addr,
        "POST",
        "/account/import",
        &[("content-type", ct.as_str()), ("x-mox-csrf", &csrf)],
        body,
    )
    .await;
    assert_eq!(r.status, 403);
    let r = b.request("GET", "/account/import", &[], vec![]).await;
    assert_eq!(r.status, 405);
    // Endless empty fields are bounded too.
    let b2 = "bnd";
    let mut body = Vec::new();
    for _ in 0..100 {
        body.extend_from_slice(
            format!("--{b2}\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{b2}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={b2}");
    let r = b
        .request(
            "POST",
            "/account/import",
            &[("content-type", ct.as_str()), ("x-mox-csrf", &csrf)],
            body,
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.error_message().contains("more than 16 form fields"),
        "{}",
        r.text()
    );
    // The server is healthy after all of it.
    let r = b.api("/account/", "Version", serde_json::json!([])).await;
    assert!(r.result().is_string());
    app.stop().await;
}

#[tokio::test]
async fn bad_export_forms_are_400_with_a_reason() {
    let app = TestApp::start().await;
    let mut b = signed_in(&app).await;
    for (fields, want) in [
        (
            vec![("format", "eml"), ("archive", "zip")],
            "format must be mbox or maildir",
        ),
        (
            vec![("format", "mbox"), ("archive", "rar")],
            "archive must be tgz, zip, tar or none",
        ),
        (
            vec![
                ("format", "maildir"),
                ("archive", "none"),
                ("mailbox", "Inbox"),
            ],
            "format must be mbox",
        ),
        (
            vec![("format", "mbox"), ("archive", "none")],
            "name the mailbox",
        ),
        (
            vec![
                ("format", "mbox"),
                ("archive", "none"),
                ("mailbox", "Inbox"),
                ("recursive", "on"),
            ],
            "recursive is not possible",
        ),
        (
            vec![
                ("format", "mbox"),
                ("archive", "zip"),
                ("messageids", "1,two"),
            ],
            "\"two\" is not a message id number",
        ),
        (
            vec![
                ("format", "mbox"),
                ("archive", "zip"),
                ("recursive", "yes please"),
            ],
            "recursive must be",
        ),
        (
            vec![
                ("format", "mbox"),
                ("archive", "zip"),
                ("mailbox", "a/../b"),
            ],
            "mailbox:",
        ),
        (
            vec![("format", "mbox"), ("archive", "zip"), ("mailbox", "Nope")],
            "no such mailbox",
        ),
    ] {
        let r = export(&mut b, "export", &fields).await;
        assert_eq!(r.status, 400, "{fields:?}: {}", r.text());
        assert!(r.text().starts_with("400 - bad request - "), "{}", r.text());
        assert!(r.text().contains(want), "{fields:?}: {}", r.text());
    }
    // An empty account exports an empty, valid archive.
    let r = export(
        &mut b,
        "export",
        &[("format", "maildir"), ("archive", "tgz")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(py_read(&r.body).is_empty());
    // Session and form csrf are required; GET is refused.
    let r = b
        .request(
            "POST",
            "/account/export/mail-export-mbox.zip",
            &[("content-type", "application/x-www-form-urlencoded")],
            b"format=mbox".to_vec(),
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(r.text().contains("missing required csrf"), "{}", r.text());
    let r = b
        .request(
            "POST",
            "/account/export/mail-export-mbox.zip",
            &[("content-type", "application/x-www-form-urlencoded")],
            b"csrf=AAAAAAAAAAAAAAAAAAAAAA".to_vec(),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = b.request("GET", "/account/export", &[], vec![]).await;
    assert_eq!(r.status, 405);
    app.stop().await;
}

#[test]
fn command_line_import_and_export_on_a_stopped_server() {
    let fx = fixtures();
    let want = expected(fx.path());
    let dir = tempfile::tempdir().expect("tempdir");
    common::provision(dir.path(), &[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)]);
    let data = dir.path().join("data");
    let bin = env!("CARGO_BIN_EXE_postern");
    let out = Command::new(bin)
        .args(["import", DEMO])
        .arg(fx.path().join("fixture.tgz"))
        .arg("--dir")
        .arg(&data)
        .output()
        .expect("run import");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("Archive/2024: 250") && err.contains("import done"),
        "{err}"
    );
    assert!(err.contains("100%"), "the bar reaches the end: {err}");
    assert!(err.contains("problem: \"README.txt\""), "{err}");
    for (format, archive) in [("maildir", "zip"), ("mbox", "tgz")] {
        let out = Command::new(bin)
            .args([
                "export",
                DEMO,
                "--format",
                format,
                "--archive",
                archive,
                "--dir",
            ])
            .arg(&data)
            .output()
            .expect("run export");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(py_read(&out.stdout) == want, "{format}.{archive}");
    }
    let out = Command::new(bin)
        .args([
            "export",
            DEMO,
            "--format",
            "mbox",
            "--archive",
            "zip",
            "--mailbox",
            "Nope",
            "--dir",
        ])
        .arg(&data)
        .output()
        .expect("run export");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such mailbox"));
    let out = Command::new(bin)
        .args(["import", "nobody"])
        .arg(fx.path().join("fixture.tgz"))
        .arg("--dir")
        .arg(&data)
        .output()
        .expect("run import");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no account \"nobody\""));
}

#[test]
fn killed_import_leaves_nothing_after_restart() {
    use std::io::Read as _;
    let tmp = tempfile::tempdir().expect("tempdir");
    let big = tmp.path().join("big.tgz");
    big_archive(&big, 30000);
    common::provision(tmp.path(), &[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)]);
    let data = tmp.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_postern"))
        .args(["import", DEMO])
        .arg(&big)
        .arg("--dir")
        .arg(&data)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn import");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    // Kill it (SIGKILL: a crash) once a few staging batches are written.
    let killed = loop {
        let n = stderr.read(&mut buf).expect("read stderr");
        if n == 0 {
            break false;
        }
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        let last: u64 = seen
            .rsplit("messages")
            .nth(1)
            .and_then(|s| s.rsplit(' ').find(|w| !w.is_empty()))
            .and_then(|w| w.parse().ok())
            .unwrap_or(0);
        if last >= 3000 {
            child.kill().expect("kill");
            break true;
        }
    };
    let _ = child.wait();
    assert!(
        killed,
        "the import finished before it could be killed: {seen}"
    );
    let stores = Stores::open(&data).expect("reopen after the crash");
    assert!(
        store::messages(&stores.mail, DEMO)
            .expect("messages")
            .is_empty()
    );
    assert!(
        store::mailboxes(&stores.mail, DEMO)
            .expect("mailboxes")
            .is_empty()
    );
    assert_eq!(store::data_count(&stores.mail, DEMO).expect("data"), 0);
    assert_eq!(store::staged_count(&stores.mail).expect("staged"), 0);
}

#[tokio::test]
async fn shutdown_mid_import_discards_it_and_frees_the_database() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("big.tgz");
    big_archive(&path, 40000);
    let app = TestApp::start().await;
    let mut b = signed_in(&app).await;
    start_import(&mut b, &std::fs::read(&path).expect("read"), None).await;
    // Restarting on the same directory needs the import's database handle gone.
    let mut app = app.restart().await;
    let stores = stop_and_open(&mut app).await;
    assert!(
        store::messages(&stores.mail, DEMO)
            .expect("messages")
            .is_empty()
    );
    assert_eq!(store::data_count(&stores.mail, DEMO).expect("data"), 0);
    assert_eq!(store::staged_count(&stores.mail).expect("staged"), 0);
}

#[tokio::test]
async fn storage_used_counts_mail_and_account_removal_removes_it() {
    let fx = fixtures();
    let mut app = TestApp::start_with(&[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD), COPY], 20).await;
    let mut b = signed_in(&app).await;
    assert_eq!(
        b.api("/account/", "Account", serde_json::json!([]))
            .await
            .result()["StorageUsed"],
        0
    );
    let token = start_import(&mut b, &read(fx.path(), "fixture.zip"), None).await;
    assert_eq!(end(&progress(&app, &token).await), "done");
    // the other account holds mail too, which must survive the removal
    let mut c = app.browser();
    assert!(
        c.login("/account/", Some(COPY.1), COPY.2)
            .await
            .json()
            .get("result")
            .is_some()
    );
    let token = start_import(&mut c, &read(fx.path(), "fixture.tgz"), None).await;
    assert_eq!(end(&progress(&app, &token).await), "done");

    let used = b
        .api("/account/", "Account", serde_json::json!([]))
        .await
        .result()["StorageUsed"]
        .as_u64()
        .expect("bytes");
    let mut admin = app.browser();
    admin.login_admin().await;
    admin
        .api("/admin/", "AccountRemove", serde_json::json!([DEMO]))
        .await
        .result();

    let stores = stop_and_open(&mut app).await;
    assert!(used > 0);
    assert!(
        store::messages(&stores.mail, DEMO)
            .expect("messages")
            .is_empty(),
        "removed account's mail is gone"
    );
    assert!(
        store::mailboxes(&stores.mail, DEMO)
            .expect("mailboxes")
            .is_empty()
    );
    let other: u64 = store::messages(&stores.mail, COPY.0)
        .expect("messages")
        .iter()
        .map(|(_, m)| m.size)
        .sum();
    assert_eq!(
        other, used,
        "the same archive content in the other account, untouched"
    );
}

/// A tgz of `(name, bytes)` entries.
fn tgz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let gz = flate2::write::GzEncoder::new(&mut out, flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append_data(&mut h, name, *data).expect("append");
    }
    b.into_inner()
        .and_then(|gz| gz.finish())
        .expect("finish tgz");
    out
}

/// The two mbox round-trip bugs the fuzz target found (docs/fuzzing.md):
/// a header starting with a continuation line lost it when exported with
/// flags or keywords, and a keyword with a comma came back as two. Imported
/// over HTTP, exported as mbox, imported into another account: the same.
#[tokio::test]
async fn mbox_round_trip_keeps_leading_continuation_lines_and_refuses_comma_keywords() {
    let mut app = TestApp::start_with(&[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD), COPY], 20).await;
    let mut b = signed_in(&app).await;
    let mbox = b"From x Mon Nov 23 16:03:06 2026\n folded first line\n\tand more\nStatus: RO\nX-Status: F\nX-Keywords: fine\nSubject: s\n\nbody\n\nFrom y Mon Nov 23 16:03:07 2026\r\n\tonly a continuation\r\nStatus: R\r\n\r\nbody\r\n";
    let keywords = b"0 a,b\n1 fine\n2 ok\n";
    let archive = tgz(&[
        ("Folded.mbox", mbox),
        ("Kw/dovecot-keywords", keywords),
        (
            "Kw/cur/1700000000.1.host:2,Sabc",
            b"Subject: k\n\nkeywords\n",
        ),
    ]);
    let token = start_import(&mut b, &archive, None).await;
    let evs = progress(&app, &token).await;
    assert_eq!(end(&evs), "done", "{evs:?}");
    let r = export(&mut b, "export/mail-export-mbox.tgz", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let exported = r.body.to_vec();
    let mut c = app.browser();
    let r = c.login("/account/", Some(COPY.1), COPY.2).await;
    assert!(r.json().get("result").is_some(), "{}", r.text());
    let token = start_import(&mut c, &exported, None).await;
    let evs = progress(&app, &token).await;
    assert_eq!(end(&evs), "done", "{evs:?}");
    let stores = stop_and_open(&mut app).await;
    let original = stored(&stores, DEMO);
    let folded: Vec<_> = original.iter().filter(|m| m.0 == "Folded").collect();
    assert_eq!(folded.len(), 2);
    let first = folded
        .iter()
        .find(|m| m.4 == b" folded first line\n\tand more\nSubject: s\n\nbody\n")
        .expect("leading continuation lines are stored");
    assert_eq!(first.2, ["fine"]);
    assert_ne!(first.1, 0, "flags read");
    assert!(
        folded
            .iter()
            .any(|m| m.4 == b"\tonly a continuation\r\n\r\nbody\r\n")
    );
    // The comma keyword is refused at import like any invalid keyword.
    let kw: Vec<_> = original.iter().filter(|m| m.0 == "Kw").collect();
    assert_eq!(kw.len(), 1);
    assert_eq!(kw[0].2, ["fine", "ok"]);
    let copy = stored(&stores, COPY.0);
    assert!(
        copy == original,
        "mbox round trip differs:\n{copy:?}\n{original:?}"
    );
}

#[tokio::test]
async fn removing_an_account_aborts_its_running_import_and_nothing_is_published() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("big.tgz");
    big_archive(&path, 40000);
    let mut app = TestApp::start_with(&[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD), COPY], 20).await;
    let mut admin = app.browser();
    admin.login_admin().await;
    let mut b = signed_in(&app).await;
    let token = start_import(&mut b, &std::fs::read(&path).expect("read"), None).await;
    let listener = tokio::spawn(progress_at(app.addr, token.clone()));
    let r = admin
        .api("/admin/", "AccountRemove", serde_json::json!([DEMO]))
        .await;
    assert!(r.json().get("error").is_none(), "remove: {}", r.text());
    let evs = listener.await.expect("listener");
    assert_eq!(end(&evs), "aborted", "{evs:?}");
    // The import has ended by the time the removal answered: a late
    // listener gets the same end at once.
    assert_eq!(end(&progress(&app, &token).await), "aborted");
    let r = b
        .api("/account/", "ImportAbort", serde_json::json!([token]))
        .await;
    assert!(r.json().get("error").is_some(), "{}", r.text());
    // The server is healthy: the admin API answers, and another account
    // imports to the end.
    let r = admin
        .api("/admin/", "Accounts", serde_json::json!([]))
        .await;
    assert!(!r.text().contains(&format!("\"{DEMO}\"")), "{}", r.text());
    let mut c = app.browser();
    let r = c.login("/account/", Some(COPY.1), COPY.2).await;
    assert!(r.json().get("result").is_some(), "{}", r.text());
    let fx = fixtures();
    let token = start_import(&mut c, &read(fx.path(), "fixture.tgz"), None).await;
    assert_eq!(end(&progress(&app, &token).await), "done");
    let stores = stop_and_open(&mut app).await;
    assert!(
        store::messages(&stores.mail, DEMO)
            .expect("messages")
            .is_empty(),
        "nothing published for the removed account"
    );
    assert!(
        store::mailboxes(&stores.mail, DEMO)
            .expect("mailboxes")
            .is_empty()
    );
    assert_eq!(store::data_count(&stores.mail, DEMO).expect("data"), 0);
    assert_eq!(store::staged_count(&stores.mail).expect("staged"), 0);
    assert_eq!(
        store::messages(&stores.mail, COPY.0)
            .expect("messages")
            .len(),
        261
    );
}
