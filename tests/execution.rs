//! Execution end to end, in process: fallback through the chain for every failure class,
//! breakers opening and recovering under an injected clock, exact ledger accounting, and
//! in-doubt create calls. The failing backend is a real `/v1/videos` adapter talking to a
//! local stub server.

use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router as Axum};
use chrono::TimeZone;
use genroute::exec::{DirSink, ManualClock, Router};
use genroute::output::Verdict;
use genroute::store::memory::MemoryStore;
use genroute::store::{Month, Store};
use genroute::{Fixed, Policy, RequestBuilder};

#[path = "common/scratch.rs"]
mod scratch;

/// How the stub answers `POST /v1/videos`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Ok = 0,
    TooMany = 1,
    ServerError = 2,
    Unavailable = 3,
    Slow = 4,
    Unauthorized = 5,
    Moderation = 6,
}

#[derive(Clone, Default)]
struct Stub {
    mode: Arc<AtomicU8>,
    creates: Arc<AtomicU32>,
}

async fn create(AxState(s): AxState<Stub>) -> Response {
    s.creates.fetch_add(1, Ordering::SeqCst);
    let mode = s.mode.load(Ordering::SeqCst);
    match mode {
        1 => (StatusCode::TOO_MANY_REQUESTS, Json(serde_json::json!({"error": {"code": "rate_limit_exceeded", "message": "slow down"}}))).into_response(),
        2 => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        3 => (StatusCode::SERVICE_UNAVAILABLE, "overloaded").into_response(),
        4 => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Json(serde_json::json!({"id": "v1", "object": "video", "status": "queued"})).into_response()
        }
        5 => (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"error": {"code": "invalid_api_key", "message": "bad key"}}))).into_response(),
        6 => Json(serde_json::json!({"id": "v1", "object": "video", "status": "failed", "error": {"code": "moderation_blocked", "message": "refused"}})).into_response(),
        _ => Json(serde_json::json!({"id": "v1", "object": "video", "status": "queued", "progress": 0, "error": null})).into_response(),
    }
}

async fn status(AxState(s): AxState<Stub>) -> Response {
    if s.mode.load(Ordering::SeqCst) == Mode::Moderation as u8 {
        return Json(serde_json::json!({"id": "v1", "object": "video", "status": "failed", "error": {"code": "moderation_blocked", "message": "refused"}})).into_response();
    }
    Json(serde_json::json!({"id": "v1", "object": "video", "status": "completed", "progress": 100, "error": null})).into_response()
}

/// A real 5 s 16:9 MP4, which genroute's output checks pass for the default 5 s request.
const CLIP: &[u8] = include_bytes!("fixtures/clip-5s-16x9.mp4");

async fn content() -> Response {
    ([("content-type", "video/mp4")], CLIP.to_vec()).into_response()
}

async fn start_stub() -> (String, Stub) {
    let stub = Stub::default();
    let app = Axum::new()
        .route("/v1/videos", post(create))
        .route("/v1/videos/{id}", get(status))
        .route("/v1/videos/{id}/content", get(content))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), stub)
}

fn policy(base_url: &str, on_rejected: &str) -> Policy {
    let yaml = format!(
        r#"
budget: {{monthly_budget_usd: 10, cost_threshold_usd: 8}}
# The frames of the stub's clip are measured in tests/output_checks.rs; here, where hundreds
# of generations run, one ffmpeg run each would only slow the suite down.
execution: {{on_content_rejected: {on_rejected}, output_checks: {{frames: "off"}}}}
backends:
  remote:
    priority: 1
    type: self_hosted
    cost: {{per_video_usd: 0.07}}
    models: [CogVideoX-5b]
    quality: {{score: 0.9}}
    performance: {{avg_generation_time_seconds: 1, max_generation_time_seconds: 3}}
    api: {{protocol: openai, base_url: "{base_url}", key_env: REMOTE_KEY, request_timeout_seconds: 0.5, poll_interval_seconds: 0.01}}
    circuit_breaker: {{failure_threshold: 3, timeout_seconds: 60, half_open_requests: 2}}
  backup:
    priority: 2
    type: simulated
    cost: {{per_video_usd: 0.05}}
    quality: {{score: 0.85}}
    performance: {{avg_generation_time_seconds: 30, max_generation_time_seconds: 90}}
"#
    );
    let env = |k: &str| (k == "REMOTE_KEY").then(|| "remote-SECRET-key".to_string());
    Policy::load(
        genroute::Source::new("exec.yaml", yaml),
        &genroute::LoadOptions { env: &env },
    )
    .unwrap()
}

