//! A store that stalls or loses its data costs clients a fast 503, never a hung replica, and
//! never a cent: real `genroute serve` processes against a real redis-server that is paused
//! (SIGSTOP), killed and restarted with AOF, and restarted empty; and against a SQLite file
//! whose write lock another process holds.
//!
//! These tests assert behaviour. Where a bound on time appears, it is the behaviour itself
//! (an answer that comes before the store's deadline could have passed, or six answers that
//! are not spaced one deadline apart); the timings are measured in `scripts/bench-server`.

#[path = "common/redis_server.rs"]
mod redis_server;
#[path = "common/scratch.rs"]
mod scratch;
#[path = "common/serve.rs"]
mod serve;

use std::time::{Duration, Instant};

use genroute::store::Month;
use genroute::Fixed;
use serde_json::{json, Value};
use serve::{eventually, get, post, replica};

const POLICY: &str = r#"
budget: {monthly_budget_usd: 100.00, cost_threshold_usd: 90.00}
backends:
  main:
    priority: 1
    type: simulated
    cost: {per_video_usd: 0.05}
    quality: {score: 0.9}
    performance: {avg_generation_time_seconds: 1, max_generation_time_seconds: 60}
    simulation: {failure_rate: 0, latency_stddev_seconds: 0, time_scale: 0.01, seed: 1}
    selection_criteria: {budget_available: true}
"#;

/// The store deadline the replicas run with in these tests.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

fn setup() -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = scratch::scratch();
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    (dir, policy)
}

fn args() -> Vec<&'static str> {
    vec!["--store-timeout", "2s", "--state-ttl-ms", "100"]
}

fn generate_body() -> Value {
    json!({"prompt": "a lighthouse", "priority": "balanced"})
}

/// Sends one generate; returns the status, the body and the cost the client was told.
async fn generate(client: &reqwest::Client, base: &str) -> (u16, Value, Fixed) {
    let (status, v) = post(
        client,
        &format!("{base}/v1/generate"),
        generate_body(),
        Duration::from_secs(30),
    )
    .await
    .expect("generate answered");
    let cost = if status == 200 {
        v["cost_usd"].to_string().parse().unwrap()
    } else {
        Fixed::ZERO
    };
    (status, v, cost)
}

/// Sends `n` generates at once; each answer with the time from the start to its arrival.
async fn at_once(client: &reqwest::Client, base: &str, n: usize) -> Vec<(u16, Value, Duration)> {
    let started = Instant::now();
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let (client, base) = (client.clone(), base.to_string());
            tokio::spawn(async move {
                let (status, v, _) = generate(&client, &base).await;
                (status, v, started.elapsed())
            })
        })
        .collect();
    let mut out = Vec::new();
    for c in calls {
        out.push(c.await.unwrap());
    }
    out
}

