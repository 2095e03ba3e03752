//! `/v1/videos`: the job API that OpenAI's SDK, gateways and the self-hosted servers speak,
//! answered from genroute's own durable jobs. Nothing of the standard shape is changed:
//! genroute's additions (the backend, the cost, the attempts, its own job state) sit under one
//! key, `genroute`.
//!
//! - `POST /v1/videos`: multipart form (what the `openai` package sends), URL-encoded form or
//!   JSON. `prompt`, `model`, `seconds`, `size`; genroute's own request fields (`priority`,
//!   `quality_threshold`, the policy's `request_fields`, `webhook_url`) as extra fields.
//!   `model` absent or `genroute`: the policy decides. A backend name or a model id: that
//!   target, with every eligibility check, as a rule target (and its fallbacks).
//!   `seconds` becomes the request's `duration`, `size` its `aspect_ratio` (the nearest the
//!   policy knows), unless the request gives them.
//! - `GET /v1/videos/{id}`: the video object; `openai-poll-after-ms` while it runs.
//! - `GET /v1/videos/{id}/content`: the MP4 (404 while running, 422 when it failed).
//! - `GET /v1/videos?after=&limit=`: newest first, in pages.
//! - `DELETE /v1/videos/{id}`: cancels a job that runs (its money as `DELETE /v1/jobs/{id}`
//!   says); an ended job's record stays for its retention period, so that is a 409.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{
    FromRequest, Multipart, Path as UrlPath, Query, Request as AxRequest, State as AxState,
};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::app::App;
use crate::auth::Caller;
use crate::error::{error, ledger_unavailable, query};
use crate::jobs::{page_size, submit_new, visible, visible_page};
use genroute_core::check::expr::EnumId;
use genroute_core::policy::Policy;
use genroute_core::request::Request;
use genroute_exec::jobs::runner::{public, Cancelled, NewJob};
use genroute_exec::jobs::{Job, JobState};

/// The clip a simulated backend "renders" (the simulated adapter's own).
pub use genroute_exec::adapter::simulated::CLIP as SIMULATED_CLIP;

/// The aspect ratio nearest a `WIDTHxHEIGHT` size, among those the policy knows.
fn aspect_of(policy: &Policy, size: &str) -> Option<String> {
    let (w, h) = size.split_once(['x', 'X'])?;
    let (w, h): (f64, f64) = (w.trim().parse().ok()?, h.trim().parse().ok()?);
    if w <= 0.0 || h <= 0.0 {
        return None;
    }
    let want = w / h;
    policy
        .enum_values(EnumId::ASPECT_RATIO)
        .iter()
        .filter_map(|r| {
            let (a, b) = r.split_once(':')?;
            let ratio = a.parse::<f64>().ok()? / b.parse::<f64>().ok()?;
            Some((r.clone(), (ratio.ln() - want.ln()).abs()))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(r, _)| r)
}

/// The body's fields, as text, whatever its encoding.
async fn fields(req: AxRequest, state: &Arc<App>) -> Result<Vec<(String, String)>, Response> {
    let bad = |m: String| error(StatusCode::BAD_REQUEST, Some("(body)"), &m);
    let kind = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if kind.starts_with("multipart/form-data") {
        let mut form = Multipart::from_request(req, state)
            .await
            .map_err(|e| bad(format!("the multipart body cannot be read: {e}")))?;
        let mut out = Vec::new();
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| bad(format!("the multipart body cannot be read: {e}")))?
        {
            let name = field.name().unwrap_or_default().to_string();
            if name == "input_reference" || field.file_name().is_some() {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    Some("input_reference"),
                    "genroute routes text-to-video requests; an input image or video is not supported",
                ));
            }
            let text = field
                .text()
                .await
                .map_err(|e| bad(format!("field `{name}` is not text: {e}")))?;
            out.push((name, text));
        }
        return Ok(out);
    }
    let bytes = axum::body::to_bytes(req.into_body(), genroute_core::request::MAX_REQUEST_BYTES)
        .await
        .map_err(|e| bad(format!("the body cannot be read: {e}")))?;
    if kind.starts_with("application/x-www-form-urlencoded") {
        return serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
            .map_err(|e| bad(format!("the form body cannot be read: {e}")));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, text)
            })
            .collect()),
        Ok(_) => Err(bad("the body must be a JSON object or a form".into())),
        Err(e) => Err(bad(format!(
            "the body is neither a form nor valid JSON: {e}"
        ))),
    }
}

