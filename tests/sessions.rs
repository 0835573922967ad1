//! Session lifetimes, caps, persistence and password changes, over HTTP.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn account_cap_is_100_and_evicts_least_recently_used() {
    let t = TestApp::start().await;
    let mut browsers = Vec::new();
    for _ in 0..100 {
        let mut b = t.browser();
        b.login_account().await;
        browsers.push(b);
        t.clock.advance(Duration::from_secs(1));
    }
    // session 0 is the oldest; use it so that session 1 becomes the least recently used
    assert_eq!(
        browsers[0]
            .api("/account/", "Version", json!([]))
            .await
            .status,
        200
    );
    assert!(
        browsers[0]
            .api("/account/", "Version", json!([]))
            .await
            .error_code()
            .is_none()
    );
    t.clock.advance(Duration::from_secs(1));
    let mut newest = t.browser();
    newest.login_account().await;
    let r = browsers[1].api("/account/", "Version", json!([])).await;
    assert_eq!(
        r.error_message(),
        "unknown session token",
        "least recently used session evicted"
    );
    for i in [0, 2, 50, 99] {
        let r = browsers[i].api("/account/", "Version", json!([])).await;
        assert!(r.error_code().is_none(), "session {i} kept: {}", r.text());
    }
    assert!(
        newest
            .api("/account/", "Version", json!([]))
            .await
            .error_code()
            .is_none()
    );

    // the cap is shared with webmail
    let mut mail = t.browser();
    let r = mail
        .login("/webmail/", Some(DEMO_ADDRESS), DEMO_PASSWORD)
        .await;
    assert!(r.json().get("result").is_some());
    // sessions 0, 2, 50 and 99 were just used: 3 is now the least recently used
    let r = browsers[3].api("/account/", "Version", json!([])).await;
    assert_eq!(
        r.error_message(),
        "unknown session token",
        "webmail login evicted the next oldest"
    );
    assert!(
        browsers[4]
            .api("/account/", "Version", json!([]))
            .await
            .error_code()
            .is_none()
    );
    t.stop().await;
}

#[tokio::test]
async fn admin_cap_is_10() {
    let t = TestApp::start().await;
    let mut bs = Vec::new();
    for _ in 0..11 {
        let mut b = t.browser();
        b.login_admin().await;
        bs.push(b);
        t.clock.advance(Duration::from_secs(1));
    }
    assert_eq!(
        t.app
            .as_ref()
            .expect("app")
            .services
            .auth
            .admin
            .count()
            .await
            .expect("count"),
        10
    );
    let r = bs[0].api("/admin/", "Version", json!([])).await;
    assert_eq!(
        r.error_message(),
        "unknown session token",
        "the eleventh login dropped the oldest"
    );
    for b in bs.iter_mut().skip(1) {
        assert!(
            b.api("/admin/", "Version", json!([]))
                .await
                .error_code()
                .is_none()
        );
    }
    t.stop().await;
}

#[tokio::test]
async fn idle_expiry_and_extension() {
    let t = TestApp::start().await;
    let mut b = t.browser();
    b.login_account().await;
    let mut a = t.browser();
    a.login_admin().await;
    t.clock.advance(23 * HOUR);
    assert!(
        b.api("/account/", "Version", json!([]))
            .await
            .error_code()
            .is_none(),
        "used within 24 h: extended"
    );
    t.clock.advance(23 * HOUR);
    assert!(
        b.api("/account/", "Version", json!([]))
            .await
            .error_code()
            .is_none(),
        "46 h after login, 23 h after use"
    );
    assert_eq!(
        a.api("/admin/", "Version", json!([])).await.error_message(),
        "session expired",
        "admin: 12 h idle"
    );
    t.clock.advance(24 * HOUR);
    assert_eq!(
        b.api("/account/", "Version", json!([]))
            .await
            .error_message(),
        "session expired"
    );
    t.stop().await;
}

