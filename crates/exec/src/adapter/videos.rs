//! The `/v1/videos` job API, as the servers that exist speak it: genroute's worker and
//! OpenAI-style gateways (`openai`), vLLM-Omni (`vllm-omni`) and SGLang Diffusion
//! (`sglang`). OpenAI shut its own video service down in September 2026; the shape lives on
//! in these servers, which is how CogVideoX and Mochi 1 are reached.
//!
//! Create `POST /v1/videos` → `{id, status}`; poll `GET /v1/videos/{id}` (honouring
//! `openai-poll-after-ms` and `Retry-After`) until the job ends; download
//! `GET /v1/videos/{id}/content`; cancel `DELETE /v1/videos/{id}`.
//!
//! | | `openai` (default) | `vllm-omni` | `sglang` |
//! |---|---|---|---|
//! | create body | multipart form | multipart form (form fields only) | JSON |
//! | `seconds` | text | text (`^[1-9]\d*$`) | integer |
//! | `model` | sent | not sent (the server runs one model and refuses any other name) | sent |
//! | statuses | `queued`, `in_progress`, `completed`, `failed`, `cancelled` | no `cancelled` | no `in_progress`; `cancelled` |
//! | failed job's GET | 200, `status: failed` | non-2xx, the job as the body | 200, `status: failed` |
//! | `/content` before done | 404 | 404; 422 when failed | 404 |
//! | DELETE | 200 `cancelled` (queued) or 202 (running, stops at the next step) | 200 `deleted`; 409 while cancelling | `deleted` (older releases do not stop the job) or `cancelled` |
//!
//! Statuses are read leniently in every dialect (`pending`, `processing`, `succeeded`,
//! `canceled` too), because gateways rename them. A failed job's error body is read whatever
//! the HTTP status. A create refused with 429 (a worker's full queue) made no job, so it is
//! sent again after `Retry-After`, a bounded number of times.
//!
//! Money on cancel: a DELETE releases the reservation only when the job was still `queued`
//! and the server says it is gone without having run; anything else may have rendered and is
//! kept in doubt.

use serde::Deserialize;

use super::http::{after_create, poll_hint, Backoff, Poller, Reply};
use super::{Cancel, Endpoint, Failure, FailureClass, Handle, JobSpec, Outcome, Success, Video};
use genroute_core::policy::api::{Dialect, Param};

/// A `/v1/videos` backend.
#[derive(Debug, Clone)]
pub struct Videos {
    /// Where and how to connect.
    pub endpoint: Endpoint,
    /// Shared HTTP client.
    pub client: reqwest::Client,
    /// Which server's dialect to speak.
    pub dialect: Dialect,
    /// Fields sent on every create call (`api.parameters`).
    pub parameters: Vec<(String, Param)>,
}

/// How many times a create refused with 429 is sent again.
const QUEUE_FULL_RETRIES: u32 = 3;
/// The longest `Retry-After` waited out on a create.
const QUEUE_FULL_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// How many 404s from `/content` after the job read `completed` end the download.
const CONTENT_NOT_READY_TRIES: u32 = 5;

#[derive(Debug, Deserialize)]
struct VideoJob {
    id: String,
    status: String,
    #[serde(default)]
    error: Option<JobError>,
}

#[derive(Debug, Default, Deserialize)]
struct JobError {
    /// vLLM-Omni writes an HTTP status number here, the others a string.
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
}

/// A job's state, read from any dialect's status names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

fn state(status: &str) -> State {
    match status.to_ascii_lowercase().as_str() {
        "queued" | "pending" | "in_queue" | "starting" => State::Queued,
        "completed" | "succeeded" | "success" => State::Completed,
        "failed" | "error" => State::Failed,
        "cancelled" | "canceled" | "deleted" => State::Cancelled,
        // `in_progress`, `processing`, `running`, `cancelling`, and names not known yet: the
        // job goes on, and the deadline bounds it.
        _ => State::Running,
    }
}

