//! A loaded, validated policy: backends, rules with checked conditions, budget and request
//! vocabulary, indexed for the router.
//!
//! Loading happens in two steps, in the manner of ripgrep's low-level and high-level
//! arguments: [`raw`] mirrors the file, and [`load`](mod@load) resolves and validates it into a
//! [`Policy`] while collecting every diagnostic it can find.

pub mod api;
pub mod fmt;
pub mod lint;
pub mod load;
pub mod raw;
pub mod read;
pub mod schema;
pub mod yaml;

pub use load::{load, LoadOptions};

use crate::check::scope::{EnumDef, FieldDef};
use crate::expr::CExpr;
use crate::levels::{LevelBudget, LevelKind, Period};
use crate::num::Fixed;

/// A policy ready for decisions. Immutable; share it behind an `Arc` to swap it atomically.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The file it came from, as shown in messages.
    pub source_name: String,
    /// Backends, sorted by name; a backend's index is its position here.
    pub backends: Vec<Backend>,
    /// Rules in the order they are tried.
    pub rules: Vec<Rule>,
    /// The monthly budget.
    pub budget: Budget,
    /// Defaults for request values the request leaves out.
    pub defaults: Defaults,
    /// Enum types, built-in ones first.
    pub enums: Vec<EnumDef>,
    /// Declared request fields.
    pub fields: Vec<FieldDef>,
    /// Tenant values conditions read (`tenant.*`): `team`, `org`, `key`, then the declared
    /// `tenant_fields`.
    pub tenant_fields: Vec<FieldDef>,
    /// Prefix of the backend feature-flag variables.
    pub feature_flag_prefix: String,
    /// How `generate` runs decisions.
    pub execution: Execution,
    /// A/B experiments on split rules.
    pub experiments: Vec<crate::experiment::Experiment>,
    /// `execution.quality_retry`.
    pub quality_retry: Option<QualityRetry>,
    /// Lint warnings found while loading (see [`crate::policy::lint`]).
    pub warnings: Vec<crate::diag::Diagnostic>,
    /// Backend indices in preference order: priority number, then name.
    pub(crate) by_priority: Vec<u16>,
    /// Set once every rule's program has had its machine code generated, together.
    pub(crate) native_ready: std::sync::OnceLock<()>,
}

/// The monthly budget, and the policy's further ones (daily, per backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// `monthly_budget_usd`
    pub monthly: Fixed,
    /// `cost_threshold_usd`
    pub threshold: Fixed,
    /// `daily_budget_usd`
    pub daily: Option<Fixed>,
    /// `backends:` caps, by backend index.
    pub caps: Vec<Cap>,
}

/// A cap on one backend's spend (`budget.backends.<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    /// The backend, by index.
    pub backend: u16,
    /// Per month.
    pub monthly: Option<Fixed>,
    /// Per day.
    pub daily: Option<Fixed>,
}

/// Request defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// Lowest acceptable quality when the request gives none (built-in: 0.8).
    pub quality_threshold: Fixed,
    /// Seconds (built-in: 5).
    pub duration: Fixed,
    /// Index into the aspect-ratio enum (built-in: `16:9`).
    pub aspect_ratio: u16,
    /// Index into the priority enum (built-in: `balanced`).
    pub priority: u16,
}

/// One backend.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Its name.
    pub name: String,
    /// Enabled after environment overrides.
    pub enabled: bool,
    /// The environment variable that overrode `enabled`, if one did.
    pub enabled_by: Option<String>,
    /// Lower is preferred.
    pub priority: Fixed,
    /// `type:` as written.
    pub kind: String,
    /// What a video costs.
    pub cost: Cost,
    /// `quality.score`
    pub quality: Fixed,
    /// `quality.temporal_coherence`
    pub temporal_coherence: Option<Fixed>,
    /// `quality.prompt_adherence`
    pub prompt_adherence: Option<Fixed>,
    /// `performance.avg_generation_time_seconds`
    pub avg_latency: Fixed,
    /// `performance.max_generation_time_seconds`
    pub max_latency: Fixed,
    /// `api:` as written.
    pub api: Option<Api>,
    /// Eligibility flags.
    pub criteria: Criteria,
    /// Models; the first runs when no rule prefers another.
    pub models: Vec<Model>,
    /// Circuit breaker settings.
    pub breaker: crate::breaker::BreakerConfig,
    /// How a `type: simulated` backend behaves.
    pub simulation: Option<Simulation>,
    /// The environment variable named by `api.key_env`, when it is not set. Such a backend is
    /// not eligible.
    pub key_missing: Option<String>,
    /// Lints silenced for this backend.
    pub allow: Vec<String>,
    /// `cost_of(None)`, computed once at load.
    pub default_cost: Fixed,
}

