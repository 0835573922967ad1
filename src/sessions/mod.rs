//! Persisted sessions of the webaccount and webmail interfaces.
//!
//! Owns one actor per account ([`actor::AccountSessionActor`]), spawned on
//! first use through the [`directory::Directory`] and supervised by
//! [`SessionSupervisor`], and the typed client the HTTP layer uses,
//! [`SessionsHandle`]: every call has a timeout, a call that finds a stopped
//! actor respawns it once, and every outcome maps to a [`SessionError`] or a
//! protocol [`Failure`].
//!
//! ```text
//!  check ──▶ SessionsHandle ──(hit: DashMap read)──▶ published View (ArcSwap) ──▶ answer
//!                │                                       ▲ new view before each change is answered
//!                │ use changes what is kept: cast Touch  │
//!                └──────────────────────────────▶ AccountSessionActor(account)
//!  miss: load account + sessions (blocking pool, outside any actor),
//!        spawn_linked under SessionSupervisor (only for existing accounts)
//! ```
//!
//! A check sends no message: it reads the view the actor published. It casts
//! a `Touch` only when the use changes what is kept (see
//! [`state::Policy::touch_every`]). Every change (sign-in, logout, revocation,
//! password change, account edit or removal) goes through the actor, which
//! publishes the new view before it answers, so a change is visible to every
//! check that starts after it was answered.
//!
//! Never: hands a token in clear to an actor (only hashes travel); lets an
//! unknown account name create an actor or a directory entry.

pub mod actor;
pub mod directory;
pub mod messages;
pub mod state;

use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use redb::Database;

use self::actor::{AccountSessionActor, AccountSessionArgs};
use self::directory::{Directory, Live};
use self::messages::SessionMsg;
use self::state::AccountSessions;
pub use self::state::{Client, Listed, Policy, Used};
use crate::clock::Clock;
use crate::protocol::Kind;
use crate::protocol::check::Failure;
use crate::store::accounts::{AccountEdit, EditError};
use crate::store::codec::AccountRecord;
use crate::store::{self, StoreError};
use crate::token::{RandomError, Token, TokenHash};

/// How long a call to a session actor may take before the request gives up.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A session operation failed for a reason that is not the client's.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The account does not exist.
    #[error("unknown account")]
    UnknownAccount,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The OS random source failed.
    #[error("random source failed")]
    Random,
    /// The actor did not answer in time.
    #[error("session store busy")]
    Busy,
    /// The actor could not be reached or spawned.
    #[error("session store unavailable")]
    Unavailable,
}

impl From<RandomError> for SessionError {
    fn from(_: RandomError) -> Self {
        SessionError::Random
    }
}

/// A new session's tokens, to hand to the client.
#[derive(Debug)]
pub struct NewSession {
    /// The session token (goes in the cookie).
    pub token: Token,
    /// The CSRF token (returned by Login).
    pub csrf: Token,
}

/// A session added while its sign-in's password is still being verified
/// (docs/architecture.md, "Early session write"). Its token has not been handed
/// to anyone. [`EarlySession::finish`] after the password verified makes it
/// an ordinary session; dropping it instead (wrong password, disabled
/// account, or the request given up) removes it in the background.
pub struct EarlySession {
    sessions: SessionsHandle,
    account: String,
    state: EarlyState,
}

enum EarlyState {
    Adding(tokio::task::JoinHandle<Result<Option<NewSession>, SessionError>>),
    Added(NewSession),
    Done,
}

/// How an early session's sign-in ends.
#[derive(Debug)]
pub enum Early {
    /// The session is held and durable: hand out its tokens.
    Added(NewSession),
    /// It could not be added early (the account is full of live sessions,
    /// or the add failed): add it the ordinary way.
    NotAdded,
    /// It was removed while the password was verified (password change,
    /// "sign out everywhere", account removed): the sign-in must not
    /// succeed on what was true before.
    Gone,
}

impl EarlySession {
    /// Waits for the add to finish, keeping the outcome in `self` (so a
    /// drop at any point still removes what was added).
    async fn settle(&mut self) {
        if let EarlyState::Adding(add) = &mut self.state {
            let added = add.await;
            self.state = match added {
                Ok(Ok(Some(new))) => EarlyState::Added(new),
                Ok(Ok(None) | Err(_)) | Err(_) => EarlyState::Done,
            };
        }
    }

