//! One account's sessions, in memory: the rules, without I/O.
//!
//! Owns the session rules of the persisted kinds (webaccount, webmail): the
//! lookup and CSRF check, idle expiry extended on use, an absolute maximum
//! lifetime, the cap per account (expired sessions evicted first, then the one
//! that expires soonest), and the set of sessions whose extension has not been
//! written yet ("dirty").
//!
//! The sessions live in an immutable [`View`]. Every change makes a new view
//! and publishes it (an [`ArcSwap`]) before the change is answered, so the
//! request path checks a session by reading the published view, without a
//! message to the account's actor ([`View::check`]). A use is recorded
//! ([`AccountSessions::touch`]) only when it changes what is kept: the client's
//! IP or agent, or a last use older than [`Policy::touch_every`]; so the stored
//! last use and idle expiry are exact to within that granularity (at most one
//! minute).
//!
//! Never: does I/O, reads a clock (time is a parameter), or sees a token in
//! clear (only [`TokenHash`]es).

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::clock::UnixMillis;
use crate::protocol::Kind;
use crate::protocol::check::Failure;
use crate::store::codec::{AccountRecord, SessionRecord};
use crate::store::sessions::Extension;
use crate::token::TokenHash;

/// Longest user agent kept, in bytes.
pub const MAX_AGENT: usize = 256;

/// Lifetime rules of persisted sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Idle lifetime in milliseconds: a session expires this long after last use.
    pub idle: i64,
    /// Absolute lifetime in milliseconds from creation, whatever the use.
    pub max: i64,
    /// Most sessions per account.
    pub cap: usize,
    /// Idle lifetime of webmail sessions (`idle` is the account interface's).
    pub webmail_idle: i64,
    /// Absolute lifetime of webmail sessions.
    pub webmail_max: i64,
}

impl Default for Policy {
    /// 24 h idle, 30 days absolute, 100 per account.
    fn default() -> Self {
        Policy {
            idle: 24 * 3600 * 1000,
            max: 30 * 24 * 3600 * 1000,
            cap: 100,
            webmail_idle: 24 * 3600 * 1000,
            webmail_max: 30 * 24 * 3600 * 1000,
        }
    }
}

impl Policy {
    /// Idle lifetime of sessions of `kind`.
    pub fn idle_for(&self, kind: Kind) -> i64 {
        match kind {
            Kind::WebMail => self.webmail_idle,
            _ => self.idle,
        }
    }

    /// Absolute lifetime of sessions of `kind`.
    pub fn max_for(&self, kind: Kind) -> i64 {
        match kind {
            Kind::WebMail => self.webmail_max,
            _ => self.max,
        }
    }

    /// Idle expiry of a held session: last use + the kind's idle lifetime.
    /// What the stored record's `expires` holds, and the eviction order.
    pub fn idle_expiry(&self, s: &Session) -> UnixMillis {
        s.last_used.saturating_add(self.idle_for(s.kind))
    }

    /// Expiry of a held session: the earlier of its idle expiry and its
    /// absolute maximum (creation + the kind's maximum lifetime). Derived,
    /// not held, so a changed policy applies to loaded sessions at once.
    pub fn expires(&self, s: &Session) -> UnixMillis {
        self.idle_expiry(s)
            .min(s.created.saturating_add(self.max_for(s.kind)))
    }

    /// How stale a session's recorded last use may get before a use records
    /// it again: a minute, or a sixteenth of the idle lifetime if that is
    /// shorter (so short test lifetimes stay precise).
    pub fn touch_every(&self, kind: Kind) -> i64 {
        (self.idle_for(kind) / 16).clamp(1, 60_000)
    }
}

/// Cuts a user agent to the [`MAX_AGENT`] bytes sessions keep, on a
/// character boundary.
pub fn cut_agent(agent: &str) -> &str {
    let mut end = agent.len().min(MAX_AGENT);
    while !agent.is_char_boundary(end) {
        end -= 1;
    }
    &agent[..end]
}

