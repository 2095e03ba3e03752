#![allow(dead_code)]
//! A stub of the `/v1/videos` job API in each dialect genroute speaks, written from the
//! servers' own source, not from genroute's adapter:
//!
//! - `Openai`: OpenAI's documented shape, as the `openai` package sends it and genroute's
//!   worker serves it. Create takes multipart form (or JSON); `queued → in_progress →
//!   completed | failed | cancelled`; DELETE of a queued job answers `cancelled`, of a
//!   running one 202 (it stops at its next step).
//! - `VllmOmni` (vllm-project/vllm-omni, `entrypoints/openai/api_server.py`): create reads
//!   form fields only (`prompt: str = Form(...)`), so a JSON body is a FastAPI 422 "Field
//!   required"; a `model` other than the served one is 400 "Model mismatch"; `seconds` must
//!   match `^[1-9]\d*$` and `size` `^\d+x\d+$`; a failed job's GET answers its error's HTTP
//!   status (500) with the job as the body, its `error.code` a number; `/content` is 404
//!   while running and 422 once failed; DELETE cancels the task and forgets the record
//!   (`{id, deleted: true, object: "video.deleted"}`), or 409 while cancelling.
//! - `Sglang` (sgl-project/sglang, `multimodal_gen/runtime/entrypoints/openai/video_api.py`):
//!   create reads JSON; its multipart path wants an `input_reference` image (400 without);
//!   `seconds` is an integer; `queued → completed | failed`, no `in_progress`, `progress`
//!   0 then 100; a failed job's GET is 200 with `status: failed`; DELETE forgets the record
//!   and answers it with `status: "deleted"` (the job is not stopped).
//!
//! Every dialect: `/content` 404 until done; an `openai-poll-after-ms` header while running.
//! A prompt containing `FAIL` makes the job fail half way ("CUDA out of memory"). The stub
//! counts creates, polls and deletes and keeps each create's fields, so tests can assert a
//! job was created exactly once and with what. It runs on its own thread and runtime, so it
//! outlives the test's own tasks and answers while the test blocks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Dialect {
    #[default]
    Openai,
    VllmOmni,
    Sglang,
}

#[derive(Clone, Default)]
pub struct Stub {
    pub dialect: Dialect,
    pub creates: Arc<AtomicU32>,
    pub deletes: Arc<AtomicU32>,
    pub polls: Arc<AtomicU32>,
    jobs: Arc<Mutex<HashMap<String, StubJob>>>,
    /// Each create call's fields, as the server read them.
    pub bodies: Arc<Mutex<Vec<serde_json::Map<String, Value>>>>,
    /// How long a job takes from create to completed.
    pub duration: Arc<Mutex<Duration>>,
    /// How long a job stays queued.
    pub queued_for: Arc<Mutex<Duration>>,
    /// How long the create call waits before it answers.
    pub create_delay: Arc<Mutex<Duration>>,
    /// vLLM-Omni: the model it serves (a different `model` is refused).
    pub served_model: Arc<Mutex<String>>,
    /// vLLM-Omni: DELETE answers 409 ("Cancellation in progress") while set.
    pub cancel_busy: Arc<Mutex<bool>>,
    /// This many create calls are refused with 429 and `Retry-After: 1` (a full queue), as
    /// genroute's worker does; they make no job.
    pub queue_full: Arc<AtomicU32>,
    /// Create calls refused with 429.
    pub refused: Arc<AtomicU32>,
    /// What `/content` serves once a job completed, instead of [`VIDEO`].
    pub content: Arc<Mutex<Option<Vec<u8>>>>,
}

#[derive(Clone)]
struct StubJob {
    created: Instant,
    cancelled: bool,
    fails: bool,
    model: String,
}

/// What `/content` serves: a real MP4 of 5 s at 16:9 (64x36, 8 fps, ffmpeg's `testsrc2`), so
/// that genroute's output checks pass it for requests of 4 to 6 s at 16:9.
pub const VIDEO: &[u8] = include_bytes!("../fixtures/clip-5s-16x9.mp4");

impl Stub {
    fn status(&self, job: &StubJob) -> (&'static str, u32) {
        let (duration, queued) = (
            *self.duration.lock().unwrap(),
            *self.queued_for.lock().unwrap(),
        );
        let age = job.created.elapsed();
        if job.cancelled {
            ("cancelled", 0)
        } else if age < queued {
            ("queued", 0)
        } else if job.fails && age >= queued + (duration.saturating_sub(queued)) / 2 {
            ("failed", 50)
        } else if age < duration {
            if self.dialect == Dialect::Sglang {
                // SGLang has no `in_progress`: a job reads queued until it is done.
                return ("queued", 0);
            }
            let p = (age.as_secs_f64() / duration.as_secs_f64() * 100.0) as u32;
            ("in_progress", p.min(99))
        } else {
            ("completed", 100)
        }
    }

