//! Adapters: the thin layer that turns a decision into a video by calling a backend's real
//! API, and maps whatever happens into one [`Outcome`] taxonomy.
//!
//! | class | examples | breaker | fallback |
//! |---|---|---|---|
//! | success | a video URI or bytes | success | stop |
//! | [`FailureClass::Retryable`] | HTTP 408/429/5xx, `RESOURCE_EXHAUSTED`, timeouts, overload, PixVerse 500044/500069, malformed replies | failure | next backend |
//! | [`FailureClass::Terminal`] | auth failure, insufficient balance (PixVerse 500090), invalid parameters (HTTP 400, PixVerse 4000xx) | failure | next backend |
//! | [`FailureClass::ContentRejected`] | moderation: Vertex `raiMediaFilteredCount > 0`, PixVerse status 7 / 500054 / 500063 | not counted | per policy `execution.on_content_rejected` |
//! | [`FailureClass::NoVideo`] | the job finished but returned no video | failure | next backend |
//! | [`FailureClass::BadOutput`] | the video came but failed its output checks ([`crate::output`]): truncated, not a video, wrong duration or aspect, black, frozen | failure (its money is spent) | next backend |
//!
//! **Deadlines.** Every HTTP call carries a timeout (`api.request_timeout_seconds`, default
//! 30 s), and a whole job is bounded by the backend's `max_generation_time_seconds`. Polling
//! starts at `api.poll_interval_seconds` (default 2 s), grows by half each time up to 15 s,
//! and honours `Retry-After` and `openai-poll-after-ms`.
//!
//! **A create call is never re-submitted blindly.** If the create request was sent but its
//! answer was lost (timeout, reset connection, unreadable body), the job may exist and may be
//! billed. The adapter reports a failure with `in_doubt: true`; the executor then keeps the
//! reservation as committed spend (outcome `in_doubt` in the ledger) instead of releasing it,
//! and moves on to the next backend rather than calling this one again. Budget accounting
//! therefore errs on the side of counting money that may not have been spent, never the
//! reverse. Only the idempotent calls (polls, downloads) are retried within a job.
//!
//! **Create, then resume.** Every adapter splits a job in two: [`Adapter::create`] sends the
//! create call and returns the provider's [`Handle`] (the Google operation name, the PixVerse
//! video id, the `/v1/videos` id), and [`Adapter::resume`] follows a handle to its video. The
//! job runner records the handle between the two, so that any replica can resume polling a job
//! whose owner died, and never submits it again. [`Adapter::cancel`] stops a job at the
//! provider where the protocol offers it (`/v1/videos` DELETE).
//!
//! **A server that is gone ends the attempt.** Polls ride out timeouts and 5xx until the
//! deadline, but [`http::MAX_UNREACHABLE_POLLS`] refused connections in a row end it (in
//! doubt): a self-hosted worker killed mid-job will not come back with the job.
//!
//! Secrets live in [`Secret`], whose `Debug` and `Display` print `***`. No adapter puts a key
//! into an error message, a log line or a trace attribute.

pub mod gemini;
pub mod http;
pub mod pixverse;
pub mod simulated;
pub mod vertex;
pub mod videos;

use std::fmt;
use std::time::Duration;

/// A boxed future borrowing its adapter.
type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

use genroute_core::num::Fixed;
use genroute_core::policy::{Backend, Protocol};

/// What to generate, in the terms every adapter understands.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// Unique per request; used for idempotency and simulated outcomes.
    pub request_id: String,
    /// 1-based attempt number within the request.
    pub attempt: u32,
    /// The prompt.
    pub prompt: String,
    /// What to avoid.
    pub negative_prompt: Option<String>,
    /// Seconds of video.
    pub duration_seconds: u32,
    /// e.g. `16:9`.
    pub aspect_ratio: String,
    /// The model to run, when the backend needs one.
    pub model: Option<String>,
    /// The whole job must finish within this (the backend's `max_generation_time_seconds`).
    pub deadline: Duration,
}

/// A generated video.
#[derive(Clone, PartialEq, Eq)]
pub enum Video {
    /// Where the backend stored it (gs://, https://).
    Uri(String),
    /// The bytes themselves.
    Bytes {
        /// Video data.
        data: Vec<u8>,
        /// MIME type, e.g. `video/mp4`.
        mime: String,
    },
}

impl fmt::Debug for Video {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Video::Uri(u) => write!(f, "Uri({u:?})"),
            Video::Bytes { data, mime } => write!(f, "Bytes({} bytes of {mime})", data.len()),
        }
    }
}

/// A successful job.
#[derive(Debug, Clone, PartialEq)]
pub struct Success {
    /// The video.
    pub video: Video,
    /// The model that ran, as the backend reported it (or as requested).
    pub model: Option<String>,
    /// A quality score, when the backend reports one (the simulator does).
    pub quality: Option<Fixed>,
    /// Seconds of generation as the backend measured it (the simulator reports its simulated
    /// latency here; real adapters leave it to the caller's clock).
    pub simulated_seconds: Option<Fixed>,
}