/// The client of a request, as recorded with sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    /// Client IP.
    pub ip: Option<IpAddr>,
    /// User agent, cut to [`MAX_AGENT`] bytes.
    pub agent: String,
}

impl Client {
    /// A client with the user agent bounded.
    pub fn new(ip: Option<IpAddr>, agent: &str) -> Client {
        Client {
            ip,
            agent: cut_agent(agent).to_string(),
        }
    }
}

/// A session held in memory: compact, with shared strings.
#[derive(Debug, Clone)]
pub struct Session {
    /// Opaque id.
    pub id: u64,
    /// Interface kind that created it.
    pub kind: Kind,
    /// The first 16 bytes of the SHA-256 of the CSRF token (128 bits of a
    /// hash of a 128-bit random token; the stored record keeps all 32).
    pub csrf: [u8; 16],
    /// Login address used.
    pub login_address: Arc<str>,
    /// Created.
    pub created: UnixMillis,
    /// Last use (the expiry is derived: [`Policy::expires`]).
    pub last_used: UnixMillis,
    /// Client IP at last use.
    pub last_ip: Option<IpAddr>,
    /// User agent at last use.
    pub last_agent: Arc<str>,
}

/// What a successful use tells the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Used {
    /// Login address of the session.
    pub login_address: Arc<str>,
    /// Session kind.
    pub kind: Kind,
}

/// A session as listed to its account holder or the admin. Holds no secret:
/// `id` is an opaque random number, unrelated to the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Opaque id.
    pub id: u64,
    /// Interface kind.
    pub kind: Kind,
    /// Created.
    pub created: UnixMillis,
    /// Last use.
    pub last_used: UnixMillis,
    /// Expiry: the earlier of idle expiry and the absolute maximum.
    pub expires: UnixMillis,
    /// Login address used.
    pub login_address: String,
    /// Client IP at creation (filled from the stored record; not held in memory).
    pub created_ip: Option<IpAddr>,
    /// User agent at creation (filled from the stored record).
    pub created_agent: String,
    /// Client IP at last use.
    pub last_ip: Option<IpAddr>,
    /// User agent at last use.
    pub last_agent: String,
    /// Whether this is the caller's own session.
    pub current: bool,
}

/// Sessions sorted by token hash, exactly sized (a view is rebuilt on every
/// change anyway), searched by binary search ([`find`]).
type Sessions = Box<[(TokenHash, Session)]>;

/// Where `token` is in sorted `sessions` (`Err`: where it would go).
fn find(sessions: &[(TokenHash, Session)], token: &TokenHash) -> Result<usize, usize> {
    sessions.binary_search_by(|(k, _)| k.0.cmp(&token.0))
}

/// The first 16 bytes of a hash, as sessions hold a CSRF hash.
pub fn csrf_prefix(h: &TokenHash) -> [u8; 16] {
    let mut p = [0u8; 16];
    p.copy_from_slice(&h.0[..16]);
    p
}

/// An immutable picture of one account's sessions: what the request path
/// reads. Made by [`AccountSessions`] on every change.
#[derive(Debug, Clone)]
pub struct View {
    sessions: Sessions,
    /// Why sign-in is disabled for the account, if it is.
    login_disabled: Option<String>,
    policy: Policy,
}

/// A session that passed [`View::check`].
#[derive(Debug)]
pub struct Checked<'a> {
    /// What the caller learns.
    pub used: Used,
    session: &'a Session,
}

impl View {
    /// Whether a session is past its idle or absolute lifetime.
    fn expired(&self, s: &Session, now: UnixMillis) -> bool {
        now >= self.policy.expires(s)
    }

    /// The session with this token hash.
    pub fn get(&self, token: &TokenHash) -> Option<&Session> {
        find(&self.sessions, token)
            .ok()
            .map(|i| &self.sessions[i].1)
    }

