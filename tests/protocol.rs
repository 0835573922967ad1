//! The sign-in protocol over real HTTP: cookies, the check order and its
//! codes, the JSON envelope, bad input.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn login_sets_exact_cookies_and_logout_deletes() {
    let t = TestApp::start().await;
    let mut b = t.browser();
    let prep = b.api("/account/", "LoginPrep", json!([])).await;
    let token = prep.result().as_str().expect("token").to_string();
    assert_eq!(token.len(), 22, "128-bit token in base64url");
    assert_eq!(
        prep.set_cookies(),
        vec![format!(
            "webaccountlogin={token}; Path=/account/; Max-Age=30; HttpOnly; SameSite=Strict"
        )]
    );
    let login = b
        .api(
            "/account/",
            "Login",
            json!([token, DEMO_ADDRESS, DEMO_PASSWORD]),
        )
        .await;
    let csrf = login.result().as_str().expect("csrf").to_string();
    assert_eq!(csrf.len(), 22);
    let cookies = login.set_cookies();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    let session = &cookies[0];
    assert!(session.starts_with("webaccountsession=\""), "{session}");
    assert!(
        session.ends_with(" demo\"; Path=/account/; HttpOnly; SameSite=Strict"),
        "{session}"
    );
    assert!(
        !session.contains("Max-Age") && !session.contains("Expires") && !session.contains("Secure")
    );
    let value = session.split('"').nth(1).expect("quoted value");
    let (tok, acc) = value.split_once(' ').expect("token SP account");
    assert_eq!(tok.len(), 22);
    assert_ne!(tok, csrf, "session and csrf tokens are independent");
    assert_eq!(acc, "demo");
    assert_eq!(
        cookies[1],
        "webaccountlogin=; Path=/account/; Max-Age=0; HttpOnly; SameSite=Strict"
    );

    b.csrf = Some(csrf);
    let v = b.api("/account/", "Version", json!([])).await;
    assert_eq!(v.result(), json!(env!("CARGO_PKG_VERSION")));
    assert_eq!(v.header("cache-control").as_deref(), Some("no-store"));

    let out = b.api("/account/", "Logout", json!([])).await;
    assert_eq!(out.result(), json!(null));
    assert_eq!(
        out.set_cookies(),
        vec![
            "webaccountsession=; Path=/account/; Max-Age=0; HttpOnly; SameSite=Strict".to_string()
        ]
    );
    t.stop().await;
}

#[tokio::test]
async fn logged_out_session_is_dead_server_side() {
    let t = TestApp::start().await;
    let mut b = t.browser();
    b.login_account().await;
    let jar = b.cookies.clone();
    b.api("/account/", "Logout", json!([])).await.result();
    // A copy of the cookie kept by an attacker no longer works.
    b.cookies = jar;
    let r = b.api("/account/", "Version", json!([])).await;
    assert_eq!(r.error_code().as_deref(), Some("user:badAuth"));
    assert_eq!(r.error_message(), "unknown session token");
    t.stop().await;
}

#[tokio::test]
async fn check_matrix_csrf_by_session() {
    let t = TestApp::start().await;
    let mut good = t.browser();
    good.login_account().await;
    let good_cookie = good.cookie_header("/account/").expect("cookie");
    let good_csrf = good.csrf.clone().expect("csrf");
    let forged = "webaccountsession=\"AAAAAAAAAAAAAAAAAAAAAA demo\"".to_string();
    let other_csrf = "BBBBBBBBBBBBBBBBBBBBBA".to_string();

    // (csrf, cookie) -> (code, message)
    type Case<'a> = (Option<&'a str>, Option<&'a str>, Option<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (
            None,
            None,
            Some(("user:noAuth", "missing required csrf header")),
        ),
        (
            None,
            Some(&forged),
            Some(("user:noAuth", "missing required csrf header")),
        ),
        (
            None,
            Some(&good_cookie),
            Some(("user:noAuth", "missing required csrf header")),
        ),
        (
            Some(""),
            Some(&good_cookie),
            Some(("user:noAuth", "missing required csrf header")),
        ),
        (
            Some(&other_csrf),
            None,
            Some(("user:noAuth", "no session for \"account\" web interface")),
        ),
        (
            Some(&other_csrf),
            Some(&forged),
            Some(("user:badAuth", "unknown session token")),
        ),
        (
            Some(&other_csrf),
            Some(&good_cookie),
            Some(("user:badAuth", "mismatch between csrf and session tokens")),
        ),
        (
            Some("not-a-token"),
            Some(&good_cookie),
            Some(("user:badAuth", "mismatch between csrf and session tokens")),
        ),
        (
            Some(&good_csrf),
            None,
            Some(("user:noAuth", "no session for \"account\" web interface")),
        ),
        (
            Some(&good_csrf),
            Some(&forged),
            Some(("user:badAuth", "unknown session token")),
        ),
        (Some(&good_csrf), Some(&good_cookie), None),
    ];
    for (i, (csrf, cookie, want)) in cases.into_iter().enumerate() {
        let mut h = vec![("content-type", "application/json")];
        if let Some(c) = csrf {
            h.push(("x-mox-csrf", c));
        }
        if let Some(c) = cookie {
            h.push(("cookie", c));
        }
        // a different client address per case, so failures do not add up
        let from = format!("127.0.{}.1", 10 + i).parse().ok();
        let r = send_from(
            from,
            t.addr,
            "POST",
            "/account/api/Version",
            &h,
            b"{\"params\":[]}".to_vec(),
        )
        .await;
        assert_eq!(r.status, 200, "case {i}");
        match want {
            Some((code, msg)) => {
                assert_eq!(
                    r.error_code().as_deref(),
                    Some(code),
                    "case {i}: {}",
                    r.text()
                );
                assert_eq!(r.error_message(), msg, "case {i}");
            }
            None => assert_eq!(r.result(), json!(env!("CARGO_PKG_VERSION")), "case {i}"),
        }
    }
    t.stop().await;
}

