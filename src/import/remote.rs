//! Import and export through the control socket of a running server: what
//! `postern import` and `postern export` do when the data directory is in use.
//!
//! Owns the two streaming control requests, on both sides. Neither is a
//! second implementation: the server starts the import through
//! [`super::ImportHandle::start`] and relays its [`super::ImportHandle::subscribe`] events,
//! exactly as the HTTP progress stream does, and writes the export with
//! [`local::export_to`] on its own stores.
//!
//! ```text
//!  → {"function":"Import","params":["mjl","/abs/path/mail.zip","prefix/"]}
//!  ← {"event":"step","data":{"Title":"..."},"fraction":0.0}
//!  ← {"event":"count","data":{"Mailbox":"Inbox","Count":6},"fraction":0.4}
//!  ← {"event":"done","data":{},"fraction":1.0}          (or "aborted"; then closed)
//!
//!  → {"function":"Export","params":["mjl","mbox","tgz","Inbox"]}
//!  ← {"result":"stream"}                                 (or an error line; closed)
//!  ← frames: 4-byte big-endian length + that many archive bytes (1..=CHUNK),
//!     a zero length ends them
//!  ← {"result":{"messages":12}}                          (or an error line; closed)
//! ```
//!
//! The server opens the file named in `Import` itself: the socket only
//! accepts its owner's uid, so this reads nothing the caller could not.
//! A request error before the stream starts is one ordinary error line.
//! Bounds: event lines and the trailer are at most [`MAX_LINE`], export
//! frames at most [`CHUNK`] bytes; the client refuses anything larger.
//!
//! Never: buffers a whole archive; logs the request (paths are private).

use std::io::{BufRead as _, BufReader, Read as _, Seek as _, Write};
use std::os::unix::net::UnixStream as StdStream;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{broadcast, mpsc};

use super::archive;
use super::local;
use super::progress::Event;
use crate::app::Services;
use crate::control::{ControlRequest, MAX_LINE, socket_path};
use crate::mail::export::ExportSpec;
use crate::protocol::sherpa::{ApiError, Code};
use crate::token::Token;

/// Largest export frame, in bytes.
pub const CHUNK: usize = crate::mail::export::CHUNK;
/// Longest skip prefix, as for the HTTP upload.
pub const MAX_PREFIX: usize = 1024;

/// The request, if it is one of the streaming ones this module serves.
pub fn streaming(line: &[u8]) -> Option<ControlRequest> {
    let req: ControlRequest = serde_json::from_slice(line).ok()?;
    matches!(req.function.as_str(), "Import" | "Export").then_some(req)
}

fn param(req: &ControlRequest, i: usize) -> Result<String, ApiError> {
    match req.params.get(i) {
        Some(Value::String(s)) => Ok(s.clone()),
        None if i >= 2 => Ok(String::new()),
        _ => Err(ApiError::new(
            Code::BadRequest,
            format!("{}: parameter {i} must be a string", req.function),
        )),
    }
}

async fn line(w: &mut OwnedWriteHalf, v: &[u8]) -> std::io::Result<()> {
    w.write_all(v).await?;
    w.write_all(b"\n").await
}

/// Serves a streaming request; the connection ends afterwards.
pub async fn serve(
    services: &Arc<Services>,
    req: ControlRequest,
    w: &mut OwnedWriteHalf,
) -> std::io::Result<()> {
    let res = if req.function == "Import" {
        import(services, &req, w).await
    } else {
        export(services, &req, w).await
    };
    match res {
        Ok(()) => Ok(()),
        Err(Failure::Api(e)) => line(w, &e.to_json()).await,
        Err(Failure::Io(e)) => Err(e),
    }
}

enum Failure {
    Api(ApiError),
    Io(std::io::Error),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Api(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Io(e)
    }
}

fn local_error(e: local::LocalError) -> ApiError {
    match e {
        local::LocalError::Store(_) | local::LocalError::Export(_) => {
            tracing::error!(error = %e, "control export");
            ApiError::server()
        }
        e => ApiError::user(e.to_string()),
    }
}

async fn check_account(services: &Services, account: &str) -> Result<(), ApiError> {
    let db = services.auth.stores.accounts.clone();
    let a = account.to_string();
    match crate::store::blocking(move || crate::store::accounts::get(&db, &a)).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ApiError::user(format!("no account {account:?}"))),
        Err(_) => Err(ApiError::server()),
    }
}

/// One event line; `fraction` is how far the importer has read the file.
fn event_line(e: &Event, fraction: f64) -> Vec<u8> {
    let (name, data) = match e {
        Event::Count { mailbox, count } => ("count", json!({ "Mailbox": mailbox, "Count": count })),
        Event::Problem { message } | Event::Numbered { message, .. } => {
            ("problem", json!({ "Message": message }))
        }
        Event::Step { title } => ("step", json!({ "Title": title })),
        Event::Done => ("done", json!({})),
        Event::Aborted => ("aborted", json!({})),
    };
    serde_json::to_vec(&json!({ "event": name, "data": data, "fraction": fraction }))
        .unwrap_or_default()
}

