//! The Vertex AI and Gemini API Veo adapters against local stub servers (loopback only) that
//! speak each protocol, failure modes included. Each stub records every request it saw, and
//! the tests assert on that record rather than panicking inside a handler. No timing
//! assertions: slow answers are checked for their outcome, not their duration.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use genroute::adapter::gemini::Gemini;
use genroute::adapter::vertex::Vertex;
use genroute::adapter::{
    http_client, Adapter, Endpoint, Failure, FailureClass, JobSpec, Outcome, Secret, Video,
};
use serde_json::{json, Value};

const TOKEN: &str = "test-token-SECRET123";
const SECRET_PART: &str = "SECRET123";
const MODEL: &str = "veo-3.0-generate-001";
const PROMPT: &str = "a lighthouse in a storm";

// ------------------------------------------------------------------------- shared plumbing

/// One request as a stub saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: Option<String>,
    /// The credential header, if any (`authorization` for Vertex, `x-goog-api-key` for Gemini).
    credential: Option<String>,
}

/// A stub's state: the scenario it plays and what it saw.
#[derive(Clone)]
struct Stub<S> {
    scenario: S,
    /// The negative prompt the job carries, which the create body must repeat.
    negative: Option<String>,
    /// The other server's base URL (Gemini: the storage host a download redirects to).
    other: Arc<Mutex<String>>,
    /// The API server's own base URL.
    me: Arc<Mutex<String>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Problems with what the adapter sent (bad body, key in the URL, …).
    problems: Arc<Mutex<Vec<String>>>,
}

impl<S: Clone> Stub<S> {
    fn new(scenario: S, negative: Option<String>) -> Stub<S> {
        Stub {
            scenario,
            negative,
            other: Arc::default(),
            me: Arc::default(),
            seen: Arc::default(),
            problems: Arc::default(),
        }
    }

    fn record(&self, method: &Method, uri: &Uri, credential: Option<String>) -> usize {
        let mut seen = self.seen.lock().unwrap();
        seen.push(Seen {
            method: method.clone(),
            path: uri.path().to_string(),
            query: uri.query().map(str::to_string),
            credential,
        });
        seen.len()
    }

    fn problem(&self, p: impl Into<String>) {
        self.problems.lock().unwrap().push(p.into());
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests with this method had a path ending in `suffix`.
    fn count(&self, method: Method, suffix: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == method && s.path.ends_with(suffix))
            .count()
    }

    fn problems(&self) -> Vec<String> {
        self.problems.lock().unwrap().clone()
    }
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn endpoint(url: &str, key: &str) -> Endpoint {
    Endpoint {
        base_url: url.to_string(),
        key: Some(Secret::new(key)),
        request_timeout: Duration::from_millis(500),
        poll_interval: Duration::from_millis(10),
        poll_max: Duration::from_millis(50),
    }
}

fn job() -> JobSpec {
    JobSpec {
        request_id: "req-1".into(),
        attempt: 1,
        prompt: PROMPT.into(),
        negative_prompt: Some("blur".into()),
        duration_seconds: 8,
        aspect_ratio: "16:9".into(),
        model: Some(MODEL.into()),
        deadline: Duration::from_secs(5),
    }
}

fn failure(o: Outcome) -> Failure {
    match o {
        Ok(s) => panic!("expected a failure, got {s:?}"),
        Err(f) => f,
    }
}

/// Longer than any request timeout used here.
async fn stall() {
    tokio::time::sleep(Duration::from_secs(3)).await;
}

fn error_reply(status: StatusCode, code: i64, rpc_status: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "status": rpc_status, "message": message}})),
    )
        .into_response()
}

