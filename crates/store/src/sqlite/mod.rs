//! The SQLite ledger store: the single-host default.
//!
//! **Durability.** The database runs in WAL mode with `synchronous=FULL`, so a transaction
//! that returned is on disk and survives `kill -9` (and a power cut).
//!
//! **Concurrency.** Every write is applied by one writer thread inside a `BEGIN IMMEDIATE`
//! transaction, which takes SQLite's write lock before reading, so a reserve's check and its
//! insert cannot interleave with another process's. Writes waiting together share one
//! transaction and one fsync (group commit; see [`threads`]). Reads (totals, breakers,
//! history) run on reader threads with connections of their own and settle expired
//! reservations in the figures they return without writing, so a decision never waits for
//! the write lock. Several genroute processes on one host can share the file safely.
//!
//! **Nothing waits long.** The busy timeout equals the store's deadline: when another process
//! holds the write lock past it, the batch fails and its callers hear so, and the store's
//! guard fails later calls fast ([`crate::guard`]). No async worker ever runs SQLite.
//!
//! Each month's totals live in their own row, updated in the same transaction as the
//! entries, so no operation scans the history. So do each budget level's ([`levels`]).

mod jobs;
mod levels;
mod stats;
mod threads;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{
    admits_all, check_levels, finish_move, millis, new_id, rfc3339, settle, Entry, EntryState,
    LedgerError, Month, NewReservation, Store, Totals, EXPIRED_AFTER_SEND,
};
use crate::job::Job;
use genroute_core::breaker::{Breaker, BreakerChange, BreakerConfig};
use genroute_core::num::Fixed;
use threads::Threads;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entries (
    id          TEXT PRIMARY KEY,
    month       TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    backend     TEXT NOT NULL,
    model       TEXT,
    amount      INTEGER NOT NULL,   -- micro-USD
    state       TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    note        TEXT,
    sent_ms     INTEGER,            -- when the create call was sent (NULL: never)
    key_id      TEXT,               -- the API key that asked (its id, never its secret)
    team        TEXT
);
CREATE INDEX IF NOT EXISTS entries_by_month ON entries(month, created_ms);
CREATE INDEX IF NOT EXISTS entries_open ON entries(expires_ms) WHERE state = 'reserved';
-- Every query of open reservations names this index (INDEXED BY): the planner would otherwise
-- pick entries_by_month for this month's open reservations and scan the whole month.
-- One row per month and one per budget level of a period (`team:growth@2026-12`).
CREATE TABLE IF NOT EXISTS totals (
    month      TEXT PRIMARY KEY,
    committed  INTEGER NOT NULL DEFAULT 0,   -- micro-USD
    in_doubt   INTEGER NOT NULL DEFAULT 0,
    reserved   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS breakers (
    backend TEXT PRIMARY KEY,
    state   TEXT NOT NULL           -- JSON of genroute_core::breaker::Breaker
);
";

/// A ledger in a SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    threads: Threads,
}

