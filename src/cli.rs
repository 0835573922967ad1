//! The command line: `postern localserve` and `postern serve`.
//!
//! Owns argument parsing (clap) and the subcommands' behaviour: creating the
//! local data directory with its demo account, printing what was made, running
//! until SIGINT or SIGTERM, then shutting down in order.
//!
//! Never: takes a password from argv.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::app::{AppHandle, StartOptions};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::store::Stores;
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
    /// Import a zip or tgz of mbox files and maildirs into an account (the
    /// server must be stopped; see docs/mail.md).
    Import {
        /// The account.
        account: String,
        /// The archive.
        file: PathBuf,
        /// Path prefix to remove from mailbox names.
        #[arg(long, default_value = "")]
        skip_prefix: String,
        /// Data directory.
        #[arg(long, default_value = "postern-local/data")]
        dir: PathBuf,
    },
    /// Export an account's mail to stdout (the server must be stopped).
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
        /// Data directory.
        #[arg(long, default_value = "postern-local/data")]
        dir: PathBuf,
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
            let app = AppHandle::start(c, StartOptions::default()).await?;
            for a in &app.addresses {
                tracing::info!(address = %a, "listening");
            }
            wait_and_shutdown(app).await
        }
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

fn open_stores(dir: &Path) -> anyhow::Result<Stores> {
    if !dir.join("accounts.redb").exists() {
        anyhow::bail!("no data directory at {} (use --dir)", dir.display());
    }
    Stores::open(dir).with_context(|| {
        format!(
            "opening {} (is a server running on it? stop it first)",
            dir.display()
        )
    })
}

fn import_cmd(dir: &Path, account: &str, file: &Path, skip_prefix: &str) -> anyhow::Result<()> {
    use crate::import::local;
    let stores = open_stores(dir)?;
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
    let recursive = if archive == "none" { "" } else { "on" };
    let fields: Vec<(String, String)> = [
        ("format", format),
        ("archive", archive),
        ("mailbox", mailbox),
        ("recursive", recursive),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let spec = crate::mail::export::ExportSpec::from_form(&fields).map_err(anyhow::Error::msg)?;
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        anyhow::bail!("refusing to write an archive to a terminal: redirect stdout to a file");
    }
    let stores = open_stores(dir)?;
    let out = std::io::BufWriter::new(stdout.lock());
    let n = crate::import::local::export_to(&stores, account, &spec, out)?;
    eprintln!("exported {n} messages");
    Ok(())
}

async fn localserve(dir: &Path, ip: IpAddr) -> anyhow::Result<()> {
    let config_path = dir.join("postern.toml");
    let fresh = !config_path.exists();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let config = Config::local(ip, PathBuf::from("data"));
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
    if let Some(m) = app.metrics_address {
        println!("metrics: http://{m}/metrics");
    }
    println!("stop with ctrl-c");
    wait_and_shutdown(app).await
}

async fn wait_and_shutdown(app: AppHandle) -> anyhow::Result<()> {
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
