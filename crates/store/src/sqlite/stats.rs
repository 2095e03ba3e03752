//! The SQLite store's figures: rolling sample lists (a row per sample, pruned to the newest
//! `keep` of each key in the same transaction), counters (a row per key and field, added with
//! an upsert) and marks (insert-if-absent). Each call is one transaction, so a figure is never
//! half-written and two processes adding to one counter never lose an addition.

use rusqlite::{params, OptionalExtension, Transaction};

use super::{exec, store_err};
use crate::error::StoreError;
use crate::store::Counters;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS samples (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    key    TEXT NOT NULL,
    body   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_by_key ON samples(key, seq);
CREATE TABLE IF NOT EXISTS counters (
    key    TEXT NOT NULL,
    field  TEXT NOT NULL,
    value  INTEGER NOT NULL,
    PRIMARY KEY (key, field)
);
CREATE TABLE IF NOT EXISTS marks (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
";

pub(super) fn push(
    tx: &Transaction<'_>,
    key: &str,
    body: &str,
    keep: usize,
) -> Result<(), StoreError> {
    exec(
        tx,
        "INSERT INTO samples (key, body) VALUES (?1, ?2)",
        params![key, body],
    )
    .map_err(store_err)?;
    // Everything of this key older than its `keep`-th newest row.
    exec(
        tx,
        "DELETE FROM samples WHERE key = ?1 AND seq <= (
             SELECT seq FROM samples WHERE key = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
        params![key, keep as i64],
    )
    .map_err(store_err)?;
    Ok(())
}

pub(super) fn list(
    tx: &Transaction<'_>,
    key: &str,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = tx
        .prepare_cached("SELECT body FROM samples WHERE key = ?1 ORDER BY seq DESC LIMIT ?2")
        .map_err(store_err)?;
    let rows = stmt
        .query_map(params![key, limit as i64], |r| r.get::<_, String>(0))
        .map_err(store_err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(store_err)
}

pub(super) fn add(
    tx: &Transaction<'_>,
    key: &str,
    by: &[(String, i64)],
) -> Result<Counters, StoreError> {
    for (field, n) in by {
        exec(
            tx,
            "INSERT INTO counters (key, field, value) VALUES (?1, ?2, ?3)
             ON CONFLICT(key, field) DO UPDATE SET value = value + excluded.value",
            params![key, field, n],
        )
        .map_err(store_err)?;
    }
    get(tx, key)
}

pub(super) fn get(tx: &Transaction<'_>, key: &str) -> Result<Counters, StoreError> {
    let mut stmt = tx
        .prepare_cached("SELECT field, value FROM counters WHERE key = ?1")
        .map_err(store_err)?;
    let rows = stmt
        .query_map(params![key], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .map_err(store_err)?;
    rows.collect::<Result<Counters, _>>().map_err(store_err)
}

pub(super) fn put_mark(tx: &Transaction<'_>, key: &str, value: &str) -> Result<bool, StoreError> {
    let n = exec(
        tx,
        "INSERT INTO marks (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO NOTHING",
        params![key, value],
    )
    .map_err(store_err)?;
    Ok(n == 1)
}

pub(super) fn mark(tx: &Transaction<'_>, key: &str) -> Result<Option<String>, StoreError> {
    tx.prepare_cached("SELECT value FROM marks WHERE key = ?1")
        .map_err(store_err)?
        .query_row(params![key], |r| r.get::<_, String>(0))
        .optional()
        .map_err(store_err)
}

pub(super) fn clear(
    tx: &Transaction<'_>,
    key: &str,
    counters: &[String],
) -> Result<(), StoreError> {
    for c in counters {
        exec(tx, "DELETE FROM counters WHERE key = ?1", params![c]).map_err(store_err)?;
    }
    exec(tx, "DELETE FROM marks WHERE key = ?1", params![key]).map_err(store_err)?;
    Ok(())
}
