//! The failed-auth rate limiter: per client IP, three subnet classes at once
//! (IPv4 /32, /26, /21; IPv6 /64, /48, /32) in fixed windows (1 minute:
//! 10/30/90; 24 hours: 50/150/450). An attempt is refused when any class in
//! any window would go over its limit; a success resets the client's own
//! count.
//!
//! Owns: the shard actors and the [`RateLimiterHandle`] through which the
//! rest of the crate talks to them. The rules themselves live in
//! [`limiter`] (pure, time passed in), the actor in [`actor`], the lock-free
//! "may have failures" summary in [`filter`].
//!
//! Must never: be reached from HTTP code other than through
//! [`RateLimiterHandle`]; wait on a shard without a timeout; log client
//! addresses; use ractor's global name registry (two app instances in one
//! process must not collide).
//!
//! ```text
//!   http ──attempt/check/list──▶ RateLimiterHandle ──call (5 s)──▶ shard k = hash(coarsest class) % N
//!        ──reset_if_needed(ip)──▶   │ filter.may_have_failures(ip)? ──no──▶ done (one atomic load)
//!                                   └──yes──▶ cast Reset ──────────────▶ shard k
//!   shards ──add/remove finest-class keys──▶ Arc<FailureFilter> ◀── handles read
//! ```
//!
//! Sharding: the shard of an address is chosen by hashing its *coarsest*
//! class (IPv4 /21, IPv6 /32), so all three classes of a client, and of all
//! its neighbours, live in the same shard and every decision is local to one
//! actor. `Limits::max_entries` given to [`RateLimiterHandle::spawn`] is the
//! total over all shards: each shard gets `max_entries / shards`, rounded up.

pub mod actor;
pub mod filter;
pub mod limiter;

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorRef, RpcReplyPort, SpawnErr};

pub use actor::{RateLimitActor, RateLimitArgs, RateLimitMsg, RateLimitState};
pub use filter::FailureFilter;
pub use limiter::{Limited, LimitedClient, Limiter, Limits, WindowLimit};

use limiter::Key;

/// Default number of shard actors.
pub const DEFAULT_SHARDS: usize = 4;

/// Upper bound on the number of shards (larger requests are clamped).
pub const MAX_SHARDS: usize = 256;

/// Timeout of every call to a shard.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Failures of the rate limiter service itself (not refusals: those are
/// [`Limited`] values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    /// A shard did not answer within [`CALL_TIMEOUT`], or has stopped.
    #[error("rate limiter unavailable")]
    Unavailable,
}

/// Cheap-to-clone client of the rate limiter shards.
#[derive(Clone)]
pub struct RateLimiterHandle {
    /// The shard actors; never empty.
    shards: Arc<[ActorRef<RateLimitMsg>]>,
    /// Shared with every shard: answers "may this client have failures?"
    /// without a message.
    filter: Arc<FailureFilter>,
    /// Keyed hash for shard choice, shared by clones so every clone picks
    /// the same shard for an address.
    shard_hasher: RandomState,
    /// Addresses and networks never limited and never counted.
    allowlist: Arc<[crate::protocol::forwarded::Cidr]>,
}

impl std::fmt::Debug for RateLimiterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiterHandle")
            .field("shards", &self.shards.len())
            .field("filter", &self.filter)
            .finish()
    }
}

impl RateLimiterHandle {
    /// Spawn `shards` unsupervised shard actors (clamped to
    /// `1..=`[`MAX_SHARDS`]), unnamed, sharing one [`FailureFilter`].
    /// `limits.max_entries` is the total: each shard may hold
    /// `max_entries / shards` keys, rounded up.
    ///
    /// If any shard fails to start, those already started are stopped.
    pub async fn spawn(limits: Limits, shards: usize) -> Result<RateLimiterHandle, SpawnErr> {
        Self::spawn_inner(limits, shards, None).await
    }

    /// Like [`RateLimiterHandle::spawn`], with every shard linked to
    /// `supervisor`. The supervisor receives a supervision event whenever a
    /// shard stops (including through [`RateLimiterHandle::stop`]) and must
    /// decide what that means; ractor's default stops the supervisor.
    pub async fn spawn_linked(
        limits: Limits,
        shards: usize,
        supervisor: ActorCell,
    ) -> Result<RateLimiterHandle, SpawnErr> {
        Self::spawn_inner(limits, shards, Some(supervisor)).await
    }

