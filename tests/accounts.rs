//! The account self-service API over HTTP: account view, full name,
//! destinations, passwords, sessions and sign-in attempts.

mod common;

use common::*;
use serde_json::{Value, json};

const A: &str = "/account/";

fn inbox() -> Value {
    json!({"FullName": "", "Mailbox": "Inbox", "Rules": []})
}

#[tokio::test]
async fn account_view_and_full_name() {
    let t = TestApp::start().await;
    let mut b = t.browser();
    b.login_account().await;
    let r = b.api(A, "Account", json!([])).await.result();
    assert_eq!(r["Name"], "demo");
    assert_eq!(r["FullName"], "");
    assert_eq!(r["LoginDisabled"], "");
    assert_eq!(r["StorageUsed"], 0);
    assert_eq!(r["Addresses"], json!([DEMO_ADDRESS]));
    assert_eq!(r["Destinations"], json!({ DEMO_ADDRESS: inbox() }));

    let r = b.api(A, "AccountSaveFullName", json!(["Demo Ü"])).await;
    assert_eq!(r.result(), Value::Null);
    let r = b.api(A, "AccountSaveFullName", json!(["bad\nname"])).await;
    assert_eq!(r.error_code().as_deref(), Some("user:error"));
    assert!(
        r.error_message().contains("control character"),
        "{}",
        r.text()
    );
    let r = b
        .api(A, "AccountSaveFullName", json!(["x".repeat(256)]))
        .await;
    assert_eq!(r.error_code().as_deref(), Some("user:error"));
    let r = b.api(A, "AccountSaveFullName", json!([1])).await;
    assert_eq!(r.error_code().as_deref(), Some("sherpa:badParams"));

    // durable: a restart reads it back
    let t = t.restart().await;
    let mut b = t.browser();
    b.login_account().await;
    let r = b.api(A, "Account", json!([])).await.result();
    assert_eq!(r["FullName"], "Demo Ü");
    t.stop().await;
}

#[tokio::test]
async fn destination_save_is_optimistic() {
    let t = TestApp::start().await;
    let mut tab1 = t.browser();
    tab1.login_account().await;
    let mut tab2 = t.browser();
    tab2.login_account().await;

    let new = json!({"FullName": "Demo", "Mailbox": "Inbox", "Rules": [
        {"Header": "List-Id", "Contains": "rust-users", "Mailbox": "Lists/Rust"}
    ]});
    let r = tab1
        .api(A, "DestinationSave", json!([DEMO_ADDRESS, inbox(), new]))
        .await;
    assert_eq!(r.result(), Value::Null);

    // the second tab still holds the old destination: refused, nothing changes
    let other = json!({"FullName": "", "Mailbox": "Archive", "Rules": []});
    let r = tab2
        .api(A, "DestinationSave", json!([DEMO_ADDRESS, inbox(), other]))
        .await;
    assert_eq!(r.error_code().as_deref(), Some("user:error"));
    assert_eq!(r.error_message(), "modified");
    let acc = tab2.api(A, "Account", json!([])).await.result();
    assert_eq!(acc["Destinations"][DEMO_ADDRESS], new);

    // after reloading, the second tab's change goes through
    let r = tab2
        .api(A, "DestinationSave", json!([DEMO_ADDRESS, new, other]))
        .await;
    assert_eq!(r.result(), Value::Null);
    let acc = tab1.api(A, "Account", json!([])).await.result();
    assert_eq!(acc["Destinations"][DEMO_ADDRESS], other);

    // the address is matched normalized (domain case)
    let r = tab1
        .api(
            A,
            "DestinationSave",
            json!(["demo@LOCALHOST", other, inbox()]),
        )
        .await;
    assert_eq!(r.result(), Value::Null);

    // unknown destination
    for d in ["nobody@localhost", "not an address"] {
        let r = tab1
            .api(A, "DestinationSave", json!([d, inbox(), inbox()]))
            .await;
        assert_eq!(r.error_code().as_deref(), Some("user:error"), "{d}");
        assert_eq!(r.error_message(), "unknown destination");
    }
    // invalid new destinations
    let bad = [
        json!({"FullName": "", "Mailbox": "", "Rules": []}),
        json!({"FullName": "", "Mailbox": "Inbox", "Rules": [
            {"Header": "Bad Header:", "Contains": "x", "Mailbox": "X"}]}),
        json!({"FullName": "", "Mailbox": "Inbox", "Rules": [
            {"Header": "From", "Contains": "", "Mailbox": "X"}]}),
    ];
    for nd in bad {
        let r = tab1
            .api(A, "DestinationSave", json!([DEMO_ADDRESS, inbox(), nd]))
            .await;
        assert_eq!(r.error_code().as_deref(), Some("user:error"), "{nd}");
    }
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"Header": "From", "Contains": format!("{i}"), "Mailbox": "X"}))
        .collect();
    let r = tab1
        .api(
            A,
            "DestinationSave",
            json!([DEMO_ADDRESS, inbox(), {"FullName": "", "Mailbox": "Inbox", "Rules": many}]),
        )
        .await;
    assert!(
        r.error_message().contains("more than 100 rules"),
        "{}",
        r.text()
    );
    // unknown fields are a parameter error
    let r = tab1
        .api(
            A,
            "DestinationSave",
            json!([DEMO_ADDRESS, inbox(), {"Mailbox": "Inbox", "Rules": [], "FullName": "", "X": 1}]),
        )
        .await;
    assert_eq!(r.error_code().as_deref(), Some("sherpa:badParams"));
    t.stop().await;
}