#[tokio::test]
async fn malformed_cookies_are_bad_auth_after_the_delay() {
    let t = TestApp::start_with(&[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)], 300).await;
    let cases = [
        ("webaccountsession=nospace", "malformed session"),
        ("webaccountsession=\"short demo\"", "malformed session"),
        (
            "webaccountsession=\"AAAAAAAAAAAAAAAAAAAAAA %zz\"",
            "malformed session account name",
        ),
    ];
    for (i, (cookie, msg)) in cases.into_iter().enumerate() {
        let from = format!("127.0.{}.2", 40 + i).parse().ok();
        let h = [
            ("content-type", "application/json"),
            ("x-mox-csrf", "AAAAAAAAAAAAAAAAAAAAAA"),
            ("cookie", cookie),
        ];
        let start = std::time::Instant::now();
        let r = send_from(
            from,
            t.addr,
            "POST",
            "/account/api/Version",
            &h,
            b"{\"params\":[]}".to_vec(),
        )
        .await;
        assert!(
            start.elapsed() >= std::time::Duration::from_millis(290),
            "bad-auth delay applied"
        );
        assert_eq!(r.error_code().as_deref(), Some("user:badAuth"), "{cookie}");
        assert_eq!(r.error_message(), msg);
    }
    t.stop().await;
}

#[tokio::test]
async fn login_token_must_match_cookie() {
    let t = TestApp::start().await;
    let mut b = t.browser();
    // no cookie at all
    let r = b
        .api(
            "/account/",
            "Login",
            json!(["AAAAAAAAAAAAAAAAAAAAAA", DEMO_ADDRESS, DEMO_PASSWORD]),
        )
        .await;
    assert_eq!(r.error_code().as_deref(), Some("user:error"));
    assert_eq!(r.error_message(), "missing login token cookie");
    // cookie present, different token
    b.api("/account/", "LoginPrep", json!([])).await.result();
    let r = b
        .api(
            "/account/",
            "Login",
            json!(["AAAAAAAAAAAAAAAAAAAAAA", DEMO_ADDRESS, DEMO_PASSWORD]),
        )
        .await;
    assert_eq!(r.error_message(), "missing login token cookie");
    // empty token with an empty cookie never matches
    let h = [
        ("content-type", "application/json"),
        ("cookie", "webaccountlogin="),
    ];
    let body =
        serde_json::to_vec(&json!({"params": ["", DEMO_ADDRESS, DEMO_PASSWORD]})).expect("json");
    let r = send(t.addr, "POST", "/account/api/Login", &h, body).await;
    assert_eq!(r.error_code().as_deref(), Some("user:error"));
    assert!(r.set_cookies().is_empty(), "no session handed out");
    // the admin login cookie does not work for the account interface
    let mut a = t.browser();
    let tok = a.api("/admin/", "LoginPrep", json!([])).await.result();
    let h = [
        ("content-type", "application/json"),
        (
            "cookie",
            &format!("webadminlogin={}", tok.as_str().expect("s")),
        ),
    ];
    let body =
        serde_json::to_vec(&json!({"params": [tok, DEMO_ADDRESS, DEMO_PASSWORD]})).expect("json");
    let r = send(t.addr, "POST", "/account/api/Login", &h, body).await;
    assert_eq!(r.error_message(), "missing login token cookie");
    t.stop().await;
}

