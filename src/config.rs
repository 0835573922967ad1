//! Configuration: the TOML file and its validation.
//!
//! Owns [`Config`], every field documented, read from a TOML file with unknown
//! keys refused, and [`Config::validate`], which names the offending key. The
//! reference for operators is docs/configuration.md.
//!
//! Never: reads the environment or has hidden defaults outside `Default` impls.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::credentials::HashCost;
use crate::protocol::forwarded::Cidr;
use crate::protocol::{Interface, Kind};

/// postern's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Data directory (databases). Relative paths are relative to the config
    /// file's directory.
    pub data_dir: PathBuf,
    /// HTTP listeners and the interfaces each serves.
    #[serde(rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// Address of the metrics listener (`GET /metrics`); none if absent.
    #[serde(default)]
    pub metrics_address: Option<SocketAddr>,
    /// Delay before answering a failed authentication, in milliseconds.
    #[serde(default = "default_bad_auth_delay_ms")]
    pub bad_auth_delay_ms: u64,
    /// argon2id cost for new password hashes.
    #[serde(default)]
    pub password_hash: HashCost,
    /// Request limits.
    #[serde(default)]
    pub limits: Limits,
    /// Log level when `RUST_LOG` is not set (`error`, `warn`, `info`, `debug`).
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// Session lifetimes per interface kind.
    #[serde(default)]
    pub sessions: SessionsConfig,
    /// The failed-auth rate limiter.
    #[serde(default)]
    pub ratelimit: RateLimitConfig,
    /// Mail import bounds (docs/mail.md).
    #[serde(default)]
    pub mail: crate::mail::MailLimits,
}

/// Session lifetimes of each interface kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsConfig {
    /// Account web interface (default: 24 h idle, 30 days absolute).
    #[serde(default = "SessionLifetime::account")]
    pub webaccount: SessionLifetime,
    /// Webmail (default: 24 h idle, 30 days absolute).
    #[serde(default = "SessionLifetime::account")]
    pub webmail: SessionLifetime,
    /// Admin interface (default: 12 h idle, 30 days absolute).
    #[serde(default = "SessionLifetime::admin")]
    pub webadmin: SessionLifetime,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            webaccount: SessionLifetime::account(),
            webmail: SessionLifetime::account(),
            webadmin: SessionLifetime::admin(),
        }
    }
}

/// How long sessions of one kind live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionLifetime {
    /// A session expires this many seconds after its last use.
    pub idle_secs: u64,
    /// A session expires this many seconds after sign-in, however much it is used.
    pub max_lifetime_secs: u64,
}

const DAY: u64 = 24 * 3600;

impl SessionLifetime {
    fn account() -> Self {
        SessionLifetime {
            idle_secs: DAY,
            max_lifetime_secs: 30 * DAY,
        }
    }
    fn admin() -> Self {
        SessionLifetime {
            idle_secs: DAY / 2,
            max_lifetime_secs: 30 * DAY,
        }
    }
    /// (idle, max) in milliseconds, as the session stores count.
    pub fn millis(&self) -> (i64, i64) {
        let ms = |s: u64| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
        (ms(self.idle_secs), ms(self.max_lifetime_secs))
    }
}

/// The failed-auth rate limiter's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Addresses and networks never limited (e.g. the host's own webmail
    /// proxy). Their failures are not counted either.
    #[serde(default)]
    pub allowlist: Vec<Cidr>,
    /// Most keys the limiter holds in total.
    #[serde(default = "default_max_entries")]
    pub max_entries: usize,
    /// The fixed windows; an attempt must fit in all of them. Default: 60 s
    /// with limits 10/30/90 and 86400 s with 50/150/450.
    #[serde(default = "default_windows", rename = "window")]
    pub windows: Vec<WindowConfig>,
}

/// One rate-limit window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// Window length in seconds.
    pub secs: u64,
    /// Failures allowed per window for the finest, middle and coarsest
    /// subnet class (IPv4 /32, /26, /21; IPv6 /64, /48, /32).
    pub limits: [u32; 3],
}

