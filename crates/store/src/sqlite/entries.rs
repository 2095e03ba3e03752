//! The ledger's entries in SQLite: reserve, "create sent", the finish calls, expiry, a
//! month's totals and its history, each run inside one transaction the store's threads hand
//! over ([`super::threads`]).
//!
//! **Why apart.** These are the statements that move money. Each call settles expired
//! reservations first ([`expire`]) or reads them as settled ([`totals`]), and moves the
//! month's row in `totals` and the entry's levels ([`super::levels`]) in the same
//! transaction as the entry, so the figures never drift from the history.

use rusqlite::{params, OptionalExtension, Transaction};

use super::{exec, levels, row, store_err};
use crate::error::StoreError;
use crate::ledger::{
    admits_all, check_levels, finish_move, new_id, rfc3339, settle, Entry, EntryState, Month,
    NewReservation, Totals, EXPIRED_AFTER_SEND,
};
use genroute_core::num::Fixed;

/// Reserves `r.amount` in `month` if it fits the month's `budget` and each of its levels.
pub(super) fn reserve(
    tx: &Transaction<'_>,
    r: &NewReservation,
    budget: Fixed,
    month: Month,
    now_ms: i64,
) -> Result<String, StoreError> {
    check_levels(&r.levels, month)?;
    expire(tx, now_ms)?;
    let key = month.to_string();
    let counted = r
        .levels
        .iter()
        .map(|l| Ok(levels::totals(tx, &l.key, now_ms)?.counted()))
        .collect::<Result<Vec<_>, StoreError>>()?;
    admits_all(
        totals(tx, &key, now_ms)?.counted(),
        budget,
        r.amount,
        &r.levels,
        &counted,
    )?;
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
}

/// Records that a reservation's create call is about to be sent.
pub(super) fn mark_sent(tx: &Transaction<'_>, id: String, now_ms: i64) -> Result<(), StoreError> {
    let n = tx
        .execute(
            "UPDATE entries SET sent_ms = ?1 WHERE id = ?2 AND state = 'reserved'",
            params![now_ms, id],
        )
        .map_err(store_err)?;
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::UnknownReservation(id))
    }
}

/// Settles reservations past their expiry: released if never sent, in doubt if sent.
pub(super) fn expire(tx: &Transaction<'_>, now_ms: i64) -> Result<(), StoreError> {
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
pub(super) fn totals(tx: &Transaction<'_>, month: &str, now_ms: i64) -> Result<Totals, StoreError> {
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
pub(super) fn settled(c: i64, d: i64, r: i64, unsent: i64, sent: i64) -> Totals {
    Totals {
        committed: Fixed::from_micros(c),
        in_doubt: Fixed::from_micros(d.saturating_add(sent)),
        reserved: Fixed::from_micros(r.saturating_sub(unsent).saturating_sub(sent)),
    }
}

/// Moves an open entry to `to` ([`finish_move`]): commit, release or in doubt.
pub(super) fn finish(
    tx: &Transaction<'_>,
    id: &str,
    to: EntryState,
    note: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
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
    let unknown = || StoreError::UnknownReservation(id.to_string());
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

/// The entries of `month` (or all), oldest first, as of `now_ms` (see [`settle`]).
pub(super) fn list(
    tx: &Transaction<'_>,
    month: Option<&str>,
    now_ms: i64,
) -> Result<Vec<Entry>, StoreError> {
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
                state: EntryState::parse(&r.get::<_, String>(6)?).unwrap_or(EntryState::Reserved),
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
}
