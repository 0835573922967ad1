//! Sign-in attempts: recorded in batches, listed newest first.
//!
//! Owns the writer of the `login_attempts` table: one actor
//! ([`AttemptWriter`]) that buffers attempts in memory and commits them in
//! one transaction per second (and at shutdown), pruning each touched
//! account to its [`Retention`] in the same transaction. Login, which an
//! attacker can call as often as the rate limiter lets them, therefore costs
//! a `cast` into a bounded buffer, never a disk write of its own.
//!
//! ```text
//!  Login ──cast Record──▶ AttemptWriter { buffer ≤ MAX_BUFFER } ──every 1 s──▶ login_attempts
//!  LoginAttempts() ──call List──▶ (flush buffer, then read newest first)
//! ```
//!
//! Durability: an attempt is durable within a second; a crash loses at most
//! the last second's attempts. When the buffer is full (more than
//! [`MAX_BUFFER`] attempts within one second) further attempts are dropped
//! and counted in the `postern_login_attempts_dropped_total` metric.
//!
//! Never: writes one transaction per attempt; stores a password; blocks
//! Login on the disk.

use std::sync::Arc;
use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use redb::Database;

use crate::clock::{Clock, UnixMillis};
use crate::protocol::Kind;
use crate::sessions::Client;
use crate::store::attempts::NewAttempt;
pub use crate::store::attempts::{Retention, StoredAttempt};
use crate::store::codec::{AttemptResult, LoginAttemptRecord};
use crate::store::{self, StoreError};

/// Most attempts buffered between two commits.
pub const MAX_BUFFER: usize = 10_000;
/// Most attempts one listing returns.
pub const MAX_LIST: usize = 10_000;
/// How long a listing may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Metric: attempts dropped because the buffer was full.
pub const DROPPED_METRIC: &str = "postern_login_attempts_dropped_total";

/// Messages of the writer.
#[derive(Debug)]
pub enum AttemptMsg {
    /// Buffer one attempt.
    Record(NewAttempt),
    /// Write the buffer, then list an account's attempts newest first.
    List {
        /// Account; empty for the admin.
        account: String,
        /// Most entries.
        limit: usize,
        /// The answer.
        reply: RpcReplyPort<Result<Vec<StoredAttempt>, StoreError>>,
    },
    /// Write the buffer now.
    Flush {
        /// Done.
        reply: RpcReplyPort<Result<(), StoreError>>,
    },
    /// Timer: write the buffer.
    Tick,
}

/// The writer actor.
pub struct AttemptWriter;

/// Its arguments.
pub struct AttemptArgs {
    /// `accounts.redb`.
    pub db: Arc<Database>,
    /// Wall clock.
    pub clock: Arc<dyn Clock>,
    /// Bounds.
    pub retention: Retention,
    /// Commit period.
    pub tick: Duration,
}

/// Its state.
pub struct AttemptState {
    args: AttemptArgs,
    buffer: Vec<NewAttempt>,
    seq: u32,
    timer: Option<JoinHandle<()>>,
}

async fn flush(st: &mut AttemptState) -> Result<(), StoreError> {
    if st.buffer.is_empty() {
        return Ok(());
    }
    let batch = std::mem::take(&mut st.buffer);
    let (db, now, keep) = (st.args.db.clone(), st.args.clock.now(), st.args.retention);
    store::blocking(move || store::attempts::append(&db, &batch, now, keep)).await
}

impl Actor for AttemptWriter {
    type Msg = AttemptMsg;
    type State = AttemptState;
    type Arguments = AttemptArgs;

    async fn pre_start(
        &self,
        _: ActorRef<AttemptMsg>,
        args: AttemptArgs,
    ) -> Result<AttemptState, ActorProcessingErr> {
        Ok(AttemptState {
            args,
            buffer: Vec::new(),
            seq: 0,
            timer: None,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<AttemptMsg>,
        st: &mut AttemptState,
    ) -> Result<(), ActorProcessingErr> {
        st.timer = Some(myself.send_interval(st.args.tick, || AttemptMsg::Tick));
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<AttemptMsg>,
        st: &mut AttemptState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(t) = st.timer.take() {
            t.abort();
        }
        // Best effort; shutdown flushes explicitly first.
        let _ = flush(st).await;
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<AttemptMsg>,
        msg: AttemptMsg,
        st: &mut AttemptState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AttemptMsg::Record(mut a) => {
                if st.buffer.len() >= MAX_BUFFER {
                    metrics::counter!(DROPPED_METRIC).increment(1);
                    return Ok(());
                }
                st.seq = st.seq.wrapping_add(1);
                a.seq = st.seq;
                st.buffer.push(a);
            }
            AttemptMsg::List {
                account,
                limit,
                reply,
            } => {
                if let Err(e) = flush(st).await {
                    let msg = e.to_string();
                    let _ = reply.send(Err(e));
                    return Err(msg.into());
                }
                let db = st.args.db.clone();
                let limit = limit.min(MAX_LIST);
                let res =
                    store::blocking(move || store::attempts::list(&db, &account, limit)).await;
                let _ = reply.send(res);
            }
            AttemptMsg::Flush { reply } => {
                let res = flush(st).await;
                let failed = res.as_ref().err().map(|e| e.to_string());
                let _ = reply.send(res);
                if let Some(m) = failed {
                    return Err(m.into());
                }
            }
            AttemptMsg::Tick => flush(st).await?,
        }
        Ok(())
    }
}

/// The typed client of the writer.
#[derive(Clone)]
pub struct LoginAttemptsHandle {
    actor: ActorRef<AttemptMsg>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for LoginAttemptsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginAttemptsHandle")
            .field("actor", &self.actor.get_id())
            .finish()
    }
}

