//! Authentication of web requests: the ordered session check, Login and Logout.
//!
//! Owns the second, asynchronous half of the check (session lookup, rate
//! limiter, bad-auth delay, metrics) and the sign-in protocol, on top of the
//! pure [`crate::protocol::check`]. The order of a check:
//!
//! 1. CSRF value present when required, else `user:noAuth`;
//! 2. session cookie present, else `user:noAuth`;
//! 3. client IP known, else `user:noAuth`;
//! 4. cookie value well formed, else a counted failure (`malformed session`);
//! 5. the session actor: valid → served (and the client's failure count is
//!    reset if it has one); invalid → a counted failure.
//!
//! A counted failure asks the rate limiter first: a limited client gets HTTP
//! 429 with `Retry-After`; otherwise the answer waits the bad-auth delay (an
//! async sleep holding no lock and no actor) and is `user:badAuth`. Unlike the
//! seeds, the limiter is not consulted before a *valid* session is served: a
//! person signed in behind a NAT keeps working while another device there is
//! locked out, and the common case costs one atomic load instead of an actor
//! round trip.
//!
//! Never: logs a token, cookie or password; answers before a new session is
//! durable.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::admin::AdminHandle;
use crate::attempts::{Attempt, LoginAttemptsHandle};
use crate::credentials::Hasher;
use crate::protocol::check::{self, Csrf, Failure, login_disabled_message};
use crate::protocol::cookie::{self, Lifetime};
use crate::protocol::sherpa::{ApiError, Code};
use crate::protocol::{Interface, Kind, RequestView};
use crate::ratelimit::RateLimiterHandle;
use crate::sessions::{Client, Early, EarlySession, SessionError, SessionsHandle};
use crate::store::codec::AttemptResult;
use crate::store::{self, Stores};
use crate::telemetry;
use crate::token::{Token, ct_eq_str};

/// The services authentication needs.
#[derive(Clone, Debug)]
pub struct Auth {
    /// Account (webaccount, webmail) sessions.
    pub sessions: SessionsHandle,
    /// Admin sessions.
    pub admin: AdminHandle,
    /// Failed-auth rate limiter.
    pub limiter: RateLimiterHandle,
    /// Password hashing.
    pub hasher: Hasher,
    /// Databases.
    pub stores: Stores,
    /// Delay before answering a failed authentication.
    pub bad_auth_delay: Duration,
    /// Sign-in attempts of known accounts and of the admin.
    pub attempts: LoginAttemptsHandle,
}

/// An authenticated request.
#[derive(Debug)]
pub struct Authed {
    /// The interface kind.
    pub kind: Kind,
    /// The account; empty for the admin.
    pub account: String,
    /// The session token presented.
    pub token: Token,
    /// Login address of the session (empty for the admin).
    pub login_address: Arc<str>,
    /// Client IP.
    pub ip: IpAddr,
}

/// Why a request was not authenticated.
#[derive(Debug)]
pub enum Refused {
    /// The protocol's `user:noAuth`/`user:badAuth` answer.
    Failure(Failure),
    /// The client is rate limited: HTTP 429.
    RateLimited(Duration),
    /// Our fault (logged here, once).
    Internal,
}

/// A successful Login: the CSRF token to return and the cookies to set.
#[derive(Debug)]
pub struct LoginOk {
    /// Returned by Login; the client sends it as `x-mox-csrf`.
    pub csrf: Token,
    /// `Set-Cookie` values: the session cookie and the login cookie's deletion.
    pub cookies: Vec<String>,
}

/// Cuts a user agent to what sessions keep.
fn client(ip: Option<IpAddr>, agent: &str) -> Client {
    Client::new(ip, agent)
}