#[tokio::test]
async fn account_sessions_survive_restart_admin_sessions_do_not() {
    let t = TestApp::start().await;
    let mut b = t.browser();
    b.login_account().await;
    let mut a = t.browser();
    a.login_admin().await;
    // Use the session 20 h later: the extension is only in memory until a
    // flush or shutdown writes it.
    t.clock.advance(20 * HOUR);
    assert!(
        b.api("/account/", "Version", json!([]))
            .await
            .error_code()
            .is_none()
    );
    let t = t.restart().await;
    b.addr = t.addr;
    a.addr = t.addr;
    // 10 h more: 30 h after login, valid only if the extension was persisted
    t.clock.advance(10 * HOUR);
    let r = b.api("/account/", "Account", json!([])).await;
    assert_eq!(r.result()["Name"], json!("demo"));
    let r = a.api("/admin/", "Version", json!([])).await;
    assert_eq!(
        r.error_message(),
        "unknown session token",
        "admin sessions live in memory only"
    );
    t.stop().await;
}

#[tokio::test]
async fn extensions_are_flushed_within_a_tick_without_shutdown() {
    let t = TestApp::start().await;
    let mut b = t.browser();
    b.login_account().await;
    t.clock.advance(20 * HOUR);
    assert!(
        b.api("/account/", "Version", json!([]))
            .await
            .error_code()
            .is_none()
    );
    // The test app flushes every 200 ms: the stored record must show the
    // extension soon, without a shutdown.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let app = t.app.as_ref().expect("app");
    let db = app.services.auth.stores.accounts.clone();
    loop {
        let recs = postern::store::sessions::load(&db, "demo")
            .expect("load")
            .expect("account")
            .1;
        let login_time = recs[0].1.created;
        if recs[0].1.expires >= login_time + (44 * HOUR).as_millis() as i64 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "extension not flushed within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    t.stop().await;
}

#[tokio::test]
async fn password_change_keeps_caller_and_ends_the_rest() {
    let t = TestApp::start().await;
    let mut me = t.browser();
    me.login_account().await;
    let mut other = t.browser();
    other.login_account().await;
    let mut mail = t.browser();
    assert!(
        mail.login("/webmail/", Some(DEMO_ADDRESS), DEMO_PASSWORD)
            .await
            .json()
            .get("result")
            .is_some()
    );

    let r = me.api("/account/", "SetPassword", json!(["short☺☺"])).await;
    assert_eq!(r.error_code().as_deref(), Some("user:error"));
    assert_eq!(r.error_message(), "password must be at least 8 characters");
    // 8 characters, more bytes: accepted
    let r = me
        .api("/account/", "SetPassword", json!(["☺☺☺☺☺☺☺☺"]))
        .await;
    assert_eq!(r.result(), json!(null));

    assert!(
        me.api("/account/", "Version", json!([]))
            .await
            .error_code()
            .is_none(),
        "caller keeps its session"
    );
    assert_eq!(
        other
            .api("/account/", "Version", json!([]))
            .await
            .error_message(),
        "unknown session token"
    );
    assert_eq!(
        mail.api("/webmail/", "Version", json!([]))
            .await
            .error_message(),
        "unknown session token"
    );

    let mut fresh = t.browser().with_ip("127.0.0.9");
    let r = fresh
        .login("/account/", Some(DEMO_ADDRESS), DEMO_PASSWORD)
        .await;
    assert_eq!(
        r.error_code().as_deref(),
        Some("user:loginFailed"),
        "old password no longer works"
    );
    let r = fresh
        .login("/account/", Some(DEMO_ADDRESS), "☺☺☺☺☺☺☺☺")
        .await;
    assert!(r.json().get("result").is_some());

    // and it is durable
    let t = t.restart().await;
    me.addr = t.addr;
    other.addr = t.addr;
    assert!(
        me.api("/account/", "Version", json!([]))
            .await
            .error_code()
            .is_none()
    );
    assert_eq!(
        other
            .api("/account/", "Version", json!([]))
            .await
            .error_message(),
        "unknown session token"
    );
    t.stop().await;
}

#[tokio::test]
async fn sessions_are_bound_to_their_interface() {
    let t = TestApp::start().await;
    let mut b = t.browser();
    b.login_account().await;
    let value = b.cookies.values().next().expect("cookie").clone();
    // the same value presented to webmail (as if copied) is not a webmail session
    let h = [
        ("content-type", "application/json"),
        ("x-mox-csrf", b.csrf.as_deref().expect("csrf")),
        ("cookie", &format!("webmailsession={value}")),
    ];
    let r = send(
        t.addr,
        "POST",
        "/webmail/api/Version",
        &h,
        b"{\"params\":[]}".to_vec(),
    )
    .await;
    assert_eq!(r.error_message(), "unknown session token");
    // admin API functions are not on the account interface
    let r = b.api("/account/", "Accounts", json!([])).await;
    assert_eq!(r.error_code().as_deref(), Some("sherpa:badFunction"));
    let mut a = t.browser();
    a.login_admin().await;
    let r = a.api("/admin/", "Accounts", json!([])).await.result();
    assert_eq!(r, json!([{"Name": "demo", "LoginDisabled": ""}]));
    t.stop().await;
}

#[tokio::test]
async fn idle_account_actors_stop_and_come_back_transparently() {
    let t = TestApp::start_with_idle_stop(Duration::from_millis(300)).await;
    let sessions = t.app.as_ref().expect("app").services.auth.sessions.clone();
    let mut b = t.browser();
    b.login_account().await;
    t.clock.advance(HOUR);
    assert!(
        b.api("/account/", "Version", json!([]))
            .await
            .error_code()
            .is_none()
    );
    assert_eq!(sessions.live_actors(), 1);
    // no messages for a while: the actor writes its extension and stops
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sessions.live_actors() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "idle actor did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // 24 h after login, 23 h after the last use: valid only if the extension
    // was written before the actor stopped
    t.clock.advance(23 * HOUR);
    let r = b.api("/account/", "Account", json!([])).await;
    assert_eq!(
        r.result()["Name"],
        json!("demo"),
        "session reloaded from disk"
    );
    assert_eq!(sessions.live_actors(), 1);
    // forged cookies for accounts that do not exist spawn nothing
    for i in 0..50 {
        let h = [
            ("content-type", "application/json"),
            ("x-mox-csrf", "AAAAAAAAAAAAAAAAAAAAAA"),
            (
                "cookie",
                &format!("webaccountsession=\"AAAAAAAAAAAAAAAAAAAAAA nobody{i}\""),
            ),
        ];
        let from = format!("127.1.{i}.1").parse().ok();
        let r = send_from(
            from,
            t.addr,
            "POST",
            "/account/api/Version",
            &h,
            b"{\"params\":[]}".to_vec(),
        )
        .await;
        assert_eq!(r.error_message(), "unknown session token");
    }
    assert!(
        sessions.live_actors() <= 1,
        "only demo's actor may live (it may have idled out meanwhile)"
    );
    t.stop().await;
}

#[tokio::test]
async fn failed_sign_ins_leave_no_session_even_after_a_restart() {
    // A sign-in writes its session while the password is verified; a wrong
    // password must remove it again, durably.
    let t = TestApp::start().await;
    let mut first = t.browser();
    first.login_account().await;
    for _ in 0..3 {
        let r = t
            .browser()
            .login("/account/", Some(DEMO_ADDRESS), "wrong password")
            .await;
        assert_eq!(r.error_code().as_deref(), Some("user:loginFailed"));
    }
    let listed = |r: Resp| r.result().as_array().expect("list").len();
    assert_eq!(
        listed(first.api("/account/", "Sessions", json!([])).await),
        1
    );
    let t = t.restart().await;
    first.addr = t.addr;
    assert_eq!(
        listed(first.api("/account/", "Sessions", json!([])).await),
        1,
        "no session of a failed sign-in came back from the disk"
    );
    let mut second = t.browser();
    second.login_account().await;
    assert_eq!(
        listed(second.api("/account/", "Sessions", json!([])).await),
        2
    );
    t.stop().await;
}
