//! Video jobs that outlive their replica: records in the store, owned under a lease,
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

// The job record is the store's: it keeps it, so it defines it.
pub use genroute_store::job::{
    in_flight_set, Attempt, Current, DeliveryState, Handle, Job, JobState, Outcome, Phase, Step,
    Webhook, MAX_ID,
};
