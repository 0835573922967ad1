//! Where the hot path finds an account's session actor.
//!
//! Owns the map account name → actor, sharded (dashmap) and owned by one app
//! instance (not ractor's process-wide registry). A hit is a shard read lock
//! and a clone of an `ActorRef`. A miss goes through a per-account
//! `OnceCell`, so concurrent first requests for one account wait for one spawn
//! while other accounts proceed; there is no global actor on this path.
//!
//! Never: holds a shard lock across `.await`; keeps an entry for an account
//! that does not exist (failed look-ups leave nothing behind).

use std::sync::Arc;

use dashmap::DashMap;
use ractor::{ActorId, ActorRef};
use tokio::sync::OnceCell;

use super::messages::SessionMsg;

type Slot = Arc<OnceCell<ActorRef<SessionMsg>>>;

/// Account name → its session actor.
#[derive(Default)]
pub struct Directory {
    map: DashMap<Arc<str>, Slot>,
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
        self.map.get(account).and_then(|s| s.get().cloned())
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
        self.map
            .remove_if(account, |_, s| s.get().is_some_and(|r| r.get_id() == id));
    }

    /// Removes whatever entry points at the actor `id` (a failed actor, whose
    /// name we only know by its id).
    pub fn unlist_id(&self, id: ActorId) {
        self.map
            .retain(|_, s| s.get().is_none_or(|r| r.get_id() != id));
    }

    /// Every live actor.
    pub fn actors(&self) -> Vec<ActorRef<SessionMsg>> {
        self.map
            .iter()
            .filter_map(|e| e.value().get().cloned())
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
