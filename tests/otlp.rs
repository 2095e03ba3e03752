//! OpenTelemetry export: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, `genroute generate` sends its
//! spans over OTLP/HTTP to a local collector stub, with the seed's attributes and without the
//! prompt unless the operator opts in.

use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use prost::Message;

#[path = "common/scratch.rs"]
mod scratch;

type Spans = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

async fn collect(State(spans): State<Spans>, body: Bytes) -> &'static str {
    let req = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
    let mut out = spans.lock().unwrap();
    for rs in req.resource_spans {
        for ss in rs.scope_spans {
            for span in ss.spans {
                let attrs = span
                    .attributes
                    .iter()
                    .map(|kv| {
                        let v = match kv.value.as_ref().and_then(|v| v.value.clone()) {
                            Some(Any::StringValue(s)) => s,
                            Some(Any::DoubleValue(d)) => d.to_string(),
                            Some(Any::IntValue(i)) => i.to_string(),
                            Some(Any::BoolValue(b)) => b.to_string(),
                            other => format!("{other:?}"),
                        };
                        (kv.key.clone(), v)
                    })
                    .collect();
                out.push((span.name, attrs));
            }
        }
    }
    ""
}

async fn run(trace_prompts: bool) -> Vec<(String, Vec<(String, String)>)> {
    let spans: Spans = Arc::default();
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(collect))
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let data = scratch::scratch();
    // The demo policy without its failure rates: the outcome must not depend on the request id.
    let reliable = ["0.05", "0.08", "0.10", "0.15"]
        .iter()
        .fold(genroute::DEMO_POLICY.to_string(), |p, r| {
            p.replace(&format!("failure_rate: {r}"), "failure_rate: 0")
        });
    let policy = data.join("demo.yaml");
    std::fs::write(&policy, reliable).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_genroute"));
    cmd.args([
        "generate",
        "--policy",
        policy.to_str().unwrap(),
        "--prompt",
        "a PRIVATE-PROMPT-7 at dusk",
        "--priority",
        "quality",
    ])
    .current_dir(env!("CARGO_MANIFEST_DIR"))
    .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
    .env("GENROUTE_DATA_DIR", &data);
    if trace_prompts {
        cmd.env("GENROUTE_TRACE_PROMPTS", "1");
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = spans.lock().unwrap().clone();
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_carry_the_seed_attributes_and_not_the_prompt() {
    let spans = run(false).await;
    let generate = spans
        .iter()
        .find(|(n, _)| n == "generate_video")
        .expect("a generate_video span");
    let keys: Vec<&str> = generate.1.iter().map(|(k, _)| k.as_str()).collect();
    for k in [
        "backend",
        "cost_usd",
        "latency_seconds",
        "quality_score",
        "priority",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    assert!(
        generate
            .1
            .contains(&("backend".to_string(), "veo".to_string())),
        "{:?}",
        generate.1
    );
    assert!(
        generate
            .1
            .contains(&("cost_usd".to_string(), "0.15".to_string())),
        "{:?}",
        generate.1
    );
    let attempt = spans
        .iter()
        .find(|(n, _)| n == "attempt")
        .expect("an attempt span");
    assert!(
        attempt
            .1
            .iter()
            .any(|(k, v)| k == "outcome" && v == "success"),
        "{:?}",
        attempt.1
    );
    assert!(spans.iter().any(|(n, _)| n == "decide"));
    let all = format!("{spans:?}");
    assert!(
        !all.contains("PRIVATE-PROMPT-7"),
        "the prompt leaked into traces"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_prompt_is_traced_only_when_the_operator_opts_in() {
    let spans = run(true).await;
    let generate = spans.iter().find(|(n, _)| n == "generate_video").unwrap();
    assert!(generate
        .1
        .iter()
        .any(|(k, v)| k == "prompt" && v.contains("PRIVATE-PROMPT-7")));
}
