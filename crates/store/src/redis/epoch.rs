//! The epoch marker: how the Redis store tells a Redis that came back empty from a new month.
//!
//! **Why apart.** Every call that moves money passes through here first: a month script runs
//! only once its month carries this process's epoch ([`RedisStore::month_script`]), and a
//! ledger found gone or changed fails closed ([`StoreError::EpochLost`]) until an operator
//! accepts it as it now is. The rules of that state (what is seen, what is lost, which
//! acceptance a replica may adopt) are kept together so they can be read as one.
//!
//! Keys: `{meta}:epoch` (the marker), `{meta}:epoch_log` (the acceptances), each month's
//! `{m:YYYY-MM}:epoch` copy and `{meta}:months` ([`super::keys`]).

use std::collections::HashSet;

use redis::Script;

use super::{store_err, RedisStore};
use crate::error::StoreError;
use crate::ledger::Month;

/// What this process knows of the ledger's epoch.
#[derive(Debug)]
pub(super) struct Epoch {
    /// The marker id this process has seen.
    pub(super) seen: String,
    /// Months whose copy of the marker this process has checked (or written).
    pub(super) verified: HashSet<Month>,
    /// Why the ledger counts as lost, while it does.
    pub(super) lost: Option<String>,
    /// Redis time (ms) at which this process last confirmed the marker.
    pub(super) last_valid_ms: i64,
}

const LOST_HELP: &str = "spending is refused until an operator accepts the ledger as it now is: \
     `POST /v1/admin/ledger/accept-empty` or `genroute ledger accept-empty --store URL`; \
     run Redis with AOF (`appendonly yes`) so that a restart keeps the ledger";

impl RedisStore {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Epoch> {
        self.epoch.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The epoch marker: (id, accepted_ms, Redis time ms); created with `fresh` if `create`.
    pub(super) async fn marker(
        &self,
        fresh: &str,
        create: bool,
    ) -> Result<(Option<String>, Option<i64>, i64), StoreError> {
        let mut c = self.conn.retrying();
        let (id, accepted, now): (Option<String>, Option<i64>, i64) = self
            .scripts
            .epoch
            .key(self.keys.meta("epoch"))
            .arg(fresh)
            .arg(if create { "1" } else { "0" })
            .invoke_async(&mut c)
            .await
            .map_err(store_err)?;
        Ok((id, accepted, now))
    }

    /// Refuses at once while the ledger counts as lost.
    fn not_lost(&self) -> Result<String, StoreError> {
        let e = self.lock();
        match &e.lost {
            Some(why) => Err(StoreError::EpochLost(why.clone())),
            None => Ok(e.seen.clone()),
        }
    }

    fn lose(&self, why: String) -> StoreError {
        let message = format!("{why}; {LOST_HELP}");
        let mut e = self.lock();
        if e.lost.is_none() {
            tracing::error!("the Redis ledger was lost: {message}");
            e.lost = Some(message.clone());
        }
        StoreError::EpochLost(e.lost.clone().unwrap_or(message))
    }

    /// Makes sure `month` carries this process's epoch (once per month and process), and
    /// returns the epoch to pass to the month scripts.
    async fn verified(&self, month: Month) -> Result<String, StoreError> {
        let seen = self.not_lost()?;
        if self.lock().verified.contains(&month) {
            return Ok(seen);
        }
        let keys = self.keys.month(month);
        let mut c = self.conn.retrying();
        let check = |id: Option<String>| -> Result<(), StoreError> {
            match id {
                Some(id) if id == seen => Ok(()),
                Some(id) => Err(self.lose(format!(
                    "the ledger's epoch marker changed from `{seen}` to `{id}` (a failover to a node without this ledger, or another ledger)"
                ))),
                None => Err(self.lose(
                    "the ledger's epoch marker is gone: Redis lost its data (restarted without persistence, or failed over to a node without it)".into(),
                )),
            }
        };
        check(self.marker("", false).await?.0)?;
        let _: Option<String> = redis::cmd("SET")
            .arg(keys.epoch())
            .arg(&seen)
            .arg("NX")
            .query_async(&mut c)
            .await
            .map_err(store_err)?;
        let copy: Option<String> = redis::cmd("GET")
            .arg(keys.epoch())
            .query_async(&mut c)
            .await
            .map_err(store_err)?;
        if copy.as_deref() != Some(seen.as_str()) {
            return Err(self.lose(format!(
                "month {month} was written under another epoch (`{}`)",
                copy.unwrap_or_default()
            )));
        }
        // Again after writing the copy: a Redis emptied in between is caught here.
        check(self.marker("", false).await?.0)?;
        let _: i64 = redis::cmd("SADD")
            .arg(self.keys.meta("months"))
            .arg(month.to_string())
            .query_async(&mut c)
            .await
            .map_err(store_err)?;
        self.lock().verified.insert(month);
        Ok(seen)
    }

