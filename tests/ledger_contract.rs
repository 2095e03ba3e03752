//! One contract for every ledger store: the in-memory one, SQLite and Redis (a real
//! `redis-server`) run the same tests.

#[path = "common/redis_server.rs"]
mod redis_server;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use genroute::breaker::BreakerConfig;
use genroute::ledger::memory::MemoryStore;
use genroute::ledger::sqlite::SqliteStore;
use genroute::ledger::{EntryState, LedgerError, Month, NewReservation, Store};
use genroute::{BreakerState, Fixed};

fn t(day: u32, sec: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 12, 0, sec).unwrap()
}

fn usd(s: &str) -> Fixed {
    s.parse().unwrap()
}

fn res(amount: &str) -> NewReservation {
    NewReservation {
        request_id: "req-1".into(),
        backend: "veo".into(),
        model: Some("veo-3".into()),
        amount: usd(amount),
        ttl_ms: 60_000,
    }
}

fn nov() -> Month {
    Month {
        year: 2026,
        month: 11,
    }
}

fn reserve_commit_release_and_in_doubt(s: &dyn Store) {
    let budget = usd("1.00");
    let a = s.reserve(&res("0.40"), budget, t(1, 0)).unwrap();
    let b = s.reserve(&res("0.40"), budget, t(1, 1)).unwrap();
    let over = s.reserve(&res("0.21"), budget, t(1, 2)).unwrap_err();
    assert!(matches!(over, LedgerError::OverBudget { .. }), "{over}");
    let c = s.reserve(&res("0.20"), budget, t(1, 3)).unwrap();
    let totals = s.totals(nov(), t(1, 4)).unwrap();
    assert_eq!(
        (totals.reserved, totals.spent()),
        (usd("1.00"), Fixed::ZERO)
    );
    s.commit(&a, t(1, 5)).unwrap();
    s.release(&b, "retryable", t(1, 6)).unwrap();
    s.keep_in_doubt(&c, "retryable", t(1, 7)).unwrap();
    let totals = s.totals(nov(), t(1, 8)).unwrap();
    assert_eq!(totals.committed, usd("0.40"));
    assert_eq!(totals.in_doubt, usd("0.20"));
    assert_eq!(totals.reserved, Fixed::ZERO);
    assert_eq!(totals.counted(), usd("0.60"));
    // A finished reservation cannot be finished again.
    assert!(matches!(
        s.commit(&a, t(1, 9)),
        Err(LedgerError::UnknownReservation(_))
    ));
    assert!(matches!(
        s.release(&a, "x", t(1, 9)),
        Err(LedgerError::UnknownReservation(_))
    ));
    assert!(matches!(
        s.commit("nope", t(1, 9)),
        Err(LedgerError::UnknownReservation(_))
    ));
}

fn exact_money_after_many_small_commits(s: &dyn Store) {
    for i in 0..100 {
        let id = s.reserve(&res("0.07"), usd("7.00"), t(2, i % 60)).unwrap();
        s.commit(&id, t(2, i % 60)).unwrap();
    }
    assert_eq!(s.totals(nov(), t(2, 59)).unwrap().committed, usd("7.00"));
    assert!(
        s.reserve(&res("0.000001"), usd("7.00"), t(2, 59)).is_err(),
        "not a micro-dollar over"
    );
}

fn expired_reservations_stop_counting_but_commits_still_land(s: &dyn Store) {
    let a = s.reserve(&res("0.90"), usd("1.00"), t(3, 0)).unwrap();
    assert!(s.reserve(&res("0.20"), usd("1.00"), t(3, 30)).is_err());
    // 60 s later the reservation's process is presumed dead.
    let b = s
        .reserve(
            &res("0.20"),
            usd("1.00"),
            t(3, 0) + chrono::Duration::seconds(61),
        )
        .unwrap();
    s.commit(&b, t(3, 0) + chrono::Duration::seconds(62))
        .unwrap();
    let states: Vec<_> = s
        .entries(Some(nov()))
        .unwrap()
        .into_iter()
        .map(|e| e.state)
        .collect();
    assert_eq!(states, [EntryState::Expired, EntryState::Committed]);
    // The frozen process wakes up and commits: money spent is recorded, not lost.
    s.commit(&a, t(3, 0) + chrono::Duration::seconds(63))
        .unwrap();
    assert_eq!(s.totals(nov(), t(3, 59)).unwrap().committed, usd("1.10"));
}