fn message(v: &Value) -> String {
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn redis_totals(url: &str) -> genroute::store::Totals {
    use genroute::store::Store;
    let store = genroute::store::redis::RedisStore::open(url, Duration::from_secs(5))
        .await
        .unwrap();
    let now = chrono::Utc::now();
    store.totals(Month::of(now), now).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_redis_costs_fast_503s_and_decide_answers_from_the_snapshot() {
    let redis = redis_server::start();
    let (dir, policy) = setup();
    let r = replica(&policy, &redis.url(), &dir.join("a"), &args());
    let mut strict_args = args();
    strict_args.extend(["--state-max-stale", "1s"]);
    let strict = replica(&policy, &redis.url(), &dir.join("b"), &strict_args);
    let client = reqwest::Client::new();
    let (status, _, seen) = generate(&client, &r.url).await;
    assert_eq!(status, 200);
    for base in [&r.url, &strict.url] {
        let (status, d) = post(
            &client,
            &format!("{base}/v1/decide"),
            json!({}),
            STORE_TIMEOUT,
        )
        .await
        .unwrap();
        assert_eq!((status, &d["state_stale"]), (200, &json!(false)), "{d}");
    }

    redis.pause();
    // /healthz never waits on the store: it answers before one store deadline could pass.
    for _ in 0..5 {
        let (status, _) = get(&client, &format!("{}/healthz", r.url), STORE_TIMEOUT / 2)
            .await
            .expect("healthz answered while Redis is paused");
        assert_eq!(status, 200);
    }
    // Six generates at once are answered together (each waits out at most its own store
    // deadline), not one deadline after another; each is a 503 naming the ledger store.
    let calls = at_once(&client, &r.url, 6).await;
    let mut slowest = Duration::ZERO;
    for (status, v, took) in calls {
        assert_eq!(status, 503, "{v}");
        assert!(message(&v).contains("ledger"), "{v}");
        slowest = slowest.max(took);
    }
    assert!(
        slowest < STORE_TIMEOUT * 2,
        "six generates took {slowest:?}: they waited behind each other"
    );
    // Once the store has failed a few times, calls fail at once, and say so.
    let (status, v, _) = generate(&client, &r.url).await;
    assert_eq!(status, 503);
    assert!(message(&v).contains("fail at once"), "{v}");
    // Decide keeps answering from the last snapshot, and says it is stale.
    let (status, d) = post(
        &client,
        &format!("{}/v1/decide", r.url),
        json!({}),
        STORE_TIMEOUT,
    )
    .await
    .expect("decide answered while Redis is paused");
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["backend"], "main");
    assert_eq!(d["state_stale"], true);
    assert!(d["state_age_ms"].as_u64().unwrap() > 0);
    // Past --state-max-stale it refuses instead, at once.
    let (status, d) = post(
        &client,
        &format!("{}/v1/decide", strict.url),
        json!({}),
        STORE_TIMEOUT * 2,
    )
    .await
    .expect("decide answered");
    assert_eq!(status, 503, "{d}");
    // /readyz says why, at once.
    let ready = eventually(
        &client,
        &format!("{}/readyz", r.url),
        Duration::from_secs(10),
        |s, _| s == 503,
    )
    .await;
    assert_eq!(ready["store"]["ok"], false, "{ready}");
    assert!(ready["ledger_error"].as_str().is_some(), "{ready}");

    // Redis comes back: the replica reconnects by itself and spends again.
    redis.resume();
    eventually(
        &client,
        &format!("{}/readyz", r.url),
        Duration::from_secs(15),
        |s, _| s == 200,
    )
    .await;
    let (status, v, cost) = generate(&client, &r.url).await;
    assert_eq!(status, 200, "{v}");
    let t = redis_totals(&redis.url()).await;
    assert_eq!(t.reserved, Fixed::ZERO);
    assert_eq!(
        t.spent(),
        seen.checked_add(cost).unwrap(),
        "the ledger equals what clients were told"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_and_restarted_with_aof_loses_nothing_and_replicas_reconnect() {
    let redis = redis_server::start_with(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--save",
        "",
    ]);
    let (dir, policy) = setup();
    let a = replica(&policy, &redis.url(), &dir.join("a"), &args());
    let b = replica(&policy, &redis.url(), &dir.join("b"), &args());
    let client = reqwest::Client::new();
    let mut seen = Fixed::ZERO;
    for i in 0..10 {
        let base = if i % 2 == 0 { &a.url } else { &b.url };
        let (status, v, cost) = generate(&client, base).await;
        assert_eq!(status, 200, "{v}");
        seen = seen.checked_add(cost).unwrap();
    }
    redis.restart(); // kill -9, then the same port and directory
                     // Ready again once a store call succeeded on the new server: `/readyz` answers from the
                     // last probe, which may predate the kill.
    let restarted = chrono::Utc::now();
    for base in [&a.url, &b.url] {
        eventually(
            &client,
            &format!("{base}/readyz"),
            Duration::from_secs(15),
            |s, v| {
                s == 200
                    && v["store"]["last_success"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .is_some_and(|t| t > restarted)
            },
        )
        .await;
    }
    for i in 0..10 {
        let base = if i % 2 == 0 { &a.url } else { &b.url };
        let (status, v, cost) = generate(&client, base).await;
        assert_eq!(status, 200, "after the restart: {v}");
        seen = seen.checked_add(cost).unwrap();
    }
    let t = redis_totals(&redis.url()).await;
    assert_eq!(t.spent(), seen, "nothing was lost across the restart");
    assert_eq!(t.reserved, Fixed::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restarted_empty_fails_closed_until_an_operator_accepts_it() {
    let redis = redis_server::start();
    let (dir, policy) = setup();
    let a = replica(&policy, &redis.url(), &dir.join("a"), &args());
    let b = replica(&policy, &redis.url(), &dir.join("b"), &args());
    let client = reqwest::Client::new();
    for base in [&a.url, &b.url] {
        assert_eq!(generate(&client, base).await.0, 200);
    }

    // Round 1: accepted through the admin endpoint.
    redis.restart_empty();
    for base in [&a.url, &b.url] {
        let ready = eventually(
            &client,
            &format!("{base}/readyz"),
            Duration::from_secs(15),
            |s, v| s == 503 && v["store"]["ledger_lost"] == true,
        )
        .await;
        assert!(
            ready["ledger_error"]
                .as_str()
                .unwrap()
                .contains("accept-empty"),
            "{ready}"
        );
        let (status, v, _) = generate(&client, base).await;
        assert_eq!(status, 503, "an empty Redis is not a new month: {v}");
        assert!(message(&v).contains("epoch marker"), "{v}");
    }
    let refused = client
        .post(format!("{}/v1/admin/ledger/accept-empty", a.url))
        .json(&json!({"note": "no token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let accepted: Value = client
        .post(format!("{}/v1/admin/ledger/accept-empty", a.url))
        .bearer_auth("t0ken")
        .json(&json!({"note": "redis-0 restarted without AOF; accepted by the test"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(accepted["accepted"], true, "{accepted}");
    let (status, v, _) = generate(&client, &a.url).await;
    assert_eq!(status, 200, "{v}");
    // The other replica adopts the accepted marker through its probe.
    eventually(
        &client,
        &format!("{}/readyz", b.url),
        Duration::from_secs(15),
        |s, _| s == 200,
    )
    .await;
    let (status, v, _) = generate(&client, &b.url).await;
    assert_eq!(status, 200, "{v}");

    // Round 2: accepted with the CLI.
    redis.restart_empty();
    eventually(
        &client,
        &format!("{}/readyz", a.url),
        Duration::from_secs(15),
        |s, _| s == 503,
    )
    .await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_genroute"))
        .args([
            "ledger",
            "accept-empty",
            "--store",
            &redis.url(),
            "--note",
            "second loss, accepted by the CLI",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for base in [&a.url, &b.url] {
        eventually(
            &client,
            &format!("{base}/readyz"),
            Duration::from_secs(15),
            |s, _| s == 200,
        )
        .await;
        let (status, v, _) = generate(&client, base).await;
        assert_eq!(status, 200, "{v}");
    }
    // The acceptance is recorded, with its note.
    let mut c = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let log: Vec<String> = redis::cmd("LRANGE")
        .arg("genroute:{meta}:epoch_log")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .unwrap();
    assert_eq!(
        log.len(),
        1,
        "the log itself went with the second loss: {log:?}"
    );
    assert!(
        log[0].contains("second loss, accepted by the CLI"),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sqlite_write_lock_held_elsewhere_fails_generates_fast_and_decide_keeps_reading() {
    let (dir, policy) = setup();
    let path = dir.join("ledger.sqlite3");
    let store = format!("sqlite:{}", path.display());
    let r = replica(
        &policy,
        &store,
        &dir.join("data"),
        &["--store-timeout", "1s", "--state-ttl-ms", "0"],
    );
    let client = reqwest::Client::new();
    let (status, _, seen) = generate(&client, &r.url).await;
    assert_eq!(status, 200);

    // Another process (this test) takes the write lock and keeps it.
    let (hold, release) = std::sync::mpsc::channel::<()>();
    let (locked, is_locked) = std::sync::mpsc::channel::<()>();
    let lock_path = path.clone();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&lock_path).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked.send(()).unwrap();
        let _ = release.recv();
        conn.execute_batch("COMMIT").unwrap();
    });
    is_locked.recv().unwrap();

    let calls = at_once(&client, &r.url, 6).await;
    for (status, v, took) in calls {
        assert_eq!(status, 503, "{v}");
        assert!(
            took < Duration::from_secs(2) * 2,
            "{took:?}: the generates waited behind each other"
        );
    }
    let (status, _) = get(
        &client,
        &format!("{}/healthz", r.url),
        Duration::from_millis(500),
    )
    .await
    .expect("healthz answered while the write lock is held");
    assert_eq!(status, 200);
    // Reads do not need the write lock (WAL): decide answers with fresh figures.
    let (status, d) = post(
        &client,
        &format!("{}/v1/decide", r.url),
        json!({}),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{d}");
    eventually(
        &client,
        &format!("{}/readyz", r.url),
        Duration::from_secs(10),
        |s, _| s == 503,
    )
    .await;

    hold.send(()).unwrap();
    holder.join().unwrap();
    eventually(
        &client,
        &format!("{}/readyz", r.url),
        Duration::from_secs(10),
        |s, _| s == 200,
    )
    .await;
    let (status, v, cost) = generate(&client, &r.url).await;
    assert_eq!(status, 200, "{v}");
    let budget: Value = get(
        &client,
        &format!("{}/v1/budget", r.url),
        Duration::from_secs(5),
    )
    .await
    .unwrap()
    .1;
    let spent: Fixed = budget["spent_usd"].to_string().parse().unwrap();
    assert_eq!(
        spent,
        seen.checked_add(cost).unwrap(),
        "the ledger equals what clients were told"
    );
    let reserved: Fixed = budget["reserved_usd"].to_string().parse().unwrap();
    assert_eq!(reserved, Fixed::ZERO);
}
