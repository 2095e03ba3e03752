//! The router's own cost around backend calls: one generation served by the first backend,
//! and one that falls back once, with zero-latency simulated backends and the in-memory
//! ledger. The difference is what a fallback adds beyond the backends' own time.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use genroute::exec::{DirSink, Router, SystemClock};
use genroute::ledger::memory::MemoryStore;
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

criterion_group!(benches, bench);
criterion_main!(benches);
