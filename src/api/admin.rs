//! Functions of the admin interface.

use serde::Serialize;

use super::account::internal;
use super::{Call, Reply, bad_function};
use crate::protocol::sherpa::{ApiError, Params};
use crate::store;

/// One entry of `Accounts()`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct AccountSummary {
    name: String,
    login_disabled: String,
}

pub(super) async fn call(c: &Call<'_>, function: &str, params: Params) -> Result<Reply, ApiError> {
    match function {
        "Accounts" => {
            params.decode::<()>(function)?;
            let db = c.services.auth.stores.accounts.clone();
            let list = store::blocking(move || store::accounts::list(&db))
                .await
                .map_err(|e| internal("listing accounts", &e))?;
            let out: Vec<AccountSummary> = list
                .into_iter()
                .map(|a| AccountSummary {
                    name: a.name,
                    login_disabled: a.login_disabled.unwrap_or_default(),
                })
                .collect();
            Reply::result(&out)
        }
        _ => Err(bad_function(function)),
    }
}
