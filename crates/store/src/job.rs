//! The job record: what the store keeps of a video job (its request, planned chain, attempts,
//! the attempt in progress with the provider's handle, webhook delivery, tenancy and lease).
//!
//! **Why here.** The store keeps jobs for every replica, so it defines the record it keeps; the
//! execution crate (`genroute_exec::jobs`) runs jobs and re-exports these types. The record is
//! plain data: it names no adapter, walk or runner, so the store depends on no execution code.
//! Its serde form is the stored form (a SQLite column, a Redis hash field): changing a field's
//! name or meaning is a migration.

use serde::{Deserialize, Serialize};

use genroute_core::num::Fixed;

/// One planned step of a chain: the backend, by name (a reload may renumber backends), the
/// model and the expected cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Backend name.
    pub backend: String,
    /// Model asked for.
    pub model: Option<String>,
    /// Expected cost, reserved before the call.
    pub cost: Fixed,
    /// The experiment whose split drew this step (the first step of such a request): its
    /// outcome is a sample of that arm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
}

/// Where the attempt in progress stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Its reservation is made; the create call has not been sent.
    Reserved,
    /// The create call is being sent (the reservation is marked sent): its answer is not
    /// recorded yet.
    Sent,
    /// The provider answered with a handle; the job is being followed.
    Created,
}

/// The attempt in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Current {
    /// Index into the steps.
    pub step: usize,
    /// 1-based attempt number (as the adapter saw it).
    pub attempt: u32,
    /// Backend.
    pub backend: String,
    /// Model asked for.
    pub model: Option<String>,
    /// The ledger reservation.
    pub reservation: String,
    /// Its amount.
    pub cost: Fixed,
    /// Where it stands.
    pub phase: Phase,
    /// The provider's handle, once it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<Handle>,
    /// When the create call was started (wall-clock ms): the deadline counts from it.
    pub started_ms: i64,
}

/// One attempt in a generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// Backend tried.
    pub backend: String,
    /// Model asked for.
    pub model: Option<String>,
    /// `success`, a failure class (`retryable`, `terminal`, `content_rejected`, `no_video`,
    /// `bad_output`: delivered, but the video failed its checks), or why it was not called
    /// (a [`NotCalled`], as written: see [`Attempt::not_called`]).
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
    /// The output check of the delivered video (facts, frame signals, verdict): on a
    /// `success`, on a `bad_output`, and "not checked" with the reason where the video was
    /// not downloaded (see [`genroute_core::output`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<genroute_core::output::Check>,
    /// A delivered video that `execution.quality_retry.when` judged poor and that was kept
    /// while the request was retried: returned if every retry is poor or fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_video: Option<String>,
}

impl Attempt {
    /// Why this attempt did not call its backend, when it did not.
    pub fn not_called(&self) -> Option<NotCalled> {
        NotCalled::parse(&self.outcome)
    }
}

/// Why an attempt did not call its backend: the [`Attempt::outcome`] of an attempt that never
/// reached the provider. Such an attempt says nothing of the backend (it is no sample of its
/// latency or quality, no figure of an experiment's arm) and cost nothing.
///
/// **Why an enum beside a string field.** The record keeps the outcome as written (`success`
/// and the adapters' failure classes share the field), so the stored and JSON form stays a
/// string; this names the strings that mean "not called", once, for whoever writes or reads
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotCalled {
    /// The backend has no working adapter (a key is missing, or it left the policy).
    NotConfigured,
    /// Its circuit breaker refused the call (open, or its half-open probes taken).
    BreakerOpen,
    /// A budget refused the reservation.
    OverBudget,
    /// The store failed before the call (permit, reservation or sent mark), so the walk
    /// stopped there: fail closed.
    StoreError,
    /// A dry run: it would have been called.
    DryRun,
}

impl NotCalled {
    /// Every reason.
    pub const ALL: [NotCalled; 5] = [
        NotCalled::NotConfigured,
        NotCalled::BreakerOpen,
        NotCalled::OverBudget,
        NotCalled::StoreError,
        NotCalled::DryRun,
    ];

    /// As written in [`Attempt::outcome`].
    pub const fn as_str(self) -> &'static str {
        match self {
            NotCalled::NotConfigured => "not_configured",
            NotCalled::BreakerOpen => "breaker_open",
            NotCalled::OverBudget => "over_budget",
            NotCalled::StoreError => "ledger_error",
            NotCalled::DryRun => "not_called",
        }
    }

    /// From an outcome as written; `None` for an attempt that called its backend.
    pub fn parse(outcome: &str) -> Option<NotCalled> {
        NotCalled::ALL.into_iter().find(|n| n.as_str() == outcome)
    }
}

