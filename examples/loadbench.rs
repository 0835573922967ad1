//! postern's load benchmark: one run, one table, one JSON file.
//!
//! Run it with `bash scripts/bench.sh` (builds in release mode, pins the load
//! generator to CPU 1 and the server to CPU 0). It starts the real `postern`
//! binary on a fresh data directory and measures, over real sockets:
//! 1. the floor (an unauthenticated static page),
//! 2. session checks (`POST /account/api/Version` with cookie + CSRF) at
//!    1/16/64/256 keep-alive connections, on 1 account and across 1,000,
//! 3. sign-in (LoginPrep + Login) sequential and 4 concurrent, and session
//!    check p99 while sign-ins run,
//! 4. a forged-cookie flood: good-session p99, server memory and threads,
//! 5. sessions at scale: N accounts × 100 sessions written to the database,
//!    resident memory per held session, cold first-use latency, restart time;
//!    then N accounts × 1 session: resident memory per live account,
//! 6. mail import and export over HTTP ([`mail`]): throughput, peak RSS during
//!    a 1 GiB import, other accounts' sign-in and session-check latency
//!    during large imports.
//!
//! Options: `--quick` (shorter runs, 1,000 accounts at scale, a 100 MiB
//! import instead of 1 GiB), `--only mail` (section 6 alone), `--only scale`
//! (section 5 alone), `--only check` (sections 1 and 2 alone),
//! `--out FILE` (JSON; default bench-results/<unix time>.json),
//! `--server-cpu N` (pin the server with taskset). `POSTERN_BIN=path` runs
//! another build of the server (before/after comparisons on one host).

#[path = "loadbench/mail.rs"]
mod mail;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use postern::credentials::HashCost;
use postern::store::Stores;
use postern::store::codec::SessionRecord;
use postern::token::Token;
use serde_json::{Value, json};
use tokio::net::TcpSocket;

type Req = Request<Full<Bytes>>;
type MakeReq = Arc<dyn Fn(usize, u64) -> Req + Send + Sync>;

struct Opts {
    quick: bool,
    only_mail: bool,
    only_scale: bool,
    only_check: bool,
    out: PathBuf,
    server_cpu: Option<usize>,
}

fn parse_args() -> Opts {
    let mut o = Opts {
        quick: false,
        only_mail: false,
        only_scale: false,
        only_check: false,
        out: PathBuf::from(format!(
            "bench-results/{}.json",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        )),
        server_cpu: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--only" => match args.next().as_deref() {
                Some("mail") => o.only_mail = true,
                Some("scale") => o.only_scale = true,
                Some("check") => o.only_check = true,
                other => panic!("--only takes a section name (check, mail, scale), not {other:?}"),
            },
            "--out" => o.out = PathBuf::from(args.next().expect("--out FILE")),
            "--server-cpu" => o.server_cpu = args.next().and_then(|v| v.parse().ok()),
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

/// A running server process.
struct Server {
    child: Child,
    addr: SocketAddr,
}

/// The machine's online CPUs. Not `available_parallelism`: this process is
/// pinned to one CPU, which that would report.
fn machine_cpus() -> usize {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|s| s.lines().filter(|l| l.starts_with("processor")).count())
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The server's configuration; `metrics`: a port for the metrics listener.
fn write_config(dir: &Path, port: u16, metrics: Option<u16>) -> PathBuf {
    let metrics = metrics.map_or(String::new(), |m| {
        format!("metrics_address = \"127.0.0.1:{m}\"\n")
    });
    let cfg = format!(
        "data_dir = \"data\"\nbad_auth_delay_ms = 1000\nlog_level = \"error\"\n{metrics}\
         [limits]\nmax_connections = 20000\n\
         [[listener]]\naddress = \"127.0.0.1:{port}\"\n\
         [[listener.interface]]\nkind = \"webaccount\"\nprefix = \"/account/\"\n\
         [[listener.interface]]\nkind = \"webadmin\"\nprefix = \"/admin/\"\n"
    );
    let p = dir.join("postern.toml");
    std::fs::write(&p, cfg).expect("write config");
    p
}

async fn start_server(
    bin: &Path,
    config: &Path,
    port: u16,
    cpu: Option<usize>,
) -> (Server, Duration) {
    let t0 = Instant::now();
    let mut cmd = match cpu {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", &c.to_string()]).arg(bin);
            cmd
        }
        None => Command::new(bin),
    };
    let child = cmd
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start postern");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    loop {
        if let Ok(r) = one(addr, get("/account/")).await {
            if r.0 == 200 {
                break;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (Server { child, addr }, t0.elapsed())
}

fn stop_server(mut s: Server) -> Duration {
    let t0 = Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status();
    let _ = s.child.wait();
    t0.elapsed()
}

fn proc_status(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    proc_status(pid, "VmRSS:")
}

fn get(path: &str) -> Req {
    Request::get(path)
        .header("host", "bench")
        .body(Full::new(Bytes::new()))
        .expect("req")
}

fn api(path: &str, cookie: &str, csrf: &str, body: &'static [u8]) -> Req {
    let mut b = Request::post(path)
        .header("host", "bench")
        .header("content-type", "application/json");
    if !cookie.is_empty() {
        b = b.header("cookie", cookie);
    }
    if !csrf.is_empty() {
        b = b.header("x-mox-csrf", csrf);
    }
    b.body(Full::new(Bytes::from_static(body))).expect("req")
}

/// One request on a new connection: (status, set-cookie headers, body).
async fn one(addr: SocketAddr, req: Req) -> Result<(u16, Vec<String>, Bytes), String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let r = tx.send_request(req).await.map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let cookies = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(String::from))
        .collect();
    let body = r
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, cookies, body))
}

