//! Veo on Vertex AI.
//!
//! Create `POST {base}/v1/projects/{project}/locations/{location}/publishers/google/models/
//! {model}:predictLongRunning` with an OAuth bearer token; it returns an operation `name`.
//! Poll with `POST …/{model}:fetchPredictOperation {"operationName": name}`: a plain GET of
//! the operation answers 400 "The Operation ID must be a Long", so this adapter never sends
//! one. A finished operation carries `response.videos[]` (`gcsUri`, or `bytesBase64Encoded`
//! when no storage URI was asked for) or an `error` (a `google.rpc.Status`).
//!
//! | answer | class | in doubt |
//! |---|---|---|
//! | create: HTTP 408, 429 (`RESOURCE_EXHAUSTED`), 500, 503 | retryable | no: the server answered |
//! | create: HTTP 502, 504 (a gateway lost the answer) | retryable | yes |
//! | create: HTTP 400, 401, 403, 404, … | terminal | no |
//! | create: reply lost (timeout, reset) or unreadable, or without an operation `name` | retryable | yes |
//! | poll: transport error, 408, 429, 5xx, unreadable body | polled again | — |
//! | poll: any other error status | that status's class | yes: the job exists |
//! | `error` whose message is a documented safety refusal | content rejected | no |
//! | `error.code` 4 (DEADLINE_EXCEEDED), 8 (RESOURCE_EXHAUSTED), 10 (ABORTED), 13 (INTERNAL), 14 (UNAVAILABLE) | retryable | no |
//! | `error.code` 3 (INVALID_ARGUMENT) and any other code | terminal | no |
//! | no videos, and `raiMediaFilteredCount > 0` or `raiMediaFilteredReasons` | content rejected | no |
//! | no videos and no filtering | no video | no |
//! | a video whose bytes are not base64 | no video | yes: it was generated |
//!
//! The safety signal is the one Google documents for Veo: a refusal names Responsible AI,
//! the usage guidelines or policies, or carries "Support codes"
//! (<https://cloud.google.com/vertex-ai/generative-ai/docs/video/responsible-ai-and-usage-guidelines>).
//! Whole words are matched, so "constraint" or "training" never reads as "rai".

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use serde_json::{json, Value};

use super::http::{after_create, create_json, snippet, Poller};
use super::{Endpoint, Failure, FailureClass, Handle, JobSpec, Outcome, Success, Video};

/// A Vertex AI Veo backend.
#[derive(Debug, Clone)]
pub struct Vertex {
    /// Where and how to connect (the key is the OAuth access token).
    pub endpoint: Endpoint,
    /// Shared HTTP client.
    pub client: reqwest::Client,
    /// Google Cloud project.
    pub project: String,
    /// Region, e.g. us-central1.
    pub location: String,
}

/// The Veo request body shared by Vertex AI and the Gemini API: no `storageUri`, `seed` or
/// `generateAudio` (the Gemini API refuses them), so Vertex AI answers with base64 bytes
/// unless the model writes to a bucket by itself.
pub(crate) fn veo_body(job: &JobSpec) -> Value {
    let mut parameters = json!({
        "aspectRatio": if job.aspect_ratio == "9:16" { "9:16" } else { "16:9" },
        "durationSeconds": job.duration_seconds.clamp(4, 8),
        "sampleCount": 1,
    });
    if let Some(n) = &job.negative_prompt {
        parameters["negativePrompt"] = json!(n);
    }
    json!({"instances": [{"prompt": job.prompt}], "parameters": parameters})
}

/// The job's model, checked to be a plain model id (it becomes part of a URL path).
pub(crate) fn model_of(job: &JobSpec) -> Result<&str, Failure> {
    let Some(model) = job.model.as_deref() else {
        return Err(Failure::new(
            FailureClass::Terminal,
            "no model: list `models` for this backend or set `api.model`",
        ));
    };
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if model.is_empty() || !model.chars().all(plain) {
        return Err(Failure::new(
            FailureClass::Terminal,
            format!(
                "model id {:?} is not a plain model id",
                snippet(model.as_bytes())
            ),
        ));
    }
    Ok(model)
}

/// Whether an operation's error message is a documented safety refusal.
pub(crate) fn is_safety_refusal(message: &str) -> bool {
    let lower = message.to_lowercase();
    const PHRASES: &[&str] = &[
        "responsible ai",
        "usage guidelines",
        "usage policies",
        "violate our policies",
        "might violate",
        "couldn't be submitted",
        "could not be submitted",
        "support codes",
        "safety filter",
        "content filter",
    ];
    PHRASES.iter().any(|p| lower.contains(p))
        || lower
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| matches!(w, "rai" | "safety" | "unsafe"))
}

