//! The SQLite store: the single-host default.
//!
//! **Durability.** The database runs in WAL mode with `synchronous=FULL`, so a transaction
//! that returned is on disk and survives `kill -9` (and a power cut).
//!
//! **Concurrency.** Every write is applied by one writer thread inside a `BEGIN IMMEDIATE`
//! transaction, which takes SQLite's write lock before reading, so a reserve's check and its
//! insert cannot interleave with another process's. Writes waiting together share one
//! transaction and one fsync (group commit; see `threads`). Reads (totals, breakers,
//! history) run on reader threads with connections of their own and settle expired
//! reservations in the figures they return without writing, so a decision never waits for
//! the write lock. Several genroute processes on one host can share the file safely.
//!
//! **Nothing waits long.** The busy timeout equals the store's deadline: when another process
//! holds the write lock past it, the batch fails and its callers hear so, and the store's
//! guard fails later calls fast ([`crate::guard`]). No async worker ever runs SQLite.
//!
//! Each month's totals live in their own row, updated in the same transaction as the
//! entries, so no operation scans the history. So do each budget level's (`levels`).
//!
//! **Where things are.** This file holds the store's handle and the `Store` contract, each
//! method handing a closure to the writer or a reader (`threads`) that calls into the
//! module that owns the statements: `entries` (money), `breakers`, `levels` (budget
//! levels and bounded sets), `jobs`, `stats` (samples, figures and marks). `schema`
//! holds the ledger's tables.

mod breakers;
mod entries;
mod jobs;
mod levels;
mod schema;
mod stats;
mod threads;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Transaction;

use crate::error::StoreError;
use crate::job::Job;
use crate::ledger::{millis, Entry, EntryState, Month, NewReservation, Totals};
use crate::store::{Counters, Store};
use genroute_core::breaker::{Breaker, BreakerChange, BreakerConfig};
use genroute_core::num::Fixed;
use threads::Threads;

/// A ledger in a SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    threads: Threads,
}

fn store_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Store(format!("sqlite: {e}"))
}

/// Runs a statement through the connection's statement cache (each is parsed once).
fn exec(tx: &Transaction<'_>, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql)?.execute(p)
}

/// Reads one row through the statement cache.
fn row<T>(
    tx: &Transaction<'_>,
    sql: &str,
    p: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    tx.prepare_cached(sql)?.query_row(p, f)
}

