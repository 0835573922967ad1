//! The command line: `postern localserve`, `postern serve`, and the
//! administration commands (`account`, `address`, `sessions`, `admin`,
//! `ratelimit`).
//!
//! Owns argument parsing (clap) and the subcommands' behaviour: creating the
//! local data directory with its demo account, printing what was made, running
//! until SIGINT or SIGTERM, then shutting down in order. The administration
//! commands are admin API functions ([`crate::api::admin::run`]): when no
//! server runs they start the services in-process on the database (no
//! listeners) and call it directly; when a server runs (redb's lock refuses
//! a second open with `DatabaseAlreadyOpen`) they send it to the server's
//! control socket ([`crate::control`]).
//!
//! Never: takes a password from argv.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use std::sync::Arc;
use std::time::Duration;

use crate::admin::{AdminHandle, AdminPolicy};
use crate::app::{AppHandle, StartOptions};
use crate::attempts::{LoginAttemptsHandle, Retention};
use crate::auth::Auth;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::credentials::{HashCost, Hasher};
use crate::ratelimit::{Limits as RateLimits, RateLimiterHandle};
use crate::sessions::{ActorTiming, Policy, SessionsHandle};
use crate::store::{StoreError, Stores};
use crate::{setup, telemetry};

/// Web sign-in, sessions and account self-service for mail hosts.
#[derive(Debug, Parser)]
#[command(name = "postern", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run locally with a generated configuration, a demo account and an admin
    /// password, in DIR (created if needed; restarting keeps all data).
    Localserve {
        /// Data directory.
        #[arg(long, default_value = "postern-local")]
        dir: PathBuf,
        /// Address to listen on (HTTP on port 1080, metrics on 1081).
        #[arg(long, default_value = "127.0.0.1")]
        ip: IpAddr,
    },
    /// Run with a configuration file.
    Serve {
        /// The TOML configuration file (see docs/configuration.md).
        #[arg(long)]
        config: PathBuf,
    },
    /// Manage accounts.
    Account {
        /// What to do.
        #[command(subcommand)]
        cmd: AccountCmd,
        /// Data directory (its database is DIR/data, or DIR itself if it holds accounts.redb).
        #[arg(long, global = true, default_value = "postern-local")]
        dir: PathBuf,
    },
    /// Manage login addresses.
    Address {
        /// What to do.
        #[command(subcommand)]
        cmd: AddressCmd,
        /// Data directory (its database is DIR/data, or DIR itself if it holds accounts.redb).
        #[arg(long, global = true, default_value = "postern-local")]
        dir: PathBuf,
    },
    /// List or revoke an account's web sessions.
    Sessions {
        /// What to do.
        #[command(subcommand)]
        cmd: SessionsCmd,
        /// Data directory (its database is DIR/data, or DIR itself if it holds accounts.redb).
        #[arg(long, global = true, default_value = "postern-local")]
        dir: PathBuf,
    },
    /// Administrator settings.
    Admin {
        /// What to do.
        #[command(subcommand)]
        cmd: AdminCmd,
        /// Data directory (its database is DIR/data, or DIR itself if it holds accounts.redb).
        #[arg(long, global = true, default_value = "postern-local")]
        dir: PathBuf,
    },
    /// Inspect or reset the failed-authentication rate limiter of a running server.
    Ratelimit {
        /// What to do.
        #[command(subcommand)]
        cmd: RatelimitCmd,
        /// Data directory (its database is DIR/data, or DIR itself if it holds accounts.redb).
        #[arg(long, global = true, default_value = "postern-local")]
        dir: PathBuf,
    },
    /// Import a zip or tgz of mbox files and maildirs into an account (a
    /// running server does it through its control socket; see docs/mail.md).
    Import {
        /// The account.
        account: String,
        /// The archive.
        file: PathBuf,
        /// Path prefix to remove from mailbox names.
        #[arg(long, default_value = "")]
        skip_prefix: String,
        /// Data directory (its database is DIR/data, or DIR itself if it holds accounts.redb).
        #[arg(long, default_value = "postern-local")]
        dir: PathBuf,
    },
    /// Export an account's mail to stdout (through the control socket if a server runs).
    Export {
        /// The account.
        account: String,
        /// mbox or maildir.
        #[arg(long)]
        format: String,
        /// tgz, zip, tar, or none (one plain mbox of one mailbox).
        #[arg(long)]
        archive: String,
        /// Only this mailbox and its children.
        #[arg(long, default_value = "")]
        mailbox: String,
        /// Data directory (its database is DIR/data, or DIR itself if it holds accounts.redb).
        #[arg(long, default_value = "postern-local")]
        dir: PathBuf,
    },
}

