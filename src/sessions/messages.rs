//! Messages of an account's session actor.
//!
//! Request/response variants carry their reply port as the last field; the
//! timer tick and the final flush have their own variants.

use ractor::RpcReplyPort;

use super::SessionError;
use super::state::{Client, Listed};
use crate::protocol::Kind;
use crate::store::accounts::{AccountEdit, EditError};
use crate::store::codec::AccountRecord;
use crate::token::TokenHash;

/// A message to one account's session actor.
#[derive(Debug)]
pub enum SessionMsg {
    /// Record a use of a session that passed the check on the published
    /// view (memory only, no answer): sent only when the use changes what is
    /// kept, see `AccountSessions::touch`.
    Touch {
        /// Hash of the session token.
        token: TokenHash,
        /// Who used it.
        client: Client,
    },
    /// The account's record as held (for login and account pages).
    Account {
        /// The answer.
        reply: RpcReplyPort<AccountRecord>,
    },
    /// Add a session; answered after it is durable, with whether it was
    /// added. An early add (made while the sign-in's password is still being
    /// verified) is refused rather than evict a live session, and stays out
    /// of listings until `EndEarly`.
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
        /// Whether this is an early add.
        early: bool,
        /// The answer.
        reply: RpcReplyPort<Result<bool, SessionError>>,
    },
    /// The sign-in of an early-added session succeeded: list it from now
    /// on. Replies whether the session is still held (memory only).
    EndEarly {
        /// Hash of the session token.
        token: TokenHash,
        /// The answer.
        reply: RpcReplyPort<bool>,
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
    /// Change the account's record (full name, destination, login disabled,
    /// addresses); answered after it is durable, with the new record.
    Edit {
        /// The change.
        edit: AccountEdit,
        /// The new record, or why nothing changed.
        reply: RpcReplyPort<Result<AccountRecord, EditError>>,
    },
    /// The live (unexpired) sessions, from memory; `current` marks the
    /// caller's own.
    List {
        /// The caller's session, if it is one of this account's.
        current: Option<TokenHash>,
        /// The sessions with their token hashes (the hashes never leave the
        /// crate's session layer).
        reply: RpcReplyPort<Vec<(TokenHash, Listed)>>,
    },
    /// Remove the session with this opaque id; answered after it is durable.
    /// Replies whether it existed.
    RevokeId {
        /// The session's opaque id.
        id: u64,
        /// The answer.
        reply: RpcReplyPort<Result<bool, SessionError>>,
    },
    /// Remove every session but `keep`; answered after it is durable, with
    /// the number removed.
    RevokeAll {
        /// The session that stays (the caller's), if any.
        keep: Option<TokenHash>,
        /// The answer.
        reply: RpcReplyPort<Result<usize, SessionError>>,
    },
    /// Remove the account, its addresses, sessions and login attempts in one
    /// durable transaction, then stop. Replies whether it existed.
    RemoveAccount {
        /// The answer.
        reply: RpcReplyPort<Result<bool, SessionError>>,
    },
    /// Hand over pending extensions to the handle's flusher, which writes
    /// those of every account in one transaction; the dirty set is cleared.
    TakeDirty {
        /// The account's name and its pending extensions.
        reply: RpcReplyPort<(std::sync::Arc<str>, Vec<crate::store::sessions::Extension>)>,
    },
    /// The flusher's write failed: these sessions are dirty again.
    Redirty {
        /// The sessions handed over by `TakeDirty`.
        hashes: Vec<TokenHash>,
    },
    /// Timer: sweep expired sessions; before stopping when idle, write
    /// pending extensions.
    Tick,
}
