//! The admin API over HTTP: accounts, addresses, passwords, login disabling,
//! sessions, rate limits and sign-in attempts.

mod common;

use common::*;
use serde_json::{Value, json};

const AD: &str = "/admin/";
const A: &str = "/account/";

async fn admin(t: &TestApp) -> Browser {
    let mut b = t.browser();
    b.login_admin().await;
    b
}

fn user_error(r: &Resp, contains: &str) {
    assert_eq!(
        r.error_code().as_deref(),
        Some("user:error"),
        "{}",
        r.text()
    );
    assert!(
        r.error_message().contains(contains),
        "{:?} does not contain {contains:?}",
        r.error_message()
    );
}

#[tokio::test]
async fn accounts_add_show_remove() {
    let t = TestApp::start().await;
    let mut ad = admin(&t).await;
    let r = ad
        .api(AD, "AccountAdd", json!(["mjl", "mjl@Example.ORG"]))
        .await;
    assert_eq!(r.result(), Value::Null);
    let list = ad.api(AD, "Accounts", json!([])).await.result();
    assert_eq!(
        list,
        json!([{"Name": "demo", "LoginDisabled": ""}, {"Name": "mjl", "LoginDisabled": ""}])
    );
    let acc = ad.api(AD, "Account", json!(["mjl"])).await.result();
    assert_eq!(acc["Addresses"], json!(["mjl@example.org"]));
    assert_eq!(acc["Destinations"]["mjl@example.org"]["Mailbox"], "Inbox");
    assert_eq!(acc["StorageUsed"], 0);

    user_error(
        &ad.api(AD, "AccountAdd", json!(["mjl", "other@example.org"]))
            .await,
        "account already exists",
    );
    user_error(
        &ad.api(AD, "AccountAdd", json!(["x", "mjl@example.org"]))
            .await,
        "address already in use",
    );
    for (name, addr, msg) in [
        ("a/b", "ab@x", "account name:"),
        ("", "e@x", "account name: name is empty"),
        ("ctl\u{7}", "c@x", "account name:"),
        (" pad", "p@x", "account name:"),
        ("ok", "no-at-sign", "address:"),
        ("ok", "a@b@c", "address:"),
    ] {
        user_error(&ad.api(AD, "AccountAdd", json!([name, addr])).await, msg);
    }
    user_error(
        &ad.api(AD, "AccountAdd", json!(["x".repeat(256), "y@x"]))
            .await,
        "longer than 255",
    );
    user_error(
        &ad.api(AD, "Account", json!(["nobody"])).await,
        "unknown account",
    );
    user_error(
        &ad.api(AD, "Account", json!(["a/b"])).await,
        "account name:",
    );

    // a new account has no password: nobody can sign in until one is set
    let mut m = t.browser();
    let r = m.login(A, Some("mjl@example.org"), "").await;
    assert_eq!(r.error_code().as_deref(), Some("user:loginFailed"));
    user_error(
        &ad.api(AD, "SetPassword", json!(["mjl", "short"])).await,
        "",
    );
    user_error(
        &ad.api(AD, "SetPassword", json!(["nobody", "longenough"]))
            .await,
        "unknown account",
    );
    let r = ad.api(AD, "SetPassword", json!(["mjl", "mjlsecret"])).await;
    assert_eq!(r.result(), Value::Null);
    let r = m.login(A, Some("mjl@example.org"), "mjlsecret").await;
    assert!(r.error_code().is_none(), "{}", r.text());
    assert!(m.api(A, "Account", json!([])).await.error_code().is_none());

    // removal: the live session stops at once, sign-in fails, the name and
    // address are free again
    let r = ad.api(AD, "AccountRemove", json!(["mjl"])).await;
    assert_eq!(r.result(), Value::Null);
    let r = m.api(A, "Account", json!([])).await;
    assert_eq!(
        r.error_code().as_deref(),
        Some("user:badAuth"),
        "{}",
        r.text()
    );
    let r = t
        .browser()
        .login(A, Some("mjl@example.org"), "mjlsecret")
        .await;
    assert_eq!(r.error_code().as_deref(), Some("user:loginFailed"));
    user_error(
        &ad.api(AD, "AccountRemove", json!(["mjl"])).await,
        "unknown account",
    );
    user_error(
        &ad.api(AD, "LoginAttempts", json!(["mjl", 10])).await,
        "unknown account",
    );
    let list = ad.api(AD, "Accounts", json!([])).await.result();
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let r = ad
        .api(AD, "AccountAdd", json!(["mjl", "mjl@example.org"]))
        .await;
    assert_eq!(r.result(), Value::Null);
    let acc = ad.api(AD, "Account", json!(["mjl"])).await.result();
    assert_eq!(acc["FullName"], "");
    let s = ad.api(AD, "AccountSessions", json!(["mjl"])).await.result();
    assert_eq!(s, json!([]), "old sessions gone with the old account");
    t.stop().await;
}