/// How a failure is classed. See the module table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// Worth trying elsewhere, and perhaps here later.
    Retryable,
    /// This backend cannot serve this request (auth, balance, parameters).
    Terminal,
    /// Refused by moderation.
    ContentRejected,
    /// Finished without a video.
    NoVideo,
    /// Finished with a video that failed its output checks. Adapters never return it; the
    /// executor does, after checking what an adapter delivered.
    BadOutput,
}

impl FailureClass {
    /// As written in outputs and the ledger.
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureClass::Retryable => "retryable",
            FailureClass::Terminal => "terminal",
            FailureClass::ContentRejected => "content_rejected",
            FailureClass::NoVideo => "no_video",
            FailureClass::BadOutput => "bad_output",
        }
    }
}

/// A failed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Its class.
    pub class: FailureClass,
    /// What happened, for people; never contains a secret.
    pub message: String,
    /// True when a create call may have started a (billable) job whose fate is unknown.
    pub in_doubt: bool,
    /// True when genroute gave up because the job's deadline passed (the job may still be
    /// running at the provider: the executor cancels it there where it can).
    pub deadline: bool,
}

impl Failure {
    /// A failure that surely started no billable job.
    pub fn new(class: FailureClass, message: impl Into<String>) -> Failure {
        Failure {
            class,
            message: message.into(),
            in_doubt: false,
            deadline: false,
        }
    }

    /// A failure after which a job may exist.
    pub fn in_doubt(class: FailureClass, message: impl Into<String>) -> Failure {
        Failure {
            class,
            message: message.into(),
            in_doubt: true,
            deadline: false,
        }
    }
}

/// What an adapter returns.
pub type Outcome = Result<Success, Failure>;

/// The provider's name for a created job (kept in the job record, so the store defines it).
pub use genroute_store::job::Handle;

/// What a cancel at the provider achieved; the money follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancel {
    /// The provider stopped the job before it started: nothing was produced or billed, so
    /// its reservation can be released.
    NothingProduced,
    /// The provider took the cancel, but the job had started (or finished): it may be billed,
    /// so its reservation is kept in doubt.
    MaybeProduced,
    /// The protocol has no cancel: the job runs on at the provider (kept in doubt).
    Unsupported,
    /// The cancel call failed (kept in doubt).
    Failed(String),
}

/// A secret (API key, token). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for building a request header. Do not log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Connection settings shared by the HTTP adapters.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Base URL without a trailing slash.
    pub base_url: String,
    /// The key or token, if the backend needs one.
    pub key: Option<Secret>,
    /// Timeout of each HTTP call.
    pub request_timeout: Duration,
    /// First polling interval.
    pub poll_interval: Duration,
    /// Longest polling interval.
    pub poll_max: Duration,
}

/// One backend's adapter.
#[derive(Debug, Clone)]
pub enum Adapter {
    /// Veo on Vertex AI.
    Vertex(vertex::Vertex),
    /// Veo on the Gemini API.
    Gemini(gemini::Gemini),
    /// PixVerse.
    PixVerse(pixverse::PixVerse),
    /// The `/v1/videos` job API (genroute's worker, vLLM-Omni, SGLang, gateways).
    Videos(videos::Videos),
    /// In-process simulation.
    Simulated(simulated::Simulated),
}

/// Why an adapter could not be built from a backend's configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("backend `{backend}`: {message}")]
pub struct ConfigError {
    /// The backend.
    pub backend: String,
    /// What is missing.
    pub message: String,
}

impl Adapter {
    /// Builds the adapter for a backend. `env` reads the key named by `api.key_env`; `client`
    /// is shared by all HTTP adapters.
    pub fn new(
        backend: &Backend,
        env: &dyn Fn(&str) -> Option<String>,
        client: &reqwest::Client,
    ) -> Result<Adapter, ConfigError> {
        let err = |message: String| ConfigError {
            backend: backend.name.clone(),
            message,
        };
        let protocol = backend.protocol().ok_or_else(|| {
            err("`api.protocol` is not set; use vertex, gemini, pixverse or videos".into())
        })?;
        if protocol == Protocol::Simulated {
            return Ok(Adapter::Simulated(simulated::Simulated::new(backend)));
        }
        let api = backend
            .api
            .as_ref()
            .ok_or_else(|| err("`api` is not set".into()))?;
        let key = match &api.key_env {
            Some(var) => Some(Secret::new(
                env(var).ok_or_else(|| err(format!("{var} is not set")))?,
            )),
            None => None,
        };
        let secs = |f: Fixed| Duration::from_micros(f.micros().max(0) as u64);
        let base_url = api
            .base_url
            .clone()
            .ok_or_else(|| err("`api.base_url` is not set".into()))?
            .trim_end_matches('/')
            .to_string();
        let endpoint = Endpoint {
            base_url,
            key,
            request_timeout: secs(api.request_timeout),
            poll_interval: secs(api.poll_interval),
            poll_max: Duration::from_secs(15).max(secs(api.poll_interval)),
        };
        let client = client.clone();
        Ok(match protocol {
            Protocol::Vertex => {
                let project = api
                    .project
                    .clone()
                    .ok_or_else(|| err("`api.project` is not set (Vertex AI)".into()))?;
                let location = api
                    .location
                    .clone()
                    .unwrap_or_else(|| "us-central1".to_string());
                Adapter::Vertex(vertex::Vertex {
                    endpoint,
                    client,
                    project,
                    location,
                })
            }
            Protocol::Gemini => Adapter::Gemini(gemini::Gemini { endpoint, client }),
            Protocol::PixVerse => Adapter::PixVerse(pixverse::PixVerse { endpoint, client }),
            Protocol::Videos => Adapter::Videos(videos::Videos {
                endpoint,
                client,
                dialect: api.dialect,
                parameters: api.parameters.clone(),
            }),
            Protocol::Simulated => Adapter::Simulated(simulated::Simulated::new(backend)),
        })
    }

