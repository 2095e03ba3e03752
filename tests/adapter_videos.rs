//! The `videos` protocol against a stub of each `/v1/videos` server it speaks: genroute's
//! worker and gateways (`openai`), vLLM-Omni and SGLang Diffusion, each stub written from that
//! server's own source (see `common/videos_stub.rs`). The whole path runs through the real
//! binary: `genroute generate` → create → poll → download → the saved file.

mod common;
#[path = "common/scratch.rs"]
mod scratch;
#[path = "common/videos_stub.rs"]
mod videos_stub;

use std::sync::atomic::Ordering;
use std::time::Duration;

use genroute::adapter::videos::Videos;
use genroute::adapter::{http_client, Adapter, Cancel, Endpoint, FailureClass, Handle, JobSpec};
use genroute::policy::api::{Dialect, Param};
use serde_json::{json, Value};
use videos_stub::Dialect as Stubbed;

fn policy(dir: &std::path::Path, stub: &str, dialect: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("policy.yaml");
    std::fs::write(
        &path,
        format!(
            r#"
budget: {{monthly_budget_usd: 10.00, cost_threshold_usd: 9.00}}
backends:
  cogvideox:
    priority: 1
    type: self_hosted
    cost: {{per_video_usd: 0.02}}
    models: [THUDM/CogVideoX-5b]
    quality: {{score: 0.8}}
    performance: {{avg_generation_time_seconds: 2, max_generation_time_seconds: 60}}
    api:
      protocol: videos
      dialect: {dialect}
      base_url: "{stub}"
      poll_interval_seconds: 0.1
      parameters:
        size: 640x360   # 16:9, as the stub's clip (a 5 s 16:9 MP4)
        num_frames: 49
        fps: 8
        num_inference_steps: 50
        guidance_scale: 6.0
{extra}
"#
        ),
    )
    .unwrap();
    path
}

fn generate(policy: &std::path::Path, data: &std::path::Path, prompt: &str) -> (bool, Value) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_genroute"))
        .args(["generate", "--policy"])
        .arg(policy)
        .args([
            "--prompt",
            prompt,
            "--duration",
            "6",
            "--format",
            "json",
            "--data-dir",
        ])
        .arg(data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.success(), v)
}

#[test]
fn every_dialect_runs_the_whole_path_to_a_saved_file() {
    for (dialect, stubbed) in [
        ("openai", Stubbed::Openai),
        ("vllm-omni", Stubbed::VllmOmni),
        ("sglang", Stubbed::Sglang),
    ] {
        let dir = scratch::scratch();
        let (url, stub) = videos_stub::start_dialect(stubbed, Duration::from_millis(900));
        let p = policy(&dir, &url, dialect, "");
        let (ok, v) = generate(&p, &dir, "a lighthouse in a storm");
        assert!(ok, "{dialect}: {v}");
        assert_eq!(v["backend"], "cogvideox", "{dialect}");
        let saved = std::fs::read(v["video"].as_str().unwrap()).unwrap();
        assert_eq!(
            saved,
            videos_stub::VIDEO,
            "{dialect}: the saved file is the video"
        );
        assert_eq!(stub.creates.load(Ordering::SeqCst), 1, "{dialect}");

        // What the server read, in its own types.
        let body = stub.bodies.lock().unwrap()[0].clone();
        assert_eq!(body["prompt"], "a lighthouse in a storm", "{dialect}");
        assert_eq!(
            body["size"], "640x360",
            "{dialect}: the parameter, not the aspect ratio's"
        );
        match stubbed {
            Stubbed::Sglang => {
                assert_eq!(body["seconds"], json!(6));
                assert_eq!(body["num_frames"], json!(49));
                assert_eq!(body["guidance_scale"], json!(6));
                assert_eq!(body["model"], "THUDM/CogVideoX-5b");
            }
            Stubbed::VllmOmni => {
                assert_eq!(body["seconds"], "6");
                assert_eq!(body["num_frames"], "49");
                assert_eq!(body["num_inference_steps"], "50");
                assert!(
                    body.get("model").is_none(),
                    "vLLM-Omni refuses any model name but its own"
                );
            }
            Stubbed::Openai => {
                assert_eq!(body["seconds"], "6");
                assert_eq!(body["fps"], "8");
                assert_eq!(body["model"], "THUDM/CogVideoX-5b");
            }
        }
    }
}

