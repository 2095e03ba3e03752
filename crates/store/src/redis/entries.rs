//! The ledger's entries on Redis: reserve, "create sent", the finish calls, a month's totals
//! and its history.
//!
//! **Why apart.** These are the calls that move money; each is one month script
//! ([`super::scripts`]) run through the epoch check ([`RedisStore::month_script`]), and this
//! is where their arguments are built and their answers read. An entry is stored as fields
//! `<id>:<field>` of its month's `entries` hash: `s` state, `a` amount, `u` updated, `n` note,
//! `m` the immutable [`Meta`] as JSON, `t` sent, `x` expiry, `l` levels.

use chrono::{DateTime, Utc};

use super::{store_err, RedisStore};
use crate::error::StoreError;
use crate::ledger::{
    admits, check_levels, finish_move, millis, month_of_id, new_id, rfc3339, settle, Entry,
    EntryState, Month, NewReservation, Totals, EXPIRED_AFTER_SEND,
};
use genroute_core::num::Fixed;

fn too_late() -> StoreError {
    StoreError::Store("redis: the call reached Redis after its deadline and was not applied".into())
}

const ALL_STATES: [EntryState; 5] = [
    EntryState::Reserved,
    EntryState::Committed,
    EntryState::Released,
    EntryState::Expired,
    EntryState::InDoubt,
];

/// The immutable part of an entry, stored once as JSON.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Meta {
    request_id: String,
    backend: String,
    model: Option<String>,
    created_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    team: Option<String>,
}

fn entry_from(id: &str, month: &str, f: &[Option<String>], now_ms: i64) -> Entry {
    let get = |i: usize| f.get(i).cloned().flatten();
    let num = |i: usize| get(i).and_then(|v| v.parse::<i64>().ok());
    let meta: Meta = get(4)
        .and_then(|m| serde_json::from_str(&m).ok())
        .unwrap_or_default();
    let mut e = Entry {
        id: id.to_string(),
        month: month.to_string(),
        created: rfc3339(meta.created_ms),
        updated: rfc3339(num(2).unwrap_or(meta.created_ms)),
        request_id: meta.request_id,
        backend: meta.backend,
        model: meta.model,
        amount_usd: Fixed::from_micros(num(1).unwrap_or(0)),
        state: get(0)
            .and_then(|s| EntryState::parse(&s))
            .unwrap_or(EntryState::Reserved),
        note: get(3),
        sent: num(5).map(rfc3339),
        key: meta.key,
        team: meta.team,
        levels: get(7)
            .map(|l| {
                let mut l: Vec<String> = l.split(' ').map(str::to_string).collect();
                l.sort();
                l
            })
            .unwrap_or_default(),
    };
    settle(&mut e, num(6).unwrap_or(i64::MAX), now_ms);
    e
}

impl RedisStore {
    pub(super) async fn reserve_entry(
        &self,
        r: &NewReservation,
        budget: Fixed,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let month = Month::of(now);
        check_levels(&r.levels, month)?;
        let id = new_id(month);
        let now_ms = millis(now);
        let meta = serde_json::to_string(&Meta {
            request_id: r.request_id.clone(),
            backend: r.backend.clone(),
            model: r.model.clone(),
            created_ms: now_ms,
            key: r.payer.key.clone(),
            team: r.payer.team.clone(),
        })
        .map_err(store_err)?;
        let (amount, budget_micros, expires) = (
            r.amount.micros(),
            budget.micros(),
            now_ms.saturating_add(r.ttl_ms),
        );
        let mut args = vec![
            amount.to_string(),
            budget_micros.to_string(),
            id.clone(),
            meta,
            expires.to_string(),
            self.deadline(),
        ];
        for l in &r.levels {
            args.push(l.key.clone());
            args.push(l.budget.micros().to_string());
        }
        let answer: Vec<i64> = self
            .month_script(&self.scripts.reserve, month, now_ms, &args, true)
            .await?;
        match answer.as_slice() {
            [1, _, _] => Ok(id),
            [-2, _, _] => Err(too_late()),
            [0, counted, 0] => admits(Fixed::from_micros(*counted), r.amount, budget).map(|_| id),
            [0, counted, i] => {
                let l = usize::try_from(*i - 1)
                    .ok()
                    .and_then(|i| r.levels.get(i))
                    .ok_or_else(|| store_err("reserve named a level it was not given"))?;
                Err(StoreError::OverBudget {
                    amount: r.amount,
                    counted: Fixed::from_micros(*counted),
                    budget: l.budget,
                    level: Some(l.key.clone()),
                })
            }
            _ => Err(store_err("reserve answered an unexpected shape")),
        }
    }

