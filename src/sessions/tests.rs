use super::*;

fn account() -> AccountRecord {
    AccountRecord {
        name: "demo".into(),
        full_name: String::new(),
        addresses: vec!["demo@localhost".into()],
        password: String::new(),
        login_disabled: None,
        created: 0,
        destinations: Default::default(),
    }
}

fn h(i: u32) -> TokenHash {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&i.to_be_bytes());
    TokenHash(b)
}

fn add(s: &mut AccountSessions, i: u32, now: i64) -> Vec<TokenHash> {
    let ev = s.evictions_for_add(now);
    let rec = s.new_record(
        i as u64,
        Kind::WebAccount,
        h(1000 + i),
        "demo@localhost",
        &Client::default(),
        now,
    );
    s.insert(&ev, h(i), &rec);
    ev
}

const HOUR: i64 = 3600 * 1000;

#[test]
fn use_checks_in_order_and_extends() {
    let mut s = AccountSessions::new(account(), vec![], Policy::default());
    add(&mut s, 1, 0);
    let c = Client::new(None, "agent");
    assert_eq!(
        s.use_session(Kind::WebAccount, &h(2), None, &c, 1)
            .expect_err("unknown"),
        Failure::UnknownSession
    );
    assert_eq!(
        s.use_session(Kind::WebAccount, &h(1), Some(Some(h(9))), &c, 1)
            .expect_err("csrf"),
        Failure::CsrfMismatch
    );
    assert_eq!(
        s.use_session(Kind::WebAccount, &h(1), Some(None), &c, 1)
            .expect_err("csrf"),
        Failure::CsrfMismatch
    );
    let u = s
        .use_session(Kind::WebAccount, &h(1), Some(Some(h(1001))), &c, 23 * HOUR)
        .expect("ok");
    assert_eq!(&*u.login_address, "demo@localhost");
    // extended: still valid 47 h after creation, 24 h after last use
    assert!(
        s.use_session(Kind::WebAccount, &h(1), None, &c, 47 * HOUR - 1)
            .is_ok()
    );
    assert_eq!(
        s.use_session(Kind::WebAccount, &h(1), None, &c, 71 * HOUR)
            .expect_err("idle"),
        Failure::Expired
    );
    assert!(s.has_dirty());
    let ext = s.take_dirty();
    assert_eq!(ext.len(), 1);
    assert_eq!(ext[0].expires, 47 * HOUR - 1 + 24 * HOUR);
    assert!(!s.has_dirty());
}

#[test]
fn absolute_lifetime() {
    let mut s = AccountSessions::new(
        account(),
        vec![],
        Policy {
            max: 48 * HOUR,
            ..Policy::default()
        },
    );
    add(&mut s, 1, 0);
    let c = Client::default();
    for t in (1..48).map(|x| x * HOUR) {
        assert!(s.use_session(Kind::WebAccount, &h(1), None, &c, t).is_ok());
    }
    assert_eq!(
        s.use_session(Kind::WebAccount, &h(1), None, &c, 48 * HOUR)
            .expect_err("max"),
        Failure::Expired
    );
}

#[test]
fn disabled_account_refuses_valid_sessions() {
    let mut s = AccountSessions::new(account(), vec![], Policy::default());
    add(&mut s, 1, 0);
    let mut rec = account();
    rec.login_disabled = Some("unpaid".into());
    s.set_account(rec);
    assert_eq!(
        s.use_session(Kind::WebAccount, &h(1), None, &Client::default(), 1)
            .expect_err("disabled"),
        Failure::LoginDisabled("unpaid".into())
    );
    // a session works only on the interface kind that created it
    assert_eq!(
        s.use_session(Kind::WebMail, &h(1), None, &Client::default(), 1)
            .expect_err("kind"),
        Failure::UnknownSession
    );
    // an unknown token learns nothing about the account
    assert_eq!(
        s.use_session(Kind::WebAccount, &h(7), None, &Client::default(), 1)
            .expect_err("unknown"),
        Failure::UnknownSession
    );
}

