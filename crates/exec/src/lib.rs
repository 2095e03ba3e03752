//! Execution: decide, reserve, call, fall back — the path from a request to a video.
//!
//! [`Router::generate`] takes the decision's chain (the chosen backend, then its fallbacks,
//! which already respect `fallback_failures`) and walks it. For each backend it checks the
//! breaker, reserves the expected cost in the ledger, takes a breaker permit, calls the
//! adapter within the backend's `max_generation_time_seconds`, and records the outcome in the
//! breaker and the ledger: commit on success, release on failure, keep on "in doubt". A
//! downloaded video is checked first ([`crate::output`]): one that fails its checks is the
//! outcome `bad_output`, committed (the provider finished the job) with that note, a failure
//! for the breaker, and the walk goes on. The first success ends the walk. A moderation refusal ends it too unless the policy says
//! `execution.on_content_rejected: fallback`.
//!
//! The router holds the policy behind an `Arc` (a request finishes on the policy it started
//! with), the store, and the adapters built once from the policy. The clock is injected.
//!
//! **Money and a failing store.** Before a backend is called, the breaker permit, the
//! reservation and the "create sent" mark must all be in the store; if any of them fails, the
//! walk stops there with a `ledger_error` attempt and nothing is called. After the call, the
//! outcome is recorded as well as the store allows: a video that was produced is returned
//! even if its commit could not be written (its reservation, marked sent, keeps counting and
//! becomes in doubt at its expiry), so neither a paid video nor a counted cent is lost.

pub mod adapter;
mod experiments;
pub mod jobs;
pub mod levels;
pub mod output;
mod record;
pub mod simulate;
pub mod snapshot;
pub mod walk;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{info_span, Instrument};

use crate::adapter::{Adapter, ConfigError};
pub use experiments::{ArmView, ExperimentView};
use genroute_core::breaker::BreakerChange;
use genroute_core::decide::{decide, Decision};
use genroute_core::explain::Explanation;
use genroute_core::num::Fixed;
use genroute_core::policy::Policy;
use genroute_core::request::Request;
use genroute_core::state::State;
pub use genroute_store::job::{Attempt, Current, Phase, Step};
use genroute_store::{millis, LedgerError, Month, Store, Summary};
use snapshot::{Freshness, StateCache};
pub use walk::{NoProgress, Position, Progress, Walked};

/// Where the time comes from.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock stopped at `t`.
    pub fn new(t: DateTime<Utc>) -> ManualClock {
        ManualClock(std::sync::Mutex::new(t))
    }

    /// Moves it forward.
    pub fn advance(&self, d: chrono::Duration) {
        if let Ok(mut t) = self.0.lock() {
            *t += d;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.lock().map(|t| *t).unwrap_or_default()
    }
}

/// Why an explicit target could not be planned.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PlanError {
    /// The store failed (the decision needs its figures).
    #[error(transparent)]
    Store(LedgerError),
    /// No backend or model has that name.
    #[error("{0}")]
    UnknownTarget(String),
    /// The target exists but is not eligible (why is in the message).
    #[error("{0}")]
    Ineligible(String),
}

/// A generation for which no backend is eligible.
pub fn not_eligible(request_id: &str) -> Generation {
    Generation {
        request_id: request_id.to_string(),
        backend: None,
        model: None,
        video: None,
        cost_usd: Fixed::ZERO,
        quality: None,
        attempts: Vec::new(),
        error: Some(
            "no backend is eligible for this request; run `genroute explain` for the reasons"
                .into(),
        ),
        dry_run: false,
    }
}

/// The outcome of an attempt that stopped because the ledger store failed before the call.
pub const LEDGER_ERROR: &str = "ledger_error";

/// The outcome (and ledger note) of an attempt whose delivered video failed its output
/// checks: the provider finished the job, so its money is spent.
pub const BAD_OUTPUT: &str = "bad_output";

/// The result of a generation.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Generation {
    /// Request id (also in the ledger).
    pub request_id: String,
    /// Backend that produced the video, if one did.
    pub backend: Option<String>,
    /// Model used.
    pub model: Option<String>,
    /// URI of the video, or the path it was written to.
    pub video: Option<String>,
    /// Total committed for this request (including in-doubt attempts).
    pub cost_usd: Fixed,
    /// Quality reported by the backend, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<Fixed>,
    /// Every attempt, in order.
    pub attempts: Vec<Attempt>,
    /// Why nothing was produced, when nothing was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// True for `--dry-run`: nothing was called and nothing spent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// Where bytes returned by a backend are written.