struct Fixture {
    router: Router,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    stub: Stub,
}

async fn fixture(on_rejected: &str) -> Fixture {
    let (url, stub) = start_stub().await;
    let policy = Arc::new(policy(&url, on_rejected));
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 10, 12, 0, 0)
            .unwrap(),
    ));
    let env = |k: &str| (k == "REMOTE_KEY").then(|| "remote-SECRET-key".to_string());
    let sink = Arc::new(DirSink(scratch::scratch()));
    let router = Router::new(policy, store.clone(), &env, clock.clone(), sink);
    Fixture {
        router,
        store,
        clock,
        stub,
    }
}

fn request(p: &Policy) -> genroute::Request {
    RequestBuilder::new("a paper boat on a river")
        .build(p)
        .unwrap()
}

async fn spent(f: &Fixture) -> Fixed {
    let now = genroute::exec::Clock::now(&*f.clock);
    f.store.totals(Month::of(now), now).await.unwrap().spent()
}

#[tokio::test]
async fn every_retryable_class_falls_back_to_the_next_backend() {
    for (mode, outcome) in [
        (Mode::TooMany, "retryable"),
        (Mode::ServerError, "retryable"),
        (Mode::Unavailable, "retryable"),
        (Mode::Slow, "retryable"),
        (Mode::Unauthorized, "terminal"),
    ] {
        let f = fixture("stop").await;
        f.stub.mode.store(mode as u8, Ordering::SeqCst);
        let g = f
            .router
            .generate(&request(f.router.policy()))
            .await
            .unwrap();
        let story: Vec<(&str, &str)> = g
            .attempts
            .iter()
            .map(|a| (a.backend.as_str(), a.outcome.as_str()))
            .collect();
        assert_eq!(
            story,
            [("remote", outcome), ("backup", "success")],
            "{mode:?}: {g:#?}"
        );
        assert_eq!(g.backend.as_deref(), Some("backup"));
        assert!(g.video.as_deref().unwrap().starts_with("sim://backup/"));
        // A 429 made no job, so it is asked again while the 3 s deadline leaves room for a
        // 1 s wait and a call; any other create is never re-sent.
        let creates = if mode == Mode::TooMany { 3 } else { 1 };
        assert_eq!(
            f.stub.creates.load(Ordering::SeqCst),
            creates,
            "{mode:?}: a create is never re-sent"
        );
        if mode == Mode::Slow {
            // The create timed out: the job may exist, so its cost stays counted.
            assert!(g.attempts[0].in_doubt);
            assert_eq!(g.cost_usd, "0.12".parse().unwrap());
        } else {
            assert_eq!(g.cost_usd, "0.05".parse().unwrap(), "{mode:?}");
        }
        assert_eq!(
            spent(&f).await,
            g.cost_usd,
            "{mode:?}: the ledger matches what the client saw"
        );
        let msg = g.attempts[0].message.as_deref().unwrap_or_default();
        assert!(!msg.contains("SECRET"), "{msg}");
    }
}

#[tokio::test]
async fn success_on_the_first_backend_downloads_and_commits() {
    let f = fixture("stop").await;
    let g = f
        .router
        .generate(&request(f.router.policy()))
        .await
        .unwrap();
    assert_eq!(g.backend.as_deref(), Some("remote"));
    assert_eq!(g.attempts.len(), 1);
    let path = g.video.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), CLIP);
    assert_eq!(
        g.attempts[0].check.as_ref().unwrap().verdict,
        Verdict::Passed
    );
    assert_eq!(spent(&f).await, "0.07".parse().unwrap());
}

#[tokio::test]
async fn content_rejection_stops_or_falls_through_as_the_policy_says() {
    let f = fixture("stop").await;
    f.stub.mode.store(Mode::Moderation as u8, Ordering::SeqCst);
    let g = f
        .router
        .generate(&request(f.router.policy()))
        .await
        .unwrap();
    assert_eq!(g.attempts.len(), 1);
    assert_eq!(g.attempts[0].outcome, "content_rejected");
    assert_eq!(g.backend, None);
    assert_eq!(spent(&f).await, Fixed::ZERO);

    let f = fixture("fallback").await;
    f.stub.mode.store(Mode::Moderation as u8, Ordering::SeqCst);
    let g = f
        .router
        .generate(&request(f.router.policy()))
        .await
        .unwrap();
    assert_eq!(g.backend.as_deref(), Some("backup"));
}