fn months_are_separate_and_old_months_stay_readable(s: &dyn Store) {
    let a = s.reserve(&res("0.50"), usd("0.50"), t(30, 0)).unwrap();
    s.commit(&a, t(30, 1)).unwrap();
    let dec = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    let b = s.reserve(&res("0.50"), usd("0.50"), dec).unwrap();
    s.commit(&b, dec).unwrap();
    assert_eq!(s.totals(nov(), dec).unwrap().committed, usd("0.50"));
    assert_eq!(
        s.totals(Month::of(dec), dec).unwrap().committed,
        usd("0.50")
    );
    assert_eq!(s.entries(Some(nov())).unwrap().len(), 1);
    assert_eq!(s.entries(None).unwrap().len(), 2);
    let e = &s.entries(Some(Month::of(dec))).unwrap()[0];
    assert_eq!(
        (e.month.as_str(), e.request_id.as_str(), e.backend.as_str()),
        ("2026-12", "req-1", "veo")
    );
    assert_eq!(
        (e.model.as_deref(), e.amount_usd, e.state),
        (Some("veo-3"), usd("0.50"), EntryState::Committed)
    );
    assert_eq!(e.created, "2026-12-01T00:00:00.000Z");
}

fn breakers_persist_and_update_atomically(s: &dyn Store) {
    let cfg = BreakerConfig {
        failure_threshold: 2,
        timeout_ms: 1000,
        half_open_requests: 1,
    };
    assert_eq!(s.breaker("veo").unwrap().state, BreakerState::Closed);
    for _ in 0..2 {
        s.update_breaker("veo", &mut |b| b.on_failure(5_000, &cfg))
            .unwrap();
    }
    let b = s.breaker("veo").unwrap();
    assert_eq!(b.state_at(5_500, &cfg), BreakerState::Open);
    assert_eq!(b.state_at(6_000, &cfg), BreakerState::HalfOpen);
    assert_eq!(s.breaker("pixverse").unwrap().state, BreakerState::Closed);
    s.update_breaker("veo", &mut |b| b.reset()).unwrap();
    assert_eq!(s.breaker("veo").unwrap().state, BreakerState::Closed);
}

fn concurrent_reservations_never_pass_the_budget(s: Arc<dyn Store>) {
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut won = 0;
                for i in 0..50 {
                    if let Ok(id) = s.reserve(&res("0.03"), usd("1.00"), t(4, i % 60)) {
                        s.commit(&id, t(4, i % 60)).unwrap();
                        won += 1;
                    }
                }
                won
            })
        })
        .collect();
    let won: u32 = threads.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(won, 33, "1.00 / 0.03 = 33 reservations fit");
    assert_eq!(s.totals(nov(), t(4, 59)).unwrap().committed, usd("0.99"));
}

macro_rules! contract {
    ($store:ident, $make:expr) => {
        mod $store {
            use super::*;
            #[test]
            fn reserve_commit_release_and_in_doubt() {
                super::reserve_commit_release_and_in_doubt(&$make);
            }
            #[test]
            fn exact_money_after_many_small_commits() {
                super::exact_money_after_many_small_commits(&$make);
            }
            #[test]
            fn expired_reservations_stop_counting_but_commits_still_land() {
                super::expired_reservations_stop_counting_but_commits_still_land(&$make);
            }
            #[test]
            fn months_are_separate_and_old_months_stay_readable() {
                super::months_are_separate_and_old_months_stay_readable(&$make);
            }
            #[test]
            fn breakers_persist_and_update_atomically() {
                super::breakers_persist_and_update_atomically(&$make);
            }
            #[test]
            fn concurrent_reservations_never_pass_the_budget() {
                super::concurrent_reservations_never_pass_the_budget(Arc::new($make));
            }
        }
    };
}

#[path = "common/scratch.rs"]
mod scratch;

fn sqlite() -> SqliteStore {
    SqliteStore::open(&scratch::scratch().join("ledger.sqlite3")).unwrap()
}

contract!(memory, MemoryStore::new());
contract!(sqlite_store, sqlite());
contract!(
    redis_store,
    genroute::ledger::redis::RedisStore::open(&redis_server::fresh_url()).unwrap()
);

#[test]
fn redis_down_fails_closed() {
    let server = redis_server::start();
    let url = format!("redis://127.0.0.1:{}/0", server.port);
    let store = genroute::ledger::redis::RedisStore::open(&url).unwrap();
    drop(server); // kills redis-server
    std::thread::sleep(std::time::Duration::from_millis(200));
    let err = store.reserve(&res("0.01"), usd("1"), t(6, 0)).unwrap_err();
    assert!(matches!(err, LedgerError::Store(_)), "{err}");
    assert!(store.totals(nov(), t(6, 0)).is_err());
}

#[test]
fn sqlite_reopens_with_its_data() {
    let path = scratch::scratch().join("ledger.sqlite3");
    {
        let s = SqliteStore::open(&path).unwrap();
        let id = s.reserve(&res("0.25"), usd("1"), t(5, 0)).unwrap();
        s.commit(&id, t(5, 1)).unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.totals(nov(), t(5, 2)).unwrap().committed, usd("0.25"));
}
