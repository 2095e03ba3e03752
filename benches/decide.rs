//! The decision engine's costs on `policies/videogen.yaml`: load + check, one decision, one
//! explain, and explain rendered to text and JSON. Each case's answer is asserted before it is
//! timed, so nothing is measured on a wrong result.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use genroute::{LoadOptions, Policy, Request, RequestBuilder, Source, State};

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

criterion_group!(benches, bench);
criterion_main!(benches);
