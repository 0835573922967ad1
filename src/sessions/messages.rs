//! Messages of an account's session actor.
//!
//! Request/response variants carry their reply port as the last field; the
//! timer tick and the final flush have their own variants.

use ractor::RpcReplyPort;

use super::SessionError;
use super::state::{Client, Used};
use crate::protocol::Kind;
use crate::protocol::check::Failure;
use crate::store::codec::AccountRecord;
use crate::token::TokenHash;

/// A message to one account's session actor.
#[derive(Debug)]
pub enum SessionMsg {
    /// Check a session and extend it (the hot path: memory only).
    Use {
        /// Interface kind the request came to.
        kind: Kind,
        /// Hash of the presented session token.
        token: TokenHash,
        /// Hash of the presented CSRF token, see `AccountSessions::use_session`.
        csrf: Option<Option<TokenHash>>,
        /// Who uses it.
        client: Client,
        /// The answer.
        reply: RpcReplyPort<Result<Used, Failure>>,
    },
    /// The account's record as held (for login and account pages).
    Account {
        /// The answer.
        reply: RpcReplyPort<AccountRecord>,
    },
    /// Add a session; answered after it is durable.
    Add {
        /// Hash of the new session token.
        token: TokenHash,
        /// Hash of the new CSRF token.
        csrf: TokenHash,
        /// Interface kind.
        kind: Kind,
        /// Login address used.
        login_address: String,
        /// Who signed in.
        client: Client,
        /// The answer.
        reply: RpcReplyPort<Result<(), SessionError>>,
    },
    /// Remove one session (logout); answered after it is durable. Replies
    /// whether the session existed.
    Remove {
        /// Hash of the session token.
        token: TokenHash,
        /// The answer.
        reply: RpcReplyPort<Result<bool, SessionError>>,
    },
    /// Set the password hash and remove every session but `keep`, in one
    /// durable transaction.
    SetPassword {
        /// New PHC string.
        phc: String,
        /// The session that made the change, which stays.
        keep: Option<TokenHash>,
        /// The answer.
        reply: RpcReplyPort<Result<(), SessionError>>,
    },
    /// Write pending extensions now (shutdown).
    Flush {
        /// The answer.
        reply: RpcReplyPort<Result<(), SessionError>>,
    },
    /// Timer: flush pending extensions, sweep expired sessions, stop when idle.
    Tick,
}
