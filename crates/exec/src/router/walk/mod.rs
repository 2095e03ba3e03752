//! The walk along a decision's chain, one attempt after another, reporting each step that
//! matters to a [`Progress`], and able to start from the middle: the attempt a dead replica
//! left in progress, at its recorded [`Phase`].
//!
//! **Why one walk for jobs and plain calls.** `genroute generate` and a durable job do the same
//! thing: permit, reserve, mark sent, create, follow the handle, record the outcome, fall
//! back. The job adds only persistence between the steps, so it is a [`Progress`] here (the
//! plain call's is [`NoProgress`]), and a resumed job is a walk whose [`Position`] has an
//! attempt in progress. What the walk does at each phase of a resumed attempt:
//! - `Reserved` (the create call was never sent): release the reservation and redo the step;
//! - `Sent` (sent, but the answer was never recorded): the job may exist and be billed: keep
//!   the reservation in doubt and stop, never submitting it again;
//! - `Created` (the provider's handle is recorded): resume polling it.
//!
//! A [`Progress`] that answers `false` (the job's owner changed: another replica took it over)
//! stops the walk at once, leaving the ledger to that replica.
//!
//! The walk is in three files: this one, the loop over the chain and what it decides between
//! attempts (fall back, stop, retry for quality); `attempt`, one attempt up to the
//! provider's answer; `settle`, what that answer does to the ledger, the breaker and the
//! video.

use super::{Generation, Router};
use crate::adapter::{FailureClass, Success};
use genroute_core::num::Fixed;
use genroute_core::request::Request;
use genroute_store::job::{Attempt, Current, NotCalled, Phase, Step};

mod attempt;
mod settle;

/// Where a walk starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Position {
    /// The next step to try, when no attempt is in progress.
    pub next_step: usize,
    /// The attempt in progress.
    pub current: Option<Current>,
    /// The attempts that ended.
    pub attempts: Vec<Attempt>,
}

/// What the walk reports as it goes; `false` stops it (the job is no longer ours).
#[async_trait::async_trait]
pub trait Progress: Send {
    /// An attempt's phase changed (reserved, sent, created).
    async fn current(&mut self, current: &Current) -> bool;
    /// An attempt ended; the next step to try is `next_step`.
    async fn ended(&mut self, attempt: &Attempt, next_step: usize) -> bool;
}

/// The progress of a call nobody records.
#[derive(Debug, Default)]
pub struct NoProgress;

#[async_trait::async_trait]
impl Progress for NoProgress {
    async fn current(&mut self, _: &Current) -> bool {
        true
    }
    async fn ended(&mut self, _: &Attempt, _: usize) -> bool {
        true
    }
}

/// How a walk ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Walked {
    /// The chain was walked (with or without a video).
    Done(Generation),
    /// A resumed attempt's create call had been sent and its answer never recorded: the job
    /// may exist at the provider. Its money stays counted; it is not submitted again.
    InDoubt(Generation),
    /// The progress said stop: another replica holds the job now.
    Lost,
}

fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An attempt record with nothing filled in yet.
fn blank(backend: &str, model: Option<String>) -> Attempt {
    Attempt {
        backend: backend.to_string(),
        model,
        outcome: String::new(),
        latency_ms: 0,
        simulated_seconds: None,
        cost_usd: Fixed::ZERO,
        message: None,
        in_doubt: false,
        check: None,
        kept_video: None,
    }
}

/// An attempt that did not call its backend, and why.
fn skipped(mut a: Attempt, why: NotCalled, message: String) -> Attempt {
    a.outcome = why.as_str().to_string();
    a.message = Some(message);
    a
}

/// Returns the first video a quality retry kept, when there is one: every retry after it
/// was poor too, or failed. Its backend and model are the attempt's.
fn keep_first(out: &mut Generation) -> bool {
    let Some(a) = out.attempts.iter().find(|a| a.kept_video.is_some()) else {
        return false;
    };
    out.backend = Some(a.backend.clone());
    out.model = a.model.clone();
    out.video = a.kept_video.clone();
    out.error = None;
    true
}

/// What one attempt came to.
struct Ended {
    attempt: Attempt,
    video: Option<(Success, String)>,
}

