//! Execution: decide, reserve, call, fall back — the path from a request to a video.
//!
//! [`Router::generate`] takes the decision's chain (the chosen backend, then its fallbacks,
//! which already respect `fallback_failures`) and walks it. For each backend it checks the
//! breaker, reserves the expected cost in the ledger, takes a breaker permit, calls the
//! adapter within the backend's `max_generation_time_seconds`, and records the outcome in the
//! breaker and the ledger: commit on success, release on failure, keep on "in doubt". The
//! first success ends the walk. A moderation refusal ends it too unless the policy says
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

pub mod snapshot;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{info_span, Instrument};

use crate::adapter::{Adapter, ConfigError, FailureClass, JobSpec, Success, Video};
use crate::breaker::BreakerChange;
use crate::decide::{decide, Decision};
use crate::eval::BreakerState;
use crate::explain::Explanation;
use crate::ledger::{millis, LedgerError, NewReservation, Store};
use crate::num::Fixed;
use crate::policy::Policy;
use crate::request::Request;
use crate::state::State;
use snapshot::{Freshness, StateCache};

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

/// The outcome of an attempt that stopped because the ledger store failed before the call.
pub const LEDGER_ERROR: &str = "ledger_error";

/// One attempt in a generation.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Attempt {
    /// Backend tried.
    pub backend: String,
    /// Model asked for.
    pub model: Option<String>,
    /// `success`, a failure class (`retryable`, `terminal`, `content_rejected`, `no_video`),
    /// or why it was not called: `breaker_open`, `over_budget`, `not_configured`,
    /// `ledger_error` (the store failed before the call, so the walk stopped).
    pub outcome: String,
    /// Wall-clock milliseconds spent on the call (0 when not called).
    pub latency_ms: u64,
    /// Simulated seconds, for simulated backends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub simulated_seconds: Option<Fixed>,
    /// Money committed (or kept in doubt) for this attempt.
    pub cost_usd: Fixed,
    /// Details of a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// True when the call may have started a billable job whose outcome is unknown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_doubt: bool,
}

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
    trace_prompts: bool,
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
        Router {
            policy,
            store,
            adapters,
            clock,
            sink,
            cache,
            trace_prompts: false,
        }
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

    /// Explains what would happen now.
    pub async fn explain(
        &self,
        request: &Request,
    ) -> Result<(Explanation, Freshness), LedgerError> {
        let (state, fresh) = self.state(0).await?;
        Ok((self.policy.explain(request, &state), fresh))
    }

    /// Decides, and lists what would be called, without calling or spending anything.
    pub async fn dry_run(&self, request: &Request) -> Result<Generation, LedgerError> {
        let (state, _) = self.state(0).await?;
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
            .enum_values(crate::check::expr::EnumId::PRIORITY)
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

    async fn run(&self, request: &Request) -> Result<Generation, LedgerError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (state, _) = self.state(0).await?;
        let decision = info_span!("decide", request_id = %request_id)
            .in_scope(|| decide(&self.policy, request, &state));
        let mut out = Generation {
            request_id: request_id.clone(),
            backend: None,
            model: None,
            video: None,
            cost_usd: Fixed::ZERO,
            quality: None,
            attempts: Vec::new(),
            error: None,
            dry_run: false,
        };
        if decision.backend.is_none() {
            out.error = Some(
                "no backend is eligible for this request; run `genroute explain` for the reasons"
                    .into(),
            );
            return Ok(out);
        }
        let steps: Vec<_> = self.chain(&decision).collect();
        for (n, (b, model, cost)) in steps.into_iter().enumerate() {
            let backend = &self.policy.backends[b as usize];
            let span = info_span!("attempt", backend = %backend.name, cost_usd = cost.to_f64(), attempt = n + 1,
                                  outcome = tracing::field::Empty, latency_ms = tracing::field::Empty,
                                  latency_seconds = tracing::field::Empty, quality_score = tracing::field::Empty);
            let (attempt, success) = self
                .attempt(b, model, cost, &request_id, n as u32 + 1, request)
                .instrument(span.clone())
                .await;
            span.record("outcome", tracing::field::display(&attempt.outcome));
            span.record("latency_ms", attempt.latency_ms);
            span.record("latency_seconds", attempt.latency_ms as f64 / 1000.0);
            if let Some(q) = success.as_ref().and_then(|(s, _)| s.quality) {
                span.record("quality_score", q.to_f64());
            }
            out.cost_usd = out
                .cost_usd
                .checked_add(attempt.cost_usd)
                .unwrap_or(out.cost_usd);
            let rejected = attempt.outcome == FailureClass::ContentRejected.as_str();
            let store_failed = attempt.outcome == LEDGER_ERROR;
            out.attempts.push(attempt);
            if let Some((s, video)) = success {
                out.backend = Some(backend.name.clone());
                out.model = s.model.clone();
                out.video = Some(video);
                out.quality = s.quality;
                return Ok(out);
            }
            if store_failed {
                out.error = Some(
                    "the ledger store is unavailable, so the walk stopped before calling the backend (fail closed); nothing was spent on it".into(),
                );
                return Ok(out);
            }
            if rejected && !self.policy.execution.fallback_on_content_rejected {
                out.error = Some(
                    "the prompt was refused by moderation; execution.on_content_rejected is `stop`"
                        .into(),
                );
                return Ok(out);
            }
        }
        out.error = Some("every backend in the chain failed or was unavailable".into());
        Ok(out)
    }

    async fn attempt(
        &self,
        b: u16,
        model: Option<String>,
        cost: Fixed,
        request_id: &str,
        number: u32,
        request: &Request,
    ) -> (Attempt, Option<(Success, String)>) {
        let backend = &self.policy.backends[b as usize];
        let mut attempt = Attempt {
            backend: backend.name.clone(),
            model: model.clone(),
            outcome: String::new(),
            latency_ms: 0,
            simulated_seconds: None,
            cost_usd: Fixed::ZERO,
            message: None,
            in_doubt: false,
        };
        let skip = |mut a: Attempt, outcome: &str, message: String| {
            a.outcome = outcome.to_string();
            a.message = Some(message);
            (a, None)
        };
        let adapter = match &self.adapters[b as usize] {
            Ok(a) => a,
            Err(e) => return skip(attempt, "not_configured", e.to_string()),
        };
        let (name, cfg) = (&backend.name, backend.breaker);
        let now = self.clock.now();
        let (breaker, admitted) = match self.breaker(b, BreakerChange::Acquire, millis(now)).await {
            Ok(r) => r,
            Err(e) => return skip(attempt, LEDGER_ERROR, e.to_string()),
        };
        if !admitted {
            let why = if breaker.state_at(millis(now), &cfg) == BreakerState::Open {
                "circuit breaker is open"
            } else {
                "circuit breaker refused the call (half-open probes taken)"
            };
            return skip(attempt, "breaker_open", why.into());
        }
        // From here on the permit is ours: every path hands it back or reports an outcome,
        // except after a store failure. Then the attempt asks nothing more of the store, so
        // that a stalled store costs one deadline, not one per call: what it leaves open
        // settles by itself (an unsent reservation is released at its expiry, a half-open
        // probe slot is reclaimed after the breaker's timeout).
        let give_back = || self.record_breaker(b, BreakerChange::Neutral);
        let reservation = NewReservation {
            request_id: request_id.to_string(),
            backend: name.clone(),
            model: model.clone(),
            amount: cost,
            ttl_ms: backend.max_latency.micros() / 1000 * 2 + 60_000,
        };
        let id = match self
            .store
            .reserve(&reservation, self.policy.budget.monthly, now)
            .await
        {
            Ok(id) => id,
            Err(e @ LedgerError::OverBudget { .. }) => {
                give_back().await;
                return skip(attempt, "over_budget", e.to_string());
            }
            Err(e) => return skip(attempt, LEDGER_ERROR, e.to_string()),
        };
        // The create call may be billed from the moment it is sent: say so first.
        if let Err(e) = self.store.mark_sent(&id, self.clock.now()).await {
            tracing::warn!(reservation = %id, "a reservation whose call was never sent stays open until its expiry releases it: {e}");
            return skip(attempt, LEDGER_ERROR, e.to_string());
        }
        let job = JobSpec {
            request_id: request_id.to_string(),
            attempt: number,
            prompt: request.prompt.clone(),
            negative_prompt: request.negative_prompt.clone(),
            duration_seconds: (request.duration.micros() / 1_000_000).clamp(1, 600) as u32,
            aspect_ratio: self
                .policy
                .enum_values(crate::check::expr::EnumId::ASPECT_RATIO)
                .get(request.aspect_ratio as usize)
                .cloned()
                .unwrap_or_else(|| "16:9".into()),
            model,
            deadline: std::time::Duration::from_micros(backend.max_latency.micros().max(1) as u64),
        };
        let started = Instant::now();
        let outcome = adapter.generate(&job).await;
        attempt.latency_ms = started.elapsed().as_millis() as u64;
        let done = self.clock.now();
        let (recorded, change) = match outcome {
            Ok(success) => {
                let video = match &success.video {
                    Video::Uri(u) => Ok(u.clone()),
                    Video::Bytes { data, mime } => self.sink.store(request_id, data, mime),
                };
                let recorded = self.store.commit(&id, done).await;
                attempt.cost_usd = cost;
                attempt.simulated_seconds = success.simulated_seconds;
                attempt.model = success.model.clone().or(attempt.model);
                attempt.outcome = "success".into();
                let video = match video {
                    Ok(v) => Some((success, v)),
                    Err(message) => {
                        // Paid for, but lost locally: keep the spend, report the failure.
                        attempt.message = Some(format!(
                            "the video was generated but could not be saved: {message}"
                        ));
                        None
                    }
                };
                if recorded.is_ok() {
                    self.record_breaker(b, BreakerChange::Success).await;
                }
                return (self.noted(attempt, &id, recorded), video);
            }
            Err(f) => {
                let recorded = if f.in_doubt {
                    attempt.cost_usd = cost;
                    self.store.keep_in_doubt(&id, f.class.as_str(), done).await
                } else {
                    self.store.release(&id, f.class.as_str(), done).await
                };
                attempt.outcome = f.class.as_str().to_string();
                attempt.message = Some(f.message);
                attempt.in_doubt = f.in_doubt;
                // A refusal says nothing about the backend's health: hand the probe back.
                let change = if f.class == FailureClass::ContentRejected {
                    BreakerChange::Neutral
                } else {
                    BreakerChange::Failure
                };
                (recorded, change)
            }
        };
        if recorded.is_ok() {
            self.record_breaker(b, change).await;
        }
        (self.noted(attempt, &id, recorded), None)
    }

    /// Applies a change to backend `b`'s breaker. A change that leaves the breaker as the
    /// state cache last saw it within its TTL (a call admitted, or a success, while closed; a
    /// call refused while open) needs no store round trip: deciding already trusts figures
    /// that old, and nothing is spent on them. Any change that changes something goes to the
    /// store, atomically.
    async fn breaker(
        &self,
        b: u16,
        change: BreakerChange,
        now_ms: i64,
    ) -> Result<(crate::breaker::Breaker, bool), LedgerError> {
        let backend = &self.policy.backends[b as usize];
        if let Some(known) = self
            .cache
            .fresh()
            .and_then(|s| s.breakers.get(b as usize).copied())
        {
            let mut next = known;
            let admitted = next.apply(change, now_ms, &backend.breaker);
            if next == known {
                return Ok((next, admitted));
            }
        }
        self.store
            .update_breaker(&backend.name, change, now_ms, backend.breaker)
            .await
    }

    /// Reports a call's verdict to its backend's breaker; a store failure here is logged (the
    /// breaker only misses one data point).
    async fn record_breaker(&self, b: u16, change: BreakerChange) {
        let at = millis(self.clock.now());
        if let Err(e) = self.breaker(b, change, at).await {
            let name = &self.policy.backends[b as usize].name;
            tracing::warn!(backend = %name, "could not record a call's outcome in its breaker: {e}");
        }
    }

    /// Adds to an attempt's message when the ledger could not record its outcome. The money
    /// is still counted: the reservation was marked sent, so it becomes in doubt at expiry.
    fn noted(&self, mut attempt: Attempt, id: &str, recorded: Result<(), LedgerError>) -> Attempt {
        if let Err(e) = recorded {
            tracing::error!(reservation = %id, "the ledger did not record a call's outcome: {e}");
            let note = format!(
                "the ledger did not record this outcome ({e}); reservation `{id}` keeps counting and becomes in doubt at its expiry"
            );
            attempt.message = Some(match attempt.message.take() {
                Some(m) => format!("{m}; {note}"),
                None => note,
            });
        }
        attempt
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
