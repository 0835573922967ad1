//! The metrics listener after real sign-ins: every counter moved by exactly
//! what the requests did. The Prometheus recorder is process-wide, so this
//! file is its own test binary with one test, and compares deltas.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::json;

/// `name{sorted labels}` -> value.
type Scrape = BTreeMap<String, f64>;

async fn scrape(t: &TestApp) -> (Scrape, String) {
    let r = send(
        t.metrics.expect("metrics listener"),
        "GET",
        "/metrics",
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 200);
    let text = r.text();
    let mut m = Scrape::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("series value");
        let key = match series.split_once('{') {
            Some((name, labels)) => {
                let mut l: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                l.sort();
                format!("{name}{{{}}}", l.join(","))
            }
            None => series.to_string(),
        };
        m.insert(key, value.parse().expect("number"));
    }
    (m, text)
}

fn get(m: &Scrape, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

fn auth(kind: &str, variant: &str, result: &str) -> String {
    format!(
        "postern_authentication_total{{kind=\"{kind}\",result=\"{result}\",variant=\"{variant}\"}}"
    )
}

#[tokio::test]
async fn counters_move_by_exactly_what_happened() {
    let t = TestApp::start_with(&[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)], 1).await;
    let (before, _) = scrape(&t).await;

    // two good account sign-ins, one admin sign-in
    let mut a = t.browser();
    a.login_account().await;
    let mut b = t.browser();
    b.login_account().await;
    let mut adm = t.browser();
    adm.login_admin().await;
    // one bad password, one unknown user
    let mut x = t.browser();
    let r = x
        .login("/account/", Some(DEMO_ADDRESS), "wrong-password")
        .await;
    assert_eq!(r.error_code().as_deref(), Some("user:loginFailed"));
    let r = x
        .login("/account/", Some("nobody@localhost"), "whatever1")
        .await;
    assert_eq!(r.error_code().as_deref(), Some("user:loginFailed"));
    // three good session uses
    for _ in 0..3 {
        let r = a.api("/account/", "Version", json!([])).await;
        assert!(r.error_code().is_none(), "{}", r.text());
    }
    // a malformed session cookie: counted as error
    let mut m = t.browser();
    m.cookies.insert(
        ("webaccountsession".into(), "/account/".into()),
        "nospace".into(),
    );
    m.csrf = Some("x".into());
    let r = m.api("/account/", "Version", json!([])).await;
    assert_eq!(r.error_code().as_deref(), Some("user:badAuth"));
    // an unknown function after authenticating: a bounded label
    let r = a.api("/account/", "NoSuchFunctionXyz", json!([])).await;
    assert_eq!(r.error_code().as_deref(), Some("sherpa:badFunction"));
    // a rate-limited client: 10 failures, then refused
    let mut l = t.browser().with_ip("127.0.0.77");
    for _ in 0..10 {
        l.login("/account/", Some(DEMO_ADDRESS), "wrong-password")
            .await;
    }
    let r = l
        .login("/account/", Some(DEMO_ADDRESS), DEMO_PASSWORD)
        .await;
    assert_eq!(r.error_message(), "too many authentication attempts");

    // The session gauge is updated by the actor right after it answers.
    let mut after;
    let mut text;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        (after, text) = scrape(&t).await;
        let key = "postern_sessions{kind=\"webaccount\"}";
        if get(&after, key) - get(&before, key) == 2.0 || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let d = |k: &str| get(&after, k) - get(&before, k);

    assert_eq!(d(&auth("webaccount", "weblogin", "ok")), 2.0);
    assert_eq!(d(&auth("webadmin", "weblogin", "ok")), 1.0);
    assert_eq!(d(&auth("webaccount", "weblogin", "badcreds")), 11.0);
    assert_eq!(d(&auth("webaccount", "weblogin", "baduser")), 1.0);
    // 3 Version calls + the unknown function's auth check
    assert_eq!(d(&auth("webaccount", "websession", "ok")), 4.0);
    assert_eq!(d(&auth("webaccount", "websession", "error")), 1.0);
    assert_eq!(
        d("postern_authentication_ratelimited_total{kind=\"webaccount\"}"),
        1.0
    );

    assert_eq!(
        d("postern_api_calls_total{function=\"Version\",kind=\"webaccount\"}"),
        4.0
    );
    assert_eq!(
        d(
            "postern_api_errors_total{code=\"user:badAuth\",function=\"Version\",kind=\"webaccount\"}"
        ),
        1.0
    );
    assert_eq!(
        d("postern_api_calls_total{function=\"other\",kind=\"webaccount\"}"),
        1.0
    );
    assert_eq!(
        d(
            "postern_api_errors_total{code=\"sherpa:badFunction\",function=\"other\",kind=\"webaccount\"}"
        ),
        1.0
    );
    // Login: 2 ok + 1 bad + 1 unknown + 10 bad + 1 limited
    assert_eq!(
        d("postern_api_calls_total{function=\"Login\",kind=\"webaccount\"}"),
        15.0
    );
    assert_eq!(
        d(
            "postern_api_errors_total{code=\"user:loginFailed\",function=\"Login\",kind=\"webaccount\"}"
        ),
        12.0
    );
    assert_eq!(
        d("postern_api_call_duration_seconds_count{function=\"Login\",kind=\"webaccount\"}"),
        15.0
    );
    assert_eq!(
        d("postern_http_requests_total{kind=\"webaccount\",status=\"404\"}"),
        1.0
    );
    // argon2 verifications: 2 + 1 + 1 + 10 account, 1 admin (the limited one never hashes)
    assert_eq!(d("postern_password_verify_duration_seconds_count"), 15.0);

    assert_eq!(d("postern_sessions{kind=\"webaccount\"}"), 2.0);
    assert_eq!(get(&after, "postern_sessions{kind=\"webadmin\"}"), 1.0);
    assert!(get(&after, "postern_ratelimit_entries") >= 3.0);
    assert!(get(&after, "postern_session_actors") >= 1.0);

    // histograms are histograms
    assert!(
        text.contains(
            "postern_http_request_duration_seconds_bucket{kind=\"webaccount\",le=\"0.005\"}"
        ),
        "{text}"
    );
    // no accounts, addresses, unknown function names or tokens in labels
    for bad in [
        "demo",
        "127.0.0",
        "NoSuchFunctionXyz",
        "nospace",
        "localhost",
    ] {
        assert!(!text.contains(bad), "{bad} in metrics:\n{text}");
    }
    t.stop().await;
}