#[tokio::test]
async fn generate_and_set_password() {
    let t = TestApp::start().await;
    let mut b = t.browser();
    b.login_account().await;
    let p1 = b.api(A, "GeneratePassword", json!([])).await.result();
    let p2 = b.api(A, "GeneratePassword", json!([])).await.result();
    let p1 = p1.as_str().expect("string").to_string();
    assert!(p1.len() >= 20, "{p1}");
    assert_ne!(Some(p1.as_str()), p2.as_str());
    let r = b.api(A, "SetPassword", json!(["short"])).await;
    assert_eq!(r.error_code().as_deref(), Some("user:error"));
    assert_eq!(
        b.api(A, "SetPassword", json!([p1])).await.result(),
        Value::Null
    );
    let mut other = t.browser();
    let r = other.login(A, Some(DEMO_ADDRESS), DEMO_PASSWORD).await;
    assert_eq!(r.error_code().as_deref(), Some("user:loginFailed"));
    let r = other.login(A, Some(DEMO_ADDRESS), &p1).await;
    assert!(r.error_code().is_none(), "{}", r.text());
    t.stop().await;
}

#[tokio::test]
async fn sessions_list_and_revoke() {
    let t = TestApp::start_with(
        &[
            (DEMO, DEMO_ADDRESS, DEMO_PASSWORD),
            ("mjl", "mjl@localhost", "mjlmjlmjl"),
        ],
        20,
    )
    .await;
    let mut a = t.browser().with_ip("127.0.0.2");
    a.agent = "Agent A".into();
    a.login_account().await;
    let mut b = t.browser().with_ip("127.0.0.3");
    b.agent = "Agent B".into();
    b.login_account().await;
    let mut mail = t.browser();
    let r = mail
        .login("/webmail/", Some(DEMO_ADDRESS), DEMO_PASSWORD)
        .await;
    assert!(r.error_code().is_none());
    b.agent = "Agent B2".into();
    assert!(b.api(A, "Version", json!([])).await.error_code().is_none());

    let r = a.api(A, "Sessions", json!([])).await;
    let text = r.text();
    let list = r.result();
    let list = list.as_array().expect("list");
    assert_eq!(list.len(), 3, "{list:?}");
    assert_eq!(list.iter().filter(|s| s["Current"] == true).count(), 1);
    let mine = list.iter().find(|s| s["Current"] == true).expect("mine");
    assert_eq!(mine["Kind"], "webaccount");
    assert_eq!(mine["CreatedIP"], "127.0.0.2");
    assert_eq!(mine["CreatedAgent"], "Agent A");
    assert_eq!(mine["LoginAddress"], DEMO_ADDRESS);
    assert!(mine["ID"].is_string());
    assert!(mine["Expires"].as_i64() > mine["LastUsed"].as_i64());
    let bs = list
        .iter()
        .find(|s| s["CreatedIP"] == "127.0.0.3")
        .expect("b's session");
    assert_eq!(bs["CreatedAgent"], "Agent B");
    assert_eq!(bs["LastAgent"], "Agent B2");
    assert_eq!(bs["LastIP"], "127.0.0.3");
    assert!(list.iter().any(|s| s["Kind"] == "webmail"));
    // no secret in the listing
    for v in a.cookies.values() {
        let token = v.trim_matches('"').split(' ').next().expect("token");
        assert!(!text.contains(token), "token leaked");
    }
    assert!(!text.contains(a.csrf.as_deref().expect("csrf")));

    // another account's session id is not found, and that session lives on
    let mut m = t.browser();
    m.login(A, Some("mjl@localhost"), "mjlmjlmjl").await;
    let mlist = m.api(A, "Sessions", json!([])).await.result();
    let mid = mlist[0]["ID"].as_str().expect("id").to_string();
    let r = a.api(A, "SessionRevoke", json!([mid])).await;
    assert_eq!(r.error_code().as_deref(), Some("user:error"));
    assert_eq!(r.error_message(), "unknown session");
    assert!(m.api(A, "Version", json!([])).await.error_code().is_none());
    for bad in ["nonsense", "", "123"] {
        let r = a.api(A, "SessionRevoke", json!([bad])).await;
        assert_eq!(r.error_message(), "unknown session", "{bad}");
    }

    // revoke b's session: b is out at once
    let bid = bs["ID"].as_str().expect("id");
    assert_eq!(
        a.api(A, "SessionRevoke", json!([bid])).await.result(),
        Value::Null
    );
    let r = b.api(A, "Version", json!([])).await;
    assert_eq!(r.error_code().as_deref(), Some("user:badAuth"));
    // revoke the others (webmail): a stays
    let r = a.api(A, "SessionRevokeOthers", json!([])).await;
    assert_eq!(r.result(), 1);
    let r = mail.api("/webmail/", "Version", json!([])).await;
    assert_eq!(r.error_code().as_deref(), Some("user:badAuth"));
    let list = a.api(A, "Sessions", json!([])).await.result();
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert!(m.api(A, "Version", json!([])).await.error_code().is_none());
    t.stop().await;
}

