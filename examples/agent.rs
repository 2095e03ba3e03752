//! An agent embedding genroute: load a policy, ask where two requests would go and why, then
//! generate one for real through the router (the demo policy's simulated backends, so no
//! keys and no network are needed).
//!
//!     cargo run --example agent [POLICY]

use std::sync::Arc;

use genroute::exec::{DirSink, Router, SystemClock};
use genroute::store::memory::MemoryStore;
use genroute::{Policy, RequestBuilder, State};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "policies/demo.yaml".into());
    let policy = Policy::from_yaml(&path, &std::fs::read_to_string(&path)?)?;

    // Deciding is pure: a request and a snapshot of spend, breakers and time go in.
    let state = State::new(&policy, chrono::Utc::now()).with_spend("42.50".parse()?);
    for priority in ["quality", "speed"] {
        let request = RequestBuilder::new("a lighthouse in a storm")
            .set("priority", priority)
            .build(&policy)?;
        let decision = policy.decide(&request, &state);
        let name = |i: u16| policy.backend(i).map_or("?", |b| b.name.as_str());
        let fallbacks: Vec<&str> = decision.fallbacks.iter().map(|&i| name(i)).collect();
        println!(
            "{priority:>8}: {} (model {}), then {fallbacks:?}",
            decision.backend.map_or("nothing eligible", name),
            decision.model.unwrap_or("default")
        );
    }
    let request = RequestBuilder::new("a red fox at dawn")
        .set("aspect_ratio", "9:16")
        .build(&policy)?;
    println!("\n{}", policy.explain(&request, &state).to_text());

    // Running it: the router reserves, calls, falls back and commits in the ledger.
    let router = Router::new(
        Arc::new(policy),
        Arc::new(MemoryStore::new()),
        &|k| std::env::var(k).ok(),
        Arc::new(SystemClock),
        Arc::new(DirSink(std::env::temp_dir().join("genroute-agent"))),
    );
    let result = router.generate(&request).await?;
    println!(
        "generated {:?} on {:?} for ${}",
        result.video, result.backend, result.cost_usd
    );
    Ok(())
}