/// The provider's name for a created job: enough to poll it, download its video and cancel it,
/// from any replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handle {
    /// The operation name, video id or job id the provider gave.
    pub id: String,
}

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Accepted; no backend called yet.
    Queued,
    /// An attempt is in progress.
    Running,
    /// A video was produced.
    Succeeded,
    /// No video: every backend in the chain failed or was unavailable, or nothing was
    /// eligible.
    Failed,
    /// Cancelled by a client.
    Cancelled,
    /// A create call was sent and its answer was never recorded: the job may exist at the
    /// provider. Its money stays counted; it is not submitted again.
    InDoubt,
}

impl JobState {
    /// As written.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::InDoubt => "in_doubt",
        }
    }

    /// From storage.
    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            "in_doubt" => JobState::InDoubt,
            _ => return None,
        })
    }

    /// Whether the job has ended.
    pub fn is_final(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

/// A job's outcome, once it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Backend that produced the video, if one did.
    pub backend: Option<String>,
    /// Model used.
    pub model: Option<String>,
    /// URI of the video, or the path it was written to.
    pub video: Option<String>,
    /// Quality reported by the backend, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<Fixed>,
    /// The HTTP status `/v1/generate` answers for this outcome.
    pub http_status: u16,
    /// The body `/v1/generate` answers.
    pub body: serde_json::Value,
}

/// A webhook delivery's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not yet delivered (waiting for the job to end, or for the next try).
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up after the retry window.
    Failed,
}

/// A job's webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// Where the end state is POSTed.
    pub url: String,
    /// The Standard Webhooks `webhook-id`: the same on every try.
    pub id: String,
    /// Delivery state.
    pub state: DeliveryState,
    /// Tries so far.
    pub attempts: u32,
    /// When the next try is due (wall-clock ms).
    pub next_at_ms: i64,
    /// The last try's error or status, if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A job record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The job id (also the request id in the ledger and for simulated outcomes).
    pub id: String,
    /// State.
    pub state: JobState,
    /// When it was created (wall-clock ms).
    pub created_ms: i64,
    /// When it last changed.
    pub updated_ms: i64,
    /// When it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<i64>,
    /// The request, as the client sent it (its prompt is needed to call a backend).
    pub request: serde_json::Value,
    /// The chain decided at submission.
    pub steps: Vec<Step>,
    /// The next step to try (when no attempt is in progress).
    pub next_step: usize,
    /// Every attempt that ended, in order.
    pub attempts: Vec<Attempt>,
    /// The attempt in progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<Current>,
    /// Money committed (or kept in doubt) so far.
    pub cost_usd: Fixed,
    /// The outcome, once it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Why it ended without a video, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The webhook, if the request named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
    /// What a front door was asked, in its own terms (for `/v1/videos`: `model`, `seconds`,
    /// `size`), so that it can answer in them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<serde_json::Value>,
    /// Who asked, when an API key was given, as it was at submission (its key id, team,
    /// budgets; never the key's secret): the walk's reservations are made on its budgets
    /// whichever replica runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenancy: Option<genroute_core::tenant::Tenancy>,
    /// Which replica holds it (kept by the store; informational here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Until when (wall-clock ms).
    #[serde(default)]
    pub lease_until_ms: i64,
}

impl Job {
    /// Whether the job still needs an owner: it runs, or its end state is not delivered.
    pub fn is_active(&self) -> bool {
        !self.state.is_final()
            || self
                .webhook
                .as_ref()
                .is_some_and(|w| w.state == DeliveryState::Pending)
    }
}

/// The bounded set that counts a key's jobs in flight ([`crate::Store::take_slot`]).
pub fn in_flight_set(key: &str) -> String {
    format!("jobs:{key}")
}

/// The longest a job id may be (ids are ours; a longer one is not a job).
pub const MAX_ID: usize = 64;

#[cfg(test)]
mod tests {
    use super::NotCalled;

    #[test]
    fn not_called_reads_back_what_it_writes() {
        for n in NotCalled::ALL {
            assert_eq!(NotCalled::parse(n.as_str()), Some(n));
        }
        assert_eq!(NotCalled::parse("success"), None);
        assert_eq!(NotCalled::parse("retryable"), None);
    }
}