impl Router {
    /// Walks `steps` from `at`, reporting to `progress`.
    pub async fn walk(
        &self,
        request: &Request,
        request_id: &str,
        steps: &[Step],
        at: Position,
        progress: &mut dyn Progress,
    ) -> Walked {
        let mut out = Generation {
            request_id: request_id.to_string(),
            backend: None,
            model: None,
            video: None,
            cost_usd: Fixed::ZERO,
            quality: None,
            attempts: Vec::new(),
            error: None,
            dry_run: false,
        };
        for a in at.attempts {
            out.cost_usd = out.cost_usd.checked_add(a.cost_usd).unwrap_or(out.cost_usd);
            out.attempts.push(a);
        }
        let mut next = at.next_step;
        let mut resumed = at.current;
        while next < steps.len() || resumed.is_some() {
            let (ended, step_index) = match resumed.take() {
                Some(c) => match c.phase {
                    Phase::Reserved => {
                        // Never sent: nothing can have been charged. Redo the step.
                        if let Err(e) = self
                            .store
                            .release(&c.reservation, "not_sent", self.clock.now())
                            .await
                        {
                            tracing::warn!(reservation = %c.reservation, "could not release a reservation that was never sent (it expires on its own): {e}");
                        }
                        next = c.step;
                        continue;
                    }
                    Phase::Sent => {
                        let note = "create_unrecorded";
                        let mut a = blank(&c.backend, c.model.clone());
                        a.outcome = FailureClass::Retryable.as_str().into();
                        a.in_doubt = true;
                        a.cost_usd = c.cost;
                        a.message = Some(
                            "the replica that sent the create call stopped before it recorded the provider's answer; the job may exist, so it is not submitted again".into(),
                        );
                        let recorded = self
                            .store
                            .keep_in_doubt(&c.reservation, note, self.clock.now())
                            .await;
                        let a = self.noted(a, &c.reservation, recorded);
                        out.cost_usd = out.cost_usd.checked_add(a.cost_usd).unwrap_or(out.cost_usd);
                        if !progress.ended(&a, steps.len()).await {
                            return Walked::Lost;
                        }
                        out.attempts.push(a);
                        out.error = Some("the job may exist at the provider, but its answer was lost with the replica that sent it: it is in doubt".into());
                        return Walked::InDoubt(out);
                    }
                    Phase::Created => match steps.get(c.step) {
                        Some(step) => (
                            Box::pin(self.follow(request, request_id, step, &c)).await,
                            c.step,
                        ),
                        None => {
                            tracing::error!(
                                step = c.step,
                                "a job's attempt names a step it does not have"
                            );
                            return Walked::Lost;
                        }
                    },
                },
                None => {
                    let i = next;
                    // Boxed, here and below: a walk in flight holds only the future of the
                    // step it is in (10,000 jobs in flight each hold one).
                    (
                        Box::pin(self.attempt(
                            request,
                            request_id,
                            &steps[i],
                            i,
                            out.attempts.len() as u32 + 1,
                            progress,
                        ))
                        .await,
                        i,
                    )
                }
            };
            let Some(ended) = ended else {
                return Walked::Lost;
            };
            next = step_index + 1;
            let mut attempt = ended.attempt;
            self.record(&steps[step_index], &attempt, ended.video.is_some())
                .await;
            out.cost_usd = out
                .cost_usd
                .checked_add(attempt.cost_usd)
                .unwrap_or(out.cost_usd);
            let rejected = attempt.outcome == FailureClass::ContentRejected.as_str();
            let store_failed = attempt.not_called() == Some(NotCalled::StoreError);
            // Quality retry: a delivered video that `when` judges poor is kept (the first
            // one) and the request goes on down its chain, while retries are left.
            // `when` is judged once per video: to retry it while retries and steps are left,
            // or, after a kept one, to tell whether this last video is poor too.
            let kept = out
                .attempts
                .iter()
                .filter(|a| a.kept_video.is_some())
                .count();
            let can_retry = next < steps.len()
                && self
                    .policy
                    .quality_retry
                    .as_ref()
                    .is_some_and(|q| kept < q.max_retries as usize);
            let poor = match &ended.video {
                Some(_) if can_retry || kept > 0 => self.poor(request, &attempt).await,
                _ => None,
            };
            let retry = can_retry && poor.is_some();
            if let (true, Some(why), Some((_, video))) = (retry, &poor, &ended.video) {
                attempt.message = Some(format!("retried for quality: {why}"));
                attempt.kept_video = Some(video.clone());
            }
            let stop = (ended.video.is_some() && !retry)
                || store_failed
                || (rejected && !self.policy.execution.fallback_on_content_rejected);
            if !progress
                .ended(&attempt, if stop { steps.len() } else { next })
                .await
            {
                return Walked::Lost;
            }
            out.attempts.push(attempt);
            if retry {
                continue;
            }
            if let Some((s, video)) = ended.video {
                // The last retry's video, unless it is poor too: then the first one kept.
                if poor.is_some() && keep_first(&mut out) {
                    return Walked::Done(out);
                }
                out.backend = Some(steps[step_index].backend.clone());
                out.model = s.model.clone();
                out.video = Some(video);
                out.quality = s.quality;
                return Walked::Done(out);
            }
            if store_failed {
                out.error = Some(
                    "the ledger store is unavailable, so the walk stopped before calling the backend (fail closed); nothing was spent on it".into(),
                );
                return Walked::Done(out);
            }
            if stop {
                out.error = Some(
                    "the prompt was refused by moderation; execution.on_content_rejected is `stop`"
                        .into(),
                );
                return Walked::Done(out);
            }
        }
        if keep_first(&mut out) {
            return Walked::Done(out);
        }
        out.error = Some("every backend in the chain failed or was unavailable".into());
        Walked::Done(out)
    }
}
