//! The pages in a real browser: headless Chromium driven through
//! chromedriver (WebDriver), against a real postern on a free port.
//! `scripts/test.sh` installs Debian's chromium and chromium-driver.
//! On failure, a screenshot of every browser window is saved under
//! target/browser-screenshots/.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

struct Driver {
    child: Child,
    url: String,
    profiles: Vec<tempfile::TempDir>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (apt-get install chromium-driver; scripts/test.sh does)");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        profiles: Vec::new(),
    }
}

impl Driver {
    /// A new browser with its own profile: its own cookies and localStorage.
    async fn browser(&mut self) -> Client {
        let profile = tempfile::tempdir().expect("profile");
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1000,800".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        self.profiles.push(profile);
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "args": args, "binary": "/usr/bin/chromium" }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("new browser session")
    }
}

/// Runs a test body; on panic, saves screenshots of every browser, then fails.
async fn run<F, Fut>(name: &str, clients: Vec<Client>, body: F)
where
    F: FnOnce(Vec<Client>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let res = tokio::spawn(body(clients.clone())).await;
    if let Err(e) = res {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
        let _ = std::fs::create_dir_all(&dir);
        for (i, c) in clients.iter().enumerate() {
            if let Ok(png) = c.screenshot().await {
                let p = dir.join(format!("{name}-{i}.png"));
                let _ = std::fs::write(&p, png);
                eprintln!("screenshot: {}", p.display());
            }
        }
        for c in clients {
            let _ = c.close().await;
        }
        std::panic::resume_unwind(e.into_panic());
    }
    for c in clients {
        let _ = c.close().await;
    }
}

const WAIT: Duration = Duration::from_secs(10);

async fn text(c: &Client, css: &str) -> String {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("text")
}

async fn fill(c: &Client, css: &str, value: &str) {
    let el = c
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    el.clear().await.expect("clear");
    el.send_keys(value).await.expect("type");
}

async fn click(c: &Client, css: &str) {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .expect("click");
}

/// Waits until the element's text satisfies `f`.
async fn wait_text(c: &Client, css: &str, what: &str, f: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Ok(el) = c.find(Locator::Css(css)).await {
            if let Ok(t) = el.text().await {
                if f(&t) {
                    return t;
                }
            }
        }
        assert!(std::time::Instant::now() < deadline, "{css}: never {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn no_page_errors(c: &Client) {
    let errs = c
        .execute(
            "return window.posternErrors || ['postern script not loaded']",
            vec![],
        )
        .await
        .expect("execute");
    assert_eq!(
        errs,
        json!([]),
        "script errors or CSP violations on the page"
    );
}

async fn sign_in_account(c: &Client, base: &str, password: &str) {
    c.goto(&format!("{base}/account/")).await.expect("goto");
    fill(c, "#username", DEMO_ADDRESS).await;
    fill(c, "#password", password).await;
    click(c, "#login-submit").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn account_sign_in_wrong_password_reload_and_sign_out() {
    let t = TestApp::start().await;
    let mut d = driver().await;
    let a = d.browser().await;
    let base = format!("http://{}", t.addr);
    run("account_sign_in", vec![a], move |cs| async move {
        let a = &cs[0];
        a.goto(&format!("{base}/account/")).await.expect("goto");
        // first visit: the form, and no message
        assert_eq!(text(a, "#login-message").await, "");
        fill(a, "#username", DEMO_ADDRESS).await;
        fill(a, "#password", "wrong password").await;
        click(a, "#login-submit").await;
        wait_text(a, "#login-message", "shows the failure", |t| {
            t == "invalid credentials"
        })
        .await;
        fill(a, "#password", DEMO_PASSWORD).await;
        click(a, "#login-submit").await;
        assert_eq!(text(a, "#account-name").await, "demo");
        assert_eq!(text(a, "#addresses").await, DEMO_ADDRESS);
        // the CSRF token lives in localStorage; a reload keeps the session
        a.refresh().await.expect("reload");
        assert_eq!(text(a, "#account-name").await, "demo");
        no_page_errors(a).await;
        click(a, "#signout").await;
        assert_eq!(text(a, "#login-message").await, "");
        a.refresh().await.expect("reload");
        text(a, "#login").await;
        no_page_errors(a).await;
    })
    .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn password_change_signs_out_the_other_browser_only() {
    let t = TestApp::start().await;
    let mut d = driver().await;
    let (a, b) = (d.browser().await, d.browser().await);
    let base = format!("http://{}", t.addr);
    run("password_change", vec![a, b], move |cs| async move {
        let (a, b) = (&cs[0], &cs[1]);
        sign_in_account(a, &base, DEMO_PASSWORD).await;
        assert_eq!(text(a, "#account-name").await, "demo");
        sign_in_account(b, &base, DEMO_PASSWORD).await;
        assert_eq!(text(b, "#account-name").await, "demo");

        fill(a, "#new-password", "a new secret☺").await;
        click(a, "#password-submit").await;
        wait_text(a, "#status", "confirms", |t| {
            t.starts_with("Password changed")
        })
        .await;

        // the other browser's next action sends it to the sign-in form, saying why
        b.refresh().await.expect("reload");
        let msg = wait_text(b, "#login-message", "explains", |t| !t.is_empty()).await;
        assert!(msg.contains("session ended"), "{msg}");
        // the first one keeps working
        a.refresh().await.expect("reload");
        assert_eq!(text(a, "#account-name").await, "demo");
        // and the new password works in the second
        fill(b, "#username", DEMO_ADDRESS).await;
        fill(b, "#password", "a new secret☺").await;
        click(b, "#login-submit").await;
        assert_eq!(text(b, "#account-name").await, "demo");
        no_page_errors(a).await;
        no_page_errors(b).await;
    })
    .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_and_webmail_sign_in() {
    let t = TestApp::start().await;
    let mut d = driver().await;
    let (a, m) = (d.browser().await, d.browser().await);
    let base = format!("http://{}", t.addr);
    run("admin_webmail", vec![a, m], move |cs| async move {
        let (a, m) = (&cs[0], &cs[1]);
        a.goto(&format!("{base}/admin/")).await.expect("goto");
        assert!(
            a.find(Locator::Css("#username")).await.is_err(),
            "the admin has no username"
        );
        fill(a, "#password", ADMIN_PASSWORD).await;
        click(a, "#login-submit").await;
        let table = text(a, "#accounts tbody").await;
        assert!(table.contains("demo"), "{table}");
        no_page_errors(a).await;

        m.goto(&format!("{base}/webmail/")).await.expect("goto");
        fill(m, "#username", DEMO_ADDRESS).await;
        fill(m, "#password", DEMO_PASSWORD).await;
        click(m, "#login-submit").await;
        assert!(text(m, "#webmail-ready").await.starts_with("Signed in"));
        no_page_errors(m).await;
    })
    .await;
    t.stop().await;
}