#[tokio::test]
async fn addresses_add_and_remove() {
    let t = TestApp::start_with(
        &[
            (DEMO, DEMO_ADDRESS, DEMO_PASSWORD),
            ("mjl", "mjl@localhost", "mjlmjlmjl"),
        ],
        20,
    )
    .await;
    let mut ad = admin(&t).await;
    let r = ad
        .api(AD, "AddressAdd", json!(["Second@LOCALHOST", "demo"]))
        .await;
    assert_eq!(r.result(), Value::Null);
    let mut b = t.browser();
    let r = b.login(A, Some("Second@localhost"), DEMO_PASSWORD).await;
    assert!(r.error_code().is_none(), "{}", r.text());
    let acc = b.api(A, "Account", json!([])).await.result();
    assert_eq!(acc["Addresses"], json!([DEMO_ADDRESS, "Second@localhost"]));
    assert!(acc["Destinations"]["Second@localhost"].is_object());

    user_error(
        &ad.api(AD, "AddressAdd", json!(["mjl@localhost", "demo"]))
            .await,
        "address already in use",
    );
    user_error(
        &ad.api(AD, "AddressAdd", json!(["x@localhost", "nobody"]))
            .await,
        "unknown account",
    );
    user_error(
        &ad.api(AD, "AddressAdd", json!(["bad", "demo"])).await,
        "address:",
    );
    user_error(
        &ad.api(AD, "AddressRemove", json!(["nobody@localhost"]))
            .await,
        "unknown address",
    );
    let r = ad
        .api(AD, "AddressRemove", json!(["Second@localhost"]))
        .await;
    assert_eq!(r.result(), Value::Null);
    let acc = b.api(A, "Account", json!([])).await.result();
    assert_eq!(acc["Addresses"], json!([DEMO_ADDRESS]));
    let r = t
        .browser()
        .login(A, Some("Second@localhost"), DEMO_PASSWORD)
        .await;
    assert_eq!(r.error_code().as_deref(), Some("user:loginFailed"));
    user_error(
        &ad.api(AD, "AddressRemove", json!([DEMO_ADDRESS])).await,
        "last address",
    );
    t.stop().await;
}