    async fn spawn_inner(
        limits: Limits,
        shards: usize,
        supervisor: Option<ActorCell>,
    ) -> Result<RateLimiterHandle, SpawnErr> {
        let n = shards.clamp(1, MAX_SHARDS);
        let filter = Arc::new(FailureFilter::new());
        let limits = Limits {
            max_entries: limits.max_entries.div_ceil(n),
            ..limits
        };
        let mut refs = Vec::with_capacity(n);
        for _ in 0..n {
            let args = RateLimitArgs {
                limits: limits.clone(),
                filter: Arc::clone(&filter),
            };
            let spawned = match &supervisor {
                Some(sup) => Actor::spawn_linked(None, RateLimitActor, args, sup.clone()).await,
                None => Actor::spawn(None, RateLimitActor, args).await,
            };
            match spawned {
                // The JoinHandle is not needed: the actor is reached through
                // its ActorRef and stopped through `stop`.
                Ok((actor, _join)) => refs.push(actor),
                Err(err) => {
                    for actor in &refs {
                        actor.stop(None);
                    }
                    return Err(err);
                }
            }
        }
        Ok(RateLimiterHandle {
            shards: refs.into(),
            filter,
            shard_hasher: RandomState::new(),
            allowlist: Arc::from(Vec::new()),
        })
    }

    /// This handle with `allowlist`: attempts from those addresses are never
    /// refused and never counted.
    pub fn with_allowlist(mut self, allowlist: Vec<crate::protocol::forwarded::Cidr>) -> Self {
        self.allowlist = allowlist.into();
        self
    }

    /// Whether `ip` is on the allowlist.
    pub fn allowed(&self, ip: IpAddr) -> bool {
        crate::protocol::forwarded::listed(&self.allowlist, ip)
    }

    /// Count one failed authentication attempt from `ip`.
    ///
    /// `Ok(Err(Limited))`: refused (too many failures; nothing counted).
    /// Call this *before* checking credentials, as the seeds do, and
    /// [`RateLimiterHandle::reset_if_needed`] after a success.
    pub async fn attempt(&self, ip: IpAddr) -> Result<Result<(), Limited>, RateLimitError> {
        if self.allowed(ip) {
            return Ok(Ok(()));
        }
        self.call_shard(ip, |reply| RateLimitMsg::Attempt { ip, reply })
            .await
    }

    /// Whether an attempt from `ip` would be refused now, without counting.
    pub async fn check(&self, ip: IpAddr) -> Result<Option<Limited>, RateLimitError> {
        self.call_shard(ip, |reply| RateLimitMsg::Check { ip, reply })
            .await
    }

    /// After a successful authentication: reset `ip`'s own failure count, if
    /// it may have one. The hot path: one atomic load, and a fire-and-forget
    /// message only when the filter says the client may have failures.
    pub fn reset_if_needed(&self, ip: IpAddr) {
        if !self.filter.may_have_failures(ip) {
            return;
        }
        let sent = self
            .shard(ip)
            .is_some_and(|shard| shard.cast(RateLimitMsg::Reset { ip }).is_ok());
        if !sent {
            // Shard stopped: its counts are gone with it; nothing to reset.
            tracing::debug!("rate limiter shard unavailable for reset");
        }
    }

    /// Every (class, window) count that currently refuses attempts, over all
    /// shards, sorted by prefix then window.
    pub async fn list(&self) -> Result<Vec<LimitedClient>, RateLimitError> {
        let mut all = Vec::new();
        for part in multi_call(&self.shards, |reply| RateLimitMsg::List { reply }).await? {
            all.extend(part);
        }
        limiter::sort_limited(&mut all);
        Ok(all)
    }

    /// Admin: remove the counts of every class containing `ip`.
    pub async fn reset_prefix(&self, ip: IpAddr) -> Result<(), RateLimitError> {
        self.call_shard(ip, |reply| RateLimitMsg::ResetPrefix { ip, reply })
            .await
    }

    /// Total keys held over all shards.
    pub async fn entries(&self) -> Result<usize, RateLimitError> {
        let counts = multi_call(&self.shards, |reply| RateLimitMsg::Entries { reply }).await?;
        Ok(counts.into_iter().sum())
    }

    /// Whether `ip` may have failure counts (the filter check alone).
    pub fn may_have_failures(&self, ip: IpAddr) -> bool {
        self.filter.may_have_failures(ip)
    }

    /// Number of shard actors.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Stop every shard (their counts are dropped). Later calls answer
    /// [`RateLimitError::Unavailable`]; `reset_if_needed` does nothing.
    pub fn stop(&self) {
        for actor in self.shards.iter() {
            actor.stop(None);
        }
    }

    /// The shard owning `ip`: chosen by its coarsest class, so all classes
    /// of a client live in one shard. `None` only if there were no shards,
    /// which `spawn` never allows.
    fn shard(&self, ip: IpAddr) -> Option<&ActorRef<RateLimitMsg>> {
        let n = u64::try_from(self.shards.len()).ok().filter(|n| *n > 0)?;
        let i = usize::try_from(self.shard_hasher.hash_one(Key::coarsest(ip)) % n).ok()?;
        self.shards.get(i)
    }

