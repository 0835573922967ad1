//! The interfaces' pages, embedded in the binary.
//!
//! A plain placeholder per interface until the pages issue lands: it says
//! which interface this is and how to use its API.

use crate::protocol::Kind;

/// The page served at an interface's prefix.
pub fn page(kind: Kind) -> &'static str {
    match kind {
        Kind::WebAccount => ACCOUNT,
        Kind::WebAdmin => ADMIN,
        Kind::WebMail => WEBMAIL,
    }
}

const ACCOUNT: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>postern account</title></head>\n<body><h1>postern account</h1><p>Sign in through the JSON API at <code>api/</code>: LoginPrep, then Login.</p></body></html>\n";
const ADMIN: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>postern admin</title></head>\n<body><h1>postern admin</h1><p>Sign in through the JSON API at <code>api/</code>: LoginPrep, then Login.</p></body></html>\n";
const WEBMAIL: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>postern webmail</title></head>\n<body><h1>postern webmail</h1><p>Sign in through the JSON API at <code>api/</code>: LoginPrep, then Login.</p></body></html>\n";