    fn object(&self, id: &str, job: &StubJob) -> Value {
        let (status, progress) = self.status(job);
        let error = match (status, self.dialect) {
            ("failed", Dialect::VllmOmni) => json!({"code": 500, "message": "CUDA out of memory"}),
            ("failed", Dialect::Sglang) => json!({"message": "CUDA out of memory"}),
            ("failed", _) => json!({"code": "out_of_memory", "message": "CUDA out of memory"}),
            ("cancelled", _) => json!({"code": "cancelled", "message": "the job was cancelled"}),
            _ => Value::Null,
        };
        json!({"id": id, "object": "video", "model": job.model, "status": status, "progress": progress,
               "created_at": 1_764_547_200, "seconds": "4", "size": "1280x720", "error": error})
    }
}

fn error(status: StatusCode, detail: Value) -> Response {
    (status, Json(json!({ "detail": detail }))).into_response()
}

/// Reads a create body the way the dialect's server does: `Err` is the server's refusal.
async fn read_create(
    dialect: Dialect,
    req: Request,
) -> Result<serde_json::Map<String, Value>, Response> {
    let ct = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mut fields = serde_json::Map::new();
    if ct.starts_with("multipart/form-data") {
        let mut form = axum::extract::Multipart::from_request(req, &())
            .await
            .map_err(|e| error(StatusCode::BAD_REQUEST, e.body_text().into()))?;
        while let Ok(Some(field)) = form.next_field().await {
            let name = field.name().unwrap_or_default().to_string();
            let text = field.text().await.unwrap_or_default();
            fields.insert(name, Value::String(text));
        }
        if dialect == Dialect::Sglang && !fields.contains_key("input_reference") {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "input_reference file is required".into(),
            ));
        }
    } else if ct.starts_with("application/json") && dialect != Dialect::VllmOmni {
        let body = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => fields = m,
            _ => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "Invalid request body".into(),
                ))
            }
        }
    } else if dialect == Dialect::VllmOmni && ct.starts_with("application/x-www-form-urlencoded") {
        let body = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        for (k, v) in
            serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body).unwrap_or_default()
        {
            fields.insert(k, Value::String(v));
        }
    }
    let prompt = fields
        .get("prompt")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if prompt.is_empty() {
        return Err(match dialect {
            Dialect::VllmOmni => error(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!([{"type": "missing", "loc": ["body", "prompt"], "msg": "Field required"}]),
            ),
            _ => error(StatusCode::BAD_REQUEST, "prompt is required".into()),
        });
    }
    Ok(fields)
}

async fn create(State(s): State<Stub>, req: Request) -> Response {
    let fields = match read_create(s.dialect, req).await {
        Ok(f) => f,
        Err(refused) => return refused,
    };
    let text = |k: &str| match fields.get(k) {
        Some(Value::String(t)) => Some(t.clone()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    if s.dialect == Dialect::VllmOmni {
        let served = s.served_model.lock().unwrap().clone();
        if let Some(m) = text("model") {
            if m != served {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "Model mismatch: request specifies '{m}' but server is running '{served}'."
                    )
                    .into(),
                );
            }
        }
        let seconds_ok = text("seconds").is_none_or(|t| {
            t.starts_with(|c: char| ('1'..='9').contains(&c))
                && t.bytes().all(|b| b.is_ascii_digit())
        });
        let size_ok = text("size").is_none_or(|t| {
            t.split_once('x').is_some_and(|(w, h)| {
                !w.is_empty()
                    && !h.is_empty()
                    && (w.to_string() + h).bytes().all(|b| b.is_ascii_digit())
            })
        });
        if !seconds_ok || !size_ok {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!([{"type": "string_pattern_mismatch", "loc": ["body", if seconds_ok {"size"} else {"seconds"}]}]),
            );
        }
    }
    if s.dialect == Dialect::Sglang {
        if let Some(sec) = fields.get("seconds") {
            if !sec.is_i64() {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Invalid request body: seconds must be an integer".into(),
                );
            }
        }
    }
    if s.queue_full.load(Ordering::SeqCst) > 0 {
        s.queue_full.fetch_sub(1, Ordering::SeqCst);
        s.refused.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            Json(json!({"error": {"code": "queue_full", "message": "the render queue is full"}})),
        )
            .into_response();
    }
    let n = s.creates.fetch_add(1, Ordering::SeqCst) + 1;
    s.bodies.lock().unwrap().push(fields.clone());
    let delay = *s.create_delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let id = match s.dialect {
        Dialect::VllmOmni => format!("video_gen_{n:032x}"),
        Dialect::Sglang => format!("{n:032x}"),
        Dialect::Openai => format!("video_{n}"),
    };
    let model = match s.dialect {
        Dialect::VllmOmni => s.served_model.lock().unwrap().clone(),
        _ => text("model").unwrap_or_else(|| "sora-2".into()),
    };
    let job = StubJob {
        created: Instant::now(),
        cancelled: false,
        fails: text("prompt").unwrap_or_default().contains("FAIL"),
        model,
    };
    let obj = s.object(&id, &job);
    s.jobs.lock().unwrap().insert(id, job);
    Json(obj).into_response()
}