pub trait VideoSink: Send + Sync {
    /// Stores bytes and returns a path or URI for them.
    fn store(&self, request_id: &str, data: &[u8], mime: &str) -> Result<String, String>;
}

/// Writes videos into a directory.
#[derive(Debug, Clone)]
pub struct DirSink(pub std::path::PathBuf);

impl VideoSink for DirSink {
    fn store(&self, request_id: &str, data: &[u8], mime: &str) -> Result<String, String> {
        let ext = if mime.contains("webm") { "webm" } else { "mp4" };
        std::fs::create_dir_all(&self.0)
            .map_err(|e| format!("cannot create `{}`: {e}", self.0.display()))?;
        let path = self.0.join(format!("{request_id}.{ext}"));
        std::fs::write(&path, data)
            .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
        Ok(path.display().to_string())
    }
}

/// The executor.
pub struct Router {
    policy: Arc<Policy>,
    store: Arc<dyn Store>,
    adapters: Vec<Result<Adapter, ConfigError>>,
    clock: Arc<dyn Clock>,
    sink: Arc<dyn VideoSink>,
    cache: Arc<StateCache>,
    levels: Arc<levels::LevelCache>,
    trace_prompts: bool,
    /// The ffmpeg of the frame checks (`None`: they are skipped), found on the `PATH` when the
    /// router is built.
    ffmpeg: Option<std::path::PathBuf>,
}

impl Router {
    /// Builds adapters for every backend. `env` supplies API keys.
    pub fn new(
        policy: Arc<Policy>,
        store: Arc<dyn Store>,
        env: &dyn Fn(&str) -> Option<String>,
        clock: Arc<dyn Clock>,
        sink: Arc<dyn VideoSink>,
    ) -> Router {
        let client = crate::adapter::http_client();
        let policy_frames = policy.execution.output_checks.frames;
        let adapters = policy
            .backends
            .iter()
            .map(|b| Adapter::new(b, env, &client))
            .collect();
        let cache = Arc::new(StateCache::new(
            &policy,
            store.clone(),
            clock.clone(),
            std::time::Duration::ZERO,
            snapshot::DEFAULT_MAX_STALE,
        ));
        let level_cache = Arc::new(levels::LevelCache::new(
            store.clone(),
            std::time::Duration::ZERO,
            snapshot::DEFAULT_MAX_STALE,
        ));
        Router {
            policy,
            store,
            adapters,
            clock,
            sink,
            cache,
            levels: level_cache,
            trace_prompts: false,
            ffmpeg: match policy_frames {
                genroute_core::policy::FrameChecks::Off => None,
                _ => crate::output::frames::find_ffmpeg(),
            },
        }
    }

    /// Uses this ffmpeg for the frame checks (`None`: skip them), instead of the one found on
    /// the `PATH`.
    pub fn with_ffmpeg(mut self, ffmpeg: Option<std::path::PathBuf>) -> Router {
        self.ffmpeg = ffmpeg;
        self
    }

    /// Lets the `generate_video` trace span carry the prompt text (off by default: prompts
    /// can hold personal or confidential text).
    pub fn with_trace_prompts(mut self, on: bool) -> Router {
        self.trace_prompts = on;
        self
    }

    /// Lets decisions reuse the ledger's figures (spend, breakers) for up to `ttl`, so that
    /// deciding does not query a shared store on every request, and decide on figures up to
    /// `max_stale` old when the store does not answer (see [`snapshot`]). Reserve and commit
    /// still go to the store every time, so the budget stays exact; only the *decision* may
    /// see older figures. A zero TTL (the default) asks for fresh figures every time.
    pub fn with_state_cache(
        mut self,
        ttl: std::time::Duration,
        max_stale: std::time::Duration,
    ) -> Router {
        self.cache = Arc::new(StateCache::new(
            &self.policy,
            self.store.clone(),
            self.clock.clone(),
            ttl,
            max_stale,
        ));
        self.levels = Arc::new(levels::LevelCache::new(self.store.clone(), ttl, max_stale));
        self
    }

    /// The policy in use.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// The state cache (its last snapshot feeds the metrics without asking the store).
    pub fn cache(&self) -> &Arc<StateCache> {
        &self.cache
    }

    /// The live state: the month's spend and reservations from the ledger, and breaker
    /// states, possibly from the cache, with how fresh they are.
    pub async fn state(&self, failures: u32) -> Result<(State, Freshness), LedgerError> {
        let (snap, fresh) = self.cache.get().await?;
        Ok((self.cache.state(&self.policy, &snap, failures), fresh))
    }

