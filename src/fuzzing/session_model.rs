//! Target `session_model`: [`AccountSessions`] against a naive model.
//!
//! Input: policy bytes (cap 1..=8, idle and absolute lifetime in seconds),
//! up to three stored records to load (kind codes 0..=3, 3 being invalid and
//! skipped), then operations: add, use, remove, remove-all-except, advance
//! the clock, disable/enable the account, take the dirty set, mark dirty,
//! list expired. Every answer is compared with the model's.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use super::{Input, MAX_OPS};
use crate::clock::UnixMillis;
use crate::protocol::Kind;
use crate::protocol::check::Failure;
use crate::sessions::state::{AccountSessions, Client, Policy};
use crate::store::codec::{AccountRecord, SessionRecord};
use crate::token::TokenHash;

/// Token hashes come from a small pool so operations hit the same sessions.
const TOKENS: u8 = 12;
/// One model time unit: a second.
const SEC: i64 = 1000;

fn token(i: u8) -> TokenHash {
    let mut b = [0u8; 32];
    b[0] = i % TOKENS;
    TokenHash(b)
}

fn csrf(i: u8) -> TokenHash {
    let mut b = [0u8; 32];
    b[0] = i % 4;
    b[1] = 0xc5;
    TokenHash(b)
}

fn kind(b: u8) -> Kind {
    Kind::ALL[usize::from(b) % 3]
}

const AGENTS: [&str; 3] = ["", "Mozilla/5.0", "curl/8"];

/// One session as the model keeps it.
#[derive(Debug, Clone)]
struct M {
    id: u64,
    kind: Kind,
    csrf: TokenHash,
    created: UnixMillis,
    last_used: UnixMillis,
    expires: UnixMillis,
    agent: String,
    ip: Option<IpAddr>,
}

/// The naive model: a map by token byte, the dirty set, the rules spelled
/// out directly.
struct Model {
    policy: Policy,
    sessions: BTreeMap<u8, M>,
    dirty: BTreeSet<u8>,
    disabled: Option<String>,
}

impl Model {
    fn expired(&self, m: &M, now: UnixMillis) -> bool {
        now >= m.expires || now >= m.created.saturating_add(self.policy.max)
    }

    /// Expired ones, then the soonest to expire while still at the cap.
    fn evictions(&self, now: UnixMillis) -> BTreeSet<u8> {
        let mut out: BTreeSet<u8> = BTreeSet::new();
        let mut live: Vec<(&u8, &M)> = Vec::new();
        for (t, m) in &self.sessions {
            if self.expired(m, now) {
                out.insert(*t);
            } else {
                live.push((t, m));
            }
        }
        live.sort_by_key(|(_, m)| (m.expires, m.created, m.id));
        while live.len() >= self.policy.cap {
            let (t, _) = live.remove(0);
            out.insert(*t);
        }
        out
    }
}

fn hashes(set: &BTreeSet<u8>) -> BTreeSet<[u8; 32]> {
    set.iter().map(|t| token(*t).0).collect()
}

