//! One contract for every ledger store: the in-memory one, SQLite, Redis (a real
//! `redis-server`) and a real three-master Redis Cluster run the same tests.

#[path = "common/redis_cluster.rs"]
mod redis_cluster;
#[path = "common/redis_server.rs"]
mod redis_server;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use genroute::breaker::{BreakerChange, BreakerConfig};
use genroute::jobs::{Job, JobState};
use genroute::store::memory::MemoryStore;
use genroute::store::redis::RedisStore;
use genroute::store::sqlite::SqliteStore;
use genroute::store::{EntryState, LevelLimit, Month, NewReservation, Payer, Store, StoreError};
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
        levels: Vec::new(),
        payer: Payer::default(),
    }
}

/// A reservation on levels: (key, budget) pairs.
fn on(amount: &str, levels: &[(&str, &str)]) -> NewReservation {
    NewReservation {
        levels: levels
            .iter()
            .map(|(k, b)| LevelLimit {
                key: k.to_string(),
                budget: usd(b),
            })
            .collect(),
        payer: Payer {
            key: Some("web".into()),
            team: Some("growth".into()),
        },
        ..res(amount)
    }
}

async fn counted(s: &dyn Store, levels: &[&str], now: DateTime<Utc>) -> Vec<Fixed> {
    let keys: Vec<String> = levels.iter().map(|l| l.to_string()).collect();
    s.level_totals(&keys, now)
        .await
        .unwrap()
        .iter()
        .map(|t| t.counted())
        .collect()
}

