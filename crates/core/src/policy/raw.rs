//! The policy file as written: serde types that mirror the YAML one to one.
//!
//! These types only describe shape. Meaning (names that resolve, targets that exist,
//! conditions that type-check) is established by `load`, which turns a [`RawPolicy`] into a
//! validated [`crate::Policy`]. Keeping the two apart means an error in one backend never
//! hides the errors in the others.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::num::Fixed;

/// The whole file.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RawPolicy {
    /// Prefix of the environment variables that toggle backends
    /// (`<PREFIX>_BACKEND_<NAME>_ENABLED`). Default `GENROUTE`.
    #[serde(default)]
    pub feature_flag_prefix: Option<String>,
    /// Request values used when a request leaves them out.
    #[serde(default)]
    pub defaults: Option<RawDefaults>,
    /// Extra request fields that conditions can read.
    #[serde(default)]
    pub request_fields: BTreeMap<String, RawField>,
    /// Values of the caller's tenant (from the tenants file's `attributes`) that conditions
    /// read as `tenant.<name>`, beside the built-in `tenant.team`, `tenant.org`, `tenant.key`.
    #[serde(default)]
    pub tenant_fields: BTreeMap<String, RawField>,
    /// The backends, by name.
    pub backends: BTreeMap<String, RawBackend>,
    /// Rules, tried in order.
    #[serde(default)]
    pub selection_rules: Vec<RawRule>,
    /// How `generate` runs a decision.
    #[serde(default)]
    pub execution: Option<RawExecution>,
    /// The monthly budget.
    pub budget: RawBudget,
    /// A/B experiments on split rules, by name.
    #[serde(default)]
    pub experiments: BTreeMap<String, RawExperiment>,
}

/// One experiment.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RawExperiment {
    /// The rule whose `split` holds the arms.
    pub rule: String,
    /// The arm traffic goes home to on a rollback.
    pub primary: String,
    /// The experimental arms (default: every other arm of the split).
    #[serde(default)]
    pub arms: Vec<String>,
    /// What is compared: `pass_rate` (default), `latency` or `cost_per_video`.
    #[serde(default)]
    pub metric: Option<String>,
    /// Samples each arm needs before the rule is tested (default 100).
    #[serde(default)]
    pub min_samples: Option<u64>,
    /// Roll back when an arm's metric falls under this share of the primary's (default 0.9).
    #[serde(default)]
    pub rollback_below: Option<Fixed>,
}

/// One arm of a split.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RawArm {
    /// The backend.
    pub backend: String,
    /// Its share of the traffic, relative to the other arms' (any positive number).
    pub weight: Fixed,
    /// Model to run on it.
    #[serde(default)]
    pub model_preference: Option<String>,
}

/// `dynamic_weights:` of a split.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RawDynamic {
    /// The measured figure: `latency_p50`, `latency_p95`, `flicker` (lower is better) or
    /// `pass_rate` (higher is better).
    pub by: String,
    /// Smallest weight an arm can get (default 1).
    #[serde(default)]
    pub floor: Option<Fixed>,
    /// Largest weight an arm can get (default 1000).
    #[serde(default)]
    pub ceiling: Option<Fixed>,
    /// Samples an arm needs before its figure moves its weight (default 20).
    #[serde(default)]
    pub min_samples: Option<u32>,
}

/// `execution:`
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RawExecution {
    /// `stop` (default) or `fallback`: whether a moderation refusal moves on to the next
    /// backend.
    #[serde(default)]
    pub on_content_rejected: Option<String>,
    /// Retry a delivered video on the next backend of the chain when a condition over its
    /// figures holds.
    #[serde(default)]
    pub quality_retry: Option<RawQualityRetry>,
    /// How a delivered video is checked before it counts as a success.
    #[serde(default)]
    pub output_checks: Option<RawOutputChecks>,
}

/// `execution.quality_retry:`
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RawQualityRetry {
    /// Retries at most (default 1).
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// The condition over the delivered video's figures (`video.*`) that makes it poor,
    /// e.g. `video.flicker > 0.2 OR video.frozen_fraction > 0.3`.
    pub when: String,
}

/// `execution.output_checks:`
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RawOutputChecks {
    /// Whether delivered videos are checked at all (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// A duration passes within ±max(1 s, this share of the asked duration); default 0.2.
    #[serde(default)]
    pub duration_tolerance: Option<Fixed>,
    /// The aspect ratio passes within this share of the asked one; default 0.02.
    #[serde(default)]
    pub aspect_tolerance: Option<Fixed>,
    /// A clip black for more than this share of its duration fails (default 0.9; `null`: no
    /// limit).
    #[serde(default, deserialize_with = "some_or_null")]
    pub max_black_fraction: Option<Option<Fixed>>,
    /// A clip frozen for more than this share of its duration fails (default 0.9; `null`: no
    /// limit).
    #[serde(default, deserialize_with = "some_or_null")]
    pub max_frozen_fraction: Option<Option<Fixed>>,
    /// A clip whose flicker score (0 to 1) is above this fails (default: no limit).
    #[serde(default)]
    pub max_flicker: Option<Fixed>,
    /// `auto` (default: measure the frames where ffmpeg is on the PATH), `off`, or `required`
    /// (a video whose frames could not be measured fails).
    #[serde(default)]
    pub frames: Option<String>,
    /// Bound of the ffmpeg run, in seconds (default 60).
    #[serde(default)]
    pub frame_timeout_seconds: Option<Fixed>,
}

