//! The contract every store keeps: the [`Store`] trait.
//!
//! **Why one trait for all of the shared state.** Money, breakers, jobs, samples, experiment
//! figures and slots are what replicas must agree on, and each store keeps all of them in one
//! place (one SQLite file, one Redis), so one deadline and one fail-fast breaker
//! ([`Guarded`](crate::guard::Guarded)) cover every call, and a caller picks a store once.
//!
//! **Slots.** [`Store::take_slot`] is a bounded set with expiring members, shared by every
//! replica: the per-key limits (requests per minute, jobs in flight) are built on it.

use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::job::Job;
use crate::ledger::{Entry, Month, NewReservation, Totals};
use genroute_core::breaker::{Breaker, BreakerChange, BreakerConfig};
use genroute_core::num::Fixed;

/// What a store must do. Every method is atomic with respect to every other caller,
/// in this process or (for shared stores) any other.
///
/// **Why async.** A store call is IO that can stall (an fsync, a Redis round trip, a lock held
/// by another process). The interface is async so that a stalled store holds no async worker
/// thread: Redis uses the redis crate's multiplexed async connections; SQLite runs on threads
/// of its own behind bounded queues (see [`sqlite`](crate::sqlite)); the in-memory store never waits. The
/// deadline of each call and the fail-fast breaker in front of a stalled store live in one
/// place, [`guard::Guarded`](crate::guard::Guarded), which wraps any store.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// Reserves `r.amount` in the month of `now`, or refuses with [`StoreError::OverBudget`].
    async fn reserve(
        &self,
        r: &NewReservation,
        budget: Fixed,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError>;
    /// Records that the create call of a reservation is about to be sent: from now on the
    /// provider may charge for it, so if the reservation expires (its process died) it
    /// becomes in doubt and keeps counting, instead of being released.
    async fn mark_sent(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Turns a reservation into spend.
    async fn commit(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Turns a reservation into spend with a note saying why it is spent without a result
    /// (e.g. `bad_output`: the provider delivered a video that failed its checks).
    async fn commit_noted(
        &self,
        id: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Returns a reservation; `note` says why (e.g. the failure class).
    async fn release(&self, id: &str, note: &str, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Keeps a reservation as spend because the call's outcome is unknown.
    async fn keep_in_doubt(
        &self,
        id: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// A month's totals as of `now` (expired reservations settled: released if their create
    /// call was never sent, in doubt if it was).
    async fn totals(&self, month: Month, now: DateTime<Utc>) -> Result<Totals, StoreError>;
    /// The totals of each level of `levels` ([`LevelLimit::key`](crate::ledger::LevelLimit::key)s), as [`Store::totals`]
    /// settles them; a level never written reads as zero.
    async fn level_totals(
        &self,
        levels: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<Totals>, StoreError>;
    /// Takes a place for `member` in the bounded set `set` until `until_ms`, if fewer than
    /// `limit` members hold places at `now_ms` (a member holding one renews it). `Ok(None)`
    /// when taken; `Ok(Some(ms))` when full: the first place frees at `ms`.
    async fn take_slot(
        &self,
        set: &str,
        member: &str,
        limit: u32,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError>;
    /// Gives `member`'s place in `set` back (nothing if it holds none).
    async fn drop_slot(&self, set: &str, member: &str) -> Result<(), StoreError>;
    /// Entries of a month (or all), oldest first, as of `now` (see [`settle`](crate::ledger::settle)).
    async fn entries(
        &self,
        month: Option<Month>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Entry>, StoreError>;
    /// The breakers of `backends`, in that order (a breaker never written reads as closed).
    async fn breakers(&self, backends: &[String]) -> Result<Vec<Breaker>, StoreError>;
    /// Atomically applies `change` to a backend's breaker; returns the new value and whether
    /// the call is admitted (see [`Breaker::apply`]).
    async fn update_breaker(
        &self,
        backend: &str,
        change: BreakerChange,
        now_ms: i64,
        cfg: BreakerConfig,
    ) -> Result<(Breaker, bool), StoreError>;
    /// Writes a new job (its `owner` and `lease_until_ms` included); refuses an id that
    /// exists.
    async fn create_job(&self, job: &Job) -> Result<(), StoreError>;
    /// A job by id.
    async fn job(&self, id: &str) -> Result<Option<Job>, StoreError>;
    /// Writes a job if `job.owner` still holds it, with its lease as given; `Ok(false)` when
    /// another replica holds it now (fencing) or it is gone.
    async fn save_job(&self, job: &Job) -> Result<bool, StoreError>;
    /// Claims up to `limit` active jobs whose lease has expired by `now_ms`, for `owner`
    /// until `until_ms`, in one atomic step per job; returns them as claimed.
    async fn claim_jobs(
        &self,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError>;
    /// Takes a job whatever its lease (a cancel), for `owner` until `until_ms`.
    async fn take_job(
        &self,
        id: &str,
        owner: &str,
        until_ms: i64,
    ) -> Result<Option<Job>, StoreError>;
    /// Moves `owner`'s leases on `ids` to `until_ms` (0 gives them up at once); returns the
    /// ids it no longer holds.
    async fn renew_jobs(
        &self,
        owner: &str,
        ids: &[String],
        until_ms: i64,
    ) -> Result<Vec<String>, StoreError>;
    /// Jobs, newest first, after the job `after` (exclusive), at most `limit`.
    async fn list_jobs(&self, after: Option<&str>, limit: usize) -> Result<Vec<Job>, StoreError>;
    /// Removes the jobs that ended before `before_ms`; returns how many.
    async fn purge_jobs(&self, before_ms: i64) -> Result<usize, StoreError>;
    /// Appends `sample` to the rolling list `key`, keeping its newest `keep` (the measured
    /// figures of [`genroute_core::measure`]).
    async fn push_sample(&self, key: &str, sample: &str, keep: usize) -> Result<(), StoreError>;
    /// The newest `limit` samples of each of `keys`, newest first.
    async fn samples(&self, keys: &[String], limit: usize) -> Result<Vec<Vec<String>>, StoreError>;
    /// Adds `by` to the counters of `key` in one atomic step; returns all of its counters
    /// after the addition (an experiment arm's figures, [`genroute_core::experiment`]).
    async fn add_counters(&self, key: &str, by: &[(&str, i64)]) -> Result<Counters, StoreError>;
    /// The counters of each of `keys` (empty for a key never written).
    async fn counters(&self, keys: &[String]) -> Result<Vec<Counters>, StoreError>;
    /// Sets mark `key` to `value` unless it holds one already; returns whether it was set
    /// (so that of two replicas rolling an experiment back, one records it).
    async fn put_mark(&self, key: &str, value: &str) -> Result<bool, StoreError>;
    /// The value of each mark of `keys`.
    async fn marks(&self, keys: &[String]) -> Result<Vec<Option<String>>, StoreError>;
    /// Removes mark `key` and the counters of `counters` (an experiment resumed).
    async fn clear_mark(&self, key: &str, counters: &[String]) -> Result<(), StoreError>;
    /// A cheap round trip that proves the store can take writes now (and, for Redis, that
    /// it still holds the ledger this process has seen).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Accepts an empty ledger after a data loss (see [`redis`](crate::redis)); `note` is recorded with
    /// the acceptance. Stores that cannot lose their data this way have nothing to accept.
    async fn accept_empty(&self, note: &str) -> Result<String, StoreError> {
        let _ = note;
        Err(StoreError::Store(format!(
            "the {} store keeps no epoch marker; there is nothing to accept",
            self.kind()
        )))
    }
    /// Why the ledger counts as lost, while it does (see [`redis`](crate::redis)); never for stores that
    /// cannot lose their data this way.
    fn lost(&self) -> Option<String> {
        None
    }
    /// `memory`, `sqlite`, `redis` or `redis-cluster`.
    fn kind(&self) -> &'static str;
}

/// Named integer counters of one key.
pub type Counters = std::collections::BTreeMap<String, i64>;
