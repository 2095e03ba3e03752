//! API keys never appear in any output, log line or error, even at the most verbose log level
//! and even when a misbehaving server echoes the request's headers back in its error body.

use std::process::Command;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

#[path = "common/scratch.rs"]
mod scratch;

const KEYS: [(&str, &str); 4] = [
    ("PIX_KEY", "pv-SUPERSECRET-1111"),
    ("OAI_KEY", "sk-SUPERSECRET-2222"),
    ("GEM_KEY", "AIza-SUPERSECRET-3333"),
    ("VTX_TOKEN", "ya29.SUPERSECRET-4444"),
];

/// Answers everything with 401 and the request's headers in the body.
async fn echo(headers: HeaderMap) -> impl IntoResponse {
    let dump: Vec<String> = headers
        .iter()
        .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("")))
        .collect();
    (StatusCode::UNAUTHORIZED, dump.join("\n"))
}

fn policy(url: &str) -> String {
    let backend = |name: &str, prio: u32, api: &str| {
        format!(
            "  {name}:\n    priority: {prio}\n    type: cloud_api\n    cost: {{per_video_usd: 0.05}}\n    quality: {{score: 0.9}}\n    models: [m-1]\n    performance: {{avg_generation_time_seconds: 1, max_generation_time_seconds: 5}}\n    api: {{base_url: \"{url}\", request_timeout_seconds: 2, {api}}}\n"
        )
    };
    format!(
        "budget: {{monthly_budget_usd: 10, cost_threshold_usd: 8}}\nbackends:\n{}{}{}{}",
        backend("pix", 1, "protocol: pixverse, key_env: PIX_KEY"),
        backend("oai", 2, "protocol: openai, key_env: OAI_KEY"),
        backend("gem", 3, "protocol: gemini, key_env: GEM_KEY"),
        backend(
            "vtx",
            4,
            "protocol: vertex, key_env: VTX_TOKEN, project: p, location: us-central1"
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_never_reach_stdout_stderr_or_logs() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, axum::Router::new().fallback(echo))
            .await
            .unwrap()
    });

    let dir = scratch::scratch();
    let path = dir.join("policy.yaml");
    std::fs::write(&path, policy(&url)).unwrap();
    let p = path.to_str().unwrap().to_string();
    let runs: Vec<Vec<&str>> = vec![
        vec![
            "generate", "--policy", &p, "--prompt", "x", "--format", "json",
        ],
        vec!["generate", "--policy", &p, "--prompt", "x"],
        vec!["generate", "--policy", &p, "--prompt", "x", "--dry-run"],
        vec!["explain", "--policy", &p, "--format", "json"],
        vec!["explain", "--policy", &p],
        vec!["budget", "history", "--format", "json"],
        vec!["check", &p],
    ];
    let mut all = String::new();
    for args in runs {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_genroute"));
        cmd.args(&args)
            .env("RUST_LOG", "trace")
            .env("GENROUTE_DATA_DIR", dir.join("data"));
        for (k, v) in KEYS {
            cmd.env(k, v);
        }
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        all.push_str(&String::from_utf8_lossy(&out.stdout));
        all.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    // The calls were really made and failed with the echoed 401s.
    assert!(all.contains("HTTP 401"), "{all}");
    assert!(all.contains("\"outcome\": \"terminal\""), "{all}");
    for (_, secret) in KEYS {
        assert!(!all.contains(secret), "{secret} leaked");
        assert!(
            !all.contains(&secret[secret.len() - 9..]),
            "part of {secret} leaked"
        );
    }
}