#[test]
fn cap_evicts_expired_first_then_soonest_expiry() {
    let mut s = AccountSessions::new(account(), vec![], Policy::default());
    for i in 0..100 {
        assert!(add(&mut s, i, i as i64).is_empty());
    }
    assert_eq!(s.len(), 100);
    // use session 0 (later than touch_every, so the use is recorded) so
    // that session 1 is now the least recently used
    s.use_session(Kind::WebAccount, &h(0), None, &Client::default(), 61_000)
        .expect("ok");
    let ev = add(&mut s, 100, 61_100);
    assert_eq!(ev, vec![h(1)]);
    assert_eq!(s.len(), 100);
    assert!(s.contains(&h(0)) && !s.contains(&h(1)) && s.contains(&h(100)));

    // after 24 h, the ones not used are expired: all expired go at once
    let later = 24 * HOUR + 150;
    let ev = add(&mut s, 101, later);
    assert!(ev.len() > 1);
    assert!(
        !ev.contains(&h(0)),
        "session 0 was used at 61 s and is still valid"
    );
    assert!(s.len() <= 100);
}

#[test]
fn remove_all_except_keeps_one() {
    let mut s = AccountSessions::new(account(), vec![], Policy::default());
    for i in 0..5 {
        add(&mut s, i, 0);
    }
    s.use_session(Kind::WebAccount, &h(3), None, &Client::default(), 1)
        .expect("ok");
    s.remove_all_except(Some(h(2)));
    assert_eq!(s.len(), 1);
    assert!(s.contains(&h(2)));
    assert!(!s.has_dirty());
}

#[test]
fn model_check_against_naive_reference() {
    // A small deterministic random walk compared with a naive model.
    let mut s = AccountSessions::new(
        account(),
        vec![],
        Policy {
            cap: 5,
            max: i64::MAX / 2,
            ..Policy::default()
        },
    );
    let mut model: Vec<(u32, i64, i64)> = Vec::new(); // (id, created, expires)
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut now = 0i64;
    for step in 0..2000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        now += (x % (6 * HOUR as u64)) as i64;
        let pick = (x >> 32) as u32 % 8;
        if x % 3 == 0 {
            add(&mut s, step + 100, now);
            // model eviction
            model.retain(|&(_, _, e)| now < e);
            if model.len() >= 5 {
                model.sort_by_key(|&(id, c, e)| (e, c, id));
                model.remove(0);
            }
            model.push((step + 100, now, now + 24 * HOUR));
        } else if let Some(&(id, _, _)) = model.get(pick as usize % model.len().max(1)) {
            let r = s.use_session(Kind::WebAccount, &h(id), None, &Client::default(), now);
            let m = model.iter_mut().find(|m| m.0 == id).expect("in model");
            if now < m.2 {
                assert!(r.is_ok());
                m.2 = now + 24 * HOUR;
            } else {
                assert_eq!(r.expect_err("expired"), Failure::Expired);
            }
        }
        assert!(s.len() <= 5);
        for m in &model {
            assert!(
                s.contains(&h(m.0)),
                "step {step}: model has {} but state does not",
                m.0
            );
        }
    }
}

#[test]
fn listing_skips_expired_marks_current_and_finds_ids() {
    let mut s = AccountSessions::new(account(), vec![], Policy::default());
    add(&mut s, 1, 0);
    add(&mut s, 2, 10);
    add(&mut s, 3, 20);
    let c = Client::new("192.0.2.1".parse().ok(), "later");
    // session 3 is used much later; 1 and 2 expire
    s.use_session(Kind::WebAccount, &h(3), None, &c, 23 * HOUR)
        .expect("use");
    let l = s.listing(23 * HOUR, Some(h(3)));
    assert_eq!(l.len(), 3);
    assert_eq!(
        l.iter().map(|(_, x)| x.id).collect::<Vec<_>>(),
        vec![1, 2, 3],
        "oldest first"
    );
    assert!(l[2].1.current && !l[0].1.current);
    assert_eq!(l[2].1.last_agent, "later");
    assert_eq!(l[2].1.last_ip, c.ip);
    let l = s.listing(25 * HOUR, None);
    assert_eq!(l.len(), 1, "expired sessions are not listed");
    assert!(!l[0].1.current);
    // expiry shown is capped by the absolute lifetime
    let max = Policy::default().max;
    let mut long = AccountSessions::new(account(), vec![], Policy::default());
    add(&mut long, 7, 0);
    for i in 1..=35 {
        long.use_session(Kind::WebAccount, &h(7), None, &c, i * 20 * HOUR)
            .expect("use");
    }
    assert_eq!(long.listing(35 * 20 * HOUR, None)[0].1.expires, max);
    assert_eq!(s.find_id(3), Some(h(3)));
    assert_eq!(s.find_id(99), None);
}