#[tokio::test]
async fn bad_credentials() {
    let t = TestApp::start_with(&[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)], 250).await;
    let mut b = t.browser();
    for (user, pw) in [
        (DEMO_ADDRESS, "wrongpassword"),
        ("nobody@localhost", DEMO_PASSWORD),
        ("not an address", "x"),
    ] {
        let start = std::time::Instant::now();
        let r = b.login("/account/", Some(user), pw).await;
        assert!(start.elapsed() >= std::time::Duration::from_millis(240));
        assert_eq!(
            r.error_code().as_deref(),
            Some("user:loginFailed"),
            "{user}"
        );
        assert_eq!(r.error_message(), "invalid credentials");
        assert!(r.set_cookies().is_empty());
    }
    // A domain typed in capitals still signs in (domains are case-insensitive).
    let r = b
        .login("/account/", Some("demo@LocalHost"), DEMO_PASSWORD)
        .await;
    assert!(r.json().get("result").is_some(), "{}", r.text());
    t.stop().await;
}

#[tokio::test]
async fn non_ascii_account_name() {
    let t = TestApp::start_with(&[("mjl☺", "mjl☺@example.org", "pässwörd☺")], 20).await;
    let mut b = t.browser();
    let r = b
        .login("/account/", Some("mjl☺@example.org"), "pässwörd☺")
        .await;
    let c = &r.set_cookies()[0];
    assert!(c.contains(" mjl%E2%98%BA\""), "{c}");
    assert!(c.is_ascii());
    let acc = b.api("/account/", "Account", json!([])).await.result();
    assert_eq!(acc["Name"], json!("mjl☺"));
    assert_eq!(acc["Addresses"], json!(["mjl☺@example.org"]));
    // NFD form of the password (PRECIS OpaqueString normalizes to NFC)
    let mut b2 = t.browser();
    let r = b2
        .login(
            "/account/",
            Some("mjl☺@example.org"),
            "pa\u{308}sswo\u{308}rd☺",
        )
        .await;
    assert!(r.json().get("result").is_some(), "{}", r.text());
    t.stop().await;
}

#[tokio::test]
async fn methods_paths_and_pages() {
    let t = TestApp::start().await;
    // pages without auth
    for p in ["/account/", "/admin/", "/webmail/"] {
        let r = send(t.addr, "GET", p, &[], vec![]).await;
        assert_eq!(r.status, 200, "{p}");
        assert!(
            r.header("content-type")
                .expect("ct")
                .starts_with("text/html")
        );
        assert!(
            r.header("content-security-policy")
                .expect("csp")
                .contains("frame-ancestors 'none'")
        );
    }
    let r = send(t.addr, "GET", "/account", &[], vec![]).await;
    assert_eq!(
        (r.status, r.header("location").as_deref()),
        (301, Some("/account/"))
    );
    // non-POST on API functions: 405 before any auth
    for m in ["GET", "PUT", "DELETE"] {
        let r = send(t.addr, m, "/account/api/Version", &[], vec![]).await;
        assert_eq!(r.status, 405);
        assert_eq!(r.text(), "405 - method not allowed - use post\n");
    }
    // non-API paths are behind the check
    let r = send(t.addr, "GET", "/account/secret", &[], vec![]).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.text(),
        "403 - forbidden - no session for \"account\" web interface\n"
    );
    let r = send(t.addr, "GET", "/admin/x", &[], vec![]).await;
    assert_eq!(
        r.text(),
        "403 - forbidden - no session for \"admin\" web interface\n"
    );
    let mut b = t.browser();
    b.login_account().await;
    let r = b.request("GET", "/account/secret", &[], vec![]).await;
    assert_eq!(r.status, 404);
    let r = send(t.addr, "GET", "/elsewhere", &[], vec![]).await;
    assert_eq!(r.status, 404);
    t.stop().await;
}