async fn levels_are_reserved_and_settled_together(s: &dyn Store) {
    const TEAM: &str = "team:growth@2026-11";
    const KEY: &str = "key:web@2026-11-01";
    let levels = [(TEAM, "1.00"), (KEY, "0.50")];
    let a = s
        .reserve(&on("0.30", &levels), usd("100"), t(1, 0))
        .await
        .unwrap();
    // The key's daily level refuses the second: nothing is counted anywhere for it.
    let over = s
        .reserve(&on("0.30", &levels), usd("100"), t(1, 1))
        .await
        .unwrap_err();
    match &over {
        StoreError::OverBudget {
            level,
            counted,
            budget,
            ..
        } => {
            assert_eq!(level.as_deref(), Some(KEY));
            assert_eq!((*counted, *budget), (usd("0.30"), usd("0.50")));
        }
        e => panic!("{e}"),
    }
    assert!(
        over.to_string().contains("`key:web` for 2026-11-01"),
        "{over}"
    );
    assert_eq!(
        counted(s, &[TEAM, KEY], t(1, 2)).await,
        [usd("0.30"), usd("0.30")]
    );
    assert_eq!(
        s.totals(nov(), t(1, 2)).await.unwrap().counted(),
        usd("0.30")
    );
    // The month's own budget refuses too, naming no level.
    let month = s
        .reserve(&on("0.10", &levels), usd("0.35"), t(1, 3))
        .await
        .unwrap_err();
    assert!(
        matches!(month, StoreError::OverBudget { level: None, .. }),
        "{month}"
    );
    // Each finish moves every level with the month.
    let b = s
        .reserve(&on("0.20", &levels), usd("100"), t(1, 4))
        .await
        .unwrap();
    let c = s
        .reserve(&on("0.40", &[(TEAM, "1.00")]), usd("100"), t(1, 5))
        .await
        .unwrap();
    s.commit(&a, t(1, 6)).await.unwrap();
    s.release(&b, "retryable", t(1, 7)).await.unwrap();
    s.keep_in_doubt(&c, "retryable", t(1, 8)).await.unwrap();
    let keys: Vec<String> = [TEAM, KEY].map(String::from).to_vec();
    let got = s.level_totals(&keys, t(1, 9)).await.unwrap();
    assert_eq!(
        (got[0].committed, got[0].in_doubt, got[0].reserved),
        (usd("0.30"), usd("0.40"), Fixed::ZERO)
    );
    assert_eq!(
        (got[1].committed, got[1].in_doubt, got[1].reserved),
        (usd("0.30"), Fixed::ZERO, Fixed::ZERO)
    );
    // A new day starts at zero on the daily level, not on the monthly one.
    let next_day = [(TEAM, "2.00"), ("key:web@2026-11-02", "0.50")];
    let n = s
        .reserve(&on("0.50", &next_day), usd("100"), t(2, 5))
        .await
        .unwrap();
    s.commit(&n, t(2, 6)).await.unwrap();
    assert_eq!(counted(s, &[TEAM], t(2, 6)).await, [usd("1.20")]);
    assert!(s
        .reserve(&on("0.01", &[(TEAM, "1.20")]), usd("100"), t(2, 7))
        .await
        .is_err());
    // Expiry settles the levels too: an unsent reservation stops counting everywhere.
    let e = s
        .reserve(&on("0.05", &[(TEAM, "2.00")]), usd("100"), t(3, 0))
        .await
        .unwrap();
    let later = t(3, 0) + chrono::Duration::milliseconds(60_001);
    assert_eq!(counted(s, &[TEAM], later).await, [usd("1.20")]);
    let sent = s
        .reserve(&on("0.05", &[(TEAM, "2.00")]), usd("100"), later)
        .await
        .unwrap();
    s.mark_sent(&sent, later).await.unwrap();
    let much_later = later + chrono::Duration::milliseconds(60_001);
    assert_eq!(counted(s, &[TEAM], much_later).await, [usd("1.25")]);
    assert!(
        s.commit(&e, much_later).await.is_ok(),
        "a late commit of an expired one lands"
    );
    assert_eq!(counted(s, &[TEAM], much_later).await, [usd("1.30")]);
    let month = s.totals(nov(), much_later).await.unwrap();
    assert_eq!(
        month.counted(),
        usd("1.30"),
        "the month counts what its levels count"
    );
    // The entries record their payer and levels.
    let entries = s.entries(Some(nov()), much_later).await.unwrap();
    let first = entries.iter().find(|x| x.id == a).unwrap();
    assert_eq!(
        (first.key.as_deref(), first.team.as_deref()),
        (Some("web"), Some("growth"))
    );
    assert_eq!(first.levels, [KEY.to_string(), TEAM.to_string()]);
    // Malformed levels are refused before anything is written.
    for bad in ["team:x@2026-12", "team x@2026-11", "nope"] {
        assert!(
            s.reserve(&on("0.01", &[(bad, "9")]), usd("100"), t(4, 0))
                .await
                .is_err(),
            "{bad}"
        );
    }
    assert!(s
        .reserve(
            &on("0.01", &[(TEAM, "9"), (TEAM, "9")]),
            usd("100"),
            t(4, 0)
        )
        .await
        .is_err());
    assert_eq!(
        s.totals(nov(), t(4, 1)).await.unwrap().counted(),
        usd("1.30")
    );
}

async fn slots_bound_their_members_until_they_end(s: &dyn Store) {
    assert_eq!(
        s.take_slot("rate:web", "a", 2, 1_000, 0).await.unwrap(),
        None
    );
    assert_eq!(
        s.take_slot("rate:web", "b", 2, 1_500, 10).await.unwrap(),
        None
    );
    assert_eq!(
        s.take_slot("rate:web", "c", 2, 2_000, 20).await.unwrap(),
        Some(1_000)
    );
    // A member that holds a place renews it.
    assert_eq!(
        s.take_slot("rate:web", "a", 2, 3_000, 30).await.unwrap(),
        None
    );
    assert_eq!(
        s.take_slot("rate:web", "c", 2, 2_000, 40).await.unwrap(),
        Some(1_500)
    );
    // Another set is separate.
    assert_eq!(
        s.take_slot("rate:other", "c", 1, 2_000, 40).await.unwrap(),
        None
    );
    // A place ends at its time, or when dropped.
    assert_eq!(
        s.take_slot("rate:web", "c", 2, 4_000, 1_500).await.unwrap(),
        None
    );
    s.drop_slot("rate:web", "a").await.unwrap();
    s.drop_slot("rate:web", "never").await.unwrap();
    assert_eq!(
        s.take_slot("rate:web", "d", 2, 4_000, 1_600).await.unwrap(),
        None
    );
    assert_eq!(
        s.take_slot("rate:web", "e", 2, 4_000, 1_700).await.unwrap(),
        Some(4_000)
    );
}