fn store_err(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Store(format!("sqlite: {e}"))
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

fn connect(path: &Path, timeout: Duration) -> Result<Connection, LedgerError> {
    let conn = Connection::open(path)
        .map_err(|e| LedgerError::Store(format!("cannot open `{}`: {e}", path.display())))?;
    conn.busy_timeout(timeout).map_err(store_err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(store_err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(store_err)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the ledger at `path`. `timeout` bounds every operation,
    /// including the wait for a write lock held by another process.
    pub fn open(path: &Path, timeout: Duration) -> Result<SqliteStore, LedgerError> {
        let writer = connect(path, timeout)?;
        writer.execute_batch(SCHEMA).map_err(store_err)?;
        writer.execute_batch(jobs::SCHEMA).map_err(store_err)?;
        writer.execute_batch(stats::SCHEMA).map_err(store_err)?;
        migrate(&writer)?;
        writer.execute_batch(levels::SCHEMA).map_err(store_err)?;
        let readers = (0..threads::READERS)
            .map(|_| connect(path, timeout))
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
    ) -> Result<(), LedgerError> {
        let (id, note, now_ms) = (id.to_string(), note.map(str::to_string), millis(now));
        self.threads
            .write(move |tx| finish(tx, &id, to, note.as_deref(), now_ms))
            .await
    }
}

/// Ledgers written before a column existed gain it (NULL: never sent, no key, as before).
fn migrate(conn: &Connection) -> Result<(), LedgerError> {
    for (column, ty) in [("sent_ms", "INTEGER"), ("key_id", "TEXT"), ("team", "TEXT")] {
        let has: bool = conn
            .prepare("SELECT 1 FROM pragma_table_info('entries') WHERE name = ?1")
            .and_then(|mut s| s.exists([column]))
            .map_err(store_err)?;
        if !has {
            conn.execute_batch(&format!("ALTER TABLE entries ADD COLUMN {column} {ty}"))
                .map_err(store_err)?;
        }
    }
    Ok(())
}

/// Settles reservations past their expiry: released if never sent, in doubt if sent.
fn expire(tx: &Transaction<'_>, now_ms: i64) -> Result<(), LedgerError> {
    let due: Option<i64> = row(
        tx,
        "SELECT 1 FROM entries WHERE state = 'reserved' AND expires_ms <= ?1 LIMIT 1",
        params![now_ms],
        |r| r.get(0),
    )
    .optional()
    .map_err(store_err)?;
    if due.is_none() {
        return Ok(());
    }
    levels::expire(tx, now_ms)?;
    exec(
        tx,
        "UPDATE totals SET
             reserved = reserved - (SELECT COALESCE(SUM(amount), 0) FROM entries e INDEXED BY entries_open
                 WHERE e.state = 'reserved' AND e.expires_ms <= ?1 AND e.month = totals.month),
             in_doubt = in_doubt + (SELECT COALESCE(SUM(amount), 0) FROM entries e INDEXED BY entries_open
                 WHERE e.state = 'reserved' AND e.expires_ms <= ?1 AND e.month = totals.month
                 AND e.sent_ms IS NOT NULL)
         WHERE month IN (SELECT month FROM entries INDEXED BY entries_open
                         WHERE state = 'reserved' AND expires_ms <= ?1)",
        params![now_ms],
    )
    .map_err(store_err)?;
    exec(
        tx,
        "UPDATE entries SET
             state = CASE WHEN sent_ms IS NULL THEN 'expired' ELSE 'in_doubt' END,
             note = CASE WHEN sent_ms IS NULL THEN note ELSE ?2 END,
             updated_ms = ?1
         WHERE state = 'reserved' AND expires_ms <= ?1",
        params![now_ms, EXPIRED_AFTER_SEND],
    )
    .map_err(store_err)?;
    Ok(())
}

/// A month's totals as stored, with reservations past their expiry settled as [`expire`]
/// would settle them, without writing.
fn totals(tx: &Transaction<'_>, month: &str, now_ms: i64) -> Result<Totals, LedgerError> {
    let (c, d, r) = levels::stored(tx, month)?;
    let (unsent, sent): (i64, i64) = row(
        tx,
        "SELECT COALESCE(SUM(CASE WHEN sent_ms IS NULL THEN amount END), 0),
                    COALESCE(SUM(CASE WHEN sent_ms IS NOT NULL THEN amount END), 0)
             FROM entries INDEXED BY entries_open
             WHERE state = 'reserved' AND expires_ms <= ?2 AND month = ?1",
        params![month, now_ms],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .map_err(store_err)?;
    Ok(settled(c, d, r, unsent, sent))
}

/// Stored totals (micro-USD), with the due reservations `unsent` and `sent` settled.
fn settled(c: i64, d: i64, r: i64, unsent: i64, sent: i64) -> Totals {
    Totals {
        committed: Fixed::from_micros(c),
        in_doubt: Fixed::from_micros(d.saturating_add(sent)),
        reserved: Fixed::from_micros(r.saturating_sub(unsent).saturating_sub(sent)),
    }
}

fn finish(
    tx: &Transaction<'_>,
    id: &str,
    to: EntryState,
    note: Option<&str>,
    now_ms: i64,
) -> Result<(), LedgerError> {
    // Settle expiries first, so that a late finish meets the entry as expiry left it.
    expire(tx, now_ms)?;
    let found: Option<(String, String, i64, Option<String>)> = row(
        tx,
        "SELECT state, month, amount, note FROM entries WHERE id = ?1",
        params![id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .optional()
    .map_err(store_err)?;
    let unknown = || LedgerError::UnknownReservation(id.to_string());
    let Some((from, month, amount, old_note)) = found else {
        return Err(unknown());
    };
    let from = EntryState::parse(&from).ok_or_else(unknown)?;
    let (state, [r, c, d]) = finish_move(from, old_note.as_deref(), to).ok_or_else(unknown)?;
    if [r, c, d] == [0, 0, 0] {
        return Ok(());
    }
    exec(
        tx,
        "UPDATE entries SET state = ?1, updated_ms = ?2, note = COALESCE(?3, note) WHERE id = ?4",
        params![state.as_str(), now_ms, note, id],
    )
    .map_err(store_err)?;
    let by = |k: i8| i64::from(k) * amount;
    exec(
 tx,
        "UPDATE totals SET reserved = reserved + ?1, committed = committed + ?2, in_doubt = in_doubt + ?3 WHERE month = ?4",
        params![by(r), by(c), by(d), month],
    )
    .map_err(store_err)?;
    levels::finish(tx, id, [by(r), by(c), by(d)])
}

fn read_breaker(tx: &Transaction<'_>, backend: &str) -> Result<Breaker, LedgerError> {
    let json: Option<String> = row(
        tx,
        "SELECT state FROM breakers WHERE backend = ?1",
        params![backend],
        |r| r.get(0),
    )
    .optional()
    .map_err(store_err)?;
    match json {
        Some(j) => serde_json::from_str(&j).map_err(store_err),
        None => Ok(Breaker::default()),
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn reserve(
        &self,
        r: &NewReservation,
        budget: Fixed,
        now: DateTime<Utc>,
    ) -> Result<String, LedgerError> {
        let now_ms = millis(now);
        let month = Month::of(now);
        let r = r.clone();
        self.threads
            .write(move |tx| {
                check_levels(&r.levels, month)?;
                expire(tx, now_ms)?;
                let key = month.to_string();
                let counted = r
                    .levels
                    .iter()
                    .map(|l| Ok(levels::totals(tx, &l.key, now_ms)?.counted()))
                    .collect::<Result<Vec<_>, LedgerError>>()?;
                admits_all(totals(tx, &key, now_ms)?.counted(), budget, r.amount, &r.levels, &counted)?;
                let id = new_id(month);
                exec(
 tx,
                    "INSERT INTO entries (id, month, request_id, backend, model, amount, state, created_ms, updated_ms, expires_ms, key_id, team)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'reserved', ?7, ?7, ?8, ?9, ?10)",
                    params![id, key, r.request_id, r.backend, r.model, r.amount.micros(), now_ms, now_ms.saturating_add(r.ttl_ms), r.payer.key, r.payer.team],
                )
                .map_err(store_err)?;
                let keys: Vec<String> = r.levels.iter().map(|l| l.key.clone()).collect();
                levels::reserve(tx, &id, &keys, r.amount.micros())?;
                exec(
 tx,
                    "INSERT INTO totals (month, reserved) VALUES (?1, ?2)
                     ON CONFLICT(month) DO UPDATE SET reserved = reserved + excluded.reserved",
                    params![key, r.amount.micros()],
                )
                .map_err(store_err)?;
                Ok(id)
            })
            .await
    }

    async fn mark_sent(&self, id: &str, now: DateTime<Utc>) -> Result<(), LedgerError> {
        let (id, now_ms) = (id.to_string(), millis(now));
        self.threads
            .write(move |tx| {
                let n = tx
                    .execute(
                        "UPDATE entries SET sent_ms = ?1 WHERE id = ?2 AND state = 'reserved'",
                        params![now_ms, id],
                    )
                    .map_err(store_err)?;
                if n == 1 {
                    Ok(())
                } else {
                    Err(LedgerError::UnknownReservation(id))
                }
            })
            .await
    }

    async fn commit(&self, id: &str, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.finish(id, EntryState::Committed, None, now).await
    }

    async fn commit_noted(
        &self,
        id: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.finish(id, EntryState::Committed, Some(note), now)
            .await
    }

    async fn release(&self, id: &str, note: &str, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.finish(id, EntryState::Released, Some(note), now).await
    }

    async fn keep_in_doubt(
        &self,
        id: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.finish(id, EntryState::InDoubt, Some(note), now).await
    }

    async fn totals(&self, month: Month, now: DateTime<Utc>) -> Result<Totals, LedgerError> {
        let now_ms = millis(now);
        self.threads
            .read(move |tx| totals(tx, &month.to_string(), now_ms))
            .await
    }

    async fn level_totals(
        &self,
        levels: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<Totals>, LedgerError> {
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
    ) -> Result<Option<i64>, LedgerError> {
        let (set, member) = (set.to_string(), member.to_string());
        self.threads
            .write(move |tx| levels::take_slot(tx, &set, &member, limit, until_ms, now_ms))
            .await
    }

    async fn drop_slot(&self, set: &str, member: &str) -> Result<(), LedgerError> {
        let (set, member) = (set.to_string(), member.to_string());
        self.threads
            .write(move |tx| levels::drop_slot(tx, &set, &member))
            .await
    }

    async fn entries(
        &self,
        month: Option<Month>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Entry>, LedgerError> {
        let month = month.map(|m| m.to_string());
        let now_ms = millis(now);
        self.threads
            .read(move |tx| {
                let mut stmt = tx
                    .prepare(
                        "SELECT id, month, request_id, backend, model, amount, state, created_ms, updated_ms, note, sent_ms, expires_ms,
                                key_id, team,
                                (SELECT group_concat(level, ' ') FROM (SELECT level FROM entry_levels WHERE entry = entries.id ORDER BY level))
                         FROM entries WHERE ?1 IS NULL OR month = ?1 ORDER BY created_ms, rowid",
                    )
                    .map_err(store_err)?;
                let rows = stmt
                    .query_map(params![month], |r| {
                        let mut e = Entry {
                            id: r.get(0)?,
                            month: r.get(1)?,
                            request_id: r.get(2)?,
                            backend: r.get(3)?,
                            model: r.get(4)?,
                            amount_usd: Fixed::from_micros(r.get(5)?),
                            state: EntryState::parse(&r.get::<_, String>(6)?)
                                .unwrap_or(EntryState::Reserved),
                            created: rfc3339(r.get(7)?),
                            updated: rfc3339(r.get(8)?),
                            note: r.get(9)?,
                            sent: r.get::<_, Option<i64>>(10)?.map(rfc3339),
                            key: r.get(12)?,
                            team: r.get(13)?,
                            levels: r
                                .get::<_, Option<String>>(14)?
                                .map(|l| l.split(' ').map(str::to_string).collect())
                                .unwrap_or_default(),
                        };
                        settle(&mut e, r.get(11)?, now_ms);
                        Ok(e)
                    })
                    .map_err(store_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(store_err)
            })
            .await
    }

    async fn breakers(&self, backends: &[String]) -> Result<Vec<Breaker>, LedgerError> {
        let backends = backends.to_vec();
        self.threads
            .read(move |tx| backends.iter().map(|b| read_breaker(tx, b)).collect())
            .await
    }

    async fn update_breaker(
        &self,
        backend: &str,
        change: BreakerChange,
        now_ms: i64,
        cfg: BreakerConfig,
    ) -> Result<(Breaker, bool), LedgerError> {
        // Most changes change nothing (a call admitted or a success while closed): decide
        // that on a reader, and take the write lock only for a change, re-reading under it.
        let name = backend.to_string();
        let current = self.threads.read(move |tx| read_breaker(tx, &name)).await?;
        let mut b = current;
        let admitted = b.apply(change, now_ms, &cfg);
        if b == current {
            return Ok((b, admitted));
        }
        let backend = backend.to_string();
        self.threads
            .write(move |tx| {
                let before = read_breaker(tx, &backend)?;
                let mut b = before;
                let admitted = b.apply(change, now_ms, &cfg);
                if b != before {
                    let json = serde_json::to_string(&b).map_err(store_err)?;
                    exec(
                        tx,
                        "INSERT INTO breakers (backend, state) VALUES (?1, ?2)
                         ON CONFLICT(backend) DO UPDATE SET state = excluded.state",
                        params![backend, json],
                    )
                    .map_err(store_err)?;
                }
                Ok((b, admitted))
            })
            .await
    }

    async fn push_sample(&self, key: &str, sample: &str, keep: usize) -> Result<(), LedgerError> {
        let (key, sample) = (key.to_string(), sample.to_string());
        self.threads
            .write(move |tx| stats::push(tx, &key, &sample, keep))
            .await
    }

    async fn samples(
        &self,
        keys: &[String],
        limit: usize,
    ) -> Result<Vec<Vec<String>>, LedgerError> {
        let keys = keys.to_vec();
        self.threads
            .read(move |tx| keys.iter().map(|k| stats::list(tx, k, limit)).collect())
            .await
    }

    async fn add_counters(
        &self,
        key: &str,
        by: &[(&str, i64)],
    ) -> Result<super::Counters, LedgerError> {
        let key = key.to_string();
        let by: Vec<(String, i64)> = by.iter().map(|(f, n)| ((*f).to_string(), *n)).collect();
        self.threads
            .write(move |tx| stats::add(tx, &key, &by))
            .await
    }

    async fn counters(&self, keys: &[String]) -> Result<Vec<super::Counters>, LedgerError> {
        let keys = keys.to_vec();
        self.threads
            .read(move |tx| keys.iter().map(|k| stats::get(tx, k)).collect())
            .await
    }

    async fn put_mark(&self, key: &str, value: &str) -> Result<bool, LedgerError> {
        let (key, value) = (key.to_string(), value.to_string());
        self.threads
            .write(move |tx| stats::put_mark(tx, &key, &value))
            .await
    }

    async fn marks(&self, keys: &[String]) -> Result<Vec<Option<String>>, LedgerError> {
        let keys = keys.to_vec();
        self.threads
            .read(move |tx| keys.iter().map(|k| stats::mark(tx, k)).collect())
            .await
    }

    async fn clear_mark(&self, key: &str, counters: &[String]) -> Result<(), LedgerError> {
        let (key, counters) = (key.to_string(), counters.to_vec());
        self.threads
            .write(move |tx| stats::clear(tx, &key, &counters))
            .await
    }

    async fn create_job(&self, job: &Job) -> Result<(), LedgerError> {
        let job = job.clone();
        self.threads.write(move |tx| jobs::create(tx, &job)).await
    }

    async fn job(&self, id: &str) -> Result<Option<Job>, LedgerError> {
        let id = id.to_string();
        self.threads.read(move |tx| jobs::get(tx, &id)).await
    }

    async fn save_job(&self, job: &Job) -> Result<bool, LedgerError> {
        let job = job.clone();
        self.threads.write(move |tx| jobs::save(tx, &job)).await
    }

    async fn claim_jobs(
        &self,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Job>, LedgerError> {
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
    ) -> Result<Option<Job>, LedgerError> {
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
    ) -> Result<Vec<String>, LedgerError> {
        let (owner, ids) = (owner.to_string(), ids.to_vec());
        self.threads
            .write(move |tx| jobs::renew(tx, &owner, &ids, until_ms))
            .await
    }

    async fn list_jobs(&self, after: Option<&str>, limit: usize) -> Result<Vec<Job>, LedgerError> {
        let after = after.map(str::to_string);
        self.threads
            .read(move |tx| jobs::list(tx, after.as_deref(), limit))
            .await
    }

    async fn purge_jobs(&self, before_ms: i64) -> Result<usize, LedgerError> {
        self.threads
            .write(move |tx| jobs::purge(tx, before_ms))
            .await
    }

    async fn ping(&self) -> Result<(), LedgerError> {
        // Through the writer: proves the write lock can be taken now, not just that the file
        // can be read.
        self.threads.write(|_| Ok(())).await
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}
