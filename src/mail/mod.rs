//! Mail as data: mailbox names, flags, keywords, and the mbox and maildir
//! formats, as plain synchronous Rust.
//!
//! Owns the rules every mail path shares: what a valid mailbox name is
//! ([`normalize_mailbox_name`]), the system flags ([`Flags`]) and keywords
//! ([`valid_keyword`]), mbox reading and writing ([`mbox`]), maildir file
//! names and `dovecot-keywords` ([`maildir`]), streaming export ([`export`])
//! and the limits of import ([`MailLimits`]). docs/mail.md explains the
//! formats and their rules.
//!
//! Never: touches tokio, hyper or redb (the store is [`crate::store::mail`]);
//! panics on any input.

pub mod export;
pub mod maildir;
pub mod mbox;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization as _;

/// Longest mailbox name, in bytes (after NFC).
pub const MAX_MAILBOX_NAME: usize = 255;
/// Deepest mailbox hierarchy (parts separated by `/`).
pub const MAX_MAILBOX_DEPTH: usize = 16;
/// Longest keyword, in bytes.
pub const MAX_KEYWORD: usize = 64;
/// Most keywords on one message.
pub const MAX_KEYWORDS: usize = 32;

/// The IMAP system flags a message carries, as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
pub struct Flags(pub u8);

impl Flags {
    /// `\Seen`.
    pub const SEEN: u8 = 1;
    /// `\Answered`.
    pub const ANSWERED: u8 = 2;
    /// `\Flagged`.
    pub const FLAGGED: u8 = 4;
    /// `\Deleted`.
    pub const DELETED: u8 = 8;
    /// `\Draft`.
    pub const DRAFT: u8 = 16;

    /// Whether `flag` (one of the constants) is set.
    pub fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }

    /// Sets `flag`.
    pub fn set(&mut self, flag: u8) {
        self.0 |= flag;
    }

    /// The IMAP names of the flags set, in a fixed order.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Flags::SEEN, "\\Seen"),
            (Flags::ANSWERED, "\\Answered"),
            (Flags::FLAGGED, "\\Flagged"),
            (Flags::DELETED, "\\Deleted"),
            (Flags::DRAFT, "\\Draft"),
        ]
        .into_iter()
        .filter(|(f, _)| self.has(*f))
        .map(|(_, n)| n)
        .collect()
    }
}

/// Why a mailbox name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxNameError {
    /// Empty, or an empty part (`a//b`, leading or trailing `/`).
    #[error("mailbox name has an empty part")]
    EmptyPart,
    /// A `.` or `..` part.
    #[error("mailbox name has a \".\" or \"..\" part")]
    DotPart,
    /// A control character.
    #[error("mailbox name contains a control character")]
    Control,
    /// Longer than [`MAX_MAILBOX_NAME`] bytes.
    #[error("mailbox name is longer than {MAX_MAILBOX_NAME} bytes")]
    TooLong,
    /// Deeper than [`MAX_MAILBOX_DEPTH`] parts.
    #[error("mailbox name has more than {MAX_MAILBOX_DEPTH} levels")]
    TooDeep,
}

/// Normalizes (NFC; any case of `inbox` as the first part becomes `Inbox`) and
/// validates a hierarchical mailbox name.
pub fn normalize_mailbox_name(name: &str) -> Result<String, MailboxNameError> {
    let n: String = name.nfc().collect();
    if n.len() > MAX_MAILBOX_NAME {
        return Err(MailboxNameError::TooLong);
    }
    if n.chars().any(char::is_control) {
        return Err(MailboxNameError::Control);
    }
    let mut parts: Vec<&str> = n.split('/').collect();
    if parts.len() > MAX_MAILBOX_DEPTH {
        return Err(MailboxNameError::TooDeep);
    }
    for p in &parts {
        if p.is_empty() {
            return Err(MailboxNameError::EmptyPart);
        }
        if *p == "." || *p == ".." {
            return Err(MailboxNameError::DotPart);
        }
    }
    if parts[0].eq_ignore_ascii_case("inbox") {
        parts[0] = "Inbox";
    }
    Ok(parts.join("/"))
}

/// Whether `k` can be a keyword: 1 to [`MAX_KEYWORD`] bytes of IMAP atom
/// characters other than `,`, not starting with `\` (system flags are
/// [`Flags`]). A comma is an atom character, but mbox `X-Keywords` fields
/// separate keywords with commas (as mox and Dovecot write them), so a
/// keyword holding one could not survive an mbox export: it is refused
/// wherever keywords come in, like any other invalid keyword.
pub fn valid_keyword(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= MAX_KEYWORD
        && k.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']' | b','
                )
        })
}

/// Adds a keyword to a list if valid, new, and the list has room.
pub fn add_keyword(list: &mut Vec<String>, k: &str) {
    if valid_keyword(k) && list.len() < MAX_KEYWORDS && !list.iter().any(|x| x == k) {
        list.push(k.to_string());
    }
}

/// Bounds on imports. Every field is a configuration key under `[mail]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailLimits {
    /// Largest upload accepted by `POST <prefix>import`, in bytes.
    #[serde(default = "default_upload")]
    pub import_upload_bytes: u64,
    /// Most bytes an archive may expand to, in total.
    #[serde(default = "default_expanded")]
    pub import_expanded_bytes: u64,
    /// Most entries (files, directories) in one archive.
    #[serde(default = "default_entries")]
    pub import_entries: u64,
    /// Largest single message, in bytes.
    #[serde(default = "default_message")]
    pub message_bytes: u64,
}