    /// Every budget beside the monthly one that applies to `request`: the policy's own
    /// (daily, per backend), then its caller's (organisation, team, key).
    pub fn budgets(&self, request: &Request) -> Vec<genroute_core::levels::LevelBudget> {
        let mut out = self.policy.budget_levels();
        if let Some(t) = &request.tenancy {
            out.extend(t.budgets.iter().cloned());
        }
        out
    }

    /// [`Router::state`] with the figures of `request`'s budget levels.
    pub async fn state_for(
        &self,
        request: &Request,
        failures: u32,
    ) -> Result<(State, Freshness), LedgerError> {
        let (mut state, fresh) = self.state(failures).await?;
        let budgets = self.budgets(request);
        if !budgets.is_empty() {
            let now = state.now;
            let keys: Vec<String> = budgets.iter().map(|b| b.key(now)).collect();
            let totals = self.levels.totals(&keys, now).await?;
            state.levels = levels::figures(&self.policy, &budgets, &totals);
        }
        Ok((state, fresh))
    }

    /// Explains what would happen now.
    pub async fn explain(
        &self,
        request: &Request,
    ) -> Result<(Explanation, Freshness), LedgerError> {
        let (state, fresh) = self.state_for(request, 0).await?;
        Ok((self.policy.explain(request, &state), fresh))
    }

    /// Decides, and lists what would be called, without calling or spending anything.
    pub async fn dry_run(&self, request: &Request) -> Result<Generation, LedgerError> {
        let (state, _) = self.state_for(request, 0).await?;
        let decision = self.policy.decide(request, &state);
        let attempts = self
            .chain(&decision)
            .map(|(b, model, cost)| Attempt {
                backend: self.policy.backends[b as usize].name.clone(),
                model,
                outcome: "not_called".into(),
                latency_ms: 0,
                simulated_seconds: None,
                cost_usd: cost,
                message: match &self.adapters[b as usize] {
                    Ok(a) if a.is_remote() => Some("would call the backend's API".into()),
                    Ok(_) => Some("would run the simulator".into()),
                    Err(e) => Some(e.to_string()),
                },
                in_doubt: false,
                check: None,
                kept_video: None,
            })
            .collect();
        Ok(Generation {
            request_id: uuid::Uuid::new_v4().to_string(),
            backend: decision
                .backend
                .map(|b| self.policy.backends[b as usize].name.clone()),
            model: decision.model.map(str::to_string),
            video: None,
            cost_usd: Fixed::ZERO,
            quality: None,
            attempts,
            error: decision
                .backend
                .is_none()
                .then(|| "no backend is eligible for this request".to_string()),
            dry_run: true,
        })
    }

