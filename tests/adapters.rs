//! Every adapter against a local stub server (loopback only) that speaks the backend's
//! documented protocol, including its failure modes. No timing assertions: slow answers are
//! checked for their outcome, not their duration.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Json;
use genroute::adapter::{
    gemini::Gemini, http_client, pixverse::PixVerse, vertex::Vertex, videos::Videos,
};
use genroute::adapter::{Adapter, Endpoint, FailureClass, JobSpec, Outcome, Secret, Video};
use serde_json::{json, Value};

const KEY: &str = "stub-key-SECRET123";

/// Shared stub state: the scenario to play, and what the stub saw.
#[derive(Clone, Default)]
struct Stub {
    scenario: Arc<Mutex<String>>,
    seen: Arc<Mutex<Vec<String>>>,
    trace_ids: Arc<Mutex<Vec<String>>>,
    polls: Arc<Mutex<u32>>,
}

impl Stub {
    fn scenario(&self) -> String {
        self.scenario.lock().unwrap().clone()
    }
    fn saw(&self, what: impl Into<String>) {
        self.seen.lock().unwrap().push(what.into());
    }
    fn count(&self, what: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.as_str() == what)
            .count()
    }
    fn poll(&self) -> u32 {
        let mut p = self.polls.lock().unwrap();
        *p += 1;
        *p
    }
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn endpoint(url: &str, key: Option<&str>) -> Endpoint {
    Endpoint {
        base_url: url.to_string(),
        key: key.map(Secret::new),
        request_timeout: Duration::from_millis(500),
        poll_interval: Duration::from_millis(5),
        poll_max: Duration::from_millis(20),
    }
}

fn job(model: &str) -> JobSpec {
    JobSpec {
        request_id: "req-1".into(),
        attempt: 1,
        prompt: "a lighthouse in a storm".into(),
        negative_prompt: Some("blur".into()),
        duration_seconds: 8,
        aspect_ratio: "16:9".into(),
        model: Some(model.into()),
        deadline: Duration::from_secs(3),
    }
}

fn class(o: &Outcome) -> Option<FailureClass> {
    o.as_ref().err().map(|f| f.class)
}

fn slow() -> impl std::future::Future<Output = ()> {
    tokio::time::sleep(Duration::from_secs(2))
}

// ---------------------------------------------------------------- Vertex AI

