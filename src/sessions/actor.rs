//! The actor that owns one account's sessions.
//!
//! Owns, for one account: the in-memory [`AccountSessions`], the account's
//! rows in the `sessions` table, and the account's password change. Checks
//! read the view it publishes (see [`super::state`]); it records uses
//! (`Touch`) in memory, writes new sessions, logouts and password changes
//! durably and publishes the new view before answering, hands lifetime
//! extensions to the handle's flusher, and stops itself after a while without
//! messages (after writing everything).
//!
//! Never: writes to disk on `Touch`; holds a redb transaction across `.await`
//! (every write is one `spawn_blocking` call); returns `Err` from `handle` for a
//! domain failure (only a failed commit, after which redb refuses writes until
//! reopened, fails the actor).

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use redb::Database;
use tokio::time::Instant;

use super::SessionError;
use super::directory::Directory;
use super::messages::SessionMsg;
use super::state::AccountSessions;
use crate::clock::Clock;
use crate::store::accounts::EditError;
use crate::store::{self, StoreError};
use crate::token::random_id;

/// The behaviour of an account's session actor.
pub struct AccountSessionActor;

/// What the actor starts with (loaded before spawning, so a spawn never waits
/// on the disk).
pub struct AccountSessionArgs {
    /// The account's name.
    pub name: Arc<str>,
    /// The loaded state.
    pub sessions: AccountSessions,
    /// `accounts.redb`.
    pub db: Arc<Database>,
    /// Wall clock.
    pub clock: Arc<dyn Clock>,
    /// The directory that points at this actor, to unlist itself on stop.
    pub directory: Arc<Directory>,
    /// Stop after this long without messages (checked on each `Tick`,
    /// which the handle's ticker sends to every live actor).
    pub idle_stop: Duration,
}

/// The actor's state.
pub struct AccountSessionState {
    args: AccountSessionArgs,
    last_activity: Instant,
    /// Sessions counted in the `postern_sessions` gauge: (webaccount, webmail).
    reported: (u64, u64),
}

/// Brings the `postern_sessions{kind}` gauge in line with the state.
fn report_sessions(state: &mut AccountSessionState) {
    let mut now = (0u64, 0u64);
    for (_, s) in state.args.sessions.iter() {
        if s.kind == crate::protocol::Kind::WebMail {
            now.1 += 1;
        } else {
            now.0 += 1;
        }
    }
    if now != state.reported {
        crate::telemetry::sessions_delta(
            crate::protocol::Kind::WebAccount,
            state.reported.0,
            now.0,
        );
        crate::telemetry::sessions_delta(crate::protocol::Kind::WebMail, state.reported.1, now.1);
        state.reported = now;
    }
}

impl Actor for AccountSessionActor {
    type Msg = SessionMsg;
    type State = AccountSessionState;
    type Arguments = AccountSessionArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        metrics::gauge!(crate::telemetry::SESSION_ACTORS).increment(1);
        Ok(AccountSessionState {
            args,
            last_activity: Instant::now(),
            reported: (0, 0),
        })
    }

    async fn post_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        report_sessions(state);
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        metrics::gauge!(crate::telemetry::SESSION_ACTORS).decrement(1);
        crate::telemetry::sessions_delta(crate::protocol::Kind::WebAccount, state.reported.0, 0);
        crate::telemetry::sessions_delta(crate::protocol::Kind::WebMail, state.reported.1, 0);
        state.reported = (0, 0);
        state
            .args
            .directory
            .unlist(&state.args.name, myself.get_id());
        // Best effort: Tick and Flush already wrote; this catches the rest on a
        // clean stop.
        if state.args.sessions.has_dirty() {
            let _ = Box::pin(flush(state)).await;
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Checks and reads do not change the set of sessions: the hot path
        // skips the gauge update (a pass over the account's sessions).
        let may_change = !matches!(
            msg,
            SessionMsg::Touch { .. }
                | SessionMsg::Account { .. }
                | SessionMsg::List { .. }
                | SessionMsg::EndEarly { .. }
                | SessionMsg::TakeDirty { .. }
                | SessionMsg::Redirty { .. }
        );
        // Boxed: the actor's task holds this future inline otherwise, sized
        // for the largest message's handling, for as long as the actor
        // lives (docs/sessions-memory.md, per-account overhead).
        let res = Box::pin(self.handle_msg(myself, msg, state)).await;
        if may_change {
            report_sessions(state);
        }
        res
    }
}