#[test]
fn a_failed_job_is_read_in_every_dialect_and_falls_back() {
    // A second backend that always works, so the failure shows as a fallback.
    let fallback = r#"
  simulated:
    priority: 2
    type: simulated
    cost: {per_video_usd: 0.05}
    quality: {score: 0.9}
    performance: {avg_generation_time_seconds: 1, max_generation_time_seconds: 5}
    simulation: {failure_rate: 0, time_scale: 0}
"#;
    for (dialect, stubbed) in [
        ("openai", Stubbed::Openai),
        ("vllm-omni", Stubbed::VllmOmni),
        ("sglang", Stubbed::Sglang),
    ] {
        let dir = scratch::scratch();
        let (url, stub) = videos_stub::start_dialect(stubbed, Duration::from_millis(900));
        let p = policy(&dir, &url, dialect, fallback);
        let (ok, v) = generate(&p, &dir, "FAIL on purpose");
        assert!(ok, "{dialect}: {v}");
        assert_eq!(v["backend"], "simulated", "{dialect}: {v}");
        let first = &v["attempts"][0];
        assert_eq!(first["backend"], "cogvideox");
        // The server's own failure, read as one, and not a wait for the 60 s deadline
        // (vLLM-Omni answers it with HTTP 500 and the job as the body).
        let message = first["message"].as_str().unwrap_or_default();
        assert!(message.contains("CUDA out of memory"), "{dialect}: {first}");
        assert_ne!(first["in_doubt"], json!(true), "{dialect}: {first}");
        assert_eq!(stub.creates.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn a_full_queue_is_waited_out_and_asked_again() {
    let dir = scratch::scratch();
    let (url, stub) = videos_stub::start_dialect(Stubbed::Openai, Duration::from_millis(600));
    stub.queue_full.store(2, Ordering::SeqCst);
    let p = policy(&dir, &url, "openai", "");
    let (ok, v) = generate(&p, &dir, "a queue");
    assert!(ok, "{v}");
    assert_eq!(v["backend"], "cogvideox");
    assert_eq!(v["attempts"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(
        stub.refused.load(Ordering::SeqCst),
        2,
        "two 429s, then taken"
    );
    assert_eq!(stub.creates.load(Ordering::SeqCst), 1);
}

fn adapter(url: &str, dialect: Dialect) -> Adapter {
    Adapter::Videos(Videos {
        endpoint: Endpoint {
            base_url: url.into(),
            key: None,
            request_timeout: Duration::from_secs(2),
            poll_interval: Duration::from_millis(20),
            poll_max: Duration::from_millis(100),
        },
        client: http_client(),
        dialect,
        parameters: vec![("num_frames".into(), Param::Int(9))],
    })
}

fn job() -> JobSpec {
    JobSpec {
        request_id: "req-1".into(),
        attempt: 1,
        prompt: "a lighthouse".into(),
        negative_prompt: None,
        duration_seconds: 4,
        aspect_ratio: "9:16".into(),
        model: Some("THUDM/CogVideoX-5b".into()),
        deadline: Duration::from_secs(20),
    }
}

#[tokio::test]
async fn cancel_follows_each_servers_answer() {
    let within = Duration::from_secs(5);
    // (dialect, cancel while queued, cancel while running)
    let cases = [
        // The worker: a queued job is cancelled unrun; a running one stops at its next step.
        (
            Stubbed::Openai,
            Dialect::OpenAi,
            Cancel::NothingProduced,
            Cancel::MaybeProduced,
        ),
        // vLLM-Omni cancels its task and forgets the job; 409 while it is still cancelling.
        (
            Stubbed::VllmOmni,
            Dialect::VllmOmni,
            Cancel::NothingProduced,
            Cancel::MaybeProduced,
        ),
        // SGLang's `deleted` does not stop the job: never released.
        (
            Stubbed::Sglang,
            Dialect::Sglang,
            Cancel::MaybeProduced,
            Cancel::MaybeProduced,
        ),
    ];
    for (stubbed, dialect, queued, running) in cases {
        let (url, stub) = videos_stub::start_dialect(stubbed, Duration::from_secs(30));
        *stub.queued_for.lock().unwrap() = Duration::from_secs(10);
        let a = adapter(&url, dialect);
        let h = a.create(&job(), within).await.unwrap();
        assert_eq!(a.cancel(&h, &job()).await, queued, "{dialect:?} queued");

        *stub.queued_for.lock().unwrap() = Duration::ZERO;
        *stub.cancel_busy.lock().unwrap() = true;
        let h = a.create(&job(), within).await.unwrap();
        assert_eq!(a.cancel(&h, &job()).await, running, "{dialect:?} running");
        assert_eq!(stub.deletes.load(Ordering::SeqCst), 2, "{dialect:?}");
    }
}

#[tokio::test]
async fn the_wrong_dialect_is_refused_as_the_server_refuses_it() {
    // JSON to vLLM-Omni: FastAPI's 422 "Field required", the bug this dialect fixes.
    let (url, stub) = videos_stub::start_dialect(Stubbed::VllmOmni, Duration::from_secs(1));
    let f = adapter(&url, Dialect::Sglang)
        .create(&job(), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!((f.class, f.in_doubt), (FailureClass::Terminal, false));
    assert!(
        f.message.contains("HTTP 422") && f.message.contains("Field required"),
        "{f:?}"
    );
    // A model name vLLM-Omni does not serve is its 400; the vllm-omni dialect sends none.
    let other = JobSpec {
        model: Some("cogvideox-5b".into()),
        ..job()
    };
    let f = adapter(&url, Dialect::OpenAi)
        .create(&other, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(f.message.contains("Model mismatch"), "{f:?}");
    assert!(adapter(&url, Dialect::VllmOmni)
        .create(&other, Duration::from_secs(5))
        .await
        .is_ok());
    assert_eq!(stub.creates.load(Ordering::SeqCst), 1);
    // Multipart to SGLang: its multipart path wants an input image.
    let (url, _) = videos_stub::start_dialect(Stubbed::Sglang, Duration::from_secs(1));
    let f = adapter(&url, Dialect::OpenAi)
        .create(&job(), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(f.message.contains("input_reference"), "{f:?}");
}

#[tokio::test]
async fn a_server_that_is_gone_ends_the_attempt_in_doubt() {
    // Nothing listens here any more (a worker killed mid-job).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let a = adapter(&format!("http://127.0.0.1:{port}"), Dialect::OpenAi);
    let handle = Handle {
        id: "video_1".into(),
    };
    let f = a
        .resume(&handle, &job(), Duration::from_secs(20))
        .await
        .unwrap_err();
    assert!(f.in_doubt, "the job was created: {f:?}");
    assert!(
        !f.deadline,
        "ended by the refused connections, not the deadline: {f:?}"
    );
    assert!(f.message.contains("5 times in a row"), "{f:?}");
}

#[test]
fn dialects_and_parameters_are_checked_at_load() {
    let text = common::diagnostics(
        "bad.yaml",
        r#"
budget: {monthly_budget_usd: 10.00, cost_threshold_usd: 9.00}
backends:
  cogvideox:
    priority: 1
    type: self_hosted
    cost: {per_video_usd: 0.02}
    quality: {score: 0.8}
    performance: {avg_generation_time_seconds: 2, max_generation_time_seconds: 60}
    api:
      protocol: videos
      dialect: vllm
      base_url: "http://127.0.0.1:8001"
  mochi:
    priority: 3
    type: self_hosted
    cost: {per_video_usd: 0.02}
    quality: {score: 0.8}
    performance: {avg_generation_time_seconds: 2, max_generation_time_seconds: 60}
    api:
      protocol: videos
      dialect: sglang
      base_url: "http://127.0.0.1:8002"
      parameters: {num_inference_step: 50, num_frames: many, prompt: "x", diffusers_kwargs: {a: 1}}
  veo:
    priority: 2
    type: cloud_api
    cost: {per_video_usd: 0.15}
    quality: {score: 0.9}
    performance: {avg_generation_time_seconds: 2, max_generation_time_seconds: 60}
    api: {protocol: vertex, project: p, dialect: sglang}
"#,
    );
    for needle in [
        "unknown dialect `vllm`",
        "did you mean `vllm-omni`?",
        "did you mean `num_inference_steps`?",
        "`num_frames` is `many`; it must be a whole number of at least 1",
        "genroute sets `prompt` from each request",
        "`api.dialect` applies to the `videos` protocol only",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // `openai` still names the protocol.
    common::policy(
        r#"
budget: {monthly_budget_usd: 10.00, cost_threshold_usd: 9.00}
backends:
  cogvideox:
    priority: 1
    type: self_hosted
    cost: {per_video_usd: 0.02}
    quality: {score: 0.8}
    performance: {avg_generation_time_seconds: 2, max_generation_time_seconds: 60}
    api: {protocol: openai, base_url: "http://127.0.0.1:8001"}
"#,
    );
}

#[test]
fn a_job_past_its_deadline_is_cancelled_at_the_server() {
    for (dialect, stubbed) in [
        ("openai", Stubbed::Openai),
        ("vllm-omni", Stubbed::VllmOmni),
    ] {
        let dir = scratch::scratch();
        let (url, stub) = videos_stub::start_dialect(stubbed, Duration::from_secs(30));
        let p = policy(&dir, &url, dialect, "")
            .to_str()
            .unwrap()
            .to_string();
        let text = std::fs::read_to_string(&p).unwrap().replace(
            "max_generation_time_seconds: 60",
            "max_generation_time_seconds: 2",
        );
        std::fs::write(&p, text).unwrap();
        let (ok, v) = generate(std::path::Path::new(&p), &dir, "a very long take");
        assert!(!ok, "{v}");
        let first = &v["attempts"][0];
        let message = first["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("deadline") && message.contains("cancelled at the provider"),
            "{dialect}: {first}"
        );
        assert_eq!(
            stub.deletes.load(Ordering::SeqCst),
            1,
            "{dialect}: the DELETE arrived"
        );
    }
}
