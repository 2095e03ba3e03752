//! `genroute serve` in process: every endpoint, checked against `openapi.yaml`; bad bodies,
//! the admin token, async jobs, and hot reload with valid and invalid files under load.

use std::sync::Arc;
use std::time::Duration;

use genroute::exec::{DirSink, SystemClock};
use genroute::server::{routes, App, Config};
use genroute::store::memory::MemoryStore;
use serde_json::{json, Value};

#[path = "common/scratch.rs"]
mod scratch;

const POLICY: &str = r#"
budget: {monthly_budget_usd: 1.00, cost_threshold_usd: 0.80}
backends:
  fast:
    priority: 1
    type: simulated
    cost: {per_video_usd: 0.10}
    quality: {score: 0.9}
    performance: {avg_generation_time_seconds: 10, max_generation_time_seconds: 60}
    selection_criteria: {budget_available: true}
  cheap:
    priority: 2
    type: simulated
    cost: {per_video_usd: 0.02}
    quality: {score: 0.8}
    performance: {avg_generation_time_seconds: 20, max_generation_time_seconds: 60}
    selection_criteria: {budget_available: true}
selection_rules:
  - {name: speed_cheap, condition: "priority == 'speed'", backend: cheap}
"#;

struct Server {
    url: String,
    client: reqwest::Client,
    policy_path: std::path::PathBuf,
    spec: Value,
}

async fn start(admin: Option<&str>) -> Server {
    start_with(admin, POLICY).await
}

async fn start_with(admin: Option<&str>, policy: &str) -> Server {
    let dir = scratch::scratch();
    let policy_path = dir.join("policy.yaml");
    std::fs::write(&policy_path, policy).unwrap();
    let config = Config {
        admin_token: admin.map(str::to_string),
        state_ttl: Duration::ZERO,
        ..Config::new(policy_path.clone())
    };
    let app = App::new(
        config,
        Arc::new(MemoryStore::new()),
        Arc::new(|_: &str| None),
        Arc::new(SystemClock),
        Arc::new(DirSink(dir.join("videos"))),
    )
    .await
    .unwrap();
    let watcher = genroute::server::watch(app.clone()).unwrap();
    std::mem::forget(watcher);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, routes(app)).await.unwrap() });
    let spec: Value = serde_yaml::from_str(include_str!("../openapi.yaml")).unwrap();
    Server {
        url,
        client: reqwest::Client::new(),
        policy_path,
        spec,
    }
}

