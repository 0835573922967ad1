//! Test harness: a real postern on 127.0.0.1:0 with a temporary data
//! directory, and a small HTTP/1.1 client over real sockets that keeps
//! cookies like a browser (path-scoped, deleted by Max-Age=0).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use postern::app::{AppHandle, StartOptions};
use postern::clock::ManualClock;
use postern::config::Config;
use postern::credentials::HashCost;
use postern::sessions::ActorTiming;
use postern::store::Stores;
use serde_json::Value;
use tokio::net::TcpSocket;

pub const DEMO: &str = "demo";
pub const DEMO_ADDRESS: &str = "demo@localhost";
pub const DEMO_PASSWORD: &str = "demodemo";
pub const ADMIN_PASSWORD: &str = "adminadmin";

/// Session actor timing of test instances: extensions written every 200 ms.
fn test_timing() -> ActorTiming {
    ActorTiming {
        tick: Duration::from_millis(200),
        idle_stop: Duration::from_secs(3600),
    }
}

/// A running test instance.
pub struct TestApp {
    pub app: Option<AppHandle>,
    pub addr: SocketAddr,
    pub metrics: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    pub clock: ManualClock,
    pub delay_ms: u64,
}

pub fn config(dir: &std::path::Path, delay_ms: u64) -> Config {
    let mut c = Config::local("127.0.0.1".parse().expect("ip"), dir.join("data"));
    c.listeners[0].address = "127.0.0.1:0".parse().expect("addr");
    c.metrics_address = Some("127.0.0.1:0".parse().expect("addr"));
    c.password_hash = HashCost::minimal();
    c.bad_auth_delay_ms = delay_ms;
    c
}

/// Provisions accounts before the app starts (the database is locked while it runs).
pub fn provision(dir: &std::path::Path, accounts: &[(&str, &str, &str)]) {
    let stores = Stores::open(&dir.join("data")).expect("open stores");
    for (name, addr, pw) in accounts {
        postern::setup::create_account(&stores, name, addr, pw, HashCost::minimal(), 0)
            .expect("create account");
    }
    postern::setup::set_admin_password(&stores, ADMIN_PASSWORD, HashCost::minimal())
        .expect("admin password");
}

impl TestApp {
    /// A fresh instance with the demo account and admin password.
    pub async fn start() -> TestApp {
        TestApp::start_with(&[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)], 20).await
    }

    pub async fn start_with(accounts: &[(&str, &str, &str)], delay_ms: u64) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        provision(dir.path(), accounts);
        let clock = ManualClock::starting_now();
        TestApp::boot(dir, clock, delay_ms).await
    }

    /// A fresh instance whose session actors stop after `idle_stop` without messages.
    pub async fn start_with_idle_stop(idle_stop: Duration) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        provision(dir.path(), &[(DEMO, DEMO_ADDRESS, DEMO_PASSWORD)]);
        let timing = ActorTiming {
            tick: Duration::from_millis(100),
            idle_stop,
        };
        let c = config(dir.path(), 20);
        TestApp::boot_full(dir, ManualClock::starting_now(), 20, c, timing).await
    }

    /// Starts on an existing data directory (provisioned already).
    pub async fn boot_on(dir: tempfile::TempDir) -> TestApp {
        TestApp::boot(dir, ManualClock::starting_now(), 20).await
    }

    /// A fresh instance with the given accounts and a changed configuration.
    pub async fn start_tweaked(
        accounts: &[(&str, &str, &str)],
        tweak: impl FnOnce(&mut Config),
    ) -> TestApp {
        TestApp::start_configured(accounts, 20, tweak).await
    }

    /// Like [`TestApp::start_with`], with the configuration changed by `f`
    /// (a restart goes back to the default configuration).
    pub async fn start_configured(
        accounts: &[(&str, &str, &str)],
        delay_ms: u64,
        f: impl FnOnce(&mut Config),
    ) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        provision(dir.path(), accounts);
        let clock = ManualClock::starting_now();
        let mut c = config(dir.path(), delay_ms);
        f(&mut c);
        TestApp::boot_full(dir, clock, delay_ms, c, test_timing()).await
    }

    async fn boot(dir: tempfile::TempDir, clock: ManualClock, delay_ms: u64) -> TestApp {
        let c = config(dir.path(), delay_ms);
        TestApp::boot_full(dir, clock, delay_ms, c, test_timing()).await
    }

    async fn boot_full(
        dir: tempfile::TempDir,
        clock: ManualClock,
        delay_ms: u64,
        c: Config,
        timing: ActorTiming,
    ) -> TestApp {
        let opts = StartOptions {
            clock: Arc::new(clock.clone()),
            timing,
        };
        let app = AppHandle::start(c, opts).await.expect("start app");
        TestApp {
            addr: app.addresses[0],
            metrics: app.metrics_address,
            app: Some(app),
            dir,
            clock,
            delay_ms,
        }
    }

    /// Shuts down cleanly and starts again on the same data directory.
    pub async fn restart(mut self) -> TestApp {
        if let Some(app) = self.app.take() {
            app.shutdown().await.expect("shutdown");
        }
        TestApp::boot(self.dir, self.clock, self.delay_ms).await
    }

    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await.expect("shutdown");
        }
    }

    pub fn browser(&self) -> Browser {
        Browser::new(self.addr)
    }
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header").to_string())
    }
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().expect("ascii").to_string())
            .collect()
    }
    /// The sherpa error code, if the body is an error.
    pub fn error_code(&self) -> Option<String> {
        self.json()
            .get("error")
            .map(|e| e["code"].as_str().expect("code").to_string())
    }
    pub fn error_message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .expect("message")
            .to_string()
    }
    pub fn result(&self) -> Value {
        let j = self.json();
        assert!(j.get("error").is_none(), "unexpected error: {j}");
        j["result"].clone()
    }
}