    /// Checks a session of interface `kind` (a session works only on the kind
    /// that created it), in the protocol's order: known, unexpired, CSRF,
    /// sign-in not disabled. `csrf`: `None` when no CSRF check is required;
    /// `Some(None)` when a value was presented that cannot be a token (never
    /// matches).
    pub fn check(
        &self,
        kind: Kind,
        token: &TokenHash,
        csrf: Option<Option<TokenHash>>,
        now: UnixMillis,
    ) -> Result<Checked<'_>, Failure> {
        let Some(s) = self.get(token).filter(|s| s.kind == kind) else {
            return Err(Failure::UnknownSession);
        };
        expiry_then_csrf(self.expired(s, now), csrf, &s.csrf)?;
        if let Some(reason) = &self.login_disabled {
            return Err(Failure::LoginDisabled(reason.clone()));
        }
        Ok(Checked {
            used: Used {
                login_address: s.login_address.clone(),
                kind: s.kind,
            },
            session: s,
        })
    }

    /// Whether a use of a checked session by this client at `now` changes
    /// what is kept (see [`AccountSessions::touch`]). `agent` is already cut
    /// ([`cut_agent`]).
    pub fn needs_touch(
        &self,
        c: &Checked<'_>,
        ip: Option<IpAddr>,
        agent: &str,
        now: UnixMillis,
    ) -> bool {
        let s = c.session;
        now.saturating_sub(s.last_used) >= self.policy.touch_every(s.kind)
            || s.last_ip != ip
            || &*s.last_agent != agent
    }

    /// Number of sessions held (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

/// Where an account's current [`View`] is published for the request path.
pub type Published = Arc<ArcSwap<View>>;

/// One account's in-memory state, owned by its actor.
#[derive(Debug)]
pub struct AccountSessions {
    /// The account's record (password hash, disabled flag, names).
    account: AccountRecord,
    policy: Policy,
    /// The current view; also the published one once a change is done.
    view: Arc<View>,
    published: Published,
    dirty: HashSet<TokenHash>,
    strings: HashSet<Arc<str>>,
    /// Sessions added early, while their sign-in's password is still being
    /// verified (docs/architecture.md, "Early session write"): held and durable,
    /// but left out of listings until confirmed. Nobody holds their token
    /// yet, so no check can use them.
    early: Vec<TokenHash>,
}

impl AccountSessions {
    /// State from what was loaded from the database.
    pub fn new(
        account: AccountRecord,
        stored: Vec<(TokenHash, SessionRecord)>,
        policy: Policy,
    ) -> Self {
        let mut strings = HashSet::new();
        let mut sessions = Vec::with_capacity(stored.len());
        for (h, r) in stored {
            let Some(kind) = Kind::from_code(r.kind) else {
                continue;
            };
            let sess = Session {
                id: r.id,
                kind,
                csrf: csrf_prefix(&TokenHash(r.csrf_hash)),
                login_address: intern(&mut strings, policy.cap, &r.login_address),
                created: r.created,
                last_used: r.last_used,
                last_ip: r.last_ip,
                last_agent: intern(&mut strings, policy.cap, &r.last_agent),
            };
            sessions.push((h, sess));
        }
        // Stable sort, and the last of equal keys wins (as a map insert).
        sessions.sort_by_key(|a| a.0.0);
        sessions.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        let view = Arc::new(View {
            sessions: sessions.into_boxed_slice(),
            login_disabled: account.login_disabled.clone(),
            policy,
        });
        AccountSessions {
            account,
            policy,
            published: Arc::new(ArcSwap::new(view.clone())),
            view,
            dirty: HashSet::new(),
            strings,
            early: Vec::new(),
        }
    }

    /// Where this state's views are published.
    pub fn published(&self) -> Published {
        self.published.clone()
    }

    /// The current view.
    pub fn view(&self) -> &View {
        &self.view
    }

    /// The account's record.
    pub fn account(&self) -> &AccountRecord {
        &self.account
    }

    /// Replaces the account's record (a committed change) and publishes.
    pub fn set_account(&mut self, account: AccountRecord) {
        if account.login_disabled != self.view.login_disabled {
            Arc::make_mut(&mut self.view).login_disabled = account.login_disabled.clone();
            self.publish();
        }
        self.account = account;
    }