#[tokio::test]
async fn disabled_login_stops_existing_sessions_at_once() {
    let t = TestApp::start().await;
    let mut user = t.browser();
    user.login_account().await;
    let mut mail = t.browser();
    mail.login("/webmail/", Some(DEMO_ADDRESS), DEMO_PASSWORD)
        .await;
    let mut ad = admin(&t).await;
    let r = ad
        .api(
            AD,
            "AccountLoginDisabledSave",
            json!(["demo", "on holiday"]),
        )
        .await;
    assert_eq!(r.result(), Value::Null);
    for (b, prefix) in [(&mut user, A), (&mut mail, "/webmail/")] {
        let r = b.api(prefix, "Version", json!([])).await;
        assert_eq!(r.error_code().as_deref(), Some("user:badAuth"), "{prefix}");
        assert_eq!(r.error_message(), "login disabled: on holiday");
    }
    let r = t
        .browser()
        .login(A, Some(DEMO_ADDRESS), DEMO_PASSWORD)
        .await;
    assert_eq!(r.error_code().as_deref(), Some("user:loginFailed"));
    assert_eq!(r.error_message(), "login disabled: on holiday");
    let list = ad.api(AD, "Accounts", json!([])).await.result();
    assert_eq!(list[0]["LoginDisabled"], "on holiday");
    let att = ad
        .api(AD, "LoginAttempts", json!(["demo", 1]))
        .await
        .result();
    assert_eq!(att[0]["Result"], "disabled");

    user_error(
        &ad.api(AD, "AccountLoginDisabledSave", json!(["demo", "a\nb"]))
            .await,
        "control characters",
    );
    user_error(
        &ad.api(AD, "AccountLoginDisabledSave", json!(["nobody", "x"]))
            .await,
        "unknown account",
    );
    // survives a restart
    let t = t.restart().await;
    let r = t
        .browser()
        .login(A, Some(DEMO_ADDRESS), DEMO_PASSWORD)
        .await;
    assert_eq!(r.error_message(), "login disabled: on holiday");
    // an empty reason enables login again
    let mut ad = admin(&t).await;
    let r = ad
        .api(AD, "AccountLoginDisabledSave", json!(["demo", ""]))
        .await;
    assert_eq!(r.result(), Value::Null);
    t.browser().login_account().await;
    t.stop().await;
}

#[tokio::test]
async fn admin_set_password_and_sessions() {
    let t = TestApp::start().await;
    let mut b1 = t.browser();
    b1.login_account().await;
    let mut b2 = t.browser();
    b2.login_account().await;
    let mut ad = admin(&t).await;
    let s = ad
        .api(AD, "AccountSessions", json!(["demo"]))
        .await
        .result();
    let s = s.as_array().expect("list");
    assert_eq!(s.len(), 2);
    assert!(
        s.iter()
            .all(|x| x["Current"] == false && x["Kind"] == "webaccount")
    );
    user_error(
        &ad.api(AD, "AccountSessions", json!(["nobody"])).await,
        "unknown account",
    );
    let r = ad.api(AD, "AccountSessionsRevoke", json!(["demo"])).await;
    assert_eq!(r.result(), 2);
    for b in [&mut b1, &mut b2] {
        let r = b.api(A, "Version", json!([])).await;
        assert_eq!(r.error_code().as_deref(), Some("user:badAuth"));
    }
    user_error(
        &ad.api(AD, "AccountSessionsRevoke", json!(["nobody"])).await,
        "unknown account",
    );

    // SetPassword revokes every session of the account
    b1.login_account().await;
    let r = ad
        .api(AD, "SetPassword", json!(["demo", "newpassword"]))
        .await;
    assert_eq!(r.result(), Value::Null);
    let r = b1.api(A, "Version", json!([])).await;
    assert_eq!(r.error_code().as_deref(), Some("user:badAuth"));
    let r = t
        .browser()
        .login(A, Some(DEMO_ADDRESS), "newpassword")
        .await;
    assert!(r.error_code().is_none());
    t.stop().await;
}

#[tokio::test]
async fn rate_limits_list_and_reset() {
    let t = TestApp::start_with(&[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)], 1).await;
    let mut x = t.browser().with_ip("127.0.0.5");
    let mut limited = false;
    for _ in 0..12 {
        let r = x.login(A, Some(DEMO_ADDRESS), "wrongwrong").await;
        if r.error_message() == "too many authentication attempts" {
            limited = true;
            break;
        }
    }
    assert!(limited);
    let mut ad = admin(&t).await;
    let l = ad.api(AD, "RateLimits", json!([])).await.result();
    let l = l.as_array().expect("list");
    let e = l
        .iter()
        .find(|e| e["Prefix"] == "127.0.0.5/32")
        .unwrap_or_else(|| panic!("no /32 entry in {l:?}"));
    assert_eq!(e["WindowSeconds"], 60);
    assert_eq!(e["Limit"], 10);
    assert!(e["Count"].as_u64() >= Some(10));
    assert!(e["ClearsInMs"].as_u64() <= Some(60_000));
    user_error(
        &ad.api(AD, "RateLimitReset", json!(["not-an-ip"])).await,
        "not an IP address",
    );
    let r = ad.api(AD, "RateLimitReset", json!(["127.0.0.5"])).await;
    assert_eq!(r.result(), Value::Null);
    let l = ad.api(AD, "RateLimits", json!([])).await.result();
    assert_eq!(l, json!([]));
    let r = x.login(A, Some(DEMO_ADDRESS), DEMO_PASSWORD).await;
    assert!(r.error_code().is_none(), "{}", r.text());
    t.stop().await;
}