#[test]
fn uses_are_recorded_only_when_they_change_what_is_kept() {
    let mut s = AccountSessions::new(account(), vec![], Policy::default());
    add(&mut s, 1, 0);
    let every = Policy::default().touch_every(Kind::WebAccount);
    assert_eq!(every, 60_000);
    let same = Client::default();
    s.use_session(Kind::WebAccount, &h(1), None, &same, every - 1)
        .expect("ok");
    assert!(
        !s.has_dirty(),
        "a use within touch_every by the same client"
    );
    let ip = Client {
        ip: Some("10.0.0.1".parse().expect("ip")),
        agent: String::new(),
    };
    s.use_session(Kind::WebAccount, &h(1), None, &ip, every - 1)
        .expect("ok");
    let ext = s.take_dirty();
    assert_eq!((ext.len(), ext[0].last_ip), (1, ip.ip), "a new IP is kept");
    let agent = Client::new(ip.ip, "other agent");
    s.use_session(Kind::WebAccount, &h(1), None, &agent, every)
        .expect("ok");
    assert_eq!(s.take_dirty()[0].last_agent, "other agent");
    s.use_session(Kind::WebAccount, &h(1), None, &agent, 3 * every)
        .expect("ok");
    let ext = s.take_dirty();
    assert_eq!(
        (ext[0].last_used, ext[0].expires),
        (3 * every, 3 * every + 24 * HOUR),
        "a use after touch_every extends the session"
    );
    // short idle lifetimes are recorded at a finer grain
    let short = Policy {
        idle: 1600,
        ..Policy::default()
    };
    assert_eq!(short.touch_every(Kind::WebAccount), 100);
}

#[test]
fn every_change_is_published_before_it_returns() {
    let mut s = AccountSessions::new(account(), vec![], Policy::default());
    let published = s.published();
    add(&mut s, 1, 0);
    add(&mut s, 2, 0);
    let check = |p: &Published, i: u32| {
        p.load()
            .check(Kind::WebAccount, &h(i), None, 1)
            .map(|c| c.used.kind)
    };
    assert_eq!(check(&published, 1), Ok(Kind::WebAccount));
    // a reader holding an old view keeps it; new reads see the change
    let old = published.load_full();
    assert!(s.remove(&h(1)));
    assert_eq!(check(&published, 1), Err(Failure::UnknownSession));
    assert!(old.check(Kind::WebAccount, &h(1), None, 1).is_ok());
    let mut rec = account();
    rec.login_disabled = Some("unpaid".into());
    s.set_account(rec);
    assert_eq!(
        check(&published, 2),
        Err(Failure::LoginDisabled("unpaid".into()))
    );
    s.remove_all_except(None);
    assert_eq!(check(&published, 2), Err(Failure::UnknownSession));
}

#[test]
fn expiry_is_derived_from_last_use_and_creation() {
    let p = Policy {
        idle: 10,
        max: 100,
        webmail_idle: 20,
        webmail_max: 50,
        ..Policy::default()
    };
    let mut s = Session {
        id: 1,
        kind: Kind::WebAccount,
        csrf: [0; 16],
        login_address: Arc::from("a"),
        created: 1000,
        last_used: 1000,
        last_ip: None,
        last_agent: Arc::from(""),
    };
    assert_eq!(p.idle_expiry(&s), 1010);
    assert_eq!(p.expires(&s), 1010);
    s.last_used = 1095;
    assert_eq!(p.idle_expiry(&s), 1105);
    assert_eq!(p.expires(&s), 1100, "absolute maximum first");
    s.kind = Kind::WebMail;
    assert_eq!(p.idle_expiry(&s), 1115);
    assert_eq!(p.expires(&s), 1050, "webmail's own maximum");
}

