//! Starting and stopping one postern instance.
//!
//! Owns the start-up order (open the databases, start the actors, load TLS
//! certificates, bind the listeners — plain, TLS, forwarded — serve) and the
//! shutdown order: stop accepting, let in-flight requests finish (at most
//! [`GRACE`]), write pending session extensions, stop the admin and
//! rate-limiter actors; the databases close when the last handle is dropped
//! (at process exit for the binary). [`AppHandle`] is what `main` and the
//! integration tests hold; [`AppHandle::reload_tls`] is what SIGHUP calls.
//!
//! Never: keeps global state: two instances in one process (tests) are
//! independent, except for the process-wide metrics recorder.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::admin::{AdminHandle, AdminPolicy};
use crate::attempts::{LoginAttemptsHandle, Retention};
use crate::auth::Auth;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Limits};
use crate::credentials::Hasher;
use crate::http::server::{ServerOpts, serve, serve_tls};
use crate::http::{self, ListenerCtx};
use crate::import::ImportHandle;
use crate::ratelimit::RateLimiterHandle;
use crate::sessions::{ActorTiming, Policy, SessionsHandle};
use crate::store::{self, Stores};

/// What request handlers use.
#[derive(Debug)]
pub struct Services {
    /// Authentication and sessions.
    pub auth: Auth,
    /// Request limits.
    pub limits: Limits,
    /// Mail import and export.
    pub mail: ImportHandle,
}

/// Start-up choices that are not configuration: what tests change.
#[derive(Clone)]
pub struct StartOptions {
    /// The wall clock (a `ManualClock` in tests).
    pub clock: Arc<dyn Clock>,
    /// Session actor timing.
    pub timing: ActorTiming,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            clock: Arc::new(SystemClock),
            timing: ActorTiming::default(),
        }
    }
}

