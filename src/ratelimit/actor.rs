//! One shard of the failed-auth rate limiter as a ractor actor.
//!
//! Owns: one [`Limiter`] (the counts of every client whose coarsest class
//! hashes to this shard) and the clock reading for it: each message is
//! handled at `tokio::time::Instant::now()`, so tests can drive time with
//! tokio's paused clock while [`Limiter`] itself stays pure.
//!
//! Must never: return `Err` from `handle` for a domain outcome (a refused
//! attempt is an answer, sent through the reply port); block or await inside
//! `handle` (every operation is in-memory and O(1) amortized, except `List`,
//! which is O(keys) and meant for an admin); log client addresses.
//!
//! Messages (the reply port is always the last field):
//!
//! | message | reply | effect |
//! |---|---|---|
//! | `Attempt { ip, reply }` | `Result<(), Limited>` | count a failure unless refused |
//! | `Check { ip, reply }` | `Option<Limited>` | would an attempt be refused? |
//! | `Reset { ip }` | (cast) | success: forget the client's own count |
//! | `List { reply }` | `Vec<LimitedClient>` | counts that currently refuse |
//! | `ResetPrefix { ip, reply }` | `()` | admin: clear every class of `ip` |
//! | `Entries { reply }` | `usize` | keys held by this shard |

use std::net::IpAddr;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::filter::FailureFilter;
use super::limiter::{Limited, LimitedClient, Limiter, Limits};

/// Messages understood by a rate limiter shard.
#[derive(Debug)]
pub enum RateLimitMsg {
    /// Count one failed authentication from `ip`, unless that would exceed a
    /// limit; the reply is `Err(Limited)` when refused (nothing counted).
    Attempt {
        ip: IpAddr,
        reply: RpcReplyPort<Result<(), Limited>>,
    },
    /// Whether an attempt from `ip` would be refused now (nothing counted).
    Check {
        ip: IpAddr,
        reply: RpcReplyPort<Option<Limited>>,
    },
    /// A successful authentication from `ip`: reset the client's own count
    /// (see [`Limiter::reset`]). Fire-and-forget.
    Reset { ip: IpAddr },
    /// Every count in this shard that currently refuses attempts.
    List {
        reply: RpcReplyPort<Vec<LimitedClient>>,
    },
    /// Admin: remove every class containing `ip` (see
    /// [`Limiter::reset_prefix`]).
    ResetPrefix { ip: IpAddr, reply: RpcReplyPort<()> },
    /// Number of keys this shard holds.
    Entries { reply: RpcReplyPort<usize> },
}

/// The shard behaviour (stateless; the state is [`RateLimitState`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct RateLimitActor;

/// Start-up arguments of a shard.
#[derive(Debug)]
pub struct RateLimitArgs {
    /// Windows, limits and the per-shard key cap.
    pub limits: Limits,
    /// The filter shared by all shards and handles.
    pub filter: Arc<FailureFilter>,
}

/// A shard's state: its limiter. Dropping it (actor stop or failure) takes
/// its keys out of the shared filter.
#[derive(Debug)]
pub struct RateLimitState {
    limiter: Limiter,
}

impl Actor for RateLimitActor {
    type Msg = RateLimitMsg;
    type State = RateLimitState;
    type Arguments = RateLimitArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(RateLimitState {
            limiter: Limiter::with_filter(args.limits, args.filter),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let now = tokio::time::Instant::now().into_std();
        let limiter = &mut state.limiter;
        // Send errors only mean the caller stopped waiting (timed out); that
        // is not a failure of this actor.
        match msg {
            RateLimitMsg::Attempt { ip, reply } => {
                let res = limiter.attempt(ip, now);
                if let Err(limited) = res {
                    tracing::debug!(
                        retry_after_secs = limited.retry_after.as_secs(),
                        "failed-auth attempt refused by rate limiter"
                    );
                }
                let _ = reply.send(res);
            }
            RateLimitMsg::Check { ip, reply } => {
                let _ = reply.send(limiter.is_limited(ip, now));
            }
            RateLimitMsg::Reset { ip } => limiter.reset(ip, now),
            RateLimitMsg::List { reply } => {
                let _ = reply.send(limiter.list(now));
            }
            RateLimitMsg::ResetPrefix { ip, reply } => {
                limiter.reset_prefix(ip);
                let _ = reply.send(());
            }
            RateLimitMsg::Entries { reply } => {
                let _ = reply.send(limiter.entries());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
// `allow`, not `expect`: the lint is silent once clippy.toml sets
// allow-unwrap-in-tests, and an unfulfilled `expect` would then warn.
#[allow(clippy::unwrap_used, reason = "a failing test should panic loudly")]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    const T: Option<Duration> = Some(Duration::from_secs(5));

    #[tokio::test(start_paused = true)]
    async fn shard_answers_through_reply_ports() {
        let filter = Arc::new(FailureFilter::new());
        let args = RateLimitArgs {
            limits: Limits::default(),
            filter: filter.clone(),
        };
        let (shard, join) = Actor::spawn(None, RateLimitActor, args).await.unwrap();
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        for _ in 0..10 {
            let r = shard
                .call(|reply| RateLimitMsg::Attempt { ip, reply }, T)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(r, Ok(()));
        }
        // Refused: a domain answer, and the actor keeps running.
        let r = shard
            .call(|reply| RateLimitMsg::Attempt { ip, reply }, T)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.unwrap_err().retry_after, Duration::from_secs(60));
        let listed = shard
            .call(|reply| RateLimitMsg::List { reply }, T)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert!(filter.may_have_failures(ip));

        shard.cast(RateLimitMsg::Reset { ip }).unwrap();
        let checked = shard
            .call(|reply| RateLimitMsg::Check { ip, reply }, T)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(checked, None);
        assert!(!filter.may_have_failures(ip));

        // Stopping the shard drops its state; its keys leave the filter.
        shard
            .call(|reply| RateLimitMsg::Attempt { ip, reply }, T)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(filter.may_have_failures(ip));
        shard.stop(None);
        join.await.unwrap();
        assert_eq!(filter.occupied_slots(), 0);
    }
}