fn default_upload() -> u64 {
    1 << 30
}
fn default_expanded() -> u64 {
    8 << 30
}
fn default_entries() -> u64 {
    1_000_000
}
fn default_message() -> u64 {
    64 << 20
}

impl Default for MailLimits {
    fn default() -> Self {
        MailLimits {
            import_upload_bytes: default_upload(),
            import_expanded_bytes: default_expanded(),
            import_entries: default_entries(),
            message_bytes: default_message(),
        }
    }
}

/// Civil date and time (UTC) of a Unix time in seconds:
/// (year, month 1-12, day 1-31, hour, minute, second, weekday 0=Sunday).
pub fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-from-civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    let wd = (days + 4).rem_euclid(7) as u32;
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
        wd,
    )
}

/// `YYYYMMDD-HHMMSS` in UTC, for export file names.
pub fn compact_time(secs: i64) -> String {
    let (y, mo, d, h, mi, s, _) = civil(secs);
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}")
}

/// The asctime form mbox `From ` lines use: `Mon Nov 23 16:03:06 2026`.
pub fn asctime(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, wd) = civil(secs);
    format!(
        "{} {} {d:2} {h:02}:{mi:02}:{s:02} {y}",
        DAYS[wd as usize % 7],
        MONTHS[(mo as usize + 11) % 12]
    )
}

/// Parses an asctime date (`Mon Nov 23 16:03:06 2026`, day space-padded or
/// not) to Unix seconds.
pub fn parse_asctime(s: &str) -> Option<i64> {
    let f: Vec<&str> = s.split_ascii_whitespace().collect();
    if f.len() < 5 {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mo = MONTHS.iter().position(|m| *m == f[1])? as i64 + 1;
    let d: i64 = f[2].parse().ok()?;
    let t: Vec<i64> = f[3]
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<Vec<_>>>()?;
    let y: i64 = f[4].parse().ok()?;
    // Years outside 1..=9999 are not dates a mailer wrote (and would overflow
    // the day arithmetic below); so are negative times.
    if t.len() != 3
        || !(1..=31).contains(&d)
        || !(1..=9999).contains(&y)
        || t.iter().any(|&x| x < 0)
        || t[0] > 23
        || t[1] > 59
        || t[2] > 60
    {
        return None;
    }
    // days from civil
    let (y2, m2) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y2.div_euclid(400);
    let yoe = y2.rem_euclid(400);
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asctime_refuses_years_and_times_out_of_range() {
        // found by the mbox fuzz target: a huge year overflowed the arithmetic
        assert_eq!(
            parse_asctime("Mon Nov 23 16:03:06 9223372036854775807"),
            None
        );
        assert_eq!(parse_asctime("Mon Nov 23 16:03:06 0"), None);
        assert_eq!(parse_asctime("Mon Nov 23 -1:03:06 2026"), None);
        assert_eq!(parse_asctime("Thu Jan  1 00:00:00 1970"), Some(0));
        assert!(parse_asctime("Fri Dec 31 23:59:59 9999").is_some());
    }

    #[test]
    fn mailbox_names() {
        assert_eq!(normalize_mailbox_name("a/b").as_deref(), Ok("a/b"));
        assert_eq!(normalize_mailbox_name("INBOX/x").as_deref(), Ok("Inbox/x"));
        assert_eq!(normalize_mailbox_name("e\u{301}").as_deref(), Ok("\u{e9}"));
        assert_eq!(normalize_mailbox_name(""), Err(MailboxNameError::EmptyPart));
        assert_eq!(
            normalize_mailbox_name("a//b"),
            Err(MailboxNameError::EmptyPart)
        );
        assert_eq!(
            normalize_mailbox_name("a/"),
            Err(MailboxNameError::EmptyPart)
        );
        assert_eq!(
            normalize_mailbox_name("a/../b"),
            Err(MailboxNameError::DotPart)
        );
        assert_eq!(
            normalize_mailbox_name("./b"),
            Err(MailboxNameError::DotPart)
        );
        assert_eq!(
            normalize_mailbox_name("a\tb"),
            Err(MailboxNameError::Control)
        );
        assert_eq!(
            normalize_mailbox_name(&"x".repeat(256)),
            Err(MailboxNameError::TooLong)
        );
        assert_eq!(
            normalize_mailbox_name(&vec!["x"; 17].join("/")),
            Err(MailboxNameError::TooDeep)
        );
    }

    #[test]
    fn keywords() {
        assert!(valid_keyword("$Forwarded"));
        assert!(!valid_keyword("\\Seen"));
        assert!(!valid_keyword("a b"));
        assert!(!valid_keyword(""));
        // mbox X-Keywords separates with commas: a comma cannot round-trip.
        assert!(!valid_keyword("a,b"));
        assert!(!valid_keyword(","));
        let mut l = Vec::new();
        add_keyword(&mut l, "x");
        add_keyword(&mut l, "x");
        add_keyword(&mut l, "bad word");
        assert_eq!(l, vec!["x".to_string()]);
    }

    #[test]
    fn dates() {
        assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(compact_time(1_700_000_000), "20231114-221320");
        for t in [0, 1_700_000_000, 951_782_400, 4_102_444_799] {
            assert_eq!(parse_asctime(&asctime(t)), Some(t), "{}", asctime(t));
        }
        assert_eq!(parse_asctime("Mon Nov 23 16:03:06"), None);
        assert_eq!(parse_asctime("garbage"), None);
    }
}