/// `POST /v1/videos`.
pub async fn create(AxState(app): AxState<Arc<App>>, caller: Caller, req: AxRequest) -> Response {
    let router = app.router();
    let policy = router.policy();
    let given = match fields(req, &app).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut api = Map::new();
    let mut target = None;
    let mut webhook = app.config.default_webhook.clone();
    let mut request_fields: Vec<(String, String)> = Vec::new();
    for (k, v) in &given {
        match k.as_str() {
            "model" => {
                target = Some(v.clone());
                api.insert(k.clone(), json!(v));
            }
            "seconds" => {
                if !v.parse::<u32>().is_ok_and(|s| (1..=600).contains(&s)) {
                    return error(
                        StatusCode::BAD_REQUEST,
                        Some("seconds"),
                        &format!("`{v}` is not a whole number of seconds from 1 to 600"),
                    );
                }
                api.insert(k.clone(), json!(v));
                if !given.iter().any(|(k, _)| k == "duration") {
                    request_fields.push(("duration".into(), v.clone()));
                }
            }
            "size" => {
                api.insert(k.clone(), json!(v));
                if !given.iter().any(|(k, _)| k == "aspect_ratio") {
                    match aspect_of(policy, v) {
                        Some(r) => request_fields.push(("aspect_ratio".into(), r)),
                        None => {
                            return error(
                                StatusCode::BAD_REQUEST,
                                Some("size"),
                                &format!("`{v}` is not a size such as 1280x720"),
                            )
                        }
                    }
                }
            }
            "webhook_url" => webhook = Some(v.clone()),
            _ => request_fields.push((k.clone(), v.clone())),
        }
    }
    if !given.iter().any(|(k, _)| k == "prompt") {
        return error(
            StatusCode::BAD_REQUEST,
            Some("prompt"),
            "`prompt` is required: the text of the video",
        );
    }
    let mut request = match Request::from_form(
        policy,
        request_fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, Some(&e.field), &e.to_string()),
    };
    if let Err(e) = caller.apply(policy, &mut request) {
        return error(StatusCode::BAD_REQUEST, Some(&e.field), &e.to_string());
    }
    let new = NewJob {
        request,
        webhook,
        target,
        api: Some(Value::Object(api)),
    };
    match submit_new(&app, new).await {
        Ok(job) => {
            let (status, headers, body) = video(&app, &job);
            (status, headers, Json(body)).into_response()
        }
        Err(r) => *r,
    }
}

/// The standard status of a job.
fn status_of(job: &Job) -> &'static str {
    match job.state {
        JobState::Queued => "queued",
        JobState::Running => "in_progress",
        JobState::Succeeded => "completed",
        _ => "failed",
    }
}

/// A job as a video object, with the headers that go with it.
fn video(app: &App, job: &Job) -> (StatusCode, [(header::HeaderName, String); 1], Value) {
    let router = app.router();
    let asked = job.api.clone().unwrap_or_default();
    let status = status_of(job);
    let progress = match job.state {
        JobState::Succeeded => 100,
        JobState::Running => {
            let avg = job
                .current
                .as_ref()
                .and_then(|c| router.policy().backend_index(&c.backend))
                .and_then(|b| router.policy().backend(b))
                .map_or(60.0, |b| b.avg_latency.to_f64().max(1.0));
            let started = job
                .current
                .as_ref()
                .map_or(job.created_ms, |c| c.started_ms);
            let secs = (chrono::Utc::now().timestamp_millis() - started).max(0) as f64 / 1000.0;
            ((secs / avg * 100.0) as u64).min(99)
        }
        _ => 0,
    };
    let outcome = job.outcome.as_ref();
    let model = outcome
        .and_then(|o| o.model.clone())
        .or_else(|| asked["model"].as_str().map(str::to_string))
        .unwrap_or_else(|| "genroute".into());
    let seconds = asked["seconds"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            job.request["duration"]
                .as_f64()
                .map(|d| format!("{}", d.round() as i64))
        })
        .unwrap_or_else(|| "5".into());
    let size = asked["size"]
        .as_str()
        .unwrap_or(match job.request["aspect_ratio"].as_str() {
            Some("9:16") => "720x1280",
            Some("1:1") => "1024x1024",
            _ => "1280x720",
        });
    let error = (status == "failed").then(|| {
        let code = match job.state {
            JobState::Cancelled => "cancelled",
            JobState::InDoubt => "in_doubt",
            _ if job.attempts.is_empty() => "no_backend",
            _ => "generation_failed",
        };
        json!({"code": code, "message": job.error.clone().unwrap_or_else(|| "the generation failed".into())})
    });
    let body = json!({
        "id": job.id,
        "object": "video",
        "status": status,
        "progress": progress,
        "model": model,
        "prompt": job.request["prompt"],
        "seconds": seconds,
        "size": size,
        "created_at": job.created_ms / 1000,
        "completed_at": job.finished_ms.map(|f| f / 1000),
        "error": error,
        "genroute": {
            "status": job.state.as_str(),
            "backend": outcome.and_then(|o| o.backend.clone()).or_else(|| job.current.as_ref().map(|c| c.backend.clone())),
            "cost_usd": job.cost_usd,
            "attempts": job.attempts,
            "job": format!("/v1/jobs/{}", job.id),
        },
    });
    let poll = if job.state.is_final() { "0" } else { "1000" };
    (
        StatusCode::OK,
        [(
            header::HeaderName::from_static("openai-poll-after-ms"),
            poll.to_string(),
        )],
        body,
    )
}