async fn import(
    services: &Services,
    req: &ControlRequest,
    w: &mut OwnedWriteHalf,
) -> Result<(), Failure> {
    let account = param(req, 0)?;
    let path = param(req, 1)?;
    let prefix = param(req, 2)?;
    if prefix.len() > MAX_PREFIX {
        return Err(ApiError::user("skip prefix too long").into());
    }
    check_account(services, &account).await?;
    let opened = tokio::task::spawn_blocking(move || {
        let mut f = local::open(Path::new(&path))?;
        let mut head = [0u8; 4];
        let mut n = 0;
        let read_err = |source| local::LocalError::Read {
            path: path.clone(),
            source,
        };
        while n < head.len() {
            let r = f.read(&mut head[n..]).map_err(read_err)?;
            if r == 0 {
                break;
            }
            n += r;
        }
        f.rewind().map_err(read_err)?;
        let kind = archive::detect(&head[..n]).ok_or(local::LocalError::NotArchive)?;
        let total = f.metadata().map_err(read_err)?.len().max(1);
        let pos = f.try_clone().map_err(read_err)?;
        Ok::<_, local::LocalError>((f, kind, pos, total))
    })
    .await
    .map_err(|_| ApiError::server())?;
    let (file, kind, pos, total) = opened.map_err(local_error)?;
    let mail = &services.mail;
    let token: Token = mail
        .start(&account, file, kind, prefix)
        .await
        .map_err(|e| e.to_api())?;
    let hash = token.hash();
    let (replay, mut rx) = mail.subscribe(hash, 0).await.map_err(|e| e.to_api())?;
    let fraction = || {
        let at = (&pos).stream_position().unwrap_or(total);
        (at as f64 / total as f64).clamp(0.0, 1.0)
    };
    let mut queue: std::collections::VecDeque<Event> = replay.into();
    let mut next_problem = 0u64;
    loop {
        while let Some(e) = queue.pop_front() {
            if let Event::Numbered { seq, .. } = &e {
                if *seq < next_problem {
                    continue;
                }
                next_problem = seq + 1;
            }
            let f = if e.is_end() { 1.0 } else { fraction() };
            line(w, &event_line(&e, f)).await?;
            if e.is_end() {
                return Ok(());
            }
        }
        tokio::select! {
            _ = mail.shutdown.cancelled() => {
                return Err(ApiError::user("server shutting down").into());
            }
            r = rx.recv() => match r {
                Ok(e) => queue.push_back(e),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let (replay, new_rx) =
                        mail.subscribe(hash, next_problem).await.map_err(|e| e.to_api())?;
                    rx = new_rx;
                    queue = replay.into();
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(ApiError::server().into());
                }
            },
        }
    }
}