fn nov() -> Month {
    Month {
        year: 2026,
        month: 11,
    }
}

async fn reserve_commit_release_and_in_doubt(s: &dyn Store) {
    let budget = usd("1.00");
    let a = s.reserve(&res("0.40"), budget, t(1, 0)).await.unwrap();
    let b = s.reserve(&res("0.40"), budget, t(1, 1)).await.unwrap();
    let over = s.reserve(&res("0.21"), budget, t(1, 2)).await.unwrap_err();
    assert!(matches!(over, StoreError::OverBudget { .. }), "{over}");
    let c = s.reserve(&res("0.20"), budget, t(1, 3)).await.unwrap();
    let totals = s.totals(nov(), t(1, 4)).await.unwrap();
    assert_eq!(
        (totals.reserved, totals.spent()),
        (usd("1.00"), Fixed::ZERO)
    );
    s.commit(&a, t(1, 5)).await.unwrap();
    s.release(&b, "retryable", t(1, 6)).await.unwrap();
    s.keep_in_doubt(&c, "retryable", t(1, 7)).await.unwrap();
    let totals = s.totals(nov(), t(1, 8)).await.unwrap();
    assert_eq!(totals.committed, usd("0.40"));
    assert_eq!(totals.in_doubt, usd("0.20"));
    assert_eq!(totals.reserved, Fixed::ZERO);
    assert_eq!(totals.counted(), usd("0.60"));
    // A finished reservation cannot be finished again.
    assert!(matches!(
        s.commit(&a, t(1, 9)).await,
        Err(StoreError::UnknownReservation(_))
    ));
    assert!(matches!(
        s.release(&a, "x", t(1, 9)).await,
        Err(StoreError::UnknownReservation(_))
    ));
    assert!(matches!(
        s.commit("nope", t(1, 9)).await,
        Err(StoreError::UnknownReservation(_))
    ));
}

async fn exact_money_after_many_small_commits(s: &dyn Store) {
    for i in 0..100 {
        let id = s
            .reserve(&res("0.07"), usd("7.00"), t(2, i % 60))
            .await
            .unwrap();
        s.commit(&id, t(2, i % 60)).await.unwrap();
    }
    assert_eq!(
        s.totals(nov(), t(2, 59)).await.unwrap().committed,
        usd("7.00")
    );
    assert!(
        s.reserve(&res("0.000001"), usd("7.00"), t(2, 59))
            .await
            .is_err(),
        "not a micro-dollar over"
    );
}

async fn expired_reservations_stop_counting_but_commits_still_land(s: &dyn Store) {
    let a = s.reserve(&res("0.90"), usd("1.00"), t(3, 0)).await.unwrap();
    assert!(s
        .reserve(&res("0.20"), usd("1.00"), t(3, 30))
        .await
        .is_err());
    // 60 s later the reservation's process is presumed dead.
    let b = s
        .reserve(
            &res("0.20"),
            usd("1.00"),
            t(3, 0) + chrono::Duration::seconds(61),
        )
        .await
        .unwrap();
    s.commit(&b, t(3, 0) + chrono::Duration::seconds(62))
        .await
        .unwrap();
    let states: Vec<_> = s
        .entries(Some(nov()), t(28, 0))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.state)
        .collect();
    assert_eq!(states, [EntryState::Expired, EntryState::Committed]);
    // The frozen process wakes up and commits: money spent is recorded, not lost.
    s.commit(&a, t(3, 0) + chrono::Duration::seconds(63))
        .await
        .unwrap();
    assert_eq!(
        s.totals(nov(), t(3, 59)).await.unwrap().committed,
        usd("1.10")
    );
}

