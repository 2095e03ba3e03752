//! The decision engine's costs.
//!
//! - `engine`: on `policies/videogen.yaml`, load + check, generating machine code for every
//!   rule ([`Policy::compile_native`]), one decision, one decision with its
//!   full trace recorded (into a reused [`Trace`]), one [`Policy::explain`] (trace rendered
//!   into an owned report), and that report rendered to text and JSON.
//! - `scaling`: a decision on generated policies with 10, 100 and 1,000 backends and as many
//!   rules, in the worst case: every rule is evaluated and none decides, so every backend's
//!   eligibility is checked and the fallback chain holds them all. Load + check alongside,
//!   and generating machine code for every rule of a freshly loaded policy.
//! - `concurrency`: the same batch of decisions on one thread and on two threads at once,
//!   each thread doing the full batch; `scripts/bench-report` turns the two times into a
//!   throughput ratio. Once over a shared policy, once through a [`Router`] that reads the live
//!   state (spend, breakers) from its lock-free cache.
//!
//! - `splits`: the `social_vertical` decision of `policies/videogen.yaml` as written (one
//!   target), against the same rule as an 80/20 split with dynamic weights and a clause over
//!   a measured figure, with measured figures in the state (issue 14's bound: at most 1.5×).
//!
//! Each case's answer is asserted before it is timed, so nothing is measured on a wrong
//! result.

use std::hint::black_box;
use std::time::Duration;

use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode};
use genroute::exec::{DirSink, Router, SystemClock};
use genroute::store::memory::MemoryStore;
use genroute::{Decision, LoadOptions, Policy, Request, RequestBuilder, Source, State, Trace};

fn keys(name: &str) -> Option<String> {
    matches!(name, "VERTEX_ACCESS_TOKEN" | "PIXVERSE_API_KEY").then(|| "bench".to_string())
}

fn load() -> Policy {
    Policy::load(
        Source::new("videogen.yaml", genroute::EXAMPLE_POLICY),
        &LoadOptions { env: &keys },
    )
    .unwrap()
}