impl Server {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut req = match method {
            "get" => self.client.get(format!("{}{path}", self.url)),
            _ => self.client.post(format!("{}{path}", self.url)),
        };
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.timeout(Duration::from_secs(10)).send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        self.conforms(method, path, status, &value);
        (status, value)
    }

    /// The status is documented for this operation, and the body matches its schema.
    fn conforms(&self, method: &str, path: &str, status: u16, body: &Value) {
        let template = match path {
            p if p.starts_with("/v1/jobs/") => "/v1/jobs/{id}",
            p if p.starts_with("/v1/admin/breakers/") => "/v1/admin/breakers/{backend}/reset",
            p => p,
        };
        let op = &self.spec["paths"][template][method];
        assert!(op.is_object(), "{method} {template} is not in openapi.yaml");
        let mut response = op["responses"][status.to_string()].clone();
        assert!(
            response.is_object(),
            "{method} {path} answered {status}, which openapi.yaml does not document: {body}"
        );
        if let Some(r) = response.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap();
            response = self.spec["components"]["responses"][name].clone();
        }
        let Some(schema) = response.pointer("/content/application~1json/schema") else {
            return;
        };
        let mut root = schema.clone();
        root["components"] = self.spec["components"].clone();
        let validator = jsonschema::validator_for(&root).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status}: body does not match openapi.yaml: {errors:?}\n{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn decide_returns_the_explain_json() {
    let s = start(None).await;
    let (status, v) = s
        .call("post", "/v1/decide", Some(r#"{"priority": "speed"}"#), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["backend"], "cheap");
    assert_eq!(v["rule"], "speed_cheap");
    assert_eq!(v["rules"][0]["matched"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_bodies_get_400_naming_the_field_and_413_when_too_large() {
    let s = start(None).await;
    for (body, field) in [
        ("{not json", "(body)"),
        (r#"{"priority": "fast"}"#, "priority"),
        (r#"{"duration": "eight"}"#, "duration"),
        (r#"{"prority": "speed"}"#, "prority"),
        ("[1]", "(body)"),
        ("", "(body)"),
    ] {
        for path in ["/v1/decide", "/v1/generate", "/v1/jobs"] {
            let (status, v) = s.call("post", path, Some(body), None).await;
            assert_eq!(status, 400, "{path} {body}: {v}");
            assert_eq!(v["error"]["field"], field, "{path} {body}: {v}");
        }
    }
    let huge = format!(r#"{{"prompt": "{}"}}"#, "x".repeat(300 * 1024));
    let (status, _) = s.call("post", "/v1/decide", Some(&huge), None).await;
    assert_eq!(status, 413);
    let nope = s
        .client
        .get(format!("{}/nope", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(nope.status().as_u16(), 404);
}

/// Writes a whole request (headers, then `body_len` bytes, as `http.client` and `requests`
/// do) before reading anything, then reads the answer to the end.
fn write_all_then_read(url: &str, head: &str, body_len: usize, chunked: bool) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    sock.write_all(head.as_bytes()).unwrap();
    let block = vec![b'x'; 64 * 1024];
    let mut left = body_len;
    while left > 0 {
        let n = left.min(block.len());
        if chunked {
            sock.write_all(format!("{n:x}\r\n").as_bytes()).unwrap();
        }
        sock.write_all(&block[..n])
            .expect("the server closed the connection before the body was read (the client sees a broken pipe, not the 413)");
        if chunked {
            sock.write_all(b"\r\n").unwrap();
        }
        left -= n;
    }
    if chunked {
        sock.write_all(b"0\r\n\r\n").unwrap();
    }
    let mut answer = Vec::new();
    let _ = sock.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_writes_20_mib_before_reading_gets_the_413_and_its_message() {
    let s = start(None).await;
    let url = s.url.clone();
    let size = 20 << 20;
    let answers = tokio::task::spawn_blocking(move || {
        let declared = format!(
            "POST /v1/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
        );
        let chunked = "POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        [
            write_all_then_read(&url, &declared, size, false),
            write_all_then_read(&url, chunked, size, true),
        ]
    })
    .await
    .unwrap();
    for answer in answers {
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(
            answer.contains("the body is larger than 256 KiB"),
            "{answer}"
        );
    }
    // The server is fine afterwards.
    let (status, _) = s.call("post", "/v1/decide", Some("{}"), None).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn reading_the_policy_file_does_not_reload_it() {
    let s = start(None).await;
    let reloads = |m: &Value| {
        m.as_str()
            .unwrap()
            .lines()
            .find(|l| l.starts_with("videogen_policy_reloads_total "))
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
    };
    for _ in 0..5 {
        std::fs::read_to_string(&s.policy_path).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, m) = s.call("get", "/metrics", None, None).await;
    assert_eq!(
        reloads(&m).as_deref(),
        Some("0"),
        "reads reloaded the policy"
    );
    std::fs::write(&s.policy_path, POLICY).unwrap();
    let started = std::time::Instant::now();
    loop {
        let (_, m) = s.call("get", "/metrics", None, None).await;
        if reloads(&m).as_deref() == Some("1") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a write did not reload: {m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And its own read of the file does not start another.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, m) = s.call("get", "/metrics", None, None).await;
    assert_eq!(
        reloads(&m).as_deref(),
        Some("1"),
        "a reload reloaded itself"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_policy_on_reload_is_refused_and_healthz_keeps_answering() {
    let s = start(None).await;
    let n = 100_000;
    let hostile = format!("{POLICY}x-note: {}{}\n", "[".repeat(n), "]".repeat(n));
    std::fs::write(&s.policy_path, hostile).unwrap();
    let started = std::time::Instant::now();
    loop {
        let (status, _) = s.call("get", "/healthz", None, None).await;
        assert_eq!(status, 200);
        let (_, r) = s.call("get", "/readyz", None, None).await;
        if r["last_reload_ok"] == false {
            let why = r["last_reload_error"].as_str().unwrap();
            assert!(why.contains("64 levels"), "{why}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the reload never finished: {r}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The previous policy keeps serving.
    let (status, _) = s.call("post", "/v1/decide", Some("{}"), None).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn generate_sync_and_async_then_budget_and_metrics() {
    let s = start(None).await;
    let (status, g) = s
        .call(
            "post",
            "/v1/generate",
            Some(r#"{"prompt": "a kite", "priority": "balanced"}"#),
            None,
        )
        .await;
    assert_eq!(status, 200, "{g}");
    assert_eq!(g["backend"], "fast");
    let (status, job) = s
        .call(
            "post",
            "/v1/jobs",
            Some(r#"{"prompt": "a kite", "priority": "speed"}"#),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let id = job["id"].as_str().unwrap().to_string();
    let mut done = Value::Null;
    for _ in 0..200 {
        let (status, j) = s.call("get", &format!("/v1/jobs/{id}"), None, None).await;
        assert_eq!(status, 200);
        if j["status"] != "running" && j["status"] != "queued" {
            done = j;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["backend"], "cheap");
    let (status, _) = s.call("get", "/v1/jobs/unknown", None, None).await;
    assert_eq!(status, 404);

    let (status, b) = s.call("get", "/v1/budget", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(b["spent_usd"], json!(0.12));
    assert_eq!(b["remaining_usd"], json!(0.88));

    let (status, b) = s.call("get", "/v1/backends", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(b["backends"][0]["name"], "fast");
    assert_eq!(b["backends"][0]["recent"]["calls"], 1);
    assert_eq!(b["backends"][0]["recent"]["success_rate"], json!(1.0));

    let (status, m) = s.call("get", "/metrics", None, None).await;
    assert_eq!(status, 200);
    let text = m.as_str().unwrap();
    for name in [
        "videogen_monthly_spend_usd 0.12",
        "videogen_budget_utilization_percent 12",
        "videogen_cost_per_video_usd_bucket",
        "videogen_generation_latency_seconds_bucket{backend=\"fast\"",
        "videogen_backend_success_rate{backend=\"fast\"} 1",
        "videogen_circuit_breaker_state{backend=\"fast\"} 0",
        "videogen_quality_score_bucket",
        "videogen_requests_total{backend=\"cheap\",priority=\"speed\"} 1",
        "videogen_policy_reload_ok 1",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
    let (status, _) = s.call("get", "/healthz", None, None).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn exhausted_budget_answers_402_with_the_reasons() {
    let s = start(None).await;
    let mut last = (0, Value::Null);
    for _ in 0..60 {
        last = s
            .call(
                "post",
                "/v1/generate",
                Some(r#"{"prompt": "x", "priority": "speed"}"#),
                None,
            )
            .await;
        if last.0 != 200 {
            break;
        }
    }
    assert_eq!(last.0, 402, "{}", last.1);
    assert!(
        last.1["explanation"]["backends"][0]["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("the monthly budget has $"),
        "{}",
        last.1
    );
    let (status, v) = s
        .call("post", "/v1/decide", Some(r#"{"priority": "speed"}"#), None)
        .await;
    assert_eq!(status, 402);
    assert_eq!(v["backend"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_endpoints_need_the_token_and_are_off_without_one() {
    let s = start(None).await;
    let (status, _) = s.call("post", "/v1/admin/reload", None, None).await;
    assert_eq!(status, 403);
    let s = start(Some("t0ken")).await;
    for token in [None, Some("wrong")] {
        let (status, _) = s.call("post", "/v1/admin/reload", None, token).await;
        assert_eq!(status, 401);
        let (status, _) = s
            .call("post", "/v1/admin/breakers/fast/reset", None, token)
            .await;
        assert_eq!(status, 401);
    }
    let (status, _) = s
        .call("post", "/v1/admin/reload", None, Some("t0ken"))
        .await;
    assert_eq!(status, 200);
    let (status, v) = s
        .call("post", "/v1/admin/breakers/fast/reset", None, Some("t0ken"))
        .await;
    assert_eq!((status, v["breaker"].as_str()), (200, Some("closed")));
    let (status, _) = s
        .call("post", "/v1/admin/breakers/nope/reset", None, Some("t0ken"))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn hot_reload_under_load_swaps_valid_policies_and_keeps_the_old_one_on_errors() {
    let s = Arc::new(start(Some("t0ken")).await);
    let load = {
        let s = s.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..300 {
                statuses.push(
                    s.call("post", "/v1/decide", Some(r#"{"priority": "speed"}"#), None)
                        .await
                        .0,
                );
            }
            statuses
        })
    };
    // A valid change: speed now goes to `fast`.
    let changed = POLICY.replace("backend: cheap}", "backend: fast}");
    std::fs::write(&s.policy_path, &changed).unwrap();
    let mut switched = false;
    for _ in 0..200 {
        if s.call("post", "/v1/decide", Some(r#"{"priority": "speed"}"#), None)
            .await
            .1["backend"]
            == "fast"
        {
            switched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(switched, "the watcher reloaded the valid policy");
    // An invalid change: refused, reported, and the previous policy keeps serving.
    std::fs::write(
        &s.policy_path,
        changed.replace("priority == 'speed'", "priority == 'sped'"),
    )
    .unwrap();
    let mut reported = Value::Null;
    for _ in 0..200 {
        let (_, r) = s.call("get", "/readyz", None, None).await;
        if r["last_reload_ok"] == false {
            reported = r;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        reported["last_reload_error"]
            .as_str()
            .unwrap()
            .contains("did you mean 'speed'?"),
        "{reported}"
    );
    let (status, v) = s
        .call("post", "/v1/decide", Some(r#"{"priority": "speed"}"#), None)
        .await;
    assert_eq!((status, v["backend"].as_str()), (200, Some("fast")));
    let (_, m) = s.call("get", "/metrics", None, None).await;
    assert!(m
        .as_str()
        .unwrap()
        .contains("videogen_policy_reload_failures_total 1"));
    assert!(m.as_str().unwrap().contains("videogen_policy_reload_ok 0"));
    // The admin endpoint reports the same refusal.
    let (status, _) = s
        .call("post", "/v1/admin/reload", None, Some("t0ken"))
        .await;
    assert_eq!(status, 422);
    let statuses = load.await.unwrap();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every request during reloads was served"
    );
}

/// Arbitrary bodies: JSON values of every shape, broken JSON, and bytes that are not UTF-8.
fn arbitrary_body() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let json_leaf = prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(|b| json!(b)),
        any::<f64>().prop_map(|f| json!(f)),
        any::<i64>().prop_map(|i| json!(i)),
        ".{0,20}".prop_map(|s| json!(s)),
        prop::sample::select(vec![
            "quality", "speed", "balanced", "16:9", "9:16", "0.5", "-1"
        ])
        .prop_map(|s| json!(s)),
    ];
    let json = json_leaf.prop_recursive(3, 24, 5, |inner| {
        let keys = prop::sample::select(vec![
            "prompt",
            "priority",
            "duration",
            "aspect_ratio",
            "quality_threshold",
            "style",
            "negative_prompt",
            "tier",
            "x",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6).prop_map(|m| json!(m)),
        ]
    });
    prop_oneof![
        4 => json.prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => ".{0,40}".prop_map(|s: String| s.into_bytes()),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn no_input_crashes_the_server() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;
    let s = start(None).await;
    let mut runner = TestRunner::deterministic();
    for i in 0..300 {
        let body = arbitrary_body().new_tree(&mut runner).unwrap().current();
        let path = ["/v1/decide", "/v1/generate", "/v1/jobs"][i % 3];
        let resp = s
            .client
            .post(format!("{}{path}", s.url))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        assert!(
            matches!(status, 200 | 202 | 400 | 402 | 409 | 502 | 503),
            "{path} answered {status} to {:?}",
            String::from_utf8_lossy(&body)
        );
    }
    let (status, _) = s.call("get", "/healthz", None, None).await;
    assert_eq!(status, 200, "still up");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_in_flight_finishes_on_the_policy_it_started_with() {
    // `slow` takes about half a second of wall-clock time per call.
    let before = POLICY.replace(
        "    performance: {avg_generation_time_seconds: 10, max_generation_time_seconds: 60}\n    selection_criteria: {budget_available: true}\n  cheap:",
        "    performance: {avg_generation_time_seconds: 10, max_generation_time_seconds: 60}\n    simulation: {time_scale: 0.05}\n    selection_criteria: {budget_available: true}\n  cheap:",
    );
    assert_ne!(before, POLICY);
    let s = Arc::new(start_with(Some("t0ken"), &before).await);
    let in_flight = {
        let s = s.clone();
        tokio::spawn(async move {
            s.call(
                "post",
                "/v1/generate",
                Some(r#"{"prompt": "x", "priority": "balanced"}"#),
                None,
            )
            .await
        })
    };
    // Wait until it holds a reservation, i.e. it is running on the old policy.
    for _ in 0..500 {
        if s.call("get", "/v1/budget", None, None).await.1["reserved_usd"] != json!(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(
        s.call("get", "/v1/budget", None, None).await.1["reserved_usd"],
        json!(0.1),
        "in flight"
    );
    // Balanced work now goes to `cheap`.
    let after = format!("{before}  - {{name: balanced_cheap, condition: \"priority == 'balanced'\", backend: cheap}}\n");
    std::fs::write(&s.policy_path, after).unwrap();
    let (status, _) = s
        .call("post", "/v1/admin/reload", None, Some("t0ken"))
        .await;
    assert_eq!(status, 200);
    let (status, v) = s
        .call(
            "post",
            "/v1/generate",
            Some(r#"{"prompt": "x", "priority": "balanced"}"#),
            None,
        )
        .await;
    assert_eq!(
        (status, v["backend"].as_str()),
        (200, Some("cheap")),
        "a new request uses the new policy"
    );
    let (status, v) = in_flight.await.unwrap();
    assert_eq!(
        (status, v["backend"].as_str()),
        (200, Some("fast")),
        "the request in flight kept the old one"
    );
}