async fn months_are_separate_and_old_months_stay_readable(s: &dyn Store) {
    let a = s
        .reserve(&res("0.50"), usd("0.50"), t(30, 0))
        .await
        .unwrap();
    s.commit(&a, t(30, 1)).await.unwrap();
    let dec = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    let b = s.reserve(&res("0.50"), usd("0.50"), dec).await.unwrap();
    s.commit(&b, dec).await.unwrap();
    assert_eq!(s.totals(nov(), dec).await.unwrap().committed, usd("0.50"));
    assert_eq!(
        s.totals(Month::of(dec), dec).await.unwrap().committed,
        usd("0.50")
    );
    assert_eq!(s.entries(Some(nov()), t(28, 0)).await.unwrap().len(), 1);
    assert_eq!(s.entries(None, dec).await.unwrap().len(), 2);
    let e = &s.entries(Some(Month::of(dec)), dec).await.unwrap()[0];
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

async fn breakers_persist_and_update_atomically(s: &dyn Store) {
    let cfg = BreakerConfig {
        failure_threshold: 2,
        timeout_ms: 1000,
        half_open_requests: 1,
    };
    let names = ["veo".to_string(), "pixverse".to_string()];
    assert_eq!(
        s.breakers(&names).await.unwrap()[0].state,
        BreakerState::Closed
    );
    for _ in 0..2 {
        s.update_breaker("veo", BreakerChange::Failure, 5_000, cfg)
            .await
            .unwrap();
    }
    let [b, p] = s.breakers(&names).await.unwrap()[..] else {
        panic!("two breakers")
    };
    assert_eq!(b.state_at(5_500, &cfg), BreakerState::Open);
    assert_eq!(b.state_at(6_000, &cfg), BreakerState::HalfOpen);
    assert_eq!(p.state, BreakerState::Closed);
    // One probe is admitted while half-open, the second is refused.
    let (_, first) = s
        .update_breaker("veo", BreakerChange::Acquire, 6_000, cfg)
        .await
        .unwrap();
    let (_, second) = s
        .update_breaker("veo", BreakerChange::Acquire, 6_001, cfg)
        .await
        .unwrap();
    assert_eq!((first, second), (true, false));
    s.update_breaker("veo", BreakerChange::Reset, 6_002, cfg)
        .await
        .unwrap();
    assert_eq!(
        s.breakers(&names).await.unwrap()[0].state,
        BreakerState::Closed
    );
}

/// A reservation whose create call was sent keeps counting after its expiry (in doubt): the
/// provider may have billed it. One never sent is released.
async fn expired_after_send_stays_counted(s: &dyn Store) {
    let budget = usd("1.00");
    let sent = s.reserve(&res("0.40"), budget, t(7, 0)).await.unwrap();
    let unsent = s.reserve(&res("0.30"), budget, t(7, 1)).await.unwrap();
    s.mark_sent(&sent, t(7, 1)).await.unwrap();
    let later = t(7, 0) + chrono::Duration::seconds(61);
    // Its frozen process wakes up after the expiry and reports a failure: nothing has read or
    // settled the month since, and still the release does not un-count it.
    s.release(&sent, "retryable", later).await.unwrap();
    let totals = s.totals(nov(), later).await.unwrap();
    assert_eq!(totals.reserved, Fixed::ZERO);
    assert_eq!(totals.in_doubt, usd("0.40"), "the sent one is counted");
    assert_eq!(totals.counted(), usd("0.40"), "the unsent one is released");
    // The budget sees it too: 0.61 no longer fits.
    assert!(s.reserve(&res("0.61"), budget, later).await.is_err());
    let states: Vec<_> = s
        .entries(Some(nov()), later)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.state, e.sent.is_some()))
        .collect();
    assert_eq!(
        states,
        [(EntryState::InDoubt, true), (EntryState::Expired, false)]
    );
    // A late commit turns the doubt into spend.
    s.commit(&sent, later).await.unwrap();
    let totals = s.totals(nov(), later).await.unwrap();
    assert_eq!(
        (totals.committed, totals.in_doubt),
        (usd("0.40"), Fixed::ZERO)
    );
    assert!(matches!(
        s.mark_sent(&unsent, later).await,
        Err(StoreError::UnknownReservation(_))
    ));
}