/// Tells a key written `null` (`Some(None)`) from a key left out (`None`).
fn some_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<Fixed>>, D::Error> {
    Option::<Fixed>::deserialize(d).map(Some)
}

/// Request defaults.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RawDefaults {
    /// Default `quality_threshold` (built-in default 0.8).
    #[serde(default)]
    pub quality_threshold: Option<Fixed>,
    /// Default `duration` in seconds (built-in default 5).
    #[serde(default)]
    pub duration: Option<Fixed>,
    /// Default `aspect_ratio` (built-in default `16:9`).
    #[serde(default)]
    pub aspect_ratio: Option<String>,
    /// Default `priority` (built-in default `balanced`).
    #[serde(default)]
    pub priority: Option<String>,
}

/// A declared request field.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RawField {
    /// `string`, `number`, `bool` or `enum`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The values of an `enum` field.
    #[serde(default)]
    pub values: Vec<String>,
    /// The value used when a request leaves the field out; without one, reading the unset
    /// field is an evaluation error that explain shows.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
}

/// One backend.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RawBackend {
    /// Whether the backend may be used at all (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Lower is preferred.
    pub priority: Fixed,
    /// `cloud_api`, `self_hosted`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// `per_video_usd`, or one `{per_video_usd}` per model variant. Validated by the loader,
    /// which needs the locations of the variant keys.
    #[schemars(with = "RawCostSchema")]
    pub cost: serde_yaml::Mapping,
    /// Quality figures.
    pub quality: RawQuality,
    /// Latency figures.
    pub performance: RawPerformance,
    /// How to reach it.
    #[serde(default)]
    pub api: Option<RawApi>,
    /// Eligibility flags.
    #[serde(default)]
    pub selection_criteria: RawCriteria,
    /// Models it can run; the first is its default.
    #[serde(default)]
    pub models: Vec<RawModel>,
    /// Circuit breaker settings.
    #[serde(default)]
    pub circuit_breaker: Option<RawBreaker>,
    /// Behaviour of a `type: simulated` backend, and of any backend in `genroute simulate`.
    #[serde(default)]
    pub simulation: Option<RawSimulation>,
    /// Lints to silence for this backend (see `genroute check`).
    #[serde(default)]
    pub allow: Vec<String>,
}

/// `circuit_breaker:`
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RawBreaker {
    /// Consecutive failures that open it (default 5).
    #[serde(default)]
    pub failure_threshold: Option<u32>,
    /// Seconds it stays open before admitting probes (default 60).
    #[serde(default)]
    pub timeout_seconds: Option<Fixed>,
    /// Probe calls admitted while half-open; that many successes close it (default 3).
    #[serde(default)]
    pub half_open_requests: Option<u32>,
}

/// `simulation:` for `type: simulated` backends.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RawSimulation {
    /// Share of calls that fail, 0 to 1 (default 0).
    #[serde(default)]
    pub failure_rate: Option<Fixed>,
    /// How a simulated failure is classed: `retryable` (default), `terminal`,
    /// `content_rejected` or `no_video`.
    #[serde(default)]
    pub failure_class: Option<String>,
    /// Standard deviation of the latency, seconds (default a fifth of the average); the
    /// average is `performance.avg_generation_time_seconds`.
    #[serde(default)]
    pub latency_stddev_seconds: Option<Fixed>,
    /// Wall-clock seconds slept per simulated second (default 0: report the latency, do not
    /// wait for it).
    #[serde(default)]
    pub time_scale: Option<Fixed>,
    /// Seed of the outcome generator (default 0).
    #[serde(default)]
    pub seed: Option<u64>,
    /// In `genroute simulate`: the share of delivered videos that pass the output checks
    /// (default 1); the others are `bad_output`, spent and fallen back from.
    #[serde(default)]
    pub pass_rate: Option<Fixed>,
}

/// The schema of `cost:` (the loader reads it as a plain mapping to locate its keys).
#[derive(JsonSchema)]
#[allow(dead_code)]
#[serde(untagged)]
enum RawCostSchema {
    /// `per_video_usd: 0.05`
    Flat {
        /// Price of one video in USD.
        per_video_usd: Fixed,
    },
    /// `veo_2: {per_video_usd: 0.10}`, ... one entry per model variant.
    PerVariant(BTreeMap<String, RawVariantSchema>),
}

/// One model variant's price.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct RawVariantSchema {
    /// Price of one video in USD.
    per_video_usd: Fixed,
}

fn yes() -> bool {
    true
}