/// A signed-in session: cookie header value and CSRF token.
#[derive(Clone)]
struct Session {
    cookie: String,
    csrf: String,
}

async fn login(addr: SocketAddr, user: &str, password: &str) -> Session {
    let (_, cookies, body) = one(
        addr,
        api("/account/api/LoginPrep", "", "", b"{\"params\":[]}"),
    )
    .await
    .expect("prep");
    let token: Value = serde_json::from_slice(&body).expect("json");
    let token = token["result"].as_str().expect("token").to_string();
    let login_cookie = cookies[0].split(';').next().expect("cookie").to_string();
    let body = serde_json::to_vec(&json!({"params": [token, user, password]})).expect("json");
    let req = Request::post("/account/api/Login")
        .header("host", "bench")
        .header("content-type", "application/json")
        .header("cookie", login_cookie)
        .body(Full::new(Bytes::from(body)))
        .expect("req");
    let (_, cookies, body) = one(addr, req).await.expect("login");
    let v: Value = serde_json::from_slice(&body).expect("json");
    let csrf = v["result"]
        .as_str()
        .unwrap_or_else(|| panic!("login failed: {v}"))
        .to_string();
    Session {
        cookie: cookies[0].split(';').next().expect("cookie").to_string(),
        csrf,
    }
}

struct Stats {
    count: u64,
    errors: u64,
    secs: f64,
    hist: Histogram<u64>,
}

impl Stats {
    fn rps(&self) -> f64 {
        self.count as f64 / self.secs
    }
    fn q(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
    fn json(&self) -> Value {
        json!({"requests": self.count, "errors": self.errors, "rps": self.rps().round(),
               "p50_ms": self.q(0.5), "p99_ms": self.q(0.99), "p999_ms": self.q(0.999)})
    }
    fn row(&self, name: &str) {
        println!(
            "{name:<44} {:>10.0} {:>9.3} {:>9.3} {:>9.3} {:>6}",
            self.rps(),
            self.q(0.5),
            self.q(0.99),
            self.q(0.999),
            self.errors
        );
    }
}

/// Runs `conns` keep-alive connections sending `make(conn, i)` for `dur`;
/// a request counts as an error unless its status is `ok_status`.
async fn load(
    addr: SocketAddr,
    conns: usize,
    dur: Duration,
    ok_status: u16,
    make: MakeReq,
    stop: Option<Arc<AtomicBool>>,
) -> Stats {
    let deadline = Instant::now() + dur;
    let mut tasks = Vec::new();
    let start = Instant::now();
    for c in 0..conns {
        let make = make.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("hist");
            let (mut count, mut errors) = (0u64, 0u64);
            let sock = TcpSocket::new_v4().expect("sock");
            let stream = sock.connect(addr).await.expect("connect");
            let _ = stream.set_nodelay(true);
            let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("hs");
            tokio::spawn(conn);
            let mut i = 0u64;
            while Instant::now() < deadline
                && !stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed))
            {
                let req = make(c, i);
                i += 1;
                let t0 = Instant::now();
                match tx.send_request(req).await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let ok = r.into_body().collect().await.is_ok();
                        let _ = hist.record(t0.elapsed().as_micros().max(1) as u64);
                        count += 1;
                        if !ok || status != ok_status {
                            errors += 1;
                        }
                    }
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
            (hist, count, errors)
        }));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("hist");
    let (mut count, mut errors) = (0, 0);
    for t in tasks {
        let (h, c, e) = t.await.expect("task");
        hist.add(h).expect("merge");
        count += c;
        errors += e;
    }
    Stats {
        count,
        errors,
        secs: start.elapsed().as_secs_f64(),
        hist,
    }
}

