//! One attempt at one step: the permit, the reservation and the "sent" mark that must all be
//! in the store before the create call, the call, and following the provider's handle to its
//! answer (also for an attempt a dead replica left created).
//!
//! **Why the order.** Money first: nothing is called unless its cost is reserved, and the
//! reservation is marked sent before the call is, because the call may be billed from the
//! moment it is sent. A store failure on the way stops the walk there ([`NotCalled::StoreError`]).

use std::time::Duration;

use tracing::{info_span, Instrument};

use super::settle::expect_of;
use super::{blank, skipped, wall_ms, Ended, Progress};
use crate::adapter::{Adapter, Cancel, FailureClass, JobSpec};
use crate::levels;
use crate::output::Expect;
use crate::router::Router;
use genroute_core::breaker::{BreakerChange, BreakerState};
use genroute_core::request::Request;
use genroute_store::job::{Current, NotCalled, Phase, Step};
use genroute_store::{millis, NewReservation, StoreError};

impl Router {
    /// The adapter of a backend, by name.
    pub fn adapter_of(&self, backend: &str) -> Option<&Adapter> {
        let b = self.policy.backend_index(backend)?;
        self.adapters.get(b as usize)?.as_ref().ok()
    }

    /// The adapter's view of an attempt in progress (for a cancel).
    pub fn job_spec_for(&self, request: &Request, request_id: &str, c: &Current) -> JobSpec {
        let step = Step {
            backend: c.backend.clone(),
            model: c.model.clone(),
            cost: c.cost,
            experiment: None,
        };
        let b = self.policy.backend_index(&c.backend).unwrap_or(0);
        self.job_spec(request, request_id, &step, c.attempt, b)
    }

    /// The clock's now.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The adapter's view of a step.
    fn job_spec(
        &self,
        request: &Request,
        request_id: &str,
        step: &Step,
        attempt: u32,
        b: u16,
    ) -> JobSpec {
        let backend = &self.policy.backends[b as usize];
        JobSpec {
            request_id: request_id.to_string(),
            attempt,
            prompt: request.prompt.clone(),
            negative_prompt: request.negative_prompt.clone(),
            duration_seconds: (request.duration.micros() / 1_000_000).clamp(1, 600) as u32,
            aspect_ratio: self
                .policy
                .enum_values(genroute_core::check::expr::EnumId::ASPECT_RATIO)
                .get(request.aspect_ratio as usize)
                .cloned()
                .unwrap_or_else(|| "16:9".into()),
            model: step.model.clone(),
            deadline: Duration::from_micros(backend.max_latency.micros().max(1) as u64),
        }
    }