async fn vertex_model(
    State(s): State<Stub>,
    Path((_p, _l, model_verb)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {KEY}"))
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"code": 401, "status": "UNAUTHENTICATED"}})),
        )
            .into_response();
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    let sc = s.scenario();
    if model_verb.ends_with(":predictLongRunning") {
        s.saw("create");
        assert_eq!(body["instances"][0]["prompt"], "a lighthouse in a storm");
        assert_eq!(body["parameters"]["sampleCount"], 1);
        assert_eq!(body["parameters"]["negativePrompt"], "blur");
        return match sc.as_str() {
            "exhausted" => (StatusCode::TOO_MANY_REQUESTS, Json(json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Quota exceeded"}}))).into_response(),
            "slow_create" => {
                slow().await;
                Json(json!({"name": "x/operations/1"})).into_response()
            }
            "malformed_create" => (StatusCode::OK, "{\"name\": ").into_response(),
            _ => Json(json!({"name": "projects/p/locations/us-central1/publishers/google/models/veo/operations/123"})).into_response(),
        };
    }
    if model_verb.ends_with(":fetchPredictOperation") {
        s.saw("poll");
        assert!(body["operationName"]
            .as_str()
            .unwrap()
            .ends_with("/operations/123"));
        let n = s.poll();
        if sc == "slow_poll" {
            slow().await;
        }
        if (sc == "malformed_poll" && n == 1) || sc == "garbage_poll" {
            return (StatusCode::OK, "not json").into_response();
        }
        if n < 2 {
            return Json(json!({"name": "op", "done": false})).into_response();
        }
        let response = match sc.as_str() {
            "bytes" => {
                json!({"videos": [{"bytesBase64Encoded": "RkFLRU1QNA==", "mimeType": "video/mp4"}]})
            }
            "filtered" => {
                json!({"videos": [], "raiMediaFilteredCount": 1, "raiMediaFilteredReasons": ["unsafe"]})
            }
            "no_video" => json!({"videos": [], "raiMediaFilteredCount": 0}),
            "error" => {
                return Json(
                    json!({"done": true, "error": {"code": 3, "message": "invalid prompt"}}),
                )
                .into_response()
            }
            "error_busy" => {
                return Json(
                    json!({"done": true, "error": {"code": 8, "message": "resource exhausted"}}),
                )
                .into_response()
            }
            _ => {
                json!({"videos": [{"gcsUri": "gs://bucket/video.mp4", "mimeType": "video/mp4"}], "raiMediaFilteredCount": 0})
            }
        };
        return Json(json!({"name": "op", "done": true, "response": response})).into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}

async fn vertex_get_operation(State(s): State<Stub>) -> Response {
    s.saw("plain_get");
    (StatusCode::BAD_REQUEST, Json(json!({"error": {"code": 400, "message": "The Operation ID must be a Long, but was instead: 123"}}))).into_response()
}

async fn vertex(scenario: &str, key: &str) -> (Outcome, Stub) {
    let stub = Stub::default();
    *stub.scenario.lock().unwrap() = scenario.into();
    let app = axum::Router::new()
        .route(
            "/v1/projects/{p}/locations/{l}/publishers/google/models/{mv}",
            post(vertex_model),
        )
        .route(
            "/v1/projects/{p}/locations/{l}/publishers/google/models/{m}/operations/{id}",
            get(vertex_get_operation),
        )
        .with_state(stub.clone());
    let url = serve(app).await;
    let a = Vertex {
        endpoint: endpoint(&url, Some(key)),
        client: http_client(),
        project: "p".into(),
        location: "us-central1".into(),
    };
    let mut j = job("veo-3.0-generate-001");
    if scenario == "slow_poll" {
        j.deadline = Duration::from_millis(300);
    }
    (Adapter::Vertex(a).generate(&j).await, stub)
}

#[tokio::test]
async fn vertex_polls_with_fetch_predict_operation_never_a_plain_get() {
    let (o, stub) = vertex("ok", KEY).await;
    assert_eq!(
        o.as_ref().unwrap().video,
        Video::Uri("gs://bucket/video.mp4".into())
    );
    assert_eq!(o.unwrap().model.as_deref(), Some("veo-3.0-generate-001"));
    assert_eq!(stub.count("plain_get"), 0);
    assert_eq!(stub.count("create"), 1);
    assert!(stub.count("poll") >= 2);
    // The stub answers a plain GET of the operation exactly as Vertex does.
    let url = serve(
        axum::Router::new()
            .route("/op", get(vertex_get_operation))
            .with_state(Stub::default()),
    )
    .await;
    let r = reqwest::get(format!("{url}/op")).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("The Operation ID must be a Long"));
}

#[tokio::test]
async fn vertex_failure_modes() {
    let cases: &[(&str, FailureClass)] = &[
        ("filtered", FailureClass::ContentRejected),
        ("exhausted", FailureClass::Retryable),
        ("no_video", FailureClass::NoVideo),
        ("error", FailureClass::Terminal),
        ("error_busy", FailureClass::Retryable),
        ("slow_create", FailureClass::Retryable),
        ("malformed_create", FailureClass::Retryable),
        ("slow_poll", FailureClass::Retryable),
    ];
    for (scenario, expected) in cases {
        let (o, stub) = vertex(scenario, KEY).await;
        assert_eq!(class(&o), Some(*expected), "{scenario}: {o:?}");
        let f = o.unwrap_err();
        assert!(
            !f.message.contains("SECRET123"),
            "{scenario}: {}",
            f.message
        );
        assert_eq!(stub.count("create"), 1, "{scenario}: a create is sent once");
        let in_doubt = matches!(*scenario, "slow_create" | "malformed_create" | "slow_poll");
        assert_eq!(f.in_doubt, in_doubt, "{scenario}");
    }
    let (o, _) = vertex("bytes", KEY).await;
    assert_eq!(
        o.unwrap().video,
        Video::Bytes {
            data: b"FAKEMP4".to_vec(),
            mime: "video/mp4".into()
        }
    );
    let (o, _) = vertex("ok", "wrong-token").await;
    assert_eq!(class(&o), Some(FailureClass::Terminal));
    let (o, _) = vertex("malformed_poll", KEY).await;
    assert!(o.is_ok(), "a malformed poll reply is retried: {o:?}");
}

// ---------------------------------------------------------------- Gemini API

async fn gemini_create(
    State(s): State<Stub>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    assert!(uri.query().is_none(), "the key never travels in the URL");
    if headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()) != Some(KEY) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": {"code": 403, "message": "API key not valid"}})),
        )
            .into_response();
    }
    s.saw("create");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(body["parameters"].get("storageUri").is_none());
    Json(json!({"name": "models/veo-3.0-generate-001/operations/op1"})).into_response()
}