impl SqliteStore {
    /// Opens (creating if needed) the ledger at `path`. `timeout` bounds every operation,
    /// including the wait for a write lock held by another process.
    pub fn open(path: &Path, timeout: Duration) -> Result<SqliteStore, StoreError> {
        let writer = schema::connect(path, timeout)?;
        schema::create(&writer)?;
        let readers = (0..threads::READERS)
            .map(|_| schema::connect(path, timeout))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SqliteStore {
            threads: Threads::start(writer, readers, timeout)?,
        })
    }

    async fn finish(
        &self,
        id: &str,
        to: EntryState,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (id, note, now_ms) = (id.to_string(), note.map(str::to_string), millis(now));
        self.threads
            .write(move |tx| entries::finish(tx, &id, to, note.as_deref(), now_ms))
            .await
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn reserve(
        &self,
        r: &NewReservation,
        budget: Fixed,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let now_ms = millis(now);
        let month = Month::of(now);
        let r = r.clone();
        self.threads
            .write(move |tx| entries::reserve(tx, &r, budget, month, now_ms))
            .await
    }

    async fn mark_sent(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let (id, now_ms) = (id.to_string(), millis(now));
        self.threads
            .write(move |tx| entries::mark_sent(tx, id, now_ms))
            .await
    }

    async fn commit(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.finish(id, EntryState::Committed, None, now).await
    }

    async fn commit_noted(
        &self,
        id: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.finish(id, EntryState::Committed, Some(note), now)
            .await
    }

    async fn release(&self, id: &str, note: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.finish(id, EntryState::Released, Some(note), now).await
    }

    async fn keep_in_doubt(
        &self,
        id: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.finish(id, EntryState::InDoubt, Some(note), now).await
    }

    async fn totals(&self, month: Month, now: DateTime<Utc>) -> Result<Totals, StoreError> {
        let now_ms = millis(now);
        self.threads
            .read(move |tx| entries::totals(tx, &month.to_string(), now_ms))
            .await
    }

    async fn level_totals(
        &self,
        levels: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<Totals>, StoreError> {
        let (levels, now_ms) = (levels.to_vec(), millis(now));
        self.threads
            .read(move |tx| {
                levels
                    .iter()
                    .map(|l| levels::totals(tx, l, now_ms))
                    .collect()
            })
            .await
    }

    async fn take_slot(
        &self,
        set: &str,
        member: &str,
        limit: u32,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let (set, member) = (set.to_string(), member.to_string());
        self.threads
            .write(move |tx| levels::take_slot(tx, &set, &member, limit, until_ms, now_ms))
            .await
    }

    async fn drop_slot(&self, set: &str, member: &str) -> Result<(), StoreError> {
        let (set, member) = (set.to_string(), member.to_string());
        self.threads
            .write(move |tx| levels::drop_slot(tx, &set, &member))
            .await
    }

    async fn entries(
        &self,
        month: Option<Month>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Entry>, StoreError> {
        let month = month.map(|m| m.to_string());
        let now_ms = millis(now);
        self.threads
            .read(move |tx| entries::list(tx, month.as_deref(), now_ms))
            .await
    }

    async fn breakers(&self, backends: &[String]) -> Result<Vec<Breaker>, StoreError> {
        let backends = backends.to_vec();
        self.threads
            .read(move |tx| backends.iter().map(|b| breakers::read(tx, b)).collect())
            .await
    }

    async fn update_breaker(
        &self,
        backend: &str,
        change: BreakerChange,
        now_ms: i64,
        cfg: BreakerConfig,
    ) -> Result<(Breaker, bool), StoreError> {
        // Most changes change nothing (a call admitted or a success while closed): decide
        // that on a reader, and take the write lock only for a change, re-reading under it.
        let name = backend.to_string();
        let current = self
            .threads
            .read(move |tx| breakers::read(tx, &name))
            .await?;
        let mut b = current;
        let admitted = b.apply(change, now_ms, &cfg);
        if b == current {
            return Ok((b, admitted));
        }
        let backend = backend.to_string();
        self.threads
            .write(move |tx| breakers::update(tx, &backend, change, now_ms, &cfg))
            .await
    }

    async fn push_sample(&self, key: &str, sample: &str, keep: usize) -> Result<(), StoreError> {
        let (key, sample) = (key.to_string(), sample.to_string());
        self.threads
            .write(move |tx| stats::push(tx, &key, &sample, keep))
            .await
    }

    async fn samples(&self, keys: &[String], limit: usize) -> Result<Vec<Vec<String>>, StoreError> {
        let keys = keys.to_vec();
        self.threads
            .read(move |tx| keys.iter().map(|k| stats::list(tx, k, limit)).collect())
            .await
    }

    async fn add_counters(&self, key: &str, by: &[(&str, i64)]) -> Result<Counters, StoreError> {
        let key = key.to_string();
        let by: Vec<(String, i64)> = by.iter().map(|(f, n)| ((*f).to_string(), *n)).collect();
        self.threads
            .write(move |tx| stats::add(tx, &key, &by))
            .await
    }

    async fn counters(&self, keys: &[String]) -> Result<Vec<Counters>, StoreError> {
        let keys = keys.to_vec();
        self.threads
            .read(move |tx| keys.iter().map(|k| stats::get(tx, k)).collect())
            .await
    }

    async fn put_mark(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let (key, value) = (key.to_string(), value.to_string());
        self.threads
            .write(move |tx| stats::put_mark(tx, &key, &value))
            .await
    }

    async fn marks(&self, keys: &[String]) -> Result<Vec<Option<String>>, StoreError> {
        let keys = keys.to_vec();
        self.threads
            .read(move |tx| keys.iter().map(|k| stats::mark(tx, k)).collect())
            .await
    }

    async fn clear_mark(&self, key: &str, counters: &[String]) -> Result<(), StoreError> {
        let (key, counters) = (key.to_string(), counters.to_vec());
        self.threads
            .write(move |tx| stats::clear(tx, &key, &counters))
            .await
    }

    async fn create_job(&self, job: &Job) -> Result<(), StoreError> {
        let job = job.clone();
        self.threads.write(move |tx| jobs::create(tx, &job)).await
    }

    async fn job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let id = id.to_string();
        self.threads.read(move |tx| jobs::get(tx, &id)).await
    }

    async fn save_job(&self, job: &Job) -> Result<bool, StoreError> {
        let job = job.clone();
        self.threads.write(move |tx| jobs::save(tx, &job)).await
    }

    async fn claim_jobs(
        &self,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        let owner = owner.to_string();
        self.threads
            .write(move |tx| jobs::claim(tx, &owner, now_ms, until_ms, limit))
            .await
    }

    async fn take_job(
        &self,
        id: &str,
        owner: &str,
        until_ms: i64,
    ) -> Result<Option<Job>, StoreError> {
        let (id, owner) = (id.to_string(), owner.to_string());
        self.threads
            .write(move |tx| jobs::take(tx, &id, &owner, until_ms))
            .await
    }

    async fn renew_jobs(
        &self,
        owner: &str,
        ids: &[String],
        until_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let (owner, ids) = (owner.to_string(), ids.to_vec());
        self.threads
            .write(move |tx| jobs::renew(tx, &owner, &ids, until_ms))
            .await
    }

    async fn list_jobs(&self, after: Option<&str>, limit: usize) -> Result<Vec<Job>, StoreError> {
        let after = after.map(str::to_string);
        self.threads
            .read(move |tx| jobs::list(tx, after.as_deref(), limit))
            .await
    }

    async fn purge_jobs(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.threads
            .write(move |tx| jobs::purge(tx, before_ms))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // Through the writer: proves the write lock can be taken now, not just that the file
        // can be read.
        self.threads.write(|_| Ok(())).await
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}
