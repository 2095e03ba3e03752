//! The SQLite store's ledger tables, how a connection to them is opened, and how a ledger
//! written by an older build gains the columns added since.
//!
//! **Why apart.** The schema is a wire format: other genroute processes on the host, and
//! later builds, open the same file. Its tables and the order they are created in are kept
//! here, in one place (the jobs', samples' and levels' tables beside their statements, in
//! [`super::jobs`], [`super::stats`] and [`super::levels`]).

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use super::{jobs, levels, stats, store_err};
use crate::error::StoreError;

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

/// Opens a connection to the ledger at `path`: WAL, `synchronous=FULL`, and a busy timeout
/// of the store's deadline.
pub(super) fn connect(path: &Path, timeout: Duration) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)
        .map_err(|e| StoreError::Store(format!("cannot open `{}`: {e}", path.display())))?;
    conn.busy_timeout(timeout).map_err(store_err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(store_err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(store_err)?;
    Ok(conn)
}

/// Creates the tables that do not exist yet, on the writer's connection.
pub(super) fn create(writer: &Connection) -> Result<(), StoreError> {
    writer.execute_batch(SCHEMA).map_err(store_err)?;
    writer.execute_batch(jobs::SCHEMA).map_err(store_err)?;
    writer.execute_batch(stats::SCHEMA).map_err(store_err)?;
    migrate(writer)?;
    writer.execute_batch(levels::SCHEMA).map_err(store_err)?;
    Ok(())
}

/// Ledgers written before a column existed gain it (NULL: never sent, no key, as before).
fn migrate(conn: &Connection) -> Result<(), StoreError> {
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