async fn gemini_operation(State(s): State<Stub>, headers: HeaderMap) -> Response {
    assert_eq!(
        headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()),
        Some(KEY)
    );
    s.saw("poll");
    if s.poll() < 2 {
        return Json(json!({"name": "op1", "done": false})).into_response();
    }
    let url = format!(
        "http://{}/v1beta/files/abc:download",
        headers.get("host").unwrap().to_str().unwrap()
    );
    match s.scenario().as_str() {
        "filtered" => Json(json!({"done": true, "response": {"generateVideoResponse": {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": ["x"]}}})).into_response(),
        "error" => Json(json!({"done": true, "error": {"code": 3, "message": "bad"}})).into_response(),
        _ => Json(json!({"done": true, "response": {"generateVideoResponse": {"generatedSamples": [{"video": {"uri": url}}]}}})).into_response(),
    }
}

async fn gemini_download(State(s): State<Stub>, headers: HeaderMap) -> Response {
    assert_eq!(
        headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()),
        Some(KEY)
    );
    s.saw("download");
    (StatusCode::FOUND, [("location", "/blob/abc")]).into_response()
}

async fn gemini_blob(State(s): State<Stub>) -> Response {
    s.saw("blob");
    ([("content-type", "video/mp4")], b"FAKEMP4".to_vec()).into_response()
}

async fn gemini(scenario: &str, key: &str) -> (Outcome, Stub) {
    let stub = Stub::default();
    *stub.scenario.lock().unwrap() = scenario.into();
    let app = axum::Router::new()
        .route("/v1beta/models/{mv}", post(gemini_create))
        .route("/v1beta/models/{m}/operations/{op}", get(gemini_operation))
        .route("/v1beta/files/{f}", get(gemini_download))
        .route("/blob/{f}", get(gemini_blob))
        .with_state(stub.clone());
    let url = serve(app).await;
    let a = Gemini {
        endpoint: endpoint(&url, Some(key)),
        client: http_client(),
    };
    (
        Adapter::Gemini(a)
            .generate(&job("veo-3.0-generate-001"))
            .await,
        stub,
    )
}

#[tokio::test]
async fn gemini_polls_with_get_and_follows_the_download_redirect() {
    let (o, stub) = gemini("ok", KEY).await;
    assert_eq!(
        o.unwrap().video,
        Video::Bytes {
            data: b"FAKEMP4".to_vec(),
            mime: "video/mp4".into()
        }
    );
    assert_eq!((stub.count("download"), stub.count("blob")), (1, 1));
    let (o, _) = gemini("filtered", KEY).await;
    assert_eq!(class(&o), Some(FailureClass::ContentRejected));
    let (o, _) = gemini("error", KEY).await;
    assert_eq!(class(&o), Some(FailureClass::Terminal));
    let (o, _) = gemini("ok", "bad-key").await;
    assert_eq!(class(&o), Some(FailureClass::Terminal));
    assert!(!o.unwrap_err().message.contains("bad-key"));
}

// ---------------------------------------------------------------- PixVerse

async fn pixverse_create(State(s): State<Stub>, headers: HeaderMap, body: Bytes) -> Response {
    record_trace(&s, &headers);
    if headers.get("api-key").and_then(|v| v.to_str().ok()) != Some(KEY) {
        return Json(json!({"ErrCode": 10002, "ErrMsg": "invalid api key"})).into_response();
    }
    s.saw("create");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["duration"], 8);
    assert_eq!(body["aspect_ratio"], "16:9");
    match s.scenario().as_str() {
        "busy" => Json(json!({"ErrCode": 500044, "ErrMsg": "concurrency limit"})).into_response(),
        "broke" => {
            Json(json!({"ErrCode": 500090, "ErrMsg": "insufficient balance"})).into_response()
        }
        "malformed" => (StatusCode::OK, "{\"ErrCode\": 0, ").into_response(),
        "slow" => {
            slow().await;
            Json(json!({"ErrCode": 0, "Resp": {"video_id": 42}})).into_response()
        }
        _ => Json(json!({"ErrCode": 0, "ErrMsg": "success", "Resp": {"video_id": 42}}))
            .into_response(),
    }
}

fn record_trace(s: &Stub, headers: &HeaderMap) {
    let id = headers
        .get("ai-trace-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    s.trace_ids.lock().unwrap().push(id);
}

async fn pixverse_result(
    State(s): State<Stub>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    record_trace(&s, &headers);
    assert_eq!(id, "42");
    s.saw("poll");
    let n = s.poll();
    if s.scenario() == "poll_refused" && n > 1 {
        // The job exists, but the result endpoint now refuses the key (ErrCode 10003).
        return Json(json!({"ErrCode": 10003, "ErrMsg": "user token is invalid", "Resp": {}}))
            .into_response();
    }
    if s.scenario() == "done_without_url" && n > 2 {
        return Json(
            json!({"ErrCode": 0, "ErrMsg": "success", "Resp": {"id": 42, "status": 1, "url": ""}}),
        )
        .into_response();
    }
    let status = match (s.scenario().as_str(), n) {
        (_, 1 | 2) => 5,
        ("moderated", _) => 7,
        ("failed", _) => 8,
        _ => 1,
    };
    Json(json!({"ErrCode": 0, "ErrMsg": "success", "Resp": {"id": 42, "status": status, "url": if status == 1 { "https://cdn/v.mp4" } else { "" }}})).into_response()
}

async fn pixverse(scenario: &str, key: &str) -> (Outcome, Stub) {
    let stub = Stub::default();
    *stub.scenario.lock().unwrap() = scenario.into();
    let app = axum::Router::new()
        .route("/openapi/v2/video/text/generate", post(pixverse_create))
        .route("/openapi/v2/video/result/{id}", get(pixverse_result))
        .with_state(stub.clone());
    let url = serve(app).await;
    let a = PixVerse {
        endpoint: endpoint(&url, Some(key)),
        client: http_client(),
    };
    (Adapter::PixVerse(a).generate(&job("v5")).await, stub)
}

#[tokio::test]
async fn pixverse_sends_a_fresh_trace_id_on_every_call() {
    let (o, stub) = pixverse("ok", KEY).await;
    assert_eq!(o.unwrap().video, Video::Uri("https://cdn/v.mp4".into()));
    let ids = stub.trace_ids.lock().unwrap().clone();
    assert!(ids.len() >= 4, "{ids:?}");
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "every call has its own Ai-trace-id"
    );
    assert!(ids.iter().all(|i| uuid::Uuid::parse_str(i).is_ok()));
}

#[tokio::test]
async fn pixverse_error_codes_and_statuses() {
    let cases: &[(&str, &str, FailureClass, bool)] = &[
        ("busy", KEY, FailureClass::Retryable, false),
        ("broke", KEY, FailureClass::Terminal, false),
        ("moderated", KEY, FailureClass::ContentRejected, false),
        ("failed", KEY, FailureClass::Retryable, false),
        ("ok", "wrong", FailureClass::Terminal, false),
        ("malformed", KEY, FailureClass::Retryable, true),
        ("slow", KEY, FailureClass::Retryable, true),
        // After a successful create the job exists and may bill: trouble following it, or a
        // finished job without a video, keeps the spend.
        ("poll_refused", KEY, FailureClass::Terminal, true),
        ("done_without_url", KEY, FailureClass::NoVideo, true),
    ];
    for (scenario, key, expected, in_doubt) in cases {
        let (o, stub) = pixverse(scenario, key).await;
        let f = o.unwrap_err();
        assert_eq!(
            (f.class, f.in_doubt),
            (*expected, *in_doubt),
            "{scenario}: {f:?}"
        );
        assert!(!f.message.contains("SECRET123"));
        assert!(stub.count("create") <= 1, "{scenario}: never re-submitted");
    }
}

// ---------------------------------------------------------------- /v1/videos

async fn videos_create(
    State(s): State<Stub>,
    headers: HeaderMap,
    mut form: axum::extract::Multipart,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    s.saw(format!("auth:{}", auth.as_deref().unwrap_or("none")));
    s.saw("create");
    // The default dialect sends multipart form, as the openai package does.
    let mut body = HashMap::new();
    while let Some(field) = form.next_field().await.unwrap() {
        let name = field.name().unwrap().to_string();
        body.insert(name, field.text().await.unwrap());
    }
    assert_eq!(body["seconds"], "8");
    assert_eq!(body["size"], "1280x720");
    assert_eq!(body["model"], "CogVideoX-5b");
    assert_eq!(body["negative_prompt"], "blur");
    match s.scenario().as_str() {
        "limited" => (StatusCode::TOO_MANY_REQUESTS, Json(json!({"error": {"code": "rate_limit_exceeded"}}))).into_response(),
        "bad_gateway" => (StatusCode::BAD_GATEWAY, "upstream connect error").into_response(),
        "gateway_timeout" => (StatusCode::GATEWAY_TIMEOUT, "upstream request timeout").into_response(),
        "unavailable" => (StatusCode::SERVICE_UNAVAILABLE, "overloaded").into_response(),
        _ => (StatusCode::OK, [("openai-poll-after-ms", "5")], Json(json!({"id": "vid_1", "object": "video", "status": "queued", "progress": 0, "error": null}))).into_response(),
    }
}

async fn videos_status(State(s): State<Stub>) -> Response {
    s.saw("poll");
    let n = s.poll();
    let sc = s.scenario();
    if sc == "slow_poll" {
        slow().await;
    }
    if sc == "flaky" && n == 1 {
        return (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response();
    }
    if (sc == "malformed_poll" && n == 1) || sc == "garbage_poll" {
        return (StatusCode::OK, "<html>").into_response();
    }
    let body = match (sc.as_str(), n) {
        (_, 1) => {
            json!({"id": "vid_1", "object": "video", "status": "in_progress", "progress": 50, "error": null})
        }
        ("failed", _) => {
            json!({"id": "vid_1", "object": "video", "status": "failed", "progress": 50, "error": {"code": "moderation_blocked", "message": "refused"}})
        }
        ("failed_server", _) => {
            json!({"id": "vid_1", "object": "video", "status": "failed", "error": {"code": "server_error", "message": "gpu lost"}})
        }
        _ => {
            json!({"id": "vid_1", "object": "video", "status": "completed", "progress": 100, "error": null})
        }
    };
    ([("openai-poll-after-ms", "5")], Json(body)).into_response()
}

async fn videos_content(State(s): State<Stub>) -> Response {
    s.saw("content");
    if s.scenario() == "empty" {
        return ([("content-type", "video/mp4")], Vec::<u8>::new()).into_response();
    }
    ([("content-type", "video/mp4")], b"FAKEMP4".to_vec()).into_response()
}

async fn videos(scenario: &str, key: Option<&str>) -> (Outcome, Stub) {
    let stub = Stub::default();
    *stub.scenario.lock().unwrap() = scenario.into();
    let app = axum::Router::new()
        .route("/v1/videos", post(videos_create))
        .route("/v1/videos/{id}", get(videos_status))
        .route("/v1/videos/{id}/content", get(videos_content))
        .fallback(any(|| async { StatusCode::NOT_FOUND }))
        .with_state(stub.clone());
    let url = serve(app).await;
    let a = Videos {
        endpoint: endpoint(&url, key),
        client: http_client(),
        dialect: Default::default(),
        parameters: Vec::new(),
    };
    let mut j = job("CogVideoX-5b");
    if scenario == "slow_poll" {
        j.deadline = Duration::from_millis(300);
    }
    (Adapter::Videos(a).generate(&j).await, stub)
}

#[tokio::test]
async fn videos_api_creates_polls_and_downloads() {
    let (o, stub) = videos("ok", Some(KEY)).await;
    assert_eq!(
        o.unwrap().video,
        Video::Bytes {
            data: b"FAKEMP4".to_vec(),
            mime: "video/mp4".into()
        }
    );
    assert_eq!(stub.count(&format!("auth:Bearer {KEY}")), 1);
    let (o, stub) = videos("ok", None).await;
    assert!(o.is_ok());
    assert_eq!(
        stub.count("auth:none"),
        1,
        "no key configured, no Authorization header"
    );
    let (o, _) = videos("flaky", Some(KEY)).await;
    assert!(o.is_ok(), "a 500 while polling is waited out: {o:?}");
    let (o, _) = videos("malformed_poll", Some(KEY)).await;
    assert!(o.is_ok(), "a malformed poll reply is retried: {o:?}");
}

#[tokio::test]
async fn videos_api_failure_modes() {
    let cases: &[(&str, FailureClass, bool)] = &[
        ("failed", FailureClass::ContentRejected, false),
        ("failed_server", FailureClass::Retryable, false),
        ("limited", FailureClass::Retryable, false),
        // A gateway that lost the service's answer does not know whether the job exists;
        // the service's own 503 says it did not take it.
        ("bad_gateway", FailureClass::Retryable, true),
        ("gateway_timeout", FailureClass::Retryable, true),
        ("unavailable", FailureClass::Retryable, false),
        // Five unreadable poll replies in a row end the job (in doubt: it was created).
        ("garbage_poll", FailureClass::Retryable, true),
        // Completed, so billed: an empty download keeps the spend (in doubt).
        ("empty", FailureClass::NoVideo, true),
        ("slow_poll", FailureClass::Retryable, true),
    ];
    let mut messages = HashMap::new();
    for (scenario, expected, in_doubt) in cases {
        let (o, stub) = videos(scenario, Some(KEY)).await;
        let f = o.unwrap_err();
        assert_eq!(
            (f.class, f.in_doubt),
            (*expected, *in_doubt),
            "{scenario}: {f:?}"
        );
        // A 429 made no job: the create is asked again (twice within the 3 s deadline).
        let creates = if *scenario == "limited" { 3 } else { 1 };
        assert_eq!(stub.count("create"), creates, "{scenario}");
        messages.insert(*scenario, f.message);
    }
    assert!(messages["failed"].contains("refused"));
    assert!(
        messages["garbage_poll"].contains("5 unreadable replies in a row"),
        "{}",
        messages["garbage_poll"]
    );
    assert!(messages.values().all(|m| !m.contains("SECRET123")));
}