/// The wire protocol an adapter speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Veo on Vertex AI: `predictLongRunning` + `fetchPredictOperation`, OAuth bearer token.
    Vertex,
    /// Veo on the Gemini API: `predictLongRunning` + GET polling, API key.
    Gemini,
    /// PixVerse OpenAPI v2.
    PixVerse,
    /// The `/v1/videos` job API: genroute's worker, vLLM-Omni, SGLang Diffusion and gateways,
    /// each in its [`api::Dialect`]. `openai` is accepted as another name for it.
    Videos,
    /// In-process simulation, for dry runs, demos and tests.
    Simulated,
}

impl Protocol {
    /// Names as written in `api.protocol`.
    pub const NAMES: [&'static str; 4] = ["vertex", "gemini", "pixverse", "videos"];

    /// Parses an `api.protocol` value.
    pub fn parse(s: &str) -> Option<Protocol> {
        Some(match s {
            "vertex" => Protocol::Vertex,
            "gemini" => Protocol::Gemini,
            "pixverse" => Protocol::PixVerse,
            // The name it had before self-hosted servers became its main users.
            "videos" | "openai" => Protocol::Videos,
            _ => return None,
        })
    }
}

/// How a simulated failure is classed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimulatedFailure {
    /// Like a 429 or 5xx.
    Retryable,
    /// Like an auth failure or a bad parameter.
    Terminal,
    /// Like a moderation refusal.
    ContentRejected,
    /// A finished job with no video.
    NoVideo,
}

/// `simulation:` of a `type: simulated` backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Simulation {
    /// Share of calls that fail, 0 to 1.
    pub failure_rate: Fixed,
    /// How failures are classed.
    pub failure_class: SimulatedFailure,
    /// Standard deviation of latency, seconds.
    pub latency_stddev: Fixed,
    /// Wall-clock seconds slept per simulated second.
    pub time_scale: Fixed,
    /// Seed of the outcome generator.
    pub seed: u64,
    /// In `simulate`: share of delivered videos that pass their output checks.
    pub pass_rate: Fixed,
}

/// `execution:`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Execution {
    /// Whether a moderation refusal moves on to the next backend (default: stop).
    pub fallback_on_content_rejected: bool,
    /// How delivered videos are checked.
    pub output_checks: OutputChecks,
}

/// `execution.output_checks:` (see [`crate::output`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputChecks {
    /// Whether delivered videos are checked (default true).
    pub enabled: bool,
    /// Duration tolerance, a share of the asked duration (at least 1 s); default 0.2.
    pub duration_tolerance: Fixed,
    /// Aspect ratio tolerance, a share; default 0.02.
    pub aspect_tolerance: Fixed,
    /// Largest black share of a clip; default 0.9.
    pub max_black_fraction: Option<Fixed>,
    /// Largest frozen share of a clip; default 0.9.
    pub max_frozen_fraction: Option<Fixed>,
    /// Largest flicker score; default none.
    pub max_flicker: Option<Fixed>,
    /// Whether the frames are measured.
    pub frames: FrameChecks,
    /// Bound of the ffmpeg run; default 60 s.
    pub frame_timeout: Fixed,
}

/// `execution.output_checks.frames`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FrameChecks {
    /// Where ffmpeg is on the PATH (default).
    #[default]
    Auto,
    /// Never.
    Off,
    /// Always; a video whose frames could not be measured fails.
    Required,
}

impl Default for OutputChecks {
    fn default() -> OutputChecks {
        OutputChecks {
            enabled: true,
            duration_tolerance: Fixed::from_micros(200_000),
            aspect_tolerance: Fixed::from_micros(20_000),
            max_black_fraction: Some(Fixed::from_micros(900_000)),
            max_frozen_fraction: Some(Fixed::from_micros(900_000)),
            max_flicker: None,
            frames: FrameChecks::Auto,
            frame_timeout: Fixed::from_micros(60_000_000),
        }
    }
}