    /// Makes the current view the one the request path reads. Called at the
    /// end of every change, before the change is answered.
    fn publish(&self) {
        self.published.store(self.view.clone());
    }

    /// The sessions, for a change in place (copied if readers hold the
    /// current view).
    fn sessions_mut(&mut self) -> &mut Sessions {
        &mut Arc::make_mut(&mut self.view).sessions
    }

    /// Replaces the sessions by those of the current view that `keep`
    /// accepts, plus `add`, in a new exactly-sized view; publishes.
    fn rebuild(&mut self, keep: impl Fn(&TokenHash) -> bool, add: Option<(TokenHash, Session)>) {
        let old = &self.view.sessions;
        let n = old.iter().filter(|(h, _)| keep(h)).count() + usize::from(add.is_some());
        let mut v = Vec::with_capacity(n);
        v.extend(old.iter().filter(|(h, _)| keep(h)).cloned());
        if let Some((h, s)) = add {
            match find(&v, &h) {
                Ok(i) => v[i].1 = s,
                Err(i) => v.insert(i, (h, s)),
            }
        }
        self.view = Arc::new(View {
            sessions: v.into_boxed_slice(),
            login_disabled: self.view.login_disabled.clone(),
            policy: self.policy,
        });
        self.publish();
    }

    fn intern(&mut self, v: &str) -> Arc<str> {
        intern(&mut self.strings, self.policy.cap, v)
    }

