//! Functions of the admin interface, shared with the control socket.
//!
//! [`run`] is the one implementation of account administration: the admin
//! web API calls it for an authenticated admin session, and the control
//! socket ([`crate::control`]) for the command line, so the two cannot
//! drift. Every change to an existing account goes through its session
//! actor, so live sessions see it at once.
//!
//! Never: accepts a name without normalizing and validating it; shows a
//! token, token hash or password hash.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::Value;

use super::account::{
    SessionView, account_view, attempts, edit_error, internal, password_error, session_error,
};
use super::{Call, Reply, bad_function};
use crate::auth::Auth;
use crate::clock::{Clock as _, SystemClock};
use crate::credentials;
use crate::import::ImportHandle;
use crate::protocol::sherpa::{ApiError, Params};
use crate::store::accounts::{self, AccountEdit, CreateError, NameError};
use crate::store::codec::{AccountRecord, Destination};
use crate::store::{self, hooks};

/// Who calls [`run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// An admin web session.
    Web,
    /// The local control socket (the command line, as the data directory's
    /// owner): may also call [`CONTROL_ONLY`] functions.
    Control,
}

/// Functions only the control socket may call.
pub const CONTROL_ONLY: &[&str] = &["AdminSetPassword"];

/// One entry of `Accounts()`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct AccountSummary {
    name: String,
    login_disabled: String,
}

/// One entry of `RateLimits()`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RateLimitView {
    /// Subnet class, e.g. `192.0.2.0/26`.
    prefix: String,
    /// Window length in seconds (60 or 86400).
    window_seconds: u64,
    /// Failures counted in the window.
    count: u32,
    /// The class's limit in that window.
    limit: u32,
    /// Milliseconds until the window resets and the class is let in again.
    clears_in_ms: u64,
}

pub(super) async fn call(c: &Call<'_>, function: &str, params: Params) -> Result<Reply, ApiError> {
    let v = run_with(
        &c.services.auth,
        Some(&c.services.mail),
        Caller::Web,
        function,
        params,
    )
    .await?;
    Reply::result(&v)
}

fn name_error(what: &str, e: NameError) -> ApiError {
    ApiError::user(format!("{what}: {e}"))
}

fn account_name(s: &str) -> Result<String, ApiError> {
    accounts::normalize_account_name(s).map_err(|e| name_error("account name", e))
}

fn address(s: &str) -> Result<String, ApiError> {
    accounts::normalize_address(s).map_err(|e| name_error("address", e))
}

fn json<T: Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| internal("encoding result", &e))
}

async fn record(auth: &Auth, name: &str) -> Result<AccountRecord, ApiError> {
    auth.sessions
        .account(name)
        .await
        .map_err(session_error)?
        .ok_or_else(|| ApiError::user("unknown account"))
}

/// Runs an admin function; the result as JSON. Without a running server's
/// importer (the command line on a stopped server, where no import runs).
pub async fn run(
    auth: &Auth,
    caller: Caller,
    function: &str,
    params: Params,
) -> Result<Value, ApiError> {
    run_with(auth, None, caller, function, params).await
}