impl OutputChecks {
    /// The thresholds of [`crate::output::judge`].
    pub fn limits(&self) -> crate::output::Limits {
        crate::output::Limits {
            duration_tolerance: self.duration_tolerance.to_f64(),
            aspect_tolerance: self.aspect_tolerance.to_f64(),
            max_black_fraction: self.max_black_fraction.map(Fixed::to_f64),
            max_frozen_fraction: self.max_frozen_fraction.map(Fixed::to_f64),
            max_flicker: self.max_flicker.map(Fixed::to_f64),
            frames_required: self.frames == FrameChecks::Required,
        }
    }
}

/// `execution.quality_retry:` retry a delivered video on the next backend of its chain when
/// its figures make `when` true, at most `max_retries` times; the first video is kept and
/// returned if every retry is poor too (see README "Quality retry").
#[derive(Debug, Clone)]
pub struct QualityRetry {
    /// Retries at most.
    pub max_retries: u32,
    /// The condition as written.
    pub when_text: String,
    /// The checked condition (explain-style errors).
    pub when: CExpr,
    /// The same, compiled.
    pub program: crate::eval::Program,
}

/// `api:`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    /// Wire protocol (`None` when not given; such a backend cannot be called).
    pub protocol: Option<Protocol>,
    /// Base URL.
    pub base_url: Option<String>,
    /// Model id when the backend lists no `models`.
    pub model: Option<String>,
    /// Google Cloud project (Vertex AI).
    pub project: Option<String>,
    /// Google Cloud region (Vertex AI).
    pub location: Option<String>,
    /// Timeout of each HTTP call.
    pub request_timeout: Fixed,
    /// First polling interval, seconds.
    pub poll_interval: Fixed,
    /// Named endpoint paths.
    pub endpoints: Vec<(String, String)>,
    /// Authentication scheme.
    pub auth_type: Option<String>,
    /// Environment variable that holds the key.
    pub key_env: Option<String>,
    /// The `/v1/videos` server's dialect (`videos` protocol only).
    pub dialect: api::Dialect,
    /// Fields sent on every create call (`videos` protocol only), checked at load.
    pub parameters: Vec<(String, api::Param)>,
}

/// A backend's cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cost {
    /// One price per video.
    Flat(Fixed),
    /// A price per model variant, e.g. `veo_2`, `veo_3`.
    PerVariant(Vec<(String, Fixed)>),
}

/// A model a backend can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// Model id.
    pub id: String,
    /// Key of its cost variant, when costs are per variant.
    pub cost_variant: Option<String>,
}

/// `selection_criteria:`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Criteria {
    /// Accepts `quality` requests; `None` accepts.
    pub priority_high: Option<bool>,
    /// Accepts `balanced` requests; `None` accepts.
    pub priority_balanced: Option<bool>,
    /// Accepts `speed` requests; `None` accepts.
    pub priority_speed: Option<bool>,
    /// Requires its cost to fit the remaining budget.
    pub budget_available: bool,
    /// Joins a fallback chain only after this many failed attempts.
    pub fallback_failures: u32,
}

impl Criteria {
    /// Whether the priority flags accept the request priority (by enum index).
    pub fn accepts_priority(&self, priority: u16) -> bool {
        let flag = match priority {
            0 => self.priority_high,
            1 => self.priority_balanced,
            _ => self.priority_speed,
        };
        flag.unwrap_or(true)
    }
}

/// A selection rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// The condition as written.
    pub condition_text: String,
    /// The checked condition, which explain walks.
    pub condition: CExpr,
    /// The same condition compiled for deciding (see [`crate::eval::program`]).
    pub program: crate::eval::Program,
    /// Target backend index.
    pub backend: u16,
    /// `model_preference`.
    pub model: Option<String>,
    /// Cost of running `model` (or the default model) on the target.
    pub cost: Fixed,
    /// Several targets with weights; `backend`, `model` and `cost` are then its first arm's.
    pub split: Option<Box<crate::split::Split>>,
    /// 1-based line and column of the condition in the file.
    pub line: usize,
    /// Column of the condition.
    pub column: usize,
    /// Lints silenced for this rule.
    pub allow: Vec<String>,
}