async fn concurrent_reservations_never_pass_the_budget(s: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut won = 0;
                for i in 0..50 {
                    if let Ok(id) = s.reserve(&res("0.03"), usd("1.00"), t(4, i % 60)).await {
                        s.commit(&id, t(4, i % 60)).await.unwrap();
                        won += 1;
                    }
                }
                won
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += t.await.unwrap();
    }
    assert_eq!(won, 33, "1.00 / 0.03 = 33 reservations fit");
    assert_eq!(
        s.totals(nov(), t(4, 59)).await.unwrap().committed,
        usd("0.99")
    );
}

fn a_job(id: &str, owner: &str, lease: i64, created: i64) -> Job {
    Job {
        id: id.into(),
        state: JobState::Queued,
        created_ms: created,
        updated_ms: created,
        finished_ms: None,
        request: serde_json::json!({"prompt": "a fox"}),
        steps: vec![],
        next_step: 0,
        attempts: vec![],
        current: None,
        cost_usd: Fixed::ZERO,
        outcome: None,
        error: None,
        webhook: None,
        api: None,
        tenancy: None,
        owner: Some(owner.into()),
        lease_until_ms: lease,
    }
}

/// Jobs: one owner at a time (fenced writes), claims of expired leases only, renewals that
/// say which were lost, listing newest first with a cursor, retention of ended jobs.
async fn jobs_are_fenced_claimed_and_listed(s: &dyn Store) {
    s.create_job(&a_job("j1", "A", 1000, 1)).await.unwrap();
    s.create_job(&a_job("j2", "A", 1000, 2)).await.unwrap();
    let mut done = a_job("j3", "A", 0, 3);
    done.state = JobState::Succeeded;
    done.finished_ms = Some(10);
    s.create_job(&done).await.unwrap();
    assert!(
        s.create_job(&a_job("j1", "A", 1000, 1)).await.is_err(),
        "ids are unique"
    );
    let j1 = s.job("j1").await.unwrap().unwrap();
    assert_eq!((j1.owner.as_deref(), j1.lease_until_ms), (Some("A"), 1000));
    assert_eq!(s.job("nope").await.unwrap(), None);

    let mut running = j1.clone();
    running.state = JobState::Running;
    assert!(s.save_job(&running).await.unwrap());
    let mut impostor = running.clone();
    impostor.owner = Some("B".into());
    assert!(!s.save_job(&impostor).await.unwrap(), "B does not hold j1");

    // Leases not yet expired are not claimed; expired ones are, once, and only active jobs.
    assert!(s.claim_jobs("B", 500, 5000, 10).await.unwrap().is_empty());
    let mut claimed: Vec<String> = s
        .claim_jobs("B", 1500, 5000, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| {
            assert_eq!((j.owner.as_deref(), j.lease_until_ms), (Some("B"), 5000));
            j.id
        })
        .collect();
    claimed.sort();
    assert_eq!(claimed, ["j1", "j2"]);
    assert!(s.claim_jobs("C", 1500, 5000, 10).await.unwrap().is_empty());
    assert_eq!(s.job("j1").await.unwrap().unwrap().state, JobState::Running);

    // The old owner is fenced out; the new one writes.
    assert!(!s.save_job(&running).await.unwrap(), "A lost j1 to B");
    let mut by_b = s.job("j1").await.unwrap().unwrap();
    by_b.attempts.clear();
    by_b.next_step = 1;
    assert!(s.save_job(&by_b).await.unwrap());
    assert_eq!(s.job("j1").await.unwrap().unwrap().next_step, 1);
    assert_eq!(
        s.renew_jobs("A", &["j1".into()], 9000).await.unwrap(),
        ["j1"]
    );
    assert!(s
        .renew_jobs("B", &["j1".into(), "j2".into()], 9000)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.job("j2").await.unwrap().unwrap().lease_until_ms, 9000);
    assert!(s.claim_jobs("C", 6000, 9999, 10).await.unwrap().is_empty());
    // A cancel takes a job whatever its lease.
    let taken = s.take_job("j1", "C", 7000).await.unwrap().unwrap();
    assert_eq!(taken.owner.as_deref(), Some("C"));
    assert_eq!(s.take_job("nope", "C", 7000).await.unwrap(), None);

    let ids = |v: Vec<Job>| v.into_iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_jobs(None, 10).await.unwrap()),
        ["j3", "j2", "j1"]
    );
    assert_eq!(
        ids(s.list_jobs(Some("j3"), 10).await.unwrap()),
        ["j2", "j1"]
    );
    assert_eq!(ids(s.list_jobs(None, 1).await.unwrap()), ["j3"]);
    // Retention removes ended jobs only.
    assert_eq!(s.purge_jobs(11).await.unwrap(), 1);
    assert_eq!(ids(s.list_jobs(None, 10).await.unwrap()), ["j2", "j1"]);
    assert_eq!(s.job("j3").await.unwrap(), None);
}