/// The size to ask for when `api.parameters` gives none: one per aspect ratio.
fn size(aspect_ratio: &str) -> &'static str {
    match aspect_ratio {
        "9:16" => "720x1280",
        "1:1" => "1024x1024",
        "4:3" => "960x720",
        "3:4" => "720x960",
        _ => "1280x720",
    }
}

/// Maps a `failed` job's error.
fn failed(e: Option<JobError>) -> Failure {
    let e = e.unwrap_or_default();
    let code = match e.code {
        Some(serde_json::Value::String(s)) => s,
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let message = e.message.unwrap_or_default();
    let lower = code.to_ascii_lowercase();
    let class = if lower.contains("moderation")
        || lower.contains("content_policy")
        || lower.contains("safety")
    {
        FailureClass::ContentRejected
    } else if lower.contains("invalid")
        || lower.contains("unsupported")
        || lower.contains("auth")
        || lower.contains("billing")
        || lower.contains("quota")
        || lower == "400"
        || lower == "422"
    {
        FailureClass::Terminal
    } else {
        FailureClass::Retryable
    };
    let code = if code.is_empty() {
        "error".into()
    } else {
        code
    };
    Failure::new(class, format!("job failed: {code}: {message}"))
}

impl Videos {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self
            .client
            .request(method, format!("{}{path}", self.endpoint.base_url));
        r.headers(self.auth())
    }

    fn auth(&self) -> reqwest::header::HeaderMap {
        let mut auth = reqwest::header::HeaderMap::new();
        if let Some(key) = &self.endpoint.key {
            let mut value =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                    .unwrap_or_else(|_| {
                        reqwest::header::HeaderValue::from_static("Bearer invalid")
                    });
            value.set_sensitive(true);
            auth.insert(reqwest::header::AUTHORIZATION, value);
        }
        auth
    }

    /// The create call's fields, in the dialect's types: what genroute fills from the
    /// request, then `api.parameters`.
    fn fields(&self, job: &JobSpec) -> Vec<(String, Param)> {
        let mut fields = Vec::new();
        if self.dialect != Dialect::VllmOmni {
            if let Some(m) = &job.model {
                fields.push(("model".to_string(), Param::Text(m.clone())));
            }
        }
        fields.push(("prompt".into(), Param::Text(job.prompt.clone())));
        let seconds = i64::from(job.duration_seconds.max(1));
        fields.push((
            "seconds".into(),
            match self.dialect {
                Dialect::Sglang => Param::Int(seconds),
                _ => Param::Text(seconds.to_string()),
            },
        ));
        let given = |name: &str| self.parameters.iter().any(|(n, _)| n == name);
        if !given("size") && !given("width") && !given("height") {
            fields.push(("size".into(), Param::Text(size(&job.aspect_ratio).into())));
        }
        if let Some(n) = &job.negative_prompt {
            fields.push(("negative_prompt".into(), Param::Text(n.clone())));
        }
        for (name, value) in &self.parameters {
            if name == "negative_prompt" && job.negative_prompt.is_some() {
                continue;
            }
            fields.push((name.clone(), value.clone()));
        }
        fields
    }

    fn create_request(&self, job: &JobSpec) -> reqwest::RequestBuilder {
        let fields = self.fields(job);
        let request = self.request(reqwest::Method::POST, "/v1/videos");
        match self.dialect {
            Dialect::Sglang => {
                let body: serde_json::Map<String, serde_json::Value> = fields
                    .iter()
                    .map(|(n, v)| (n.clone(), v.to_json()))
                    .collect();
                request.json(&body)
            }
            Dialect::OpenAi | Dialect::VllmOmni => {
                let form = fields
                    .into_iter()
                    .fold(reqwest::multipart::Form::new(), |form, (n, v)| {
                        form.text(n, v.to_string())
                    });
                request.multipart(form)
            }
        }
    }

    /// Sends the create call; the handle is the video id. A 429 (a full queue) made no job,
    /// so the call is sent again after the server's `Retry-After`, up to
    /// `QUEUE_FULL_RETRIES` times, while the wait and another call fit in `within` (a
    /// create cut off by the deadline would be in doubt; a refused one is not).
    pub async fn create(
        &self,
        job: &JobSpec,
        within: std::time::Duration,
    ) -> Result<Handle, Failure> {
        let timeout = self.endpoint.request_timeout;
        let started = tokio::time::Instant::now();
        let mut retries = 0;
        let reply = loop {
            let reply = super::http::send(self.create_request(job), timeout)
                .await
                .map_err(|t| t.create_failure("create"))?;
            if reply.status == reqwest::StatusCode::TOO_MANY_REQUESTS
                && retries < QUEUE_FULL_RETRIES
            {
                let wait = poll_hint(&reply.headers)
                    .unwrap_or(std::time::Duration::from_secs(1))
                    .min(QUEUE_FULL_MAX_WAIT);
                if started.elapsed() + wait + timeout < within {
                    retries += 1;
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            break reply;
        };
        let note = if retries > 0 {
            format!(" (after {retries} retries)")
        } else {
            String::new()
        };
        let created: VideoJob = super::http::read_created(&reply, "create", &note)?;
        if created.id.is_empty() {
            return Err(Failure::in_doubt(
                FailureClass::Retryable,
                "create: the reply has no video id (the job may exist)",
            ));
        }
        Ok(Handle { id: created.id })
    }

    /// Follows a created job to its video: polls, then downloads.
    pub async fn resume(&self, handle: &Handle, job: &JobSpec) -> Outcome {
        let timeout = self.endpoint.request_timeout;
        let mut poller = Poller::new(self.endpoint.poll_interval, self.endpoint.poll_max, None);
        let mut current = VideoJob {
            id: handle.id.clone(),
            status: "queued".into(),
            error: None,
        };
        loop {
            // Once created, the job exists: trouble reaching it or its video is in doubt
            // (a completed job was billed), unlike the job's own reported end.
            match state(&current.status) {
                State::Completed => {
                    return self.download(&current.id, job).await.map_err(after_create)
                }
                State::Failed => return Err(failed(current.error)),
                State::Cancelled => {
                    return Err(Failure::new(
                        FailureClass::Retryable,
                        format!("job {}: the server cancelled it", current.id),
                    ))
                }
                State::Queued | State::Running => {}
            }
            let path = format!("/v1/videos/{}", current.id);
            let request = self.request(reqwest::Method::GET, &path);
            // vLLM-Omni answers a failed job's GET with an error status and the job as the
            // body: read it as the job.
            let polled = poller
                .poll_reading_errors::<VideoJob>(request, timeout, "poll")
                .await;
            if let Some(next) = polled.map_err(after_create)? {
                current = next;
            }
        }
    }

    /// Cancels a job with `DELETE /v1/videos/{id}`. Money may be released only when the job
    /// had not started (`queued`) and the server says it is gone without running.
    pub async fn cancel(&self, handle: &Handle) -> Cancel {
        let timeout = self.endpoint.request_timeout;
        let path = format!("/v1/videos/{}", handle.id);
        let before = super::http::send(self.request(reqwest::Method::GET, &path), timeout)
            .await
            .ok()
            .and_then(|r| serde_json::from_slice::<VideoJob>(&r.body).ok())
            .map(|j| state(&j.status));
        let reply =
            match super::http::send(self.request(reqwest::Method::DELETE, &path), timeout).await {
                Ok(r) => r,
                Err(t) => return Cancel::Failed(t.failure("DELETE").message),
            };
        #[derive(Deserialize)]
        struct Deleted {
            #[serde(default)]
            status: Option<String>,
            #[serde(default)]
            deleted: Option<bool>,
        }
        let after = serde_json::from_slice::<Deleted>(&reply.body).ok();
        let status = after
            .as_ref()
            .and_then(|d| d.status.as_deref())
            .map(str::to_ascii_lowercase);
        match reply.status.as_u16() {
            // 202: accepted, the job stops at its next step; 409: vLLM-Omni still cancelling.
            202 | 409 => Cancel::MaybeProduced,
            200..=299 => {
                let gone_unrun = match (self.dialect, status.as_deref()) {
                    // SGLang's `deleted` forgets the record; older releases leave the job
                    // running on the GPU. Only `cancelled` says it stopped.
                    (Dialect::Sglang, Some(s)) => s == "cancelled" || s == "canceled",
                    (Dialect::Sglang, None) => false,
                    (_, Some(s)) => state(s) == State::Cancelled,
                    // vLLM-Omni's `{deleted: true}` after cancelling its task.
                    (_, None) => after.as_ref().and_then(|d| d.deleted) == Some(true),
                };
                if before == Some(State::Queued) && gone_unrun {
                    Cancel::NothingProduced
                } else {
                    Cancel::MaybeProduced
                }
            }
            code => Cancel::Failed(format!("DELETE answered HTTP {code}")),
        }
    }

    async fn download(&self, id: &str, job: &JobSpec) -> Outcome {
        let url = format!("{}/v1/videos/{id}/content", self.endpoint.base_url);
        let auth = self.auth();
        let mut backoff = Backoff::new(self.endpoint.poll_interval, self.endpoint.poll_max);
        let mut not_ready = 0;
        loop {
            match super::http::get_following(
                &self.client,
                &url,
                &auth,
                self.endpoint.request_timeout,
            )
            .await
            {
                Ok(r) if r.status.is_success() && r.body.is_empty() => {
                    return Err(Failure::new(
                        FailureClass::NoVideo,
                        "the job completed but its content is empty",
                    ));
                }
                Ok(r) if r.status.is_success() => {
                    let mime = content_type(&r).unwrap_or_else(|| "video/mp4".into());
                    return Ok(Success {
                        video: Video::Bytes { data: r.body, mime },
                        model: job.model.clone(),
                        quality: None,
                        simulated_seconds: None,
                    });
                }
                // The servers answer 404 until the file is written; a job that read
                // `completed` gets a few tries before its video counts as lost.
                Ok(r)
                    if r.status == reqwest::StatusCode::NOT_FOUND
                        && not_ready + 1 < CONTENT_NOT_READY_TRIES =>
                {
                    not_ready += 1;
                    tokio::time::sleep(backoff.next_delay(poll_hint(&r.headers))).await
                }
                Ok(r) if is_transient(&r) => {
                    tokio::time::sleep(backoff.next_delay(poll_hint(&r.headers))).await
                }
                Ok(r) => return Err(r.status_failure("download")),
                Err(_) => tokio::time::sleep(backoff.next_delay(None)).await,
            }
        }
    }
}

/// 408, 429 and 5xx during polling or downloading are waited out.
pub(crate) fn is_transient(r: &Reply) -> bool {
    super::http::classify_status(r.status) == FailureClass::Retryable
}

pub(crate) fn content_type(r: &Reply) -> Option<String> {
    r.headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_of_every_dialect() {
        for (s, want) in [
            ("queued", State::Queued),
            ("pending", State::Queued),
            ("in_progress", State::Running),
            ("processing", State::Running),
            ("cancelling", State::Running),
            ("something_new", State::Running),
            ("completed", State::Completed),
            ("SUCCEEDED", State::Completed),
            ("failed", State::Failed),
            ("cancelled", State::Cancelled),
            ("canceled", State::Cancelled),
            ("deleted", State::Cancelled),
        ] {
            assert_eq!(state(s), want, "{s}");
        }
    }

    #[test]
    fn vllm_error_codes_are_numbers() {
        let e: JobError =
            serde_json::from_str(r#"{"code": 500, "message": "CUDA out of memory"}"#).unwrap();
        let f = failed(Some(e));
        assert_eq!(f.class, FailureClass::Retryable);
        assert_eq!(f.message, "job failed: 500: CUDA out of memory");
        let e: JobError = serde_json::from_str(r#"{"code": 400, "message": "bad size"}"#).unwrap();
        assert_eq!(failed(Some(e)).class, FailureClass::Terminal);
        assert_eq!(failed(None).message, "job failed: error: ");
    }
}