/// `GET /v1/videos/{id}`.
pub async fn retrieve(
    AxState(app): AxState<Arc<App>>,
    caller: Caller,
    UrlPath(id): UrlPath<String>,
) -> Response {
    match visible(&app, &caller, &id).await {
        Ok(Some(job)) => {
            let (status, headers, body) = video(&app, &job);
            (status, headers, Json(body)).into_response()
        }
        Ok(None) => not_found(&id),
        Err(e) => ledger_unavailable(e),
    }
}

fn not_found(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        Some("id"),
        &format!("no video `{id}`"),
    )
}

/// `GET /v1/videos/{id}/content`: the MP4 bytes.
pub async fn content(
    AxState(app): AxState<Arc<App>>,
    caller: Caller,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let job = match visible(&app, &caller, &id).await {
        Ok(Some(job)) => job,
        Ok(None) => return not_found(&id),
        Err(e) => return ledger_unavailable(e),
    };
    match job.state {
        JobState::Succeeded => {}
        s if s.is_final() => {
            return error(
                StatusCode::CONFLICT,
                Some("id"),
                &format!(
                    "video `{id}` has no content: it {}",
                    if s == JobState::Cancelled {
                        "was cancelled"
                    } else {
                        "failed"
                    }
                ),
            )
        }
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                Some("id"),
                &format!("video `{id}` is still in progress"),
            )
        }
    }
    let Some(video) = job.outcome.as_ref().and_then(|o| o.video.clone()) else {
        return error(
            StatusCode::NOT_FOUND,
            Some("id"),
            "the job ended without a video",
        );
    };
    let mp4 = [(header::CONTENT_TYPE, "video/mp4")];
    if video.starts_with("sim://") {
        return (mp4, SIMULATED_CLIP).into_response();
    }
    if video.starts_with("https://") || video.starts_with("http://") {
        return (StatusCode::FOUND, [(header::LOCATION, video)]).into_response();
    }
    if video.contains("://") {
        return error(
            StatusCode::NOT_FOUND,
            Some("id"),
            &format!("the video is stored at `{video}`, which this server does not fetch"),
        );
    }
    match tokio::fs::read(&video).await {
        Ok(bytes) => (mp4, bytes).into_response(),
        Err(e) => error(
            StatusCode::NOT_FOUND,
            Some("id"),
            &format!("the saved video cannot be read: {e}"),
        ),
    }
}

/// The query of `GET /v1/videos`.
#[derive(serde::Deserialize)]
pub struct Page {
    after: Option<String>,
    limit: Option<usize>,
    order: Option<String>,
}

/// `GET /v1/videos`: newest first.
pub async fn list(
    AxState(app): AxState<Arc<App>>,
    caller: Caller,
    page: Result<Query<Page>, QueryRejection>,
) -> Response {
    let page = match query(page) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    if page.order.as_deref().is_some_and(|o| o != "desc") {
        return error(
            StatusCode::BAD_REQUEST,
            Some("order"),
            "only `desc` (newest first) is supported",
        );
    }
    let limit = match page_size(page.limit) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    match visible_page(&app, &caller, page.after.as_deref(), limit).await {
        Ok((jobs, has_more)) => {
            let data: Vec<Value> = jobs.iter().map(|j| video(&app, j).2).collect();
            let (first, last) = (
                jobs.first().map(|j| j.id.clone()),
                jobs.last().map(|j| j.id.clone()),
            );
            Json(json!({"object": "list", "data": data, "first_id": first, "last_id": last, "has_more": has_more}))
                .into_response()
        }
        Err(e) => ledger_unavailable(e),
    }
}

/// `DELETE /v1/videos/{id}`.
pub async fn delete(
    AxState(app): AxState<Arc<App>>,
    caller: Caller,
    UrlPath(id): UrlPath<String>,
) -> Response {
    match visible(&app, &caller, &id).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found(&id),
        Err(e) => return ledger_unavailable(e),
    }
    match app.runner.cancel(&id).await {
        Ok(Cancelled::Done { job, money }) => Json(json!({
            "id": id, "object": "video.deleted", "deleted": true,
            "genroute": {"money": money, "job": public(&job)},
        }))
        .into_response(),
        Ok(Cancelled::AlreadyEnded(job)) => (
            StatusCode::CONFLICT,
            Json(json!({"error": {"field": "id", "message": format!("video `{id}` has ended ({}); its record is kept for the retention period", status_of(&job))}})),
        )
            .into_response(),
        Ok(Cancelled::NotFound) => not_found(&id),
        Err(e) => ledger_unavailable(e),
    }
}
