//! The pages in a real browser: headless Chromium driven through
//! chromedriver (WebDriver), against a real postern on a free port.
//! `scripts/test.sh` installs Debian's chromium and chromium-driver.
//! On failure, a screenshot of every browser window is saved under
//! target/browser-screenshots/.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use fantoccini::key::Key;
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
        self.browser_with(None).await
    }

    /// A browser that saves downloads in `dir` without asking.
    async fn browser_downloading_to(&mut self, dir: &std::path::Path) -> Client {
        self.browser_with(Some(dir)).await
    }

    async fn browser_with(&mut self, downloads: Option<&std::path::Path>) -> Client {
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
        let mut options = json!({ "args": args, "binary": "/usr/bin/chromium" });
        if let Some(dir) = downloads {
            options["prefs"] = json!({
                "download.default_directory": dir.display().to_string(),
                "download.prompt_for_download": false,
            });
        }
        caps.insert("goog:chromeOptions".into(), options);
        // chromedriver, busy starting other browsers on a loaded machine, now
        // and then resets the connection of a new-session request; that is
        // the test harness's transport, so it is retried. Any answer from
        // the WebDriver server (a refused session included) is not.
        let mut attempt = 0;
        loop {
            let r = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&self.url)
                .await;
            match r {
                Ok(c) => return c,
                Err(
                    e @ (fantoccini::error::NewSessionError::FailedC(_)
                    | fantoccini::error::NewSessionError::Lost(_)),
                ) if attempt < 3 => {
                    attempt += 1;
                    eprintln!("new browser session, attempt {attempt} failed: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => panic!("new browser session: {e:?}"),
            }
        }
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
    wait_text_within(c, css, what, f, WAIT, Duration::from_millis(50)).await
}

/// Polls the text of `css` every `every` until `f` accepts it; fails after
/// `within`, with the last text seen.
async fn wait_text_within(
    c: &Client,
    css: &str,
    what: &str,
    f: impl Fn(&str) -> bool,
    within: Duration,
    every: Duration,
) -> String {
    let deadline = std::time::Instant::now() + within;
    let mut last = None;
    loop {
        if let Ok(el) = c.find(Locator::Css(css)).await {
            if let Ok(t) = el.text().await {
                if f(&t) {
                    return t;
                }
                last = Some(t);
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{css}: never {what}; last text: {last:?}"
        );
        tokio::time::sleep(every).await;
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
            t == "Wrong email address or password."
        })
        .await;
        snap(a, "login-desktop").await;
        // the keyboard is enough: Enter in the password field signs in
        fill(a, "#password", DEMO_PASSWORD).await;
        a.find(Locator::Css("#password"))
            .await
            .expect("password")
            .send_keys(&Key::Enter)
            .await
            .expect("enter");
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
        wait_text(a, "#password-status", "confirms", |t| {
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
        // no mail yet: the mailbox list says so
        wait_text(m, "#mailboxes", "says so", |t| t.contains("No mail yet")).await;
        no_page_errors(m).await;
    })
    .await;
    t.stop().await;
}

/// Saves a screenshot under target/browser-screenshots/ when
/// POSTERN_SCREENSHOTS is set (for looking at the pages; failures always save).
async fn snap(c: &Client, name: &str) {
    if std::env::var_os("POSTERN_SCREENSHOTS").is_none() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
    let _ = std::fs::create_dir_all(&dir);
    // the whole page, not just the window: grow the window to the content
    let height = c
        .execute("return document.documentElement.scrollHeight", vec![])
        .await
        .ok()
        .and_then(|v| v.as_u64())
        .unwrap_or(800);
    let width = c
        .execute("return window.outerWidth", vec![])
        .await
        .ok()
        .and_then(|v| v.as_u64())
        .unwrap_or(1000);
    let _ = c
        .set_window_size(width as u32, (height as u32 + 140).min(6000))
        .await;
    if let Ok(png) = c.screenshot().await {
        let _ = std::fs::write(dir.join(format!("{name}.png")), png);
    }
}

/// The page fits the window's width (no sideways scrolling of the page).
async fn fits_width(c: &Client, what: &str) {
    let v = c
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth]",
            vec![],
        )
        .await
        .expect("execute");
    let (content, window) = (v[0].as_u64().expect("n"), v[1].as_u64().expect("n"));
    assert!(
        content <= window,
        "{what}: page is {content}px wide in a {window}px window"
    );
}

