//! The router's own cost around backend calls: one generation served by the first backend,
//! and one that falls back once, with zero-latency simulated backends and the in-memory
//! ledger. The difference is what a fallback adds beyond the backends' own time.
//!
//! `reserve`: one reserve-and-commit on the month's budget alone, and on the month plus a
//! tenant's team and key (three levels) and plus its organisation (four), on SQLite (a file
//! in the temp directory, `synchronous=FULL`) and on a real Redis (a `redis-server` started
//! on a free port; the group is skipped without one). The ratio is what budget levels cost.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use genroute::exec::{DirSink, Router, SystemClock};
use genroute::store::memory::MemoryStore;
use genroute::{Policy, RequestBuilder};

fn policy(primary_failure_rate: &str) -> Policy {
    let yaml = format!(
        r#"
budget: {{monthly_budget_usd: 100000000, cost_threshold_usd: 1}}
backends:
  primary:
    priority: 1
    type: simulated
    cost: {{per_video_usd: 0.05}}
    quality: {{score: 0.9}}
    performance: {{avg_generation_time_seconds: 30, max_generation_time_seconds: 90}}
    simulation: {{failure_rate: {primary_failure_rate}}}
    circuit_breaker: {{failure_threshold: 4000000000}}
  backup:
    priority: 2
    type: simulated
    cost: {{per_video_usd: 0.02}}
    quality: {{score: 0.8}}
    performance: {{avg_generation_time_seconds: 60, max_generation_time_seconds: 180}}
"#
    );
    Policy::from_yaml("bench.yaml", &yaml).unwrap()
}

fn router(p: Policy) -> Router {
    let sink = Arc::new(DirSink(std::env::temp_dir().join("genroute-bench-videos")));
    Router::new(
        Arc::new(p),
        Arc::new(MemoryStore::new()),
        &|_| None,
        Arc::new(SystemClock),
        sink,
    )
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("generate");
    group
        .sample_size(50)
        .measurement_time(std::time::Duration::from_secs(3));
    for (name, rate, attempts) in [("first_backend_serves", "0", 1), ("one_fallback", "1", 2)] {
        let r = router(policy(rate));
        let req = RequestBuilder::new("a red fox")
            .set("quality_threshold", 0.5)
            .build(r.policy())
            .unwrap();
        let g = rt.block_on(r.generate(&req)).unwrap();
        assert_eq!(g.attempts.len(), attempts, "{g:?}");
        assert!(g.video.is_some());
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(r.generate(std::hint::black_box(&req))).unwrap())
        });
    }
    group.finish();
}

/// A `redis-server` for the bench, on a free port, without persistence.
struct RedisChild(std::process::Child, u16);

impl Drop for RedisChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis_server() -> Option<RedisChild> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > std::time::Duration::from_secs(5) {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Some(RedisChild(child, port))
}

fn reserve(c: &mut Criterion) {
    use genroute::store::{LevelLimit, NewReservation, Payer, Store};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let now = chrono::Utc::now();
    let level = |name: &str| LevelLimit {
        key: genroute::store::level_key(name, false, now),
        budget: "100000000".parse().unwrap(),
    };
    let cases = [
        ("month_only", vec![]),
        ("three_levels", vec![level("team:growth"), level("key:web")]),
        (
            "four_levels",
            vec![level("org:acme"), level("team:growth"), level("key:web")],
        ),
    ];
    let dir = std::env::temp_dir().join(format!("genroute-bench-reserve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let timeout = std::time::Duration::from_secs(5);
    let mut stores: Vec<(&str, Arc<dyn Store>)> = vec![(
        "sqlite",
        Arc::new(
            genroute::store::sqlite::SqliteStore::open(&dir.join("ledger.sqlite3"), timeout)
                .unwrap(),
        ),
    )];
    let redis = redis_server();
    match &redis {
        Some(r) => stores.push((
            "redis",
            Arc::new(
                rt.block_on(genroute::store::redis::RedisStore::open(
                    &format!("redis://127.0.0.1:{}/0", r.1),
                    timeout,
                ))
                .unwrap(),
            ),
        )),
        None => eprintln!("reserve: no redis-server on the PATH; the Redis cases are skipped"),
    }
    let mut group = c.benchmark_group("reserve");
    group
        .sample_size(30)
        .measurement_time(std::time::Duration::from_secs(4));
    for (store_name, store) in &stores {
        for (case, levels) in &cases {
            let r = NewReservation {
                request_id: "bench".into(),
                backend: "veo".into(),
                model: None,
                amount: "0.05".parse().unwrap(),
                ttl_ms: 60_000,
                levels: levels.clone(),
                payer: Payer::default(),
            };
            let budget = "100000000".parse().unwrap();
            group.bench_function(format!("{store_name}/{case}"), |b| {
                b.iter(|| {
                    rt.block_on(async {
                        let at = chrono::Utc::now();
                        let id = store.reserve(&r, budget, at).await.unwrap();
                        store.commit(&id, at).await.unwrap();
                    })
                })
            });
        }
    }
    group.finish();
    drop(stores);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench, reserve);
criterion_main!(benches);
