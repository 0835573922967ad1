//! Mail import: the importer actor, the pipeline it runs, and the handle the
//! HTTP layer and the command line use.
//!
//! ```text
//!  POST import ──▶ upload streamed to a temp file ──▶ ImportHandle::start ──▶ ImporterActor
//!                                                                              │ spawn_blocking
//!  GET importprogress ◀── replay + broadcast (bounded) ◀── cast(Progress) ◀── run::run (pipeline)
//!                                                                              │ stage batches, publish once
//!                                                                           mail.redb
//! ```
//!
//! | module | owns |
//! |---|---|
//! | [`archive`] | zip/tgz detection and bounded iteration |
//! | [`run`] | what entries mean; staging and the one publish |
//! | [`progress`] | events, replay state, SSE frames |
//! | [`actor`] | imports by token, one per account, abort, broadcast |
//! | [`local`] | import/export on a data directory (the command line) |
//! | [`remote`] | import/export through a running server's control socket |
//!
//! Never: lets the HTTP layer touch the actor directly; waits for a listener.

pub mod actor;
pub mod archive;
pub mod local;
pub mod progress;
pub mod remote;
pub mod run;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef};
use redb::Database;
use tokio_util::sync::CancellationToken;

use self::actor::{ImporterActor, ImporterArgs, ImporterMsg, StartReq, Subscription};
use self::archive::ArchiveKind;
use crate::clock::Clock;
use crate::mail::MailLimits;
use crate::protocol::sherpa::{ApiError, Code};
use crate::token::{Token, TokenHash};

/// How long a call to the importer may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an ended import's progress stays available.
pub const KEEP_ENDED: Duration = Duration::from_secs(60);

/// An import request that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The account already has an import running.
    #[error("an import is already running for this account, wait for it to finish or abort it")]
    Busy,
    /// No such import (or it ended more than a minute ago).
    #[error("unknown import token, the import may have finished more than a minute ago")]
    Unknown,
    /// The import has ended already.
    #[error("import has already finished")]
    Finished,
    /// An abort was asked for already.
    #[error("import is already being aborted")]
    AlreadyAborting,
    /// The publish started; the import will complete.
    #[error("import is being stored, too late to abort")]
    Publishing,
    /// The importer did not answer in time.
    #[error("importer busy")]
    Timeout,
    /// Our fault.
    #[error("internal error")]
    Internal,
}

impl ImportError {
    /// The sherpa error for the API; our own failures are logged here, once.
    pub fn to_api(&self) -> ApiError {
        match self {
            ImportError::Internal | ImportError::Timeout => {
                tracing::error!(error = %self, "importer call failed");
                ApiError::server()
            }
            e => ApiError::new(Code::UserError, e.to_string()),
        }
    }
}

/// The typed client of the importer, plus what uploads and exports need.
#[derive(Clone)]
pub struct ImportHandle {
    actor: ActorRef<ImporterMsg>,
    /// `mail.redb`.
    pub db: Arc<Database>,
    /// Import bounds.
    pub limits: MailLimits,
    /// Where uploads are spooled (inside the data directory).
    pub tmp_dir: PathBuf,
    /// Cancelled at shutdown: progress streams and exports end.
    pub shutdown: CancellationToken,
    /// Wall clock (export file names).
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ImportHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportHandle").finish_non_exhaustive()
    }
}

async fn call<T: Send + 'static>(
    actor: &ActorRef<ImporterMsg>,
    msg: impl FnOnce(ractor::RpcReplyPort<Result<T, ImportError>>) -> ImporterMsg,
) -> Result<T, ImportError> {
    match actor.call(msg, Some(CALL_TIMEOUT)).await {
        Ok(CallResult::Success(r)) => r,
        Ok(CallResult::Timeout) => Err(ImportError::Timeout),
        Ok(CallResult::SenderError) | Err(_) => Err(ImportError::Internal),
    }
}

impl ImportHandle {
    /// Spawns the importer. `db` is `mail.redb`, `accounts` `accounts.redb`.
    pub async fn start_actor(
        db: Arc<Database>,
        accounts: Arc<Database>,
        limits: MailLimits,
        clock: Arc<dyn Clock>,
        tmp_dir: PathBuf,
    ) -> Result<ImportHandle, ractor::SpawnErr> {
        let (actor, _) = Actor::spawn(
            None,
            ImporterActor,
            ImporterArgs {
                db: db.clone(),
                accounts,
                limits,
                clock: clock.clone(),
                keep: KEEP_ENDED,
            },
        )
        .await?;
        Ok(ImportHandle {
            actor,
            db,
            limits,
            tmp_dir,
            shutdown: CancellationToken::new(),
            clock,
        })
    }

    /// Starts an import of `file` for `account`; the token identifies it.
    pub async fn start(
        &self,
        account: &str,
        file: std::fs::File,
        kind: ArchiveKind,
        skip_prefix: String,
    ) -> Result<Token, ImportError> {
        let req = StartReq {
            account: account.to_string(),
            file,
            kind,
            skip_prefix,
        };
        call(&self.actor, |r| ImporterMsg::Start(req, r)).await
    }

    /// The state so far and the live events of an import.
    pub async fn subscribe(
        &self,
        hash: TokenHash,
        from_problem: u64,
    ) -> Result<Subscription, ImportError> {
        call(&self.actor, |r| {
            ImporterMsg::Subscribe(hash, from_problem, r)
        })
        .await
    }

    /// Aborts `account`'s import with this token.
    pub async fn abort(&self, account: &str, token: &str) -> Result<(), ImportError> {
        let hash = Token::parse(token).ok_or(ImportError::Unknown)?.hash();
        let account = account.to_string();
        call(&self.actor, |r| ImporterMsg::Abort(account, hash, r)).await
    }

    /// For account removal (after the account is gone from
    /// `accounts.redb`): stops the account's running import, if any, and
    /// waits up to [`CALL_TIMEOUT`] for it to end and discard what it staged,
    /// so the mail removal that follows finds nothing more arriving. Whether
    /// an import was running. Even if the wait times out, that import cannot
    /// publish: [`crate::store::mail::publish`] refuses an account that is gone.
    pub async fn abort_account(&self, account: &str) -> Result<bool, ImportError> {
        let account = account.to_string();
        match self
            .actor
            .call(
                |r| ImporterMsg::AbortAccount(account, r),
                Some(CALL_TIMEOUT),
            )
            .await
        {
            Ok(CallResult::Success(r)) => Ok(r),
            Ok(CallResult::Timeout) => Err(ImportError::Timeout),
            Ok(CallResult::SenderError) | Err(_) => Err(ImportError::Internal),
        }
    }

    /// Ends progress streams, asks running imports to stop (they discard
    /// their staged rows) and waits up to [`CALL_TIMEOUT`] for them, so the
    /// database is free when shutdown returns; then stops the actor.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        let _ = self
            .actor
            .call(ImporterMsg::Shutdown, Some(CALL_TIMEOUT))
            .await;
        let deadline = tokio::time::Instant::now() + CALL_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            match self
                .actor
                .call(ImporterMsg::Running, Some(CALL_TIMEOUT))
                .await
            {
                Ok(CallResult::Success(0)) | Err(_) => break,
                Ok(CallResult::Success(_)) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(_) => break,
            }
        }
        self.actor.stop(None);
    }
}