#[tokio::test]
async fn breaker_opens_after_n_failures_then_half_opens_and_closes() {
    let f = fixture("stop").await;
    let p = f.router.policy().clone();
    let req = request(&p);
    f.stub.mode.store(Mode::ServerError as u8, Ordering::SeqCst);
    for _ in 0..3 {
        let g = f.router.generate(&req).await.unwrap();
        assert_eq!(g.attempts[0].outcome, "retryable");
    }
    // Open: explain shows it ineligible, and generate goes straight to the backup.
    let e = f.router.explain(&req).await.unwrap().0;
    let remote = e.backends.iter().find(|b| b.name == "remote").unwrap();
    assert!(!remote.eligible);
    assert_eq!(remote.reasons, ["circuit breaker is open"]);
    assert_eq!(e.backend.as_deref(), Some("backup"));
    let before = f.stub.creates.load(Ordering::SeqCst);
    let g = f.router.generate(&req).await.unwrap();
    assert_eq!(g.attempts.len(), 1);
    assert_eq!(g.attempts[0].backend, "backup");
    assert_eq!(
        f.stub.creates.load(Ordering::SeqCst),
        before,
        "no call while open"
    );

    // After the timeout it is half-open and admits probes; two successes close it.
    f.clock.advance(chrono::Duration::seconds(61));
    f.stub.mode.store(Mode::Ok as u8, Ordering::SeqCst);
    let e = f.router.explain(&req).await.unwrap().0;
    assert_eq!(
        e.context.breakers["remote"],
        genroute::BreakerState::HalfOpen
    );
    assert_eq!(e.backend.as_deref(), Some("remote"));
    for _ in 0..2 {
        let g = f.router.generate(&req).await.unwrap();
        assert_eq!(g.backend.as_deref(), Some("remote"));
    }
    assert_eq!(
        f.router.explain(&req).await.unwrap().0.context.breakers["remote"],
        genroute::BreakerState::Closed
    );
}

#[tokio::test]
async fn a_failed_probe_reopens_the_breaker() {
    let f = fixture("stop").await;
    let req = request(f.router.policy());
    f.stub.mode.store(Mode::ServerError as u8, Ordering::SeqCst);
    for _ in 0..3 {
        f.router.generate(&req).await.unwrap();
    }
    f.clock.advance(chrono::Duration::seconds(61));
    let g = f.router.generate(&req).await.unwrap();
    assert_eq!(
        g.attempts[0].outcome, "retryable",
        "the probe was admitted and failed"
    );
    assert_eq!(
        f.router.explain(&req).await.unwrap().0.context.breakers["remote"],
        genroute::BreakerState::Open
    );
}

#[tokio::test]
async fn budget_is_never_overspent_and_seven_cents_add_up_exactly() {
    let f = fixture("stop").await;
    let req = request(f.router.policy());
    // Budget 10 at 0.07 a video: 142 fit (9.94); the 143rd would pass 10.
    let mut successes = 0;
    let mut total = Fixed::ZERO;
    for _ in 0..150 {
        let g = f.router.generate(&req).await.unwrap();
        if g.video.is_some() {
            successes += 1;
            total = total.checked_add(g.cost_usd).unwrap();
        }
    }
    assert_eq!(spent(&f).await, total);
    assert!(spent(&f).await <= "10".parse().unwrap());
    // 142 on remote at 0.07 = 9.94; then one on backup at 0.05 = 9.99; then nothing fits.
    assert_eq!(successes, 143);
    assert_eq!(spent(&f).await, "9.99".parse().unwrap());
    // Neither backend asks for `budget_available`, so both stay eligible; the ledger's
    // reserve is what refuses them.
    let g = f.router.generate(&req).await.unwrap();
    let outcomes: Vec<&str> = g.attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["over_budget", "over_budget"]);
    assert_eq!(g.cost_usd, Fixed::ZERO);
}

#[tokio::test]
async fn concurrent_requests_never_pass_the_budget() {
    let f = Arc::new(fixture("stop").await);
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Fixed::ZERO;
            for _ in 0..4 {
                let g = f
                    .router
                    .generate(&request(f.router.policy()))
                    .await
                    .unwrap();
                seen = seen.checked_add(g.cost_usd).unwrap();
            }
            seen
        }));
    }
    let mut total = Fixed::ZERO;
    for t in tasks {
        total = total.checked_add(t.await.unwrap()).unwrap();
    }
    assert_eq!(
        spent(&f).await,
        total,
        "the ledger equals what the clients saw"
    );
    assert!(total <= "10".parse().unwrap(), "{total}");
}
