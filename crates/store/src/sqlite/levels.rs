//! Budget levels and bounded sets in SQLite.
//!
//! A level's totals are rows of the `totals` table, keyed by the level key
//! (`team:growth@2026-12`) where a month's row is keyed by the month, so the month and its
//! levels are read and moved by the same statements' shapes, in the same transaction. Which
//! levels an entry counts on is the `entry_levels` table; every move of an entry (reserve,
//! finish, expiry) updates the month's row and each of its levels' rows in the one write
//! transaction the writer thread runs it in.

use rusqlite::{params, OptionalExtension, Transaction};

use super::{exec, row, store_err};
use crate::error::StoreError;
use crate::ledger::Totals;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entry_levels (
    entry TEXT NOT NULL,
    level TEXT NOT NULL,          -- e.g. team:growth@2026-12
    PRIMARY KEY (entry, level)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS slots (
    name     TEXT NOT NULL,
    member   TEXT NOT NULL,
    until_ms INTEGER NOT NULL,
    PRIMARY KEY (name, member)
) WITHOUT ROWID;
";

/// Records the levels of a new entry and adds its amount to each level's reserved total.
pub fn reserve(
    tx: &Transaction<'_>,
    id: &str,
    levels: &[String],
    amount: i64,
) -> Result<(), StoreError> {
    for level in levels {
        exec(
            tx,
            "INSERT INTO entry_levels (entry, level) VALUES (?1, ?2)",
            params![id, level],
        )
        .map_err(store_err)?;
        exec(
            tx,
            "INSERT INTO totals (month, reserved) VALUES (?1, ?2)
             ON CONFLICT(month) DO UPDATE SET reserved = reserved + excluded.reserved",
            params![level, amount],
        )
        .map_err(store_err)?;
    }
    Ok(())
}

/// Moves every level of entry `id` by the signed amounts (reserved, committed, in doubt).
pub fn finish(tx: &Transaction<'_>, id: &str, by: [i64; 3]) -> Result<(), StoreError> {
    exec(
        tx,
        "UPDATE totals SET reserved = reserved + ?1, committed = committed + ?2, in_doubt = in_doubt + ?3
         WHERE month IN (SELECT level FROM entry_levels WHERE entry = ?4)",
        params![by[0], by[1], by[2], id],
    )
    .map_err(store_err)?;
    Ok(())
}

/// Settles, on their levels, the reservations that [`super::entries::expire`] is about to settle
/// (run before it changes their state).
pub fn expire(tx: &Transaction<'_>, now_ms: i64) -> Result<(), StoreError> {
    exec(
        tx,
        "UPDATE totals SET
             reserved = reserved - (SELECT COALESCE(SUM(e.amount), 0)
                 FROM entries e INDEXED BY entries_open JOIN entry_levels l ON l.entry = e.id
                 WHERE e.state = 'reserved' AND e.expires_ms <= ?1 AND l.level = totals.month),
             in_doubt = in_doubt + (SELECT COALESCE(SUM(e.amount), 0)
                 FROM entries e INDEXED BY entries_open JOIN entry_levels l ON l.entry = e.id
                 WHERE e.state = 'reserved' AND e.expires_ms <= ?1 AND l.level = totals.month
                 AND e.sent_ms IS NOT NULL)
         WHERE month IN (SELECT l.level FROM entries e INDEXED BY entries_open
                         JOIN entry_levels l ON l.entry = e.id
                         WHERE e.state = 'reserved' AND e.expires_ms <= ?1)",
        params![now_ms],
    )
    .map_err(store_err)?;
    Ok(())
}

/// A level's totals as stored, with reservations past their expiry settled as [`expire`]
/// would settle them, without writing.
pub fn totals(tx: &Transaction<'_>, level: &str, now_ms: i64) -> Result<Totals, StoreError> {
    let (c, d, r) = stored(tx, level)?;
    let (unsent, sent): (i64, i64) = row(
        tx,
        "SELECT COALESCE(SUM(CASE WHEN e.sent_ms IS NULL THEN e.amount END), 0),
                COALESCE(SUM(CASE WHEN e.sent_ms IS NOT NULL THEN e.amount END), 0)
         FROM entries e INDEXED BY entries_open JOIN entry_levels l ON l.entry = e.id
         WHERE e.state = 'reserved' AND e.expires_ms <= ?2 AND l.level = ?1",
        params![level, now_ms],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .map_err(store_err)?;
    Ok(super::entries::settled(c, d, r, unsent, sent))
}

/// A totals row as stored (zero when absent).
pub fn stored(tx: &Transaction<'_>, key: &str) -> Result<(i64, i64, i64), StoreError> {
    Ok(row(
        tx,
        "SELECT committed, in_doubt, reserved FROM totals WHERE month = ?1",
        params![key],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .optional()
    .map_err(store_err)?
    .unwrap_or((0, 0, 0)))
}

/// [`crate::Store::take_slot`].
pub fn take_slot(
    tx: &Transaction<'_>,
    set: &str,
    member: &str,
    limit: u32,
    until_ms: i64,
    now_ms: i64,
) -> Result<Option<i64>, StoreError> {
    exec(
        tx,
        "DELETE FROM slots WHERE name = ?1 AND until_ms <= ?2",
        params![set, now_ms],
    )
    .map_err(store_err)?;
    let (held, first): (i64, Option<i64>) = row(
        tx,
        "SELECT COUNT(*), MIN(until_ms) FROM slots WHERE name = ?1 AND member != ?2",
        params![set, member],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .map_err(store_err)?;
    if held >= i64::from(limit) {
        return Ok(Some(first.unwrap_or(now_ms)));
    }
    exec(
        tx,
        "INSERT INTO slots (name, member, until_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(name, member) DO UPDATE SET until_ms = excluded.until_ms",
        params![set, member, until_ms],
    )
    .map_err(store_err)?;
    Ok(None)
}

/// [`crate::Store::drop_slot`].
pub fn drop_slot(tx: &Transaction<'_>, set: &str, member: &str) -> Result<(), StoreError> {
    exec(
        tx,
        "DELETE FROM slots WHERE name = ?1 AND member = ?2",
        params![set, member],
    )
    .map_err(store_err)?;
    Ok(())
}
