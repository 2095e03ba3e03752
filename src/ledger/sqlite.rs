//! The SQLite ledger store: the single-host default.
//!
//! Durability: the database runs in WAL mode with `synchronous=FULL`, so a transaction that
//! returned is on disk and survives `kill -9` (and a power cut). Concurrency: every operation
//! is one `BEGIN IMMEDIATE` transaction, which takes SQLite's write lock before reading, so a
//! reserve's check and its insert cannot interleave with another process's; a busy timeout
//! makes contenders wait instead of failing. Several genroute processes on one host can share
//! the file safely. Each month's totals live in their own row, updated in the same
//! transaction as the entries, so no operation scans the history.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{
    admits, millis, rfc3339, Entry, EntryState, LedgerError, Month, NewReservation, Store, Totals,
};
use crate::breaker::Breaker;
use crate::num::Fixed;

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
    note        TEXT
);
CREATE INDEX IF NOT EXISTS entries_by_month ON entries(month, created_ms);
CREATE INDEX IF NOT EXISTS entries_open ON entries(expires_ms) WHERE state = 'reserved';
CREATE TABLE IF NOT EXISTS totals (
    month      TEXT PRIMARY KEY,
    committed  INTEGER NOT NULL DEFAULT 0,   -- micro-USD
    in_doubt   INTEGER NOT NULL DEFAULT 0,
    reserved   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS breakers (
    backend TEXT PRIMARY KEY,
    state   TEXT NOT NULL           -- JSON of crate::breaker::Breaker
);
";

/// A ledger in a SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

fn store_err(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Store(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the ledger at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, LedgerError> {
        let conn = Connection::open(path)
            .map_err(|e| LedgerError::Store(format!("cannot open `{}`: {e}", path.display())))?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(store_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(store_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(store_err)?;
        conn.execute_batch(SCHEMA).map_err(store_err)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    /// Runs `f` in one immediate transaction.
    fn tx<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| LedgerError::Store("a thread panicked while holding the ledger".into()))?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(store_err)?;
        let out = f(&tx)?;
        tx.commit().map_err(store_err)?;
        Ok(out)
    }
}

fn expire(tx: &rusqlite::Transaction<'_>, now_ms: i64) -> Result<(), LedgerError> {
    tx.execute(
        "UPDATE totals SET reserved = reserved - (
             SELECT COALESCE(SUM(amount), 0) FROM entries e
             WHERE e.state = 'reserved' AND e.expires_ms <= ?1 AND e.month = totals.month)
         WHERE month IN (SELECT month FROM entries WHERE state = 'reserved' AND expires_ms <= ?1)",
        params![now_ms],
    )
    .map_err(store_err)?;
    tx.execute(
        "UPDATE entries SET state = 'expired', updated_ms = ?1 WHERE state = 'reserved' AND expires_ms <= ?1",
        params![now_ms],
    )
    .map_err(store_err)?;
    Ok(())
}

fn totals(tx: &rusqlite::Transaction<'_>, month: &str) -> Result<Totals, LedgerError> {
    let row = tx
        .query_row(
            "SELECT committed, in_doubt, reserved FROM totals WHERE month = ?1",
            params![month],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )
        .optional()
        .map_err(store_err)?;
    let (c, d, r) = row.unwrap_or((0, 0, 0));
    Ok(Totals {
        committed: Fixed::from_micros(c),
        in_doubt: Fixed::from_micros(d),
        reserved: Fixed::from_micros(r),
    })
}

fn finish(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    to: EntryState,
    note: Option<&str>,
    now_ms: i64,
) -> Result<(), LedgerError> {
    let row: Option<(String, String, i64)> = tx
        .query_row(
            "SELECT state, month, amount FROM entries WHERE id = ?1",
            params![id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(store_err)?;
    let Some((from, month, amount)) = row else {
        return Err(LedgerError::UnknownReservation(id.to_string()));
    };
    let from = EntryState::parse(&from);
    // A commit (or in-doubt) after expiry is still recorded: the money was spent.
    let open = from == Some(EntryState::Reserved)
        || (from == Some(EntryState::Expired) && to != EntryState::Released);
    if !open {
        return Err(LedgerError::UnknownReservation(id.to_string()));
    }
    tx.execute(
        "UPDATE entries SET state = ?1, updated_ms = ?2, note = COALESCE(?3, note) WHERE id = ?4",
        params![to.as_str(), now_ms, note, id],
    )
    .map_err(store_err)?;
    let released = if from == Some(EntryState::Reserved) {
        amount
    } else {
        0
    };
    let (committed, in_doubt) = match to {
        EntryState::Committed => (amount, 0),
        EntryState::InDoubt => (0, amount),
        _ => (0, 0),
    };
    tx.execute(
        "UPDATE totals SET reserved = reserved - ?1, committed = committed + ?2, in_doubt = in_doubt + ?3 WHERE month = ?4",
        params![released, committed, in_doubt, month],
    )
    .map_err(store_err)?;
    Ok(())
}

impl Store for SqliteStore {
    fn reserve(
        &self,
        r: &NewReservation,
        budget: Fixed,
        now: DateTime<Utc>,
    ) -> Result<String, LedgerError> {
        let now_ms = millis(now);
        let month = Month::of(now).to_string();
        self.tx(|tx| {
            expire(tx, now_ms)?;
            admits(totals(tx, &month)?.counted(), r.amount, budget)?;
            let id = uuid::Uuid::new_v4().to_string();
            tx.execute(
                "INSERT INTO entries (id, month, request_id, backend, model, amount, state, created_ms, updated_ms, expires_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'reserved', ?7, ?7, ?8)",
                params![id, month, r.request_id, r.backend, r.model, r.amount.micros(), now_ms, now_ms.saturating_add(r.ttl_ms)],
            )
            .map_err(store_err)?;
            tx.execute(
                "INSERT INTO totals (month, reserved) VALUES (?1, ?2)
                 ON CONFLICT(month) DO UPDATE SET reserved = reserved + excluded.reserved",
                params![month, r.amount.micros()],
            )
            .map_err(store_err)?;
            Ok(id)
        })
    }

    fn commit(&self, id: &str, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.tx(|tx| finish(tx, id, EntryState::Committed, None, millis(now)))
    }

    fn release(&self, id: &str, note: &str, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.tx(|tx| finish(tx, id, EntryState::Released, Some(note), millis(now)))
    }

    fn keep_in_doubt(&self, id: &str, note: &str, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.tx(|tx| finish(tx, id, EntryState::InDoubt, Some(note), millis(now)))
    }

    fn totals(&self, month: Month, now: DateTime<Utc>) -> Result<Totals, LedgerError> {
        self.tx(|tx| {
            expire(tx, millis(now))?;
            totals(tx, &month.to_string())
        })
    }

    fn entries(&self, month: Option<Month>) -> Result<Vec<Entry>, LedgerError> {
        let month = month.map(|m| m.to_string());
        self.tx(|tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT id, month, request_id, backend, model, amount, state, created_ms, updated_ms, note
                     FROM entries WHERE ?1 IS NULL OR month = ?1 ORDER BY created_ms, rowid",
                )
                .map_err(store_err)?;
            let rows = stmt
                .query_map(params![month], |r| {
                    Ok(Entry {
                        id: r.get(0)?,
                        month: r.get(1)?,
                        request_id: r.get(2)?,
                        backend: r.get(3)?,
                        model: r.get(4)?,
                        amount_usd: Fixed::from_micros(r.get(5)?),
                        state: EntryState::parse(&r.get::<_, String>(6)?).unwrap_or(EntryState::Reserved),
                        created: rfc3339(r.get(7)?),
                        updated: rfc3339(r.get(8)?),
                        note: r.get(9)?,
                    })
                })
                .map_err(store_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(store_err)
        })
    }

    fn breaker(&self, backend: &str) -> Result<Breaker, LedgerError> {
        self.tx(|tx| read_breaker(tx, backend))
    }

    fn update_breaker(
        &self,
        backend: &str,
        change: &mut dyn FnMut(&mut Breaker),
    ) -> Result<Breaker, LedgerError> {
        self.tx(|tx| {
            let mut b = read_breaker(tx, backend)?;
            change(&mut b);
            let json = serde_json::to_string(&b).map_err(store_err)?;
            tx.execute(
                "INSERT INTO breakers (backend, state) VALUES (?1, ?2)
                 ON CONFLICT(backend) DO UPDATE SET state = excluded.state",
                params![backend, json],
            )
            .map_err(store_err)?;
            Ok(b)
        })
    }
}

fn read_breaker(tx: &rusqlite::Transaction<'_>, backend: &str) -> Result<Breaker, LedgerError> {
    let json: Option<String> = tx
        .query_row(
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
