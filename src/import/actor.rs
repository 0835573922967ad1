//! The importer actor: every import's state by token, and the broadcast of
//! its progress.
//!
//! | message | from | effect |
//! |---|---|---|
//! | `Start` | HTTP/CLI via [`super::ImportHandle`] | refuses a second import of an account; makes a token; spawns the pipeline on a blocking thread |
//! | `Subscribe` | SSE listener | the replay so far and a receiver for what follows |
//! | `Abort` | `ImportAbort` | asks a running import to stop; unknown, finished or publishing → an error reply, the actor goes on |
//! | `AbortAccount` | account removal | asks the account's running import to stop; replies when it has ended (at once if none runs) |
//! | `Progress` | the pipeline | applies an event, broadcasts it |
//! | `Finished` | the pipeline | applies `done`/`aborted`, frees the account, forgets the import a minute later |
//! | `Forget` | timer | drops the import's state |
//! | `Shutdown` | app shutdown | asks every running import to stop |
//! | `Running` | app shutdown | how many imports still run |
//!
//! Never: runs import work inside `handle` (the pipeline casts back from its
//! own thread); returns `Err` from `handle` for a user's mistake; blocks on a
//! listener (broadcast channels are bounded and never wait for receivers).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use redb::Database;
use tokio::sync::broadcast;

use super::ImportError;
use super::archive::ArchiveKind;
use super::progress::{Event, Progress};
use super::run::{self, Job, Outcome, Sink};
use crate::clock::Clock;
use crate::mail::MailLimits;
use crate::telemetry;
use crate::token::{Token, TokenHash};

/// Events buffered per listener before it counts as lagging.
pub const LISTENER_BUFFER: usize = 256;

/// An import is running.
const RUNNING: u8 = 0;
/// An abort was asked for.
const ABORTING: u8 = 1;
/// The publish started: too late to abort.
const PUBLISHING: u8 = 2;

/// What a new import needs.
pub struct StartReq {
    /// The account.
    pub account: String,
    /// The uploaded archive.
    pub file: std::fs::File,
    /// Its container.
    pub kind: ArchiveKind,
    /// Prefix to remove from mailbox names.
    pub skip_prefix: String,
}

/// A listener's start: the replay and the live receiver.
pub type Subscription = (Vec<Event>, broadcast::Receiver<Event>);

/// Messages of the importer.
pub enum ImporterMsg {
    /// Starts an import; replies with its token.
    Start(StartReq, RpcReplyPort<Result<Token, ImportError>>),
    /// Subscribes to an import's progress, skipping problems below the number.
    Subscribe(
        TokenHash,
        u64,
        RpcReplyPort<Result<Subscription, ImportError>>,
    ),
    /// Aborts an account's running import.
    Abort(String, TokenHash, RpcReplyPort<Result<(), ImportError>>),
    /// The account is being removed: stop its running import, if any, and
    /// reply once it has ended (`true`) or at once if none runs (`false`).
    AbortAccount(String, RpcReplyPort<bool>),
    /// A progress event from the pipeline.
    Progress(TokenHash, Event),
    /// The pipeline ended.
    Finished(TokenHash, Outcome),
    /// Forget an ended import.
    Forget(TokenHash),
    /// Ask every running import to stop; replies how many were running.
    Shutdown(RpcReplyPort<usize>),
    /// How many imports are running.
    Running(RpcReplyPort<usize>),
}

/// The importer's fixed parts.
pub struct ImporterArgs {
    /// `mail.redb`.
    pub db: Arc<Database>,
    /// `accounts.redb` (the publish checks the account still exists).
    pub accounts: Arc<Database>,
    /// Import bounds.
    pub limits: MailLimits,
    /// Wall clock (received time of messages without one).
    pub clock: Arc<dyn Clock>,
    /// How long an ended import's state is kept.
    pub keep: Duration,
}

struct Import {
    account: String,
    progress: Progress,
    tx: broadcast::Sender<Event>,
    control: Arc<AtomicU8>,
    /// Account removals waiting for this import to end.
    waiters: Vec<RpcReplyPort<bool>>,
}

/// The importer's state.
pub struct ImporterState {
    args: ImporterArgs,
    imports: HashMap<[u8; 32], Import>,
    running: HashMap<String, [u8; 32]>,
}

/// The importer actor.
pub struct ImporterActor;

/// The pipeline's view of the actor.
struct ActorSink {
    actor: ActorRef<ImporterMsg>,
    hash: TokenHash,
    control: Arc<AtomicU8>,
}