    /// Runs a month script; `-1` in its first answer means the month's marker is not ours.
    /// `repeatable` says whether the script may be sent again after a lost connection
    /// ([`Conn::retrying`](super::conn::Conn::retrying)).
    pub(super) async fn month_script<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        month: Month,
        now_ms: i64,
        args: &[String],
        repeatable: bool,
    ) -> Result<Vec<T>, StoreError> {
        let epoch = self.verified(month).await?;
        let keys = self.keys.month(month);
        let mut inv = script.prepare_invoke();
        for k in &keys.0 {
            inv.key(k);
        }
        inv.arg(&epoch).arg(now_ms);
        for a in args {
            inv.arg(a);
        }
        let mut c = if repeatable {
            self.conn.retrying()
        } else {
            self.conn.clone()
        };
        let answer: Vec<redis::Value> = inv.invoke_async(&mut c).await.map_err(store_err)?;
        if matches!(answer.first(), Some(redis::Value::Int(-1))) {
            return Err(self.lose(format!(
                "month {month}'s copy of the epoch marker is gone or changed: Redis lost data"
            )));
        }
        answer
            .into_iter()
            .map(|v| T::from_redis_value(v).map_err(store_err))
            .collect()
    }

    /// Confirms that Redis still holds the ledger this process has seen (the store's
    /// [`ping`](crate::store::Store::ping)); while the ledger is lost, adopts a marker that an
    /// operator accepted after this process last confirmed its own.
    pub(super) async fn confirm_epoch(&self) -> Result<(), StoreError> {
        let (id, accepted, now) = self.marker("", false).await?;
        let mut e = self.lock();
        if e.lost.is_none() {
            let seen = e.seen.clone();
            drop(e);
            return match id {
                Some(id) if id == seen => {
                    self.lock().last_valid_ms = now;
                    Ok(())
                }
                Some(id) => Err(self.lose(format!(
                    "the ledger's epoch marker changed to `{id}` (a failover to a node without this ledger, or another ledger)"
                ))),
                None => Err(self.lose(
                    "the ledger's epoch marker is gone: Redis lost its data (restarted without persistence, or failed over to a node without it)".into(),
                )),
            };
        }
        // Lost: adopt a marker that an operator accepted after we last saw ours.
        match (id, accepted) {
            (Some(id), Some(at)) if at > e.last_valid_ms => {
                tracing::warn!(epoch = %id, "an operator accepted the Redis ledger as it is; spending resumes");
                e.seen = id;
                e.verified.clear();
                e.lost = None;
                e.last_valid_ms = now;
                Ok(())
            }
            _ => Err(StoreError::EpochLost(e.lost.clone().unwrap_or_default())),
        }
    }

    /// Writes a new marker stamped with Redis' clock and records the acceptance
    /// ([`accept_empty`](crate::store::Store::accept_empty)).
    pub(super) async fn accept(&self, note: &str) -> Result<String, StoreError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut c = self.conn.clone();
        let now: i64 = self
            .scripts
            .accept
            .key(self.keys.meta("epoch"))
            .key(self.keys.meta("epoch_log"))
            .arg(&id)
            .arg(note)
            .invoke_async(&mut c)
            .await
            .map_err(store_err)?;
        let mut e = self.lock();
        e.seen = id.clone();
        e.verified.clear();
        e.lost = None;
        e.last_valid_ms = now;
        tracing::warn!(epoch = %id, "the Redis ledger was accepted as it is by an operator");
        Ok(id)
    }
}

/// The operator acceptances recorded so far, oldest first (JSON records).
pub async fn acceptances(store: &RedisStore) -> Result<Vec<serde_json::Value>, StoreError> {
    let mut c = store.conn.clone();
    let raw: Vec<String> = redis::cmd("LRANGE")
        .arg(store.keys.meta("epoch_log"))
        .arg(0)
        .arg(-1)
        .query_async(&mut c)
        .await
        .map_err(store_err)?;
    Ok(raw
        .iter()
        .filter_map(|r| serde_json::from_str(r).ok())
        .collect())
}