async fn retrieve(State(s): State<Stub>, Path(id): Path<String>) -> Response {
    s.polls.fetch_add(1, Ordering::SeqCst);
    let job = s.jobs.lock().unwrap().get(&id).cloned();
    let Some(job) = job else {
        return error(StatusCode::NOT_FOUND, "Video not found".into());
    };
    let obj = s.object(&id, &job);
    if s.dialect == Dialect::VllmOmni && obj["status"] == "failed" {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(obj)).into_response();
    }
    ([("openai-poll-after-ms", "100")], Json(obj)).into_response()
}

async fn content(State(s): State<Stub>, Path(id): Path<String>) -> Response {
    let job = s.jobs.lock().unwrap().get(&id).cloned();
    match job.map(|j| s.status(&j).0) {
        Some("completed") => {
            let body = s.content.lock().unwrap().clone();
            let body = body.unwrap_or_else(|| VIDEO.to_vec());
            ([("content-type", "video/mp4")], body).into_response()
        }
        Some("failed") if s.dialect == Dialect::VllmOmni => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Video generation failed. Check job status for error details.".into(),
        ),
        Some(_) => error(
            StatusCode::NOT_FOUND,
            "Generation is still in-progress".into(),
        ),
        None => error(StatusCode::NOT_FOUND, "Video not found".into()),
    }
}

async fn delete(State(s): State<Stub>, Path(id): Path<String>) -> Response {
    s.deletes.fetch_add(1, Ordering::SeqCst);
    let mut jobs = s.jobs.lock().unwrap();
    let Some(job) = jobs.get(&id).cloned() else {
        return error(StatusCode::NOT_FOUND, "Video not found".into());
    };
    let (status, _) = s.status(&job);
    match s.dialect {
        Dialect::VllmOmni => {
            if *s.cancel_busy.lock().unwrap() && matches!(status, "queued" | "in_progress") {
                return error(
                    StatusCode::CONFLICT,
                    "Cancellation in progress. Please try again later.".into(),
                );
            }
            jobs.remove(&id);
            Json(json!({"id": id, "object": "video.deleted", "deleted": true})).into_response()
        }
        Dialect::Sglang => {
            jobs.remove(&id);
            let mut obj = s.object(&id, &job);
            obj["status"] = "deleted".into();
            Json(obj).into_response()
        }
        Dialect::Openai => match status {
            "queued" => {
                let j = jobs.get_mut(&id).unwrap();
                j.cancelled = true;
                let obj = s.object(&id, j);
                Json(obj).into_response()
            }
            "in_progress" => {
                jobs.get_mut(&id).unwrap().cancelled = true;
                let mut obj = s.object(&id, &job);
                obj["cancel_requested"] = true.into();
                (StatusCode::ACCEPTED, Json(obj)).into_response()
            }
            _ => (
                StatusCode::CONFLICT,
                Json(
                    json!({"error": {"code": "already_finished", "message": "the job has ended"}}),
                ),
            )
                .into_response(),
        },
    }
}

/// Starts an `openai`-dialect stub on a free port; jobs take `duration`.
pub fn start(duration: Duration) -> (String, Stub) {
    start_dialect(Dialect::Openai, duration)
}

/// Starts a stub of `dialect` on a free port; jobs take `duration`.
pub fn start_dialect(dialect: Dialect, duration: Duration) -> (String, Stub) {
    let stub = Stub {
        dialect,
        ..Stub::default()
    };
    *stub.duration.lock().unwrap() = duration;
    *stub.queued_for.lock().unwrap() = Duration::from_millis(300).min(duration / 3);
    *stub.served_model.lock().unwrap() = "THUDM/CogVideoX-5b".into();
    let app = Router::new()
        .route("/v1/videos", post(create))
        .route("/v1/videos/{id}", get(retrieve).delete(delete))
        .route("/v1/videos/{id}/content", get(content))
        .with_state(stub.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (url, stub)
}

/// One delivery: its headers and body.
pub type Delivery = (HashMap<String, String>, Vec<u8>);

/// A webhook receiver: records every delivery's headers and body; answers 500 to the first
/// `fail_first` deliveries.
#[derive(Clone, Default)]
pub struct Receiver {
    pub got: Arc<Mutex<Vec<Delivery>>>,
    pub fail_first: Arc<AtomicU32>,
}

async fn receive(
    State(r): State<Receiver>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let h: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    r.got.lock().unwrap().push((h, body.to_vec()));
    if r.fail_first.load(Ordering::SeqCst) > 0 {
        r.fail_first.fetch_sub(1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::OK
}

/// Starts a receiver on a free port; returns its URL (`http://127.0.0.1:P/hook`).
pub fn receiver() -> (String, Receiver) {
    let r = Receiver::default();
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(r.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (url, r)
}

/// Checks a Standard Webhooks signature independently of genroute's library: HMAC-SHA256
/// over `id.timestamp.body` with the base64 key after `whsec_`.
pub fn signature_is_valid(secret: &str, headers: &HashMap<String, String>, body: &[u8]) -> bool {
    use base64::Engine;
    use hmac::{Hmac, KeyInit, Mac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let (Some(id), Some(ts), Some(sig)) = (
        headers.get("webhook-id"),
        headers.get("webhook-timestamp"),
        headers.get("webhook-signature"),
    ) else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    sig.split(' ').any(|s| s == format!("v1,{expected}"))
}
