//! postern: web sign-in, sessions and account self-service for mail hosts.
//!
//! The web authentication of the mox mail server (session cookies and CSRF
//! tokens, LoginPrep/Login, admin sessions in memory, account sessions
//! persisted with a cap per account, failed-auth rate limiting per IP), as an
//! actor system on an embedded database. docs/architecture.md is the map; in
//! short:
//!
//! ```text
//!  browser ──HTTP──▶ http (routing, view, bodies) ──▶ auth (check, login) / api (functions)
//!                                                      │ handles: typed calls with timeouts
//!        ┌──────────────────────┬─────────────────────┼──────────────────┐
//!        ▼                      ▼                     ▼                  ▼
//!  sessions: actor per     admin: one actor,    ratelimit: sharded   credentials: argon2id
//!  account (memory +       memory only,         actors + lock-free   on the background pool
//!  accounts.redb)          10 sessions          "has failures" filter
//! ```
//!
//! | module | owns |
//! |---|---|
//! | [`protocol`] | the protocol as pure Rust: kinds, cookies, sherpa envelope, first half of the check |
//! | [`auth`] | second half of the check, Login, Logout |
//! | [`api`] | the API functions of each interface |
//! | [`sessions`] | account session actors, their directory and supervisor |
//! | [`admin`] | admin sessions |
//! | [`ratelimit`] | the failed-auth rate limiter |
//! | [`credentials`] | password rules and hashing |
//! | [`background`] | the low-priority blocking pool for hashing and imports |
//! | [`fuzzing`] | fuzz target bodies: properties of every parser and pure state machine |
//! | [`store`] | redb files, tables, record codec |
//! | [`http`] | the hyper layer |
//! | [`app`] | start-up and shutdown |
//! | [`config`] | the configuration file |
//! | [`cli`] | the command line |
//! | [`token`] | secret tokens |
//! | [`clock`] | time as an input |
//! | [`telemetry`] | logging and metric names |
//! | [`setup`] | provisioning on the databases |
//! | [`attempts`] | sign-in attempts: batched writer, listing |
//! | [`control`] | the local control socket of a running server |
//! | [`import`] | mail import: importer actor, pipeline, progress |
//! | [`mail`] | mailbox names, flags, mbox and maildir formats, export |
//! | [`mailview`] | header fields and plain text of a message, for the webmail |

pub mod admin;
pub mod api;
pub mod app;
pub mod attempts;
pub mod auth;
pub mod background;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod credentials;
pub mod fuzzing;
pub mod http;
pub mod import;
pub mod mail;
pub mod mailview;
pub mod protocol;
pub mod ratelimit;
pub mod sessions;
pub mod setup;
pub mod store;
pub mod telemetry;
pub mod token;
