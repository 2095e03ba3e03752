//! The backends' breakers in SQLite: one row per backend, the breaker as JSON.
//!
//! **Why apart.** A breaker is changed in Rust by the one state machine every store shares
//! ([`genroute_core::breaker`]); here it is only read and, under the write lock, read again,
//! changed and written back.

use rusqlite::{params, OptionalExtension, Transaction};

use super::{exec, row, store_err};
use crate::error::StoreError;
use genroute_core::breaker::{Breaker, BreakerChange, BreakerConfig};

/// A backend's breaker (closed if never written).
pub(super) fn read(tx: &Transaction<'_>, backend: &str) -> Result<Breaker, StoreError> {
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

/// Applies `change` to a backend's breaker under the write lock, writing it only if it
/// changed; returns the new value and whether the call is admitted.
pub(super) fn update(
    tx: &Transaction<'_>,
    backend: &str,
    change: BreakerChange,
    now_ms: i64,
    cfg: &BreakerConfig,
) -> Result<(Breaker, bool), StoreError> {
    let before = read(tx, backend)?;
    let mut b = before;
    let admitted = b.apply(change, now_ms, cfg);
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
}