    pub(super) async fn mark_entry_sent(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let month = month_of_id(id).ok_or_else(|| StoreError::UnknownReservation(id.into()))?;
        let answer: Vec<i64> = self
            .month_script(
                &self.scripts.mark_sent,
                month,
                millis(now),
                &[id.to_string(), self.deadline()],
                true,
            )
            .await?;
        match answer.first() {
            Some(1) => Ok(()),
            Some(-2) => Err(too_late()),
            _ => Err(StoreError::UnknownReservation(id.to_string())),
        }
    }

    /// Moves an open entry to `to` ([`finish_move`]): commit, release or in doubt.
    pub(super) async fn finish(
        &self,
        id: &str,
        to: EntryState,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let month = month_of_id(id).ok_or_else(|| StoreError::UnknownReservation(id.into()))?;
        let mut rows: Vec<String> = Vec::new();
        for from in ALL_STATES {
            for (flag, note) in [("-", None), ("x", Some(EXPIRED_AFTER_SEND))] {
                if let Some((state, [r, c, d])) = finish_move(from, note, to) {
                    rows.push(format!("{}:{flag}", from.as_str()));
                    rows.push(state.as_str().into());
                    rows.extend([r, c, d].map(|k| k.to_string()));
                }
            }
        }
        let mut args = vec![id.to_string(), note.to_string()];
        args.extend(rows);
        let answer: Vec<i64> = self
            .month_script(&self.scripts.finish, month, millis(now), &args, false)
            .await?;
        match answer.first() {
            Some(1) => Ok(()),
            _ => Err(StoreError::UnknownReservation(id.to_string())),
        }
    }

    pub(super) async fn month_totals(
        &self,
        month: Month,
        now: DateTime<Utc>,
    ) -> Result<Totals, StoreError> {
        let answer: Vec<i64> = self
            .month_script(&self.scripts.totals, month, millis(now), &[], true)
            .await?;
        match answer.as_slice() {
            [1, c, d, r] => Ok(Totals {
                committed: Fixed::from_micros(*c),
                in_doubt: Fixed::from_micros(*d),
                reserved: Fixed::from_micros(*r),
            }),
            _ => Err(store_err("totals answered an unexpected shape")),
        }
    }

    pub(super) async fn month_entries(
        &self,
        month: Option<Month>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut c = self.conn.retrying();
        let months: Vec<Month> = match month {
            Some(m) => vec![m],
            None => {
                let all: Vec<String> = redis::cmd("SMEMBERS")
                    .arg(self.keys.meta("months"))
                    .query_async(&mut c)
                    .await
                    .map_err(store_err)?;
                let mut all: Vec<Month> = all.iter().filter_map(|m| Month::parse(m)).collect();
                all.sort();
                all
            }
        };
        const FIELDS: [&str; 8] = ["s", "a", "u", "n", "m", "t", "x", "l"];
        let mut out = Vec::new();
        for m in months {
            let keys = self.keys.month(m);
            let ids: Vec<String> = redis::cmd("ZRANGE")
                .arg(keys.log())
                .arg(0)
                .arg(-1)
                .query_async(&mut c)
                .await
                .map_err(store_err)?;
            for chunk in ids.chunks(500) {
                let mut pipe = redis::pipe();
                for id in chunk {
                    let fields: Vec<String> = FIELDS.iter().map(|f| format!("{id}:{f}")).collect();
                    pipe.cmd("HMGET").arg(keys.entries()).arg(fields);
                }
                let rows: Vec<Vec<Option<String>>> =
                    pipe.query_async(&mut c).await.map_err(store_err)?;
                let month = m.to_string();
                out.extend(
                    chunk
                        .iter()
                        .zip(&rows)
                        .map(|(id, f)| entry_from(id, &month, f, millis(now))),
                );
            }
        }
        Ok(out)
    }
}
