//! Security headers on every kind of answer, over real HTTP: pages,
//! scripts, styles, API results and errors, text errors, redirects and
//! rate-limit refusals.

mod common;

use common::*;
use serde_json::json;

/// Checks the headers every answer must carry; returns Cache-Control.
fn check(what: &str, r: &Resp) -> String {
    let csp = r
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no CSP"));
    let script_src = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src") || d.starts_with("default-src"))
        .unwrap_or_else(|| panic!("{what}: no script policy in {csp}"));
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-eval"), "{what}: {csp}");
    assert!(script_src.contains("'self'"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert_eq!(
        r.header("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        r.header("referrer-policy").as_deref(),
        Some("same-origin"),
        "{what}"
    );
    assert_eq!(
        r.header("x-frame-options").as_deref(),
        Some("DENY"),
        "{what}"
    );
    // plain HTTP: no HSTS (it would be a lie, and pins nothing)
    assert_eq!(r.header("strict-transport-security"), None, "{what}");
    r.header("cache-control")
        .unwrap_or_else(|| panic!("{what}: no Cache-Control"))
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let t = TestApp::start().await;
    // pages and their files: revalidated, never stale after an upgrade
    for (prefix, script) in [
        ("/account/", "account.js"),
        ("/admin/", "admin.js"),
        ("/webmail/", "webmail.js"),
    ] {
        for sub in ["", script, "common.js", "style.css"] {
            let path = format!("{prefix}{sub}");
            let r = send(t.addr, "GET", &path, &[], vec![]).await;
            assert_eq!(r.status, 200, "{path}");
            assert_eq!(check(&path, &r), "no-cache", "{path}");
        }
    }
    // every API answer, result or error: no-store
    let mut b = t.browser();
    let r = b.api("/account/", "LoginPrep", json!([])).await;
    assert_eq!(check("LoginPrep", &r), "no-store");
    b.login_account().await;
    let r = b.api("/account/", "Sessions", json!([])).await;
    r.result();
    assert_eq!(check("Sessions", &r), "no-store");
    let r = b.api("/account/", "Nope", json!([])).await;
    assert_eq!(r.status, 404);
    assert_eq!(check("unknown function", &r), "no-store");
    let r = send(t.addr, "POST", "/account/api/Account", &[], vec![]).await;
    assert_eq!(r.error_code().as_deref(), Some("user:noAuth"));
    assert_eq!(check("no auth", &r), "no-store");
    let r = b.request("GET", "/account/api/", &[], vec![]).await;
    assert_eq!(check("API description", &r), "no-store");
    let mut a = t.browser();
    a.login_admin().await;
    let r = a.api("/admin/", "Accounts", json!([])).await;
    r.result();
    assert_eq!(check("admin Accounts", &r), "no-store");
    let r = a.api("/admin/", "Account", json!(["nobody"])).await;
    assert_eq!(r.error_code().as_deref(), Some("user:error"));
    assert_eq!(check("admin error", &r), "no-store");
    // a download, made outside the answer builders (its headers are
    // completed by the request handler)
    let csrf = b.csrf.clone().expect("signed in");
    let r = b
        .request(
            "POST",
            "/account/export",
            &[("content-type", "application/x-www-form-urlencoded")],
            format!("csrf={csrf}&format=mbox&archive=tgz&mailbox=&recursive=on").into_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(check("export", &r), "no-store");
    // text answers
    for (method, path, status) in [
        ("GET", "/account/api/Version", 405),
        ("GET", "/account/secret", 403),
        ("GET", "/elsewhere", 404),
        ("GET", "/webmail", 301),
        ("POST", "/account/", 405),
    ] {
        let r = send(t.addr, method, path, &[], vec![]).await;
        assert_eq!(r.status, status, "{method} {path}");
        assert_eq!(check(path, &r), "no-store", "{method} {path}");
    }
    // a rate-limited client's 429
    let mut refused = None;
    for _ in 0..20 {
        let r = send_from(
            Some("127.0.0.77".parse().expect("ip")),
            t.addr,
            "GET",
            "/account/secret",
            &[("cookie", "webaccountsession=garbage")],
            vec![],
        )
        .await;
        if r.status == 429 {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("rate limited after repeated failures");
    assert_eq!(check("429", &r), "no-store");
    t.stop().await;
}