/// Classes an operation's `error` object (a `google.rpc.Status`).
pub(crate) fn operation_error(error: &Value) -> Failure {
    let code = error["code"].as_i64();
    let message = error["message"].as_str().unwrap_or("");
    let class = if is_safety_refusal(message) {
        FailureClass::ContentRejected
    } else {
        match code {
            Some(4 | 8 | 10 | 13 | 14) => FailureClass::Retryable,
            _ => FailureClass::Terminal,
        }
    };
    let code = code.map_or_else(|| "none".to_string(), |c| c.to_string());
    Failure::new(
        class,
        format!(
            "the operation failed: code {code}: {}",
            snippet(message.as_bytes())
        ),
    )
}

/// A finished job's filtering, when it reports any: `raiMediaFilteredCount > 0` or a
/// non-empty `raiMediaFilteredReasons`.
pub(crate) fn filtered(response: &Value) -> Option<Failure> {
    let count = response["raiMediaFilteredCount"].as_i64().unwrap_or(0);
    let reasons = response["raiMediaFilteredReasons"]
        .as_array()
        .filter(|r| !r.is_empty());
    if count <= 0 && reasons.is_none() {
        return None;
    }
    let reasons = reasons
        .map(|r| snippet(Value::Array(r.clone()).to_string().as_bytes()))
        .unwrap_or_else(|| "no reason given".into());
    Some(Failure::new(
        FailureClass::ContentRejected,
        format!("{count} video(s) filtered by responsible-AI checks: {reasons}"),
    ))
}

impl Vertex {
    fn model_url(&self, model: &str, verb: &str) -> String {
        format!(
            "{}/v1/projects/{}/locations/{}/publishers/google/models/{model}:{verb}",
            self.endpoint.base_url, self.project, self.location
        )
    }

    /// The bearer header; a token that is not a valid header value is a configuration error.
    fn auth(&self) -> Result<HeaderMap, Failure> {
        let mut headers = HeaderMap::new();
        if let Some(key) = &self.endpoint.key {
            let mut v =
                HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| {
                    Failure::new(
                        FailureClass::Terminal,
                        "the access token is not a valid HTTP header value",
                    )
                })?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        Ok(headers)
    }

    /// Sends the create call; the handle is the operation name.
    pub async fn create(&self, job: &JobSpec) -> Result<Handle, Failure> {
        let model = model_of(job)?;
        let auth = self.auth()?;
        let timeout = self.endpoint.request_timeout;

        // Create. `create_json` marks a lost or unreadable reply as in doubt.
        let create = self
            .client
            .post(self.model_url(model, "predictLongRunning"))
            .headers(auth.clone())
            .json(&veo_body(job));
        let (created, _): (Value, _) = create_json(create, timeout, "predictLongRunning").await?;
        let name = match created["name"].as_str() {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => {
                return Err(Failure::in_doubt(
                    FailureClass::Retryable,
                    format!(
                    "predictLongRunning: no operation name in the reply (the job may exist): {}",
                    snippet(created.to_string().as_bytes())
                ),
                ))
            }
        };
        Ok(Handle { id: name })
    }

    /// Follows a created operation to its video.
    pub async fn resume(&self, handle: &Handle, job: &JobSpec) -> Outcome {
        let model = model_of(job)?;
        let auth = self.auth()?;
        let timeout = self.endpoint.request_timeout;
        let name = &handle.id;
        // Poll, always with fetchPredictOperation: a GET of the operation is refused.
        let mut poller = Poller::new(self.endpoint.poll_interval, self.endpoint.poll_max, None);
        let poll = json!({"operationName": name});
        loop {
            let request = self
                .client
                .post(self.model_url(model, "fetchPredictOperation"))
                .headers(auth.clone())
                .json(&poll);
            let op = match poller
                .poll::<Value>(request, timeout, "fetchPredictOperation")
                .await
            {
                Ok(Some(op)) => op,
                Ok(None) => continue,
                Err(f) => return Err(after_create(f)),
            };
            if op["error"].is_object() {
                return Err(operation_error(&op["error"]));
            }
            if op["done"].as_bool() == Some(true) {
                return finished(&op["response"], model);
            }
        }
    }
}

/// A finished operation's `response`.
fn finished(response: &Value, model: &str) -> Outcome {
    let success = |video| {
        Ok(Success {
            video,
            model: Some(model.to_string()),
            quality: None,
            simulated_seconds: None,
        })
    };
    let videos = response["videos"].as_array().map_or(&[][..], Vec::as_slice);
    for v in videos {
        if let Some(uri) = v["gcsUri"].as_str().filter(|u| !u.is_empty()) {
            return success(Video::Uri(uri.to_string()));
        }
        if let Some(b64) = v["bytesBase64Encoded"].as_str() {
            return match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
                Ok(data) if !data.is_empty() => {
                    let mime = v["mimeType"].as_str().unwrap_or("video/mp4").to_string();
                    success(Video::Bytes { data, mime })
                }
                _ => Err(Failure::in_doubt(
                    FailureClass::NoVideo,
                    "the video's bytesBase64Encoded is empty or not base64",
                )),
            };
        }
    }
    if let Some(f) = filtered(response) {
        return Err(f);
    }
    Err(Failure::new(
        FailureClass::NoVideo,
        "the operation finished without a video",
    ))
}