impl Auth {
    /// Checks a request's session on an interface, in the protocol's order.
    /// The session cookie is read under the interface's name for this request
    /// (`__Secure-` prefixed when configured and over HTTPS); there is no
    /// check by kind alone, so no route can miss the prefixed name.
    pub async fn check_in(
        &self,
        iface: &Interface,
        view: &RequestView<'_>,
        csrf: Csrf<'_>,
        agent: &str,
    ) -> Result<Authed, Refused> {
        self.check_named(
            iface.kind,
            iface.session_cookie(view.https),
            view,
            csrf,
            agent,
        )
        .await
    }

    async fn check_named(
        &self,
        kind: Kind,
        session_cookie: &str,
        view: &RequestView<'_>,
        csrf: Csrf<'_>,
        agent: &str,
    ) -> Result<Authed, Refused> {
        let p = match check::presented_named(view, kind, session_cookie, csrf) {
            Ok(p) => p,
            Err((f, ip)) => return Err(Box::pin(self.refuse(kind, f, ip)).await),
        };
        let res = match kind {
            Kind::WebAdmin => self
                .admin
                .use_session(&p.token, p.csrf)
                .await
                .map(|r| r.map(|()| Arc::from(""))),
            _ => self
                .sessions
                .use_session(kind, &p.account, &p.token, p.csrf, Some(p.ip), agent)
                .await
                .map(|r| r.map(|u| u.login_address)),
        };
        match res {
            Ok(Ok(login_address)) => {
                self.limiter.reset_if_needed(p.ip);
                telemetry::auth(kind, "websession", "ok");
                Ok(Authed {
                    kind,
                    account: p.account,
                    token: p.token,
                    login_address,
                    ip: p.ip,
                })
            }
            Ok(Err(f)) => Err(Box::pin(self.refuse(kind, f, Some(p.ip))).await),
            Err(e) => {
                telemetry::auth(kind, "websession", "error");
                tracing::error!(kind = %kind, error = %e, "session check failed");
                Err(Refused::Internal)
            }
        }
    }

    /// Turns a failure into the answer: uncounted failures at once; counted
    /// ones through the rate limiter and the bad-auth delay. Callers box its
    /// future: a refusal is the rare answer, and its state (a limiter call, a
    /// timer) would otherwise sit in every check's future.
    async fn refuse(&self, kind: Kind, f: Failure, ip: Option<IpAddr>) -> Refused {
        let Some(ip) = ip.filter(|_| f.counts()) else {
            return Refused::Failure(f);
        };
        match self.limiter.attempt(ip).await {
            Ok(Err(limited)) => {
                telemetry::auth_ratelimited(kind);
                return Refused::RateLimited(limited.retry_after);
            }
            Ok(Ok(())) => {}
            Err(e) => tracing::warn!(error = %e, "rate limiter unavailable; answering without it"),
        }
        telemetry::auth(kind, "websession", f.metric_result());
        tokio::time::sleep(self.bad_auth_delay).await;
        Refused::Failure(f)
    }

    /// LoginPrep: a new login token and the cookie that carries it (30 s).
    pub fn login_prep(&self, iface: &Interface, https: bool) -> Result<(String, String), ApiError> {
        let token = Token::generate().map_err(|_| ApiError::server())?.expose();
        let c = cookie::set_cookie(
            iface.login_cookie(https),
            &token,
            &iface.prefix,
            Lifetime::MaxAge(30),
            https,
        );
        Ok((token, c))
    }

