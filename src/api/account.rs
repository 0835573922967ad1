//! Functions of the account interface, and the JSON views shared with the
//! admin interface.
//!
//! Never: shows a token, token hash or password hash; changes an account's
//! record other than through its session actor.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Call, Reply, authed, bad_function};
use crate::attempts::StoredAttempt;
use crate::auth::Auth;
use crate::credentials::{self, PasswordError};
use crate::protocol::Kind;
use crate::protocol::sherpa::{ApiError, Params};
use crate::sessions::{Listed, SessionError};
use crate::store::accounts::{self, AccountEdit, EditError};
use crate::store::codec::{AccountRecord, Destination, Rule};
use crate::store::{self, hooks};
use crate::token::Token;

/// What `Account()` (and the admin's `Account(name)`) returns.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct AccountView {
    name: String,
    full_name: String,
    /// Login addresses, in the order they were added.
    addresses: Vec<String>,
    /// Empty when login is enabled, else the reason.
    login_disabled: String,
    /// Bytes of mail stored (0 until the mail store exists).
    storage_used: u64,
    /// Login address → its destination.
    destinations: BTreeMap<String, DestinationView>,
}

/// A destination as the API shows and takes it.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub(super) struct DestinationView {
    full_name: String,
    mailbox: String,
    rules: Vec<RuleView>,
}

/// A delivery rule as the API shows and takes it.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub(super) struct RuleView {
    header: String,
    contains: String,
    mailbox: String,
}

impl From<Destination> for DestinationView {
    fn from(d: Destination) -> Self {
        DestinationView {
            full_name: d.full_name,
            mailbox: d.mailbox,
            rules: d
                .rules
                .into_iter()
                .map(|r| RuleView {
                    header: r.header,
                    contains: r.contains,
                    mailbox: r.mailbox,
                })
                .collect(),
        }
    }
}

impl From<DestinationView> for Destination {
    fn from(d: DestinationView) -> Self {
        Destination {
            full_name: d.full_name,
            mailbox: d.mailbox,
            rules: d
                .rules
                .into_iter()
                .map(|r| Rule {
                    header: r.header,
                    contains: r.contains,
                    mailbox: r.mailbox,
                })
                .collect(),
        }
    }
}

/// The account view of a record, with the mail store's storage figure.
pub(super) async fn account_view(auth: &Auth, rec: AccountRecord) -> Result<AccountView, ApiError> {
    let (stores, name) = (auth.stores.clone(), rec.name.clone());
    let storage_used = store::blocking(move || hooks::storage_used(&stores, &name))
        .await
        .map_err(|e| internal("reading storage used", &e))?;
    let destinations = rec
        .addresses
        .iter()
        .map(|a| (a.clone(), rec.destination(a).into()))
        .collect();
    Ok(AccountView {
        name: rec.name,
        full_name: rec.full_name,
        addresses: rec.addresses,
        login_disabled: rec.login_disabled.unwrap_or_default(),
        storage_used,
        destinations,
    })
}

/// One session as `Sessions()` and `AccountSessions(account)` return it.
/// Times are unix milliseconds; IPs are strings (empty when unknown).
#[derive(Serialize)]
pub(super) struct SessionView {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Kind")]
    kind: &'static str,
    #[serde(rename = "LoginAddress")]
    login_address: String,
    #[serde(rename = "Created")]
    created: i64,
    #[serde(rename = "LastUsed")]
    last_used: i64,
    #[serde(rename = "Expires")]
    expires: i64,
    #[serde(rename = "CreatedIP")]
    created_ip: String,
    #[serde(rename = "CreatedAgent")]
    created_agent: String,
    #[serde(rename = "LastIP")]
    last_ip: String,
    #[serde(rename = "LastAgent")]
    last_agent: String,
    #[serde(rename = "Current")]
    current: bool,
}

impl From<Listed> for SessionView {
    fn from(l: Listed) -> Self {
        let ip = |i: Option<std::net::IpAddr>| i.map(|i| i.to_string()).unwrap_or_default();
        SessionView {
            id: l.id.to_string(),
            kind: l.kind.name(),
            login_address: l.login_address,
            created: l.created,
            last_used: l.last_used,
            expires: l.expires,
            created_ip: ip(l.created_ip),
            created_agent: l.created_agent,
            last_ip: ip(l.last_ip),
            last_agent: l.last_agent,
            current: l.current,
        }
    }
}

/// One sign-in attempt as `LoginAttempts` returns it.
#[derive(Serialize)]
pub(super) struct AttemptView {
    #[serde(rename = "Time")]
    time: i64,
    #[serde(rename = "Kind")]
    kind: &'static str,
    #[serde(rename = "LoginAddress")]
    login_address: String,
    #[serde(rename = "IP")]
    ip: String,
    #[serde(rename = "UserAgent")]
    user_agent: String,
    #[serde(rename = "Result")]
    result: &'static str,
}

impl From<StoredAttempt> for AttemptView {
    fn from(a: StoredAttempt) -> Self {
        AttemptView {
            time: a.time,
            kind: Kind::from_code(a.record.kind).map_or("", Kind::name),
            login_address: a.record.login_address,
            ip: a.record.ip.map(|i| i.to_string()).unwrap_or_default(),
            user_agent: a.record.agent,
            result: a.record.result.name(),
        }
    }
}