    /// Number of sessions held (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.view.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.view.is_empty()
    }

    /// Checks a session (as [`View::check`]) and records the use (as
    /// [`Self::touch`]); what the request path does, in one call.
    pub fn use_session(
        &mut self,
        kind: Kind,
        token: &TokenHash,
        csrf: Option<Option<TokenHash>>,
        client: &Client,
        now: UnixMillis,
    ) -> Result<Used, Failure> {
        let c = self.view.check(kind, token, csrf, now)?;
        let (used, touch) = (
            c.used.clone(),
            self.view.needs_touch(&c, client.ip, &client.agent, now),
        );
        if touch {
            self.touch(token, client, now);
        }
        Ok(used)
    }

    /// Records a use of a session that passed the check: last use, idle
    /// expiry, client IP and agent, and marks it dirty. Does nothing if the
    /// session is gone or expired meanwhile, or if the use changes nothing
    /// kept (last use within [`Policy::touch_every`], same client).
    pub fn touch(&mut self, token: &TokenHash, client: &Client, now: UnixMillis) {
        let Some(s) = self.view.get(token) else {
            return;
        };
        if self.view.expired(s, now)
            || now.saturating_sub(s.last_used) < self.policy.touch_every(s.kind)
                && s.last_ip == client.ip
                && *s.last_agent == *client.agent
        {
            return;
        }
        let same_agent = *s.last_agent == *client.agent;
        let agent = (!same_agent).then(|| self.intern(&client.agent));
        let Ok(i) = find(&self.view.sessions, token) else {
            return;
        };
        let s = &mut self.sessions_mut()[i].1;
        s.last_used = now;
        s.last_ip = client.ip;
        if let Some(a) = agent {
            s.last_agent = a;
        }
        self.dirty.insert(*token);
        self.publish();
    }

    /// The sessions to remove so one more fits under the cap: every expired
    /// one, then, if still full, the one that expires soonest. Does not change
    /// the state; apply with [`Self::insert`] after the commit.
    pub fn evictions_for_add(&self, now: UnixMillis) -> Vec<TokenHash> {
        evictions(
            self.view.sessions.iter().map(|(h, s)| {
                let order = (self.policy.idle_expiry(s), s.created, s.id);
                (*h, self.view.expired(s, now), order)
            }),
            self.policy.cap,
        )
    }

    /// Whether a session fits without evicting one that is still live: an
    /// early add must not push out a session someone holds.
    pub fn has_room(&self, now: UnixMillis) -> bool {
        let live = self
            .view
            .sessions
            .iter()
            .filter(|(_, s)| !self.view.expired(s, now))
            .count();
        live < self.policy.cap
    }

    /// Marks a just inserted session as early: held but not listed.
    pub fn mark_early(&mut self, token: TokenHash) {
        self.early.push(token);
    }

    /// Ends a session's early state (its sign-in finished either way).
    /// Whether the session is still held: a password change, "sign out
    /// everywhere" or the account's removal may have removed it meanwhile.
    pub fn end_early(&mut self, token: &TokenHash) -> bool {
        self.early.retain(|h| h != token);
        self.contains(token)
    }

    /// A new session's stored record.
    pub fn new_record(
        &self,
        id: u64,
        kind: Kind,
        csrf: TokenHash,
        login_address: &str,
        client: &Client,
        now: UnixMillis,
    ) -> SessionRecord {
        SessionRecord {
            id,
            kind: kind.code(),
            csrf_hash: csrf.0,
            login_address: login_address.to_string(),
            created: now,
            last_used: now,
            expires: now.saturating_add(self.policy.idle_for(kind)),
            created_ip: client.ip,
            created_agent: client.agent.clone(),
            last_ip: client.ip,
            last_agent: client.agent.clone(),
        }
    }

    /// Applies a committed add: removes `evicted`, inserts the new session,
    /// publishes.
    pub fn insert(&mut self, evicted: &[TokenHash], token: TokenHash, rec: &SessionRecord) {
        let Some(kind) = Kind::from_code(rec.kind) else {
            return;
        };
        let s = Session {
            id: rec.id,
            kind,
            csrf: csrf_prefix(&TokenHash(rec.csrf_hash)),
            login_address: self.intern(&rec.login_address),
            created: rec.created,
            last_used: rec.last_used,
            last_ip: rec.last_ip,
            last_agent: self.intern(&rec.last_agent),
        };
        for h in evicted {
            self.dirty.remove(h);
        }
        self.rebuild(|h| !evicted.contains(h), Some((token, s)));
    }

    /// Whether a session with this hash is held.
    pub fn contains(&self, token: &TokenHash) -> bool {
        self.view.get(token).is_some()
    }

    /// Applies a committed removal; publishes.
    pub fn remove(&mut self, token: &TokenHash) -> bool {
        self.remove_many(std::slice::from_ref(token)) == 1
    }

    /// Applies a committed removal of several sessions; publishes once.
    /// The number that were held.
    pub fn remove_many(&mut self, tokens: &[TokenHash]) -> usize {
        for h in tokens {
            self.dirty.remove(h);
        }
        if !tokens.iter().any(|h| self.contains(h)) {
            return 0;
        }
        let before = self.view.sessions.len();
        self.rebuild(|h| !tokens.contains(h), None);
        before - self.view.sessions.len()
    }

    /// Applies a committed removal of every session but `keep`; publishes.
    pub fn remove_all_except(&mut self, keep: Option<TokenHash>) {
        self.dirty.retain(|h| Some(*h) == keep);
        self.rebuild(|h| Some(*h) == keep, None);
    }

    /// Expired sessions, to delete.
    pub fn expired_hashes(&self, now: UnixMillis) -> Vec<TokenHash> {
        self.view
            .sessions
            .iter()
            .filter(|(_, s)| self.view.expired(s, now))
            .map(|(h, _)| *h)
            .collect()
    }

    /// Whether extensions wait to be written.
    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// The extensions to write; the dirty set is cleared (put them back with
    /// [`Self::mark_dirty`] if the write fails).
    pub fn take_dirty(&mut self) -> Vec<Extension> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .filter_map(|h| {
                self.view.get(&h).map(|s| Extension {
                    hash: h,
                    last_used: s.last_used,
                    expires: self.policy.idle_expiry(s),
                    last_ip: s.last_ip,
                    last_agent: s.last_agent.to_string(),
                })
            })
            .collect()
    }

    /// Marks sessions dirty again after a failed write.
    pub fn mark_dirty(&mut self, hashes: impl IntoIterator<Item = TokenHash>) {
        self.dirty.extend(hashes);
    }

    /// The unexpired sessions, oldest first, with `current` marking the
    /// caller's. Created IP and agent are left empty (they are not held in
    /// memory; the listing caller reads them from the store).
    pub fn listing(&self, now: UnixMillis, current: Option<TokenHash>) -> Vec<(TokenHash, Listed)> {
        let mut v: Vec<_> = self
            .view
            .sessions
            .iter()
            .filter(|(h, s)| !self.view.expired(s, now) && !self.early.contains(h))
            .map(|(h, s)| {
                let l = Listed {
                    id: s.id,
                    kind: s.kind,
                    created: s.created,
                    last_used: s.last_used,
                    expires: self.policy.expires(s),
                    login_address: s.login_address.to_string(),
                    created_ip: None,
                    created_agent: String::new(),
                    last_ip: s.last_ip,
                    last_agent: s.last_agent.to_string(),
                    current: current == Some(*h),
                };
                (*h, l)
            })
            .collect();
        v.sort_by_key(|(_, l)| (l.created, l.id));
        v
    }

    /// The token hash of the session with opaque id `id`.
    pub fn find_id(&self, id: u64) -> Option<TokenHash> {
        self.view
            .sessions
            .iter()
            .find(|(h, s)| s.id == id && !self.early.contains(h))
            .map(|(h, _)| *h)
    }

    /// Every held session, for listings.
    pub fn iter(&self) -> impl Iterator<Item = (&TokenHash, &Session)> {
        self.view.sessions.iter().map(|(h, s)| (h, s))
    }
}

