//! The request-head bound of HTTP/1 connections, kept per connection.
//!
//! Owns, per listener, the list of open HTTP/1 connections and one task that
//! every [`TICK`] closes those that have had no request in flight for longer
//! than the header timeout: a client trickling a request head (slowloris),
//! one that never sends a byte, and an idle keep-alive connection alike. A
//! request is in flight from the moment hyper hands its head to the service
//! until its response body has been sent or dropped, so a long download or
//! event stream is never cut, and a slow request body is the body timeout's
//! business.
//!
//! hyper can keep this bound itself, but it arms a timer for every request
//! (a clock read, a boxed sleep, a timer-wheel registration and removal:
//! ~1,300 instructions, a tenth of the cheapest request, see
//! docs/performance.md); here a request costs two atomic updates of its
//! connection's state and an `Arc` clone.
//!
//! A connection is closed between one tick before and one tick after its
//! limit. A request whose head completes in the very tick its connection is
//! closed is dropped unanswered, the race every keep-alive close has; clients
//! retry such requests on a new connection.
//!
//! Never: closes a connection with a request in flight; keeps an ended
//! connection's state past the next tick.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::{Instant, MissedTickBehavior};

/// How often connections are checked.
pub const TICK: Duration = Duration::from_millis(100);

/// The `busy` value of a connection being closed: no request may start.
const CLOSING: u64 = u64::MAX;

/// One listener's connections and their bound.
#[derive(Debug, Clone)]
pub struct HeadWatch(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    /// The clock's zero (tokio's time, so a paused test clock pauses it).
    origin: Instant,
    /// Milliseconds since `origin` at the last tick.
    now_ms: AtomicU64,
    /// How long a connection may go without a request in flight.
    limit_ms: u64,
    conns: Mutex<Vec<Arc<ConnState>>>,
}

/// What the watch knows of one connection.
#[derive(Debug)]
struct ConnState {
    /// Requests in flight, or [`CLOSING`].
    busy: AtomicU64,
    /// When the last request ended (or the connection opened), in
    /// milliseconds since the origin.
    idle_since_ms: AtomicU64,
    /// Woken to close the connection.
    close: Notify,
}

impl HeadWatch {
    /// The watch of one listener, and its task; the task ends once the
    /// watch and every connection's handle to it are dropped.
    pub fn start(limit: Duration) -> HeadWatch {
        let shared = Arc::new(Shared {
            origin: Instant::now(),
            now_ms: AtomicU64::new(0),
            limit_ms: ms(limit),
            conns: Mutex::new(Vec::new()),
        });
        tokio::spawn(tick(Arc::downgrade(&shared)));
        HeadWatch(shared)
    }

    /// Starts watching a new connection: it must begin a request within the
    /// limit.
    pub fn open(&self) -> Conn {
        let state = Arc::new(ConnState {
            busy: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(self.0.now_ms()),
            close: Notify::new(),
        });
        self.0.lock_conns().push(state.clone());
        Conn {
            watch: self.0.clone(),
            state,
        }
    }

    /// Connections watched.
    #[cfg(test)]
    fn watched(&self) -> usize {
        self.0.lock_conns().len()
    }
}

async fn tick(shared: Weak<Shared>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.tick();
    }
}

impl Shared {
    fn lock_conns(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ConnState>>> {
        // The list holds no invariant a panic could break half-way.
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Acquire)
    }

    fn tick(&self) {
        let now = ms(self.origin.elapsed());
        self.now_ms.store(now, Ordering::Release);
        self.lock_conns().retain(|c| {
            // Only the list holds it: the connection and its requests are gone.
            if Arc::strong_count(c) == 1 {
                return false;
            }
            let idle_since = c.idle_since_ms.load(Ordering::Acquire);
            if now.saturating_sub(idle_since) >= self.limit_ms
                && c.busy
                    .compare_exchange(0, CLOSING, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                // A stored permit: the connection's task may not be waiting yet.
                c.close.notify_one();
            }
            true
        });
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2)
}

/// One connection under the watch; its copies (the connection's task, its
/// service) and its requests' [`Busy`] guards keep it watched.
#[derive(Debug, Clone)]
pub struct Conn {
    watch: Arc<Shared>,
    state: Arc<ConnState>,
}

impl Conn {
    /// A request's head has arrived: the connection is busy until the
    /// returned guard is dropped (with the response body).
    pub fn begin(&self) -> Busy {
        // After CLOSING the count is meaningless and the close under way.
        let _ = self
            .state
            .busy
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                (b != CLOSING).then(|| b + 1)
            });
        Busy {
            watch: self.watch.clone(),
            state: self.state.clone(),
        }
    }

    /// Resolves when the watch closes the connection.
    pub async fn closed(&self) {
        self.state.close.notified().await;
    }
}

/// A request in flight; its drop starts the connection's idle time.
#[derive(Debug)]
pub struct Busy {
    watch: Arc<Shared>,
    state: Arc<ConnState>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let s = &self.state;
        s.idle_since_ms
            .store(self.watch.now_ms(), Ordering::Release);
        let _ = s
            .busy
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                (b != CLOSING && b > 0).then(|| b - 1)
            });
    }
}

/// A response body that keeps its request in flight until it is sent or
/// dropped.
#[derive(Debug)]
pub struct Tracked<B> {
    body: B,
    _busy: Busy,
}

impl<B> Tracked<B> {
    /// `body`, keeping `busy` until it is dropped.
    pub fn new(body: B, busy: Busy) -> Tracked<B> {
        Tracked { body, _busy: busy }
    }
}

impl<B> Body for Tracked<B>
where
    B: Body<Data = Bytes, Error = Infallible> + Unpin,
{
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `conn` has been told to close, without waiting.
    async fn closing(conn: &Conn) -> bool {
        tokio::time::timeout(Duration::ZERO, conn.closed())
            .await
            .is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_closed_within_a_tick_of_the_limit() {
        let watch = HeadWatch::start(Duration::from_secs(1));
        tokio::time::sleep(TICK / 2).await;
        let conn = watch.open();
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(!closing(&conn).await, "closed early");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(closing(&conn).await, "still open past the limit and a tick");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_keeps_its_connection_and_restarts_the_idle_time() {
        let watch = HeadWatch::start(Duration::from_secs(1));
        let conn = watch.open();
        let busy = conn.begin();
        // A long download: ten limits long.
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(!closing(&conn).await, "closed with a request in flight");
        // Two at once (HTTP/1 does not, but the count must hold): one ending
        // leaves the connection busy.
        let other = conn.begin();
        drop(other);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!closing(&conn).await);
        drop(busy);
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(
            !closing(&conn).await,
            "idle time counted from before the request ended"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(closing(&conn).await);
        // Closing: a request starting now does not revive the count.
        drop(conn.begin());
        assert_eq!(conn.state.busy.load(Ordering::SeqCst), CLOSING);
    }

    #[tokio::test(start_paused = true)]
    async fn ended_connections_are_forgotten_and_the_task_ends_with_the_watch() {
        let watch = HeadWatch::start(Duration::from_secs(30));
        let conns: Vec<_> = (0..3).map(|_| watch.open()).collect();
        assert_eq!(watch.watched(), 3);
        drop(conns);
        tokio::time::sleep(TICK * 2).await;
        assert_eq!(watch.watched(), 0);
        let shared = Arc::downgrade(&watch.0);
        drop(watch);
        tokio::time::sleep(TICK * 2).await;
        assert!(shared.upgrade().is_none(), "nothing holds the watch");
    }
}
