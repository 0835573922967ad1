//! Admin sessions: in memory only, at most 10, 12 h idle lifetime.
//!
//! Owns the administrator's password hash (loaded from `settings` at start)
//! and the admin sessions, in one actor ([`AdminActor`]) reached through
//! [`AdminHandle`]. Admin sessions do not survive a restart, by design: the
//! admin signs in again.
//!
//! Never: writes sessions to disk; keeps more than [`AdminPolicy::cap`]
//! sessions (the seeds' reference allowed one more by an off-by-one).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::clock::{Clock, UnixMillis};
use crate::protocol::check::Failure;
use crate::sessions::state::evictions;
use crate::sessions::{CALL_TIMEOUT, NewSession, SessionError};
use crate::token::{Token, TokenHash};

/// Lifetime rules of admin sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminPolicy {
    /// Idle lifetime in milliseconds.
    pub idle: i64,
    /// Absolute lifetime in milliseconds.
    pub max: i64,
    /// Most sessions at once.
    pub cap: usize,
}

impl Default for AdminPolicy {
    /// 12 h idle, 30 days absolute, 10 sessions.
    fn default() -> Self {
        AdminPolicy {
            idle: 12 * 3600 * 1000,
            max: 30 * 24 * 3600 * 1000,
            cap: 10,
        }
    }
}

#[derive(Debug, Clone)]
struct AdminSession {
    csrf: TokenHash,
    created: UnixMillis,
    expires: UnixMillis,
    seq: u64,
}

/// The admin sessions, pure.
#[derive(Debug, Default)]
pub struct AdminSessions {
    policy: AdminPolicy,
    sessions: HashMap<TokenHash, AdminSession>,
    seq: u64,
}

impl AdminSessions {
    /// Empty, with a policy.
    pub fn new(policy: AdminPolicy) -> Self {
        AdminSessions {
            policy,
            sessions: HashMap::new(),
            seq: 0,
        }
    }

    fn expired(&self, s: &AdminSession, now: UnixMillis) -> bool {
        now >= s.expires || now >= s.created.saturating_add(self.policy.max)
    }

    /// Checks and extends a session.
    pub fn use_session(
        &mut self,
        token: &TokenHash,
        csrf: Option<Option<TokenHash>>,
        now: UnixMillis,
    ) -> Result<(), Failure> {
        let Some(s) = self.sessions.get(token) else {
            return Err(Failure::UnknownSession);
        };
        crate::sessions::state::expiry_then_csrf(self.expired(s, now), csrf, &s.csrf.0)?;
        let idle = self.policy.idle;
        if let Some(s) = self.sessions.get_mut(token) {
            s.expires = now.saturating_add(idle);
        }
        Ok(())
    }

    /// Adds a session, evicting expired ones and then the least recently used
    /// so that at most `cap` exist.
    pub fn add(&mut self, token: TokenHash, csrf: TokenHash, now: UnixMillis) {
        let ev = evictions(
            self.sessions
                .iter()
                .map(|(h, s)| (*h, self.expired(s, now), (s.expires, s.seq))),
            self.policy.cap,
        );
        for h in ev {
            self.sessions.remove(&h);
        }
        self.seq += 1;
        let s = AdminSession {
            csrf,
            created: now,
            expires: now.saturating_add(self.policy.idle),
            seq: self.seq,
        };
        self.sessions.insert(token, s);
    }

    /// Removes a session; whether it existed.
    pub fn remove(&mut self, token: &TokenHash) -> bool {
        self.sessions.remove(token).is_some()
    }

    /// Removes every session.
    pub fn clear(&mut self) {
        self.sessions.clear();
    }

    /// Number of sessions held.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

/// Messages of the admin actor.
#[derive(Debug)]
pub enum AdminMsg {
    /// Check and extend a session.
    Use {
        /// Session token hash.
        token: TokenHash,
        /// CSRF, as in `AccountSessions::use_session`.
        csrf: Option<Option<TokenHash>>,
        /// The answer.
        reply: RpcReplyPort<Result<(), Failure>>,
    },
    /// The admin password's PHC string, if set.
    PasswordHash {
        /// The answer.
        reply: RpcReplyPort<Option<String>>,
    },
    /// Replace the admin password hash and end every admin session but `keep`.
    SetPasswordHash {
        /// New PHC string (already stored durably by the caller).
        phc: String,
        /// The session that made the change.
        keep: Option<TokenHash>,
        /// Done.
        reply: RpcReplyPort<()>,
    },
    /// Add a session.
    Add {
        /// Session token hash.
        token: TokenHash,
        /// CSRF token hash.
        csrf: TokenHash,
        /// Done.
        reply: RpcReplyPort<()>,
    },
    /// Remove a session.
    Remove {
        /// Session token hash.
        token: TokenHash,
        /// Whether it existed.
        reply: RpcReplyPort<bool>,
    },
    /// Number of sessions.
    Count {
        /// The answer.
        reply: RpcReplyPort<usize>,
    },
}

/// The admin session actor.
pub struct AdminActor;

/// Its state.
pub struct AdminState {
    sessions: AdminSessions,
    password: Option<String>,
    clock: Arc<dyn Clock>,
}

impl Actor for AdminActor {
    type Msg = AdminMsg;
    type State = AdminState;
    type Arguments = (AdminPolicy, Option<String>, Arc<dyn Clock>);

    async fn pre_start(
        &self,
        _: ActorRef<AdminMsg>,
        (policy, password, clock): Self::Arguments,
    ) -> Result<AdminState, ActorProcessingErr> {
        Ok(AdminState {
            sessions: AdminSessions::new(policy),
            password,
            clock,
        })
    }

