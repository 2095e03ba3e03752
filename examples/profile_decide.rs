//! A fixed workload for instruction-level profiling: 100,000 decisions and 10,000 traces on
//! `policies/videogen.yaml`, with nothing else in the process worth counting; with the
//! argument `explain`, 10,000 explanations instead.
//!
//! ```sh
//! cargo build --release --example profile_decide
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out target/release/examples/profile_decide
//! callgrind_annotate /tmp/cg.out | head -40
//! ```
//!
//! Instruction counts, unlike times, repeat exactly run to run; docs/PERFORMANCE.md quotes them.

use genroute::{Decision, LoadOptions, Policy, RequestBuilder, Source, State, Trace};

fn main() {
    let env = |name: &str| {
        matches!(name, "VERTEX_ACCESS_TOKEN" | "PIXVERSE_API_KEY").then(|| "profile".to_string())
    };
    let policy = Policy::load(
        Source::new("videogen.yaml", genroute::EXAMPLE_POLICY),
        &LoadOptions { env: &env },
    )
    .expect("the built-in policy loads");
    let request = RequestBuilder::new("a red fox")
        .set("priority", "balanced")
        .set("aspect_ratio", "9:16")
        .build(&policy)
        .expect("a valid request");
    let now = "2026-11-10T12:00:00Z".parse().expect("a valid time");
    let state = State::new(&policy, now).with_spend("20".parse().expect("money"));
    if std::env::args().nth(1).as_deref() == Some("explain") {
        let rules: usize = (0..10_000)
            .map(|_| policy.explain(&request, &state).rules.len())
            .sum();
        println!("{rules}");
        return;
    }
    let mut decision = Decision::default();
    let mut chosen = 0usize;
    for _ in 0..100_000 {
        policy.decide_into(&request, &state, &mut decision);
        chosen += usize::from(decision.backend.unwrap_or(0));
    }
    let mut trace = Trace::default();
    for _ in 0..10_000 {
        policy.trace_into(&request, &state, &mut trace);
        chosen += trace.clauses.len();
    }
    println!("{chosen}");
}
