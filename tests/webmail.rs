//! The webmail API over real HTTP: mailboxes with counts, pages of the
//! newest messages, one message's text, and what another account and bad
//! input get. Mail arrives through the real import (an archive made by
//! Python's `mailbox` module, tests/fixtures/mailfix.py).

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const COPY: (&str, &str, &str) = ("copy", "copy@localhost", "copycopy");

fn fixture_zip() -> Vec<u8> {
    let d = mail_fixtures();
    std::fs::read(d.path().join("fixture.zip")).expect("fixture.zip")
}

async fn import(b: &mut Browser, zip: &[u8]) {
    let bnd = "webmail-test-boundary";
    let mut body = format!(
        "--{bnd}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.zip\"\r\nContent-Type: application/zip\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(zip);
    body.extend_from_slice(format!("\r\n--{bnd}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={bnd}");
    let csrf = b.csrf.clone().expect("signed in");
    let r = b
        .request(
            "POST",
            "/account/import",
            &[("content-type", ct.as_str()), ("x-mox-csrf", csrf.as_str())],
            body,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

fn mailbox<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .expect("list")
        .iter()
        .find(|m| m["Name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn webmail_lists_pages_and_reads_only_its_own_mail() {
    let t = TestApp::start_with(&[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD), COPY], 20).await;
    let mut acc = t.browser();
    acc.login_account().await;
    let mut wm = t.browser();
    wm.login("/webmail/", Some(DEMO_ADDRESS), DEMO_PASSWORD)
        .await
        .result();

    // before any mail: no mailboxes
    let r = wm.api("/webmail/", "Mailboxes", json!([])).await;
    assert_eq!(r.result(), json!([]));

    import(&mut acc, &fixture_zip()).await;
    // the import runs in the background: wait until it is published
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let list = loop {
        let list = wm.api("/webmail/", "Mailboxes", json!([])).await.result();
        if list.as_array().is_some_and(|l| !l.is_empty()) {
            break list;
        }
        assert!(std::time::Instant::now() < deadline, "import never landed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(mailbox(&list, "Archive/2024")["Total"], 250);
    assert_eq!(mailbox(&list, "Lists/dev")["Total"], 5);
    let inbox = mailbox(&list, "Inbox");
    assert_eq!(inbox["Total"], 6);
    // the fixture marks 3 of the 6 as read (Status R)
    assert_eq!(inbox["Unseen"], 3);

    // pages: the default size, the cap, the end
    let p = wm
        .api("/webmail/", "Messages", json!(["Archive/2024", 0, 0]))
        .await
        .result();
    assert_eq!(p["Total"], 250);
    assert_eq!(p["Messages"].as_array().expect("list").len(), 50);
    let p = wm
        .api("/webmail/", "Messages", json!(["Archive/2024", 0, 100000]))
        .await
        .result();
    assert_eq!(p["Messages"].as_array().expect("list").len(), 200);
    let p = wm
        .api("/webmail/", "Messages", json!(["Archive/2024", 240, 50]))
        .await
        .result();
    assert_eq!(p["Messages"].as_array().expect("list").len(), 10);
    let p = wm
        .api("/webmail/", "Messages", json!(["Archive/2024", 9999, 50]))
        .await
        .result();
    assert_eq!(p["Messages"], json!([]));
    // newest first
    let p = wm
        .api("/webmail/", "Messages", json!(["Inbox", 0, 50]))
        .await
        .result();
    let msgs = p["Messages"].as_array().expect("list");
    let times: Vec<i64> = msgs
        .iter()
        .map(|m| m["Received"].as_i64().expect("ms"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    let greeting = msgs
        .iter()
        .find(|m| m["Subject"] == "Grüße ☺ aus Köln")
        .unwrap_or_else(|| panic!("decoded subject in {p}"));
    assert_eq!(greeting["From"], "Jörg <joerg@example.org>");
    let id = greeting["ID"].as_u64().expect("id");

    // one message's text
    let m = wm.api("/webmail/", "Message", json!([id])).await.result();
    assert_eq!(m["Mailbox"], "Inbox");
    assert_eq!(m["To"], "demo@localhost");
    let text = m["Text"].as_str().expect("text");
    assert!(
        text.contains("Hallo!\nFrom here on, a line starts with From."),
        "{text}"
    );

    // errors
    let r = wm
        .api("/webmail/", "Messages", json!(["Nope", 0, 10]))
        .await;
    assert_eq!(
        (r.error_code().as_deref(), r.error_message().as_str()),
        (Some("user:error"), "unknown mailbox")
    );
    let r = wm.api("/webmail/", "Message", json!([u64::MAX])).await;
    assert_eq!(r.error_message(), "unknown message");
    let r = wm.api("/webmail/", "Message", json!(["1"])).await;
    assert_eq!(r.error_code().as_deref(), Some("sherpa:badParams"));
    let r = wm
        .api("/webmail/", "Messages", json!(["Inbox", -1, 10]))
        .await;
    assert_eq!(r.error_code().as_deref(), Some("sherpa:badParams"));

    // another account sees none of it, not even by id
    let mut other = t.browser();
    other
        .login("/webmail/", Some(COPY.1), COPY.2)
        .await
        .result();
    assert_eq!(
        other
            .api("/webmail/", "Mailboxes", json!([]))
            .await
            .result(),
        json!([])
    );
    let r = other.api("/webmail/", "Message", json!([id])).await;
    assert_eq!(r.error_message(), "unknown message");
    let r = other
        .api("/webmail/", "Messages", json!(["Inbox", 0, 10]))
        .await;
    assert_eq!(r.error_message(), "unknown mailbox");

    // the webmail functions are the webmail's only
    let r = acc.api("/account/", "Mailboxes", json!([])).await;
    assert_eq!(r.error_code().as_deref(), Some("sherpa:badFunction"));
    // and need a webmail session
    let r = send(t.addr, "POST", "/webmail/api/Mailboxes", &[], vec![]).await;
    assert_eq!(r.error_code().as_deref(), Some("user:noAuth"));
    t.stop().await;
}