/// A running instance.
pub struct AppHandle {
    /// Bound address of each configured listener, in configuration order.
    pub addresses: Vec<SocketAddr>,
    /// Bound address of the metrics listener.
    pub metrics_address: Option<SocketAddr>,
    /// The services (tests inspect them).
    pub services: Arc<Services>,
    /// Certificates of the TLS listeners, reloaded by [`AppHandle::reload_tls`].
    tls: Vec<Arc<crate::http::tls::ReloadableTls>>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// How long in-flight requests get at shutdown.
pub const GRACE: Duration = Duration::from_secs(10);

impl AppHandle {
    /// Starts an instance: databases, actors, listeners.
    pub async fn start(config: Config, opts: StartOptions) -> anyhow::Result<AppHandle> {
        config.validate()?;
        let dir = config.data_dir.clone();
        let stores = store::blocking(move || Stores::open(&dir))
            .await
            .context("opening databases")?;
        let hasher = Hasher::new(
            config.password_hash,
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        )
        .context("password hashing")?;
        let (idle, max) = config.sessions.webaccount.millis();
        let (webmail_idle, webmail_max) = config.sessions.webmail.millis();
        let policy = Policy {
            idle,
            max,
            webmail_idle,
            webmail_max,
            ..Policy::default()
        };
        let sessions = SessionsHandle::start(
            stores.accounts.clone(),
            opts.clock.clone(),
            policy,
            opts.timing,
        )
        .await
        .context("starting session supervisor")?;
        let db = stores.accounts.clone();
        let admin_password = store::blocking(move || store::accounts::admin_password(&db)).await?;
        let (idle, max) = config.sessions.webadmin.millis();
        let admin_policy = AdminPolicy {
            idle,
            max,
            ..AdminPolicy::default()
        };
        let admin = AdminHandle::start(admin_policy, admin_password, opts.clock.clone())
            .await
            .context("starting admin sessions")?;
        let limiter = RateLimiterHandle::spawn(config.ratelimit.limits(), 4)
            .await
            .context("starting rate limiter")?
            .with_allowlist(config.ratelimit.allowlist.clone());
        let attempts = LoginAttemptsHandle::start(
            stores.accounts.clone(),
            opts.clock.clone(),
            Retention::default(),
            Duration::from_secs(1),
        )
        .await
        .context("starting login attempt writer")?;
        let auth = Auth {
            attempts,
            sessions,
            admin,
            limiter,
            hasher,
            stores,
            bad_auth_delay: Duration::from_millis(config.bad_auth_delay_ms),
        };
        let mail = ImportHandle::start_actor(
            auth.stores.mail.clone(),
            auth.stores.accounts.clone(),
            config.mail,
            opts.clock.clone(),
            config.data_dir.join("tmp"),
        )
        .await
        .context("starting importer")?;
        let services = Arc::new(Services {
            auth,
            limits: config.limits,
            mail,
        });

        let (tx, rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let server_opts = ServerOpts {
            max_connections: config.limits.max_connections,
            header_timeout: Duration::from_secs(config.limits.header_timeout_secs),
            grace: GRACE,
        };
        let mut addresses = Vec::new();
        let mut tls_configs = Vec::new();
        for (i, l) in config.listeners.iter().enumerate() {
            let tls = match &l.tls {
                Some(t) => Some(Arc::new(
                    crate::http::tls::ReloadableTls::new(t.cert.clone(), t.key.clone())
                        .with_context(|| format!("listener[{i}].tls"))?,
                )),
                None => None,
            };
            let listener = TcpListener::bind(l.address)
                .await
                .with_context(|| format!("listening on {}", l.address))?;
            addresses.push(listener.local_addr()?);
            let mut lctx = ListenerCtx::new(l.interfaces(), tls.is_some());
            if l.forwarded {
                lctx = lctx.forwarded(l.trusted_proxies.clone());
            }
            let lctx = Arc::new(lctx);
            let services = services.clone();
            let svc = move |peer, req| http::handle(services.clone(), lctx.clone(), peer, req);
            match tls {
                Some(tls) => {
                    tls_configs.push(tls.clone());
                    tasks.spawn(serve_tls(listener, server_opts, tls, rx.clone(), svc));
                }
                None => {
                    tasks.spawn(serve(listener, server_opts, rx.clone(), svc));
                }
            }
        }
        // The control socket: created now that we hold the database lock. A
        // server that cannot create it (e.g. a path too long for a Unix
        // socket) still serves the web; only the command line cannot reach it.
        match crate::control::bind(&config.data_dir) {
            Ok((control, path)) => {
                tasks.spawn(crate::control::serve(
                    control,
                    path,
                    services.clone(),
                    rx.clone(),
                ));
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot create the control socket; the command line will not reach this server")
            }
        }
        let mut metrics_address = None;
        if let Some(addr) = config.metrics_address {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr}"))?;
            metrics_address = Some(listener.local_addr()?);
            let handle = crate::telemetry::recorder();
            let services = services.clone();
            let svc = move |_peer, req: hyper::Request<hyper::body::Incoming>| {
                let (handle, services) = (handle.clone(), services.clone());
                async move {
                    http::metrics::collect(&services).await;
                    http::metrics::handle(&handle, &req)
                }
            };
            tasks.spawn(serve(listener, server_opts, rx.clone(), svc));
        }
        Ok(AppHandle {
            addresses,
            metrics_address,
            services,
            tls: tls_configs,
            shutdown: tx,
            tasks,
        })
    }

    /// Reads every TLS listener's certificate and key again (SIGHUP). Open
    /// connections keep their certificate; a listener whose files are broken
    /// keeps the old ones and the error is returned.
    pub fn reload_tls(&self) -> anyhow::Result<()> {
        let mut first_err = None;
        for t in &self.tls {
            match t.reload() {
                Ok(()) => {
                    tracing::info!(cert = %t.cert_path().display(), "tls certificate reloaded")
                }
                Err(e) => {
                    tracing::error!(error = %e, "tls reload failed; keeping the old certificate");
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Stops accepting, lets in-flight requests finish, writes pending
    /// session extensions and stops the actors.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.services.mail.shutdown().await;
        while self.tasks.join_next().await.is_some() {}
        let auth = &self.services.auth;
        let res = auth.sessions.shutdown().await;
        auth.admin.shutdown().await;
        auth.limiter.stop();
        let attempts = auth.attempts.shutdown().await;
        res.context("writing session extensions at shutdown")?;
        attempts.context("writing login attempts at shutdown")
    }
}
