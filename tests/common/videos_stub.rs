#![allow(dead_code)]
//! A stub of the `/v1/videos` job API, as OpenAI documented it and the self-hosted servers
//! serve it: `POST /v1/videos` → `{id, object: "video", status: "queued", …}`; `GET
//! /v1/videos/{id}` moves `queued → in_progress → completed` over the job's duration, with
//! `progress` and an `openai-poll-after-ms` header; `GET /v1/videos/{id}/content` answers 404
//! while the job runs and the MP4 bytes once it completed; `DELETE /v1/videos/{id}` cancels
//! (the job then reads `failed` with error code `cancelled`). It counts create calls and
//! deletes, so tests can assert a job was created exactly once. It runs on its own thread and
//! runtime, so that it outlives the test's own tasks and answers while the test blocks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

#[derive(Clone, Default)]
pub struct Stub {
    pub creates: Arc<AtomicU32>,
    pub deletes: Arc<AtomicU32>,
    pub polls: Arc<AtomicU32>,
    jobs: Arc<Mutex<HashMap<String, StubJob>>>,
    /// How long a job takes from create to completed.
    pub duration: Arc<Mutex<Duration>>,
    /// How long a job stays queued.
    pub queued_for: Arc<Mutex<Duration>>,
    /// How long the create call waits before it answers.
    pub create_delay: Arc<Mutex<Duration>>,
}

#[derive(Clone)]
struct StubJob {
    created: Instant,
    cancelled: bool,
    model: String,
}

/// MP4 bytes of a tiny file (an `ftyp` box): what `/content` serves.
pub const VIDEO: &[u8] = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom";

impl Stub {
    fn status(&self, job: &StubJob) -> (&'static str, u32) {
        let (duration, queued) = (
            *self.duration.lock().unwrap(),
            *self.queued_for.lock().unwrap(),
        );
        let age = job.created.elapsed();
        if job.cancelled {
            ("failed", 0)
        } else if age < queued {
            ("queued", 0)
        } else if age < duration {
            let p = (age.as_secs_f64() / duration.as_secs_f64() * 100.0) as u32;
            ("in_progress", p.min(99))
        } else {
            ("completed", 100)
        }
    }

    fn object(&self, id: &str, job: &StubJob) -> serde_json::Value {
        let (status, progress) = self.status(job);
        let error = if job.cancelled {
            json!({"code": "cancelled", "message": "the job was cancelled"})
        } else {
            serde_json::Value::Null
        };
        json!({"id": id, "object": "video", "model": job.model, "status": status, "progress": progress,
               "created_at": 1_764_547_200, "seconds": "4", "size": "1280x720", "error": error})
    }
}

async fn create(State(s): State<Stub>, body: axum::body::Bytes) -> Response {
    let n = s.creates.fetch_add(1, Ordering::SeqCst) + 1;
    let delay = *s.create_delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let id = format!("video_{n}");
    let job = StubJob {
        created: Instant::now(),
        cancelled: false,
        model: v["model"].as_str().unwrap_or("sora-2").to_string(),
    };
    let obj = s.object(&id, &job);
    s.jobs.lock().unwrap().insert(id, job);
    Json(obj).into_response()
}

async fn retrieve(State(s): State<Stub>, Path(id): Path<String>) -> Response {
    s.polls.fetch_add(1, Ordering::SeqCst);
    let job = s.jobs.lock().unwrap().get(&id).cloned();
    match job {
        Some(job) => ([("openai-poll-after-ms", "200")], Json(s.object(&id, &job))).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": "not_found", "message": "no such video"}})),
        )
            .into_response(),
    }
}

async fn content(State(s): State<Stub>, Path(id): Path<String>) -> Response {
    let job = s.jobs.lock().unwrap().get(&id).cloned();
    match job.map(|j| s.status(&j).0) {
        Some("completed") => ([("content-type", "video/mp4")], VIDEO).into_response(),
        Some(_) => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": "not_ready", "message": "still in progress"}})),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn delete(State(s): State<Stub>, Path(id): Path<String>) -> Response {
    s.deletes.fetch_add(1, Ordering::SeqCst);
    let mut jobs = s.jobs.lock().unwrap();
    match jobs.get_mut(&id) {
        Some(job) => {
            job.cancelled = true;
            Json(json!({"id": id, "object": "video.deleted", "deleted": true})).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Starts the stub on a free port; jobs take `duration`.
pub fn start(duration: Duration) -> (String, Stub) {
    let stub = Stub::default();
    *stub.duration.lock().unwrap() = duration;
    *stub.queued_for.lock().unwrap() = Duration::from_millis(300);
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