/// Sample lists keep their newest `keep`, counters add atomically under concurrency, and a
/// mark is set once (the measured figures and experiment rollbacks of issue 14).
async fn figures_lists_counters_and_marks(s: Arc<dyn Store>) {
    for i in 0..7 {
        s.push_sample("backend:veo", &format!("s{i}"), 5)
            .await
            .unwrap();
    }
    s.push_sample("backend:pix", "p0", 5).await.unwrap();
    let lists = s
        .samples(
            &[
                "backend:veo".into(),
                "backend:pix".into(),
                "backend:none".into(),
            ],
            3,
        )
        .await
        .unwrap();
    assert_eq!(lists[0], ["s6", "s5", "s4"]);
    assert_eq!(lists[1], ["p0"]);
    assert!(lists[2].is_empty());
    assert_eq!(
        s.samples(&["backend:veo".into()], 100).await.unwrap()[0].len(),
        5,
        "trimmed to keep"
    );

    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                s.add_counters(
                    "experiment:t:veo",
                    &[("samples", 1), ("cost_micros", 70_000)],
                )
                .await
                .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let after = s
        .add_counters("experiment:t:veo", &[("passes", 2)])
        .await
        .unwrap();
    assert_eq!(after["samples"], 40);
    assert_eq!(after["cost_micros"], 2_800_000);
    assert_eq!(after["passes"], 2);
    let read = s
        .counters(&["experiment:t:veo".into(), "experiment:t:pix".into()])
        .await
        .unwrap();
    assert_eq!(read[0], after);
    assert!(read[1].is_empty());

    assert!(s.put_mark("experiment:t", "first").await.unwrap());
    assert!(!s.put_mark("experiment:t", "second").await.unwrap());
    assert_eq!(
        s.marks(&["experiment:t".into(), "experiment:u".into()])
            .await
            .unwrap(),
        [Some("first".to_string()), None]
    );
    s.clear_mark("experiment:t", &["experiment:t:veo".into()])
        .await
        .unwrap();
    assert_eq!(s.marks(&["experiment:t".into()]).await.unwrap(), [None]);
    assert!(s.counters(&["experiment:t:veo".into()]).await.unwrap()[0].is_empty());
    assert!(s.put_mark("experiment:t", "again").await.unwrap());
}