fn cases(p: &Policy) -> Vec<(&'static str, Request, State, &'static str)> {
    let now = "2026-11-10T12:00:00Z".parse().unwrap();
    let req = |priority: &str, aspect: &str| {
        RequestBuilder::new("a red fox")
            .set("priority", priority)
            .set("aspect_ratio", aspect)
            .build(p)
            .unwrap()
    };
    vec![
        ("quality", req("quality", "16:9"), State::new(p, now), "veo"),
        (
            "balanced_vertical",
            req("balanced", "9:16"),
            State::new(p, now).with_spend("20".parse().unwrap()),
            "pixverse",
        ),
        (
            "speed_exhausted",
            req("speed", "16:9"),
            State::new(p, now).with_spend("99.98".parse().unwrap()),
            "none",
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    g.sample_size(50).measurement_time(Duration::from_secs(3));
    g.bench_function("load_and_check_videogen", |b| b.iter(load));
    // Machine code for every rule of a freshly loaded policy (what a server does before a
    // policy takes traffic); the policy is loaded and dropped outside the timing.
    assert_eq!(
        load().compile_native(),
        load().rules.len(),
        "a rule has no machine code"
    );
    g.bench_function("compile_native_videogen", |b| {
        b.iter_batched_ref(
            load,
            |p| black_box(p.compile_native()),
            BatchSize::SmallInput,
        )
    });
    let p = load();
    for (name, request, state, expect) in cases(&p) {
        let chosen = p
            .decide(&request, &state)
            .backend
            .map_or("none", |i| p.backend(i).unwrap().name.as_str());
        assert_eq!(chosen, expect, "{name}");
        assert_eq!(
            p.explain(&request, &state)
                .backend
                .as_deref()
                .unwrap_or("none"),
            expect
        );
        g.bench_function(format!("decide/{name}"), |b| {
            b.iter(|| black_box(p.decide(black_box(&request), black_box(&state))))
        });
        let mut trace = Trace::default();
        g.bench_function(format!("trace/{name}"), |b| {
            b.iter(|| {
                p.trace_into(black_box(&request), black_box(&state), &mut trace);
                black_box(trace.rules.len())
            })
        });
        g.bench_function(format!("explain/{name}"), |b| {
            b.iter(|| black_box(p.explain(black_box(&request), black_box(&state))))
        });
        g.bench_function(format!("explain_rendered/{name}"), |b| {
            b.iter(|| {
                let e = p.explain(&request, &state);
                black_box((e.to_text(), serde_json::to_string(&e).unwrap()))
            })
        });
    }
    g.finish();
}

/// A policy with `n` backends and `n` rules. Rule `i` targets backend `i` and asks for
/// `duration > 600 + i`, which no request can meet (600 s is the longest video), so every
/// rule is evaluated and the default order decides among all `n` backends.
fn generated(n: usize) -> String {
    let mut y =
        String::from("budget: {monthly_budget_usd: 1000000, cost_threshold_usd: 1}\nbackends:\n");
    for i in 0..n {
        y += &format!(
            "  b{i:04}:\n    priority: {}\n    type: simulated\n    cost: {{per_video_usd: 0.0{}}}\n    quality: {{score: 0.9}}\n    performance: {{avg_generation_time_seconds: 30, max_generation_time_seconds: 90}}\n    selection_criteria: {{priority_high: true, priority_balanced: true, priority_speed: true, budget_available: true}}\n",
            i + 1,
            1 + i % 9
        );
    }
    y += "selection_rules:\n";
    for i in 0..n {
        y += &format!(
            "  - name: r{i:04}\n    condition: \"duration > {} AND budget_available AND priority != 'speed'\"\n    backend: b{i:04}\n",
            600 + i
        );
    }
    y
}

fn scaling(c: &mut Criterion) {
    let mut g = c.benchmark_group("scaling");
    g.sample_size(30).measurement_time(Duration::from_secs(2));
    let now = "2026-11-10T12:00:00Z".parse().unwrap();
    for n in [10usize, 100, 1000] {
        let yaml = generated(n);
        let p = Policy::from_yaml("generated.yaml", &yaml).unwrap();
        let request = RequestBuilder::new("x")
            .set("priority", "quality")
            .build(&p)
            .unwrap();
        let state = State::new(&p, now);
        let mut out = Decision::default();
        p.decide_into(&request, &state, &mut out);
        assert_eq!(out.rule, None);
        assert_eq!(out.fallbacks.len(), n - 1, "every backend is in the chain");
        g.bench_with_input(BenchmarkId::new("decide", n), &n, |b, _| {
            b.iter(|| {
                p.decide_into(black_box(&request), black_box(&state), &mut out);
                black_box(out.backend)
            })
        });
        g.bench_with_input(BenchmarkId::new("load", n), &n, |b, _| {
            b.iter(|| Policy::from_yaml("generated.yaml", black_box(&yaml)).unwrap())
        });
    }
    // Machine code for every rule of a freshly loaded policy: up to 0.1 s an iteration, so
    // ten samples of one iteration each.
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    for n in [10usize, 100, 1000] {
        let yaml = generated(n);
        let fresh = || Policy::from_yaml("generated.yaml", &yaml).unwrap();
        assert_eq!(
            fresh().compile_native(),
            n,
            "a generated rule has no machine code"
        );
        g.bench_with_input(BenchmarkId::new("compile_native", n), &n, |b, _| {
            b.iter_batched_ref(
                fresh,
                |p| black_box(p.compile_native()),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

/// Runs `work` `iters` times on each of `threads` threads at once; the wall time of the batch.
fn batch(threads: usize, iters: u64, work: &(dyn Fn() -> usize + Sync)) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut sum = 0usize;
                for _ in 0..iters {
                    sum = sum.wrapping_add(work());
                }
                black_box(sum)
            });
        }
    });
    start.elapsed()
}

fn concurrency(c: &mut Criterion) {
    let mut g = c.benchmark_group("concurrency");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    let p = Arc::new(load());
    let now = "2026-11-10T12:00:00Z".parse().unwrap();
    let request = RequestBuilder::new("x")
        .set("priority", "balanced")
        .set("aspect_ratio", "9:16")
        .build(&p)
        .unwrap();
    let state = State::new(&p, now).with_spend("20".parse().unwrap());
    let decide = || usize::from(p.decide(&request, &state).backend.unwrap_or(0));
    assert_eq!(
        p.decide(&request, &state).backend,
        p.backend_index("pixverse")
    );
    let router = Router::new(
        Arc::clone(&p),
        Arc::new(MemoryStore::new()),
        &keys,
        Arc::new(SystemClock),
        Arc::new(DirSink(std::env::temp_dir().join("genroute-bench-videos"))),
    )
    .with_state_cache(Duration::from_secs(3600), Duration::from_secs(3600));
    // A cached state is ready at once: no runtime needed to take it.
    let cached = || {
        futures_util::FutureExt::now_or_never(router.state(0))
            .expect("the cached state answers without waiting")
            .map(|(s, _)| s)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(router.state(0)).unwrap();
    let live = || {
        let state = cached().unwrap();
        usize::from(
            router
                .policy()
                .decide(&request, &state)
                .backend
                .unwrap_or(0),
        )
    };
    assert!(cached().is_ok());
    for threads in [1usize, 2] {
        g.bench_with_input(BenchmarkId::new("decide", threads), &threads, |b, &t| {
            b.iter_custom(|iters| batch(t, iters, &decide))
        });
        g.bench_with_input(
            BenchmarkId::new("live_state_and_decide", threads),
            &threads,
            |b, &t| b.iter_custom(|iters| batch(t, iters, &live)),
        );
    }
    g.finish();
}

fn splits(c: &mut Criterion) {
    let mut g = c.benchmark_group("splits");
    g.sample_size(50).measurement_time(Duration::from_secs(3));
    let plain = load();
    let written = "    condition: \"aspect_ratio in ['9:16', '1:1'] AND priority == 'balanced' AND budget_available\"\n    action: \"select_backend\"\n    backend: \"pixverse\"\n";
    assert!(genroute::EXAMPLE_POLICY.contains(written));
    let split_text = genroute::EXAMPLE_POLICY.replace(
        written,
        "    condition: \"aspect_ratio in ['9:16', '1:1'] AND priority == 'balanced' AND backends.pixverse.budget_available AND backends.pixverse.measured.pass_rate >= 0.8\"\n    split:\n      - {backend: pixverse, weight: 80}\n      - {backend: veo, weight: 20}\n    dynamic_weights: {by: latency_p50, floor: 5, ceiling: 95}\n",
    );
    let split = Policy::load(
        Source::new("videogen-split.yaml", &split_text),
        &LoadOptions { env: &keys },
    )
    .unwrap();
    let now = "2026-11-10T12:00:00Z".parse().unwrap();
    let mut request = RequestBuilder::new("a red fox")
        .set("priority", "balanced")
        .set("aspect_ratio", "9:16")
        .build(&plain)
        .unwrap();
    request.id = Some("0b8e3c9e-5b7e-4f7e-9a51-3c1f2b8d4e6a".into());
    let plain_state = State::new(&plain, now).with_spend("20".parse().unwrap());
    let mut split_state = State::new(&split, now).with_spend("20".parse().unwrap());
    split_state.measured = split
        .backends
        .iter()
        .map(|b| genroute::measure::Measured {
            samples: 100,
            pass_rate: Some("0.95".parse().unwrap()),
            latency_p50: Some(if b.name == "veo" { "70" } else { "40" }.parse().unwrap()),
            latency_p95: Some("90".parse().unwrap()),
            flicker: None,
        })
        .collect();
    // The same split without dynamic weights or the measured clause: what the draw alone
    // costs.
    let static_text = genroute::EXAMPLE_POLICY.replace(
        written,
        "    condition: \"aspect_ratio in ['9:16', '1:1'] AND priority == 'balanced' AND backends.pixverse.budget_available\"\n    split:\n      - {backend: pixverse, weight: 80}\n      - {backend: veo, weight: 20}\n",
    );
    let static_split = Policy::load(
        Source::new("videogen-static-split.yaml", &static_text),
        &LoadOptions { env: &keys },
    )
    .unwrap();
    let static_state = State::new(&static_split, now).with_spend("20".parse().unwrap());
    for (name, p, state) in [
        ("plain_rule", &plain, &plain_state),
        ("split_static", &static_split, &static_state),
        ("split_measured", &split, &split_state),
    ] {
        let d = p.decide(&request, state);
        assert!(d.backend.is_some(), "{name}");
        let rule = &p.rules[d.rule.expect("a rule decides") as usize];
        assert_eq!(rule.name, "social_vertical", "{name}");
        let mut out = Decision::default();
        g.bench_function(format!("decide/{name}"), |b| {
            b.iter(|| {
                p.decide_into(black_box(&request), black_box(state), &mut out);
                black_box(out.backend)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench, scaling, concurrency, splits);
criterion_main!(benches);