fn default_max_entries() -> usize {
    crate::ratelimit::Limits::default().max_entries
}

fn default_windows() -> Vec<WindowConfig> {
    crate::ratelimit::Limits::default()
        .windows
        .iter()
        .map(|w| WindowConfig {
            secs: w.window.as_secs(),
            limits: w.limits,
        })
        .collect()
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            allowlist: Vec::new(),
            max_entries: default_max_entries(),
            windows: default_windows(),
        }
    }
}

impl RateLimitConfig {
    /// The limiter's limits.
    pub fn limits(&self) -> crate::ratelimit::Limits {
        crate::ratelimit::Limits {
            windows: self
                .windows
                .iter()
                .map(|w| crate::ratelimit::WindowLimit {
                    window: std::time::Duration::from_secs(w.secs),
                    limits: w.limits,
                })
                .collect(),
            max_entries: self.max_entries,
        }
    }
}

fn default_bad_auth_delay_ms() -> u64 {
    1000
}

fn default_log_level() -> String {
    "info".into()
}

/// One HTTP listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Address and port to listen on.
    pub address: SocketAddr,
    /// Interfaces served, each under its own path prefix.
    #[serde(rename = "interface")]
    pub interfaces: Vec<InterfaceConfig>,
    /// Behind a reverse proxy: take the client IP from `X-Forwarded-For` and
    /// the scheme from `X-Forwarded-Proto`, when the peer is a trusted proxy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forwarded: bool,
    /// Addresses/networks of the reverse proxies whose headers are believed;
    /// required (non-empty) when `forwarded` is true.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<Cidr>,
    /// Serve HTTPS (HTTP/1.1 and HTTP/2) with this certificate and key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

/// Certificate and key of a TLS listener, PEM files, read at start and on SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, leaf first. Relative paths are relative to the
    /// config file's directory.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// One interface on a listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceConfig {
    /// `webaccount`, `webadmin` or `webmail`.
    pub kind: Kind,
    /// Path prefix, starting and ending with `/`.
    pub prefix: String,
    /// Over HTTPS, name the cookies `__Secure-<kind>login` and
    /// `__Secure-<kind>session` (browsers then refuse them without Secure).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secure_cookie_prefix: bool,
}

/// Bounds on what a client may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest API request body, in bytes.
    #[serde(default = "default_api_body")]
    pub api_body_bytes: usize,
    /// Most concurrent connections per listener; more are answered `503`
    /// with `Retry-After` and closed (docs/hardening.md).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request body, once its headers are in
    /// (a body trickling in is cut off with an error).
    #[serde(default = "default_body_timeout")]
    pub body_timeout_secs: u64,
}

fn default_api_body() -> usize {
    1024 * 1024
}
fn default_max_connections() -> usize {
    10_000
}
fn default_header_timeout() -> u64 {
    10
}
fn default_body_timeout() -> u64 {
    30
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            api_body_bytes: default_api_body(),
            max_connections: default_max_connections(),
            header_timeout_secs: default_header_timeout(),
            body_timeout_secs: default_body_timeout(),
        }
    }
}

