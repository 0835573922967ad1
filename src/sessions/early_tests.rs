//! Early session writes (a session added while its sign-in's password is
//! verified) against real actors and a real redb file.

use std::sync::Arc;

use super::*;
use crate::clock::SystemClock;
use crate::credentials::HashCost;
use crate::store::Stores;

const NAME: &str = "demo";

async fn start() -> (tempfile::TempDir, Stores, SessionsHandle) {
    let dir = tempfile::tempdir().expect("tempdir");
    let stores = Stores::open(dir.path()).expect("stores");
    crate::setup::create_account(
        &stores,
        NAME,
        "demo@localhost",
        "demodemo",
        HashCost::minimal(),
        0,
    )
    .expect("account");
    let h = SessionsHandle::start(
        stores.accounts.clone(),
        Arc::new(SystemClock),
        Policy::default(),
        ActorTiming::default(),
    )
    .await
    .expect("sessions");
    (dir, stores, h)
}

/// Sessions of the account in the database (what a restart would load).
fn stored(stores: &Stores) -> Vec<TokenHash> {
    let (_, s) = crate::store::sessions::load(&stores.accounts, NAME)
        .expect("load")
        .expect("account");
    s.into_iter().map(|(h, _)| h).collect()
}

fn early(h: &SessionsHandle) -> EarlySession {
    h.add_early(NAME, Kind::WebAccount, "demo@localhost", Client::default())
}

async fn listed(h: &SessionsHandle) -> usize {
    h.list(NAME, None).await.expect("list").len()
}

#[tokio::test]
async fn finished_is_durable_and_listed_discarded_is_gone() {
    let (_dir, stores, h) = start().await;
    let e = early(&h);
    let Early::Added(new) = e.finish().await.expect("finish") else {
        panic!("not added early");
    };
    assert_eq!(stored(&stores), vec![new.token.hash()]);
    assert_eq!(listed(&h).await, 1);

    let e = early(&h);
    e.discard().await;
    assert_eq!(
        stored(&stores),
        vec![new.token.hash()],
        "removed when discard returns"
    );
    assert_eq!(listed(&h).await, 1);
}

#[tokio::test]
async fn unlisted_while_early_and_removed_when_dropped() {
    let (_dir, stores, h) = start().await;
    let mut e = early(&h);
    e.settle().await;
    let EarlyState::Added(new) = &e.state else {
        panic!("not added");
    };
    let token = new.token.hash();
    assert_eq!(
        stored(&stores),
        vec![token],
        "durable before the password verified"
    );
    assert_eq!(listed(&h).await, 0, "not listed while early");
    // A request given up midway (client gone): the session goes in the
    // background.
    drop(e);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !stored(&stores).is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never removed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(listed(&h).await, 0);
}

#[tokio::test]
async fn ended_meanwhile_is_gone() {
    let (_dir, stores, h) = start().await;
    let mut e = early(&h);
    e.settle().await;
    // "Sign out everywhere" (or a password change) while the password is
    // being verified.
    assert_eq!(h.revoke_all(NAME, None).await.expect("revoke"), 1);
    assert!(matches!(e.finish().await, Ok(Early::Gone)));
    assert!(stored(&stores).is_empty());
}

#[tokio::test]
async fn a_full_account_is_not_added_early_and_loses_nothing() {
    let (_dir, stores, h) = start().await;
    let cap = Policy::default().cap;
    for _ in 0..cap {
        h.add(NAME, Kind::WebAccount, "demo@localhost", Client::default())
            .await
            .expect("add");
    }
    let before = stored(&stores);
    assert_eq!(before.len(), cap);
    assert!(matches!(early(&h).finish().await, Ok(Early::NotAdded)));
    early(&h).discard().await;
    assert_eq!(stored(&stores), before, "no live session evicted");
}