    /// The chain to walk: (backend, model, expected cost).
    fn chain<'a>(
        &'a self,
        d: &'a Decision<'_>,
    ) -> impl Iterator<Item = (u16, Option<String>, Fixed)> + 'a {
        let first = d.backend.map(|b| (b, d.model.map(str::to_string), d.cost));
        let rest = d.fallbacks.iter().map(|&b| {
            let backend = &self.policy.backends[b as usize];
            (
                b,
                backend.default_model().map(str::to_string),
                backend.cost_of(None),
            )
        });
        first.into_iter().chain(rest)
    }

    /// Runs the request: decide, then walk the chain until a backend succeeds. Traced as a
    /// `generate_video` span with the seed's attributes (backend, cost_usd, latency_seconds,
    /// quality_score; the prompt only when enabled), and a child span per attempt.
    pub async fn generate(&self, request: &Request) -> Result<Generation, LedgerError> {
        let priority = self
            .policy
            .enum_values(genroute_core::check::expr::EnumId::PRIORITY)
            .get(request.priority as usize)
            .cloned()
            .unwrap_or_default();
        let span = info_span!("generate_video", priority = %priority, backend = tracing::field::Empty,
            cost_usd = tracing::field::Empty, latency_seconds = tracing::field::Empty,
            quality_score = tracing::field::Empty, outcome = tracing::field::Empty, prompt = tracing::field::Empty);
        if self.trace_prompts {
            span.record("prompt", request.prompt.as_str());
        }
        let started = Instant::now();
        let result = self.run(request).instrument(span.clone()).await;
        if let Ok(g) = &result {
            span.record("backend", g.backend.as_deref().unwrap_or("none"));
            span.record("cost_usd", g.cost_usd.to_f64());
            span.record("latency_seconds", started.elapsed().as_secs_f64());
            span.record(
                "outcome",
                if g.video.is_some() {
                    "success"
                } else {
                    "failure"
                },
            );
            if let Some(q) = g.quality {
                span.record("quality_score", q.to_f64());
            }
        }
        result
    }

    /// Decides, and plans the chain to walk. `None` steps when nothing is eligible.
    pub async fn plan(
        &self,
        request: &Request,
        request_id: &str,
    ) -> Result<Vec<Step>, LedgerError> {
        let (state, _) = self.state_for(request, 0).await?;
        let keyed;
        let request = if request.id.is_none() && self.policy.rules.iter().any(|r| r.split.is_some())
        {
            // A split hashes the request id when its key field is unset.
            keyed = Request {
                id: Some(request_id.to_string()),
                ..request.clone()
            };
            &keyed
        } else {
            request
        };
        let decision = info_span!("decide", request_id = %request_id)
            .in_scope(|| decide(&self.policy, request, &state));
        let experiment = self.experiment_of(&decision);
        Ok(self
            .chain(&decision)
            .enumerate()
            .map(|(i, (b, model, cost))| Step {
                backend: self.policy.backends[b as usize].name.clone(),
                model,
                cost,
                experiment: if i == 0 { experiment.clone() } else { None },
            })
            .collect())
    }

    /// Plans for an explicit target, as a rule's target would be decided: `target` names a
    /// backend, or a model one of the backends lists (the first, in preference order).
    pub async fn plan_target(
        &self,
        request: &Request,
        target: &str,
    ) -> Result<Vec<Step>, PlanError> {
        let policy = &self.policy;
        let by_name = policy.backend_index(target).map(|b| (b, None));
        let by_model = || {
            policy.preference_order().iter().copied().find_map(|b| {
                let backend = &policy.backends[b as usize];
                backend
                    .models
                    .iter()
                    .find(|m| m.id == target)
                    .map(|m| (b, Some(m.id.as_str())))
            })
        };
        let Some((b, model)) = by_name.or_else(by_model) else {
            return Err(PlanError::UnknownTarget(format!(
                "`{target}` is neither a backend nor a model of this policy; leave `model` out (or give `genroute`) to let the policy decide"
            )));
        };
        let (state, _) = self.state_for(request, 0).await.map_err(PlanError::Store)?;
        match genroute_core::decide::decide_target(policy, request, &state, b, model) {
            Ok(d) => Ok(self
                .chain(&d)
                .map(|(b, model, cost)| Step {
                    backend: policy.backends[b as usize].name.clone(),
                    model,
                    cost,
                    experiment: None,
                })
                .collect()),
            Err(why) => {
                let backend = &policy.backends[b as usize];
                let cost = backend.cost_of(model);
                let reasons = genroute_core::explain::reasons(
                    backend,
                    why,
                    cost,
                    policy,
                    &state,
                    Some(request.priority),
                );
                Err(PlanError::Ineligible(format!(
                    "`{target}` cannot serve this request now: {}",
                    reasons.join("; ")
                )))
            }
        }
    }

    async fn run(&self, request: &Request) -> Result<Generation, LedgerError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let steps = self.plan(request, &request_id).await?;
        Ok(self.run_planned(request, &request_id, &steps).await)
    }

    /// Walks a planned chain with nothing recorded between the steps.
    pub async fn run_planned(
        &self,
        request: &Request,
        request_id: &str,
        steps: &[Step],
    ) -> Generation {
        if steps.is_empty() {
            return not_eligible(request_id);
        }
        match self
            .walk(
                request,
                request_id,
                steps,
                Position::default(),
                &mut NoProgress,
            )
            .await
        {
            Walked::Done(g) | Walked::InDoubt(g) => g,
            Walked::Lost => not_eligible(request_id),
        }
    }

    /// Resets a backend's breaker to closed (an operator action).
    pub async fn reset_breaker(&self, backend: &str) -> Result<(), LedgerError> {
        let cfg = self
            .policy
            .backend_index(backend)
            .and_then(|i| self.policy.backend(i))
            .map(|b| b.breaker)
            .unwrap_or_default();
        let at = millis(self.clock.now());
        self.store
            .update_breaker(backend, BreakerChange::Reset, at, cfg)
            .await
            .map(|_| ())
    }
}

/// The same figures as `genroute budget show --format json`.
pub async fn budget_summary(
    store: &dyn Store,
    policy: &Policy,
    month: Month,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Summary, LedgerError> {
    let t = store.totals(month, now).await?;
    Ok(Summary::new(
        month,
        &t,
        policy.budget.monthly,
        policy.budget.threshold,
    ))
}