/// The export spec the command line's options mean.
pub fn export_spec(format: &str, archive: &str, mailbox: &str) -> Result<ExportSpec, String> {
    let recursive = if archive == "none" { "" } else { "on" };
    let fields: Vec<(String, String)> = [
        ("format", format),
        ("archive", archive),
        ("mailbox", mailbox),
        ("recursive", recursive),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    ExportSpec::from_form(&fields)
}

async fn export(
    services: &Services,
    req: &ControlRequest,
    w: &mut OwnedWriteHalf,
) -> Result<(), Failure> {
    let account = param(req, 0)?;
    let spec =
        export_spec(&param(req, 1)?, &param(req, 2)?, &param(req, 3)?).map_err(ApiError::user)?;
    check_account(services, &account).await?;
    let stores = services.auth.stores.clone();
    let (a, s) = (account.clone(), spec.clone());
    let checked =
        tokio::task::spawn_blocking(move || crate::mail::export::check(&stores.mail, &a, &s))
            .await
            .map_err(|_| ApiError::server())?;
    match checked {
        Ok(()) => {}
        Err(crate::mail::export::ExportError::NoMailbox) => {
            return Err(ApiError::user("no such mailbox").into());
        }
        Err(e) => {
            tracing::error!(error = %e, "control export");
            return Err(ApiError::server().into());
        }
    }
    line(w, br#"{"result":"stream"}"#).await?;
    let (tx, mut rx) = mpsc::channel::<Bytes>(4);
    let stores = services.auth.stores.clone();
    let writer = tokio::task::spawn_blocking(move || {
        let mut fw = crate::mail::export::ChannelWriter::new(tx);
        let n = local::export_to(&stores, &account, &spec, &mut fw)?;
        fw.flush().map_err(crate::mail::export::ExportError::Io)?;
        Ok::<u64, local::LocalError>(n)
    });
    while let Some(chunk) = rx.recv().await {
        let len = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
        w.write_all(&len.to_be_bytes()).await?;
        w.write_all(&chunk).await?;
    }
    w.write_all(&0u32.to_be_bytes()).await?;
    let trailer = match writer.await {
        Ok(Ok(n)) => {
            serde_json::to_vec(&json!({ "result": { "messages": n } })).unwrap_or_default()
        }
        Ok(Err(e)) => local_error(e).to_json(),
        Err(_) => ApiError::server().to_json(),
    };
    line(w, &trailer).await?;
    Ok(())
}

// ---- client side (blocking: the commands run on the blocking pool) ----

fn connect(data_dir: &Path, req: &ControlRequest) -> anyhow::Result<BufReader<StdStream>> {
    let path = socket_path(data_dir);
    let mut s = StdStream::connect(&path).with_context(|| {
        format!(
            "the database is in use but the control socket {} does not answer",
            path.display()
        )
    })?;
    let mut l = serde_json::to_vec(req)?;
    l.push(b'\n');
    s.write_all(&l)?;
    Ok(BufReader::new(s))
}

fn read_line(r: &mut BufReader<StdStream>) -> anyhow::Result<Value> {
    let mut buf = Vec::new();
    let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 1;
    let n = (&mut *r).take(limit).read_until(b'\n', &mut buf)?;
    anyhow::ensure!(n > 0, "the server closed the connection early");
    anyhow::ensure!(buf.len() <= MAX_LINE, "answer line too long");
    let v: Value = serde_json::from_slice(&buf).context("reading the server's answer")?;
    if let Some(e) = v.get("error") {
        let msg = e.get("message").and_then(Value::as_str).unwrap_or("error");
        let code = e.get("code").and_then(Value::as_str).unwrap_or("");
        if code == Code::UserError.as_str() {
            anyhow::bail!("{msg}");
        }
        anyhow::bail!("{msg} ({code})");
    }
    Ok(v)
}

/// Client: imports `file` (an absolute path) through the running server,
/// drawing the same progress bar and lines as a local import on stderr.
pub fn import_via(data_dir: &Path, account: &str, file: &Path, prefix: &str) -> anyhow::Result<()> {
    let req = ControlRequest {
        function: "Import".into(),
        params: vec![
            account.into(),
            file.display().to_string().into(),
            prefix.into(),
        ],
    };
    let mut r = connect(data_dir, &req)?;
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    let mut last: Option<std::time::Instant> = None;
    let mut fraction = 0.0;
    loop {
        let v = read_line(&mut r)?;
        let data = &v["data"];
        fraction = v["fraction"].as_f64().unwrap_or(fraction);
        let text = |k: &str| data[k].as_str().unwrap_or("").to_string();
        match v["event"].as_str().unwrap_or("") {
            "count" => {
                counts.insert(text("Mailbox"), data["Count"].as_u64().unwrap_or(0));
                let now = std::time::Instant::now();
                if last.is_none_or(|t| now.duration_since(t).as_millis() >= 100) {
                    last = Some(now);
                    eprint!("\r{}", local::bar(fraction, counts.values().sum()));
                }
            }
            "problem" => eprintln!("\rproblem: {}", text("Message")),
            "step" => eprintln!("\r{}", text("Title")),
            "done" => {
                eprintln!("\r{}", local::bar(1.0, counts.values().sum()));
                for (m, c) in &counts {
                    eprintln!("{m}: {c}");
                }
                return Ok(());
            }
            "aborted" => return Err(local::LocalError::Aborted.into()),
            other => anyhow::bail!("unexpected answer from the server: {other:?}"),
        }
    }
}

/// Client: writes an export from the running server to `out`; returns the
/// number of messages.
pub fn export_via(
    data_dir: &Path,
    account: &str,
    format: &str,
    archive: &str,
    mailbox: &str,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let req = ControlRequest {
        function: "Export".into(),
        params: vec![
            account.into(),
            format.into(),
            archive.into(),
            mailbox.into(),
        ],
    };
    let mut r = connect(data_dir, &req)?;
    let head = read_line(&mut r)?;
    anyhow::ensure!(
        head["result"] == "stream",
        "unexpected answer from the server"
    );
    let mut buf = vec![0u8; CHUNK];
    loop {
        let mut len = [0u8; 4];
        r.read_exact(&mut len)
            .context("export stream ended early")?;
        let n = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
        if n == 0 {
            break;
        }
        anyhow::ensure!(n <= CHUNK, "export frame too large");
        r.read_exact(&mut buf[..n])
            .context("export stream ended early")?;
        out.write_all(&buf[..n])?;
    }
    let trailer = read_line(&mut r)?;
    Ok(trailer["result"]["messages"].as_u64().unwrap_or(0))
}
