//! The SQLite store's jobs: one row per job, the record as JSON beside the columns that
//! ownership and listing need. Owner and lease live in their columns (the JSON's copies are
//! overwritten on read), so that a claim or a renewal is one `UPDATE … WHERE` in a transaction.

use rusqlite::{params, OptionalExtension, Transaction};

use super::{exec, store_err};
use crate::error::StoreError;
use crate::job::Job;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id             TEXT PRIMARY KEY,
    json           TEXT NOT NULL,
    owner          TEXT,
    lease_until_ms INTEGER NOT NULL,
    active         INTEGER NOT NULL,   -- 1 while it needs an owner (see Job::is_active)
    created_ms     INTEGER NOT NULL,
    finished_ms    INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_by_lease ON jobs(lease_until_ms) WHERE active = 1;
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs(created_ms, id);
CREATE INDEX IF NOT EXISTS jobs_by_finished ON jobs(finished_ms) WHERE active = 0;
";

fn json(job: &Job) -> Result<String, StoreError> {
    serde_json::to_string(job).map_err(store_err)
}

/// A job from its row.
fn parse(json: &str, owner: Option<String>, lease: i64) -> Result<Job, StoreError> {
    let mut job: Job = serde_json::from_str(json).map_err(store_err)?;
    job.owner = owner;
    job.lease_until_ms = lease;
    Ok(job)
}

pub(super) fn create(tx: &Transaction<'_>, job: &Job) -> Result<(), StoreError> {
    let n = exec(
        tx,
        "INSERT INTO jobs (id, json, owner, lease_until_ms, active, created_ms, finished_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(id) DO NOTHING",
        params![
            job.id,
            json(job)?,
            job.owner,
            job.lease_until_ms,
            job.is_active(),
            job.created_ms,
            job.finished_ms
        ],
    )
    .map_err(store_err)?;
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::Store(format!("job `{}` exists", job.id)))
    }
}

pub(super) fn get(tx: &Transaction<'_>, id: &str) -> Result<Option<Job>, StoreError> {
    let row: Option<(String, Option<String>, i64)> = tx
        .prepare_cached("SELECT json, owner, lease_until_ms FROM jobs WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(store_err)?;
    row.map(|(j, o, l)| parse(&j, o, l)).transpose()
}

pub(super) fn save(tx: &Transaction<'_>, job: &Job) -> Result<bool, StoreError> {
    let n = exec(
        tx,
        "UPDATE jobs SET json = ?2, lease_until_ms = ?3, active = ?4, finished_ms = ?5
         WHERE id = ?1 AND owner IS ?6",
        params![
            job.id,
            json(job)?,
            job.lease_until_ms,
            job.is_active(),
            job.finished_ms,
            job.owner
        ],
    )
    .map_err(store_err)?;
    Ok(n == 1)
}

pub(super) fn claim(
    tx: &Transaction<'_>,
    owner: &str,
    now_ms: i64,
    until_ms: i64,
    limit: usize,
) -> Result<Vec<Job>, StoreError> {
    let ids: Vec<String> = tx
        .prepare_cached(
            "SELECT id FROM jobs INDEXED BY jobs_by_lease
             WHERE active = 1 AND lease_until_ms <= ?1 ORDER BY lease_until_ms LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![now_ms, limit as i64], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()
        })
        .map_err(store_err)?;
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(job) = take(tx, &id, owner, until_ms)? {
            claimed.push(job);
        }
    }
    Ok(claimed)
}

pub(super) fn take(
    tx: &Transaction<'_>,
    id: &str,
    owner: &str,
    until_ms: i64,
) -> Result<Option<Job>, StoreError> {
    exec(
        tx,
        "UPDATE jobs SET owner = ?2, lease_until_ms = ?3 WHERE id = ?1",
        params![id, owner, until_ms],
    )
    .map_err(store_err)?;
    get(tx, id)
}

pub(super) fn renew(
    tx: &Transaction<'_>,
    owner: &str,
    ids: &[String],
    until_ms: i64,
) -> Result<Vec<String>, StoreError> {
    let mut lost = Vec::new();
    for id in ids {
        let n = exec(
            tx,
            "UPDATE jobs SET lease_until_ms = ?3 WHERE id = ?1 AND owner = ?2",
            params![id, owner, until_ms],
        )
        .map_err(store_err)?;
        if n == 0 {
            lost.push(id.clone());
        }
    }
    Ok(lost)
}

pub(super) fn list(
    tx: &Transaction<'_>,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Job>, StoreError> {
    let cursor: Option<(i64, String)> = match after {
        Some(a) => tx
            .prepare_cached("SELECT created_ms, id FROM jobs WHERE id = ?1")
            .and_then(|mut s| {
                s.query_row(params![a], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(store_err)?,
        None => None,
    };
    let (c, i) = cursor.unwrap_or((i64::MAX, String::new()));
    tx.prepare_cached(
        "SELECT json, owner, lease_until_ms FROM jobs
         WHERE (created_ms, id) < (?1, ?2) OR ?3 = 0
         ORDER BY created_ms DESC, id DESC LIMIT ?4",
    )
    .and_then(|mut s| {
        s.query_map(params![c, i, after.is_some(), limit as i64], |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<Vec<_>, _>>()
    })
    .map_err(store_err)?
    .into_iter()
    .map(|(j, o, l)| parse(&j, o, l))
    .collect()
}

pub(super) fn purge(tx: &Transaction<'_>, before_ms: i64) -> Result<usize, StoreError> {
    exec(
        tx,
        "DELETE FROM jobs WHERE active = 0 AND finished_ms < ?1",
        params![before_ms],
    )
    .map_err(store_err)
}