    /// Called once the password verified. Cancel-safe: dropped midway, the
    /// session is removed.
    pub async fn finish(mut self) -> Result<Early, SessionError> {
        self.settle().await;
        let EarlyState::Added(new) = &self.state else {
            return Ok(Early::NotAdded);
        };
        let token = new.token.hash();
        let held = self
            .sessions
            .call(&self.account, |reply| SessionMsg::EndEarly { token, reply })
            .await?;
        Ok(match std::mem::replace(&mut self.state, EarlyState::Done) {
            EarlyState::Added(new) if held => Early::Added(new),
            _ => Early::Gone,
        })
    }

    /// Removes the session: the sign-in failed. Durable when this returns
    /// (if the removal fails, dropping tries once more in the background).
    pub async fn discard(mut self) {
        self.settle().await;
        let EarlyState::Added(new) = &self.state else {
            return;
        };
        match self.sessions.remove(&self.account, &new.token).await {
            Ok(_) => self.state = EarlyState::Done,
            Err(e) => {
                tracing::warn!(error = %e, "removing an early session after a failed sign-in")
            }
        }
    }
}

impl Drop for EarlySession {
    fn drop(&mut self) {
        let state = std::mem::replace(&mut self.state, EarlyState::Done);
        if matches!(state, EarlyState::Done) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return; // runtime gone: the session stays, unheld, until it expires
        };
        let (sessions, account) = (self.sessions.clone(), std::mem::take(&mut self.account));
        rt.spawn(async move {
            let new = match state {
                EarlyState::Adding(add) => match add.await {
                    Ok(Ok(Some(new))) => new,
                    _ => return,
                },
                EarlyState::Added(new) => new,
                EarlyState::Done => return,
            };
            if let Err(e) = sessions.remove(&account, &new.token).await {
                tracing::warn!(error = %e, "removing an early session after a failed sign-in");
            }
        });
    }
}

/// Tunables of the session actors.
#[derive(Debug, Clone, Copy)]
pub struct ActorTiming {
    /// How often pending extensions are written.
    pub tick: Duration,
    /// An actor stops after this long without messages.
    pub idle_stop: Duration,
}

impl Default for ActorTiming {
    /// Flush every minute; stop after 15 idle minutes.
    fn default() -> Self {
        ActorTiming {
            tick: Duration::from_secs(60),
            idle_stop: Duration::from_secs(15 * 60),
        }
    }
}

/// The root of the session actors: unlists failed actors. An actor that stops
/// because it is idle is normal and unlists itself.
pub struct SessionSupervisor;

impl Actor for SessionSupervisor {
    type Msg = ();
    type State = Arc<Directory>;
    type Arguments = Arc<Directory>;

    async fn pre_start(
        &self,
        _: ActorRef<()>,
        d: Arc<Directory>,
    ) -> Result<Arc<Directory>, ActorProcessingErr> {
        Ok(d)
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<()>,
        evt: SupervisionEvent,
        directory: &mut Arc<Directory>,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            // A clean stop ran the actor's post_stop, which unlisted it by
            // name: nothing to do (a scan here made stopping n actors cost
            // n², 3.7 s for 10,000 at shutdown).
            SupervisionEvent::ActorTerminated(..) => {}
            // A failed actor may not have; find it by id (rare, a scan).
            SupervisionEvent::ActorFailed(cell, err) => {
                directory.unlist_id(cell.get_id());
                metrics::counter!(crate::telemetry::SESSION_ACTOR_FAILURES).increment(1);
                tracing::error!(actor = %cell.get_id(), %err, "session actor failed; next use reloads it");
            }
            _ => {}
        }
        Ok(())
    }
}

struct Inner {
    directory: Arc<Directory>,
    supervisor: ActorRef<()>,
    db: Arc<Database>,
    clock: Arc<dyn Clock>,
    policy: Policy,
    timing: ActorTiming,
    /// The periodic flusher (aborted at shutdown).
    flusher: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The typed client of the account session actors.
#[derive(Clone)]
pub struct SessionsHandle(Arc<Inner>);

impl std::fmt::Debug for SessionsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionsHandle")
            .field("directory", &self.0.directory)
            .finish()
    }
}