    /// [`call`] to the shard owning `ip`.
    async fn call_shard<T, F>(&self, ip: IpAddr, msg: F) -> Result<T, RateLimitError>
    where
        T: Send + 'static,
        F: FnOnce(RpcReplyPort<T>) -> RateLimitMsg,
    {
        let shard = self.shard(ip).ok_or(RateLimitError::Unavailable)?;
        call(shard, msg).await
    }
}

/// One call with [`CALL_TIMEOUT`]; a timeout or a stopped shard is
/// [`RateLimitError::Unavailable`].
async fn call<T, F>(actor: &ActorRef<RateLimitMsg>, msg: F) -> Result<T, RateLimitError>
where
    T: Send + 'static,
    F: FnOnce(RpcReplyPort<T>) -> RateLimitMsg,
{
    match actor.call(msg, Some(CALL_TIMEOUT)).await {
        Ok(CallResult::Success(v)) => Ok(v),
        Ok(CallResult::Timeout | CallResult::SenderError) | Err(_) => {
            Err(RateLimitError::Unavailable)
        }
    }
}

/// The same call to every shard, concurrently, each with [`CALL_TIMEOUT`];
/// any failed shard makes the whole answer [`RateLimitError::Unavailable`].
async fn multi_call<T, F>(
    shards: &[ActorRef<RateLimitMsg>],
    msg: F,
) -> Result<Vec<T>, RateLimitError>
where
    T: Send + 'static,
    F: Fn(RpcReplyPort<T>) -> RateLimitMsg,
{
    let results = ractor::rpc::multi_call(shards, msg, Some(CALL_TIMEOUT))
        .await
        .map_err(|_| RateLimitError::Unavailable)?;
    results
        .into_iter()
        .map(|r| match r {
            CallResult::Success(v) => Ok(v),
            CallResult::Timeout | CallResult::SenderError => Err(RateLimitError::Unavailable),
        })
        .collect()
}