    /// The backend of a step in the current policy, with its adapter.
    fn resolve(&self, step: &Step) -> Result<(u16, &Adapter), String> {
        let b = self
            .policy
            .backend_index(&step.backend)
            .ok_or_else(|| format!("backend `{}` is no longer in the policy", step.backend))?;
        match &self.adapters[b as usize] {
            Ok(a) => Ok((b, a)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// One attempt from the start: permit, reservation, sent mark, create, follow. `None`
    /// when the progress said stop.
    pub(super) async fn attempt(
        &self,
        request: &Request,
        request_id: &str,
        step: &Step,
        index: usize,
        number: u32,
        progress: &mut dyn Progress,
    ) -> Option<Ended> {
        let span = info_span!("attempt", backend = %step.backend, cost_usd = step.cost.to_f64(), attempt = number,
                              outcome = tracing::field::Empty, latency_ms = tracing::field::Empty,
                              latency_seconds = tracing::field::Empty, quality_score = tracing::field::Empty);
        let ended = self
            .attempt_inner(request, request_id, step, index, number, progress)
            .instrument(span.clone())
            .await?;
        span.record("outcome", tracing::field::display(&ended.attempt.outcome));
        span.record("latency_ms", ended.attempt.latency_ms);
        span.record("latency_seconds", ended.attempt.latency_ms as f64 / 1000.0);
        if let Some(q) = ended.video.as_ref().and_then(|(s, _)| s.quality) {
            span.record("quality_score", q.to_f64());
        }
        Some(ended)
    }

    async fn attempt_inner(
        &self,
        request: &Request,
        request_id: &str,
        step: &Step,
        index: usize,
        number: u32,
        progress: &mut dyn Progress,
    ) -> Option<Ended> {
        let attempt = blank(&step.backend, step.model.clone());
        let done = |attempt| {
            Some(Ended {
                attempt,
                video: None,
            })
        };
        let (b, adapter) = match self.resolve(step) {
            Ok(x) => x,
            Err(e) => return done(skipped(attempt, NotCalled::NotConfigured, e)),
        };
        let backend = &self.policy.backends[b as usize];
        let cfg = backend.breaker;
        let now = self.clock.now();
        let (breaker, admitted) = match self.breaker(b, BreakerChange::Acquire, millis(now)).await {
            Ok(r) => r,
            Err(e) => return done(skipped(attempt, NotCalled::StoreError, e.to_string())),
        };
        if !admitted {
            let why = if breaker.state_at(millis(now), &cfg) == BreakerState::Open {
                "circuit breaker is open"
            } else {
                "circuit breaker refused the call (half-open probes taken)"
            };
            return done(skipped(attempt, NotCalled::BreakerOpen, why.into()));
        }
        // From here on the permit is ours: every path hands it back or reports an outcome,
        // except after a store failure. Then the attempt asks nothing more of the store, so
        // that a stalled store costs one deadline, not one per call: what it leaves open
        // settles by itself (an unsent reservation is released at its expiry, a half-open
        // probe slot is reclaimed after the breaker's timeout).
        let budgets = self.budgets(request);
        let reservation = NewReservation {
            request_id: request_id.to_string(),
            backend: step.backend.clone(),
            model: step.model.clone(),
            amount: step.cost,
            ttl_ms: backend.max_latency.micros() / 1000 * 2 + 60_000,
            levels: levels::limits(&budgets, &step.backend, now),
            payer: match &request.tenancy {
                Some(t) => genroute_store::Payer {
                    key: Some(t.key.clone()),
                    team: Some(t.team.clone()),
                },
                None => Default::default(),
            },
        };
        let id = match self
            .store
            .reserve(&reservation, self.policy.budget.monthly, now)
            .await
        {
            Ok(id) => id,
            Err(e @ StoreError::OverBudget { .. }) => {
                self.record_breaker(b, BreakerChange::Neutral).await;
                let why = levels::refusal(&e, &budgets, &step.backend, now);
                return done(skipped(attempt, NotCalled::OverBudget, why));
            }
            Err(e) => return done(skipped(attempt, NotCalled::StoreError, e.to_string())),
        };
        let mut current = Current {
            step: index,
            attempt: number,
            backend: step.backend.clone(),
            model: step.model.clone(),
            reservation: id.clone(),
            cost: step.cost,
            phase: Phase::Reserved,
            handle: None,
            started_ms: wall_ms(),
        };
        if !progress.current(&current).await {
            return None;
        }
        // The create call may be billed from the moment it is sent: say so first.
        if let Err(e) = self.store.mark_sent(&id, self.clock.now()).await {
            tracing::warn!(reservation = %id, "a reservation whose call was never sent stays open until its expiry releases it: {e}");
            return done(skipped(attempt, NotCalled::StoreError, e.to_string()));
        }
        current.phase = Phase::Sent;
        current.started_ms = wall_ms();
        if !progress.current(&current).await {
            return None;
        }
        let job = self.job_spec(request, request_id, step, number, b);
        let created = adapter.create(&job, job.deadline).await;
        match created {
            Ok(handle) => {
                current.phase = Phase::Created;
                current.handle = Some(handle);
                if !progress.current(&current).await {
                    return None;
                }
                Box::pin(self.follow(request, request_id, step, &current)).await
            }
            Err(f) => {
                let expect = Expect::new(0.0, "");
                Some(
                    self.settle(b, request_id, attempt, &current, Err(f), &expect)
                        .await,
                )
            }
        }
    }

    /// Follows a created attempt's handle to its outcome, within what is left of its
    /// deadline, and settles it.
    pub(super) async fn follow(
        &self,
        request: &Request,
        request_id: &str,
        step: &Step,
        c: &Current,
    ) -> Option<Ended> {
        let attempt = blank(&c.backend, c.model.clone());
        let (b, adapter) = match self.resolve(step) {
            Ok(x) => x,
            Err(e) => {
                // The backend left the policy while its job ran: it may still be billed.
                let mut a = attempt;
                a.outcome = FailureClass::Retryable.as_str().into();
                a.message = Some(format!("{e}; its job may exist at the provider"));
                a.in_doubt = true;
                a.cost_usd = c.cost;
                let recorded = self
                    .store
                    .keep_in_doubt(&c.reservation, "backend_removed", self.clock.now())
                    .await;
                return Some(Ended {
                    attempt: self.noted(a, &c.reservation, recorded),
                    video: None,
                });
            }
        };
        let job = self.job_spec(request, request_id, step, c.attempt, b);
        let elapsed = Duration::from_millis((wall_ms() - c.started_ms).max(0) as u64);
        let left = job.deadline.saturating_sub(elapsed);
        let Some(handle) = &c.handle else {
            return None;
        };
        let mut outcome = adapter.resume(handle, &job, left).await;
        if let Err(f) = &mut outcome {
            if f.deadline {
                // Given up: stop the job at the provider too, so that a self-hosted GPU does
                // not work on for a result nobody reads; the money follows its answer.
                match adapter.cancel(handle, &job).await {
                    Cancel::NothingProduced => {
                        f.in_doubt = false;
                        f.message
                            .push_str("; cancelled at the provider before it started");
                    }
                    Cancel::MaybeProduced => f.message.push_str("; cancelled at the provider"),
                    Cancel::Unsupported => {}
                    Cancel::Failed(e) => f
                        .message
                        .push_str(&format!("; the cancel at the provider failed: {e}")),
                }
            }
        }
        let expect = expect_of(
            &self.policy.backends[b as usize],
            request.duration.to_f64(),
            &job.aspect_ratio,
        );
        Some(Box::pin(self.settle(b, request_id, attempt, c, outcome, &expect)).await)
    }
}
