//! The local control socket of a running server.
//!
//! Owns the Unix socket `control.sock` in the data directory and its small
//! protocol, on both sides: the server ([`bind`], [`serve`]) and the client
//! the command line uses while a server runs ([`request`]); redb locks the
//! database file, so the command line cannot open it then.
//!
//! Protocol: line-delimited JSON, one request and one answer per line, any
//! number of requests per connection.
//!
//! ```text
//!  → {"function":"AccountAdd","params":["mjl","mjl@example.org"]}
//!  ← {"result":null}
//!  → {"function":"Account","params":["nobody"]}
//!  ← {"error":{"code":"user:error","message":"unknown account"}}
//! ```
//!
//! The functions are the admin API's ([`crate::api::admin::run`] with
//! [`Caller::Control`], which adds `AdminSetPassword`), answered in the sherpa
//! envelope; except `Import` and `Export`, which stream their answer and end
//! the connection ([`crate::import::remote`]).
//!
//! Access: the socket is created with mode 0600 at server start (a stale file
//! from a crashed server is replaced: the server holds the database lock, so
//! no other server uses this directory) and removed at shutdown. A connecting
//! process must also run as the socket's owner (checked with `SO_PEERCRED`).
//! Bounds: lines of at most [`MAX_LINE`] bytes, [`MAX_CONNECTIONS`]
//! concurrent connections, [`IDLE`] without a request closes a connection.
//!
//! Never: listens on a network address; accepts a connection from another
//! user; logs request lines (they may carry passwords).

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::api::admin::{Caller, run_with};
use crate::app::Services;
use crate::protocol::sherpa::{self, ApiError, Code, Params};

/// File name of the socket in the data directory.
pub const SOCKET_NAME: &str = "control.sock";
/// Longest request or answer line, in bytes.
pub const MAX_LINE: usize = 1024 * 1024;
/// Most concurrent connections.
pub const MAX_CONNECTIONS: usize = 16;
/// A connection without a request for this long is closed.
pub const IDLE: Duration = Duration::from_secs(60);

/// The socket's path for a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// One request line.
#[derive(Debug, Serialize, Deserialize)]
pub struct ControlRequest {
    /// Admin function name.
    pub function: String,
    /// Its parameters.
    #[serde(default)]
    pub params: Vec<Value>,
}

/// Creates the socket (mode 0600), replacing a stale one. Call only while
/// holding the database (so no other server owns the directory).
pub fn bind(data_dir: &Path) -> std::io::Result<(UnixListener, PathBuf)> {
    let path = socket_path(data_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => tracing::info!("removed stale control socket"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok((listener, path))
}

/// Serves the socket until `shutdown` becomes true, then removes the file.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    services: Arc<Services>,
    mut shutdown: watch::Receiver<bool>,
) {
    let owner = std::fs::metadata(&path).map(|m| m.uid()).ok();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            r = listener.accept() => {
                let stream = match r {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "control socket accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let peer = stream.peer_cred().ok().map(|c| c.uid());
                if owner.is_none() || peer != owner {
                    tracing::warn!(?peer, "control socket: connection from another user refused");
                    continue;
                }
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    tracing::warn!("control socket: too many connections");
                    continue;
                };
                let (services, sd) = (services.clone(), shutdown.clone());
                conns.spawn(async move {
                    let _permit = permit;
                    if let Err(e) = connection(stream, services, sd).await {
                        tracing::debug!(error = %e, "control connection ended");
                    }
                });
            }
        }
    }
    conns.shutdown().await;
    drop(listener);
    let _ = std::fs::remove_file(&path);
}

async fn connection(
    stream: UnixStream,
    services: Arc<Services>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    loop {
        let mut line = Vec::new();
        let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 1;
        let mut limited = (&mut r).take(limit);
        let read = limited.read_until(b'\n', &mut line);
        let n = tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            r = tokio::time::timeout(IDLE, read) => match r {
                Ok(r) => r?,
                Err(_) => return Ok(()),
            },
        };
        if n == 0 {
            return Ok(());
        }
        let too_long = line.len() > MAX_LINE;
        let answer = if too_long {
            ApiError::user(format!("request line longer than {MAX_LINE} bytes")).to_json()
        } else if let Some(req) = crate::import::remote::streaming(&line) {
            // Import and Export stream their answer; the connection ends after.
            return crate::import::remote::serve(&services, req, &mut w).await;
        } else {
            answer(&services, &line).await
        };
        w.write_all(&answer).await?;
        w.write_all(b"\n").await?;
        if too_long {
            return Ok(());
        }
    }
}

async fn answer(services: &Services, line: &[u8]) -> Vec<u8> {
    let req: ControlRequest = match serde_json::from_slice(line) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::new(Code::BadRequest, format!("bad request line: {e}")).to_json();
        }
    };
    match run_with(
        &services.auth,
        Some(&services.mail),
        Caller::Control,
        &req.function,
        Params::from_values(req.params),
    )
    .await
    {
        Ok(v) => sherpa::result_body(&v).unwrap_or_else(|e| e.to_json()),
        Err(e) => e.to_json(),
    }
}

/// An answer from the server.
#[derive(Debug, Deserialize)]
struct Answer {
    result: Option<Value>,
    error: Option<AnswerError>,
}

#[derive(Debug, Deserialize)]
struct AnswerError {
    code: String,
    message: String,
}

/// Client: sends one request to the server running on `data_dir` and
/// returns its result; an error answer becomes an error with its message.
pub async fn request(data_dir: &Path, function: &str, params: Vec<Value>) -> anyhow::Result<Value> {
    let path = socket_path(data_dir);
    let stream = UnixStream::connect(&path).await.with_context(|| {
        format!(
            "the database is in use but the control socket {} does not answer",
            path.display()
        )
    })?;
    let (r, mut w) = stream.into_split();
    let mut line = serde_json::to_vec(&ControlRequest {
        function: function.to_string(),
        params,
    })?;
    line.push(b'\n');
    w.write_all(&line).await?;
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 1;
    (&mut r).take(limit).read_until(b'\n', &mut buf).await?;
    let a: Answer = serde_json::from_slice(&buf).context("reading the server's answer")?;
    if let Some(e) = a.error {
        if e.code == Code::UserError.as_str() {
            anyhow::bail!("{}", e.message);
        }
        anyhow::bail!("{} ({})", e.message, e.code);
    }
    Ok(a.result.unwrap_or(Value::Null))
}
