//! PixVerse OpenAPI v2: text-to-video.
//!
//! Create `POST /openapi/v2/video/text/generate` → `Resp.video_id`; poll
//! `GET /openapi/v2/video/result/{id}` until `Resp.status` is 1 (done, `Resp.url`), 7
//! (moderation) or 8 (failed); 5 means still generating. Every call carries `API-KEY` and a
//! fresh `Ai-trace-id` (a reused id returns an old result or a stuck job). Errors arrive with
//! HTTP 200 and a non-zero `ErrCode`:
//!
//! | ErrCode | meaning | class |
//! |---|---|---|
//! | 500044 | concurrency limit | retryable |
//! | 500069 | overloaded | retryable |
//! | 500090 | insufficient balance | terminal |
//! | 500054, 500063 | moderation | content rejected |
//! | 10001–10005 | authentication | terminal |
//! | 400000–400999 | bad parameters | terminal |
//! | other | — | terminal |

use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{after_create, create_json, Poller};
use super::{Endpoint, Failure, FailureClass, Handle, JobSpec, Outcome, Success, Video};

/// A PixVerse backend.
#[derive(Debug, Clone)]
pub struct PixVerse {
    /// Where and how to connect.
    pub endpoint: Endpoint,
    /// Shared HTTP client.
    pub client: reqwest::Client,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "ErrCode")]
    err_code: i64,
    #[serde(rename = "ErrMsg", default)]
    err_msg: String,
    #[serde(rename = "Resp", default)]
    resp: Value,
}

/// The class of a non-zero ErrCode.
pub fn classify_err_code(code: i64) -> FailureClass {
    match code {
        500044 | 500069 => FailureClass::Retryable,
        500054 | 500063 => FailureClass::ContentRejected,
        _ => FailureClass::Terminal,
    }
}

fn err_failure(e: &Envelope, what: &str) -> Failure {
    Failure::new(
        classify_err_code(e.err_code),
        format!("{what}: ErrCode {}: {}", e.err_code, e.err_msg),
    )
}

impl PixVerse {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self
            .client
            .request(method, format!("{}{path}", self.endpoint.base_url))
            .header("Ai-trace-id", uuid::Uuid::new_v4().to_string());
        if let Some(key) = &self.endpoint.key {
            if let Ok(mut v) = reqwest::header::HeaderValue::from_str(key.expose()) {
                v.set_sensitive(true);
                r = r.header("API-KEY", v);
            }
        }
        r
    }

    /// Sends the create call; the handle is the video id.
    pub async fn create(&self, job: &JobSpec) -> Result<Handle, Failure> {
        let mut body = json!({
            "prompt": job.prompt,
            "model": job.model.as_deref().unwrap_or("v5"),
            "duration": if job.duration_seconds <= 6 { 5 } else { 8 },
            "quality": "540p",
            "aspect_ratio": job.aspect_ratio,
        });
        if let Some(n) = &job.negative_prompt {
            body["negative_prompt"] = json!(n);
        }
        let timeout = self.endpoint.request_timeout;
        let create = self
            .request(reqwest::Method::POST, "/openapi/v2/video/text/generate")
            .json(&body);
        let (created, _): (Envelope, _) = create_json(create, timeout, "create").await?;
        if created.err_code != 0 {
            return Err(err_failure(&created, "create"));
        }
        let id = match &created.resp["video_id"] {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => {
                return Err(Failure::in_doubt(
                    FailureClass::Retryable,
                    "create: the reply has no Resp.video_id",
                ))
            }
        };
        Ok(Handle { id })
    }

    /// Follows a created video to its result.
    pub async fn resume(&self, handle: &Handle, job: &JobSpec) -> Outcome {
        let timeout = self.endpoint.request_timeout;
        let id = &handle.id;
        let mut poller = Poller::new(self.endpoint.poll_interval, self.endpoint.poll_max, None);
        loop {
            let path = format!("/openapi/v2/video/result/{id}");
            let request = self.request(reqwest::Method::GET, &path);
            // Once created, the job exists: failing to follow it is in doubt, and so is a
            // finished job without a video (it was billed); its own failures (7, 8) are not.
            let polled = poller.poll::<Envelope>(request, timeout, "poll").await;
            let Some(result) = polled.map_err(after_create)? else {
                continue;
            };
            if result.err_code != 0 {
                match classify_err_code(result.err_code) {
                    FailureClass::Retryable => continue,
                    _ => return Err(after_create(err_failure(&result, "poll"))),
                }
            }
            match result.resp["status"].as_i64() {
                Some(1) => {
                    return match result.resp["url"].as_str().filter(|u| !u.is_empty()) {
                        Some(url) => Ok(Success {
                            video: Video::Uri(url.to_string()),
                            model: job.model.clone().or_else(|| Some("v5".into())),
                            quality: None,
                            simulated_seconds: None,
                        }),
                        None => Err(after_create(Failure::new(
                            FailureClass::NoVideo,
                            "status 1 (done) without a url",
                        ))),
                    };
                }
                Some(7) => {
                    return Err(Failure::new(
                        FailureClass::ContentRejected,
                        "status 7: moderation failed",
                    ))
                }
                Some(8) => {
                    return Err(Failure::new(
                        FailureClass::Retryable,
                        "status 8: generation failed",
                    ))
                }
                _ => {}
            }
        }
    }
}