/// As [`run`], in a running server: removing an account also stops the
/// account's running import and waits for it to end
/// ([`ImportHandle::abort_account`]) before its mail is removed.
pub async fn run_with(
    auth: &Auth,
    mail: Option<&ImportHandle>,
    caller: Caller,
    function: &str,
    params: Params,
) -> Result<Value, ApiError> {
    if caller == Caller::Web && CONTROL_ONLY.contains(&function) {
        return Err(bad_function(function));
    }
    let sessions = &auth.sessions;
    match function {
        "Accounts" => {
            params.decode::<()>(function)?;
            let db = auth.stores.accounts.clone();
            let list = store::blocking(move || accounts::list(&db))
                .await
                .map_err(|e| internal("listing accounts", &e))?;
            let out: Vec<AccountSummary> = list
                .into_iter()
                .map(|a| AccountSummary {
                    name: a.name,
                    login_disabled: a.login_disabled.unwrap_or_default(),
                })
                .collect();
            json(&out)
        }
        "Account" => {
            let (name,): (String,) = params.decode(function)?;
            let rec = record(auth, &account_name(&name)?).await?;
            json(&account_view(auth, rec).await?)
        }
        "AccountAdd" => {
            let (name, addr): (String, String) = params.decode(function)?;
            let (name, addr) = (account_name(&name)?, address(&addr)?);
            let rec = AccountRecord {
                name,
                full_name: String::new(),
                destinations: [(addr.clone(), Destination::default())].into(),
                addresses: vec![addr],
                password: String::new(),
                login_disabled: None,
                created: SystemClock.now(),
            };
            let db = auth.stores.accounts.clone();
            let res = tokio::task::spawn_blocking(move || accounts::create(&db, &rec))
                .await
                .map_err(|e| internal("adding account", &e))?;
            match res {
                Ok(()) => json(&()),
                Err(CreateError::Store(e)) => Err(internal("adding account", &e)),
                Err(e) => Err(ApiError::user(e.to_string())),
            }
        }
        "AccountRemove" => {
            let (name,): (String,) = params.decode(function)?;
            let name = account_name(&name)?;
            if !sessions
                .remove_account(&name)
                .await
                .map_err(session_error)?
            {
                return Err(ApiError::user("unknown account"));
            }
            if let Some(mail) = mail {
                // On failure (timeout) the import cannot publish anyway.
                if let Err(e) = mail.abort_account(&name).await {
                    tracing::warn!(error = %e, "stopping a removed account's import");
                }
            }
            let (stores, n) = (auth.stores.clone(), name.clone());
            store::blocking(move || hooks::on_account_removed(&stores, &n))
                .await
                .map_err(|e| internal("removing account's mail", &e))?;
            json(&())
        }
        "AddressAdd" => {
            let (addr, name): (String, String) = params.decode(function)?;
            let (addr, name) = (address(&addr)?, account_name(&name)?);
            sessions
                .edit(&name, AccountEdit::AddAddress(addr))
                .await
                .map_err(edit_error)?;
            json(&())
        }
        "AddressRemove" => {
            let (addr,): (String,) = params.decode(function)?;
            let addr = address(&addr)?;
            let (db, a) = (auth.stores.accounts.clone(), addr.clone());
            let owner = store::blocking(move || accounts::account_for_address(&db, &a))
                .await
                .map_err(|e| internal("looking up address", &e))?
                .ok_or_else(|| ApiError::user("unknown address"))?;
            sessions
                .edit(&owner, AccountEdit::RemoveAddress(addr))
                .await
                .map_err(edit_error)?;
            json(&())
        }
        "SetPassword" => {
            let (name, password): (String, String) = params.decode(function)?;
            let name = account_name(&name)?;
            let password = credentials::check_new(&password).map_err(password_error)?;
            record(auth, &name).await?;
            let phc = auth
                .hasher
                .hash(password)
                .await
                .map_err(|e| internal("hashing password", &e))?;
            sessions
                .set_password(&name, phc, None)
                .await
                .map_err(session_error)?;
            json(&())
        }
        "AccountLoginDisabledSave" => {
            let (name, reason): (String, String) = params.decode(function)?;
            let name = account_name(&name)?;
            if reason.len() > accounts::MAX_FIELD || reason.chars().any(char::is_control) {
                return Err(ApiError::user(format!(
                    "reason must be at most {} bytes without control characters",
                    accounts::MAX_FIELD
                )));
            }
            let reason = (!reason.is_empty()).then_some(reason);
            sessions
                .edit(&name, AccountEdit::LoginDisabled(reason))
                .await
                .map_err(edit_error)?;
            json(&())
        }
        "AccountSessions" => {
            let (name,): (String,) = params.decode(function)?;
            let name = account_name(&name)?;
            let list = sessions.list(&name, None).await.map_err(session_error)?;
            let out: Vec<SessionView> = list.into_iter().map(SessionView::from).collect();
            json(&out)
        }
        "AccountSessionsRevoke" => {
            let (name,): (String,) = params.decode(function)?;
            let name = account_name(&name)?;
            let n = sessions
                .revoke_all(&name, None)
                .await
                .map_err(session_error)?;
            json(&n)
        }
        "RateLimits" => {
            params.decode::<()>(function)?;
            let list = auth
                .limiter
                .list()
                .await
                .map_err(|e| internal("listing rate limits", &e))?;
            let out: Vec<RateLimitView> = list
                .into_iter()
                .map(|l| RateLimitView {
                    prefix: l.prefix,
                    window_seconds: l.window.as_secs(),
                    count: l.count,
                    limit: l.limit,
                    clears_in_ms: u64::try_from(l.clears_in.as_millis()).unwrap_or(u64::MAX),
                })
                .collect();
            json(&out)
        }
        "RateLimitReset" => {
            let (ip,): (String,) = params.decode(function)?;
            let ip: IpAddr = ip
                .trim()
                .parse()
                .map_err(|_| ApiError::user(format!("not an IP address: {ip:?}")))?;
            auth.limiter
                .reset_prefix(ip)
                .await
                .map_err(|e| internal("resetting rate limit", &e))?;
            json(&())
        }
        "LoginAttempts" => {
            let (name, limit): (String, u32) = params.decode(function)?;
            let name = account_name(&name)?;
            let (db, n) = (auth.stores.accounts.clone(), name.clone());
            store::blocking(move || accounts::get(&db, &n))
                .await
                .map_err(|e| internal("reading account", &e))?
                .ok_or_else(|| ApiError::user("unknown account"))?;
            json(&attempts(auth, &name, limit).await?)
        }
        "AdminLoginAttempts" => {
            let (limit,): (u32,) = params.decode(function)?;
            json(&attempts(auth, "", limit).await?)
        }
        "AdminSetPassword" => {
            let (password,): (String,) = params.decode(function)?;
            let password = credentials::check_new(&password).map_err(password_error)?;
            let phc = auth
                .hasher
                .hash(password)
                .await
                .map_err(|e| internal("hashing password", &e))?;
            let (db, p) = (auth.stores.accounts.clone(), phc.clone());
            store::blocking(move || accounts::set_admin_password(&db, &p))
                .await
                .map_err(|e| internal("storing admin password", &e))?;
            auth.admin
                .set_password_hash(phc, None)
                .await
                .map_err(|e| internal("admin sessions", &e))?;
            json(&())
        }
        _ => Err(bad_function(function)),
    }
}
