//! Accepting connections and serving HTTP/1.1 on them.
//!
//! Owns the accept loop: a semaphore caps concurrent connections per listener
//! (a connection over the cap is accepted and answered `503` with
//! `Retry-After` at once, see `refuse`), each HTTP/1 connection is closed
//! by the listener's [`HeadWatch`] once it has gone the header timeout
//! without a request in flight (slow and idle clients are cut off), header
//! size is bounded, the service is infallible, and shutdown stops accepting
//! and lets in-flight requests finish within a grace period.
//!
//! TLS listeners ([`serve_tls`]) do the handshake in the connection's task,
//! bounded by the header timeout, with the certificate current at that moment
//! (SIGHUP reloads it, see [`super::tls`]), then speak HTTP/2 when ALPN chose
//! `h2` (with bounded streams, header list size, client and server resets
//! (rapid reset), send buffers and keepalive pings: the `H2_*` constants,
//! docs/hardening.md) and
//! HTTP/1.1 otherwise. Plain listeners speak HTTP/1.1 only: hyper_util's
//! auto builder has no timeout while sniffing the preface (hyper#3962).
//!
//! Never: ends the loop on an accept error (one EMFILE would stop the server);
//! lets a service error reach hyper (that would drop the connection unanswered).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use super::drain::{Drain, Watcher};
use super::headwatch::{self, HeadWatch};
use super::response::Body;

/// Connection limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct ServerOpts {
    /// Most concurrent connections.
    pub max_connections: usize,
    /// Time a client has to send a request's headers.
    pub header_timeout: Duration,
    /// Time in-flight requests get to finish at shutdown.
    pub grace: Duration,
}

/// Largest request head (request line and headers) a client may send.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Most concurrent HTTP/2 streams per connection.
pub const H2_MAX_STREAMS: u32 = 100;
/// Largest HTTP/2 header list.
pub const H2_MAX_HEADER_LIST: u32 = 64 * 1024;
/// Interval of HTTP/2 keepalive pings; a connection that does not answer
/// one within [`H2_KEEPALIVE_TIMEOUT`] is closed.
pub const H2_KEEPALIVE: Duration = Duration::from_secs(60);
/// See [`H2_KEEPALIVE`].
pub const H2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Most streams a client may reset before the server accepted them; one
/// more is a GOAWAY `ENHANCE_YOUR_CALM` (rapid reset, CVE-2023-44487).
pub const H2_MAX_PENDING_ACCEPT_RESETS: usize = 20;
/// Most streams the server resets for a client's errors (refused streams
/// over [`H2_MAX_STREAMS`] included) on one connection; one more is a
/// GOAWAY `ENHANCE_YOUR_CALM`.
pub const H2_MAX_LOCAL_ERROR_RESETS: usize = 128;
/// Most bytes buffered for sending per HTTP/2 stream.
pub const H2_MAX_SEND_BUF: usize = 400 * 1024;
/// Most header fields in one request; more is answered 431. This is hyper's
/// own default, which it keeps in a fixed array on the stack. Setting it
/// with `max_headers`, even to the same value, makes hyper fill two
/// 100-entry vectors for every request instead (~1,700 instructions, see
/// docs/performance.md), so the builder leaves it alone and
/// `hostile::oversized_and_too_many_headers_get_431` holds the bound.
pub const MAX_HEADERS: usize = 100;

/// Serves `svc` on `listener` until `shutdown` becomes true.
pub async fn serve<F, Fut>(
    listener: TcpListener,
    opts: ServerOpts,
    shutdown: watch::Receiver<bool>,
    svc: F,
) where
    F: Fn(SocketAddr, Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    serve_inner(listener, opts, None, shutdown, svc).await;
}

/// Serves `svc` over TLS (HTTP/2 or HTTP/1.1 by ALPN) on `listener` until
/// `shutdown` becomes true.
pub async fn serve_tls<F, Fut>(
    listener: TcpListener,
    opts: ServerOpts,
    tls: Arc<super::tls::ReloadableTls>,
    shutdown: watch::Receiver<bool>,
    svc: F,
) where
    F: Fn(SocketAddr, Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    serve_inner(listener, opts, Some(tls), shutdown, svc).await;
}

