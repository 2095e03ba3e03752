//! Budget levels' figures and bounded sets on Redis.
//!
//! A level's totals are fields of its month's `totals` hash ([`super::scripts`]), so they are
//! read by a month script that settles expired reservations first, grouped by month. A
//! bounded set is a sorted set of members scored by when each place ends, in a slot of its own
//! (`{slot:<set>}`): each set is one key, so its script touches one slot on a cluster too.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{store_err, RedisStore};
use crate::error::StoreError;
use crate::ledger::{millis, Month, Totals};
use genroute_core::num::Fixed;

/// The month a level key's period belongs to (`team:x@2026-12-01` → 2026-12).
fn month_of_level(level: &str) -> Option<Month> {
    let (_, period) = level.rsplit_once('@')?;
    Month::parse(period.get(..7)?)
}

impl RedisStore {
    pub(super) async fn level_totals_of(
        &self,
        levels: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<Totals>, StoreError> {
        let mut by_month: BTreeMap<Month, Vec<usize>> = BTreeMap::new();
        for (i, l) in levels.iter().enumerate() {
            let m = month_of_level(l)
                .ok_or_else(|| StoreError::Store(format!("`{l}` is not a budget level key")))?;
            by_month.entry(m).or_default().push(i);
        }
        let mut out = vec![Totals::default(); levels.len()];
        for (month, idx) in by_month {
            let args: Vec<String> = idx.iter().map(|&i| levels[i].clone()).collect();
            let answer: Vec<i64> = self
                .month_script(&self.scripts.level_totals, month, millis(now), &args, true)
                .await?;
            if answer.len() != 1 + 3 * idx.len() || answer[0] != 1 {
                return Err(store_err("level totals answered an unexpected shape"));
            }
            for (k, &i) in idx.iter().enumerate() {
                out[i] = Totals {
                    committed: Fixed::from_micros(answer[1 + 3 * k]),
                    in_doubt: Fixed::from_micros(answer[2 + 3 * k]),
                    reserved: Fixed::from_micros(answer[3 + 3 * k]),
                };
            }
        }
        Ok(out)
    }

    fn slot_key(&self, set: &str) -> String {
        format!("{}:{{slot:{set}}}", self.keys.prefix)
    }

    pub(super) async fn take_slot_in(
        &self,
        set: &str,
        member: &str,
        limit: u32,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut c = self.conn.retrying();
        let answer: Vec<i64> = self
            .scripts
            .slot_take
            .key(self.slot_key(set))
            .arg(now_ms)
            .arg(member)
            .arg(limit)
            .arg(until_ms)
            .invoke_async(&mut c)
            .await
            .map_err(store_err)?;
        match answer.as_slice() {
            [1, _] => Ok(None),
            [0, at] => Ok(Some(*at)),
            _ => Err(store_err("a slot answered an unexpected shape")),
        }
    }

    pub(super) async fn drop_slot_in(&self, set: &str, member: &str) -> Result<(), StoreError> {
        let mut c = self.conn.retrying();
        let _: i64 = redis::cmd("ZREM")
            .arg(self.slot_key(set))
            .arg(member)
            .query_async(&mut c)
            .await
            .map_err(store_err)?;
        Ok(())
    }
}