/// `postern account ...`
#[derive(Debug, Subcommand)]
pub enum AccountCmd {
    /// Create an account with one login address (no password yet: set one with set-password).
    Add {
        /// Account name.
        name: String,
        /// Login address, localpart@domain.
        address: String,
    },
    /// Remove an account with its addresses, sessions and login attempts.
    Remove {
        /// Account name.
        name: String,
    },
    /// List accounts (disabled ones with their reason).
    List,
    /// Show an account as JSON.
    Show {
        /// Account name.
        name: String,
    },
    /// Set an account's password (read from a prompt, or the first line of
    /// stdin); ends all its sessions.
    SetPassword {
        /// Account name.
        name: String,
    },
    /// Disable login; existing sessions stop working at once.
    Disable {
        /// Account name.
        name: String,
        /// Reason, shown to the account holder at sign-in.
        reason: String,
    },
    /// Enable login again.
    Enable {
        /// Account name.
        name: String,
    },
}

/// `postern address ...`
#[derive(Debug, Subcommand)]
pub enum AddressCmd {
    /// Add a login address to an account.
    Add {
        /// Login address, localpart@domain.
        address: String,
        /// Account name.
        account: String,
    },
    /// Remove a login address (not an account's last one).
    Remove {
        /// Login address.
        address: String,
    },
}

/// `postern sessions ...`
#[derive(Debug, Subcommand)]
pub enum SessionsCmd {
    /// List an account's sessions as JSON.
    List {
        /// Account name.
        account: String,
    },
    /// Revoke all of an account's sessions.
    Revoke {
        /// Account name.
        account: String,
    },
}

/// `postern admin ...`
#[derive(Debug, Subcommand)]
pub enum AdminCmd {
    /// Set the admin password (read from a prompt, or the first line of
    /// stdin); ends all admin sessions.
    SetPassword,
}

/// `postern ratelimit ...`
#[derive(Debug, Subcommand)]
pub enum RatelimitCmd {
    /// List the client subnets currently refused (empty when no server runs:
    /// the counts live in the server's memory).
    List,
    /// Clear the failure counts of every subnet class containing IP.
    Reset {
        /// Client IP address.
        ip: String,
    },
}

