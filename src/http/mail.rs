//! HTTP translation of the mail routes of the account interface.
//!
//! | path (under the prefix) | method | auth | answer |
//! |---|---|---|---|
//! | `import` | POST | session + csrf header | `{"Token"}`, or a sherpa `user:error` with HTTP 400 |
//! | `importprogress?token=T` | GET | none (the token is unguessable) | `text/event-stream` |
//! | `export` | POST | session + form field `csrf` | the archive, streamed; 400 text for a bad form |
//! | `export/mail-export-{maildir,mbox}.{tgz,zip}` | POST | session + form field `csrf` | the whole account |
//!
//! The upload is streamed to an anonymous temporary file in the data
//! directory (never held in memory) and bounded (the form's field walk and
//! its bounds are [`super::upload`]); downloads and progress
//! streams are fed through a bounded channel ([`ChannelBody`]), so a slow
//! client slows only its own producer. The export form is read (at most
//! [`MAX_FORM`] bytes) before the session check, because the CSRF value is in
//! it.
//!
//! Never: decides what an archive means ([`crate::import`]) or what an export
//! holds ([`crate::mail::export`]).

use std::collections::VecDeque;
use std::io::{Read as _, Seek as _, SeekFrom, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};
use tokio::sync::{broadcast, mpsc};

use super::response::{self, Body};
use super::upload::{self, UploadError, UploadLimits};
use crate::app::Services;
use crate::auth::{Authed, Refused};
use crate::import::ImportHandle;
use crate::import::archive;
use crate::import::progress::Event;
use crate::mail::export::{self, Archive, ExportError, ExportSpec, Format};
use crate::protocol::check::Csrf;
use crate::protocol::sherpa::ApiError;
use crate::protocol::{Interface, RequestView};
use crate::token::Token;

/// Largest export form body.
pub const MAX_FORM: usize = 64 * 1024;
/// Keepalive comment interval of progress streams.
pub const KEEPALIVE: Duration = Duration::from_secs(10);

/// Whether `sub` (the path under the prefix) is a mail route.
pub fn is_mail_path(sub: &str) -> bool {
    matches!(sub, "import" | "importprogress" | "export") || fixed_export(sub).is_some()
}

fn fixed_export(sub: &str) -> Option<ExportSpec> {
    let (format, archive) = match sub {
        "export/mail-export-maildir.tgz" => (Format::Maildir, Archive::Tgz),
        "export/mail-export-maildir.zip" => (Format::Maildir, Archive::Zip),
        "export/mail-export-mbox.tgz" => (Format::Mbox, Archive::Tgz),
        "export/mail-export-mbox.zip" => (Format::Mbox, Archive::Zip),
        _ => return None,
    };
    Some(ExportSpec::all(format, archive))
}

/// A body fed by a bounded channel: the producer waits when the client is slow.
pub struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

fn bad_request(msg: &str) -> Response<Body> {
    response::text(
        StatusCode::BAD_REQUEST,
        &format!("400 - bad request - {msg}"),
    )
}

fn user_error(msg: impl Into<String>) -> Response<Body> {
    api_error_400(&ApiError::user(msg))
}

fn api_error_400(e: &ApiError) -> Response<Body> {
    let status = if e.code == crate::protocol::sherpa::Code::ServerError {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::BAD_REQUEST
    };
    response::json(status, e.to_json())
}

fn refused(r: Refused) -> Response<Body> {
    match r {
        Refused::Failure(f) => response::text(
            StatusCode::FORBIDDEN,
            &format!("403 - forbidden - {}", f.message()),
        ),
        Refused::RateLimited(d) => response::too_many(d),
        Refused::Internal => response::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "500 - internal server error",
        ),
    }
}

/// Answers a mail route.
#[expect(
    clippy::too_many_arguments,
    reason = "the pieces of one request, borrowed"
)]
pub async fn handle(
    services: &Services,
    iface: &Interface,
    view: &RequestView<'_>,
    agent: &str,
    method: &Method,
    headers: &HeaderMap,
    sub: &str,
    query: Option<&str>,
    body: Incoming,
) -> Response<Body> {
    let want = if sub == "importprogress" {
        Method::GET
    } else {
        Method::POST
    };
    if *method != want {
        let w = if want == Method::GET { "get" } else { "post" };
        return response::text(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("405 - method not allowed - use {w}"),
        );
    }
    match sub {
        "importprogress" => progress(&services.mail, query).await,
        "import" => match services
            .auth
            .check_in(iface, view, Csrf::Header, agent)
            .await
        {
            Ok(a) => import(&services.mail, &a, headers, body).await,
            Err(r) => refused(r),
        },
        _ => export_route(services, iface, view, agent, headers, sub, body).await,
    }
}