/// The configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a value of the wrong type.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key.
        message: String,
    },
    /// A value is not acceptable.
    #[error("{key}: {message}")]
    Invalid {
        /// Dotted path of the key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let mut c = Config::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.into(),
                message,
            },
            e => e,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        if c.data_dir.is_relative() {
            c.data_dir = base.join(&c.data_dir);
        }
        for l in &mut c.listeners {
            if let Some(t) = &mut l.tls {
                t.cert = base.join(&t.cert);
                t.key = base.join(&t.key);
            }
        }
        Ok(c)
    }

    /// Parses and validates configuration text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let c: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        c.validate()?;
        Ok(c)
    }

    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.listeners.is_empty() {
            return Err(invalid("listener", "at least one listener is required"));
        }
        for (i, l) in self.listeners.iter().enumerate() {
            if l.interfaces.is_empty() {
                return Err(invalid(
                    format!("listener[{i}].interface"),
                    "at least one interface is required",
                ));
            }
            for (j, f) in l.interfaces.iter().enumerate() {
                let key = format!("listener[{i}].interface[{j}].prefix");
                let p = &f.prefix;
                if !p.starts_with('/') || !p.ends_with('/') {
                    return Err(invalid(key, "must start and end with \"/\""));
                }
                if p.bytes().any(|b| {
                    !b.is_ascii_graphic() || b == b';' || b == b',' || b == b'"' || b == b'\\'
                }) {
                    return Err(invalid(key, "must be plain ASCII without ; , \" or \\"));
                }
                if l.interfaces[..j].iter().any(|o| o.prefix == *p) {
                    return Err(invalid(key, "used twice on this listener"));
                }
                if f.secure_cookie_prefix && l.tls.is_none() && !l.forwarded {
                    return Err(invalid(
                        format!("listener[{i}].interface[{j}].secure_cookie_prefix"),
                        "needs HTTPS: a tls listener or a forwarded one",
                    ));
                }
            }
            if l.forwarded && l.trusted_proxies.is_empty() {
                return Err(invalid(
                    format!("listener[{i}].trusted_proxies"),
                    "a forwarded listener needs at least one trusted proxy",
                ));
            }
            if !l.forwarded && !l.trusted_proxies.is_empty() {
                return Err(invalid(
                    format!("listener[{i}].trusted_proxies"),
                    "only used with forwarded = true",
                ));
            }
            if let Some(t) = &l.tls {
                if t.cert.as_os_str().is_empty() {
                    return Err(invalid(format!("listener[{i}].tls.cert"), "empty path"));
                }
                if t.key.as_os_str().is_empty() {
                    return Err(invalid(format!("listener[{i}].tls.key"), "empty path"));
                }
            }
        }
        for (kind, s) in [
            ("webaccount", self.sessions.webaccount),
            ("webmail", self.sessions.webmail),
            ("webadmin", self.sessions.webadmin),
        ] {
            if s.idle_secs < 60 {
                return Err(invalid(format!("sessions.{kind}.idle_secs"), "at least 60"));
            }
            if s.max_lifetime_secs < s.idle_secs {
                return Err(invalid(
                    format!("sessions.{kind}.max_lifetime_secs"),
                    "at least idle_secs",
                ));
            }
            if s.max_lifetime_secs > 3650 * DAY {
                return Err(invalid(
                    format!("sessions.{kind}.max_lifetime_secs"),
                    "at most 3650 days",
                ));
            }
        }
        if self.ratelimit.windows.is_empty() {
            return Err(invalid("ratelimit.window", "at least one window"));
        }
        for (i, w) in self.ratelimit.windows.iter().enumerate() {
            if w.secs == 0 || w.secs > 30 * DAY {
                return Err(invalid(
                    format!("ratelimit.window[{i}].secs"),
                    "between 1 and 2592000 (30 days)",
                ));
            }
        }
        if self.ratelimit.max_entries < 100 {
            return Err(invalid("ratelimit.max_entries", "at least 100"));
        }
        if self.bad_auth_delay_ms > 60_000 {
            return Err(invalid("bad_auth_delay_ms", "at most 60000"));
        }
        if self.limits.api_body_bytes < 1024 {
            return Err(invalid("limits.api_body_bytes", "at least 1024"));
        }
        if self.limits.max_connections == 0 {
            return Err(invalid("limits.max_connections", "at least 1"));
        }
        if self.limits.header_timeout_secs == 0 {
            return Err(invalid("limits.header_timeout_secs", "at least 1"));
        }
        if self.limits.body_timeout_secs == 0 {
            return Err(invalid("limits.body_timeout_secs", "at least 1"));
        }
        let h = self.password_hash;
        if argon2::Params::new(h.memory_kib, h.iterations, h.parallelism, None).is_err() {
            return Err(invalid(
                "password_hash",
                "not valid argon2 parameters (memory_kib >= 8 * parallelism, iterations >= 1)",
            ));
        }
        if !["error", "warn", "info", "debug", "trace"].contains(&self.log_level.as_str()) {
            return Err(invalid(
                "log_level",
                "one of error, warn, info, debug, trace",
            ));
        }
        Ok(())
    }

    /// The configuration `localserve` writes: every interface on one listener
    /// at `ip:1080`, metrics at `ip:1081`.
    pub fn local(ip: std::net::IpAddr, data_dir: PathBuf) -> Config {
        Config {
            data_dir,
            listeners: vec![ListenerConfig {
                address: SocketAddr::new(ip, 1080),
                interfaces: vec![
                    InterfaceConfig {
                        kind: Kind::WebAccount,
                        prefix: "/account/".into(),
                        secure_cookie_prefix: false,
                    },
                    InterfaceConfig {
                        kind: Kind::WebAdmin,
                        prefix: "/admin/".into(),
                        secure_cookie_prefix: false,
                    },
                    InterfaceConfig {
                        kind: Kind::WebMail,
                        prefix: "/webmail/".into(),
                        secure_cookie_prefix: false,
                    },
                ],
                forwarded: false,
                trusted_proxies: Vec::new(),
                tls: None,
            }],
            metrics_address: Some(SocketAddr::new(ip, 1081)),
            bad_auth_delay_ms: default_bad_auth_delay_ms(),
            password_hash: HashCost::default(),
            limits: Limits::default(),
            log_level: default_log_level(),
            sessions: SessionsConfig::default(),
            ratelimit: RateLimitConfig::default(),
            mail: crate::mail::MailLimits::default(),
        }
    }
}