/// The demo account localserve creates.
pub const DEMO_ACCOUNT: &str = "demo";
/// Its login address.
pub const DEMO_ADDRESS: &str = "demo@localhost";
/// Its password.
pub const DEMO_PASSWORD: &str = "demodemo";
/// The admin password localserve sets.
pub const ADMIN_PASSWORD: &str = "adminadmin";

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Localserve { dir, ip } => localserve(&dir, ip).await,
        Command::Serve { config } => {
            let c = Config::load(&config)?;
            telemetry::init_logging(&c.log_level);
            let tls: Vec<bool> = c.listeners.iter().map(|l| l.tls.is_some()).collect();
            let app = AppHandle::start(c, StartOptions::default()).await?;
            for (a, tls) in app.addresses.iter().zip(tls) {
                let scheme = if tls { "https" } else { "http" };
                tracing::info!(address = %a, scheme, "listening");
                println!("listening on {scheme}://{a}/");
            }
            if let Some(m) = app.metrics_address {
                println!("metrics on http://{m}/metrics");
            }
            wait_and_shutdown(app).await
        }
        Command::Account { cmd, dir } => account_cmd(&dir, cmd).await,
        Command::Address { cmd, dir } => match cmd {
            AddressCmd::Add { address, account } => {
                admin_call(&dir, "AddressAdd", vec![address.into(), account.into()]).await?;
                Ok(())
            }
            AddressCmd::Remove { address } => {
                admin_call(&dir, "AddressRemove", vec![address.into()]).await?;
                Ok(())
            }
        },
        Command::Sessions { cmd, dir } => match cmd {
            SessionsCmd::List { account } => {
                let v = admin_call(&dir, "AccountSessions", vec![account.into()]).await?;
                println!("{}", serde_json::to_string_pretty(&v)?);
                Ok(())
            }
            SessionsCmd::Revoke { account } => {
                let v = admin_call(&dir, "AccountSessionsRevoke", vec![account.into()]).await?;
                println!("revoked {v} session(s)");
                Ok(())
            }
        },
        Command::Admin { cmd, dir } => match cmd {
            AdminCmd::SetPassword => {
                let pw = read_password("new admin password: ")?;
                admin_call(&dir, "AdminSetPassword", vec![pw.into()]).await?;
                Ok(())
            }
        },
        Command::Ratelimit { cmd, dir } => match cmd {
            RatelimitCmd::List => {
                let v = admin_call(&dir, "RateLimits", vec![]).await?;
                for l in v.as_array().into_iter().flatten() {
                    println!(
                        "{} window {}s count {}/{} clears in {}s",
                        l["Prefix"].as_str().unwrap_or_default(),
                        l["WindowSeconds"],
                        l["Count"],
                        l["Limit"],
                        l["ClearsInMs"].as_u64().unwrap_or_default().div_ceil(1000),
                    );
                }
                Ok(())
            }
            RatelimitCmd::Reset { ip } => {
                admin_call(&dir, "RateLimitReset", vec![ip.into()]).await?;
                Ok(())
            }
        },
        Command::Import {
            account,
            file,
            skip_prefix,
            dir,
        } => tokio::task::spawn_blocking(move || import_cmd(&dir, &account, &file, &skip_prefix))
            .await
            .context("import task")?,
        Command::Export {
            account,
            format,
            archive,
            mailbox,
            dir,
        } => tokio::task::spawn_blocking(move || {
            export_cmd(&dir, &account, &format, &archive, &mailbox)
        })
        .await
        .context("export task")?,
    }
}

async fn account_cmd(dir: &Path, cmd: AccountCmd) -> anyhow::Result<()> {
    match cmd {
        AccountCmd::Add { name, address } => {
            admin_call(dir, "AccountAdd", vec![name.into(), address.into()]).await?;
        }
        AccountCmd::Remove { name } => {
            admin_call(dir, "AccountRemove", vec![name.into()]).await?;
        }
        AccountCmd::List => {
            let v = admin_call(dir, "Accounts", vec![]).await?;
            for a in v.as_array().into_iter().flatten() {
                let name = a["Name"].as_str().unwrap_or_default();
                match a["LoginDisabled"].as_str().unwrap_or_default() {
                    "" => println!("{name}"),
                    r => println!("{name} (login disabled: {r})"),
                }
            }
        }
        AccountCmd::Show { name } => {
            let v = admin_call(dir, "Account", vec![name.into()]).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        AccountCmd::SetPassword { name } => {
            let pw = read_password(&format!("new password for {name}: "))?;
            admin_call(dir, "SetPassword", vec![name.into(), pw.into()]).await?;
        }
        AccountCmd::Disable { name, reason } => {
            anyhow::ensure!(!reason.is_empty(), "reason must not be empty");
            admin_call(
                dir,
                "AccountLoginDisabledSave",
                vec![name.into(), reason.into()],
            )
            .await?;
        }
        AccountCmd::Enable { name } => {
            admin_call(
                dir,
                "AccountLoginDisabledSave",
                vec![name.into(), "".into()],
            )
            .await?;
        }
    }
    Ok(())
}

/// The database directory for `--dir`: DIR itself if it holds
/// `accounts.redb`, else DIR/data (the localserve layout).
fn data_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.join("accounts.redb").exists() {
        return Ok(dir.to_path_buf());
    }
    let data = dir.join("data");
    anyhow::ensure!(
        data.join("accounts.redb").exists(),
        "no postern database in {} or {}",
        dir.display(),
        data.display()
    );
    Ok(data)
}

