//! Veo on the Gemini API.
//!
//! Create `POST {base}/v1beta/models/{model}:predictLongRunning` with the key in the
//! `x-goog-api-key` header (never in the URL); poll `GET {base}/v1beta/{operation name}`;
//! the result is at `response.generateVideoResponse.generatedSamples[].video.uri`, which is
//! downloaded with the key header and answers with a redirect that is followed (to another
//! host without the key). Errors and filtering are classed as for Vertex AI.

use serde_json::Value;

use super::http::{create_json, get_following, poll_hint, Backoff, Poller};
use super::openai::{content_type, is_transient};
use super::vertex::{operation_error, veo_body};
use super::{Endpoint, Failure, FailureClass, JobSpec, Outcome, Success, Video};

/// A Gemini API Veo backend.
#[derive(Debug, Clone)]
pub struct Gemini {
    /// Where and how to connect.
    pub endpoint: Endpoint,
    /// Shared HTTP client.
    pub client: reqwest::Client,
}

impl Gemini {
    fn auth(&self) -> reqwest::header::HeaderMap {
        let mut h = reqwest::header::HeaderMap::new();
        if let Some(key) = &self.endpoint.key {
            if let Ok(mut v) = reqwest::header::HeaderValue::from_str(key.expose()) {
                v.set_sensitive(true);
                h.insert("x-goog-api-key", v);
            }
        }
        h
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
        let url = format!(
            "{}/v1beta/models/{model}:predictLongRunning",
            self.endpoint.base_url
        );
        let create = self
            .client
            .post(url)
            .headers(self.auth())
            .json(&veo_body(job));
        let (created, _): (Value, _) = create_json(create, timeout, "predictLongRunning").await?;
        let Some(name) = created["name"].as_str().map(str::to_string) else {
            return Err(Failure::in_doubt(
                FailureClass::Retryable,
                "predictLongRunning: the reply has no operation name",
            ));
        };
        let mut poller = Poller::new(self.endpoint.poll_interval, self.endpoint.poll_max, None);
        loop {
            let url = format!(
                "{}/v1beta/{}",
                self.endpoint.base_url,
                name.trim_start_matches('/')
            );
            let request = self.client.get(url).headers(self.auth());
            let Some(op) = poller.poll::<Value>(request, timeout, "operation").await? else {
                continue;
            };
            if op["done"].as_bool() != Some(true) {
                continue;
            }
            if op["error"].is_object() {
                return Err(operation_error(&op["error"]));
            }
            let response = &op["response"]["generateVideoResponse"];
            let uri = response["generatedSamples"]
                .as_array()
                .and_then(|s| s.iter().find_map(|x| x["video"]["uri"].as_str()))
                .map(str::to_string);
            return match uri {
                Some(uri) => self.download(&uri, model).await,
                None if response["raiMediaFilteredCount"].as_i64().unwrap_or(0) > 0 => {
                    Err(Failure::new(
                        FailureClass::ContentRejected,
                        format!(
                            "filtered by responsible-AI checks: {}",
                            response["raiMediaFilteredReasons"]
                        ),
                    ))
                }
                None => Err(Failure::new(
                    FailureClass::NoVideo,
                    "the operation finished without a video",
                )),
            };
        }
    }

    async fn download(&self, uri: &str, model: &str) -> Outcome {
        let mut backoff = Backoff::new(self.endpoint.poll_interval, self.endpoint.poll_max);
        loop {
            match get_following(
                &self.client,
                uri,
                &self.auth(),
                self.endpoint.request_timeout,
            )
            .await
            {
                Ok(r) if r.status.is_success() && !r.body.is_empty() => {
                    let mime = content_type(&r).unwrap_or_else(|| "video/mp4".into());
                    return Ok(Success {
                        video: Video::Bytes { data: r.body, mime },
                        model: Some(model.to_string()),
                        quality: None,
                        simulated_seconds: None,
                    });
                }
                Ok(r) if r.status.is_success() => {
                    return Err(Failure::new(
                        FailureClass::NoVideo,
                        "the video download is empty",
                    ))
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
