//! Functions of the account interface.

use serde::Serialize;

use super::{Call, Reply, authed, bad_function};
use crate::credentials::{self, PasswordError};
use crate::protocol::sherpa::{ApiError, Params};

/// What `Account()` returns.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct AccountView {
    name: String,
    full_name: String,
    addresses: Vec<String>,
    login_disabled: String,
}

pub(super) async fn call(c: &Call<'_>, function: &str, params: Params) -> Result<Reply, ApiError> {
    let me = authed(c)?;
    let sessions = &c.services.auth.sessions;
    match function {
        "Account" => {
            params.decode::<()>(function)?;
            let rec = sessions
                .account(&me.account)
                .await
                .map_err(|e| internal("reading account", &e))?
                .ok_or_else(|| ApiError::user("account no longer exists"))?;
            Reply::result(&AccountView {
                name: rec.name,
                full_name: rec.full_name,
                addresses: rec.addresses,
                login_disabled: rec.login_disabled.unwrap_or_default(),
            })
        }
        "SetPassword" => {
            let (password,): (String,) = params.decode(function)?;
            let password = credentials::check_new(&password).map_err(password_error)?;
            let phc = c
                .services
                .auth
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