/// Runs an admin function on the data directory: directly on the database
/// when no server runs, else through the server's control socket.
async fn admin_call(
    dir: &Path,
    function: &str,
    params: Vec<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let data = data_dir(dir)?;
    let d = data.clone();
    let opened = tokio::task::spawn_blocking(move || Stores::open(&d)).await?;
    let stores = match opened {
        Ok(s) => s,
        Err(StoreError::Open(redb::DatabaseError::DatabaseAlreadyOpen)) => {
            return crate::control::request(&data, function, params).await;
        }
        Err(e) => return Err(anyhow::Error::new(e).context("opening the database")),
    };
    let cost = hash_cost(dir);
    let auth = offline_auth(stores, cost).await?;
    let res = crate::api::admin::run(
        &auth,
        crate::api::admin::Caller::Control,
        function,
        crate::protocol::sherpa::Params::from_values(params),
    )
    .await;
    let down = shutdown_auth(&auth).await;
    let v = res.map_err(|e| match e.code {
        crate::protocol::sherpa::Code::UserError => anyhow::anyhow!("{}", e.message),
        c => anyhow::anyhow!("{} ({})", e.message, c.as_str()),
    })?;
    down?;
    Ok(v)
}

/// The password hash cost of DIR/postern.toml if there is one, else the default.
fn hash_cost(dir: &Path) -> HashCost {
    Config::load(&dir.join("postern.toml"))
        .map(|c| c.password_hash)
        .unwrap_or_default()
}

/// The services on an opened database, without listeners (no server runs).
async fn offline_auth(stores: Stores, cost: HashCost) -> anyhow::Result<Auth> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let sessions = SessionsHandle::start(
        stores.accounts.clone(),
        clock.clone(),
        Policy::default(),
        ActorTiming::default(),
    )
    .await?;
    let db = stores.accounts.clone();
    let admin_password =
        crate::store::blocking(move || crate::store::accounts::admin_password(&db)).await?;
    let admin = AdminHandle::start(AdminPolicy::default(), admin_password, clock.clone()).await?;
    let limiter = RateLimiterHandle::spawn(RateLimits::default(), 1).await?;
    let attempts = LoginAttemptsHandle::start(
        stores.accounts.clone(),
        clock,
        Retention::default(),
        Duration::from_secs(1),
    )
    .await?;
    Ok(Auth {
        sessions,
        admin,
        limiter,
        hasher: Hasher::new(cost, 1)?,
        stores,
        bad_auth_delay: Duration::ZERO,
        attempts,
    })
}

async fn shutdown_auth(auth: &Auth) -> anyhow::Result<()> {
    let res = auth.sessions.shutdown().await;
    auth.admin.shutdown().await;
    auth.limiter.stop();
    auth.attempts.shutdown().await?;
    res?;
    Ok(())
}

/// Reads a password: from a prompt without echo when stdin is a terminal,
/// else the first line of stdin. Never from argv.
fn read_password(prompt: &str) -> anyhow::Result<String> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    if tty {
        eprint!("{prompt}");
        std::io::stderr().flush()?;
        let _ = std::process::Command::new("stty").arg("-echo").status();
    }
    let mut line = String::new();
    let res = stdin.lock().read_line(&mut line);
    if tty {
        let _ = std::process::Command::new("stty").arg("echo").status();
        eprintln!();
    }
    res.context("reading password")?;
    let pw = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line);
    anyhow::ensure!(!pw.is_empty(), "no password given on stdin");
    Ok(pw.to_string())
}

/// The stores, or `None` when a server runs on the data directory (redb's
/// lock), whose control socket then serves the command.
fn open_or_running(dir: &Path) -> anyhow::Result<(PathBuf, Option<Stores>)> {
    let data = data_dir(dir)?;
    match Stores::open(&data) {
        Ok(s) => Ok((data, Some(s))),
        Err(StoreError::Open(redb::DatabaseError::DatabaseAlreadyOpen)) => Ok((data, None)),
        Err(e) => Err(anyhow::Error::new(e).context(format!("opening {}", data.display()))),
    }
}

fn import_cmd(dir: &Path, account: &str, file: &Path, skip_prefix: &str) -> anyhow::Result<()> {
    use crate::import::local;
    let (data, stores) = open_or_running(dir)?;
    let Some(stores) = stores else {
        // The server opens the file itself: give it an absolute path.
        let abs = std::fs::canonicalize(file).map_err(|source| local::LocalError::Read {
            path: file.display().to_string(),
            source,
        })?;
        crate::import::remote::import_via(&data, account, &abs, skip_prefix)?;
        eprintln!("import done");
        return Ok(());
    };
    let f = local::open(file)?;
    let bar = local::BarSink::new(f.try_clone().context("archive handle")?)?;
    local::import_file(
        &stores,
        account,
        f,
        skip_prefix,
        crate::mail::MailLimits::default(),
        SystemClock.now(),
        &bar,
    )?;
    eprintln!("import done");
    Ok(())
}

