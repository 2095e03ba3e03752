//! The Redis store: one budget and one set of breakers shared by every replica, on a
//! single Redis (or Valkey) or on a Redis Cluster.
//!
//! **Atomic reserve.** Reserve is a Lua script, which Redis runs without interleaving any
//! other command: it settles expired reservations, adds up the month, and inserts the new
//! reservation only if it fits. However the replicas race, the budget cannot be overspent.
//! Commit, release, in-doubt and "create sent" are scripts too, so an entry and the month's
//! totals always change together (`scripts`).
//!
//! **Key layout**: see `keys.rs`; every key a script touches is in its `KEYS`, and the braces
//! are hash tags, so each script touches one cluster slot.
//!
//! A reservation id names its month ([`crate::ledger::new_id`]), so commit and release find
//! the month's slot from the id alone. Keys are per month, so a new month starts at zero.
//!
//! **A Redis that comes back empty is not a new month.** Redis restarted without persistence,
//! or failed over to a replica that lacks the data, would otherwise read as a month with
//! nothing spent, and the budget could be spent twice. The `{meta}:epoch` marker holds a
//! random id, created once with the ledger; each month carries a copy, and every month script
//! first checks that copy against the id this process has seen. A process that has seen the
//! ledger and then finds the marker gone or changed fails closed ([`StoreError::EpochLost`])
//! for every call that moves money (`epoch.rs`), until an operator accepts the ledger as it now is
//! ([`Store::accept_empty`]: `POST /v1/admin/ledger/accept-empty`, or `genroute ledger
//! accept-empty`), which writes a new marker stamped with Redis' own clock and appends a
//! record to `{meta}:epoch_log`. A replica adopts an accepted marker only if it was accepted
//! after the last moment that replica confirmed its own epoch, so a failover to a stale node
//! that carries an older acceptance is refused too. A process that starts against an empty
//! Redis cannot tell it from a new install and creates the marker: run Redis with AOF
//! (README, "Running on Redis").
//!
//! **Connections.** One multiplexed async connection (the redis crate's `ConnectionManager`,
//! which reconnects by itself after Redis restarts), or the crate's async cluster client,
//! which follows slot moves. Concurrent calls are pipelined on it, so none waits behind
//! another's round trip. Every call has a response timeout; the store's guard puts the
//! overall deadline on each call and fails fast while Redis is down
//! ([`crate::guard`]). Nothing falls back to a local count that could overspend.
//!
//! **Breakers** are updated by compare-and-set: read, apply the change in Rust
//! ([`genroute_core::breaker`]), write only if no other replica wrote in between, else retry.
//!
//! **Where things are.** This file holds the store's handle, its opening, and the `Store`
//! contract, each method a call into the module that owns it: `entries` (money), `epoch`
//! (the marker), `breakers`, `levels` (budget levels and bounded sets), `jobs`,
//! `stats` (samples, figures and marks); `scripts` holds the Lua, `conn` the
//! connection, `keys` the key layout.

mod breakers;
mod conn;
mod entries;
mod epoch;
mod jobs;
mod keys;
mod levels;
mod scripts;
mod stats;

pub use conn::redact;
pub use epoch::acceptances;

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::Script;

use crate::error::StoreError;
use crate::job::Job;
use crate::ledger::{Entry, EntryState, Month, NewReservation, Totals};
use crate::store::{Counters, Store};
use conn::Conn;
use epoch::Epoch;
use genroute_core::breaker::{Breaker, BreakerChange, BreakerConfig};
use genroute_core::num::Fixed;
use keys::{split_prefix, Keys};

struct Scripts {
    reserve: Script,
    mark_sent: Script,
    finish: Script,
    totals: Script,
    level_totals: Script,
    slot_take: Script,
    epoch: Script,
    accept: Script,
    breaker_cas: Script,
}

/// A ledger in Redis.
pub struct RedisStore {
    conn: Conn,
    keys: Keys,
    /// The deadline of a call, and Redis' clock minus ours (measured at open), so that a
    /// script can refuse a call whose caller has given up ([`scripts`]).
    timeout: Duration,
    skew_ms: i64,
    scripts: Scripts,
    job_scripts: jobs::JobScripts,
    epoch: Mutex<Epoch>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.conn.kind())
    }
}

fn store_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Store(format!("redis: {e}"))
}

impl RedisStore {
    /// Connects to `redis://HOST:PORT/DB` (or `rediss://`), or to a cluster given as
    /// `redis-cluster://HOST:PORT[,HOST:PORT...]`, checks the connection within `timeout`, and
    /// reads (or, for a new ledger, creates) the epoch marker.
    pub async fn open(url: &str, timeout: Duration) -> Result<RedisStore, StoreError> {
        let (url, prefix) = split_prefix(url)?;
        let url = url.as_str();
        let conn = tokio::time::timeout(timeout, Conn::open(url, timeout))
            .await
            .map_err(|_| {
                StoreError::Store(format!(
                    "cannot reach Redis at `{}` within {} ms",
                    conn::redact(url),
                    timeout.as_millis()
                ))
            })??;
        let store = RedisStore {
            conn,
            keys: Keys { prefix },
            timeout,
            skew_ms: 0,
            scripts: Scripts {
                reserve: Script::new(&scripts::reserve()),
                mark_sent: Script::new(&scripts::mark_sent()),
                finish: Script::new(&scripts::finish()),
                totals: Script::new(&scripts::totals()),
                level_totals: Script::new(&scripts::level_totals()),
                slot_take: Script::new(scripts::SLOT_TAKE),
                epoch: Script::new(scripts::EPOCH),
                accept: Script::new(scripts::ACCEPT),
                breaker_cas: Script::new(scripts::BREAKER_CAS),
            },
            job_scripts: jobs::JobScripts::new(),
            epoch: Mutex::new(Epoch {
                seen: String::new(),
                verified: HashSet::new(),
                lost: None,
                last_valid_ms: 0,
            }),
        };
        let fresh = uuid::Uuid::new_v4().simple().to_string();
        let (id, _, now) = tokio::time::timeout(timeout, store.marker(&fresh, true))
            .await
            .map_err(|_| store_err("the epoch marker could not be read in time"))??;
        let mut store = store;
        store.skew_ms = now - wall_ms();
        let mut e = store.lock();
        e.seen = id.unwrap_or(fresh);
        e.last_valid_ms = now;
        drop(e);
        Ok(store)
    }