    /// Runs one job to completion, within `job.deadline`: create, then resume.
    pub async fn generate(&self, job: &JobSpec) -> Outcome {
        let started = tokio::time::Instant::now();
        let handle = self.create(job, job.deadline).await?;
        let left = job.deadline.saturating_sub(started.elapsed());
        self.resume(&handle, job, left).await
    }

    /// Sends the create call, within `within`. A failure here is in doubt when the call may
    /// have reached the provider (see the module docs).
    pub async fn create(
        &self,
        job: &JobSpec,
        within: std::time::Duration,
    ) -> Result<Handle, Failure> {
        // Boxed per adapter: a job in flight holds the future of its own adapter, not room for
        // the largest of them (a simulated job needs a few bytes; 10,000 of them in flight).
        let run: BoxFuture<'_, Result<Handle, Failure>> = match self {
            Adapter::Vertex(a) => Box::pin(a.create(job)),
            Adapter::Gemini(a) => Box::pin(a.create(job)),
            Adapter::PixVerse(a) => Box::pin(a.create(job)),
            Adapter::Videos(a) => Box::pin(a.create(job, within)),
            Adapter::Simulated(a) => Box::pin(a.create(job)),
        };
        self.bounded(run, within, job.deadline).await
    }

    /// Follows a created job to its video, within `within` (what is left of the job's
    /// deadline). Everything that goes wrong after a create is in doubt unless the provider
    /// itself reported the job failed.
    pub async fn resume(
        &self,
        handle: &Handle,
        job: &JobSpec,
        within: std::time::Duration,
    ) -> Outcome {
        let run: BoxFuture<'_, Outcome> = match self {
            Adapter::Vertex(a) => Box::pin(a.resume(handle, job)),
            Adapter::Gemini(a) => Box::pin(a.resume(handle, job)),
            Adapter::PixVerse(a) => Box::pin(a.resume(handle, job)),
            Adapter::Videos(a) => Box::pin(a.resume(handle, job)),
            Adapter::Simulated(a) => Box::pin(a.resume(handle, job)),
        };
        self.bounded(run, within, job.deadline).await
    }

    /// Cancels a created job at the provider, where the protocol offers it.
    pub async fn cancel(&self, handle: &Handle, job: &JobSpec) -> Cancel {
        match self {
            Adapter::Videos(a) => match a.cancel(handle).await {
                Cancel::Failed(m) => Cancel::Failed(self.redact(&m)),
                c => c,
            },
            Adapter::Simulated(a) => a.cancel(handle, job),
            Adapter::Vertex(_) | Adapter::Gemini(_) | Adapter::PixVerse(_) => Cancel::Unsupported,
        }
    }

    /// Runs `run` within `within`, redacting its failure; past it, the job is in doubt.
    async fn bounded<T>(
        &self,
        run: impl std::future::Future<Output = Result<T, Failure>>,
        within: std::time::Duration,
        deadline: std::time::Duration,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(within, run).await {
            Ok(Err(mut f)) => {
                f.message = self.redact(&f.message);
                Err(f)
            }
            Ok(outcome) => outcome,
            Err(_) => Err(Failure {
                deadline: true,
                ..Failure::in_doubt(
                    FailureClass::Retryable,
                    format!(
                        "the job did not finish within its deadline of {} s",
                        deadline.as_secs_f64()
                    ),
                )
            }),
        }
    }

    /// Removes this adapter's secret from a message, in case a server echoed it back.
    pub fn redact(&self, message: &str) -> String {
        let key = match self {
            Adapter::Vertex(a) => a.endpoint.key.as_ref(),
            Adapter::Gemini(a) => a.endpoint.key.as_ref(),
            Adapter::PixVerse(a) => a.endpoint.key.as_ref(),
            Adapter::Videos(a) => a.endpoint.key.as_ref(),
            Adapter::Simulated(_) => None,
        };
        match key {
            Some(k) if !k.expose().is_empty() => message.replace(k.expose(), "***"),
            _ => message.to_string(),
        }
    }

    /// Whether this adapter calls the network.
    pub fn is_remote(&self) -> bool {
        !matches!(self, Adapter::Simulated(_))
    }
}

/// The shared HTTP client: rustls, bounded connect time, and no automatic redirects:
/// downloads follow them by hand ([`http::get_following`]) so that a key is never sent to
/// another host.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("genroute/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}
