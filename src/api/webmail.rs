//! Functions of the webmail interface: a read-only view of an account's
//! mail.
//!
//! Owns `Mailboxes()`, `Messages(mailbox, offset, limit)` and
//! `Message(id)`: reads of the mail store (`mail.redb`) for the signed-in
//! account, on the blocking pool, in bounded pages.
//!
//! Never: changes mail; reads another account's mail (every read is keyed
//! by the session's account); returns markup (the text is text).

use serde::Serialize;

use super::account::internal;
use super::{Call, Reply, authed, bad_function};
use crate::mail::Flags;
use crate::mailview;
use crate::protocol::sherpa::{ApiError, Params};
use crate::store::{self, mail};

/// Messages per page when the caller asks for 0.
pub const DEFAULT_PAGE: u32 = 50;
/// Most messages per page.
pub const MAX_PAGE: u32 = 200;
/// Most characters of a message's text returned.
pub const MAX_TEXT_CHARS: usize = 1_000_000;

/// One mailbox with its counts.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MailboxView {
    name: String,
    total: u64,
    unseen: u64,
}

/// One message in a list.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MessageSummary {
    #[serde(rename = "ID")]
    id: u64,
    from: String,
    subject: String,
    /// The `Date` header as written.
    date: String,
    /// When it was received (unix ms).
    received: i64,
    size: u64,
    seen: bool,
}

/// A page of a mailbox, newest first.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PageView {
    mailbox: String,
    total: u64,
    offset: u32,
    messages: Vec<MessageSummary>,
}

/// One message.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MessageView {
    #[serde(rename = "ID")]
    id: u64,
    mailbox: String,
    from: String,
    to: String,
    subject: String,
    date: String,
    received: i64,
    text: String,
}

/// Runs a webmail function (after sign-in).
pub(super) async fn call(c: &Call<'_>, function: &str, params: Params) -> Result<Reply, ApiError> {
    let me = authed(c)?;
    let db = c.services.auth.stores.mail.clone();
    let account = me.account.clone();
    match function {
        "Mailboxes" => {
            params.decode::<()>(function)?;
            let list = store::blocking(move || {
                let names = mail::mailboxes(&db, &account)?;
                let msgs = mail::messages(&db, &account)?;
                let mut out: Vec<MailboxView> = names
                    .into_iter()
                    .map(|name| MailboxView {
                        name,
                        total: 0,
                        unseen: 0,
                    })
                    .collect();
                for (_, m) in msgs {
                    if let Ok(i) = out.binary_search_by(|b| b.name.as_str().cmp(&m.mailbox)) {
                        out[i].total += 1;
                        if !Flags(m.flags).has(Flags::SEEN) {
                            out[i].unseen += 1;
                        }
                    }
                }
                Ok(out)
            })
            .await
            .map_err(|e| internal("listing mailboxes", &e))?;
            Reply::result(&list)
        }
        "Messages" => {
            let (mailbox, offset, limit): (String, u32, u32) = params.decode(function)?;
            let limit = match limit {
                0 => DEFAULT_PAGE,
                n => n.min(MAX_PAGE),
            };
            let page = store::blocking(move || {
                let names = mail::mailboxes(&db, &account)?;
                if !names.contains(&mailbox) {
                    return Ok(None);
                }
                let mut msgs: Vec<_> = mail::messages(&db, &account)?
                    .into_iter()
                    .filter(|(_, m)| m.mailbox == mailbox)
                    .collect();
                // newest first; ids break ties (later import, later id)
                msgs.sort_by_key(|m| std::cmp::Reverse((m.1.received, m.0)));
                let total = msgs.len() as u64;
                let mut messages = Vec::new();
                for (id, m) in msgs.into_iter().skip(offset as usize).take(limit as usize) {
                    let raw = mail::message_data(&db, &account, id)?.unwrap_or_default();
                    let s = mailview::summary(&raw);
                    messages.push(MessageSummary {
                        id,
                        from: s.from,
                        subject: s.subject,
                        date: s.date,
                        received: m.received,
                        size: m.size,
                        seen: Flags(m.flags).has(Flags::SEEN),
                    });
                }
                Ok(Some(PageView {
                    mailbox,
                    total,
                    offset,
                    messages,
                }))
            })
            .await
            .map_err(|e| internal("listing messages", &e))?
            .ok_or_else(|| ApiError::user("unknown mailbox"))?;
            Reply::result(&page)
        }
        "Message" => {
            let (id,): (u64,) = params.decode(function)?;
            let view = store::blocking(move || {
                let Some(rec) = mail::messages(&db, &account)?
                    .into_iter()
                    .find(|(i, _)| *i == id)
                    .map(|(_, m)| m)
                else {
                    return Ok(None);
                };
                let raw = mail::message_data(&db, &account, id)?.unwrap_or_default();
                let s = mailview::summary(&raw);
                Ok(Some(MessageView {
                    id,
                    mailbox: rec.mailbox,
                    from: s.from,
                    to: s.to,
                    subject: s.subject,
                    date: s.date,
                    received: rec.received,
                    text: mailview::plain_text(&raw, MAX_TEXT_CHARS),
                }))
            })
            .await
            .map_err(|e| internal("reading a message", &e))?
            .ok_or_else(|| ApiError::user("unknown message"))?;
            Reply::result(&view)
        }
        _ => Err(bad_function(function)),
    }
}