macro_rules! contract {
    ($store:ident, $make:expr) => {
        mod $store {
            use super::*;
            #[tokio::test]
            async fn reserve_commit_release_and_in_doubt() {
                super::reserve_commit_release_and_in_doubt(&$make).await;
            }
            #[tokio::test]
            async fn exact_money_after_many_small_commits() {
                super::exact_money_after_many_small_commits(&$make).await;
            }
            #[tokio::test]
            async fn expired_reservations_stop_counting_but_commits_still_land() {
                super::expired_reservations_stop_counting_but_commits_still_land(&$make).await;
            }
            #[tokio::test]
            async fn expired_after_send_stays_counted() {
                super::expired_after_send_stays_counted(&$make).await;
            }
            #[tokio::test]
            async fn months_are_separate_and_old_months_stay_readable() {
                super::months_are_separate_and_old_months_stay_readable(&$make).await;
            }
            #[tokio::test]
            async fn levels_are_reserved_and_settled_together() {
                super::levels_are_reserved_and_settled_together(&$make).await;
            }
            #[tokio::test]
            async fn slots_bound_their_members_until_they_end() {
                super::slots_bound_their_members_until_they_end(&$make).await;
            }
            #[tokio::test]
            async fn jobs_are_fenced_claimed_and_listed() {
                super::jobs_are_fenced_claimed_and_listed(&$make).await;
            }
            #[tokio::test]
            async fn breakers_persist_and_update_atomically() {
                super::breakers_persist_and_update_atomically(&$make).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn figures_lists_counters_and_marks() {
                super::figures_lists_counters_and_marks(Arc::new($make)).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_reservations_never_pass_the_budget() {
                super::concurrent_reservations_never_pass_the_budget(Arc::new($make)).await;
            }
        }
    };
}

#[path = "common/scratch.rs"]
mod scratch;

fn sqlite() -> SqliteStore {
    SqliteStore::open(&scratch::scratch().join("ledger.sqlite3"), TIMEOUT).unwrap()
}

const TIMEOUT: Duration = Duration::from_secs(5);

async fn redis() -> RedisStore {
    RedisStore::open(&redis_server::fresh_url(), TIMEOUT)
        .await
        .unwrap()
}

async fn cluster() -> RedisStore {
    RedisStore::open(&redis_cluster::url(), TIMEOUT)
        .await
        .unwrap()
}

contract!(memory, MemoryStore::new());
contract!(sqlite_store, sqlite());
contract!(redis_store, redis().await);
contract!(redis_cluster_store, cluster().await);

#[tokio::test]
async fn redis_down_fails_closed() {
    let server = redis_server::start();
    let url = format!("redis://127.0.0.1:{}/0", server.port);
    let store = RedisStore::open(&url, TIMEOUT).await.unwrap();
    drop(server); // kills redis-server
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = store
        .reserve(&res("0.01"), usd("1"), t(6, 0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Store(_)), "{err}");
    assert!(store.totals(nov(), t(6, 0)).await.is_err());
}

#[tokio::test]
async fn sqlite_reopens_with_its_data() {
    let path = scratch::scratch().join("ledger.sqlite3");
    {
        let s = SqliteStore::open(&path, TIMEOUT).unwrap();
        let id = s.reserve(&res("0.25"), usd("1"), t(5, 0)).await.unwrap();
        s.commit(&id, t(5, 1)).await.unwrap();
    }
    let s = SqliteStore::open(&path, TIMEOUT).unwrap();
    assert_eq!(
        s.totals(nov(), t(5, 2)).await.unwrap().committed,
        usd("0.25")
    );
}