/// Clicks a button by its visible text among those matching `css`.
async fn click_text(c: &Client, css: &str, label: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        for el in c.find_all(Locator::Css(css)).await.unwrap_or_default() {
            if el.text().await.is_ok_and(|t| t == label) {
                el.click().await.expect("click");
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {css} reading {label:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_a_session_sends_the_other_browser_to_sign_in() {
    let t = TestApp::start().await;
    let mut d = driver().await;
    let (a, b) = (d.browser().await, d.browser().await);
    let base = format!("http://{}", t.addr);
    run("session_revoke", vec![a, b], move |cs| async move {
        let (a, b) = (&cs[0], &cs[1]);
        sign_in_account(a, &base, DEMO_PASSWORD).await;
        assert_eq!(text(a, "#account-name").await, "demo");
        sign_in_account(b, &base, DEMO_PASSWORD).await;
        assert_eq!(text(b, "#account-name").await, "demo");

        // A sees both sessions, its own marked, and revokes B's
        click(a, "#sessions-refresh").await;
        let rows = wait_text(a, "#sessions-table tbody", "lists two", |t| {
            t.lines().count() == 2
        })
        .await;
        assert!(rows.contains("this browser"), "{rows}");
        click_text(a, "#sessions-table button.revoke", "Revoke").await;
        wait_text(a, "#sessions-status", "confirms", |t| {
            t == "Session revoked."
        })
        .await;
        wait_text(a, "#sessions-table tbody", "lists one", |t| {
            t.lines().count() == 1
        })
        .await;

        // B's next action (no reload) brings up the sign-in form, saying why
        click(b, "#attempts-refresh").await;
        let msg = wait_text(b, "#login-message", "explains", |t| !t.is_empty()).await;
        assert!(msg.contains("session ended"), "{msg}");
        // signing in again finishes the interrupted action on the same page
        fill(b, "#username", DEMO_ADDRESS).await;
        fill(b, "#password", DEMO_PASSWORD).await;
        click(b, "#login-submit").await;
        wait_text(b, "#account-name", "shows the page again", |t| t == "demo").await;
        assert!(
            b.find(Locator::Css("#login-box")).await.is_err(),
            "the form is gone"
        );

        // "sign out everywhere else" from A ends B again, A stays
        click(a, "#sessions-refresh").await;
        wait_text(a, "#sessions-table tbody", "lists two", |t| {
            t.lines().count() == 2
        })
        .await;
        click(a, "#revoke-others").await;
        wait_text(a, "#sessions-status", "counts", |t| {
            t == "Signed out 1 other session."
        })
        .await;
        b.refresh().await.expect("reload");
        let msg = wait_text(b, "#login-message", "explains", |t| !t.is_empty()).await;
        assert!(msg.contains("session ended"), "{msg}");
        a.refresh().await.expect("reload");
        assert_eq!(text(a, "#account-name").await, "demo");
        no_page_errors(a).await;
        no_page_errors(b).await;
    })
    .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn account_page_edits_suggestions_and_history() {
    let t = TestApp::start().await;
    let mut d = driver().await;
    let a = d.browser().await;
    let base = format!("http://{}", t.addr);
    run("account_edits", vec![a], move |cs| async move {
        let a = &cs[0];
        // one failed attempt first, to see it in the history
        a.goto(&format!("{base}/account/")).await.expect("goto");
        fill(a, "#username", DEMO_ADDRESS).await;
        fill(a, "#password", "not the password").await;
        click(a, "#login-submit").await;
        wait_text(a, "#login-message", "fails", |t| {
            t == "Wrong email address or password."
        })
        .await;
        fill(a, "#password", DEMO_PASSWORD).await;
        click(a, "#login-submit").await;
        assert_eq!(text(a, "#account-name").await, "demo");

        // full name: saved and shown after a reload
        fill(a, "#full-name", "Demo Person").await;
        click(a, "#full-name-save").await;
        wait_text(a, "#overview-status", "saves", |t| t == "Full name saved.").await;
        a.refresh().await.expect("reload");
        let v = a
            .find(Locator::Css("#full-name"))
            .await
            .expect("field")
            .prop("value")
            .await
            .expect("value");
        assert_eq!(v.as_deref(), Some("Demo Person"));

        // password: strength feedback as one types, a suggestion from the server
        fill(a, "#new-password", "abc").await;
        wait_text(a, "#password-strength", "too short", |t| {
            t.contains("too short")
        })
        .await;
        fill(a, "#new-password", "aaaaaaaa").await;
        wait_text(a, "#password-strength", "weak", |t| t == "Strength: weak").await;
        click(a, "#password-generate").await;
        wait_text(a, "#password-strength", "strong", |t| {
            t == "Strength: strong"
        })
        .await;
        let suggested = a
            .find(Locator::Css("#new-password"))
            .await
            .expect("field")
            .prop("value")
            .await
            .expect("value")
            .expect("a value");
        assert_eq!(suggested.len(), 22, "{suggested}");

        // a destination: another mailbox and a rule
        fill(a, "#dest-mailbox-0", "Incoming").await;
        click_text(a, "#destinations button", "Save destination").await;
        wait_text(a, "#dest-status-0", "saves", |t| t == "Saved.").await;
        fill(a, "#rule-header-0", "List-Id").await;
        fill(a, "#rule-contains-0", "rust-users").await;
        fill(a, "#rule-mailbox-0", "Lists/Rust").await;
        click_text(a, "#destinations button", "Add rule").await;
        wait_text(
            a,
            "#destinations table.rules tbody",
            "shows the rule",
            |t| t.contains("rust-users"),
        )
        .await;
        a.refresh().await.expect("reload");
        let rules = text(a, "#destinations table.rules tbody").await;
        assert!(rules.contains("List-Id rust-users Lists/Rust"), "{rules}");
        let mailbox = a
            .find(Locator::Css("#dest-mailbox-0"))
            .await
            .expect("field")
            .prop("value")
            .await
            .expect("value");
        assert_eq!(mailbox.as_deref(), Some("Incoming"));
        // a bad rule gets the server's message
        fill(a, "#rule-header-0", "Bad:Header").await;
        fill(a, "#rule-contains-0", "x").await;
        fill(a, "#rule-mailbox-0", "X").await;
        click_text(a, "#destinations button", "Add rule").await;
        let msg = wait_text(a, "#dest-status-0", "refuses", |t| !t.is_empty()).await;
        assert!(msg.contains("header name"), "{msg}");

        // sign-in history: the failure and the success, newest first
        let hist = wait_text(a, "#attempts-table tbody", "lists both", |t| {
            t.lines().count() >= 2
        })
        .await;
        let lines: Vec<&str> = hist.lines().collect();
        assert!(lines[0].contains("signed in"), "{hist}");
        assert!(lines[1].contains("wrong password"), "{hist}");
        no_page_errors(a).await;
        snap(a, "account-desktop").await;

        // phone-sized: the page fits, nothing scrolls sideways
        a.set_window_size(390, 844).await.expect("resize");
        a.refresh().await.expect("reload");
        assert_eq!(text(a, "#account-name").await, "demo");
        text(a, "#attempts-table").await;
        fits_width(a, "account page on a phone").await;
        snap(a, "account-phone").await;
        no_page_errors(a).await;
    })
    .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_creates_disables_and_removes_an_account() {
    let t = TestApp::start().await;
    let mut d = driver().await;
    let (a, u) = (d.browser().await, d.browser().await);
    let base = format!("http://{}", t.addr);
    let addr = t.addr;
    run("admin_accounts", vec![a, u], move |cs| async move {
        let (a, u) = (&cs[0], &cs[1]);
        a.goto(&format!("{base}/admin/")).await.expect("goto");
        fill(a, "#password", ADMIN_PASSWORD).await;
        click(a, "#login-submit").await;
        text(a, "#accounts").await;

        // add an account, give it a password and a second address
        fill(a, "#new-account-name", "alice").await;
        fill(a, "#new-account-address", "alice@example.org").await;
        click(a, "#account-add-submit").await;
        wait_text(a, "#detail-name", "opens it", |t| t == "alice").await;
        let list = text(a, "#accounts tbody").await;
        assert!(list.contains("alice") && list.contains("demo"), "{list}");
        fill(a, "#account-password", "alice's secret").await;
        click(a, "#account-password-submit").await;
        wait_text(a, "#detail-status", "sets it", |t| {
            t.starts_with("Password set")
        })
        .await;
        fill(a, "#address-new", "al@example.org").await;
        click_text(a, "#address-add button", "Add address").await;
        wait_text(a, "#detail-address-list", "lists it", |t| {
            t.contains("al@example.org")
        })
        .await;
        // adding an address that is taken shows the server's message
        fill(a, "#address-new", DEMO_ADDRESS).await;
        click_text(a, "#address-add button", "Add address").await;
        wait_text(a, "#detail-status", "refuses", |t| {
            t == "address already in use"
        })
        .await;

        // alice signs in in another browser, with the new address
        u.goto(&format!("{base}/account/")).await.expect("goto");
        fill(u, "#username", "al@example.org").await;
        fill(u, "#password", "alice's secret").await;
        click(u, "#login-submit").await;
        assert_eq!(text(u, "#account-name").await, "alice");

        // the admin sees her session and her sign-in, then disables her
        click_text(a, "#accounts button.account-open", "alice").await;
        wait_text(a, "#account-sessions tbody", "shows the session", |t| {
            t.contains("al@example.org")
        })
        .await;
        let hist = text(a, "#account-attempts tbody").await;
        assert!(hist.contains("signed in"), "{hist}");
        fill(a, "#disable-reason", "on holiday").await;
        click(a, "#account-disable").await;
        wait_text(a, "#login-disabled", "shows it", |t| t == "disabled").await;
        let list = text(a, "#accounts tbody").await;
        assert!(list.contains("disabled: on holiday"), "{list}");

        // her next action fails with the disabled message
        fill(u, "#full-name", "Alice").await;
        click(u, "#full-name-save").await;
        let msg = wait_text(u, "#login-message", "explains", |t| !t.is_empty()).await;
        assert_eq!(msg, "Your login is disabled: on holiday");
        // and signing in again says so too
        fill(u, "#username", "alice@example.org").await;
        fill(u, "#password", "alice's secret").await;
        click(u, "#login-submit").await;
        wait_text(u, "#login-message", "refuses", |t| {
            t == "Your login is disabled: on holiday"
        })
        .await;

        // enable again, then revoke all her sessions
        click(a, "#account-enable").await;
        wait_text(a, "#detail-status", "enables", |t| t == "Login enabled.").await;
        click(a, "#account-sessions-revoke").await;
        wait_text(a, "#detail-status", "revokes", |t| {
            t == "Revoked 1 session."
        })
        .await;

        // a rate-limited client shows up and can be reset
        for _ in 0..12 {
            send_from(
                Some("127.0.0.88".parse().expect("ip")),
                addr,
                "GET",
                "/account/x",
                &[("cookie", "webaccountsession=garbage")],
                vec![],
            )
            .await;
        }
        click(a, "#ratelimits-refresh").await;
        wait_text(a, "#ratelimits-table tbody", "lists it", |t| {
            t.contains("127.0.0.88/32")
        })
        .await;
        snap(a, "admin-desktop").await;
        click(
            a,
            "#ratelimits-table button[aria-label='Reset 127.0.0.88/32']",
        )
        .await;
        wait_text(a, "#ratelimits-table tbody", "clears it", |t| {
            !t.contains("127.0.0.88")
        })
        .await;
        let own = text(a, "#admin-attempts-table tbody").await;
        assert!(own.contains("signed in"), "{own}");

        // removal asks first; cancel keeps the account
        click(a, "#account-remove").await;
        click(a, "#account-remove-cancel").await;
        assert!(text(a, "#accounts tbody").await.contains("alice"));
        click(a, "#account-remove").await;
        let q = text(a, "#remove-q").await;
        assert!(q.contains("alice"), "{q}");
        click(a, "#account-remove-confirm").await;
        wait_text(a, "#accounts-status", "confirms", |t| {
            t == "Account alice removed."
        })
        .await;
        let list = text(a, "#accounts tbody").await;
        assert!(!list.contains("alice"), "{list}");
        no_page_errors(a).await;
        no_page_errors(u).await;

        a.set_window_size(390, 844).await.expect("resize");
        click_text(a, "#accounts button.account-open", "demo").await;
        text(a, "#detail-name").await;
        fits_width(a, "admin page on a phone").await;
        snap(a, "admin-phone").await;
    })
    .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_session_says_so() {
    let t = TestApp::start().await;
    let mut d = driver().await;
    let a = d.browser().await;
    let base = format!("http://{}", t.addr);
    let clock = t.clock.clone();
    run("expired", vec![a], move |cs| async move {
        let a = &cs[0];
        sign_in_account(a, &base, DEMO_PASSWORD).await;
        assert_eq!(text(a, "#account-name").await, "demo");
        // a day and a bit without use: the account session's idle lifetime is 24 h
        clock.advance(Duration::from_secs(25 * 3600));
        click(a, "#sessions-refresh").await;
        let msg = wait_text(a, "#login-message", "explains", |t| !t.is_empty()).await;
        // "session expired" while the session is still in memory, "session
        // ended: it expired, ..." once the actor has swept it
        assert!(msg.contains("expired"), "{msg}");
        assert!(msg.ends_with("Please sign in again."), "{msg}");
        fill(a, "#username", DEMO_ADDRESS).await;
        fill(a, "#password", DEMO_PASSWORD).await;
        click(a, "#login-submit").await;
        wait_text(a, "#account-name", "is back", |t| t == "demo").await;
        no_page_errors(a).await;
    })
    .await;
    t.stop().await;
}

/// Like [`wait_text`], for things that take longer (imports).
async fn wait_text_long(c: &Client, css: &str, what: &str, f: impl Fn(&str) -> bool) -> String {
    wait_text_within(
        c,
        css,
        what,
        f,
        Duration::from_secs(180),
        Duration::from_millis(100),
    )
    .await
}

/// Waits for a finished download whose name ends with `suffix`.
async fn wait_download(dir: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut last_size = None;
    loop {
        let found = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(suffix));
        if let Some(p) = found {
            // finished: no partial file left, and the size is stable
            let size = std::fs::metadata(&p).map(|m| m.len()).ok();
            let partial = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| e.path().to_string_lossy().ends_with(".crdownload"));
            if !partial && size.is_some() && size == last_size {
                return p;
            }
            last_size = size;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no download ending in {suffix} in {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn import_export_and_webmail() {
    let t = TestApp::start().await;
    let fixtures = tempfile::tempdir().expect("tempdir");
    let fdir = fixtures.path().to_str().expect("utf-8 path").to_string();
    mailfix(&["make", &fdir]);
    let downloads = tempfile::tempdir().expect("tempdir");
    let ddir = downloads.path().to_path_buf();
    let mut d = driver().await;
    let (a, m) = (d.browser_downloading_to(&ddir).await, d.browser().await);
    let base = format!("http://{}", t.addr);
    run("import_export", vec![a, m], move |cs| async move {
        let (a, m) = (&cs[0], &cs[1]);
        sign_in_account(a, &base, DEMO_PASSWORD).await;
        assert_eq!(text(a, "#account-name").await, "demo");

        // import: choose the file, watch the progress reach done
        let zip = format!("{fdir}/fixture.zip");
        a.find(Locator::Css("#import-file"))
            .await
            .expect("file input")
            .send_keys(&zip)
            .await
            .expect("choose file");
        wait_text(a, "#import-chosen", "names it", |t| {
            t.contains("fixture.zip")
        })
        .await;
        click(a, "#import-submit").await;
        let done = wait_text_long(a, "#import-state", "is done", |t| t.starts_with("Done")).await;
        assert_eq!(done, "Done: 261 messages imported into 3 mailboxes.");
        let counts = text(a, "#import-counts tbody").await;
        for line in ["Archive/2024 250", "Inbox 6", "Lists/dev 5"] {
            assert!(counts.contains(line), "{line} in {counts}");
        }
        let abort_shown = a
            .find(Locator::Css("#import-abort"))
            .await
            .expect("abort")
            .is_displayed()
            .await
            .expect("displayed");
        assert!(!abort_shown, "no abort after done");
        // the storage figure follows after a reload, and the form is back
        a.refresh().await.expect("reload");
        text(a, "#import-form").await;
        no_page_errors(a).await;

        // export: the browser downloads a zip that Python reads back
        click(a, "#export-mbox-zip").await;
        let file = wait_download(&ddir, ".mbox.zip").await;
        let name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with("mailexport-demo-"), "{name}");
        let read = mailfix(&["read", file.to_str().expect("utf-8")]);
        let msgs: Vec<serde_json::Value> = serde_json::from_slice(&read).expect("json");
        assert_eq!(msgs.len(), 261, "every message exported");
        assert_eq!(
            a.current_url().await.expect("url").path(),
            "/account/",
            "the page stays"
        );
        no_page_errors(a).await;

        // webmail lists the imported messages, newest first, in pages
        m.goto(&format!("{base}/webmail/")).await.expect("goto");
        fill(m, "#username", DEMO_ADDRESS).await;
        fill(m, "#password", DEMO_PASSWORD).await;
        click(m, "#login-submit").await;
        let boxes = wait_text(m, "#mailboxes", "lists them", |t| t.contains("Inbox")).await;
        for b in ["Archive/2024", "Inbox", "Lists/dev"] {
            assert!(boxes.contains(b), "{b} in {boxes}");
        }
        wait_text(m, "#list-h", "opens the inbox", |t| t == "Inbox").await;
        let inbox = text(m, "#messages tbody").await;
        assert!(inbox.contains("Grüße ☺ aus Köln"), "{inbox}");
        assert!(inbox.contains("Jörg"), "{inbox}");
        click_text(m, "#mailboxes button.mailbox .name", "Archive/2024").await;
        wait_text(m, "#list-range", "pages", |t| {
            t == "Messages 1–50 of 250, newest first"
        })
        .await;
        click(m, "#page-older").await;
        wait_text(m, "#list-range", "pages", |t| {
            t == "Messages 51–100 of 250, newest first"
        })
        .await;
        click(m, "#page-newer").await;
        wait_text(m, "#list-range", "pages", |t| {
            t.starts_with("Messages 1–50")
        })
        .await;
        // one message's text
        click_text(m, "#mailboxes button.mailbox .name", "Inbox").await;
        wait_text(m, "#list-h", "opens the inbox", |t| t == "Inbox").await;
        click_text(m, "#messages button.open-message", "Grüße ☺ aus Köln").await;
        let body = text(m, "#message-text").await;
        assert!(
            body.contains("From here on, a line starts with From."),
            "{body}"
        );
        assert_eq!(text(m, "#message-subject").await, "Grüße ☺ aus Köln");
        snap(m, "webmail-desktop").await;
        click(m, "#message-back").await;
        text(m, "#messages").await;
        m.set_window_size(390, 844).await.expect("resize");
        fits_width(m, "webmail on a phone").await;
        snap(m, "webmail-phone").await;
        no_page_errors(m).await;
        click(m, "#signout").await;
        text(m, "#login").await;
    })
    .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn import_reattaches_after_reload_and_aborts() {
    let t = TestApp::start().await;
    let fixtures = tempfile::tempdir().expect("tempdir");
    let big = fixtures.path().join("big.tgz");
    let big = big.to_str().expect("utf-8").to_string();
    mailfix(&["big", &big, "30000"]);
    let mut d = driver().await;
    let a = d.browser().await;
    let base = format!("http://{}", t.addr);
    run("import_abort", vec![a], move |cs| async move {
        let a = &cs[0];
        sign_in_account(a, &base, DEMO_PASSWORD).await;
        assert_eq!(text(a, "#account-name").await, "demo");
        a.find(Locator::Css("#import-file"))
            .await
            .expect("file input")
            .send_keys(&big)
            .await
            .expect("choose file");
        click(a, "#import-submit").await;
        text(a, "#import-counts").await;
        // a reload in the middle comes back to the same import's progress
        a.refresh().await.expect("reload");
        wait_text(a, "#import-state", "reattaches", |t| t == "Importing…").await;
        click(a, "#import-abort").await;
        let end = wait_text_long(a, "#import-state", "ends", |t| t.starts_with("Aborted")).await;
        assert_eq!(end, "Aborted: nothing was imported.");
        a.refresh().await.expect("reload");
        text(a, "#import-form").await;
        assert_eq!(text(a, "#storage-used").await, "0 bytes");
        no_page_errors(a).await;
    })
    .await;
    t.stop().await;
}