/// `quality:`
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RawQuality {
    /// Overall score, 0 to 1.
    pub score: Fixed,
    /// Optional.
    #[serde(default)]
    pub temporal_coherence: Option<Fixed>,
    /// Optional.
    #[serde(default)]
    pub prompt_adherence: Option<Fixed>,
}

/// `performance:`
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RawPerformance {
    /// Typical seconds per video.
    pub avg_generation_time_seconds: Fixed,
    /// Upper bound in seconds.
    pub max_generation_time_seconds: Fixed,
}

/// `api:`
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RawApi {
    /// Wire protocol: `vertex`, `gemini`, `pixverse` or `videos` (also written `openai`).
    #[serde(default)]
    pub protocol: Option<String>,
    /// Base URL.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Model id when the backend lists no `models`.
    #[serde(default)]
    pub model: Option<String>,
    /// Google Cloud project (Vertex AI).
    #[serde(default)]
    pub project: Option<String>,
    /// Google Cloud region (Vertex AI), e.g. `us-central1`.
    #[serde(default)]
    pub location: Option<String>,
    /// Timeout of each HTTP call, seconds (default 30).
    #[serde(default)]
    pub request_timeout_seconds: Option<Fixed>,
    /// First polling interval, seconds (default 2); it grows by half each poll up to 15 s.
    #[serde(default)]
    pub poll_interval_seconds: Option<Fixed>,
    /// Named endpoint paths.
    #[serde(default)]
    pub endpoints: BTreeMap<String, String>,
    /// `api_key`, `oauth`, ...
    #[serde(default)]
    pub auth_type: Option<String>,
    /// The environment variable that holds the key.
    #[serde(default)]
    pub key_env: Option<String>,
    /// `videos` protocol: the server's dialect, `openai` (default: multipart form; genroute's
    /// worker and gateways), `vllm-omni` (form fields) or `sglang` (JSON).
    #[serde(default)]
    pub dialect: Option<String>,
    /// `videos` protocol: fields sent on every create call, e.g. `num_frames: 49`,
    /// `size: 720x480`, `num_inference_steps: 50`; checked against the dialect's fields.
    #[serde(default)]
    pub parameters: BTreeMap<String, serde_json::Value>,
}

/// `selection_criteria:`
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RawCriteria {
    /// Accepts `priority: quality` (missing accepts).
    #[serde(default)]
    pub priority_high: Option<bool>,
    /// Accepts `priority: balanced` (missing accepts).
    #[serde(default)]
    pub priority_balanced: Option<bool>,
    /// Accepts `priority: speed` (missing accepts).
    #[serde(default)]
    pub priority_speed: Option<bool>,
    /// Only eligible while its cost fits the remaining budget.
    #[serde(default)]
    pub budget_available: Option<bool>,
    /// Joins a fallback chain only after this many failed attempts.
    #[serde(default)]
    pub fallback_failures: Option<u32>,
}

/// A model: a plain id, or an id tied to a cost variant.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawModel {
    /// `- veo-2.0-generate-001`
    Id(String),
    /// `- {id: veo-3.0-generate-preview, cost: veo_3}`
    Tied {
        /// Model id.
        id: String,
        /// Key of its entry under `cost:`.
        #[serde(default)]
        cost: Option<String>,
    },
}

/// One selection rule.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RawRule {
    /// Unique name.
    pub name: String,
    /// The condition.
    pub condition: String,
    /// Only `select_backend` exists.
    #[serde(default = "select_backend")]
    pub action: String,
    /// Target backend (or `split`).
    #[serde(default)]
    pub backend: Option<String>,
    /// Several target backends with weights, instead of `backend`.
    #[serde(default)]
    pub split: Vec<RawArm>,
    /// The declared request field a split hashes (e.g. `user`), so that one key stays on one
    /// arm; default (and when the field is unset): the request id.
    #[serde(default)]
    pub split_key: Option<String>,
    /// Weights of the split moved by measured figures.
    #[serde(default)]
    pub dynamic_weights: Option<RawDynamic>,
    /// Model to run on the target.
    #[serde(default)]
    pub model_preference: Option<String>,
    /// Lints to silence for this rule (see `genroute check`).
    #[serde(default)]
    pub allow: Vec<String>,
}

fn select_backend() -> String {
    "select_backend".to_string()
}

/// `budget:`
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RawBudget {
    /// The monthly budget in USD.
    pub monthly_budget_usd: Fixed,
    /// The spend at which cost-saving rules usually kick in.
    pub cost_threshold_usd: Fixed,
    /// A daily budget in USD (UTC days), beside the monthly one.
    #[serde(default)]
    pub daily_budget_usd: Option<Fixed>,
    /// Caps on one backend's spend, by backend name (a cap on PixVerse, say).
    #[serde(default)]
    pub backends: BTreeMap<String, RawCap>,
}

/// A budget cap: monthly, daily, or both (USD).
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RawCap {
    /// Per calendar month (UTC).
    #[serde(default)]
    pub monthly_usd: Option<Fixed>,
    /// Per day (UTC).
    #[serde(default)]
    pub daily_usd: Option<Fixed>,
}