impl Sink for ActorSink {
    fn event(&self, e: Event) {
        let _ = self.actor.cast(ImporterMsg::Progress(self.hash, e));
    }
    fn cancelled(&self) -> bool {
        self.control.load(Ordering::Acquire) == ABORTING
    }
    fn begin_publish(&self) -> bool {
        self.control
            .compare_exchange(RUNNING, PUBLISHING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// The staging key of an import: the first half of its token's hash.
pub fn staging_key(hash: &TokenHash) -> [u8; 16] {
    let mut k = [0u8; 16];
    k.copy_from_slice(&hash.0[..16]);
    k
}

impl ImporterActor {
    fn start(
        myself: &ActorRef<ImporterMsg>,
        st: &mut ImporterState,
        req: StartReq,
    ) -> Result<Token, ImportError> {
        if st.running.contains_key(&req.account) {
            return Err(ImportError::Busy);
        }
        let token = Token::generate().map_err(|_| ImportError::Internal)?;
        let hash = token.hash();
        let control = Arc::new(AtomicU8::new(RUNNING));
        let (tx, _) = broadcast::channel(LISTENER_BUFFER);
        st.imports.insert(
            hash.0,
            Import {
                account: req.account.clone(),
                progress: Progress::default(),
                tx,
                control: control.clone(),
                waiters: Vec::new(),
            },
        );
        st.running.insert(req.account.clone(), hash.0);
        metrics::counter!(telemetry::IMPORTS_STARTED).increment(1);
        let job = Job {
            db: st.args.db.clone(),
            accounts: st.args.accounts.clone(),
            account: req.account,
            key: staging_key(&hash),
            file: req.file,
            kind: req.kind,
            skip_prefix: req.skip_prefix,
            limits: st.args.limits,
            now: st.args.clock.now(),
        };
        let sink = ActorSink {
            actor: myself.clone(),
            hash,
            control,
        };
        // On the background pool: parsing and staging run at a lower CPU
        // priority than request handling.
        crate::background::spawn(move || {
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run::run(job, &sink)))
                    .unwrap_or_else(|_| {
                        tracing::error!(
                            "import pipeline panicked; staged rows are discarded at next start"
                        );
                        Outcome::Aborted
                    });
            let _ = sink.actor.cast(ImporterMsg::Finished(sink.hash, outcome));
        });
        Ok(token)
    }

    fn abort(st: &mut ImporterState, account: &str, hash: &TokenHash) -> Result<(), ImportError> {
        let Some(imp) = st.imports.get(&hash.0).filter(|i| i.account == account) else {
            return Err(ImportError::Unknown);
        };
        if imp.progress.ended() {
            return Err(ImportError::Finished);
        }
        match imp
            .control
            .compare_exchange(RUNNING, ABORTING, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Ok(()),
            Err(ABORTING) => Err(ImportError::AlreadyAborting),
            Err(_) => Err(ImportError::Publishing),
        }
    }
}

impl Actor for ImporterActor {
    type Msg = ImporterMsg;
    type State = ImporterState;
    type Arguments = ImporterArgs;

    async fn pre_start(
        &self,
        _: ActorRef<ImporterMsg>,
        args: ImporterArgs,
    ) -> Result<ImporterState, ActorProcessingErr> {
        Ok(ImporterState {
            args,
            imports: HashMap::new(),
            running: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ImporterMsg>,
        msg: ImporterMsg,
        st: &mut ImporterState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ImporterMsg::Start(req, reply) => {
                let _ = reply.send(Self::start(&myself, st, req));
            }
            ImporterMsg::Subscribe(hash, from, reply) => {
                let res = match st.imports.get(&hash.0) {
                    Some(i) => Ok((i.progress.replay(from), i.tx.subscribe())),
                    None => Err(ImportError::Unknown),
                };
                let _ = reply.send(res);
            }
            ImporterMsg::Abort(account, hash, reply) => {
                let _ = reply.send(Self::abort(st, &account, &hash));
            }
            ImporterMsg::AbortAccount(account, reply) => {
                match st.running.get(&account).and_then(|h| st.imports.get_mut(h)) {
                    Some(i) => {
                        // Running: stop it. Publishing: it cannot be stopped,
                        // but its publish refuses an account that is gone.
                        let _ = i.control.compare_exchange(
                            RUNNING,
                            ABORTING,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        );
                        i.waiters.push(reply);
                    }
                    None => {
                        let _ = reply.send(false);
                    }
                }
            }
            ImporterMsg::Progress(hash, e) => {
                if let Some(i) = st.imports.get_mut(&hash.0) {
                    if let Some(e) = i.progress.apply(e) {
                        let _ = i.tx.send(e);
                    }
                }
            }
            ImporterMsg::Finished(hash, outcome) => {
                if let Some(i) = st.imports.get_mut(&hash.0) {
                    if let Some(e) = i.progress.dropped_summary() {
                        let _ = i.tx.send(e);
                    }
                    let end = match outcome {
                        Outcome::Done => {
                            metrics::counter!(telemetry::IMPORTS_FINISHED).increment(1);
                            Event::Done
                        }
                        Outcome::Aborted => {
                            metrics::counter!(telemetry::IMPORTS_FAILED).increment(1);
                            Event::Aborted
                        }
                    };
                    if let Some(e) = i.progress.apply(end) {
                        let _ = i.tx.send(e);
                    }
                    if st.running.get(&i.account) == Some(&hash.0) {
                        st.running.remove(&i.account);
                    }
                    for w in i.waiters.drain(..) {
                        let _ = w.send(true);
                    }
                    myself.send_after(st.args.keep, move || ImporterMsg::Forget(hash));
                }
            }
            ImporterMsg::Forget(hash) => {
                st.imports.remove(&hash.0);
            }
            ImporterMsg::Shutdown(reply) => {
                for h in st.running.values() {
                    if let Some(i) = st.imports.get(h) {
                        let _ = i.control.compare_exchange(
                            RUNNING,
                            ABORTING,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        );
                    }
                }
                let _ = reply.send(st.running.len());
            }
            ImporterMsg::Running(reply) => {
                let _ = reply.send(st.running.len());
            }
        }
        Ok(())
    }
}