/// Sends one request on a new connection from `from` (a loopback address),
/// so tests can pose as different clients for the rate limiter.
pub async fn send_from(
    from: Option<IpAddr>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Resp {
    let sock = TcpSocket::new_v4().expect("socket");
    if let Some(ip) = from {
        sock.bind(SocketAddr::new(ip, 0)).expect("bind source");
    }
    let stream = sock.connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body))).expect("request");
    let resp = sender.send_request(req).await.expect("send");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Resp {
        status,
        headers,
        body,
    }
}

pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Resp {
    send_from(None, addr, method, path, headers, body).await
}

/// A browser-like client: a cookie jar (name, path) → value, and the CSRF
/// token kept after Login like the pages keep it in localStorage.
pub struct Browser {
    pub addr: SocketAddr,
    pub from: Option<IpAddr>,
    pub cookies: BTreeMap<(String, String), String>,
    pub csrf: Option<String>,
    pub agent: String,
    /// Headers sent with every request (e.g. X-Forwarded-For).
    pub extra_headers: Vec<(String, String)>,
}

impl Browser {
    pub fn new(addr: SocketAddr) -> Browser {
        Browser {
            addr,
            from: None,
            cookies: BTreeMap::new(),
            csrf: None,
            agent: "postern-test/1".into(),
            extra_headers: Vec::new(),
        }
    }

    pub fn with_ip(mut self, ip: &str) -> Browser {
        self.from = Some(ip.parse().expect("ip"));
        self
    }

    /// The Cookie header a browser would send for `path`: most specific path first.
    pub fn cookie_header(&self, path: &str) -> Option<String> {
        let mut v: Vec<(&(String, String), &String)> = self
            .cookies
            .iter()
            .filter(|((_, p), _)| path.starts_with(p.as_str()))
            .collect();
        v.sort_by_key(|c| std::cmp::Reverse(c.0.1.len()));
        if v.is_empty() {
            return None;
        }
        Some(
            v.iter()
                .map(|((n, _), val)| format!("{n}={val}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    fn store(&mut self, resp: &Resp) {
        for sc in resp.set_cookies() {
            let mut parts = sc.split("; ");
            let (name, value) = parts
                .next()
                .and_then(|nv| nv.split_once('='))
                .expect("name=value");
            let mut path = "/".to_string();
            let mut delete = false;
            for a in parts {
                if let Some(p) = a.strip_prefix("Path=") {
                    path = p.to_string();
                }
                if a == "Max-Age=0" {
                    delete = true;
                }
            }
            let key = (name.to_string(), path);
            if delete {
                self.cookies.remove(&key);
            } else {
                self.cookies.insert(key, value.to_string());
            }
        }
    }

    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Resp {
        let cookie = self.cookie_header(path);
        let mut headers: Vec<(&str, &str)> = vec![("user-agent", self.agent.as_str())];
        if let Some(c) = &cookie {
            headers.push(("cookie", c.as_str()));
        }
        headers.extend_from_slice(extra);
        for (k, v) in &self.extra_headers {
            headers.push((k.as_str(), v.as_str()));
        }
        let r = send_from(self.from, self.addr, method, path, &headers, body).await;
        self.store(&r);
        r
    }

    /// An API call with the CSRF header (if we have a token) and JSON body.
    pub async fn api(&mut self, prefix: &str, function: &str, params: Value) -> Resp {
        let body = serde_json::to_vec(&serde_json::json!({ "params": params })).expect("json");
        let csrf = self.csrf.clone();
        let mut h: Vec<(&str, &str)> = vec![("content-type", "application/json")];
        if let Some(c) = &csrf {
            h.push(("x-mox-csrf", c.as_str()));
        }
        self.request("POST", &format!("{prefix}api/{function}"), &h, body)
            .await
    }

    /// LoginPrep then Login; keeps the CSRF token. Returns the Login response.
    pub async fn login(&mut self, prefix: &str, username: Option<&str>, password: &str) -> Resp {
        let prep = self.api(prefix, "LoginPrep", serde_json::json!([])).await;
        assert_eq!(prep.status, 200, "{}", prep.text());
        let token = prep.result().as_str().expect("token").to_string();
        let params = match username {
            Some(u) => serde_json::json!([token, u, password]),
            None => serde_json::json!([token, password]),
        };
        let r = self.api(prefix, "Login", params).await;
        if let Some(csrf) = r.json().get("result").and_then(|v| v.as_str()) {
            self.csrf = Some(csrf.to_string());
        }
        r
    }

    pub async fn login_account(&mut self) -> Resp {
        let r = self
            .login("/account/", Some(DEMO_ADDRESS), DEMO_PASSWORD)
            .await;
        assert!(
            r.json().get("result").is_some(),
            "login failed: {}",
            r.text()
        );
        r
    }

    pub async fn login_admin(&mut self) -> Resp {
        let r = self.login("/admin/", None, ADMIN_PASSWORD).await;
        assert!(
            r.json().get("result").is_some(),
            "admin login failed: {}",
            r.text()
        );
        r
    }
}

/// Runs tests/fixtures/mailfix.py (Python's `mailbox` and `email` modules
/// make and read the mail archives) with `args`; its standard output.
pub fn mailfix(args: &[&str]) -> Vec<u8> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mailfix.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "mailfix {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The fixture archives (`mailfix.py make`) in a new temporary directory.
pub fn mail_fixtures() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    mailfix(&["make", d.path().to_str().expect("utf-8 temp path")]);
    d
}