/// Checks the Veo create body; returns what is wrong with it.
fn check_body(body: &[u8], negative: &Option<String>, gemini: bool) -> Vec<String> {
    let mut problems = vec![];
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return vec!["the create body is not JSON".into()];
    };
    let instances = body["instances"].as_array();
    if instances.map(Vec::len) != Some(1) || body["instances"][0]["prompt"] != PROMPT {
        problems.push(format!("instances: {}", body["instances"]));
    }
    let p = &body["parameters"];
    if p["aspectRatio"] != "16:9" || p["durationSeconds"] != 8 || p["sampleCount"] != 1 {
        problems.push(format!("parameters: {p}"));
    }
    match negative {
        Some(n) if p["negativePrompt"] != n.as_str() => {
            problems.push(format!("negativePrompt: {}", p["negativePrompt"]))
        }
        None if p.get("negativePrompt").is_some() => {
            problems.push("negativePrompt sent although the job has none".into())
        }
        _ => {}
    }
    if gemini {
        for refused in ["storageUri", "seed", "generateAudio"] {
            if p.get(refused).is_some() {
                problems.push(format!("{refused} is refused by the Gemini API"));
            }
        }
    }
    let known = [
        "aspectRatio",
        "durationSeconds",
        "sampleCount",
        "negativePrompt",
    ];
    for k in p
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or(vec![])
    {
        if !known.contains(&k.as_str()) {
            problems.push(format!("unexpected parameter {k}"));
        }
    }
    problems
}

// ------------------------------------------------------------------------------- Vertex AI

const VERTEX_OP: &str =
    "projects/p/locations/us-central1/publishers/google/models/veo-3.0-generate-001/operations/4f2b9a0e-7c1d-4e55-9a11-1b2c3d4e5f60";

