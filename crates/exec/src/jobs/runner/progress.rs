//! The [`Progress`] of a job's walk: every step that matters written to the store before the
//! walk goes on.
//!
//! **Why a write refused stops the walk.** The store refuses a write when another replica
//! holds the job now (fencing): that replica settles it, so this one stops at once. A write
//! that fails because the store is down stops the walk only before a create call (whose
//! sending, unrecorded, could not be resumed).

use super::{wall_ms, Runner};
use crate::jobs::{Job, JobState};
use crate::router::walk::Progress;
use genroute_store::job::{Attempt, Current, Phase};

/// The progress of a job: every step written to the store before the walk goes on.
pub(super) struct Recorder<'a> {
    pub(super) runner: &'a Runner,
    pub(super) job: Job,
}

impl Recorder<'_> {
    /// Writes the job. `Some(true)` written, `Some(false)` another replica holds it, `None`
    /// the store failed.
    async fn save(&mut self) -> Option<bool> {
        self.job.updated_ms = wall_ms();
        self.job.lease_until_ms = self.runner.lease_until();
        match self.runner.store.save_job(&self.job).await {
            Ok(saved) => Some(saved),
            Err(e) => {
                tracing::warn!(job = %self.job.id, "could not write the job's progress: {e}");
                None
            }
        }
    }
}

#[async_trait::async_trait]
impl Progress for Recorder<'_> {
    async fn current(&mut self, current: &Current) -> bool {
        self.job.state = JobState::Running;
        self.job.current = Some(current.clone());
        if current.phase == Phase::Reserved {
            // Not written: if this replica dies before the sent mark, the reservation was never
            // sent and is released at its expiry, and the record still says the step is to do.
            return true;
        }
        match self.save().await {
            Some(saved) => saved,
            // Before a create call, an unrecorded step could not be resumed: stop, and let
            // the lease lapse (the job is then resumed from what was written). After it, go
            // on: the handle is known here and the end is written again later.
            None => current.phase == Phase::Created,
        }
    }

    async fn ended(&mut self, attempt: &Attempt, next_step: usize) -> bool {
        self.job.current = None;
        self.job.attempts.push(attempt.clone());
        self.job.next_step = next_step;
        self.job.cost_usd = self
            .job
            .cost_usd
            .checked_add(attempt.cost_usd)
            .unwrap_or(self.job.cost_usd);
        if next_step >= self.job.steps.len() {
            // The walk ends here, and the job's end is written next. Were this replica to die
            // in between, the record still names the handle: the next owner follows it to the
            // same end, and the ledger refuses to settle it twice.
            return true;
        }
        self.save().await.unwrap_or(true)
    }
}
