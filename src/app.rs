//! Starting and stopping one postern instance.
//!
//! Owns the start-up order (open the databases, start the actors, bind the
//! listeners, serve) and the shutdown order (stop accepting, let requests
//! finish, write pending session extensions, stop the actors, close the
//! databases). [`AppHandle`] is what `main` and the integration tests hold.
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
use crate::auth::Auth;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Limits};
use crate::credentials::Hasher;
use crate::http::server::{ServerOpts, serve};
use crate::http::{self, ListenerCtx};
use crate::import::ImportHandle;
use crate::ratelimit::{Limits as RateLimits, RateLimiterHandle};
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
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// How long in-flight requests get at shutdown.
const GRACE: Duration = Duration::from_secs(10);

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
        let sessions = SessionsHandle::start(
            stores.accounts.clone(),
            opts.clock.clone(),
            Policy::default(),
            opts.timing,
        )
        .await
        .context("starting session supervisor")?;
        let db = stores.accounts.clone();
        let admin_password = store::blocking(move || store::accounts::admin_password(&db)).await?;
        let admin = AdminHandle::start(AdminPolicy::default(), admin_password, opts.clock.clone())
            .await
            .context("starting admin sessions")?;
        let limiter = RateLimiterHandle::spawn(RateLimits::default(), 4)
            .await
            .context("starting rate limiter")?;
        let auth = Auth {
            sessions,
            admin,
            limiter,
            hasher,
            stores,
            bad_auth_delay: Duration::from_millis(config.bad_auth_delay_ms),
        };
        let mail = ImportHandle::start_actor(
            auth.stores.mail.clone(),
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
        for l in &config.listeners {
            let listener = TcpListener::bind(l.address)
                .await
                .with_context(|| format!("listening on {}", l.address))?;
            addresses.push(listener.local_addr()?);
            let lctx = Arc::new(ListenerCtx::new(l.interfaces(), false));
            let services = services.clone();
            let svc = move |peer, req| http::handle(services.clone(), lctx.clone(), peer, req);
            tasks.spawn(serve(listener, server_opts, rx.clone(), svc));
        }
        let mut metrics_address = None;
        if let Some(addr) = config.metrics_address {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr}"))?;
            metrics_address = Some(listener.local_addr()?);
            let handle = crate::telemetry::recorder();
            let svc = move |_peer, req: hyper::Request<hyper::body::Incoming>| {
                let r = http::metrics::handle(&handle, &req);
                async move { r }
            };
            tasks.spawn(serve(listener, server_opts, rx.clone(), svc));
        }
        Ok(AppHandle {
            addresses,
            metrics_address,
            services,
            shutdown: tx,
            tasks,
        })
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
        res.context("writing session extensions at shutdown")
    }
}