#[cfg(test)]
// `allow`, not `expect`: the lint is silent once clippy.toml sets
// allow-unwrap-in-tests, and an unfulfilled `expect` would then warn.
#[allow(clippy::unwrap_used, reason = "a failing test should panic loudly")]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    /// Wait (in paused time) until `f` holds; panics after 100 polls.
    async fn eventually<F: FnMut() -> bool>(mut f: F) {
        for _ in 0..100 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("condition not reached");
    }

    #[tokio::test(start_paused = true)]
    async fn attempt_refuse_and_reset_through_the_handle() {
        let rl = RateLimiterHandle::spawn(Limits::default(), DEFAULT_SHARDS)
            .await
            .unwrap();
        assert_eq!(rl.shard_count(), 4);
        let ip = v4(192, 0, 2, 1);
        assert!(!rl.may_have_failures(ip));
        // Success without prior failures: nothing to send.
        rl.reset_if_needed(ip);
        for _ in 0..10 {
            assert_eq!(rl.attempt(ip).await.unwrap(), Ok(()));
        }
        assert!(rl.may_have_failures(ip));
        let limited = rl.attempt(ip).await.unwrap().unwrap_err();
        assert_eq!(limited.retry_after, Duration::from_secs(60));
        assert_eq!(rl.check(ip).await.unwrap(), Some(limited));
        assert_eq!(rl.entries().await.unwrap(), 6);

        rl.reset_if_needed(ip);
        eventually(|| !rl.may_have_failures(ip)).await;
        assert_eq!(rl.check(ip).await.unwrap(), None);
        assert_eq!(rl.entries().await.unwrap(), 0);
        rl.stop();
    }

    #[tokio::test(start_paused = true)]
    async fn windows_follow_the_paused_clock() {
        let rl = RateLimiterHandle::spawn(Limits::default(), 2)
            .await
            .unwrap();
        let ip: IpAddr = IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>().unwrap());
        for _ in 0..10 {
            rl.attempt(ip).await.unwrap().unwrap();
        }
        tokio::time::advance(Duration::from_secs(30)).await;
        let limited = rl.check(ip).await.unwrap().unwrap();
        assert_eq!(limited.retry_after, Duration::from_secs(30));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(rl.check(ip).await.unwrap(), None);
        assert_eq!(rl.attempt(ip).await.unwrap(), Ok(()));
        rl.stop();
    }

    #[tokio::test(start_paused = true)]
    async fn list_merges_shards_and_reset_prefix_clears() {
        let rl = RateLimiterHandle::spawn(Limits::default(), 4)
            .await
            .unwrap();
        // Several /21s, likely on different shards, each with one blocked /32.
        let ips: Vec<IpAddr> = (0..8u8).map(|i| v4(10, i * 8, 0, 1)).collect();
        for ip in &ips {
            for _ in 0..10 {
                rl.attempt(*ip).await.unwrap().unwrap();
            }
        }
        let listed = rl.list().await.unwrap();
        let prefixes: Vec<&str> = listed.iter().map(|c| c.prefix.as_str()).collect();
        let mut expected: Vec<String> = ips.iter().map(|ip| format!("{ip}/32")).collect();
        expected.sort();
        assert_eq!(prefixes, expected);
        assert!(listed.iter().all(|c| c.count == 10 && c.limit == 10));

        rl.reset_prefix(ips[3]).await.unwrap();
        assert_eq!(rl.check(ips[3]).await.unwrap(), None);
        assert_eq!(rl.list().await.unwrap().len(), 7);
        assert_eq!(rl.entries().await.unwrap(), 7 * 6);
        rl.stop();
    }

    #[tokio::test(start_paused = true)]
    async fn max_entries_is_the_total_over_shards() {
        let limits = Limits {
            max_entries: 12,
            ..Limits::default()
        };
        let rl = RateLimiterHandle::spawn(limits, 4).await.unwrap();
        // 200 clients in distinct /21s: 6 keys each, 1200 without the cap.
        for i in 0..200u16 {
            let [hi, lo] = (i * 8).to_be_bytes();
            rl.attempt(v4(10, hi, lo, 1)).await.unwrap().unwrap();
        }
        let n = rl.entries().await.unwrap();
        assert!(n <= 12, "{n} keys");
        rl.stop();
    }

    #[tokio::test(start_paused = true)]
    async fn stopped_limiter_is_unavailable() {
        let rl = RateLimiterHandle::spawn(Limits::default(), 0)
            .await
            .unwrap();
        assert_eq!(rl.shard_count(), 1);
        let ip = v4(192, 0, 2, 1);
        rl.attempt(ip).await.unwrap().unwrap();
        rl.stop();
        let mut result = Ok(Ok(()));
        for _ in 0..100 {
            result = rl.attempt(ip).await;
            if result.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(result, Err(RateLimitError::Unavailable));
        assert_eq!(rl.list().await, Err(RateLimitError::Unavailable));
        // The stopped shard's keys left the filter; the hot path is a no-op.
        eventually(|| !rl.may_have_failures(ip)).await;
        rl.reset_if_needed(ip);
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_shard_times_out_as_unavailable() {
        // A call to a shard that never answers (its mailbox is blocked by a
        // stuck message) must come back after CALL_TIMEOUT, not hang. We
        // emulate it with an actor that ignores messages.
        struct Deaf;
        impl Actor for Deaf {
            type Msg = RateLimitMsg;
            type State = Vec<RateLimitMsg>;
            type Arguments = ();
            async fn pre_start(
                &self,
                _myself: ActorRef<Self::Msg>,
                _args: (),
            ) -> Result<Self::State, ractor::ActorProcessingErr> {
                Ok(Vec::new())
            }
            async fn handle(
                &self,
                _myself: ActorRef<Self::Msg>,
                msg: Self::Msg,
                state: &mut Self::State,
            ) -> Result<(), ractor::ActorProcessingErr> {
                // Keep the reply port alive without answering.
                state.push(msg);
                Ok(())
            }
        }
        let (deaf, _join) = Actor::spawn(None, Deaf, ()).await.unwrap();
        let rl = RateLimiterHandle {
            shards: vec![deaf.clone()].into(),
            filter: Arc::new(FailureFilter::new()),
            shard_hasher: RandomState::new(),
            allowlist: Arc::from(Vec::new()),
        };
        let start = tokio::time::Instant::now();
        assert_eq!(
            rl.attempt(v4(192, 0, 2, 1)).await,
            Err(RateLimitError::Unavailable)
        );
        assert!(start.elapsed() >= CALL_TIMEOUT);
        assert_eq!(rl.entries().await, Err(RateLimitError::Unavailable));
        deaf.stop(None);
    }

    #[tokio::test(start_paused = true)]
    async fn all_classes_of_a_client_share_a_shard() {
        let rl = RateLimiterHandle::spawn(Limits::default(), 8)
            .await
            .unwrap();
        // 30 distinct /32s in one /26 must be refused together: only works if
        // they all reach the same shard.
        for i in 0..30u8 {
            rl.attempt(v4(198, 51, 100, i)).await.unwrap().unwrap();
        }
        assert!(rl.check(v4(198, 51, 100, 50)).await.unwrap().is_some());
        // IPv4-mapped IPv6 goes to the same shard as its IPv4 form.
        let mapped = IpAddr::V6(Ipv4Addr::new(198, 51, 100, 50).to_ipv6_mapped());
        assert!(rl.check(mapped).await.unwrap().is_some());
        rl.stop();
    }
}