/// Default number of attempts when `limit` is 0.
pub(super) const DEFAULT_ATTEMPTS: u32 = 100;

/// An account's (or, with `""`, the admin's) attempts, newest first.
pub(super) async fn attempts(
    auth: &Auth,
    account: &str,
    limit: u32,
) -> Result<Vec<AttemptView>, ApiError> {
    let limit = if limit == 0 { DEFAULT_ATTEMPTS } else { limit };
    let list = auth
        .attempts
        .list(account, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|e| internal("listing login attempts", &e))?;
    Ok(list.into_iter().map(AttemptView::from).collect())
}

/// An edit's refusal as a `user:error`; storage failures as `server:error`.
pub(super) fn edit_error(e: EditError) -> ApiError {
    match e {
        EditError::Store(e) => internal("changing account", &e),
        e => ApiError::user(e.to_string()),
    }
}

/// A session failure: an unknown account is the user's error.
pub(super) fn session_error(e: SessionError) -> ApiError {
    match e {
        SessionError::UnknownAccount => ApiError::user("unknown account"),
        e => internal("session store", &e),
    }
}

pub(super) async fn call(c: &Call<'_>, function: &str, params: Params) -> Result<Reply, ApiError> {
    let me = authed(c)?;
    let auth = &c.services.auth;
    let sessions = &auth.sessions;
    match function {
        "Account" => {
            params.decode::<()>(function)?;
            let rec = sessions
                .account(&me.account)
                .await
                .map_err(|e| internal("reading account", &e))?
                .ok_or_else(|| ApiError::user("account no longer exists"))?;
            Reply::result(&account_view(auth, rec).await?)
        }
        "AccountSaveFullName" => {
            let (name,): (String,) = params.decode(function)?;
            accounts::check_full_name(&name).map_err(ApiError::user)?;
            sessions
                .edit(&me.account, AccountEdit::FullName(name))
                .await
                .map_err(edit_error)?;
            Reply::result(&())
        }
        "DestinationSave" => {
            let (dest, old, new): (String, DestinationView, DestinationView) =
                params.decode(function)?;
            let address = accounts::normalize_address(&dest)
                .map_err(|_| ApiError::user(EditError::UnknownDestination.to_string()))?;
            let new = Destination::from(new);
            accounts::check_destination(&new).map_err(ApiError::user)?;
            let edit = AccountEdit::Destination {
                address,
                old: old.into(),
                new,
            };
            sessions.edit(&me.account, edit).await.map_err(edit_error)?;
            Reply::result(&())
        }
        "SetPassword" => {
            let (password,): (String,) = params.decode(function)?;
            let password = credentials::check_new(&password).map_err(password_error)?;
            let phc = auth
                .hasher
                .hash(password)
                .await
                .map_err(|e| internal("hashing password", &e))?;
            sessions
                .set_password(&me.account, phc, Some(me.token.hash()))
                .await
                .map_err(|e| internal("setting password", &e))?;
            Reply::result(&())
        }
        "GeneratePassword" => {
            params.decode::<()>(function)?;
            let t = Token::generate().map_err(|e| internal("generating password", &e))?;
            Reply::result(&t.expose())
        }
        "Sessions" => {
            params.decode::<()>(function)?;
            let list = sessions
                .list(&me.account, Some(me.token.hash()))
                .await
                .map_err(session_error)?;
            let out: Vec<SessionView> = list.into_iter().map(SessionView::from).collect();
            Reply::result(&out)
        }
        "SessionRevoke" => {
            let (id,): (String,) = params.decode(function)?;
            let unknown = || ApiError::user("unknown session");
            let id: u64 = id.parse().map_err(|_| unknown())?;
            if !sessions
                .revoke_id(&me.account, id)
                .await
                .map_err(session_error)?
            {
                return Err(unknown());
            }
            Reply::result(&())
        }
        "SessionRevokeOthers" => {
            params.decode::<()>(function)?;
            let n = sessions
                .revoke_all(&me.account, Some(me.token.hash()))
                .await
                .map_err(session_error)?;
            Reply::result(&n)
        }
        "LoginAttempts" => {
            let (limit,): (u32,) = params.decode(function)?;
            Reply::result(&attempts(auth, &me.account, limit).await?)
        }
        "ImportAbort" => {
            let (token,): (String,) = params.decode(function)?;
            c.services
                .mail
                .abort(&me.account, &token)
                .await
                .map_err(|e| e.to_api())?;
            Reply::result(&())
        }
        "Types" => {
            params.decode::<()>(function)?;
            Reply::result(&serde_json::json!({ "Token": "" }))
        }
        _ => Err(bad_function(function)),
    }
}

/// A refused password as a `user:error`; a hashing failure as `server:error`.
pub(super) fn password_error(e: PasswordError) -> ApiError {
    match e {
        PasswordError::Hashing | PasswordError::BadCost => internal("hashing password", &e),
        e => ApiError::user(e.to_string()),
    }
}

/// Logs an internal error once and hides it from the client.
pub(super) fn internal(what: &str, e: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "{what}");
    ApiError::server()
}