#[tokio::test]
async fn sherpa_envelope_errors() {
    let t = TestApp::start().await;
    let mut b = t.browser();
    b.login_account().await;
    let csrf = b.csrf.clone().expect("csrf");
    let ck = b.cookie_header("/account/").expect("cookie");
    let call = |ct: &'static str, body: &'static [u8], f: &'static str| {
        let (csrf, ck) = (csrf.clone(), ck.clone());
        async move {
            let h = [
                ("content-type", ct),
                ("x-mox-csrf", csrf.as_str()),
                ("cookie", ck.as_str()),
            ];
            send(
                t.addr,
                "POST",
                &format!("/account/api/{f}"),
                &h,
                body.to_vec(),
            )
            .await
        }
    };
    let r = call("application/json", b"{\"params\":null}", "Version").await;
    assert_eq!(
        r.result(),
        json!(env!("CARGO_PKG_VERSION")),
        "null params is an empty list"
    );
    for body in [
        &b"[]"[..],
        b"{}",
        b"{\"params\":3}",
        b"not json",
        b"\xff\xfe",
    ] {
        let r = call(
            "application/json",
            Box::leak(body.to_vec().into_boxed_slice()),
            "Version",
        )
        .await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.error_code().as_deref(),
            Some("sherpa:badRequest"),
            "{body:?}"
        );
    }
    let r = call("text/plain", b"{\"params\":[]}", "Version").await;
    assert_eq!(r.error_code().as_deref(), Some("sherpa:badRequest"));
    let r = call("application/json", b"{\"params\":[1]}", "Version").await;
    assert_eq!(r.error_code().as_deref(), Some("sherpa:badParams"));
    let r = call("application/json", b"{\"params\":[1]}", "SetPassword").await;
    assert_eq!(r.error_code().as_deref(), Some("sherpa:badParams"));
    let r = call("application/json", b"{\"params\":[]}", "NoSuchFunction").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code().as_deref(), Some("sherpa:badFunction"));
    // unknown functions are reported only after authentication
    let r = send(
        t.addr,
        "POST",
        "/account/api/NoSuchFunction",
        &[("content-type", "application/json")],
        b"{\"params\":[]}".to_vec(),
    )
    .await;
    assert_eq!(r.error_code().as_deref(), Some("user:noAuth"));
    // deeply nested JSON: a clean error
    let mut deep = b"{\"params\":[".to_vec();
    deep.extend(std::iter::repeat_n(b'[', 50_000));
    let r = call(
        "application/json",
        Box::leak(deep.into_boxed_slice()),
        "Version",
    )
    .await;
    assert_eq!(r.error_code().as_deref(), Some("sherpa:badRequest"));
    // GET api/ describes the interface
    let r = b
        .request(
            "GET",
            "/account/api/",
            &[("x-mox-csrf", csrf.as_str())],
            vec![],
        )
        .await;
    assert_eq!(
        r.json()["Functions"]
            .as_array()
            .expect("list")
            .iter()
            .filter(|f| *f == "Login")
            .count(),
        1
    );
    t.stop().await;
}

#[tokio::test]
async fn oversized_bodies_and_garbage_headers() {
    let t = TestApp::start().await;
    let mut b = t.browser();
    b.login_account().await;
    // over the 1 MiB API limit: a clear error
    let big = format!("{{\"params\":[\"{}\"]}}", "x".repeat(1024 * 1024 + 10));
    let csrf = b.csrf.clone().expect("csrf");
    let r = b
        .request(
            "POST",
            "/account/api/SetPassword",
            &[("content-type", "application/json"), ("x-mox-csrf", &csrf)],
            big.into_bytes(),
        )
        .await;
    assert_eq!(r.error_code().as_deref(), Some("user:error"));
    assert_eq!(
        r.error_message(),
        "request body too large, limit is 1048576 bytes"
    );
    // the same, unauthenticated: refused without reading the body
    let r = send(
        t.addr,
        "POST",
        "/account/api/Login",
        &[("content-type", "application/json")],
        vec![b' '; 2 * 1024 * 1024],
    )
    .await;
    assert_eq!(r.error_code().as_deref(), Some("user:error"));
    // non-UTF-8 and duplicate cookies: the first valid one counts
    let ck = b.cookie_header("/account/").expect("cookie");
    let dup =
        format!("webaccountsession=\\bad; {ck}; webaccountsession=\"AAAAAAAAAAAAAAAAAAAAAA demo\"");
    let h = [
        ("content-type", "application/json"),
        ("x-mox-csrf", csrf.as_str()),
        ("cookie", dup.as_str()),
    ];
    let r = send(
        t.addr,
        "POST",
        "/account/api/Version",
        &h,
        b"{\"params\":[]}".to_vec(),
    )
    .await;
    assert_eq!(r.result(), json!(env!("CARGO_PKG_VERSION")));
    // raw non-UTF-8 bytes in headers
    let mut s = tokio::net::TcpStream::connect(t.addr)
        .await
        .expect("connect");
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    s.write_all(b"POST /account/api/Version HTTP/1.1\r\nhost: x\r\ncookie: webaccountsession=\xff\xfe \xe2\x98\xba\r\nx-mox-csrf: \xff\r\ncontent-type: application/json\r\ncontent-length: 13\r\nconnection: close\r\n\r\n{\"params\":[]}").await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.contains("user:noAuth"),
        "invalid cookie bytes are no cookie: {out}"
    );
    // garbage instead of HTTP: a 400, and the server keeps serving
    let mut s = tokio::net::TcpStream::connect(t.addr)
        .await
        .expect("connect");
    s.write_all(b"\x00\x01\x02garbage\r\n\r\n")
        .await
        .expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    assert!(
        String::from_utf8_lossy(&out).starts_with("HTTP/1.1 400"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(b.api("/account/", "Version", json!([])).await.status, 200);
    t.stop().await;
}