impl ListenerConfig {
    /// The listener's interfaces as the protocol sees them.
    pub fn interfaces(&self) -> Vec<Interface> {
        self.interfaces
            .iter()
            .map(|i| Interface {
                kind: i.kind,
                prefix: i.prefix.clone(),
                secure_cookie_prefix: i.secure_cookie_prefix,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_roundtrips_through_toml() {
        let c = Config::local("127.0.0.1".parse().expect("ip"), "data".into());
        let text = toml::to_string(&c).expect("toml");
        assert_eq!(Config::parse(&text).expect("parse"), c);
    }

    #[test]
    fn refuses_unknown_keys_and_names_bad_values() {
        let base = "data_dir = \"d\"\n[[listener]]\naddress = \"127.0.0.1:1\"\n[[listener.interface]]\nkind = \"webaccount\"\nprefix = \"/account/\"\n";
        assert!(Config::parse(base).is_ok());
        let e = Config::parse(&format!("bogus = 1\n{base}")).expect_err("unknown");
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = Config::parse(&base.replace("/account/", "account")).expect_err("prefix");
        assert!(
            e.to_string().starts_with("listener[0].interface[0].prefix"),
            "{e}"
        );
        let e = Config::parse(&base.replace("webaccount", "webfoo")).expect_err("kind");
        assert!(
            e.to_string().contains("webfoo") || e.to_string().contains("kind"),
            "{e}"
        );
        let e = Config::parse(&format!("bad_auth_delay_ms = 100000\n{base}")).expect_err("delay");
        assert!(e.to_string().starts_with("bad_auth_delay_ms"), "{e}");
        let e = Config::parse(&format!("{base}[limits]\nbody_timeout_secs = 0\n"))
            .expect_err("body timeout");
        assert!(e.to_string().starts_with("limits.body_timeout_secs"), "{e}");
        let c = Config::parse(&format!("{base}[limits]\nbody_timeout_secs = 2\n")).expect("ok");
        assert_eq!(c.limits.body_timeout_secs, 2);
        assert_eq!(Limits::default().body_timeout_secs, 30);
    }

    #[test]
    fn example_file_loads() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/postern.example.toml"
        ));
        let c = Config::load(path).expect("the documented example is valid");
        assert_eq!(c.listeners.len(), 2);
        assert!(c.listeners[0].forwarded);
        assert_eq!(c.listeners[0].trusted_proxies.len(), 2);
        assert!(c.listeners[0].interfaces[0].secure_cookie_prefix);
        let tls = c.listeners[1].tls.as_ref().expect("tls");
        assert_eq!(tls.cert, Path::new("/etc/postern/tls/fullchain.pem"));
        assert_eq!(c.sessions, SessionsConfig::default());
        assert_eq!(c.ratelimit.limits(), crate::ratelimit::Limits::default());
        assert_eq!(c.ratelimit.allowlist.len(), 2);
        assert_eq!(
            c.metrics_address,
            Some("127.0.0.1:1081".parse().expect("addr"))
        );
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let base = "data_dir = \"d\"\n[[listener]]\naddress = \"127.0.0.1:1\"\n[[listener.interface]]\nkind = \"webaccount\"\nprefix = \"/account/\"\n";
        let cases: &[(&str, &str)] = &[
            (
                "[sessions.webaccount]\nidle_secs = 10\nmax_lifetime_secs = 100\n",
                "sessions.webaccount.idle_secs",
            ),
            (
                "[sessions.webadmin]\nidle_secs = 7200\nmax_lifetime_secs = 3600\n",
                "sessions.webadmin.max_lifetime_secs",
            ),
            (
                "[sessions.webmail]\nidle_secs = 7200\n",
                "max_lifetime_secs",
            ),
            ("[sessions]\nwebfoo = 1\n", "webfoo"),
            (
                "[ratelimit]\nallowlist = [\"10.0.0.0/33\"]\n",
                "10.0.0.0/33",
            ),
            ("[ratelimit]\nwindow = []\n", "ratelimit.window"),
            (
                "[[ratelimit.window]]\nsecs = 0\nlimits = [1, 2, 3]\n",
                "ratelimit.window[0].secs",
            ),
            (
                "[[ratelimit.window]]\nsecs = 60\nlimits = [1, 2]\n",
                "limits",
            ),
            ("[ratelimit]\nmax_entries = 1\n", "ratelimit.max_entries"),
            ("[limits]\napi_body_bytes = 10\n", "limits.api_body_bytes"),
            (
                "[limits]\nheader_timeout_secs = 0\n",
                "limits.header_timeout_secs",
            ),
            ("[limits]\nbody = 1\n", "body"),
            ("log_level = \"loud\"\n", "log_level"),
            ("metrics_address = \"nowhere\"\n", "metrics_address"),
            (
                "[password_hash]\nmemory_kib = 1\niterations = 1\nparallelism = 1\n",
                "password_hash",
            ),
        ];
        for (extra, key) in cases {
            // tables go after the listener, plain keys before it
            let text = if extra.starts_with('[') {
                format!("{base}{extra}")
            } else {
                format!("{extra}{base}")
            };
            let e = Config::parse(&text).expect_err(extra);
            assert!(e.to_string().contains(key), "{extra:?}: {e}");
        }
        let listener_cases: &[(&str, &str)] = &[
            ("forwarded = true\n", "listener[0].trusted_proxies"),
            (
                "trusted_proxies = [\"127.0.0.1\"]\n",
                "listener[0].trusted_proxies",
            ),
            (
                "forwarded = true\ntrusted_proxies = [\"nonsense\"]\n",
                "nonsense",
            ),
            (
                "tls = { cert = \"\", key = \"k\" }\n",
                "listener[0].tls.cert",
            ),
            ("tls = { cert = \"c\" }\n", "key"),
            ("proxy = true\n", "proxy"),
        ];
        for (extra, key) in listener_cases {
            let text = base.replace(
                "address = \"127.0.0.1:1\"\n",
                &format!("address = \"127.0.0.1:1\"\n{extra}"),
            );
            let e = Config::parse(&text).expect_err(extra);
            assert!(e.to_string().contains(key), "{extra:?}: {e}");
        }
        let e = Config::parse(&format!("{base}secure_cookie_prefix = true\n"))
            .expect_err("secure prefix on plain http");
        assert!(
            e.to_string()
                .starts_with("listener[0].interface[0].secure_cookie_prefix"),
            "{e}"
        );
    }
}