    /// A call's deadline in Redis' clock.
    fn deadline(&self) -> String {
        (wall_ms() + self.timeout.as_millis() as i64 + self.skew_ms).to_string()
    }
}

/// This host's wall clock in ms (the injected clock may be a test's; deadlines are real).
fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn reserve(
        &self,
        r: &NewReservation,
        budget: Fixed,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        self.reserve_entry(r, budget, now).await
    }

    async fn mark_sent(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.mark_entry_sent(id, now).await
    }

    async fn commit(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.finish(id, EntryState::Committed, "", now).await
    }

    async fn commit_noted(
        &self,
        id: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.finish(id, EntryState::Committed, note, now).await
    }

    async fn release(&self, id: &str, note: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.finish(id, EntryState::Released, note, now).await
    }

    async fn keep_in_doubt(
        &self,
        id: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.finish(id, EntryState::InDoubt, note, now).await
    }

    async fn totals(&self, month: Month, now: DateTime<Utc>) -> Result<Totals, StoreError> {
        self.month_totals(month, now).await
    }

    async fn level_totals(
        &self,
        levels: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<Totals>, StoreError> {
        self.level_totals_of(levels, now).await
    }

    async fn take_slot(
        &self,
        set: &str,
        member: &str,
        limit: u32,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.take_slot_in(set, member, limit, until_ms, now_ms)
            .await
    }

    async fn drop_slot(&self, set: &str, member: &str) -> Result<(), StoreError> {
        self.drop_slot_in(set, member).await
    }

    async fn entries(
        &self,
        month: Option<Month>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Entry>, StoreError> {
        self.month_entries(month, now).await
    }

    async fn breakers(&self, backends: &[String]) -> Result<Vec<Breaker>, StoreError> {
        self.read_breakers(backends).await
    }

    async fn update_breaker(
        &self,
        backend: &str,
        change: BreakerChange,
        now_ms: i64,
        cfg: BreakerConfig,
    ) -> Result<(Breaker, bool), StoreError> {
        self.cas_breaker(backend, change, now_ms, cfg).await
    }

    async fn push_sample(&self, key: &str, sample: &str, keep: usize) -> Result<(), StoreError> {
        self.push_sample_list(key, sample, keep).await
    }

    async fn samples(&self, keys: &[String], limit: usize) -> Result<Vec<Vec<String>>, StoreError> {
        self.sample_lists(keys, limit).await
    }

    async fn add_counters(&self, key: &str, by: &[(&str, i64)]) -> Result<Counters, StoreError> {
        self.add_hash(key, by).await
    }

    async fn counters(&self, keys: &[String]) -> Result<Vec<Counters>, StoreError> {
        self.hashes(keys).await
    }

    async fn put_mark(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        self.set_mark(key, value).await
    }

    async fn marks(&self, keys: &[String]) -> Result<Vec<Option<String>>, StoreError> {
        self.get_marks(keys).await
    }

    async fn clear_mark(&self, key: &str, counters: &[String]) -> Result<(), StoreError> {
        self.del_mark(key, counters).await
    }

    async fn create_job(&self, job: &Job) -> Result<(), StoreError> {
        if self.write_job(job, "create").await? {
            Ok(())
        } else {
            Err(StoreError::Store(format!("job `{}` exists", job.id)))
        }
    }

    async fn job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        self.get_job(id).await
    }

    async fn save_job(&self, job: &Job) -> Result<bool, StoreError> {
        self.write_job(job, "save").await
    }

    async fn claim_jobs(
        &self,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        self.claim(owner, now_ms, until_ms, limit).await
    }

    async fn take_job(
        &self,
        id: &str,
        owner: &str,
        until_ms: i64,
    ) -> Result<Option<Job>, StoreError> {
        Ok(self
            .take_jobs(&[id.to_string()], owner, until_ms, None)
            .await?
            .pop())
    }

    async fn renew_jobs(
        &self,
        owner: &str,
        ids: &[String],
        until_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        self.renew(owner, ids, until_ms).await
    }

    async fn list_jobs(&self, after: Option<&str>, limit: usize) -> Result<Vec<Job>, StoreError> {
        self.list(after, limit).await
    }

    async fn purge_jobs(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.purge(before_ms).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.confirm_epoch().await
    }

    async fn accept_empty(&self, note: &str) -> Result<String, StoreError> {
        self.accept(note).await
    }

    fn lost(&self) -> Option<String> {
        self.lock().lost.clone()
    }

    fn kind(&self) -> &'static str {
        self.conn.kind()
    }
}