impl AccountSessionActor {
    async fn handle_msg(
        &self,
        myself: ActorRef<SessionMsg>,
        msg: SessionMsg,
        state: &mut AccountSessionState,
    ) -> Result<(), ActorProcessingErr> {
        let now = state.args.clock.now();
        if !matches!(
            msg,
            SessionMsg::Tick | SessionMsg::TakeDirty { .. } | SessionMsg::Redirty { .. }
        ) {
            state.last_activity = Instant::now();
        }
        match msg {
            SessionMsg::Touch { token, client } => {
                state.args.sessions.touch(&token, &client, now);
            }
            SessionMsg::Account { reply } => {
                let _ = reply.send(state.args.sessions.account().clone());
            }
            SessionMsg::Add {
                token,
                csrf,
                kind,
                login_address,
                client,
                early,
                reply,
            } => {
                if early && !state.args.sessions.has_room(now) {
                    let _ = reply.send(Ok(false));
                    return Ok(());
                }
                let id = match random_id() {
                    Ok(id) => id,
                    Err(_) => {
                        let _ = reply.send(Err(SessionError::Random));
                        return Ok(());
                    }
                };
                let s = &state.args.sessions;
                let evicted = s.evictions_for_add(now);
                let rec = s.new_record(id, kind, csrf, &login_address, &client, now);
                let (db, name, ev, r) = (
                    state.args.db.clone(),
                    state.args.name.clone(),
                    evicted.clone(),
                    rec.clone(),
                );
                let res = store::blocking(move || {
                    store::sessions::commit(&db, &name, &[(token, r)], &ev)
                })
                .await;
                match res {
                    Ok(()) => {
                        state.args.sessions.insert(&evicted, token, &rec);
                        if early {
                            state.args.sessions.mark_early(token);
                        }
                        let _ = reply.send(Ok(true));
                    }
                    Err(e) => return fail(reply, e),
                }
            }
            SessionMsg::EndEarly { token, reply } => {
                let _ = reply.send(state.args.sessions.end_early(&token));
            }
            SessionMsg::Remove { token, reply } => {
                state.args.sessions.end_early(&token);
                let found = state.args.sessions.contains(&token).then_some(token);
                return remove_one(state, found, reply).await;
            }
            SessionMsg::SetPassword { phc, keep, reply } => {
                let (db, name) = (state.args.db.clone(), state.args.name.clone());
                let k = keep.map(|h| h.0);
                match store::blocking(move || store::accounts::set_password(&db, &name, &phc, k))
                    .await
                {
                    Ok(Some(rec)) => {
                        state.args.sessions.set_account(rec);
                        state.args.sessions.remove_all_except(keep);
                        let _ = reply.send(Ok(()));
                    }
                    Ok(None) => {
                        let _ = reply.send(Err(SessionError::UnknownAccount));
                        myself.stop(Some("account removed".into()));
                    }
                    Err(e) => return fail(reply, e),
                }
            }
            SessionMsg::Edit { edit, reply } => {
                let (db, name) = (state.args.db.clone(), state.args.name.clone());
                let res =
                    tokio::task::spawn_blocking(move || store::accounts::edit(&db, &name, &edit))
                        .await
                        .unwrap_or(Err(EditError::Store(StoreError::Task)));
                match res {
                    Ok(rec) => {
                        state.args.sessions.set_account(rec.clone());
                        let _ = reply.send(Ok(rec));
                    }
                    Err(EditError::Store(e)) => {
                        let msg = e.to_string();
                        let _ = reply.send(Err(EditError::Store(e)));
                        return Err(msg.into());
                    }
                    Err(EditError::UnknownAccount) => {
                        let _ = reply.send(Err(EditError::UnknownAccount));
                        myself.stop(Some("account removed".into()));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            SessionMsg::List { current, reply } => {
                let _ = reply.send(state.args.sessions.listing(now, current));
            }
            SessionMsg::RevokeId { id, reply } => {
                let found = state.args.sessions.find_id(id);
                return remove_one(state, found, reply).await;
            }
            SessionMsg::RevokeAll { keep, reply } => {
                let before = state.args.sessions.len();
                let (db, name) = (state.args.db.clone(), state.args.name.clone());
                match store::blocking(move || store::sessions::remove_all_except(&db, &name, keep))
                    .await
                {
                    Ok(()) => {
                        state.args.sessions.remove_all_except(keep);
                        let removed = before - state.args.sessions.len();
                        let _ = reply.send(Ok(removed));
                    }
                    Err(e) => return fail(reply, e),
                }
            }
            SessionMsg::RemoveAccount { reply } => {
                let (db, name) = (state.args.db.clone(), state.args.name.clone());
                match store::blocking(move || store::accounts::remove(&db, &name)).await {
                    Ok(existed) => {
                        // Nothing of the account may answer from memory any more.
                        let mut gone = state.args.sessions.account().clone();
                        gone.password.clear();
                        gone.login_disabled = Some("account removed".into());
                        state.args.sessions.set_account(gone);
                        state.args.sessions.remove_all_except(None);
                        state
                            .args
                            .directory
                            .unlist(&state.args.name, myself.get_id());
                        let _ = reply.send(Ok(existed));
                        myself.stop(Some("account removed".into()));
                    }
                    Err(e) => return fail(reply, e),
                }
            }
            SessionMsg::TakeDirty { reply } => {
                let ext = state.args.sessions.take_dirty();
                let _ = reply.send((state.args.name.clone(), ext));
            }
            SessionMsg::Redirty { hashes } => {
                state.args.sessions.mark_dirty(hashes);
            }
            SessionMsg::Tick => {
                let expired = state.args.sessions.expired_hashes(now);
                if !expired.is_empty() {
                    let (db, name, ex) = (
                        state.args.db.clone(),
                        state.args.name.clone(),
                        expired.clone(),
                    );
                    store::blocking(move || store::sessions::commit(&db, &name, &[], &ex)).await?;
                    state.args.sessions.remove_many(&expired);
                }
                // Extensions are written for all accounts at once by the
                // handle's flusher; an actor about to stop writes its own.
                if state.last_activity.elapsed() >= state.args.idle_stop {
                    flush(state).await?;
                    myself.stop(Some("idle".into()));
                }
            }
        }
        Ok(())
    }
}

/// Answers a failed write and fails the actor: after a failed commit redb may
/// refuse writes until reopened, and the next request respawns the actor from
/// what is on disk.
fn fail<T>(
    reply: ractor::RpcReplyPort<Result<T, SessionError>>,
    e: StoreError,
) -> Result<(), ActorProcessingErr> {
    let msg = e.to_string();
    let _ = reply.send(Err(SessionError::Store(e)));
    Err(msg.into())
}

/// Removes one session durably (logout, revocation) and answers whether it
/// existed; `None` answers `false` without a write.
async fn remove_one(
    state: &mut AccountSessionState,
    token: Option<crate::token::TokenHash>,
    reply: ractor::RpcReplyPort<Result<bool, SessionError>>,
) -> Result<(), ActorProcessingErr> {
    let Some(token) = token else {
        let _ = reply.send(Ok(false));
        return Ok(());
    };
    let (db, name) = (state.args.db.clone(), state.args.name.clone());
    match store::blocking(move || store::sessions::commit(&db, &name, &[], &[token])).await {
        Ok(()) => {
            state.args.sessions.remove(&token);
            let _ = reply.send(Ok(true));
            Ok(())
        }
        Err(e) => fail(reply, e),
    }
}

/// Writes pending extensions in one transaction.
async fn flush(state: &mut AccountSessionState) -> Result<(), StoreError> {
    if !state.args.sessions.has_dirty() {
        return Ok(());
    }
    let ext = state.args.sessions.take_dirty();
    let hashes: Vec<_> = ext.iter().map(|e| e.hash).collect();
    let (db, name) = (state.args.db.clone(), state.args.name.clone());
    let res = store::blocking(move || store::sessions::flush(&db, &name, &ext)).await;
    if res.is_err() {
        state.args.sessions.mark_dirty(hashes);
    }
    res
}