impl Backend {
    /// The model that runs when no rule names one.
    pub fn default_model(&self) -> Option<&str> {
        self.models
            .first()
            .map(|m| m.id.as_str())
            .or_else(|| self.api.as_ref().and_then(|a| a.model.as_deref()))
    }

    /// The protocol used to call it.
    pub fn protocol(&self) -> Option<Protocol> {
        if self.kind == "simulated" {
            return Some(Protocol::Simulated);
        }
        self.api.as_ref().and_then(|a| a.protocol)
    }

    /// The cost of running `model` (or the default model). A per-variant cost that cannot be
    /// tied to the model is taken at its highest, so a budget check can never under-count.
    pub fn cost_of(&self, model: Option<&str>) -> Fixed {
        let variants = match &self.cost {
            Cost::Flat(c) => return *c,
            Cost::PerVariant(v) => v,
        };
        let model = model.or(self.default_model());
        let tied = model
            .and_then(|id| self.models.iter().find(|m| m.id == id))
            .and_then(|m| m.cost_variant.as_deref())
            .and_then(|key| variants.iter().find(|(k, _)| k == key))
            .map(|(_, c)| *c);
        tied.unwrap_or_else(|| {
            variants
                .iter()
                .map(|(_, c)| *c)
                .max()
                .unwrap_or(Fixed::ZERO)
        })
    }
}

impl Policy {
    /// The policy's own further budgets: `budget.daily_budget_usd` and the `budget.backends`
    /// caps, monthly then daily.
    pub fn budget_levels(&self) -> Vec<LevelBudget> {
        let global = |backend: Option<String>, period, budget| LevelBudget {
            kind: LevelKind::Global,
            id: String::new(),
            backend,
            period,
            budget,
        };
        let mut out = Vec::new();
        if let Some(d) = self.budget.daily {
            out.push(global(None, Period::Day, d));
        }
        for cap in &self.budget.caps {
            let name = self.backends[cap.backend as usize].name.clone();
            if let Some(m) = cap.monthly {
                out.push(global(Some(name.clone()), Period::Month, m));
            }
            if let Some(d) = cap.daily {
                out.push(global(Some(name), Period::Day, d));
            }
        }
        out
    }

    /// Generates machine code for every rule's condition now, instead of on the first
    /// decision, and returns how many run as machine code. A service calls it before the
    /// policy takes traffic, so that no request waits for code generation. See
    /// [`crate::eval::Program`].
    pub fn compile_native(&self) -> usize {
        self.native_ready.get_or_init(|| {
            let programs: Vec<&crate::eval::Program> =
                self.rules.iter().map(|r| &r.program).collect();
            crate::eval::Program::compile_native_all(&programs);
        });
        self.rules.iter().filter(|r| r.program.has_native()).count()
    }

    /// Makes sure the rules' machine code exists before a decision runs them: generated for
    /// all rules at once on the first decision (unless [`Policy::compile_native`] came first),
    /// so that their code sits together rather than a page per rule in the order they first
    /// happened to run.
    #[inline(always)]
    pub(crate) fn ensure_native(&self) {
        if self.native_ready.get().is_none() {
            self.first_native();
        }
    }

    #[cold]
    #[inline(never)]
    fn first_native(&self) {
        self.compile_native();
    }

    /// A backend's index by name.
    pub fn backend_index(&self, name: &str) -> Option<u16> {
        self.backends
            .iter()
            .position(|b| b.name == name)
            .map(|i| i as u16)
    }

    /// A backend by index.
    pub fn backend(&self, index: u16) -> Option<&Backend> {
        self.backends.get(index as usize)
    }

    /// Backend indices in preference order (priority number, then name).
    pub fn preference_order(&self) -> &[u16] {
        &self.by_priority
    }

    /// The values of an enum type.
    pub fn enum_values(&self, id: crate::expr::EnumId) -> &[String] {
        self.enums
            .get(id.0 as usize)
            .map_or(&[], |d| d.values.as_slice())
    }
}