impl SessionsHandle {
    /// Starts the supervisor; account actors start on first use.
    pub async fn start(
        db: Arc<Database>,
        clock: Arc<dyn Clock>,
        policy: Policy,
        timing: ActorTiming,
    ) -> Result<SessionsHandle, ractor::SpawnErr> {
        let directory = Arc::new(Directory::default());
        let (supervisor, _) = Actor::spawn(None, SessionSupervisor, directory.clone()).await?;
        let h = SessionsHandle(Arc::new(Inner {
            directory,
            supervisor,
            db,
            clock,
            policy,
            timing,
            flusher: std::sync::Mutex::new(None),
        }));
        // Every tick, the extensions of all active accounts are written in
        // one transaction (one commit, not one per account), then every live
        // actor gets its `Tick` (expiry sweep, idle stop): one timer for all
        // accounts instead of a timer task each (docs/sessions-memory.md).
        // The task holds a weak reference, so it never keeps the stores open.
        let weak = Arc::downgrade(&h.0);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(timing.tick);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let h = SessionsHandle(inner);
                if let Err(e) = h.flush_all().await {
                    tracing::error!(error = %e, "writing session extensions failed; retried next tick");
                }
                for a in h.0.directory.actors() {
                    let _ = a.cast(SessionMsg::Tick);
                }
            }
        });
        if let Ok(mut f) = h.0.flusher.lock() {
            *f = Some(task);
        }
        Ok(h)
    }

    /// The actor of an account, spawning it (after loading its sessions) if
    /// needed. `UnknownAccount` leaves no trace.
    async fn actor(&self, account: &str) -> Result<ActorRef<SessionMsg>, SessionError> {
        if let Some(a) = self.0.directory.get(account) {
            return Ok(a);
        }
        self.spawn(account).await.map(|l| l.actor)
    }

    /// Loads an account's sessions and spawns its actor, once however many
    /// requests ask at the same time.
    async fn spawn(&self, account: &str) -> Result<Live, SessionError> {
        let slot = self.0.directory.slot(account);
        let res = slot
            .get_or_try_init(|| async {
                let (db, name) = (self.0.db.clone(), account.to_string());
                let loaded = store::blocking(move || store::sessions::load(&db, &name)).await?;
                let Some((rec, stored)) = loaded else {
                    return Err(SessionError::UnknownAccount);
                };
                let sessions = AccountSessions::new(rec, stored, self.0.policy);
                let view = sessions.published();
                let args = AccountSessionArgs {
                    name: Arc::from(account),
                    sessions,
                    db: self.0.db.clone(),
                    clock: self.0.clock.clone(),
                    directory: self.0.directory.clone(),
                    idle_stop: self.0.timing.idle_stop,
                };
                let (a, _) = Actor::spawn_linked(
                    None,
                    AccountSessionActor,
                    args,
                    self.0.supervisor.get_cell(),
                )
                .await
                .map_err(|_| SessionError::Unavailable)?;
                Ok(Live { actor: a, view })
            })
            .await
            .cloned();
        if res.is_err() {
            self.0.directory.forget_empty(account);
        }
        res
    }

    /// Sends a call to an account's actor; if the actor stopped meanwhile (idle
    /// stop), unlists it and tries once more with a fresh one.
    async fn call<T: Send + 'static>(
        &self,
        account: &str,
        msg: impl Fn(RpcReplyPort<T>) -> SessionMsg,
    ) -> Result<T, SessionError> {
        for _ in 0..2 {
            let a = self.actor(account).await?;
            match a.call(&msg, Some(CALL_TIMEOUT)).await {
                Ok(CallResult::Success(v)) => return Ok(v),
                Ok(CallResult::Timeout) => return Err(SessionError::Busy),
                Ok(CallResult::SenderError) | Err(_) => {
                    self.0.directory.unlist(account, a.get_id())
                }
            }
        }
        Err(SessionError::Unavailable)
    }

    /// Checks a session on the account's published view (no message, no
    /// disk) and, when the use changes what is kept, records it with a
    /// `Touch` to the actor. An unknown account is an unknown session, so
    /// cookies cannot probe which accounts exist.
    pub async fn use_session(
        &self,
        kind: Kind,
        account: &str,
        token: &Token,
        csrf: Option<Option<Token>>,
        ip: Option<std::net::IpAddr>,
        agent: &str,
    ) -> Result<Result<Used, Failure>, SessionError> {
        let (token, csrf) = (token.hash(), csrf.map(|c| c.map(|t| t.hash())));
        let agent = state::cut_agent(agent);
        let now = self.0.clock.now();
        let check = |live: &Live| {
            let view = live.view.load();
            let c = view.check(kind, &token, csrf, now)?;
            if view.needs_touch(&c, ip, agent, now) {
                // A stopped actor loses the touch; the next check after the
                // reload sends it again.
                let client = Client::new(ip, agent);
                let _ = live.actor.cast(SessionMsg::Touch { token, client });
            }
            Ok(c.used)
        };
        if let Some(r) = self.0.directory.with_live(account, check) {
            return Ok(r);
        }
        // Boxed: the cold load's state is large and every check's future
        // would carry it (and copy it with each move) unboxed.
        match Box::pin(self.spawn(account)).await {
            Ok(live) => Ok(check(&live)),
            Err(SessionError::UnknownAccount) => Ok(Err(Failure::UnknownSession)),
            Err(e) => Err(e),
        }
    }

    /// The account's record, `None` if there is no such account.
    pub async fn account(&self, account: &str) -> Result<Option<AccountRecord>, SessionError> {
        match self
            .call(account, |reply| SessionMsg::Account { reply })
            .await
        {
            Ok(r) => Ok(Some(r)),
            Err(SessionError::UnknownAccount) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a session, durable when this returns.
    pub async fn add(
        &self,
        account: &str,
        kind: Kind,
        login_address: &str,
        client: Client,
    ) -> Result<NewSession, SessionError> {
        // Only an early add may be refused.
        self.add_session(account, kind, login_address, client, false)
            .await?
            .ok_or(SessionError::Unavailable)
    }

    /// Adds a session, early or not; `None` if an early add was refused.
    async fn add_session(
        &self,
        account: &str,
        kind: Kind,
        login_address: &str,
        client: Client,
        early: bool,
    ) -> Result<Option<NewSession>, SessionError> {
        let new = NewSession {
            token: Token::generate()?,
            csrf: Token::generate()?,
        };
        let (token, csrf) = (new.token.hash(), new.csrf.hash());
        let added = self
            .call(account, |reply| SessionMsg::Add {
                token,
                csrf,
                kind,
                login_address: login_address.to_string(),
                client: client.clone(),
                early,
                reply,
            })
            .await??;
        Ok(added.then_some(new))
    }

    /// Starts adding a session for a sign-in whose password is still being
    /// verified, so the durable write overlaps the hashing. See
    /// [`EarlySession`].
    pub fn add_early(
        &self,
        account: &str,
        kind: Kind,
        login_address: &str,
        client: Client,
    ) -> EarlySession {
        let (handle, name, address) =
            (self.clone(), account.to_string(), login_address.to_string());
        let add = tokio::spawn(async move {
            handle
                .add_session(&name, kind, &address, client, true)
                .await
        });
        EarlySession {
            sessions: self.clone(),
            account: account.to_string(),
            state: EarlyState::Adding(add),
        }
    }

    /// Removes a session (logout), durable when this returns. Whether it existed.
    pub async fn remove(&self, account: &str, token: &Token) -> Result<bool, SessionError> {
        let token = token.hash();
        self.call(account, |reply| SessionMsg::Remove { token, reply })
            .await?
    }

    /// Sets the password hash and removes every other session of the account
    /// (all of them when `keep` is `None`), in one durable transaction.
    pub async fn set_password(
        &self,
        account: &str,
        phc: String,
        keep: Option<TokenHash>,
    ) -> Result<(), SessionError> {
        self.call(account, |reply| SessionMsg::SetPassword {
            phc: phc.clone(),
            keep,
            reply,
        })
        .await?
    }

    /// Changes an account's record through its actor, durable when this
    /// returns. `Err(UnknownAccount)` if there is no such account.
    pub async fn edit(&self, account: &str, edit: AccountEdit) -> Result<AccountRecord, EditError> {
        match self
            .call(account, |reply| SessionMsg::Edit {
                edit: edit.clone(),
                reply,
            })
            .await
        {
            Ok(r) => r,
            Err(SessionError::UnknownAccount) => Err(EditError::UnknownAccount),
            Err(SessionError::Store(e)) => Err(EditError::Store(e)),
            Err(e) => Err(EditError::Store(StoreError::Busy(e.to_string()))),
        }
    }

    /// An account's live sessions, oldest first, with the caller's own
    /// marked; created IP and agent are read from the stored records.
    pub async fn list(
        &self,
        account: &str,
        current: Option<TokenHash>,
    ) -> Result<Vec<Listed>, SessionError> {
        let held = self
            .call(account, |reply| SessionMsg::List { current, reply })
            .await?;
        let hashes: Vec<TokenHash> = held.iter().map(|(h, _)| *h).collect();
        let (db, name) = (self.0.db.clone(), account.to_string());
        let created =
            store::blocking(move || store::sessions::created_info(&db, &name, &hashes)).await?;
        Ok(held
            .into_iter()
            .zip(created)
            .map(|((_, mut l), c)| {
                if let Some((ip, agent)) = c {
                    l.created_ip = ip;
                    l.created_agent = agent;
                }
                l
            })
            .collect())
    }

    /// Removes the session with opaque id `id` of this account; whether it
    /// existed. An id of another account's session is simply not found.
    pub async fn revoke_id(&self, account: &str, id: u64) -> Result<bool, SessionError> {
        self.call(account, |reply| SessionMsg::RevokeId { id, reply })
            .await?
    }

    /// Removes every session of the account but `keep`; the number removed.
    pub async fn revoke_all(
        &self,
        account: &str,
        keep: Option<TokenHash>,
    ) -> Result<usize, SessionError> {
        self.call(account, |reply| SessionMsg::RevokeAll { keep, reply })
            .await?
    }

    /// Removes the account, its addresses, sessions and login attempts from
    /// `accounts.redb` in one transaction, through its actor (which stops).
    /// Whether it existed.
    pub async fn remove_account(&self, account: &str) -> Result<bool, SessionError> {
        match self
            .call(account, |reply| SessionMsg::RemoveAccount { reply })
            .await
        {
            Ok(r) => r,
            Err(SessionError::UnknownAccount) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes the pending extensions of every live account in one durable
    /// transaction (periodically, and at shutdown). On failure the sessions
    /// are marked dirty again in their actors.
    pub async fn flush_all(&self) -> Result<(), SessionError> {
        let actors = self.0.directory.actors();
        let calls = actors
            .iter()
            .map(|a| a.call(|reply| SessionMsg::TakeDirty { reply }, Some(CALL_TIMEOUT)));
        let mut taken = Vec::new();
        for (a, r) in actors
            .iter()
            .zip(futures_util::future::join_all(calls).await)
        {
            // A stopped actor wrote its own extensions before stopping.
            if let Ok(CallResult::Success((name, ext))) = r {
                if !ext.is_empty() {
                    taken.push((a.clone(), name, ext));
                }
            }
        }
        if taken.is_empty() {
            return Ok(());
        }
        let db = self.0.db.clone();
        let batches: Vec<(Arc<str>, Vec<store::sessions::Extension>)> = taken
            .iter()
            .map(|(_, n, e)| (n.clone(), e.clone()))
            .collect();
        let res = store::blocking(move || {
            let refs: Vec<(&str, &[store::sessions::Extension])> =
                batches.iter().map(|(n, e)| (&**n, e.as_slice())).collect();
            store::sessions::flush_many(&db, &refs)
        })
        .await;
        if let Err(e) = res {
            for (a, _, ext) in taken {
                let hashes = ext.iter().map(|e| e.hash).collect();
                let _ = a.cast(SessionMsg::Redirty { hashes });
            }
            return Err(SessionError::Store(e));
        }
        Ok(())
    }

    /// Number of live account actors.
    pub fn live_actors(&self) -> usize {
        self.0.directory.len()
    }

    /// Stops every actor after flushing, then the supervisor.
    pub async fn shutdown(&self) -> Result<(), SessionError> {
        if let Some(t) = self.0.flusher.lock().ok().and_then(|mut f| f.take()) {
            t.abort();
        }
        let res = self.flush_all().await;
        // All at once: one after the other, 10,000 actors took seconds.
        let actors = self.0.directory.actors();
        futures_util::future::join_all(
            actors
                .iter()
                .map(|a| a.stop_and_wait(Some("shutdown".into()), Some(CALL_TIMEOUT))),
        )
        .await;
        let _ = self
            .0
            .supervisor
            .stop_and_wait(None, Some(CALL_TIMEOUT))
            .await;
        res
    }

    /// The supervisor's cell, for linking.
    pub fn supervisor(&self) -> ActorCell {
        self.0.supervisor.get_cell()
    }
}

#[cfg(test)]
#[path = "early_tests.rs"]
mod early_tests;
