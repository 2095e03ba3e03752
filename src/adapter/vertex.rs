//! Veo on Vertex AI.
//!
//! Create `POST {base}/v1/projects/{project}/locations/{location}/publishers/google/models/
//! {model}:predictLongRunning` with an OAuth bearer token; it returns an operation `name`.
//! Poll with `POST …/{model}:fetchPredictOperation {"operationName": name}` (a plain GET of
//! the operation answers 400 "The Operation ID must be a Long"). A finished operation carries
//! `response.videos[]` (`gcsUri`, or `bytesBase64Encoded` without a storage URI) or an
//! `error`. `raiMediaFilteredCount > 0` with no videos means moderation filtered them.
//!
//! | answer | class |
//! |---|---|
//! | HTTP 429 `RESOURCE_EXHAUSTED`, 5xx | retryable |
//! | HTTP 400, 401, 403, 404 | terminal |
//! | `error.code` 3 (INVALID_ARGUMENT), 7, 9, 16 | terminal |
//! | `error.code` 4, 8 (RESOURCE_EXHAUSTED), 10, 13, 14 | retryable |
//! | `error` mentioning safety, RAI or filtering | content rejected |
//! | `raiMediaFilteredCount > 0` and no videos | content rejected |
//! | done with no videos | no video |

use base64::Engine as _;
use serde_json::{json, Value};

use super::http::{create_json, Poller};
use super::{Endpoint, Failure, FailureClass, JobSpec, Outcome, Success, Video};

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

/// The Veo request body shared by Vertex AI and the Gemini API.
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

/// Classes an operation's `error` object.
pub(crate) fn operation_error(error: &Value) -> Failure {
    let code = error["code"].as_i64().unwrap_or(0);
    let message = error["message"].as_str().unwrap_or("").to_string();
    let lower = message.to_ascii_lowercase();
    let class = if ["safety", "responsible ai", "rai", "filtered", "blocked"]
        .iter()
        .any(|w| lower.contains(w))
    {
        FailureClass::ContentRejected
    } else {
        match code {
            3 | 7 | 9 | 16 => FailureClass::Terminal,
            _ => FailureClass::Retryable,
        }
    };
    Failure::new(class, format!("operation failed: code {code}: {message}"))
}

impl Vertex {
    fn model_url(&self, model: &str, verb: &str) -> String {
        format!(
            "{}/v1/projects/{}/locations/{}/publishers/google/models/{model}:{verb}",
            self.endpoint.base_url, self.project, self.location
        )
    }

    fn post(&self, url: String, body: &Value) -> reqwest::RequestBuilder {
        let mut r = self.client.post(url).json(body);
        if let Some(key) = &self.endpoint.key {
            if let Ok(mut v) =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.expose()))
            {
                v.set_sensitive(true);
                r = r.header(reqwest::header::AUTHORIZATION, v);
            }
        }
        r
    }

    /// Runs one job.
    pub async fn generate(&self, job: &JobSpec) -> Outcome {
        let Some(model) = job.model.as_deref() else {
            return Err(Failure::new(
                FailureClass::Terminal,
                "no model: list `models` for this backend or set `api.model`",
            ));
        };
        let timeout = self.endpoint.request_timeout;
        let create = self.post(self.model_url(model, "predictLongRunning"), &veo_body(job));
        let (created, _): (Value, _) = create_json(create, timeout, "predictLongRunning").await?;
        let Some(name) = created["name"].as_str().map(str::to_string) else {
            return Err(Failure::in_doubt(
                FailureClass::Retryable,
                "predictLongRunning: the reply has no operation name",
            ));
        };
        let mut poller = Poller::new(self.endpoint.poll_interval, self.endpoint.poll_max, None);
        let poll = json!({"operationName": name});
        loop {
            let request = self.post(self.model_url(model, "fetchPredictOperation"), &poll);
            let Some(op) = poller
                .poll::<Value>(request, timeout, "fetchPredictOperation")
                .await?
            else {
                continue;
            };
            if op["done"].as_bool() != Some(true) {
                continue;
            }
            if op["error"].is_object() {
                return Err(operation_error(&op["error"]));
            }
            return finished(&op["response"], model);
        }
    }
}

fn finished(response: &Value, model: &str) -> Outcome {
    let videos = response["videos"].as_array().cloned().unwrap_or_default();
    let success = |video| {
        Ok(Success {
            video,
            model: Some(model.to_string()),
            quality: None,
            simulated_seconds: None,
        })
    };
    for v in &videos {
        if let Some(uri) = v["gcsUri"].as_str() {
            return success(Video::Uri(uri.to_string()));
        }
        if let Some(b64) = v["bytesBase64Encoded"].as_str() {
            return match base64::engine::general_purpose::STANDARD.decode(b64) {
                Ok(data) if !data.is_empty() => {
                    let mime = v["mimeType"].as_str().unwrap_or("video/mp4").to_string();
                    success(Video::Bytes { data, mime })
                }
                _ => Err(Failure::new(
                    FailureClass::NoVideo,
                    "the video's bytesBase64Encoded is empty or not base64",
                )),
            };
        }
    }
    if response["raiMediaFilteredCount"].as_i64().unwrap_or(0) > 0 {
        let reasons = response["raiMediaFilteredReasons"].to_string();
        return Err(Failure::new(
            FailureClass::ContentRejected,
            format!("filtered by responsible-AI checks: {reasons}"),
        ));
    }
    Err(Failure::new(
        FailureClass::NoVideo,
        "the operation finished without a video",
    ))
}
