//! `takeover`: how long a job waits when its owner is killed. Two `genroute serve` replicas
//! share one Redis; a stub `/v1/videos` backend (here, on its own thread) records when each of
//! its jobs is polled. A job is submitted to replica A; once its handle is recorded, A is
//! killed with SIGKILL, and the time until the stub sees the job polled again (necessarily by
//! B) is the takeover time. The replicas run with their default lease.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

#[derive(Clone, Default)]
struct Stub {
    polls: Arc<Mutex<Vec<Instant>>>,
    created: Arc<Mutex<Option<Instant>>>,
}

async fn create(State(s): State<Stub>) -> Json<serde_json::Value> {
    *s.created.lock().unwrap() = Some(Instant::now());
    Json(json!({"id": "video_1", "object": "video", "status": "queued", "progress": 0}))
}

async fn retrieve(State(s): State<Stub>, Path(id): Path<String>) -> Json<serde_json::Value> {
    s.polls.lock().unwrap().push(Instant::now());
    // Never finishes within a run: every poll is a data point.
    Json(json!({"id": id, "object": "video", "status": "in_progress", "progress": 50}))
}

fn stub() -> (String, Stub) {
    let s = Stub::default();
    let app = Router::new()
        .route("/v1/videos", post(create))
        .route("/v1/videos/{id}", get(retrieve))
        .with_state(s.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    (url, s)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(
    bin: &str,
    policy: &std::path::Path,
    redis: &str,
    data: &std::path::Path,
) -> (std::process::Child, String) {
    let port = free_port();
    let child = std::process::Command::new(bin)
        .args([
            "serve",
            "--policy",
            policy.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--store",
            redis,
        ])
        .arg("--data-dir")
        .arg(data)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("genroute serve starts");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "replica did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, format!("http://127.0.0.1:{port}"))
}

/// Runs `rounds` takeovers; prints their times as JSON.
pub async fn run(bin: String, redis: String, rounds: usize) {
    let client = reqwest::Client::new();
    let mut times = Vec::new();
    for round in 0..rounds {
        let dir =
            std::env::temp_dir().join(format!("genroute-takeover-{}-{round}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (url, stub) = stub();
        let policy = dir.join("policy.yaml");
        std::fs::write(
            &policy,
            format!(
                "budget: {{monthly_budget_usd: 1000, cost_threshold_usd: 900}}\nbackends:\n  gpu:\n    priority: 1\n    type: self_hosted\n    cost: {{per_video_usd: 0.02}}\n    quality: {{score: 0.9}}\n    performance: {{avg_generation_time_seconds: 60, max_generation_time_seconds: 600}}\n    api: {{protocol: openai, base_url: \"{url}\", poll_interval_seconds: 0.5}}\n"
            ),
        )
        .unwrap();
        let redis_url = format!("{redis}?prefix=takeover{round}");
        let (mut a, a_url) = serve(&bin, &policy, &redis_url, &dir.join("a"));
        let (mut b, _) = serve(&bin, &policy, &redis_url, &dir.join("b"));
        let v: serde_json::Value = client
            .post(format!("{a_url}/v1/jobs"))
            .json(&json!({"prompt": "a takeover"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        // Wait for the handle, and for A's first poll.
        loop {
            let j: serde_json::Value = client
                .get(format!("{a_url}/v1/jobs/{id}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if j["current"]["phase"] == "created" && !stub.polls.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        a.kill().unwrap();
        let killed = Instant::now();
        a.wait().unwrap();
        let again = loop {
            if let Some(t) = stub.polls.lock().unwrap().iter().find(|t| **t > killed) {
                break *t;
            }
            assert!(
                killed.elapsed() < Duration::from_secs(60),
                "the job was never taken over"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        times.push(again.duration_since(killed).as_secs_f64() * 1000.0);
        let _ = b.kill();
        let _ = b.wait();
        let _ = std::fs::remove_dir_all(&dir);
    }
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let out = json!({
        "rounds": rounds,
        "takeover_ms": times,
        "p50_ms": sorted.get(sorted.len() / 2),
        "max_ms": sorted.last(),
    });
    println!("{out}");
}