/// Decodes `application/x-www-form-urlencoded` (also query strings).
pub fn parse_form(b: &[u8]) -> Vec<(String, String)> {
    fn dec(s: &[u8]) -> String {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => {
                    let h = std::str::from_utf8(&s[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    match h {
                        Some(v) => {
                            out.push(v);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    b.split(|&c| c == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&c| c == b'=') {
            Some(i) => (dec(&p[..i]), dec(&p[i + 1..])),
            None => (dec(p), String::new()),
        })
        .collect()
}

async fn import(
    mail: &ImportHandle,
    authed: &Authed,
    headers: &HeaderMap,
    body: Incoming,
) -> Response<Body> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if multer::parse_boundary(ct).is_err() {
        return user_error(UploadError::NotMultipart.to_string());
    }
    let limits = UploadLimits::new(mail.limits.import_upload_bytes);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.whole()) {
        return user_error(UploadError::TooLarge(limits.file).to_string());
    }
    let dir = mail.tmp_dir.clone();
    let file = match tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        tempfile::tempfile_in(&dir)
    })
    .await
    {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "creating upload file");
            return api_error_400(&ApiError::server());
        }
        Err(_) => return api_error_400(&ApiError::server()),
    };
    let Ok(clone) = file.try_clone() else {
        return api_error_400(&ApiError::server());
    };
    let mut sink = tokio::fs::File::from_std(clone);
    let stream = http_body_util::BodyDataStream::new(body);
    let prefix = match upload::read_form(ct, stream, &limits, &mut sink).await {
        Ok(up) => up.prefix,
        Err(e) if e.is_server() => {
            tracing::error!(error = %e, "writing upload file");
            return api_error_400(&ApiError::server());
        }
        Err(e) => return user_error(e.to_string()),
    };
    drop(sink);
    let detected = tokio::task::spawn_blocking(move || {
        let mut f = file;
        f.seek(SeekFrom::Start(0))?;
        let mut head = [0u8; 4];
        let mut n = 0;
        while n < head.len() {
            let r = f.read(&mut head[n..])?;
            if r == 0 {
                break;
            }
            n += r;
        }
        f.seek(SeekFrom::Start(0))?;
        Ok::<_, std::io::Error>((archive::detect(&head[..n]), f))
    })
    .await;
    let (kind, file) = match detected {
        Ok(Ok((Some(k), f))) => (k, f),
        Ok(Ok((None, _))) => return user_error("file is not a zip or gzip file"),
        _ => return api_error_400(&ApiError::server()),
    };
    match mail.start(&authed.account, file, kind, prefix).await {
        Ok(token) => {
            let body = serde_json::json!({ "Token": token.expose() }).to_string();
            response::json(StatusCode::OK, body.into_bytes())
        }
        Err(e) => api_error_400(&e.to_api()),
    }
}

fn frame(s: impl Into<Bytes>) -> Bytes {
    s.into()
}

