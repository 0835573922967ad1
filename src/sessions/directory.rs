//! Where the request path finds an account's sessions.
//!
//! Owns the map account name → [`Live`] (the account's actor and its
//! published [`View`](super::state::View)), sharded (dashmap) and owned by one
//! app instance (not ractor's process-wide registry). A session check is a
//! shard read lock, a read of the published view and a hash lookup
//! ([`Directory::with_live`]); no message, no allocation. A miss goes through
//! a per-account `OnceCell`, so concurrent first requests for one account
//! wait for one spawn while other accounts proceed; there is no global actor
//! on this path.
//!
//! Never: holds a shard lock across `.await`; keeps an entry for an account
//! that does not exist (failed look-ups leave nothing behind).

use std::sync::Arc;

use dashmap::DashMap;
use ractor::{ActorId, ActorRef};
use tokio::sync::OnceCell;

use super::messages::SessionMsg;
use super::state::Published;

/// A running account actor and the view it publishes.
#[derive(Clone)]
pub struct Live {
    /// The actor, for every change.
    pub actor: ActorRef<SessionMsg>,
    /// Its current view, for checks.
    pub view: Published,
}

type Slot = Arc<OnceCell<Live>>;

/// Account name → its session actor. Keys are names of existing accounts
/// only, so a fast seeded hash serves (clients choose look-ups, not keys).
#[derive(Default)]
pub struct Directory {
    map: DashMap<Arc<str>, Slot, foldhash::fast::RandomState>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("accounts", &self.map.len())
            .finish()
    }
}

impl Directory {
    /// The live actor for an account, if one is listed.
    pub fn get(&self, account: &str) -> Option<ActorRef<SessionMsg>> {
        self.map
            .get(account)
            .and_then(|s| s.get().map(|l| l.actor.clone()))
    }

    /// Runs `f` on the account's live entry, if one is listed, under the
    /// shard's read lock (so `f` must be short and must not block).
    pub fn with_live<R>(&self, account: &str, f: impl FnOnce(&Live) -> R) -> Option<R> {
        self.map.get(account).and_then(|s| s.get().map(f))
    }

    /// The slot to initialize for an account (created if absent).
    pub fn slot(&self, account: &str) -> Slot {
        if let Some(s) = self.map.get(account) {
            return s.clone();
        }
        self.map.entry(Arc::from(account)).or_default().clone()
    }

    /// Removes an account's slot if it was never filled (a failed spawn).
    pub fn forget_empty(&self, account: &str) {
        self.map.remove_if(account, |_, s| s.get().is_none());
    }

    /// Removes an account's entry if it points at the actor `id`.
    pub fn unlist(&self, account: &str, id: ActorId) {
        self.map.remove_if(account, |_, s| {
            s.get().is_some_and(|l| l.actor.get_id() == id)
        });
    }

    /// Removes whatever entry points at the actor `id` (a failed actor, whose
    /// name we only know by its id).
    pub fn unlist_id(&self, id: ActorId) {
        self.map
            .retain(|_, s| s.get().is_none_or(|l| l.actor.get_id() != id));
    }

    /// Every live actor.
    pub fn actors(&self) -> Vec<ActorRef<SessionMsg>> {
        self.map
            .iter()
            .filter_map(|e| e.value().get().map(|l| l.actor.clone()))
            .collect()
    }

    /// Number of listed accounts.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no account is listed.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
