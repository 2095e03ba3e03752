//! Veo on the Gemini API.
//!
//! Create `POST {base}/v1beta/models/{model}:predictLongRunning` with the key in the
//! `x-goog-api-key` header (never in the URL); poll `GET {base}/v1beta/{operation name}`;
//! the result is at `response.generateVideoResponse.generatedSamples[].video.uri`, which is
//! downloaded with the key header and answers with a redirect. Redirects are followed by
//! [`get_following`], which sends the key only to the origin it was first sent to; and the
//! key goes to the video's URI only when that URI is on the API's own origin, so a reply can
//! never steer the key to another host.
//!
//! Errors, filtering (`raiMediaFilteredCount`, `raiMediaFilteredReasons` in
//! `generateVideoResponse`) and in-doubt failures are classed as for Vertex AI (see
//! [`super::vertex`]). A download that fails for good after the video was generated is in
//! doubt: the video was made, and billed.

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::Url;
use serde_json::Value;

use super::http::{
    after_create, classify_status, create_json, get_following, origin, poll_hint, snippet, Backoff,
    Poller,
};
use super::vertex::{filtered, model_of, operation_error, veo_body};
use super::{Endpoint, Failure, FailureClass, Handle, JobSpec, Outcome, Success, Video};

/// A Gemini API Veo backend.
#[derive(Debug, Clone)]
pub struct Gemini {
    /// Where and how to connect.
    pub endpoint: Endpoint,
    /// Shared HTTP client.
    pub client: reqwest::Client,
}

impl Gemini {
    /// The key header; a key that is not a valid header value is a configuration error.
    fn auth(&self) -> Result<HeaderMap, Failure> {
        let mut headers = HeaderMap::new();
        if let Some(key) = &self.endpoint.key {
            let mut v = HeaderValue::from_str(key.expose()).map_err(|_| {
                Failure::new(
                    FailureClass::Terminal,
                    "the API key is not a valid HTTP header value",
                )
            })?;
            v.set_sensitive(true);
            headers.insert("x-goog-api-key", v);
        }
        Ok(headers)
    }

    /// Sends the create call; the handle is the operation name.
    pub async fn create(&self, job: &JobSpec) -> Result<Handle, Failure> {
        let model = model_of(job)?;
        let auth = self.auth()?;
        let timeout = self.endpoint.request_timeout;
        let base = &self.endpoint.base_url;

        // Create. `create_json` marks a lost or unreadable reply as in doubt.
        let create = self
            .client
            .post(format!("{base}/v1beta/models/{model}:predictLongRunning"))
            .headers(auth.clone())
            .json(&veo_body(job));
        let (created, _): (Value, _) = create_json(create, timeout, "predictLongRunning").await?;
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '.' | '_');
        let name = match created["name"].as_str().map(|n| n.trim_start_matches('/')) {
            Some(n) if !n.is_empty() && n.chars().all(plain) && !n.contains("..") => n.to_string(),
            _ => {
                return Err(Failure::in_doubt(
                    FailureClass::Retryable,
                    format!(
                        "predictLongRunning: no usable operation name (the job may exist): {}",
                        snippet(created.to_string().as_bytes())
                    ),
                ))
            }
        };
        Ok(Handle { id: name })
    }

    /// Follows a created operation to its video, and downloads it.
    pub async fn resume(&self, handle: &Handle, job: &JobSpec) -> Outcome {
        let model = model_of(job)?;
        let auth = self.auth()?;
        let timeout = self.endpoint.request_timeout;
        let base = &self.endpoint.base_url;
        let name = &handle.id;
        // Poll.
        let mut poller = Poller::new(self.endpoint.poll_interval, self.endpoint.poll_max, None);
        let op = loop {
            let request = self
                .client
                .get(format!("{base}/v1beta/{name}"))
                .headers(auth.clone());
            match poller.poll::<Value>(request, timeout, "operation").await {
                Ok(Some(op)) if op["error"].is_object() || op["done"].as_bool() == Some(true) => {
                    break op
                }
                Ok(_) => continue,
                Err(f) => return Err(after_create(f)),
            }
        };
        if op["error"].is_object() {
            return Err(operation_error(&op["error"]));
        }
        let response = &op["response"]["generateVideoResponse"];
        let uri = response["generatedSamples"]
            .as_array()
            .and_then(|s| s.iter().find_map(|x| x["video"]["uri"].as_str()))
            .filter(|u| !u.is_empty());
        match uri {
            Some(uri) => self.download(uri, model, &auth).await,
            None => Err(filtered(response).unwrap_or_else(|| {
                Failure::new(
                    FailureClass::NoVideo,
                    "the operation finished without a video",
                )
            })),
        }
    }

    /// Downloads the finished video, waiting out transport trouble, 408, 429 and 5xx.
    async fn download(&self, uri: &str, model: &str, auth: &HeaderMap) -> Outcome {
        let Ok(url) = Url::parse(uri) else {
            return Err(Failure::in_doubt(
                FailureClass::NoVideo,
                format!("the video URI is not a URL: {}", snippet(uri.as_bytes())),
            ));
        };
        let same_origin = Url::parse(&self.endpoint.base_url)
            .map(|base| origin(&base) == origin(&url))
            .unwrap_or(false);
        let auth = if same_origin {
            auth.clone()
        } else {
            HeaderMap::new()
        };
        let mut backoff = Backoff::new(self.endpoint.poll_interval, self.endpoint.poll_max);
        loop {
            let hint = match get_following(
                &self.client,
                url.as_str(),
                &auth,
                self.endpoint.request_timeout,
            )
            .await
            {
                Ok(r) if r.status.is_success() && !r.body.is_empty() => {
                    let mime = r
                        .headers
                        .get(CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.split(';').next())
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .unwrap_or("video/mp4")
                        .to_string();
                    return Ok(Success {
                        video: Video::Bytes { data: r.body, mime },
                        model: Some(model.to_string()),
                        quality: None,
                        simulated_seconds: None,
                    });
                }
                Ok(r) if r.status.is_success() => {
                    return Err(Failure::in_doubt(
                        FailureClass::NoVideo,
                        "download: the video is empty",
                    ))
                }
                Ok(r) if classify_status(r.status) == FailureClass::Retryable => {
                    poll_hint(&r.headers)
                }
                Ok(r) => return Err(after_create(r.status_failure("download"))),
                Err(_) => None,
            };
            tokio::time::sleep(backoff.next_delay(hint)).await;
        }
    }
}