/// One attempt as Login reports it.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    /// Account name; empty for the admin.
    pub account: &'a str,
    /// Interface signed in to.
    pub kind: Kind,
    /// Login address given (empty for the admin).
    pub login_address: &'a str,
    /// Client (IP and bounded user agent).
    pub client: Client,
    /// Outcome.
    pub result: AttemptResult,
}

impl LoginAttemptsHandle {
    /// Starts the writer, committing every `tick` (one second in production).
    pub async fn start(
        db: Arc<Database>,
        clock: Arc<dyn Clock>,
        retention: Retention,
        tick: Duration,
    ) -> Result<LoginAttemptsHandle, ractor::SpawnErr> {
        let args = AttemptArgs {
            db,
            clock: clock.clone(),
            retention,
            tick,
        };
        let (actor, _) = Actor::spawn(None, AttemptWriter, args).await?;
        Ok(LoginAttemptsHandle { actor, clock })
    }

    /// Records an attempt (fire and forget; durable within one tick).
    pub fn record(&self, a: Attempt<'_>) {
        let now: UnixMillis = self.clock.now();
        let rec = NewAttempt {
            account: a.account.to_string(),
            time: now,
            seq: 0,
            record: LoginAttemptRecord {
                kind: a.kind.code(),
                login_address: a.login_address.to_string(),
                ip: a.client.ip,
                agent: a.client.agent,
                result: a.result,
            },
        };
        if self.actor.cast(AttemptMsg::Record(rec)).is_err() {
            tracing::warn!("login attempt writer unavailable; attempt not recorded");
        }
    }

    /// Up to `limit` (at most [`MAX_LIST`]) attempts of `account` (empty: the
    /// admin), newest first, including those not yet committed.
    pub async fn list(
        &self,
        account: &str,
        limit: usize,
    ) -> Result<Vec<StoredAttempt>, StoreError> {
        let account = account.to_string();
        match self
            .actor
            .call(
                |reply| AttemptMsg::List {
                    account,
                    limit,
                    reply,
                },
                Some(CALL_TIMEOUT),
            )
            .await
        {
            Ok(CallResult::Success(r)) => r,
            Ok(CallResult::Timeout) => Err(StoreError::Busy("login attempts".into())),
            _ => Err(StoreError::Busy("login attempt writer stopped".into())),
        }
    }

    /// Writes the buffer, then stops the writer (shutdown).
    pub async fn shutdown(&self) -> Result<(), StoreError> {
        let res = match self
            .actor
            .call(|reply| AttemptMsg::Flush { reply }, Some(CALL_TIMEOUT))
            .await
        {
            Ok(CallResult::Success(r)) => r,
            _ => Err(StoreError::Busy("login attempt writer".into())),
        };
        let _ = self.actor.stop_and_wait(None, Some(CALL_TIMEOUT)).await;
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::Stores;

    fn attempt(account: &str, result: AttemptResult) -> Attempt<'_> {
        Attempt {
            account,
            kind: Kind::WebAccount,
            login_address: "a@x",
            client: Client::new("192.0.2.1".parse().ok(), "agent"),
            result,
        }
    }

    #[tokio::test]
    async fn attempts_are_buffered_then_written_in_one_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stores = Stores::open(dir.path()).expect("open");
        let clock = ManualClock::starting_now();
        // a tick that never comes during the test: only List/shutdown write
        let h = LoginAttemptsHandle::start(
            stores.accounts.clone(),
            Arc::new(clock.clone()),
            Retention::default(),
            Duration::from_secs(3600),
        )
        .await
        .expect("start");
        for _ in 0..5 {
            h.record(attempt("a", AttemptResult::BadPassword));
        }
        h.record(attempt("", AttemptResult::Ok));
        // nothing on disk yet: recording does not write
        let db = stores.accounts.clone();
        let on_disk = tokio::task::spawn_blocking(move || {
            store::attempts::list(&db, "a", 100).expect("list").len()
        })
        .await
        .expect("join");
        assert_eq!(on_disk, 0);
        // a listing writes the buffer first and sees everything
        let l = h.list("a", 100).await.expect("list");
        assert_eq!(l.len(), 5);
        assert!(
            l.iter()
                .all(|a| a.record.result == AttemptResult::BadPassword)
        );
        assert_eq!(h.list("", 100).await.expect("admin").len(), 1);
        assert_eq!(h.list("a", 2).await.expect("limit").len(), 2);
        // shutdown writes what is left
        h.record(attempt("b", AttemptResult::Disabled));
        h.shutdown().await.expect("shutdown");
        let db = stores.accounts.clone();
        let b = tokio::task::spawn_blocking(move || store::attempts::list(&db, "b", 10))
            .await
            .expect("join")
            .expect("list");
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].record.agent, "agent");
        assert_eq!(b[0].time, clock.now());
    }
}