async fn serve_inner<F, Fut>(
    listener: TcpListener,
    opts: ServerOpts,
    tls: Option<Arc<super::tls::ReloadableTls>>,
    mut shutdown: watch::Receiver<bool>,
    svc: F,
) where
    F: Fn(SocketAddr, Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let drain = Drain::new();
    let heads = HeadWatch::start(opts.header_timeout);
    let permits = Arc::new(Semaphore::new(opts.max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse(stream, tls.is_some(), &refusals);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let svc = svc.clone();
        let Some(tls) = &tls else {
            let conn = serve_http1(TokioIo::new(stream), svc, peer, &heads, drain.watcher());
            drain.spawn(async move {
                conn.await;
                drop(permit);
            });
            continue;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
        let watcher = drain.watcher();
        let heads = heads.clone();
        drain.spawn(async move {
            let stream =
                match tokio::time::timeout(opts.header_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "tls handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            let io = TokioIo::new(stream);
            if h2 {
                let mut b = http2::Builder::new(TokioExecutor::new());
                b.timer(TokioTimer::new())
                    .max_concurrent_streams(H2_MAX_STREAMS)
                    .max_header_list_size(H2_MAX_HEADER_LIST)
                    .max_pending_accept_reset_streams(H2_MAX_PENDING_ACCEPT_RESETS)
                    .max_local_error_reset_streams(H2_MAX_LOCAL_ERROR_RESETS)
                    .max_send_buf_size(H2_MAX_SEND_BUF)
                    .keep_alive_interval(H2_KEEPALIVE)
                    .keep_alive_timeout(H2_KEEPALIVE_TIMEOUT);
                let service = service_fn(move |req| svc(peer, req).map(Ok::<_, Infallible>));
                let _ = watcher.watch(b.serve_connection(io, service)).await;
            } else {
                serve_http1(io, svc, peer, &heads, watcher).await;
            }
            drop(permit);
        });
    }
    drop(listener);
    if !drain.shutdown(opts.grace).await {
        tracing::warn!("connections still open after the shutdown grace period");
    }
}

/// Most over-cap connections being answered at once; beyond it they are
/// closed without an answer.
pub const MAX_REFUSALS: usize = 64;
/// Longest time an over-cap connection is kept to deliver its 503.
pub const REFUSAL_LINGER: Duration = Duration::from_secs(1);
/// The answer to a connection over `max_connections`.
pub const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 26\r\n\r\n503 - service unavailable\n";

/// Answers a connection over the cap: on a plain listener `503` with
/// `Retry-After` and a close (the client's bytes are drained so the close is
/// a FIN, not a reset that could discard the answer), in a task that lives
/// at most [`REFUSAL_LINGER`], at most [`MAX_REFUSALS`] at a time; TLS
/// connections (an answer would need a handshake) and connections beyond
/// that are closed at once.
fn refuse(stream: TcpStream, tls: bool, refusals: &Arc<Semaphore>) {
    let permit = match refusals.clone().try_acquire_owned() {
        Ok(p) if !tls => p,
        _ => {
            crate::telemetry::connection_refused("closed");
            drop(stream);
            return;
        }
    };
    crate::telemetry::connection_refused("503");
    tokio::spawn(async move {
        let answer = async {
            let mut s = stream;
            s.write_all(BUSY_RESPONSE).await?;
            s.shutdown().await?;
            let mut buf = [0u8; 4096];
            while s.read(&mut buf).await? > 0 {}
            Ok::<_, std::io::Error>(())
        };
        let _ = tokio::time::timeout(REFUSAL_LINGER, answer).await;
        drop(permit);
    });
}

/// HTTP/1.1 on one connection, served until the client or the shutdown
/// ends it or the listener's [`HeadWatch`] closes it. The connection is made
/// here, not in an async fn the task awaits: callgrind counted ~370 more
/// instructions per request that way.
fn serve_http1<I, F, Fut>(
    io: I,
    svc: F,
    peer: SocketAddr,
    heads: &HeadWatch,
    watcher: Watcher,
) -> impl Future<Output = ()> + Send + use<I, F, Fut>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    F: Fn(SocketAddr, Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let watched = heads.open();
    let service = http1_service(svc, peer, watched.clone());
    let conn = watcher.watch(http1_builder().serve_connection(io, service));
    async move {
        tokio::select! {
            biased;
            _ = conn => {}
            () = watched.closed() => {}
        }
    }
}

/// The HTTP/1 service of one connection: each request is in flight, for
/// the connection's [`HeadWatch`], until its response body is sent or
/// dropped. A combinator, not an async block around the call: the block
/// would hold a copy of the request's future (kilobytes, copied per request).
fn http1_service<F, Fut>(
    svc: F,
    peer: SocketAddr,
    watched: headwatch::Conn,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<headwatch::Tracked<Body>>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<headwatch::Tracked<Body>>, Infallible>> + Send,
> + Clone
where
    F: Fn(SocketAddr, Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    service_fn(move |req| {
        let busy = watched.begin();
        svc(peer, req).map(move |resp| Ok(resp.map(|b| headwatch::Tracked::new(b, busy))))
    })
}

/// HTTP/1.1 with a bounded head (the head's time bound is [`HeadWatch`]'s).
fn http1_builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        // HeadWatch keeps the bound, at a fraction of hyper's cost.
        .header_read_timeout(None::<Duration>)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_header_size(MAX_HEAD_BYTES);
    builder
}

/// Resolves when shutdown is signalled (or its sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}