#[derive(Clone, Debug, PartialEq)]
enum V {
    Gcs,
    Bytes,
    Filtered,
    NoVideo,
    OpError(i64, &'static str),
    /// The operation's error message echoes the caller's token back.
    EchoToken,
    Exhausted,
    SlowCreate,
    MalformedCreate,
    CreateWithoutName,
    SlowPoll,
    MalformedPollOnce,
    Unavailable503Once,
    PollNotFound,
}

async fn vertex_stub(
    State(s): State<Stub<V>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    s.record(&method, &uri, auth.clone());
    if auth.as_deref() != Some(&format!("Bearer {TOKEN}")) {
        return error_reply(
            StatusCode::UNAUTHORIZED,
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token.",
        );
    }
    let path = uri.path();
    let models = "/v1/projects/p/locations/us-central1/publishers/google/models/";
    // A plain GET of the operation: what Vertex AI answers for Veo operations.
    if method == Method::GET {
        if path.contains("/operations/") {
            let id = path.rsplit('/').next().unwrap_or("");
            return error_reply(
                StatusCode::BAD_REQUEST,
                400,
                "INVALID_ARGUMENT",
                &format!("The Operation ID must be a Long, but was instead: {id}"),
            );
        }
        return StatusCode::NOT_FOUND.into_response();
    }
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let creates = s.count(Method::POST, ":predictLongRunning");
    if path == format!("{models}{MODEL}:predictLongRunning") {
        let problems = check_body(&body, &s.negative, false);
        if !problems.is_empty() {
            let message = problems.join("; ");
            s.problem(&message);
            return error_reply(StatusCode::BAD_REQUEST, 400, "INVALID_ARGUMENT", &message);
        }
        return match s.scenario {
            V::Exhausted => error_reply(
                StatusCode::TOO_MANY_REQUESTS,
                429,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model",
            ),
            V::SlowCreate => {
                stall().await;
                Json(json!({"name": VERTEX_OP})).into_response()
            }
            V::MalformedCreate => (StatusCode::OK, "{\"name\": \"projects/").into_response(),
            V::CreateWithoutName => Json(json!({"metadata": {}})).into_response(),
            _ => Json(json!({"name": VERTEX_OP})).into_response(),
        };
    }
    if path == format!("{models}{MODEL}:fetchPredictOperation") {
        let body: Value = serde_json::from_slice(&body).unwrap_or_default();
        if body != json!({"operationName": VERTEX_OP}) || creates != 1 {
            s.problem(format!(
                "fetchPredictOperation body {body}, after {creates} creates"
            ));
            return error_reply(StatusCode::BAD_REQUEST, 400, "INVALID_ARGUMENT", "bad poll");
        }
        let n = s.count(Method::POST, ":fetchPredictOperation");
        match s.scenario {
            V::SlowPoll => stall().await,
            V::MalformedPollOnce if n == 1 => {
                return (StatusCode::OK, "{\"done\": tr").into_response()
            }
            V::Unavailable503Once if n == 1 => {
                return error_reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    503,
                    "UNAVAILABLE",
                    "try again",
                )
            }
            V::PollNotFound => {
                return error_reply(
                    StatusCode::NOT_FOUND,
                    404,
                    "NOT_FOUND",
                    "operation not found",
                )
            }
            _ => {}
        }
        if n < 2 {
            return Json(json!({"name": VERTEX_OP, "done": false})).into_response();
        }
        let response = match &s.scenario {
            V::Bytes => json!({
                "@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse",
                "raiMediaFilteredCount": 0,
                "videos": [{"bytesBase64Encoded": base64::engine::general_purpose::STANDARD.encode(b"FAKEMP4"), "mimeType": "video/mp4"}]
            }),
            V::Filtered => json!({
                "raiMediaFilteredCount": 1,
                "raiMediaFilteredReasons": ["Veo could not generate videos because the input image violates Vertex AI's usage guidelines. Support codes: 15236754"]
            }),
            V::NoVideo => json!({"raiMediaFilteredCount": 0}),
            V::OpError(code, message) => {
                return Json(json!({"name": VERTEX_OP, "done": true, "error": {"code": code, "message": message}}))
                    .into_response()
            }
            V::EchoToken => {
                let echoed = format!("request with credentials {TOKEN} is not allowed here");
                return Json(json!({"name": VERTEX_OP, "done": true, "error": {"code": 3, "message": echoed}}))
                    .into_response();
            }
            _ => json!({
                "raiMediaFilteredCount": 0,
                "videos": [{"gcsUri": "gs://bucket/out/sample_0.mp4", "mimeType": "video/mp4"}]
            }),
        };
        return Json(json!({"name": VERTEX_OP, "done": true, "response": response}))
            .into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}

struct Run<S> {
    outcome: Outcome,
    stub: Stub<S>,
}

async fn vertex_with(scenario: V, token: &str, job: JobSpec) -> Run<V> {
    let stub = Stub::new(scenario, job.negative_prompt.clone());
    let app = axum::Router::new()
        .fallback(vertex_stub)
        .with_state(stub.clone());
    let url = serve(app).await;
    let adapter = Adapter::Vertex(Vertex {
        endpoint: endpoint(&url, token),
        client: http_client(),
        project: "p".into(),
        location: "us-central1".into(),
    });
    assert!(!format!("{adapter:?}").contains(SECRET_PART));
    let outcome = adapter.generate(&job).await;
    Run { outcome, stub }
}

async fn vertex(scenario: V) -> Run<V> {
    vertex_with(scenario, TOKEN, job()).await
}

/// No request ever carried something other than the bearer token, and nothing was wrong with
/// the bodies.
fn vertex_clean(run: &Run<V>) {
    assert_eq!(run.stub.problems(), Vec::<String>::new());
    assert_eq!(run.stub.count(Method::GET, ""), 0, "never a plain GET");
    for s in run.stub.seen() {
        assert!(s.query.is_none(), "no query string: {s:?}");
    }
}

#[tokio::test]
async fn vertex_happy_path_with_a_gcs_uri() {
    let run = vertex(V::Gcs).await;
    vertex_clean(&run);
    let success = run.outcome.clone().unwrap();
    assert_eq!(
        success.video,
        Video::Uri("gs://bucket/out/sample_0.mp4".into())
    );
    assert_eq!(success.model.as_deref(), Some(MODEL));
    assert_eq!(run.stub.count(Method::POST, ":predictLongRunning"), 1);
    assert_eq!(run.stub.count(Method::POST, ":fetchPredictOperation"), 2);
}

#[tokio::test]
async fn vertex_omits_the_negative_prompt_when_there_is_none() {
    let mut j = job();
    j.negative_prompt = None;
    let run = vertex_with(V::Gcs, TOKEN, j).await;
    vertex_clean(&run);
    assert!(run.outcome.is_ok(), "{:?}", run.outcome);
}

#[tokio::test]
async fn vertex_base64_bytes() {
    let run = vertex(V::Bytes).await;
    vertex_clean(&run);
    assert_eq!(
        run.outcome.unwrap().video,
        Video::Bytes {
            data: b"FAKEMP4".to_vec(),
            mime: "video/mp4".into()
        }
    );
}

#[tokio::test]
async fn vertex_never_gets_the_operation_which_vertex_refuses() {
    // The stub refuses a plain GET of the operation as Vertex AI does…
    let run = vertex(V::Gcs).await;
    let url = {
        let stub = Stub::new(V::Gcs, None);
        serve(axum::Router::new().fallback(vertex_stub).with_state(stub)).await
    };
    let r = http_client()
        .get(format!("{url}/v1/{VERTEX_OP}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("The Operation ID must be a Long"));
    // …and the adapter succeeds because it only ever POSTs fetchPredictOperation.
    assert!(run.outcome.is_ok(), "{:?}", run.outcome);
    assert_eq!(run.stub.count(Method::GET, ""), 0);
    assert!(run.stub.seen().iter().all(|s| s.method == Method::POST));
}

#[tokio::test]
async fn vertex_filtered_videos_are_content_rejected() {
    let run = vertex(V::Filtered).await;
    vertex_clean(&run);
    let f = failure(run.outcome);
    assert_eq!(f.class, FailureClass::ContentRejected);
    assert!(!f.in_doubt);
    assert!(f.message.contains("Support codes"), "{}", f.message);
}

#[tokio::test]
async fn vertex_quota_exhausted_on_create_is_retryable_and_not_in_doubt() {
    let run = vertex(V::Exhausted).await;
    vertex_clean(&run);
    let f = failure(run.outcome);
    assert_eq!(f.class, FailureClass::Retryable);
    assert!(!f.in_doubt, "the server answered: no job was created");
    assert!(f.message.contains("429"), "{}", f.message);
    assert_eq!(run.stub.count(Method::POST, ":fetchPredictOperation"), 0);
}

#[tokio::test]
async fn vertex_operation_errors_are_classed_by_code_and_message() {
    let cases: &[(i64, &str, FailureClass)] = &[
        (3, "Invalid value for durationSeconds", FailureClass::Terminal),
        // "constraint" and "training" contain "rai" but are not a safety signal.
        (3, "constraint failed on training input", FailureClass::Terminal),
        (7, "Permission denied on resource project p", FailureClass::Terminal),
        (2, "Unknown error", FailureClass::Terminal),
        (4, "Deadline exceeded", FailureClass::Retryable),
        (8, "Resource exhausted", FailureClass::Retryable),
        (13, "Internal error encountered", FailureClass::Retryable),
        (14, "The service is currently unavailable", FailureClass::Retryable),
        (
            3,
            "The prompt couldn't be submitted. This prompt contains sensitive words that violate Google's Responsible AI practices. Support codes: 42876398",
            FailureClass::ContentRejected,
        ),
    ];
    for (code, message, expected) in cases {
        let run = vertex(V::OpError(*code, message)).await;
        vertex_clean(&run);
        let f = failure(run.outcome);
        assert_eq!(f.class, *expected, "code {code}: {}", f.message);
        assert!(!f.in_doubt, "a finished operation is not in doubt");
        assert!(f.message.contains(&format!("code {code}")), "{}", f.message);
    }
}

#[tokio::test]
async fn vertex_done_without_videos_is_no_video() {
    let run = vertex(V::NoVideo).await;
    vertex_clean(&run);
    let f = failure(run.outcome);
    assert_eq!(f.class, FailureClass::NoVideo);
    assert!(!f.in_doubt);
}

#[tokio::test]
async fn vertex_wrong_token_is_terminal() {
    let run = vertex_with(V::Gcs, "wrong-token", job()).await;
    let f = failure(run.outcome);
    assert_eq!(f.class, FailureClass::Terminal);
    assert!(!f.in_doubt);
    assert!(f.message.contains("401"), "{}", f.message);
    assert_eq!(run.stub.seen().len(), 1, "nothing after the refused create");
}

#[tokio::test]
async fn vertex_no_model_is_terminal_and_sends_nothing() {
    let mut j = job();
    j.model = None;
    let run = vertex_with(V::Gcs, TOKEN, j).await;
    let f = failure(run.outcome);
    assert_eq!(f.class, FailureClass::Terminal);
    assert!(f.message.contains("no model"), "{}", f.message);
    assert!(run.stub.seen().is_empty());
}

#[tokio::test]
async fn vertex_slow_create_is_in_doubt_and_never_resubmitted() {
    let run = vertex(V::SlowCreate).await;
    let f = failure(run.outcome);
    assert_eq!(f.class, FailureClass::Retryable);
    assert!(f.in_doubt, "{}", f.message);
    assert_eq!(run.stub.count(Method::POST, ":predictLongRunning"), 1);
    assert_eq!(run.stub.count(Method::POST, ":fetchPredictOperation"), 0);
}

#[tokio::test]
async fn vertex_malformed_or_nameless_create_reply_is_in_doubt() {
    for scenario in [V::MalformedCreate, V::CreateWithoutName] {
        let run = vertex(scenario.clone()).await;
        let f = failure(run.outcome);
        assert_eq!(f.class, FailureClass::Retryable, "{scenario:?}");
        assert!(f.in_doubt, "{scenario:?}: {}", f.message);
        assert_eq!(run.stub.count(Method::POST, ":predictLongRunning"), 1);
    }
}

#[tokio::test]
async fn vertex_slow_poll_past_the_deadline_fails_instead_of_hanging() {
    let mut j = job();
    j.deadline = Duration::from_millis(300);
    let run = vertex_with(V::SlowPoll, TOKEN, j).await;
    let f = failure(run.outcome);
    assert_eq!(f.class, FailureClass::Retryable);
    assert!(f.in_doubt, "the job was created and its fate is unknown");
    assert_eq!(run.stub.count(Method::POST, ":predictLongRunning"), 1);
}

#[tokio::test]
async fn vertex_poll_trouble_is_retried_within_the_job() {
    for scenario in [V::MalformedPollOnce, V::Unavailable503Once] {
        let run = vertex(scenario.clone()).await;
        vertex_clean(&run);
        assert!(run.outcome.is_ok(), "{scenario:?}: {:?}", run.outcome);
        assert_eq!(run.stub.count(Method::POST, ":predictLongRunning"), 1);
        // The first poll was refused or unreadable, the second one finished the job.
        assert_eq!(run.stub.count(Method::POST, ":fetchPredictOperation"), 2);
    }
}

#[tokio::test]
async fn vertex_a_refused_poll_fails_in_doubt() {
    let run = vertex(V::PollNotFound).await;
    vertex_clean(&run);
    let f = failure(run.outcome);
    assert_eq!(f.class, FailureClass::Terminal);
    assert!(f.in_doubt, "the job was created: {}", f.message);
    assert_eq!(run.stub.count(Method::POST, ":fetchPredictOperation"), 1);
}

// ------------------------------------------------------------------------------ Gemini API

const GEMINI_OP: &str = "models/veo-3.0-generate-001/operations/op-abc123";

#[derive(Clone, Debug, PartialEq)]
enum G {
    /// The download redirects to another origin (a storage host).
    Ok,
    /// The download redirects within the API's own origin.
    OkSameOrigin,
    /// The video's URI is on another origin from the start.
    ForeignUri,
    Filtered,
    FilteredReasonsOnly,
    NoSamples,
    OpError(i64, &'static str),
    EchoKey,
    Exhausted,
    SlowCreate,
    MalformedCreate,
    MalformedPollOnce,
    Download503Once,
    DownloadGone,
}

async fn gemini_stub(
    State(s): State<Stub<G>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    s.record(&method, &uri, key.clone());
    if uri.query().is_some_and(|q| q.contains("key=")) {
        s.problem(format!("a key in the URL: {uri}"));
    }
    if headers.contains_key("authorization") {
        s.problem("an Authorization header");
    }
    let path = uri.path();
    if path == "/blob/abc" {
        // Same-origin storage: the key may come along (it is the API's own origin).
        return ([("content-type", "video/mp4")], b"FAKEMP4".to_vec()).into_response();
    }
    if key.as_deref() != Some(TOKEN) {
        return error_reply(
            StatusCode::UNAUTHORIZED,
            401,
            "UNAUTHENTICATED",
            "API key not valid. Please pass a valid API key.",
        );
    }
    let me = s.me.lock().unwrap().clone();
    let other = s.other.lock().unwrap().clone();
    if method == Method::POST && path == format!("/v1beta/models/{MODEL}:predictLongRunning") {
        let problems = check_body(&body, &s.negative, true);
        if !problems.is_empty() {
            let message = problems.join("; ");
            s.problem(&message);
            return error_reply(StatusCode::BAD_REQUEST, 400, "INVALID_ARGUMENT", &message);
        }
        return match s.scenario {
            G::Exhausted => error_reply(
                StatusCode::TOO_MANY_REQUESTS,
                429,
                "RESOURCE_EXHAUSTED",
                "You exceeded your current quota",
            ),
            G::SlowCreate => {
                stall().await;
                Json(json!({"name": GEMINI_OP})).into_response()
            }
            G::MalformedCreate => (StatusCode::OK, "<html>bad gateway</html>").into_response(),
            _ => Json(json!({"name": GEMINI_OP})).into_response(),
        };
    }
    if method == Method::GET && path == format!("/v1beta/{GEMINI_OP}") {
        let n = s.count(Method::GET, "/operations/op-abc123");
        if s.scenario == G::MalformedPollOnce && n == 1 {
            return (StatusCode::OK, "{\"done\"").into_response();
        }
        if n < 2 {
            return Json(json!({"name": GEMINI_OP, "done": false})).into_response();
        }
        let video_uri = match s.scenario {
            G::ForeignUri => format!("{other}/blob/abc"),
            _ => format!("{me}/v1beta/files/abc:download?alt=media"),
        };
        let response = match &s.scenario {
            G::Filtered => json!({"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": ["The video was filtered for safety reasons."]}),
            G::FilteredReasonsOnly => json!({"raiMediaFilteredReasons": ["unsafe content"]}),
            G::NoSamples => json!({"generatedSamples": []}),
            G::OpError(code, message) => {
                return Json(json!({"name": GEMINI_OP, "done": true, "error": {"code": code, "message": message}}))
                    .into_response()
            }
            G::EchoKey => {
                let echoed = format!("key {TOKEN} may not use this model");
                return Json(json!({"name": GEMINI_OP, "done": true, "error": {"code": 7, "message": echoed}}))
                    .into_response();
            }
            _ => json!({"generatedSamples": [{"video": {"uri": video_uri}}]}),
        };
        return Json(json!({
            "name": GEMINI_OP,
            "done": true,
            "response": {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse", "generateVideoResponse": response}
        }))
        .into_response();
    }
    if method == Method::GET && path == "/v1beta/files/abc:download" {
        let n = s.count(Method::GET, ":download");
        return match s.scenario {
            G::Download503Once if n == 1 => {
                error_reply(StatusCode::SERVICE_UNAVAILABLE, 503, "UNAVAILABLE", "later")
            }
            G::DownloadGone => error_reply(StatusCode::NOT_FOUND, 404, "NOT_FOUND", "file gone"),
            G::OkSameOrigin => (StatusCode::FOUND, [("location", "/blob/abc")]).into_response(),
            _ => (
                StatusCode::FOUND,
                [("location", format!("{other}/blob/abc?sig=signed"))],
            )
                .into_response(),
        };
    }
    StatusCode::NOT_FOUND.into_response()
}

/// The storage host on another origin: it records whether the key reached it.
async fn storage_stub(
    State(s): State<Stub<G>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let key = headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    s.record(&method, &uri, key);
    if uri.path() == "/blob/abc" {
        return (
            [("content-type", "video/mp4; codecs=avc1")],
            b"FAKEMP4".to_vec(),
        )
            .into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}

struct GeminiRun {
    outcome: Outcome,
    api: Stub<G>,
    storage: Stub<G>,
}

async fn gemini_with(scenario: G, key: &str) -> GeminiRun {
    let j = job();
    let api = Stub::new(scenario.clone(), j.negative_prompt.clone());
    let storage = Stub::new(scenario, None);
    let storage_url = serve(
        axum::Router::new()
            .fallback(storage_stub)
            .with_state(storage.clone()),
    )
    .await;
    let api_url = serve(
        axum::Router::new()
            .fallback(gemini_stub)
            .with_state(api.clone()),
    )
    .await;
    *api.me.lock().unwrap() = api_url.clone();
    *api.other.lock().unwrap() = storage_url;
    let adapter = Adapter::Gemini(Gemini {
        endpoint: endpoint(&api_url, key),
        client: http_client(),
    });
    assert!(!format!("{adapter:?}").contains(SECRET_PART));
    let outcome = adapter.generate(&j).await;
    GeminiRun {
        outcome,
        api,
        storage,
    }
}

async fn gemini(scenario: G) -> GeminiRun {
    gemini_with(scenario, TOKEN).await
}

/// The key travelled only in the header, only to the API's origin, and the bodies were right.
fn gemini_clean(run: &GeminiRun) {
    assert_eq!(run.api.problems(), Vec::<String>::new());
    for s in run.api.seen().iter().chain(run.storage.seen().iter()) {
        let q = s.query.clone().unwrap_or_default();
        assert!(!q.contains(SECRET_PART) && !q.contains("key="), "{s:?}");
        assert!(!s.path.contains(SECRET_PART), "{s:?}");
    }
    for s in run.storage.seen() {
        assert_eq!(
            s.credential, None,
            "the key never reaches another origin: {s:?}"
        );
    }
}

#[tokio::test]
async fn gemini_happy_path_follows_the_download_redirect_to_another_origin() {
    let run = gemini(G::Ok).await;
    gemini_clean(&run);
    let success = run.outcome.clone().unwrap();
    assert_eq!(
        success.video,
        Video::Bytes {
            data: b"FAKEMP4".to_vec(),
            mime: "video/mp4".into()
        }
    );
    assert_eq!(success.model.as_deref(), Some(MODEL));
    assert_eq!(run.api.count(Method::POST, ":predictLongRunning"), 1);
    assert_eq!(run.api.count(Method::GET, "/operations/op-abc123"), 2);
    assert_eq!(run.api.count(Method::GET, ":download"), 1);
    assert_eq!(run.storage.count(Method::GET, "/blob/abc"), 1);
    // Every call to the API carried the key, in the header.
    for s in run.api.seen() {
        assert_eq!(s.credential.as_deref(), Some(TOKEN), "{s:?}");
    }
    let download = run
        .api
        .seen()
        .into_iter()
        .find(|s| s.path.ends_with(":download"))
        .unwrap();
    assert_eq!(download.query.as_deref(), Some("alt=media"));
}

#[tokio::test]
async fn gemini_same_origin_redirect_is_followed() {
    let run = gemini(G::OkSameOrigin).await;
    gemini_clean(&run);
    assert_eq!(
        run.outcome.unwrap().video,
        Video::Bytes {
            data: b"FAKEMP4".to_vec(),
            mime: "video/mp4".into()
        }
    );
    assert_eq!(run.api.count(Method::GET, "/blob/abc"), 1);
}

#[tokio::test]
async fn gemini_never_sends_the_key_to_a_video_uri_on_another_origin() {
    let run = gemini(G::ForeignUri).await;
    gemini_clean(&run);
    assert!(run.outcome.is_ok(), "{:?}", run.outcome);
    assert_eq!(run.storage.count(Method::GET, "/blob/abc"), 1);
}

#[tokio::test]
async fn gemini_filtering_and_empty_results() {
    for (scenario, expected) in [
        (G::Filtered, FailureClass::ContentRejected),
        (G::FilteredReasonsOnly, FailureClass::ContentRejected),
        (G::NoSamples, FailureClass::NoVideo),
    ] {
        let run = gemini(scenario.clone()).await;
        gemini_clean(&run);
        let f = failure(run.outcome);
        assert_eq!(f.class, expected, "{scenario:?}: {}", f.message);
        assert!(!f.in_doubt, "{scenario:?}");
        assert_eq!(run.api.count(Method::GET, ":download"), 0);
    }
}

#[tokio::test]
async fn gemini_operation_errors_are_classed() {
    for (code, message, expected) in [
        (3, "Invalid duration", FailureClass::Terminal),
        (13, "Internal error", FailureClass::Retryable),
        (
            3,
            "The prompt couldn't be submitted: it might violate our policies.",
            FailureClass::ContentRejected,
        ),
    ] {
        let run = gemini(G::OpError(code, message)).await;
        gemini_clean(&run);
        let f = failure(run.outcome);
        assert_eq!(f.class, expected, "{message}");
        assert!(!f.in_doubt);
    }
}

#[tokio::test]
async fn gemini_create_failures() {
    let run = gemini(G::Exhausted).await;
    let f = failure(run.outcome);
    assert_eq!((f.class, f.in_doubt), (FailureClass::Retryable, false));

    let run = gemini_with(G::Ok, "wrong-key").await;
    let f = failure(run.outcome);
    assert_eq!((f.class, f.in_doubt), (FailureClass::Terminal, false));
    assert_eq!(run.api.seen().len(), 1);

    for scenario in [G::SlowCreate, G::MalformedCreate] {
        let run = gemini(scenario.clone()).await;
        let f = failure(run.outcome);
        assert_eq!(
            (f.class, f.in_doubt),
            (FailureClass::Retryable, true),
            "{scenario:?}: {}",
            f.message
        );
        assert_eq!(run.api.count(Method::POST, ":predictLongRunning"), 1);
        assert_eq!(run.api.count(Method::GET, ""), 0);
    }
}

#[tokio::test]
async fn gemini_poll_and_download_trouble_is_retried() {
    for scenario in [G::MalformedPollOnce, G::Download503Once] {
        let run = gemini(scenario.clone()).await;
        gemini_clean(&run);
        assert!(run.outcome.is_ok(), "{scenario:?}: {:?}", run.outcome);
        assert_eq!(run.api.count(Method::POST, ":predictLongRunning"), 1);
        if scenario == G::Download503Once {
            assert_eq!(run.api.count(Method::GET, ":download"), 2);
        }
    }
}

#[tokio::test]
async fn gemini_a_lost_video_is_in_doubt() {
    let run = gemini(G::DownloadGone).await;
    gemini_clean(&run);
    let f = failure(run.outcome);
    assert_eq!(f.class, FailureClass::Terminal);
    assert!(f.in_doubt, "the video was generated: {}", f.message);
}

// --------------------------------------------------------------------------------- secrets

#[tokio::test]
async fn no_failure_message_carries_the_secret() {
    let mut messages = vec![];
    let mut short = job();
    short.deadline = Duration::from_millis(300);
    let vertex_cases = [
        V::Filtered,
        V::NoVideo,
        V::OpError(3, "Invalid value"),
        V::OpError(8, "Resource exhausted"),
        V::EchoToken,
        V::Exhausted,
        V::SlowCreate,
        V::MalformedCreate,
        V::CreateWithoutName,
        V::PollNotFound,
    ];
    for scenario in vertex_cases {
        messages.push(failure(vertex(scenario).await.outcome).message);
    }
    messages.push(failure(vertex_with(V::SlowPoll, TOKEN, short).await.outcome).message);
    messages.push(
        failure(
            vertex_with(V::Gcs, "wrong-token-SECRET123x", job())
                .await
                .outcome,
        )
        .message,
    );
    let gemini_cases = [
        G::Filtered,
        G::FilteredReasonsOnly,
        G::NoSamples,
        G::OpError(3, "Invalid duration"),
        G::EchoKey,
        G::Exhausted,
        G::SlowCreate,
        G::MalformedCreate,
        G::DownloadGone,
    ];
    for scenario in gemini_cases {
        messages.push(failure(gemini(scenario).await.outcome).message);
    }
    messages.push(failure(gemini_with(G::Ok, "wrong-key-SECRET123x").await.outcome).message);
    assert_eq!(messages.len(), 22);
    for m in &messages {
        assert!(!m.is_empty());
        assert!(
            !m.contains(SECRET_PART),
            "a failure message leaks the secret: {m}"
        );
    }
    // The echoing servers were redacted, not silently dropped.
    assert!(messages.iter().filter(|m| m.contains("***")).count() >= 2);
}