fn export_cmd(
    dir: &Path,
    account: &str,
    format: &str,
    archive: &str,
    mailbox: &str,
) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    let spec =
        crate::import::remote::export_spec(format, archive, mailbox).map_err(anyhow::Error::msg)?;
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        anyhow::bail!("refusing to write an archive to a terminal: redirect stdout to a file");
    }
    let (data, stores) = open_or_running(dir)?;
    let mut out = std::io::BufWriter::new(stdout.lock());
    let Some(stores) = stores else {
        let n =
            crate::import::remote::export_via(&data, account, format, archive, mailbox, &mut out)?;
        std::io::Write::flush(&mut out)?;
        eprintln!("exported {n} messages");
        return Ok(());
    };
    let n = crate::import::local::export_to(&stores, account, &spec, out)?;
    eprintln!("exported {n} messages");
    Ok(())
}

async fn localserve(dir: &Path, ip: IpAddr) -> anyhow::Result<()> {
    let config_path = dir.join("postern.toml");
    let fresh = !config_path.exists();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut config = Config::local(ip, PathBuf::from("data"));
    let tls_dir = dir.join("tls");
    crate::http::tls::self_signed(&tls_dir, &["localhost".into(), ip.to_string()])
        .context("making the self-signed certificate")?;
    let mut https = config.listeners[0].clone();
    https.address = std::net::SocketAddr::new(ip, 1443);
    https.tls = Some(crate::config::TlsConfig {
        cert: PathBuf::from("tls/cert.pem"),
        key: PathBuf::from("tls/key.pem"),
    });
    config.listeners.push(https);
    let text = toml::to_string(&config).context("writing configuration")?;
    std::fs::write(
        &config_path,
        format!("# Generated by `postern localserve` at each start.\n{text}"),
    )
    .with_context(|| format!("writing {}", config_path.display()))?;
    let config = Config::load(&config_path)?;
    telemetry::init_logging(&config.log_level);

    let data = config.data_dir.clone();
    let cost = config.password_hash;
    let made = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let stores = Stores::open(&data)?;
        let mut made = Vec::new();
        if fresh {
            setup::create_account(
                &stores,
                DEMO_ACCOUNT,
                DEMO_ADDRESS,
                DEMO_PASSWORD,
                cost,
                SystemClock.now(),
            )?;
            made.push(format!(
                "account {DEMO_ACCOUNT:?}, login {DEMO_ADDRESS}, password {DEMO_PASSWORD}"
            ));
        }
        if crate::store::accounts::admin_password(&stores.accounts)?.is_none() {
            setup::set_admin_password(&stores, ADMIN_PASSWORD, cost)?;
            made.push(format!("admin password {ADMIN_PASSWORD}"));
        }
        Ok(made)
    })
    .await??;

    let app = AppHandle::start(config, StartOptions::default()).await?;
    let http = app.addresses[0];
    println!("postern localserve, data in {}", dir.display());
    for m in made {
        println!("created {m}");
    }
    println!("account: http://{http}/account/  (login {DEMO_ADDRESS} / {DEMO_PASSWORD})");
    println!("admin:   http://{http}/admin/    (password {ADMIN_PASSWORD})");
    println!("webmail: http://{http}/webmail/");
    if let Some(https) = app.addresses.get(1) {
        println!(
            "https:   https://{https}/account/ (self-signed certificate {})",
            tls_dir.join("cert.pem").display()
        );
    }
    if let Some(m) = app.metrics_address {
        println!("metrics: http://{m}/metrics");
    }
    println!("stop with ctrl-c");
    wait_and_shutdown(app).await
}

async fn wait_and_shutdown(app: AppHandle) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut hup) = signal(SignalKind::hangup()) {
            let stop = wait_for_signal();
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    _ = &mut stop => break,
                    _ = hup.recv() => {
                        // Errors are logged by reload_tls; the old certificate stays.
                        let _ = app.reload_tls();
                    }
                }
            }
            tracing::info!("shutting down");
            return app.shutdown().await;
        }
    }
    wait_for_signal().await;
    tracing::info!("shutting down");
    app.shutdown().await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
