//! Graceful shutdown of a listener's connections.
//!
//! Owns the signal that tells every open connection to finish its request
//! in flight and close, and the count of connection tasks still running.
//! hyper_util's `GracefulShutdown` does the same by polling a watch
//! channel's `changed()` future on every poll of every connection; here a
//! connection's task registers with a [`Notify`] on its first poll and
//! afterwards reads one atomic flag (160-280 fewer instructions per request,
//! docs/performance.md).
//!
//! Never: ends a request in flight (hyper's `graceful_shutdown` lets it
//! finish), or lets a connection miss the signal (the `Notified` exists
//! before the flag is first read, see [`Drain::watch`]).

use std::future::{Future, poll_fn};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hyper_util::server::graceful::GracefulConnection;
use tokio::sync::Notify;
use tokio_util::task::TaskTracker;

/// One listener's connections and the shutdown signal they watch.
#[derive(Debug, Default)]
pub struct Drain {
    signal: Arc<Signal>,
    tasks: TaskTracker,
}

/// Watches one connection for the shutdown signal.
#[derive(Debug)]
pub struct Watcher(Arc<Signal>);

#[derive(Debug, Default)]
struct Signal {
    started: AtomicBool,
    notify: Arc<Notify>,
}

impl Drain {
    /// An empty set of connections.
    pub fn new() -> Drain {
        Drain::default()
    }

    /// Runs `task` (a connection, with whatever precedes it, such as a TLS
    /// handshake) as a tracked task: [`Self::shutdown`] waits for it.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task);
    }

    /// Serves `conn` until it ends; see [`Watcher::watch`].
    pub fn watch<C: GracefulConnection>(
        &self,
        conn: C,
    ) -> impl Future<Output = C::Output> + use<C> {
        self.watcher().watch(conn)
    }

    /// A handle to watch a connection made later (after a TLS handshake).
    pub fn watcher(&self) -> Watcher {
        Watcher(self.signal.clone())
    }

    /// Signals every connection, then waits until all tracked tasks ended
    /// or `grace` passed; `false` if some were still running.
    pub async fn shutdown(self, grace: std::time::Duration) -> bool {
        self.signal.started.store(true, Ordering::Release);
        self.signal.notify.notify_waiters();
        self.tasks.close();
        tokio::time::timeout(grace, self.tasks.wait()).await.is_ok()
    }
}

impl Watcher {
    /// Serves `conn` until it ends; once shutdown starts, asks it to finish
    /// its request in flight and close.
    pub fn watch<C: GracefulConnection>(self, conn: C) -> impl Future<Output = C::Output> {
        let signal = self.0;
        // Made now: a `notify_waiters` from here on completes it, even
        // before its first poll; one before is seen through the flag, which
        // is set before notifying.
        let notified = signal.notify.clone().notified_owned();
        async move {
            let mut conn = std::pin::pin!(conn);
            let mut notified = std::pin::pin!(notified);
            let mut registered = false;
            let mut closing = false;
            poll_fn(|cx| {
                // The first poll registers this task's waker (a task's waker
                // never changes); later polls read the flag only.
                let first = !std::mem::replace(&mut registered, true);
                if !closing
                    && (first && notified.as_mut().poll(cx).is_ready()
                        || signal.started.load(Ordering::Acquire))
                {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                conn.as_mut().poll(cx)
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hyper::{Request, Response};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::{Semaphore, watch};

    use crate::http::response::{self, Body};
    use crate::http::server::{ServerOpts, serve};

    /// Reads until the peer closes; what was read.
    async fn read_to_close(s: &mut TcpStream) -> String {
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
        assert!(
            read.is_ok(),
            "connection still open: {:?}",
            String::from_utf8_lossy(&out)
        );
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Reads one whole answer (its head says `Content-Length`).
    async fn read_answer(s: &mut TcpStream) -> String {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.trim().parse::<usize>())
                    })
                    .and_then(Result::ok)
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    return text;
                }
            }
            let n = s.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed before a whole answer: {text:?}");
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// At shutdown an idle keep-alive connection is closed, a request in
    /// flight is answered and then its connection closed, no new connection
    /// is served, and `serve` returns once the last connection ended (long
    /// before the grace period).
    #[tokio::test]
    async fn shutdown_finishes_requests_in_flight_and_closes_idle_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = watch::channel(false);
        let release = std::sync::Arc::new(Semaphore::new(0));
        let entered = std::sync::Arc::new(Semaphore::new(0));
        let (rel, ent) = (release.clone(), entered.clone());
        let opts = ServerOpts {
            max_connections: 16,
            header_timeout: Duration::from_secs(30),
            grace: Duration::from_secs(60),
        };
        let server = tokio::spawn(serve(
            listener,
            opts,
            stopped,
            move |_, req: Request<hyper::body::Incoming>| {
                let (rel, ent) = (rel.clone(), ent.clone());
                async move {
                    if req.uri().path() == "/slow" {
                        ent.add_permits(1);
                        rel.acquire().await.expect("open").forget();
                    }
                    let r: Response<Body> = response::text(hyper::StatusCode::OK, req.uri().path());
                    r
                }
            },
        ));

        let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes();
        let mut idle = TcpStream::connect(addr).await.expect("connect");
        idle.write_all(&get("/idle")).await.expect("write");
        assert!(read_answer(&mut idle).await.contains("/idle"));
        let mut busy = TcpStream::connect(addr).await.expect("connect");
        busy.write_all(&get("/slow")).await.expect("write");
        entered.acquire().await.expect("open").forget();

        let _ = stop.send(true);
        // The idle connection is closed without an answer.
        assert_eq!(read_to_close(&mut idle).await, "");
        // The listener is gone: nothing new is served.
        let refused = match TcpStream::connect(addr).await {
            Err(_) => true,
            Ok(mut s) => {
                let _ = s.write_all(&get("/late")).await;
                read_to_close(&mut s).await.is_empty()
            }
        };
        assert!(refused, "a connection after shutdown was served");
        assert!(
            !server.is_finished(),
            "serve returned with a request in flight"
        );
        // The request in flight gets its answer, then the connection closes.
        release.add_permits(1);
        let answer = read_to_close(&mut busy).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("/slow"), "{answer}");
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("serve returned within the test's bound, not the 60 s grace")
            .expect("serve task");
    }
}
