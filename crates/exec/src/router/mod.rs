//! The router: decide, reserve, call, fall back — the path from a request to a video.
//!
//! [`Router::generate`] takes the decision's chain (the chosen backend, then its fallbacks,
//! which already respect `fallback_failures`) and walks it. For each backend it checks the
//! breaker, reserves the expected cost in the ledger, takes a breaker permit, calls the
//! adapter within the backend's `max_generation_time_seconds`, and records the outcome in the
//! breaker and the ledger: commit on success, release on failure, keep on "in doubt". A
//! downloaded video is checked first ([`crate::output`]): one that fails its checks is the
//! outcome `bad_output`, committed (the provider finished the job) with that note, a failure
//! for the breaker, and the walk goes on. The first success ends the walk. A moderation
//! refusal ends it too unless the policy says `execution.on_content_rejected: fallback`.
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
//!
//! **Why one module with submodules.** Planning (`plan`), the walk ([`walk`]), what is
//! recorded after each attempt (`record`) and the experiments' view (`experiments`) are
//! each `impl Router` blocks over the router's private fields (its policy, store, adapters,
//! caches), and they call one another; as submodules they share those fields without making
//! them public to the rest of the crate.

mod experiments;
mod generation;
mod plan;
mod record;
pub mod walk;

use std::sync::Arc;
use std::time::Instant;

use tracing::{info_span, Instrument};

use crate::adapter::{Adapter, ConfigError};
use crate::clock::Clock;
use crate::levels;
use crate::sink::VideoSink;
use crate::snapshot::{self, Freshness, StateCache};
pub use experiments::{ArmView, ExperimentView};
pub use generation::{not_eligible, Generation, BAD_OUTPUT, LEDGER_ERROR};
use genroute_core::breaker::BreakerChange;
use genroute_core::explain::Explanation;
use genroute_core::policy::Policy;
use genroute_core::request::Request;
use genroute_core::state::State;
use genroute_store::job::Step;
use genroute_store::{millis, Store, StoreError};
pub use plan::PlanError;
use walk::{NoProgress, Position, Walked};

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
    pub async fn state(&self, failures: u32) -> Result<(State, Freshness), StoreError> {
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
    ) -> Result<(State, Freshness), StoreError> {
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
    pub async fn explain(&self, request: &Request) -> Result<(Explanation, Freshness), StoreError> {
        let (state, fresh) = self.state_for(request, 0).await?;
        Ok((self.policy.explain(request, &state), fresh))
    }

    /// Runs the request: decide, then walk the chain until a backend succeeds. Traced as a
    /// `generate_video` span with the seed's attributes (backend, cost_usd, latency_seconds,
    /// quality_score; the prompt only when enabled), and a child span per attempt.
    pub async fn generate(&self, request: &Request) -> Result<Generation, StoreError> {
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

    async fn run(&self, request: &Request) -> Result<Generation, StoreError> {
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
    pub async fn reset_breaker(&self, backend: &str) -> Result<(), StoreError> {
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
