//! Video jobs that outlive their replica: records in the ledger store, owned under a lease,
//! resumed from the provider's handle by any replica.
//!
//! **Why a record, not a task.** A video job lasts minutes and costs money the moment the
//! provider accepts it. Held in one process's memory, it dies with that process: the video was
//! ordered and paid for, and nobody receives it. So a job is a [`Job`] in the same store as the
//! ledger, written at every step that matters: when it is queued, when an attempt's create
//! call is about to be sent (the reservation is then marked sent in the ledger), the moment
//! the provider answers with its handle, and when an attempt ends. Any replica reads any job.
//!
//! **Ownership is a lease, kept by the store.** The replica that runs a job holds a lease on
//! it (owner and expiry, in the store: a SQLite row, Redis fields and a sorted set by expiry)
//! and renews it while it works. Every write of the record names its owner and is refused when
//! another replica holds the job now (fencing), so a replica that was frozen past its lease
//! cannot overwrite the new owner's progress. A replica that finds a lease expired (the owner
//! died or was killed) claims the job in one atomic store operation and resumes it:
//! - a job still `queued` (nothing was sent) runs from the start;
//! - an attempt whose reservation was made but not yet marked sent is released and redone;
//! - an attempt with a recorded handle resumes *polling* that handle: never re-created;
//! - an attempt whose create call was sent but whose answer was never recorded ends the job
//!   `in_doubt`: its money stays counted, and it is never submitted again.
//!
//! No consensus is built here: the store's own atomic operations (a SQLite transaction, a Redis
//! script) decide every claim.
//!
//! **Webhooks** are part of the record too (URL, the fixed `webhook-id`, attempts, next try), so
//! a replica that takes over a job also takes over its delivery ([`webhook`]).

pub mod runner;
pub mod webhook;

use serde::{Deserialize, Serialize};

use crate::exec::Attempt;
pub use crate::exec::{Current, Phase, Step};
use crate::num::Fixed;

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
    pub tenancy: Option<crate::tenant::Tenancy>,
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

/// The bounded set that counts a key's jobs in flight ([`crate::ledger::Store::take_slot`]).
pub fn in_flight_set(key: &str) -> String {
    format!("jobs:{key}")
}

/// The longest a job id may be (ids are ours; a longer one is not a job).
pub const MAX_ID: usize = 64;