fn session_check_maker(sessions: Arc<Vec<Session>>) -> MakeReq {
    Arc::new(move |c, i| {
        let s = &sessions[(c + i as usize * 7919) % sessions.len()];
        api(
            "/account/api/Version",
            &s.cookie,
            &s.csrf,
            b"{\"params\":[]}",
        )
    })
}

/// The `_sum` and `_count` of a histogram on the server's metrics listener.
async fn histogram_sum_count(metrics: SocketAddr, name: &str) -> (f64, f64) {
    let (_, _, body) = one(metrics, get("/metrics")).await.expect("metrics");
    let text = String::from_utf8_lossy(&body);
    let value = |suffix: &str| {
        let prefix = format!("{name}{suffix}");
        text.lines()
            .find(|l| l.starts_with(&prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (value("_sum"), value("_count"))
}

fn header() {
    println!(
        "{:<44} {:>10} {:>9} {:>9} {:>9} {:>6}",
        "measurement", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors"
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let o = parse_args();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // POSTERN_BIN: another build, for before/after runs on the same host.
    let bin = std::env::var_os("POSTERN_BIN")
        .map_or_else(|| root.join("target/release/postern"), PathBuf::from);
    assert!(
        bin.exists(),
        "build first: cargo build --release (scripts/bench.sh does)"
    );
    let dur = if o.quick {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(5)
    };
    let mut report = serde_json::Map::new();
    report.insert(
        "date".into(),
        json!(
            String::from_utf8_lossy(
                &Command::new("date")
                    .arg("-u")
                    .arg("+%Y-%m-%dT%H:%M:%SZ")
                    .output()
                    .map(|o| o.stdout)
                    .unwrap_or_default()
            )
            .trim()
        ),
    );
    report.insert("cpus".into(), json!(machine_cpus()));
    report.insert("server_cpu".into(), json!(o.server_cpu));
    let cost = HashCost::default();
    report.insert("argon2id".into(), json!({"memory_kib": cost.memory_kib, "iterations": cost.iterations, "parallelism": cost.parallelism}));
    if o.only_mail {
        mail::run(o.quick, &bin, o.server_cpu, &mut report).await;
        write_report(&o.out, report);
        return;
    }
    if o.only_scale {
        sessions_at_scale(o.quick, 100, &bin, o.server_cpu, &mut report).await;
        sessions_at_scale(o.quick, 1, &bin, o.server_cpu, &mut report).await;
        write_report(&o.out, report);
        return;
    }

    // ---- data dir with 1 demo account (default hash cost) and 1,000 others
    let dir = tempfile::tempdir().expect("tempdir");
    let n_accounts = 1000;
    {
        let stores = Stores::open(&dir.path().join("data")).expect("open");
        postern::setup::create_account(&stores, "demo", "demo@localhost", "demodemo", cost, 0)
            .expect("demo");
        for i in 0..n_accounts {
            postern::setup::create_account(
                &stores,
                &format!("user{i}"),
                &format!("user{i}@localhost"),
                "benchpassword",
                HashCost::minimal(),
                0,
            )
            .expect("account");
        }
    }
    let port = free_port();
    let metrics_port = free_port();
    let metrics = SocketAddr::from(([127, 0, 0, 1], metrics_port));
    let config = write_config(dir.path(), port, Some(metrics_port));
    let (server, _) = start_server(&bin, &config, port, o.server_cpu).await;
    let addr = server.addr;
    let pid = server.child.id();

    let mut one_account = Vec::new();
    for _ in 0..64 {
        one_account.push(login(addr, "user0@localhost", "benchpassword").await);
    }
    let mut many = Vec::new();
    for i in 0..n_accounts {
        many.push(login(addr, &format!("user{i}@localhost"), "benchpassword").await);
    }
    let (one_account, many) = (Arc::new(one_account), Arc::new(many));

    header();
    // 1. floor
    let floor_make: MakeReq = Arc::new(|_, _| get("/account/"));
    let mut floor = serde_json::Map::new();
    let mut floor64 = 0.0;
    for conns in [1, 16, 64, 256] {
        let s = load(addr, conns, dur, 200, floor_make.clone(), None).await;
        s.row(&format!("floor: GET page, {conns} conns"));
        if conns == 64 {
            floor64 = s.rps();
        }
        floor.insert(conns.to_string(), s.json());
    }
    report.insert("floor".into(), Value::Object(floor));

    // 2. session checks
    let mut checks = serde_json::Map::new();
    let mut check64 = 0.0;
    let mut quiet_p99_16 = 0.0;
    let mut quiet_p99_64 = 0.0;
    for (label, sessions) in [
        ("1 account", one_account.clone()),
        ("1000 accounts", many.clone()),
    ] {
        let mut m = serde_json::Map::new();
        for conns in [1, 16, 64, 256] {
            let s = load(
                addr,
                conns,
                dur,
                200,
                session_check_maker(sessions.clone()),
                None,
            )
            .await;
            s.row(&format!("session check, {label}, {conns} conns"));
            if label == "1 account" && conns == 64 {
                check64 = s.rps();
                quiet_p99_64 = s.q(0.99);
            }
            if label == "1 account" && conns == 16 {
                quiet_p99_16 = s.q(0.99);
            }
            m.insert(conns.to_string(), s.json());
        }
        checks.insert(label.into(), Value::Object(m));
    }
    report.insert("session_check".into(), Value::Object(checks));
    report.insert(
        "ratio_check64_over_floor64".into(),
        json!((check64 / floor64 * 1000.0).round() / 1000.0),
    );
    if o.only_check {
        stop_server(server);
        write_report(&o.out, report);
        return;
    }

    // 3. sign-in
    let mut signin = serde_json::Map::new();
    const VERIFY: &str = "postern_password_verify_duration_seconds";
    for conc in [1usize, 4] {
        let verify_before = histogram_sum_count(metrics, VERIFY).await;
        let stop = Instant::now() + dur;
        let hist = Arc::new(std::sync::Mutex::new(
            Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("h"),
        ));
        let count = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let mut ts = Vec::new();
        for _ in 0..conc {
            let (hist, count) = (hist.clone(), count.clone());
            ts.push(tokio::spawn(async move {
                while Instant::now() < stop {
                    let t = Instant::now();
                    login(addr, "demo@localhost", "demodemo").await;
                    if let Ok(mut h) = hist.lock() {
                        let _ = h.record(t.elapsed().as_micros() as u64);
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for t in ts {
            let _ = t.await;
        }
        let h = hist.lock().expect("h").clone();
        let s = Stats {
            count: count.load(Ordering::Relaxed),
            errors: 0,
            secs: t0.elapsed().as_secs_f64(),
            hist: h,
        };
        s.row(&format!("sign-in (LoginPrep+Login), {conc} concurrent"));
        signin.insert(format!("concurrent_{conc}"), s.json());
        if conc == 1 {
            // The server's own argon2id time over the same sign-ins (its
            // verify histogram): what a sign-in costs beyond it is the
            // protocol's own work (two requests, limiter, session write).
            let (sum, n) = histogram_sum_count(metrics, VERIFY).await;
            let hash = (sum - verify_before.0) / (n - verify_before.1).max(1.0) * 1000.0;
            let mean = s.hist.mean() / 1000.0;
            println!(
                "  server's argon2id verify mean {hash:.3} ms; sign-in mean {mean:.3} ms, beyond hashing {:.3} ms",
                mean - hash
            );
            signin.insert("argon2id_verify_mean_ms".into(), json!(hash));
            signin.insert("mean_ms".into(), json!(mean));
            signin.insert("beyond_hashing_mean_ms".into(), json!(mean - hash));
        }
    }
    // session check p99 while 4 clients sign in continuously
    let stop_flag = Arc::new(AtomicBool::new(false));
    let mut signers = Vec::new();
    for _ in 0..4 {
        let stop_flag = stop_flag.clone();
        signers.push(tokio::spawn(async move {
            while !stop_flag.load(Ordering::Relaxed) {
                login(addr, "demo@localhost", "demodemo").await;
            }
        }));
    }
    let s = load(
        addr,
        16,
        dur,
        200,
        session_check_maker(one_account.clone()),
        None,
    )
    .await;
    stop_flag.store(true, Ordering::Relaxed);
    for t in signers {
        let _ = t.await;
    }
    s.row("session check, 16 conns, during 4 sign-ins");
    signin.insert("check16_during_signins".into(), s.json());
    signin.insert("check16_quiet_p99_ms".into(), json!(quiet_p99_16));
    report.insert("sign_in".into(), Value::Object(signin));

    // 4. forged-cookie flood
    let flood_stop = Arc::new(AtomicBool::new(false));
    let forged: MakeReq = Arc::new(|c, i| {
        let cookie = format!(
            "webaccountsession=\"{} user{}\"",
            Token::generate().expect("rand").expose(),
            (c + i as usize) % 1000
        );
        api(
            "/account/api/Version",
            &cookie,
            "AAAAAAAAAAAAAAAAAAAAAA",
            b"{\"params\":[]}",
        )
    });
    let rss_before = rss_kib(pid);
    let flood = tokio::spawn(load(
        addr,
        256,
        dur + Duration::from_secs(1),
        429,
        forged,
        Some(flood_stop.clone()),
    ));
    let sampler_stop = flood_stop.clone();
    let sampler = tokio::spawn(async move {
        let (mut rss, mut threads) = (0, 0);
        while !sampler_stop.load(Ordering::Relaxed) {
            rss = rss.max(rss_kib(pid));
            threads = threads.max(proc_status(pid, "Threads:"));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (rss, threads)
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = load(
        addr,
        64,
        dur,
        200,
        session_check_maker(one_account.clone()),
        None,
    )
    .await;
    flood_stop.store(true, Ordering::Relaxed);
    let fl = flood.await.expect("flood");
    let (rss_max, threads_max) = sampler.await.expect("sampler");
    s.row("session check, 64 conns, during forged flood");
    fl.row("  forged flood (256 conns, expect 429)");
    report.insert(
        "bad_token_flood".into(),
        json!({"good64": s.json(), "good64_quiet_p99_ms": quiet_p99_64, "flood": fl.json(),
               "rss_kib_before": rss_before, "rss_kib_max": rss_max, "threads_max": threads_max}),
    );
    println!(
        "  server RSS {rss_before} KiB before flood, max {rss_max} KiB during; threads max {threads_max}"
    );
    stop_server(server);

    // 5. sessions at scale
    sessions_at_scale(o.quick, 100, &bin, o.server_cpu, &mut report).await;
    sessions_at_scale(o.quick, 1, &bin, o.server_cpu, &mut report).await;

    // 6. mail import and export
    mail::run(o.quick, &bin, o.server_cpu, &mut report).await;
    write_report(&o.out, report);
}

/// Section 5, sessions at scale: N accounts × `per` sessions written to a
/// fresh data directory; resident memory per held session (per live
/// account when `per` is 1), cold first use, restart.
async fn sessions_at_scale(
    quick: bool,
    per: usize,
    bin: &Path,
    server_cpu: Option<usize>,
    report: &mut serde_json::Map<String, Value>,
) {
    let scale_accounts = if quick { 1000 } else { 10_000 };
    let dir2 = tempfile::tempdir().expect("tempdir");
    let mut touch = Vec::with_capacity(scale_accounts);
    {
        let stores = Stores::open(&dir2.path().join("data")).expect("open");
        for a in 0..scale_accounts {
            let name = format!("s{a}");
            postern::setup::create_account(
                &stores,
                &name,
                &format!("{name}@localhost"),
                "benchpassword",
                HashCost::minimal(),
                0,
            )
            .expect("acc");
            let now = postern::clock::Clock::now(&postern::clock::SystemClock);
            let mut recs = Vec::with_capacity(per);
            for k in 0..per {
                let (tok, csrf) = (Token::generate().expect("r"), Token::generate().expect("r"));
                let rec = SessionRecord {
                    id: k as u64,
                    kind: postern::protocol::Kind::WebAccount.code(),
                    csrf_hash: csrf.hash().0,
                    login_address: format!("{name}@localhost"),
                    created: now,
                    last_used: now,
                    expires: now + 24 * 3600 * 1000,
                    created_ip: Some("127.0.0.1".parse().expect("ip")),
                    created_agent: "Mozilla/5.0 (X11; Linux x86_64) bench".into(),
                    last_ip: Some("127.0.0.1".parse().expect("ip")),
                    last_agent: "Mozilla/5.0 (X11; Linux x86_64) bench".into(),
                };
                if k == 0 {
                    touch.push(Session {
                        cookie: format!("webaccountsession=\"{} {name}\"", tok.expose()),
                        csrf: csrf.expose(),
                    });
                }
                recs.push((tok.hash(), rec));
            }
            postern::store::sessions::commit(&stores.accounts, &name, &recs, &[]).expect("commit");
        }
    }
    let port2 = free_port();
    let config2 = write_config(dir2.path(), port2, None);
    let (server, start_time) = start_server(bin, &config2, port2, server_cpu).await;
    let pid = server.child.id();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss0 = rss_kib(pid);
    let mut cold = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("h");
    // one keep-alive connection, first use of each account
    let stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("hs");
    tokio::spawn(conn);
    for s in &touch {
        let t0 = Instant::now();
        let r = tx
            .send_request(api(
                "/account/api/Version",
                &s.cookie,
                &s.csrf,
                b"{\"params\":[]}",
            ))
            .await
            .expect("send");
        assert_eq!(r.status(), 200);
        let body = r.into_body().collect().await.expect("body").to_bytes();
        assert!(
            body.starts_with(b"{\"result\""),
            "cold check failed: {}",
            String::from_utf8_lossy(&body)
        );
        let _ = cold.record(t0.elapsed().as_micros().max(1) as u64);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss1 = rss_kib(pid);
    let sessions = (scale_accounts * per) as f64;
    let per_session = (rss1.saturating_sub(rss0) as f64 * 1024.0) / sessions;
    // With one session per account, the figure is what a live account costs.
    let unit = if per == 1 { "account" } else { "session" };
    println!(
        "sessions at scale: {scale_accounts} accounts x {per}: RSS {rss0} -> {rss1} KiB = {per_session:.0} B/{unit}; cold first use p50 {:.3} ms p99 {:.3} ms",
        cold.value_at_quantile(0.5) as f64 / 1000.0,
        cold.value_at_quantile(0.99) as f64 / 1000.0
    );
    let stop_time = stop_server(server);
    let (server, restart) = start_server(bin, &config2, port2, server_cpu).await;
    println!(
        "  start {:.0} ms (fresh), stop {:.0} ms, restart {:.0} ms",
        start_time.as_secs_f64() * 1e3,
        stop_time.as_secs_f64() * 1e3,
        restart.as_secs_f64() * 1e3
    );
    stop_server(server);
    let key = if per == 1 {
        "accounts_at_scale"
    } else {
        "sessions_at_scale"
    };
    report.insert(
        key.into(),
        json!({"accounts": scale_accounts, "sessions_per_account": per, "rss_kib_before": rss0, "rss_kib_after": rss1,
               "bytes_per_session": per_session.round(), "cold_first_use_p50_ms": cold.value_at_quantile(0.5) as f64 / 1000.0,
               "cold_first_use_p99_ms": cold.value_at_quantile(0.99) as f64 / 1000.0,
               "stop_ms": stop_time.as_millis(), "restart_ms": restart.as_millis()}),
    );
}

fn write_report(out: &Path, report: serde_json::Map<String, Value>) {
    if let Some(p) = out.parent() {
        let _ = std::fs::create_dir_all(p);
    }
    std::fs::write(
        out,
        serde_json::to_vec_pretty(&Value::Object(report)).expect("json"),
    )
    .expect("write json");
    println!("figures written to {}", out.display());
}