/// The expiry and CSRF steps of a session check, in the protocol's order,
/// shared by account and admin sessions. `csrf` as in [`View::check`];
/// `stored` is the CSRF hash or its first bytes (sessions hold 16, admin
/// sessions 32), compared in constant time with as many bytes of the
/// presented token's hash.
pub fn expiry_then_csrf(
    expired: bool,
    csrf: Option<Option<TokenHash>>,
    stored: &[u8],
) -> Result<(), Failure> {
    use subtle::ConstantTimeEq as _;
    if expired {
        return Err(Failure::Expired);
    }
    let matches = |c: &TokenHash| {
        !stored.is_empty()
            && c.0
                .get(..stored.len())
                .is_some_and(|p| bool::from(p.ct_eq(stored)))
    };
    match csrf {
        None => Ok(()),
        Some(Some(c)) if matches(&c) => Ok(()),
        Some(_) => Err(Failure::CsrfMismatch),
    }
}

/// The shared copy of a string (login addresses and agents repeat across an
/// account's sessions); the set is bounded by 4 × the cap and starts over
/// when full.
fn intern(strings: &mut HashSet<Arc<str>>, cap: usize, v: &str) -> Arc<str> {
    if let Some(a) = strings.get(v) {
        return a.clone();
    }
    if strings.len() >= 4 * cap {
        strings.clear();
    }
    let a: Arc<str> = Arc::from(v);
    strings.insert(a.clone());
    a
}

/// The sessions to remove so that one more fits under `cap`: every expired
/// one, then those that sort first by `order` (expiry, i.e. least recently
/// used first). Shared by the account and admin session stores.
pub fn evictions<K: Ord>(
    sessions: impl Iterator<Item = (TokenHash, bool, K)>,
    cap: usize,
) -> Vec<TokenHash> {
    let mut out = Vec::new();
    let mut live = Vec::new();
    for (h, expired, order) in sessions {
        if expired {
            out.push(h);
        } else {
            live.push((order, h));
        }
    }
    if live.len() >= cap {
        let excess = live.len() + 1 - cap;
        live.sort_by(|a, b| a.0.cmp(&b.0));
        out.extend(live.into_iter().take(excess).map(|(_, h)| h));
    }
    out
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
