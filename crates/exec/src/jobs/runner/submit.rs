//! Accepting a job: its plan (decided, or for an explicit target), its caller's place among
//! the key's jobs in flight, and its first record, written before anything is called.
//!
//! **Why the plan is written first.** The record is what any replica resumes from: a job
//! whose steps are in the store survives the replica that accepted it, and a takeover walks
//! the steps as they were planned, even across a policy reload.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::outcome::end;
use super::{wall_ms, webhook, Runner};
use crate::jobs::{in_flight_set, DeliveryState, Job, JobState, Webhook};
use crate::router::{not_eligible, PlanError};
use genroute_core::num::Fixed;
use genroute_core::request::Request;
use genroute_store::StoreError;

/// A job to submit.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The request.
    pub request: Request,
    /// Where its end state goes.
    pub webhook: Option<String>,
    /// An explicit target (a backend or a model), decided as a rule's target would be.
    pub target: Option<String>,
    /// What a front door was asked, kept with the job.
    pub api: Option<serde_json::Value>,
}

/// Why a job could not be submitted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The explicit target names no backend or model.
    #[error("{0}")]
    UnknownTarget(String),
    /// The replica is shutting down.
    #[error("this replica is shutting down and takes no new jobs; retry on another")]
    ShuttingDown,
    /// The webhook URL was refused.
    #[error("{0}")]
    Webhook(#[from] webhook::Refused),
    /// The caller's key has as many jobs in flight as its limit allows.
    #[error("API key `{key}` has {limit} jobs in flight, its limit (`limits.jobs_in_flight`); wait for one to end")]
    TooManyJobs {
        /// The key's id.
        key: String,
        /// Its limit.
        limit: u32,
        /// Milliseconds until the oldest place would lapse (a hint for `Retry-After`).
        retry_after_ms: i64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Runner {
    /// Accepts a job: plans it, writes it, and starts it.
    pub async fn submit(self: &Arc<Self>, new: NewJob) -> Result<Job, SubmitError> {
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(SubmitError::ShuttingDown);
        }
        if let Some(url) = &new.webhook {
            self.opts.webhooks.check(url)?;
        }
        let router = (self.router)();
        let id = uuid::Uuid::new_v4().to_string();
        let (steps, refused) = match new.target.as_deref().filter(|t| *t != "genroute") {
            None => (router.plan(&new.request, &id).await?, None),
            Some(target) => match router.plan_target(&new.request, target).await {
                Ok(steps) => (steps, None),
                Err(PlanError::Store(e)) => return Err(e.into()),
                Err(PlanError::UnknownTarget(m)) => return Err(SubmitError::UnknownTarget(m)),
                Err(PlanError::Ineligible(m)) => (Vec::new(), Some(m)),
            },
        };
        let webhook = new.webhook;
        let now = wall_ms();
        let tenancy = new.request.tenancy.as_deref().cloned();
        if let Some((t, limit)) = tenancy
            .as_ref()
            .and_then(|t| Some((t, t.limits.jobs_in_flight?)))
        {
            // A place until the longest the job can take (each step's deadline twice, as a
            // reservation's expiry), so that a job whose replicas all died frees it.
            let policy = router.policy();
            let longest: i64 = steps
                .iter()
                .filter_map(|s| policy.backend(policy.backend_index(&s.backend)?))
                .map(|b| b.max_latency.micros() / 1000 * 2 + 60_000)
                .sum();
            if let Some(at) = self
                .store
                .take_slot(
                    &in_flight_set(&t.key),
                    &id,
                    limit,
                    now + longest.max(60_000),
                    now,
                )
                .await?
            {
                return Err(SubmitError::TooManyJobs {
                    key: t.key.clone(),
                    limit,
                    retry_after_ms: (at - now).max(0),
                });
            }
        }
        let mut job = Job {
            id: id.clone(),
            state: JobState::Queued,
            created_ms: now,
            updated_ms: now,
            finished_ms: None,
            request: new.request.to_json(router.policy()),
            steps,
            next_step: 0,
            attempts: Vec::new(),
            current: None,
            cost_usd: Fixed::ZERO,
            outcome: None,
            error: None,
            webhook: webhook.map(|url| Webhook {
                url,
                id: format!("msg_{}", id.replace('-', "")),
                state: DeliveryState::Pending,
                attempts: 0,
                next_at_ms: 0,
                last_error: None,
            }),
            api: new.api,
            tenancy,
            owner: Some(self.me.clone()),
            lease_until_ms: self.lease_until(),
        };
        if job.steps.is_empty() {
            let mut g = not_eligible(&id);
            if refused.is_some() {
                g.error = refused;
            }
            end(&mut job, &g, JobState::Failed);
        }
        if let Err(e) = self.store.create_job(&job).await {
            self.ended(&job);
            return Err(e.into());
        }
        if job.state.is_final() {
            self.ended(&job);
        }
        self.spawn(job.clone());
        Ok(job)
    }
}
