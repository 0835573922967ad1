//! The failed-auth rate limiter over HTTP.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn ten_failed_logins_then_refused_until_success_elsewhere() {
    let t = TestApp::start_with(&[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)], 0).await;
    let mut b = t.browser().with_ip("127.0.1.1");
    for i in 0..10 {
        let r = b
            .login("/account/", Some(DEMO_ADDRESS), "wrong-password")
            .await;
        assert_eq!(
            r.error_code().as_deref(),
            Some("user:loginFailed"),
            "attempt {i}"
        );
    }
    // the 11th is refused before the credentials are looked at: even the right password
    let r = b
        .login("/account/", Some(DEMO_ADDRESS), DEMO_PASSWORD)
        .await;
    assert_eq!(r.error_code().as_deref(), Some("user:error"));
    assert_eq!(r.error_message(), "too many authentication attempts");
    // another client (another /21) is not affected
    let mut c = t.browser().with_ip("127.0.64.1");
    c.login_account().await;
    t.stop().await;
}

#[tokio::test]
async fn bad_sessions_get_429_but_valid_sessions_from_the_same_ip_keep_working() {
    let t = TestApp::start_with(&[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)], 0).await;
    let mut good = t.browser().with_ip("127.0.2.1");
    good.login_account().await;
    let forged = [
        ("content-type", "application/json"),
        ("x-mox-csrf", "AAAAAAAAAAAAAAAAAAAAAA"),
        (
            "cookie",
            "webaccountsession=\"AAAAAAAAAAAAAAAAAAAAAA demo\"",
        ),
    ];
    let from = Some("127.0.2.1".parse().expect("ip"));
    for i in 0..10 {
        let r = send_from(
            from,
            t.addr,
            "POST",
            "/account/api/Version",
            &forged,
            b"{\"params\":[]}".to_vec(),
        )
        .await;
        assert_eq!(
            r.error_code().as_deref(),
            Some("user:badAuth"),
            "attempt {i}"
        );
    }
    let r = send_from(
        from,
        t.addr,
        "POST",
        "/account/api/Version",
        &forged,
        b"{\"params\":[]}".to_vec(),
    )
    .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.text(), "429 - too many auth attempts\n");
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "retry after {retry}");
    // non-API requests too
    let r = send_from(
        from,
        t.addr,
        "GET",
        "/account/x",
        &[("cookie", "webaccountsession=garbage")],
        vec![],
    )
    .await;
    assert_eq!(r.status, 429);
    // the signed-in person behind the same address is still served
    let r = good.api("/account/", "Account", json!([])).await;
    assert_eq!(r.result()["Name"], json!("demo"));
    // requests without credentials are not counted and get their normal answer
    let r = send_from(
        from,
        t.addr,
        "POST",
        "/account/api/Version",
        &[("content-type", "application/json"), ("x-mox-csrf", "x")],
        b"{\"params\":[]}".to_vec(),
    )
    .await;
    assert_eq!(r.error_code().as_deref(), Some("user:noAuth"));
    t.stop().await;
}

#[tokio::test]
async fn successful_login_resets_the_count() {
    let t = TestApp::start_with(&[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)], 0).await;
    let mut b = t.browser().with_ip("127.0.3.1");
    for _ in 0..9 {
        b.login("/account/", Some(DEMO_ADDRESS), "wrong-password")
            .await;
    }
    b.login_account().await;
    for i in 0..9 {
        let r = b
            .login("/account/", Some(DEMO_ADDRESS), "wrong-password")
            .await;
        assert_eq!(
            r.error_code().as_deref(),
            Some("user:loginFailed"),
            "attempt {i} after reset"
        );
    }
    t.stop().await;
}