async fn progress(mail: &ImportHandle, query: Option<&str>) -> Response<Body> {
    let q = parse_form(query.unwrap_or("").as_bytes());
    let token = q
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    if token.is_empty() {
        return bad_request("missing token");
    }
    let unknown = || bad_request("unknown token, import may have finished more than a minute ago");
    let Some(hash) = Token::parse(token).map(|t| t.hash()) else {
        return unknown();
    };
    let (replay, rx) = match mail.subscribe(hash, 0).await {
        Ok(s) => s,
        Err(crate::import::ImportError::Unknown) => return unknown(),
        Err(_) => {
            return response::text(StatusCode::SERVICE_UNAVAILABLE, "503 - service unavailable");
        }
    };
    let (tx, brx) = mpsc::channel::<Bytes>(16);
    let mail = mail.clone();
    tokio::spawn(async move {
        let mut queue: VecDeque<Event> = replay.into();
        let mut rx = rx;
        let mut next_problem = 0u64;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        if tx.send(frame(": keepalive\n\n")).await.is_err() {
            return;
        }
        loop {
            while let Some(e) = queue.pop_front() {
                if let Event::Numbered { seq, .. } = &e {
                    if *seq < next_problem {
                        continue;
                    }
                    next_problem = seq + 1;
                }
                let end = e.is_end();
                if tx.send(frame(e.sse())).await.is_err() || end {
                    return;
                }
            }
            tokio::select! {
                _ = mail.shutdown.cancelled() => return,
                _ = tx.closed() => return,
                _ = tick.tick() => {
                    if tx.send(frame(": keepalive\n\n")).await.is_err() {
                        return;
                    }
                }
                r = rx.recv() => match r {
                    Ok(e) => queue.push_back(e),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Fell behind: start over from the current state.
                        match mail.subscribe(hash, next_problem).await {
                            Ok((replay, new_rx)) => {
                                rx = new_rx;
                                queue = replay.into();
                            }
                            Err(_) => return,
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    let mut r = Response::new(ChannelBody { rx: brx }.boxed());
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// `attachment` with an ASCII fallback name and the exact UTF-8 name.
fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut enc = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
            enc.push(char::from(b));
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{enc}")
}

async fn export_route(
    services: &Services,
    iface: &Interface,
    view: &RequestView<'_>,
    agent: &str,
    headers: &HeaderMap,
    sub: &str,
    body: Incoming,
) -> Response<Body> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_FORM as u64) {
        return bad_request("form too large");
    }
    let body = match http_body_util::Limited::new(body, MAX_FORM).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => return bad_request("form too large or unreadable"),
    };
    let fields = parse_form(&body);
    let csrf = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    let authed = match services
        .auth
        .check_in(iface, view, Csrf::Form(csrf), agent)
        .await
    {
        Ok(a) => a,
        Err(r) => return refused(r),
    };
    let spec = match fixed_export(sub) {
        Some(s) => s,
        None => match ExportSpec::from_form(&fields) {
            Ok(s) => s,
            Err(m) => return bad_request(&m),
        },
    };
    let mail = &services.mail;
    let db = mail.db.clone();
    let account = authed.account.clone();
    let spec2 = spec.clone();
    match tokio::task::spawn_blocking(move || export::check(&db, &account, &spec2)).await {
        Ok(Ok(())) => {}
        Ok(Err(ExportError::NoMailbox)) => return bad_request("no such mailbox"),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "export");
            return response::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 - internal server error",
            );
        }
        Err(_) => {
            return response::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 - internal server error",
            );
        }
    }
    let name = spec.file_name(&authed.account, mail.clock.now().div_euclid(1000));
    let content_type = spec.archive.content_type();
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let db = mail.db.clone();
    let account = authed.account.clone();
    tokio::task::spawn_blocking(move || {
        let mut w = export::ChannelWriter::new(tx);
        match export::write(&db, &account, &spec, &mut w).and_then(|n| {
            w.flush()?;
            Ok(n)
        }) {
            Ok(n) => tracing::debug!(messages = n, "export written"),
            Err(ExportError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                tracing::debug!("export client went away");
            }
            // The status line is gone already; the client sees a truncated body.
            Err(e) => tracing::error!(error = %e, "export failed midway"),
        }
    });
    let mut r = Response::new(ChannelBody { rx }.boxed());
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let f = parse_form(b"csrf=a%2Bb&mailbox=Sent+Items&x&bad=%zz&end=%4");
        assert_eq!(f[0], ("csrf".into(), "a+b".into()));
        assert_eq!(f[1], ("mailbox".into(), "Sent Items".into()));
        assert_eq!(f[2], ("x".into(), String::new()));
        assert_eq!(f[3], ("bad".into(), "%zz".into()));
        assert_eq!(f[4], ("end".into(), "%4".into()));
        assert!(is_mail_path("export/mail-export-mbox.zip"));
        assert!(!is_mail_path("export/other"));
        assert_eq!(
            content_disposition("mailexport-dé.zip"),
            "attachment; filename=\"mailexport-d_.zip\"; filename*=UTF-8''mailexport-d%C3%A9.zip"
        );
    }
}
