//! `execution.quality_retry` (issue 14 §2): a delivered video that the `when` condition judges
//! poor is kept and the request is retried down its chain, each retry reserved against the
//! budget like any attempt; the first video comes back when every retry is poor or refused.
//! Real MP4s from ffmpeg's test sources, served by `/v1/videos` stubs.

#[path = "common/clips.rs"]
mod clips;
mod common;
#[path = "common/scratch.rs"]
mod scratch;
#[path = "common/videos_stub.rs"]
mod videos_stub;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use genroute::exec::{DirSink, Generation, ManualClock, Router};
use genroute::store::memory::MemoryStore;
use genroute::{Policy, RequestBuilder};

/// Three `/v1/videos` backends in priority order a, b, c, each 0.02 a video.
fn policy(urls: [&str; 3], max_retries: u32, budget: &str) -> Policy {
    let mut backends = String::new();
    for (i, (name, url)) in ["a", "b", "c"].iter().zip(urls).enumerate() {
        backends.push_str(&format!(
            "\n  {name}:\n    priority: {}\n    type: self_hosted\n    cost: {{per_video_usd: 0.02}}\n    quality: {{score: 0.8}}\n    performance: {{avg_generation_time_seconds: 1, max_generation_time_seconds: 60}}\n    api: {{protocol: videos, base_url: \"{url}\", poll_interval_seconds: 0.1}}",
            i + 1
        ));
    }
    let yaml = format!(
        r#"
budget: {{monthly_budget_usd: {budget}, cost_threshold_usd: {budget}}}
execution:
  output_checks: {{frames: "off"}}
  quality_retry:
    max_retries: {max_retries}
    when: "video.duration < 7.5"
backends:{backends}
"#
    );
    Policy::from_yaml("retry.yaml", &yaml).unwrap_or_else(|e| panic!("{e}"))
}

/// Generates an 8 s request where a and b serve a 7 s clip (it passes the checks, within
/// their tolerance, but `when` judges it poor) and c an 8 s one.
async fn run(max_retries: u32, budget: &str) -> (Generation, [PathBuf; 2], Arc<MemoryStore>) {
    let dir = scratch::scratch();
    let testsrc = "testsrc2=size=320x180:rate=24";
    let (short, long) = (
        clips::clip(&dir, "seven.mp4", testsrc, &["-t", "7"]),
        clips::clip(&dir, "eight.mp4", testsrc, &["-t", "8"]),
    );
    let stubs: Vec<_> = (0..3)
        .map(|_| videos_stub::start(Duration::from_millis(200)))
        .collect();
    for (i, (_, stub)) in stubs.iter().enumerate() {
        let file = if i < 2 { &short } else { &long };
        *stub.content.lock().unwrap() = Some(std::fs::read(file).unwrap());
    }
    let urls = [
        stubs[0].0.as_str(),
        stubs[1].0.as_str(),
        stubs[2].0.as_str(),
    ];
    let policy = Arc::new(policy(urls, max_retries, budget));
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 10, 12, 0, 0)
            .unwrap(),
    ));
    let router = Router::new(
        policy.clone(),
        store.clone(),
        &|_| None,
        clock,
        Arc::new(DirSink(scratch::scratch())),
    );
    let request = RequestBuilder::new("a paper boat on a river")
        .set("duration", 8)
        .build(&policy)
        .unwrap();
    let g = router.generate(&request).await.unwrap();
    drop(stubs);
    (g, [short, long], store)
}

fn story(g: &Generation) -> Vec<(&str, &str, bool)> {
    g.attempts
        .iter()
        .map(|a| {
            (
                a.backend.as_str(),
                a.outcome.as_str(),
                a.kept_video.is_some(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_poor_video_is_retried_down_the_chain_until_a_good_one() {
    let (g, [_, long], _) = run(2, "10.00").await;
    assert_eq!(
        story(&g),
        [
            ("a", "success", true),
            ("b", "success", true),
            ("c", "success", false)
        ],
        "{g:?}"
    );
    assert!(g.attempts[0]
        .message
        .as_deref()
        .unwrap()
        .contains("`video.duration < 7.5` holds"));
    assert_eq!(g.backend.as_deref(), Some("c"));
    assert_eq!(
        std::fs::read(g.video.unwrap()).unwrap(),
        std::fs::read(long).unwrap()
    );
    assert_eq!(g.cost_usd.to_string(), "0.06", "every video was paid for");
}

#[tokio::test]
async fn when_the_retries_run_out_the_first_video_comes_back() {
    let (g, [short, _], _) = run(1, "10.00").await;
    assert_eq!(
        story(&g),
        [("a", "success", true), ("b", "success", false)],
        "one retry, and c is never called: {g:?}"
    );
    assert_eq!(
        g.backend.as_deref(),
        Some("a"),
        "the first video is returned"
    );
    assert_eq!(g.error, None);
    let video = g.video.unwrap();
    assert_eq!(Some(video.as_str()), g.attempts[0].kept_video.as_deref());
    assert_eq!(std::fs::read(video).unwrap(), std::fs::read(short).unwrap());
}

#[tokio::test]
async fn each_retry_is_budget_checked_and_a_refused_one_returns_the_first_video() {
    // $0.05: a and b fit (0.04), c would pass the budget.
    let (g, _, store) = run(2, "0.05").await;
    assert_eq!(
        story(&g),
        [
            ("a", "success", true),
            ("b", "success", true),
            ("c", "over_budget", false)
        ],
        "{g:?}"
    );
    assert_eq!(g.backend.as_deref(), Some("a"));
    assert_eq!(g.cost_usd.to_string(), "0.04");
    let now = "2026-11-10T12:00:00Z".parse().unwrap();
    let totals = genroute::store::Store::totals(&*store, genroute::store::Month::of(now), now)
        .await
        .unwrap();
    assert_eq!(totals.counted().to_string(), "0.04");
}