/// See the module documentation.
pub fn session_model(data: &[u8]) {
    let mut input = Input::new(data);
    let cap = 1 + usize::from(input.u8_or_zero() % 8);
    let idle = (1 + i64::from(input.u8_or_zero() % 16)) * SEC;
    let max = (1 + i64::from(input.u8_or_zero() % 32)) * SEC;
    // The model drives webaccount sessions; webmail's lifetimes are set
    // equal so a kind mix-up would still show as a model mismatch.
    let policy = Policy {
        cap,
        idle,
        max,
        webmail_idle: idle,
        webmail_max: max,
    };
    let account = AccountRecord {
        name: "fuzz".into(),
        full_name: String::new(),
        addresses: vec!["fuzz@example.org".into()],
        password: String::new(),
        login_disabled: None,
        created: 0,
        destinations: Default::default(),
    };
    let mut model = Model {
        policy,
        sessions: BTreeMap::new(),
        dirty: BTreeSet::new(),
        disabled: None,
    };
    let mut now: UnixMillis = 100 * SEC;
    let mut next_id = 1u64;

    let mut stored = Vec::new();
    for _ in 0..input.u8_or_zero() % 4 {
        let t = input.u8_or_zero() % TOKENS;
        let code = input.u8_or_zero() % 4;
        let age = i64::from(input.u8_or_zero() % 8) * SEC;
        let rec = SessionRecord {
            id: next_id,
            kind: code,
            csrf_hash: csrf(t).0,
            login_address: "fuzz@example.org".into(),
            created: now - age,
            last_used: now - age,
            expires: now - age + policy.idle,
            created_ip: None,
            created_agent: String::new(),
            last_ip: None,
            last_agent: String::new(),
        };
        next_id += 1;
        if let Some(kind) = Kind::from_code(code) {
            model.sessions.insert(
                t,
                M {
                    id: rec.id,
                    kind,
                    csrf: csrf(t),
                    created: rec.created,
                    last_used: rec.last_used,
                    expires: rec.expires,
                    agent: String::new(),
                    ip: None,
                },
            );
        }
        stored.push((token(t), rec));
    }
    let mut s = AccountSessions::new(account, stored, policy);

    for _ in 0..MAX_OPS {
        let Some(op) = input.u8() else { break };
        let arg = input.u8_or_zero();
        let arg2 = input.u8_or_zero();
        let t = arg % TOKENS;
        match op % 9 {
            0 => {
                let k = kind(arg2);
                let c = csrf(arg2 >> 2);
                let agent = AGENTS[usize::from(arg2 >> 4) % 3];
                let client = Client::new(Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, arg2))), agent);
                let ev = s.evictions_for_add(now);
                let got: BTreeSet<[u8; 32]> = ev.iter().map(|h| h.0).collect();
                let want = model.evictions(now);
                assert_eq!(got, hashes(&want), "evictions at {now}");
                let rec = s.new_record(next_id, k, c, "fuzz@example.org", &client, now);
                assert_eq!(rec.expires, now + policy.idle);
                s.insert(&ev, token(t), &rec);
                assert!(s.len() <= policy.cap, "cap after add");
                for e in &want {
                    model.sessions.remove(e);
                    model.dirty.remove(e);
                }
                model.sessions.insert(
                    t,
                    M {
                        id: next_id,
                        kind: k,
                        csrf: c,
                        created: now,
                        last_used: now,
                        expires: now + policy.idle,
                        agent: agent.into(),
                        ip: client.ip,
                    },
                );
                next_id += 1;
            }
            1 => {
                // Mostly the session's own kind and CSRF value (when there
                // is a session), so uses succeed and sessions get extended.
                let own = model.sessions.get(&t).filter(|_| arg2 & 0xc0 != 0);
                let (k, presented) = match own {
                    Some(m) if arg2 & 1 == 1 => (m.kind, Some(Some(m.csrf))),
                    Some(m) => (m.kind, None),
                    None => (
                        kind(arg2),
                        match arg2 >> 2 & 3 {
                            0 => None,
                            1 => Some(None),
                            _ => Some(Some(csrf(arg2 >> 4))),
                        },
                    ),
                };
                let agent = AGENTS[usize::from(arg2 >> 6) % 3];
                let client = Client::new(Some(IpAddr::V4(Ipv4Addr::new(10, 1, 0, arg2))), agent);
                let got = s.use_session(k, &token(t), presented, &client, now);
                let disabled = model.disabled.clone();
                let expired = model.sessions.get(&t).map(|m| model.expired(m, now));
                let want = match model.sessions.get_mut(&t).filter(|m| m.kind == k) {
                    None => Err(Failure::UnknownSession),
                    Some(_) if expired == Some(true) => Err(Failure::Expired),
                    Some(m) => match presented {
                        Some(Some(c)) if c != m.csrf => Err(Failure::CsrfMismatch),
                        Some(None) => Err(Failure::CsrfMismatch),
                        _ => match disabled {
                            Some(r) => Err(Failure::LoginDisabled(r)),
                            None => {
                                // A use is recorded only when it changes
                                // what is kept (Policy::touch_every).
                                if now - m.last_used >= policy.touch_every(m.kind)
                                    || m.ip != client.ip
                                    || m.agent != agent
                                {
                                    m.last_used = now;
                                    m.expires = now + policy.idle;
                                    m.agent = agent.into();
                                    m.ip = client.ip;
                                    model.dirty.insert(t);
                                }
                                Ok(m.kind)
                            }
                        },
                    },
                };
                match (got, want) {
                    (Ok(u), Ok(k)) => {
                        assert_eq!(u.kind, k);
                        assert_eq!(&*u.login_address, "fuzz@example.org");
                    }
                    (got, want) => assert_eq!(got.map(|u| u.kind), want, "use at {now}"),
                }
            }
            2 => {
                let removed = s.remove(&token(t));
                assert_eq!(removed, model.sessions.remove(&t).is_some());
                model.dirty.remove(&t);
            }
            3 => {
                let keep = (arg2 & 1 == 1).then_some(t);
                s.remove_all_except(keep.map(token));
                model.sessions.retain(|k, _| Some(*k) == keep);
                model.dirty.retain(|k| Some(*k) == keep);
            }
            4 => now += i64::from(arg % 8) * SEC / 2 + i64::from(arg2 % 2),
            5 => {
                let d = (arg2 & 1 == 1).then(|| "fuzz".to_string());
                let mut rec = s.account().clone();
                rec.login_disabled = d.clone();
                s.set_account(rec);
                model.disabled = d;
            }
            6 => {
                assert_eq!(s.has_dirty(), !model.dirty.is_empty());
                let got: BTreeMap<[u8; 32], (i64, i64, String, Option<IpAddr>)> = s
                    .take_dirty()
                    .into_iter()
                    .map(|e| (e.hash.0, (e.last_used, e.expires, e.last_agent, e.last_ip)))
                    .collect();
                let want: BTreeMap<[u8; 32], (i64, i64, String, Option<IpAddr>)> =
                    std::mem::take(&mut model.dirty)
                        .into_iter()
                        .filter_map(|t| {
                            let m = model.sessions.get(&t)?;
                            Some((token(t).0, (m.last_used, m.expires, m.agent.clone(), m.ip)))
                        })
                        .collect();
                assert_eq!(got, want, "dirty set");
                assert!(!s.has_dirty());
            }
            7 => {
                s.mark_dirty([token(t)]);
                model.dirty.insert(t);
            }
            _ => {
                let got: BTreeSet<[u8; 32]> =
                    s.expired_hashes(now).into_iter().map(|h| h.0).collect();
                let want: BTreeSet<u8> = model
                    .sessions
                    .iter()
                    .filter(|(_, m)| model.expired(m, now))
                    .map(|(t, _)| *t)
                    .collect();
                assert_eq!(got, hashes(&want), "expired at {now}");
            }
        }
        assert_eq!(s.len(), model.sessions.len());
        for t in 0..TOKENS {
            assert_eq!(s.contains(&token(t)), model.sessions.contains_key(&t));
        }
    }
}
