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
    /// Mail import bounds (docs/mail.md).
    #[serde(default)]
    pub mail: crate::mail::MailLimits,
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
}

/// One interface on a listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceConfig {
    /// `webaccount`, `webadmin` or `webmail`.
    pub kind: Kind,
    /// Path prefix, starting and ending with `/`.
    pub prefix: String,
}

/// Bounds on what a client may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest API request body, in bytes.
    #[serde(default = "default_api_body")]
    pub api_body_bytes: usize,
    /// Most concurrent connections per listener; more wait in the kernel's
    /// accept queue.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: u64,
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

impl Default for Limits {
    fn default() -> Self {
        Limits {
            api_body_bytes: default_api_body(),
            max_connections: default_max_connections(),
            header_timeout_secs: default_header_timeout(),
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
        if c.data_dir.is_relative() {
            let base = path.parent().unwrap_or(Path::new("."));
            c.data_dir = base.join(&c.data_dir);
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
            }
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
                    },
                    InterfaceConfig {
                        kind: Kind::WebAdmin,
                        prefix: "/admin/".into(),
                    },
                    InterfaceConfig {
                        kind: Kind::WebMail,
                        prefix: "/webmail/".into(),
                    },
                ],
            }],
            metrics_address: Some(SocketAddr::new(ip, 1081)),
            bad_auth_delay_ms: default_bad_auth_delay_ms(),
            password_hash: HashCost::default(),
            limits: Limits::default(),
            log_level: default_log_level(),
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
    }
}