    /// Login: login-token check, rate limiter, credentials, new session.
    /// `username` is `None` for the admin interface.
    pub async fn login(
        &self,
        iface: &Interface,
        view: &RequestView<'_>,
        agent: &str,
        login_token: &str,
        username: Option<&str>,
        password: &str,
    ) -> Result<LoginOk, ApiError> {
        let kind = iface.kind;
        let cookie = cookie::find(&view.cookie_headers, iface.login_cookie(view.https));
        let matches = cookie.is_some_and(|c| !login_token.is_empty() && ct_eq_str(c, login_token));
        if !matches {
            let mut msg = "missing login token cookie".to_string();
            if view.forwarded && cookie.is_none() {
                msg.push_str(" (hint: reverse proxy must keep path, for login cookie)");
            }
            return Err(ApiError::user(msg));
        }
        let Some(ip) = view.client_ip else {
            return Err(ApiError::new(Code::NoAuth, Failure::NoClientIp.message()));
        };
        match self.limiter.attempt(ip).await {
            Ok(Err(_)) => {
                telemetry::auth_ratelimited(kind);
                return Err(ApiError::user("too many authentication attempts"));
            }
            Ok(Ok(())) => {}
            Err(e) => tracing::warn!(error = %e, "rate limiter unavailable; answering without it"),
        }

        // Account sessions are written while the password is verified, so
        // the durable write does not add to the sign-in's time.
        let early = (kind != Kind::WebAdmin).then(|| (kind, client(Some(ip), agent)));
        let verified = match username {
            None => self.verify_admin(password).await,
            Some(u) => self.verify_account(u, password, early).await,
        };
        let record = |account: &str, login_address: &str, result| {
            self.attempts.record(Attempt {
                account,
                kind,
                login_address,
                client: client(Some(ip), agent),
                result,
            })
        };
        match &verified {
            Ok(Verified::Ok {
                account,
                login_address,
                ..
            }) => record(account, login_address, AttemptResult::Ok),
            Ok(Verified::Disabled {
                account,
                login_address,
                ..
            }) => record(account, login_address, AttemptResult::Disabled),
            Ok(Verified::BadPassword {
                account,
                login_address,
                ..
            }) => record(account, login_address, AttemptResult::BadPassword),
            Ok(Verified::BadUser) | Err(_) => {}
        }
        let (account, login_address, early) = match verified {
            Ok(Verified::Ok {
                account,
                login_address,
                early,
            }) => (account, login_address, early),
            Ok(Verified::Disabled { reason, .. }) => {
                telemetry::auth(kind, "weblogin", "disabled");
                return Err(ApiError::new(
                    Code::LoginFailed,
                    login_disabled_message(&reason),
                ));
            }
            Ok(Verified::BadUser) => {
                telemetry::auth(kind, "weblogin", "baduser");
                tokio::time::sleep(self.bad_auth_delay).await;
                return Err(ApiError::new(Code::LoginFailed, "invalid credentials"));
            }
            Ok(Verified::BadPassword { early, .. }) => {
                telemetry::auth(kind, "weblogin", "badcreds");
                // The early session goes during the delay, which hides the
                // removal's time: a wrong password for an existing account
                // answers as late as one for an unknown account.
                let discard = async {
                    if let Some(e) = early {
                        e.discard().await;
                    }
                };
                tokio::join!(tokio::time::sleep(self.bad_auth_delay), discard);
                return Err(ApiError::new(Code::LoginFailed, "invalid credentials"));
            }
            Err(e) => {
                telemetry::auth(kind, "weblogin", "error");
                tracing::error!(kind = %kind, error = %e, "login failed");
                return Err(ApiError::server());
            }
        };
        telemetry::auth(kind, "weblogin", "ok");
        self.limiter.reset_if_needed(ip);

        let early = match early {
            Some(e) => e.finish().await,
            None => Ok(Early::NotAdded),
        };
        let new = match (kind, early) {
            (Kind::WebAdmin, _) => self.admin.add().await,
            (_, Ok(Early::Added(new))) => Ok(new),
            (_, Ok(Early::Gone)) => {
                return Err(ApiError::new(
                    Code::LoginFailed,
                    "sessions of the account were ended during sign-in, sign in again",
                ));
            }
            (_, Ok(Early::NotAdded)) => {
                self.sessions
                    .add(&account, kind, &login_address, client(Some(ip), agent))
                    .await
            }
            (_, Err(e)) => Err(e),
        }
        .map_err(|e| {
            tracing::error!(kind = %kind, error = %e, "adding session after login");
            ApiError::server()
        })?;
        let value = cookie::session_value(&new.token.expose(), &account);
        let cookies = vec![
            cookie::set_cookie(
                iface.session_cookie(view.https),
                &value,
                &iface.prefix,
                Lifetime::Session,
                view.https,
            ),
            cookie::set_cookie(
                iface.login_cookie(view.https),
                "",
                &iface.prefix,
                Lifetime::Delete,
                view.https,
            ),
        ];
        Ok(LoginOk {
            csrf: new.csrf,
            cookies,
        })
    }