#[test]
fn lookup_on_sorted_sessions() {
    // Loaded out of order; lookups find first, middle and last keys.
    let mut s = AccountSessions::new(account(), vec![], Policy::default());
    for i in [5u32, 1, 9, 3, 7] {
        add(&mut s, i, 0);
    }
    let keys: Vec<[u8; 32]> = s.iter().map(|(h, _)| h.0).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "held sorted by key");
    for i in [1u32, 5, 9] {
        assert_eq!(s.view().get(&h(i)).map(|x| x.id), Some(u64::from(i)));
        assert!(s.contains(&h(i)));
    }
    for i in [0u32, 2, 10, u32::MAX] {
        assert!(s.view().get(&h(i)).is_none());
    }
    let c = Client::default();
    assert!(s.use_session(Kind::WebAccount, &h(9), None, &c, 1).is_ok());
    assert_eq!(
        s.use_session(Kind::WebAccount, &h(10), None, &c, 1)
            .expect_err("absent"),
        Failure::UnknownSession
    );
    assert_eq!(s.remove_many(&[h(1), h(9), h(4)]), 2);
    assert_eq!(s.len(), 3);
    assert!(s.view().get(&h(1)).is_none() && s.view().get(&h(5)).is_some());
    // Reloaded from records in any order.
    let recs: Vec<_> = [9u32, 2, 6]
        .iter()
        .map(|&i| {
            let r = s.new_record(u64::from(i), Kind::WebAccount, h(1000 + i), "a", &c, 0);
            (h(i), r)
        })
        .collect();
    let t = AccountSessions::new(account(), recs, Policy::default());
    for i in [2u32, 6, 9] {
        assert_eq!(t.view().get(&h(i)).map(|x| x.id), Some(u64::from(i)));
    }
    assert!(t.view().get(&h(5)).is_none());
}

#[test]
fn csrf_held_as_a_16_byte_prefix() {
    let mut s = AccountSessions::new(account(), vec![], Policy::default());
    add(&mut s, 1, 0);
    let c = Client::default();
    // Same first 16 bytes as h(1001), different tail: the stored record has
    // all 32 bytes, memory holds 16.
    let mut near = h(1001);
    near.0[31] = 0xff;
    assert!(
        s.use_session(Kind::WebAccount, &h(1), Some(Some(near)), &c, 1)
            .is_ok()
    );
    let mut off = h(1001);
    off.0[15] ^= 1;
    assert_eq!(
        s.use_session(Kind::WebAccount, &h(1), Some(Some(off)), &c, 1)
            .expect_err("csrf"),
        Failure::CsrfMismatch
    );
    assert_eq!(
        expiry_then_csrf(false, Some(Some(h(1))), &[]),
        Err(Failure::CsrfMismatch),
        "an empty stored hash never matches"
    );
    assert!(expiry_then_csrf(false, Some(Some(h(1))), &h(1).0).is_ok());
}

#[test]
fn early_sessions_are_unlisted_until_ended_and_never_evict_live_ones() {
    let mut s = AccountSessions::new(account(), vec![], Policy::default());
    add(&mut s, 1, 0);
    assert!(s.has_room(0));
    add(&mut s, 2, 10);
    s.mark_early(h(2));
    // Held (its token is nobody's yet), but neither listed nor revocable.
    assert!(s.contains(&h(2)));
    let ids = |s: &AccountSessions| {
        s.listing(20, None)
            .iter()
            .map(|(_, l)| l.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&s), vec![1]);
    assert_eq!(s.find_id(2), None);
    assert!(s.end_early(&h(2)), "still held");
    assert_eq!(ids(&s), vec![1, 2]);
    assert_eq!(s.find_id(2), Some(h(2)));

    // Ended after it was removed meanwhile (e.g. a password change).
    add(&mut s, 3, 30);
    s.mark_early(h(3));
    s.remove_all_except(Some(h(1)));
    assert!(!s.end_early(&h(3)));
    assert_eq!(ids(&s), vec![1]);

    // Room counts live sessions only: full of live ones, none; once they
    // have expired, an early add would only evict expired ones.
    let mut full = AccountSessions::new(account(), vec![], Policy::default());
    for i in 0..100 {
        add(&mut full, i, i as i64);
    }
    assert!(!full.has_room(200));
    assert!(full.has_room(25 * HOUR));
    full.remove(&h(0));
    assert!(full.has_room(200));
}
