//! The OpenAI-style `/v1/videos` API: Sora, and the shape self-hosted CogVideoX and Mochi 1
//! servers are wrapped in (neither ships an HTTP server of its own).
//!
//! Create `POST /v1/videos` → `{id, status}`; poll `GET /v1/videos/{id}` (honouring
//! `openai-poll-after-ms`) until `completed` or `failed`; download
//! `GET /v1/videos/{id}/content`.

use serde::Deserialize;
use serde_json::json;

use super::http::{after_create, create_json, poll_hint, Backoff, Poller, Reply};
use super::{Cancel, Endpoint, Failure, FailureClass, Handle, JobSpec, Outcome, Success, Video};

/// An OpenAI-style video backend.
#[derive(Debug, Clone)]
pub struct OpenAi {
    /// Where and how to connect.
    pub endpoint: Endpoint,
    /// Shared HTTP client.
    pub client: reqwest::Client,
}

#[derive(Debug, Deserialize)]
struct VideoJob {
    id: String,
    status: String,
    #[serde(default)]
    error: Option<JobError>,
}

#[derive(Debug, Deserialize)]
struct JobError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The allowed lengths are 4, 8 and 12 seconds; the nearest is asked for.
fn seconds(duration: u32) -> &'static str {
    match duration {
        0..=5 => "4",
        6..=9 => "8",
        _ => "12",
    }
}

fn size(aspect_ratio: &str) -> &'static str {
    match aspect_ratio {
        "9:16" => "720x1280",
        "1:1" => "1024x1024",
        _ => "1280x720",
    }
}

/// Maps a `failed` job's error code.
fn failed(e: Option<JobError>) -> Failure {
    let (code, message) = e.map_or((String::new(), String::new()), |e| {
        (e.code.unwrap_or_default(), e.message.unwrap_or_default())
    });
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
    {
        FailureClass::Terminal
    } else {
        FailureClass::Retryable
    };
    Failure::new(class, format!("job failed: {code}: {message}"))
}

impl OpenAi {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self
            .client
            .request(method, format!("{}{path}", self.endpoint.base_url));
        if let Some(key) = &self.endpoint.key {
            let mut value =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                    .unwrap_or_else(|_| {
                        reqwest::header::HeaderValue::from_static("Bearer invalid")
                    });
            value.set_sensitive(true);
            r = r.header(reqwest::header::AUTHORIZATION, value);
        }
        r
    }

    /// Sends the create call; the handle is the video id.
    pub async fn create(&self, job: &JobSpec) -> Result<Handle, Failure> {
        let body = json!({
            "model": job.model.as_deref().unwrap_or("sora-2"),
            "prompt": job.prompt,
            "seconds": seconds(job.duration_seconds),
            "size": size(&job.aspect_ratio),
        });
        let timeout = self.endpoint.request_timeout;
        let create = self
            .request(reqwest::Method::POST, "/v1/videos")
            .json(&body);
        let (created, _): (VideoJob, _) = create_json(create, timeout, "create").await?;
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
            // (a completed job was billed), unlike the job's own reported failure.
            match current.status.as_str() {
                "completed" => return self.download(&current.id, job).await.map_err(after_create),
                "failed" => return Err(failed(current.error)),
                _ => {}
            }
            let path = format!("/v1/videos/{}", current.id);
            let request = self.request(reqwest::Method::GET, &path);
            let polled = poller.poll::<VideoJob>(request, timeout, "poll").await;
            if let Some(next) = polled.map_err(after_create)? {
                current = next;
            }
        }
    }

    /// Cancels a job with `DELETE /v1/videos/{id}`. Money may be released only when the job
    /// had not started (`queued`) and the provider took the cancel.
    pub async fn cancel(&self, handle: &Handle) -> Cancel {
        let timeout = self.endpoint.request_timeout;
        let path = format!("/v1/videos/{}", handle.id);
        let before = super::http::send(self.request(reqwest::Method::GET, &path), timeout)
            .await
            .ok()
            .and_then(|r| serde_json::from_slice::<VideoJob>(&r.body).ok())
            .map(|j| j.status);
        match super::http::send(self.request(reqwest::Method::DELETE, &path), timeout).await {
            Ok(r) if r.status.is_success() => match before.as_deref() {
                Some("queued") => Cancel::NothingProduced,
                _ => Cancel::MaybeProduced,
            },
            Ok(r) if r.status == reqwest::StatusCode::CONFLICT => Cancel::MaybeProduced,
            Ok(r) => Cancel::Failed(format!("DELETE answered HTTP {}", r.status.as_u16())),
            Err(t) => Cancel::Failed(t.failure("DELETE").message),
        }
    }

    async fn download(&self, id: &str, job: &JobSpec) -> Outcome {
        let url = format!("{}/v1/videos/{id}/content", self.endpoint.base_url);
        let mut auth = reqwest::header::HeaderMap::new();
        if let Some(key) = &self.endpoint.key {
            if let Ok(mut v) =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.expose()))
            {
                v.set_sensitive(true);
                auth.insert(reqwest::header::AUTHORIZATION, v);
            }
        }
        let mut backoff = Backoff::new(self.endpoint.poll_interval, self.endpoint.poll_max);
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
