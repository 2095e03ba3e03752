//! Cancelling a job wherever it runs: the canceller takes the job from its owner, stops it at
//! the provider where the protocol allows, and settles its reservation by the answer.
//!
//! **Why the money follows the provider's answer.** A job cancelled before the provider
//! started it cost nothing, so its reservation is released; one that started, or whose
//! provider cannot say, may be billed, so its money is kept in doubt.

use std::sync::Arc;

use super::outcome::{end, generation, outcome_of};
use super::{request_of, wall_ms, Runner};
use crate::adapter::Cancel;
use crate::jobs::{Job, JobState, Outcome};
use genroute_core::num::Fixed;
use genroute_store::job::{Attempt, Phase};
use genroute_store::StoreError;

/// What a cancel did.
#[derive(Debug, Clone, PartialEq)]
pub enum Cancelled {
    /// Cancelled; `money` says what happened to the attempt in progress.
    Done {
        /// The job as it now is.
        job: Box<Job>,
        /// `released` (nothing was or can be billed) or `in_doubt` (kept counted).
        money: &'static str,
    },
    /// It had ended already.
    AlreadyEnded(Box<Job>),
    /// No such job.
    NotFound,
}

impl Runner {
    /// Cancels job `id`, wherever it runs: takes it, stops it at the provider where the
    /// protocol allows, and settles its reservation by the provider's answer.
    pub async fn cancel(self: &Arc<Self>, id: &str) -> Result<Cancelled, StoreError> {
        let Some(mut job) = self
            .store
            .take_job(id, &self.me, self.lease_until())
            .await?
        else {
            return Ok(Cancelled::NotFound);
        };
        if let Some(task) = self.running().remove(id) {
            task.abort();
        }
        if job.state.is_final() {
            return Ok(Cancelled::AlreadyEnded(Box::new(job)));
        }
        let router = (self.router)();
        let now = router.now();
        let mut money = "released";
        if let Some(c) = job.current.take() {
            let verdict = match c.phase {
                Phase::Reserved => Cancel::NothingProduced,
                Phase::Sent => Cancel::Failed("the create call's answer was never recorded".into()),
                Phase::Created => match (
                    router.adapter_of(&c.backend),
                    &c.handle,
                    request_of(router.policy(), &job),
                ) {
                    (Some(a), Some(h), Ok(req)) => {
                        let spec = router.job_spec_for(&req, &job.id, &c);
                        a.cancel(h, &spec).await
                    }
                    _ => Cancel::Failed("the backend is no longer configured".into()),
                },
            };
            let (recorded, note) = match &verdict {
                Cancel::NothingProduced => (self.store.release(&c.reservation, "cancelled", now).await, "cancelled before the provider started it: nothing was billed".to_string()),
                Cancel::MaybeProduced => (self.store.keep_in_doubt(&c.reservation, "cancelled", now).await, "cancelled at the provider after it started: it may be billed, so the money is kept in doubt".to_string()),
                Cancel::Unsupported => (self.store.keep_in_doubt(&c.reservation, "cancelled", now).await, "the provider has no cancel: the job may run on and be billed, so the money is kept in doubt".to_string()),
                Cancel::Failed(e) => (self.store.keep_in_doubt(&c.reservation, "cancelled", now).await, format!("the cancel at the provider failed ({e}): the money is kept in doubt")),
            };
            let in_doubt = !matches!(verdict, Cancel::NothingProduced);
            if in_doubt {
                money = "in_doubt";
            }
            if let Err(e) = &recorded {
                tracing::warn!(job = %id, "the ledger did not record the cancelled attempt (another replica may have settled it): {e}");
            }
            job.attempts.push(Attempt {
                backend: c.backend.clone(),
                model: c.model.clone(),
                outcome: "cancelled".into(),
                latency_ms: (wall_ms() - c.started_ms).max(0) as u64,
                simulated_seconds: None,
                cost_usd: if in_doubt { c.cost } else { Fixed::ZERO },
                message: Some(note),
                in_doubt,
                check: None,
                kept_video: None,
            });
        }
        let mut g = generation(&job);
        g.error = Some("cancelled by the client".into());
        end(&mut job, &g, JobState::Cancelled);
        job.outcome = Some(Outcome {
            http_status: 409,
            ..job.outcome.take().unwrap_or_else(|| outcome_of(&g, 409))
        });
        if !self.save_final(&mut job).await {
            return Ok(Cancelled::NotFound);
        }
        self.ended(&job);
        if job.is_active() {
            let (copy, me) = (job.clone(), self.clone());
            tokio::spawn(async move { me.deliver(copy).await });
        }
        Ok(Cancelled::Done {
            job: Box::new(job),
            money,
        })
    }
}