#[tokio::test]
async fn login_attempts_are_recorded_newest_first() {
    let t = TestApp::start().await;
    let mut x = t.browser().with_ip("127.0.0.9");
    x.agent = "Attacker".into();
    let r = x.login(A, Some(DEMO_ADDRESS), "wrongwrong").await;
    assert_eq!(r.error_code().as_deref(), Some("user:loginFailed"));
    // unknown users are not recorded anywhere
    x.login(A, Some("nobody@localhost"), "wrongwrong").await;
    let mut b = t.browser();
    b.login_account().await;
    let r = b.api(A, "LoginAttempts", json!([10])).await.result();
    let l = r.as_array().expect("list");
    assert_eq!(l.len(), 2, "{l:?}");
    assert_eq!(l[0]["Result"], "ok");
    assert_eq!(l[0]["UserAgent"], "postern-test/1");
    assert_eq!(l[1]["Result"], "badpassword");
    assert_eq!(l[1]["IP"], "127.0.0.9");
    assert_eq!(l[1]["UserAgent"], "Attacker");
    assert_eq!(l[1]["LoginAddress"], DEMO_ADDRESS);
    assert_eq!(l[1]["Kind"], "webaccount");
    assert!(l[0]["Time"].as_i64() >= l[1]["Time"].as_i64());
    let r = b.api(A, "LoginAttempts", json!([1])).await.result();
    assert_eq!(r.as_array().map(Vec::len), Some(1));
    let r = b.api(A, "LoginAttempts", json!([-1])).await;
    assert_eq!(r.error_code().as_deref(), Some("sherpa:badParams"));
    // kept across a restart (written at shutdown at the latest)
    let t = t.restart().await;
    let mut b = t.browser();
    b.login_account().await;
    let r = b.api(A, "LoginAttempts", json!([0])).await.result();
    assert_eq!(r.as_array().map(Vec::len), Some(3));
    t.stop().await;
}

#[tokio::test]
async fn account_api_needs_an_account_session_and_csrf() {
    let t = TestApp::start().await;
    let mut b = t.browser();
    b.login_account().await;
    let csrf = b.csrf.take();
    for f in [
        "Account",
        "Sessions",
        "SessionRevokeOthers",
        "GeneratePassword",
    ] {
        let r = b.api(A, f, json!([])).await;
        assert_eq!(r.error_code().as_deref(), Some("user:noAuth"), "{f}");
        assert_eq!(r.error_message(), "missing required csrf header");
    }
    b.csrf = csrf;
    // an admin session is the wrong kind of session for the account API
    let mut admin = t.browser();
    admin.login_admin().await;
    let r = admin.api(A, "Sessions", json!([])).await;
    assert_eq!(
        r.error_code().as_deref(),
        Some("user:noAuth"),
        "{}",
        r.text()
    );
    // and an account session for the admin API
    let r = b.api("/admin/", "Accounts", json!([])).await;
    assert_eq!(
        r.error_code().as_deref(),
        Some("user:noAuth"),
        "{}",
        r.text()
    );
    // a webmail session does not work on the account interface
    let mut mail = t.browser();
    mail.login("/webmail/", Some(DEMO_ADDRESS), DEMO_PASSWORD)
        .await;
    let cookie = mail
        .cookies
        .iter()
        .find(|((n, _), _)| n == "webmailsession")
        .map(|(_, v)| v.clone())
        .expect("webmail cookie");
    let mut forged = t.browser();
    forged
        .cookies
        .insert(("webaccountsession".into(), "/account/".into()), cookie);
    forged.csrf = mail.csrf.clone();
    let r = forged.api(A, "Sessions", json!([])).await;
    assert_eq!(r.error_code().as_deref(), Some("user:badAuth"));

    // the function list names every call
    let csrf = b.csrf.clone().expect("csrf");
    let r = b
        .request(
            "GET",
            "/account/api/",
            &[("x-mox-csrf", csrf.as_str())],
            vec![],
        )
        .await;
    let doc = r.json();
    for f in [
        "Account",
        "AccountSaveFullName",
        "DestinationSave",
        "SetPassword",
        "GeneratePassword",
        "Sessions",
        "SessionRevoke",
        "SessionRevokeOthers",
        "LoginAttempts",
    ] {
        assert!(
            doc["Functions"]
                .as_array()
                .expect("list")
                .contains(&json!(f)),
            "{f}"
        );
    }
    t.stop().await;
}