#[tokio::test]
async fn login_attempts_of_accounts_and_admin() {
    let t = TestApp::start().await;
    let mut x = t.browser().with_ip("127.0.0.7");
    let r = x.login(AD, None, "wrongwrong").await;
    assert_eq!(r.error_code().as_deref(), Some("user:loginFailed"));
    x.login(A, Some(DEMO_ADDRESS), "wrongwrong").await;
    let mut ad = admin(&t).await;
    let l = ad.api(AD, "AdminLoginAttempts", json!([10])).await.result();
    assert_eq!(l.as_array().map(Vec::len), Some(2), "{l}");
    assert_eq!(l[0]["Result"], "ok");
    assert_eq!(l[1]["Result"], "badpassword");
    assert_eq!(l[1]["Kind"], "webadmin");
    assert_eq!(l[1]["IP"], "127.0.0.7");
    assert_eq!(l[1]["LoginAddress"], "");
    let l = ad
        .api(AD, "LoginAttempts", json!(["demo", 10]))
        .await
        .result();
    assert_eq!(l.as_array().map(Vec::len), Some(1));
    assert_eq!(l[0]["Result"], "badpassword");
    user_error(
        &ad.api(AD, "LoginAttempts", json!(["", 10])).await,
        "account name",
    );
    t.stop().await;
}

#[tokio::test]
async fn admin_api_needs_an_admin_session_and_csrf() {
    let t = TestApp::start().await;
    let mut ad = admin(&t).await;
    let csrf = ad.csrf.take();
    let r = ad.api(AD, "Accounts", json!([])).await;
    assert_eq!(r.error_code().as_deref(), Some("user:noAuth"));
    ad.csrf = Some("AAAAAAAAAAAAAAAAAAAAAA".into());
    let r = ad.api(AD, "AccountAdd", json!(["x", "x@x"])).await;
    assert_eq!(r.error_code().as_deref(), Some("user:badAuth"));
    ad.csrf = csrf;
    let mut user = t.browser();
    user.login_account().await;
    for f in ["AccountSessionsRevoke", "AccountRemove", "Account"] {
        let r = user.api(AD, f, json!(["demo"])).await;
        assert_eq!(r.error_code().as_deref(), Some("user:noAuth"), "{f}");
    }
    assert!(
        user.api(A, "Version", json!([]))
            .await
            .error_code()
            .is_none()
    );
    // control-socket-only functions do not exist on the web
    let r = ad.api(AD, "AdminSetPassword", json!(["whatever123"])).await;
    assert_eq!(r.error_code().as_deref(), Some("sherpa:badFunction"));
    let r = ad.api(AD, "AccountAdd", json!(["x"])).await;
    assert_eq!(r.error_code().as_deref(), Some("sherpa:badParams"));
    // the function list names every call, and not the control-only one
    let csrf = ad.csrf.clone().expect("csrf");
    let doc = ad
        .request(
            "GET",
            "/admin/api/",
            &[("x-mox-csrf", csrf.as_str())],
            vec![],
        )
        .await
        .json();
    let fs = doc["Functions"].as_array().expect("list").clone();
    for f in [
        "Accounts",
        "Account",
        "AccountAdd",
        "AccountRemove",
        "AddressAdd",
        "AddressRemove",
        "SetPassword",
        "AccountLoginDisabledSave",
        "AccountSessions",
        "AccountSessionsRevoke",
        "RateLimits",
        "RateLimitReset",
        "LoginAttempts",
        "AdminLoginAttempts",
    ] {
        assert!(fs.contains(&json!(f)), "{f}");
    }
    assert!(!fs.contains(&json!("AdminSetPassword")));
    t.stop().await;
}