    async fn handle(
        &self,
        _: ActorRef<AdminMsg>,
        msg: AdminMsg,
        st: &mut AdminState,
    ) -> Result<(), ActorProcessingErr> {
        let now = st.clock.now();
        match msg {
            AdminMsg::Use { token, csrf, reply } => {
                let _ = reply.send(st.sessions.use_session(&token, csrf, now));
            }
            AdminMsg::PasswordHash { reply } => {
                let _ = reply.send(st.password.clone());
            }
            AdminMsg::SetPasswordHash { phc, keep, reply } => {
                st.password = Some(phc);
                let kept = keep.and_then(|k| st.sessions.sessions.remove_entry(&k));
                st.sessions.clear();
                if let Some((k, v)) = kept {
                    st.sessions.sessions.insert(k, v);
                }
                let _ = reply.send(());
            }
            AdminMsg::Add { token, csrf, reply } => {
                st.sessions.add(token, csrf, now);
                let _ = reply.send(());
            }
            AdminMsg::Remove { token, reply } => {
                let _ = reply.send(st.sessions.remove(&token));
            }
            AdminMsg::Count { reply } => {
                let _ = reply.send(st.sessions.len());
            }
        }
        Ok(())
    }
}

/// The typed client of the admin actor.
#[derive(Clone, Debug)]
pub struct AdminHandle(ActorRef<AdminMsg>);

impl AdminHandle {
    /// Spawns the admin actor with the stored password hash.
    pub async fn start(
        policy: AdminPolicy,
        password: Option<String>,
        clock: Arc<dyn Clock>,
    ) -> Result<AdminHandle, ractor::SpawnErr> {
        let (a, _) = Actor::spawn(None, AdminActor, (policy, password, clock)).await?;
        Ok(AdminHandle(a))
    }

    async fn call<T: Send + 'static>(
        &self,
        msg: impl FnOnce(RpcReplyPort<T>) -> AdminMsg,
    ) -> Result<T, SessionError> {
        match self.0.call(msg, Some(CALL_TIMEOUT)).await {
            Ok(CallResult::Success(v)) => Ok(v),
            Ok(CallResult::Timeout) => Err(SessionError::Busy),
            _ => Err(SessionError::Unavailable),
        }
    }

    /// Checks and extends a session.
    pub async fn use_session(
        &self,
        token: &Token,
        csrf: Option<Option<Token>>,
    ) -> Result<Result<(), Failure>, SessionError> {
        let (token, csrf) = (token.hash(), csrf.map(|c| c.map(|t| t.hash())));
        self.call(|reply| AdminMsg::Use { token, csrf, reply })
            .await
    }

    /// The admin password hash.
    pub async fn password_hash(&self) -> Result<Option<String>, SessionError> {
        self.call(|reply| AdminMsg::PasswordHash { reply }).await
    }

    /// Replaces the password hash held in memory and ends other sessions.
    pub async fn set_password_hash(
        &self,
        phc: String,
        keep: Option<TokenHash>,
    ) -> Result<(), SessionError> {
        self.call(|reply| AdminMsg::SetPasswordHash { phc, keep, reply })
            .await
    }

    /// Creates a session.
    pub async fn add(&self) -> Result<NewSession, SessionError> {
        let new = NewSession {
            token: Token::generate()?,
            csrf: Token::generate()?,
        };
        let (token, csrf) = (new.token.hash(), new.csrf.hash());
        self.call(|reply| AdminMsg::Add { token, csrf, reply })
            .await?;
        Ok(new)
    }

    /// Removes a session.
    pub async fn remove(&self, token: &Token) -> Result<bool, SessionError> {
        let token = token.hash();
        self.call(|reply| AdminMsg::Remove { token, reply }).await
    }

    /// Number of admin sessions held.
    pub async fn count(&self) -> Result<usize, SessionError> {
        self.call(|reply| AdminMsg::Count { reply }).await
    }

    /// Stops the actor.
    pub async fn shutdown(&self) {
        let _ = self
            .0
            .stop_and_wait(None, Some(Duration::from_secs(5)))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u8) -> TokenHash {
        TokenHash([i; 32])
    }

    #[test]
    fn cap_is_ten_not_eleven() {
        let mut s = AdminSessions::new(AdminPolicy::default());
        for i in 0..10 {
            s.add(h(i), h(100 + i), i as i64);
        }
        assert_eq!(s.len(), 10);
        s.add(h(10), h(110), 20);
        assert_eq!(s.len(), 10);
        assert_eq!(
            s.use_session(&h(0), None, 21),
            Err(Failure::UnknownSession),
            "oldest dropped"
        );
        assert!(s.use_session(&h(1), None, 21).is_ok());
        assert!(s.use_session(&h(10), Some(Some(h(110))), 21).is_ok());
    }

    #[test]
    fn idle_twelve_hours() {
        let mut s = AdminSessions::new(AdminPolicy::default());
        s.add(h(1), h(2), 0);
        let hour = 3600 * 1000;
        assert!(s.use_session(&h(1), None, 11 * hour).is_ok());
        assert!(s.use_session(&h(1), None, 23 * hour - 1).is_ok());
        assert_eq!(s.use_session(&h(1), None, 35 * hour), Err(Failure::Expired));
        assert_eq!(
            s.use_session(&h(1), Some(None), 0),
            Err(Failure::CsrfMismatch)
        );
    }
}