    async fn verify_admin(&self, password: &str) -> Result<Verified, SessionError> {
        let phc = self.admin.password_hash().await?;
        Ok(if self.hasher.verify(password, phc).await {
            Verified::Ok {
                account: String::new(),
                login_address: String::new(),
                early: None,
            }
        } else {
            Verified::BadPassword {
                account: String::new(),
                login_address: String::new(),
                early: None,
            }
        })
    }

    /// Verifies an account's password. With `early` (the kind and client of
    /// a sign-in), the session is added while the password is hashed; the
    /// [`EarlySession`] comes back with [`Verified::Ok`] (to finish) or
    /// [`Verified::BadPassword`] (to discard). Dropped, it is removed.
    async fn verify_account(
        &self,
        username: &str,
        password: &str,
        early: Option<(Kind, Client)>,
    ) -> Result<Verified, SessionError> {
        let address = store::accounts::normalize_address(username).ok();
        let account = match address.clone() {
            Some(a) => {
                let db = self.stores.accounts.clone();
                store::blocking(move || store::accounts::account_for_address(&db, &a)).await?
            }
            None => None,
        };
        let rec = match &account {
            Some(name) => self.sessions.account(name).await?,
            None => None,
        };
        let Some(rec) = rec else {
            // Same work as for a known user, so timing does not tell.
            self.hasher.verify(password, None).await;
            return Ok(Verified::BadUser);
        };
        let login_address = address.clone().unwrap_or_default();
        let early = match (early, &rec.login_disabled) {
            (Some((kind, client)), None) => {
                Some(
                    self.sessions
                        .add_early(&rec.name, kind, &login_address, client),
                )
            }
            _ => None,
        };
        if !self
            .hasher
            .verify(password, Some(rec.password.clone()))
            .await
        {
            return Ok(Verified::BadPassword {
                account: rec.name,
                login_address,
                early,
            });
        }
        if let Some(reason) = rec.login_disabled {
            return Ok(Verified::Disabled {
                account: rec.name,
                login_address: address.unwrap_or_default(),
                reason,
            });
        }
        Ok(Verified::Ok {
            account: rec.name,
            login_address,
            early,
        })
    }

    /// Logout: removes the session and returns the cookie deletion.
    pub async fn logout(
        &self,
        iface: &Interface,
        authed: &Authed,
        https: bool,
    ) -> Result<String, ApiError> {
        let removed = match iface.kind {
            Kind::WebAdmin => self.admin.remove(&authed.token).await,
            _ => self.sessions.remove(&authed.account, &authed.token).await,
        };
        match removed {
            Ok(_) => Ok(cookie::set_cookie(
                iface.session_cookie(https),
                "",
                &iface.prefix,
                Lifetime::Delete,
                https,
            )),
            Err(e) => {
                tracing::error!(error = %e, "logout failed");
                Err(ApiError::server())
            }
        }
    }
}

enum Verified {
    Ok {
        account: String,
        login_address: String,
        /// The session added while the password was verified, if any.
        early: Option<EarlySession>,
    },
    Disabled {
        account: String,
        login_address: String,
        reason: String,
    },
    BadUser,
    BadPassword {
        account: String,
        login_address: String,
        /// The session added while the password was verified, to discard.
        early: Option<EarlySession>,
    },
}
