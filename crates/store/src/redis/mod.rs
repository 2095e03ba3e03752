//! The Redis ledger store: one budget and one set of breakers shared by every replica, on a
//! single Redis (or Valkey) or on a Redis Cluster.
//!
//! **Atomic reserve.** Reserve is a Lua script, which Redis runs without interleaving any
//! other command: it settles expired reservations, adds up the month, and inserts the new
//! reservation only if it fits. However the replicas race, the budget cannot be overspent.
//! Commit, release, in-doubt and "create sent" are scripts too, so an entry and the month's
//! totals always change together ([`scripts`]).
//!
//! **Key layout** (every key a script touches is in its `KEYS`; the braces are hash tags, so
//! each script touches one cluster slot):
//!
//! | key | type | what |
//! |---|---|---|
//! | `genroute:{m:YYYY-MM}:epoch` | string | the epoch the month was written under |
//! | `genroute:{m:YYYY-MM}:totals` | hash | micro-USD `committed`, `in_doubt`, `reserved` |
//! | `genroute:{m:YYYY-MM}:open` | sorted set | open reservations by expiry (ms) |
//! | `genroute:{m:YYYY-MM}:log` | sorted set | every entry id by creation (ms) |
//! | `genroute:{m:YYYY-MM}:entries` | hash | `<id>:<field>`: every entry of the month |
//! | `genroute:{meta}:epoch` | hash | the ledger's epoch marker: `id`, `created_ms`, `accepted_ms`, `note` |
//! | `genroute:{meta}:epoch_log` | list | one JSON record per operator acceptance |
//! | `genroute:{meta}:months` | set | months with entries |
//! | `genroute:{breakers}:<backend>` | string | JSON of the breaker |
//!
//! `genroute` is the default prefix; a `prefix=NAME` query parameter on the store URL puts
//! several ledgers on one Redis (`redis://host:6379/0?prefix=staging`).
//!
//! A reservation id names its month ([`crate::new_id`]), so commit and release find
//! the month's slot from the id alone. Keys are per month, so a new month starts at zero.
//!
//! **A Redis that comes back empty is not a new month.** Redis restarted without persistence,
//! or failed over to a replica that lacks the data, would otherwise read as a month with
//! nothing spent, and the budget could be spent twice. The `{meta}:epoch` marker holds a
//! random id, created once with the ledger; each month carries a copy, and every month script
//! first checks that copy against the id this process has seen. A process that has seen the
//! ledger and then finds the marker gone or changed fails closed ([`LedgerError::EpochLost`])
//! for every call that moves money, until an operator accepts the ledger as it now is
//! ([`Store::accept_empty`]: `POST /v1/admin/ledger/accept-empty`, or `genroute ledger
//! accept-empty`), which writes a new marker stamped with Redis' own clock and appends a
//! record to `{meta}:epoch_log`. A replica adopts an accepted marker only if it was accepted
//! after the last moment that replica confirmed its own epoch, so a failover to a stale node
//! that carries an older acceptance is refused too. A process that starts against an empty
//! Redis cannot tell it from a new install and creates the marker: run Redis with AOF
//! (README, "Running on Redis").
//!
//! **Connections.** One multiplexed async connection (the redis crate's `ConnectionManager`,
//! which reconnects by itself after Redis restarts), or the crate's async cluster client,
//! which follows slot moves. Concurrent calls are pipelined on it, so none waits behind
//! another's round trip. Every call has a response timeout; the store's guard puts the
//! overall deadline on each call and fails fast while Redis is down
//! ([`crate::guard`]). Nothing falls back to a local count that could overspend.
//!
//! **Breakers** are updated by compare-and-set: read, apply the change in Rust
//! ([`genroute_core::breaker`]), write only if no other replica wrote in between, else retry.

mod conn;
mod jobs;
pub use conn::redact;
mod levels;
mod scripts;
mod stats;

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::Script;

use super::{
    admits, check_levels, finish_move, millis, month_of_id, new_id, rfc3339, settle, Entry,
    EntryState, LedgerError, Month, NewReservation, Store, Totals, EXPIRED_AFTER_SEND,
};
use crate::job::Job;
use conn::Conn;
use genroute_core::breaker::{Breaker, BreakerChange, BreakerConfig};
use genroute_core::num::Fixed;

/// The five keys of one month, in the order the month scripts take them.
struct MonthKeys([String; 5]);

impl MonthKeys {
    fn of(prefix: &str, month: Month) -> MonthKeys {
        let k = |what: &str| format!("{prefix}:{{m:{month}}}:{what}");
        MonthKeys([k("epoch"), k("totals"), k("open"), k("log"), k("entries")])
    }

    fn epoch(&self) -> &str {
        &self.0[0]
    }

    fn log(&self) -> &str {
        &self.0[3]
    }

    fn entries(&self) -> &str {
        &self.0[4]
    }
}

/// The key prefix: `genroute`, or the URL's `prefix=` (several ledgers on one Redis).
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn month(&self, month: Month) -> MonthKeys {
        MonthKeys::of(&self.prefix, month)
    }

    fn meta(&self, what: &str) -> String {
        format!("{}:{{meta}}:{what}", self.prefix)
    }

    fn breaker(&self, backend: &str) -> String {
        format!("{}:{{breakers}}:{backend}", self.prefix)
    }
}

/// Splits our own `prefix=NAME` query parameter off a Redis URL.
fn split_prefix(url: &str) -> Result<(String, String), LedgerError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), "genroute".to_string()));
    };
    let mut prefix = "genroute".to_string();
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("prefix=") {
            Some(p) => prefix = p.to_string(),
            None => rest.push(pair),
        }
    }
    let valid = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(LedgerError::Store(format!(
            "`prefix={prefix}` in the Redis URL: a key prefix is 1 to 64 letters, digits, `-` or `_`"
        )));
    }
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, prefix))
}

/// What this process knows of the ledger's epoch.
#[derive(Debug)]
struct Epoch {
    /// The marker id this process has seen.
    seen: String,
    /// Months whose copy of the marker this process has checked (or written).
    verified: HashSet<Month>,
    /// Why the ledger counts as lost, while it does.
    lost: Option<String>,
    /// Redis time (ms) at which this process last confirmed the marker.
    last_valid_ms: i64,
}

struct Scripts {
    reserve: Script,
    mark_sent: Script,
    finish: Script,
    totals: Script,
    level_totals: Script,
    slot_take: Script,
    epoch: Script,
    accept: Script,
    breaker_cas: Script,
}

/// A ledger in Redis.
pub struct RedisStore {
    conn: Conn,
    keys: Keys,
    /// The deadline of a call, and Redis' clock minus ours (measured at open), so that a
    /// script can refuse a call whose caller has given up ([`scripts`]).
    timeout: Duration,
    skew_ms: i64,
    scripts: Scripts,
    job_scripts: jobs::JobScripts,
    epoch: Mutex<Epoch>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.conn.kind())
    }
}

fn store_err(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Store(format!("redis: {e}"))
}

const LOST_HELP: &str = "spending is refused until an operator accepts the ledger as it now is: \
     `POST /v1/admin/ledger/accept-empty` or `genroute ledger accept-empty --store URL`; \
     run Redis with AOF (`appendonly yes`) so that a restart keeps the ledger";

impl RedisStore {
    /// Connects to `redis://HOST:PORT/DB` (or `rediss://`), or to a cluster given as
    /// `redis-cluster://HOST:PORT[,HOST:PORT...]`, checks the connection within `timeout`, and
    /// reads (or, for a new ledger, creates) the epoch marker.
    pub async fn open(url: &str, timeout: Duration) -> Result<RedisStore, LedgerError> {
        let (url, prefix) = split_prefix(url)?;
        let url = url.as_str();
        let conn = tokio::time::timeout(timeout, Conn::open(url, timeout))
            .await
            .map_err(|_| {
                LedgerError::Store(format!(
                    "cannot reach Redis at `{}` within {} ms",
                    conn::redact(url),
                    timeout.as_millis()
                ))
            })??;
        let store = RedisStore {
            conn,
            keys: Keys { prefix },
            timeout,
            skew_ms: 0,
            scripts: Scripts {
                reserve: Script::new(&scripts::reserve()),
                mark_sent: Script::new(&scripts::mark_sent()),
                finish: Script::new(&scripts::finish()),
                totals: Script::new(&scripts::totals()),
                level_totals: Script::new(&scripts::level_totals()),
                slot_take: Script::new(scripts::SLOT_TAKE),
                epoch: Script::new(scripts::EPOCH),
                accept: Script::new(scripts::ACCEPT),
                breaker_cas: Script::new(scripts::BREAKER_CAS),
            },
            job_scripts: jobs::JobScripts::new(),
            epoch: Mutex::new(Epoch {
                seen: String::new(),
                verified: HashSet::new(),
                lost: None,
                last_valid_ms: 0,
            }),
        };
        let fresh = uuid::Uuid::new_v4().simple().to_string();
        let (id, _, now) = tokio::time::timeout(timeout, store.marker(&fresh, true))
            .await
            .map_err(|_| store_err("the epoch marker could not be read in time"))??;
        let mut store = store;
        store.skew_ms = now - wall_ms();
        let mut e = store.lock();
        e.seen = id.unwrap_or(fresh);
        e.last_valid_ms = now;
        drop(e);
        Ok(store)
    }

    /// A call's deadline in Redis' clock.
    fn deadline(&self) -> String {
        (wall_ms() + self.timeout.as_millis() as i64 + self.skew_ms).to_string()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Epoch> {
        self.epoch.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The epoch marker: (id, accepted_ms, Redis time ms); created with `fresh` if `create`.
    async fn marker(
        &self,
        fresh: &str,
        create: bool,
    ) -> Result<(Option<String>, Option<i64>, i64), LedgerError> {
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
    fn not_lost(&self) -> Result<String, LedgerError> {
        let e = self.lock();
        match &e.lost {
            Some(why) => Err(LedgerError::EpochLost(why.clone())),
            None => Ok(e.seen.clone()),
        }
    }

    fn lose(&self, why: String) -> LedgerError {
        let message = format!("{why}; {LOST_HELP}");
        let mut e = self.lock();
        if e.lost.is_none() {
            tracing::error!("the Redis ledger was lost: {message}");
            e.lost = Some(message.clone());
        }
        LedgerError::EpochLost(e.lost.clone().unwrap_or(message))
    }

    /// Makes sure `month` carries this process's epoch (once per month and process), and
    /// returns the epoch to pass to the month scripts.
    async fn verified(&self, month: Month) -> Result<String, LedgerError> {
        let seen = self.not_lost()?;
        if self.lock().verified.contains(&month) {
            return Ok(seen);
        }
        let keys = self.keys.month(month);
        let mut c = self.conn.retrying();
        let check = |id: Option<String>| -> Result<(), LedgerError> {
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
    /// ([`Conn::retrying`]).
    async fn month_script<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        month: Month,
        now_ms: i64,
        args: &[String],
        repeatable: bool,
    ) -> Result<Vec<T>, LedgerError> {
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

    async fn finish(
        &self,
        id: &str,
        to: EntryState,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let month = month_of_id(id).ok_or_else(|| LedgerError::UnknownReservation(id.into()))?;
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
            _ => Err(LedgerError::UnknownReservation(id.to_string())),
        }
    }
}

/// This host's wall clock in ms (the injected clock may be a test's; deadlines are real).
fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn too_late() -> LedgerError {
    LedgerError::Store(
        "redis: the call reached Redis after its deadline and was not applied".into(),
    )
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

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn reserve(
        &self,
        r: &NewReservation,
        budget: Fixed,
        now: DateTime<Utc>,
    ) -> Result<String, LedgerError> {
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
                Err(LedgerError::OverBudget {
                    amount: r.amount,
                    counted: Fixed::from_micros(*counted),
                    budget: l.budget,
                    level: Some(l.key.clone()),
                })
            }
            _ => Err(store_err("reserve answered an unexpected shape")),
        }
    }

    async fn mark_sent(&self, id: &str, now: DateTime<Utc>) -> Result<(), LedgerError> {
        let month = month_of_id(id).ok_or_else(|| LedgerError::UnknownReservation(id.into()))?;
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
            _ => Err(LedgerError::UnknownReservation(id.to_string())),
        }
    }

    async fn commit(&self, id: &str, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.finish(id, EntryState::Committed, "", now).await
    }

    async fn commit_noted(
        &self,
        id: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.finish(id, EntryState::Committed, note, now).await
    }

    async fn release(&self, id: &str, note: &str, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.finish(id, EntryState::Released, note, now).await
    }

    async fn keep_in_doubt(
        &self,
        id: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.finish(id, EntryState::InDoubt, note, now).await
    }

    async fn totals(&self, month: Month, now: DateTime<Utc>) -> Result<Totals, LedgerError> {
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

    async fn level_totals(
        &self,
        levels: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<Totals>, LedgerError> {
        self.level_totals_of(levels, now).await
    }

    async fn take_slot(
        &self,
        set: &str,
        member: &str,
        limit: u32,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<Option<i64>, LedgerError> {
        self.take_slot_in(set, member, limit, until_ms, now_ms)
            .await
    }

    async fn drop_slot(&self, set: &str, member: &str) -> Result<(), LedgerError> {
        self.drop_slot_in(set, member).await
    }

    async fn entries(
        &self,
        month: Option<Month>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Entry>, LedgerError> {
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

    async fn breakers(&self, backends: &[String]) -> Result<Vec<Breaker>, LedgerError> {
        if backends.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = backends.iter().map(|b| self.keys.breaker(b)).collect();
        let mut c = self.conn.retrying();
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut c)
            .await
            .map_err(store_err)?;
        Ok(values
            .into_iter()
            .map(|v| {
                v.and_then(|j| serde_json::from_str(&j).ok())
                    .unwrap_or_default()
            })
            .collect())
    }

    async fn update_breaker(
        &self,
        backend: &str,
        change: BreakerChange,
        now_ms: i64,
        cfg: BreakerConfig,
    ) -> Result<(Breaker, bool), LedgerError> {
        let key = self.keys.breaker(backend);
        let mut c = self.conn.clone();
        for _ in 0..16 {
            let raw: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut self.conn.retrying())
                .await
                .map_err(store_err)?;
            let before: Breaker = raw
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or_default();
            let mut b = before;
            let admitted = b.apply(change, now_ms, &cfg);
            if b == before {
                return Ok((b, admitted));
            }
            let json = serde_json::to_string(&b).map_err(store_err)?;
            let won: i64 = self
                .scripts
                .breaker_cas
                .key(&key)
                .arg(raw.unwrap_or_default())
                .arg(json)
                .invoke_async(&mut c)
                .await
                .map_err(store_err)?;
            if won == 1 {
                return Ok((b, admitted));
            }
        }
        Err(store_err(format!(
            "breaker `{backend}` kept changing under 16 attempts to update it"
        )))
    }

    async fn push_sample(&self, key: &str, sample: &str, keep: usize) -> Result<(), LedgerError> {
        self.push_sample_list(key, sample, keep).await
    }

    async fn samples(
        &self,
        keys: &[String],
        limit: usize,
    ) -> Result<Vec<Vec<String>>, LedgerError> {
        self.sample_lists(keys, limit).await
    }

    async fn add_counters(
        &self,
        key: &str,
        by: &[(&str, i64)],
    ) -> Result<super::Counters, LedgerError> {
        self.add_hash(key, by).await
    }

    async fn counters(&self, keys: &[String]) -> Result<Vec<super::Counters>, LedgerError> {
        self.hashes(keys).await
    }

    async fn put_mark(&self, key: &str, value: &str) -> Result<bool, LedgerError> {
        self.set_mark(key, value).await
    }

    async fn marks(&self, keys: &[String]) -> Result<Vec<Option<String>>, LedgerError> {
        self.get_marks(keys).await
    }

    async fn clear_mark(&self, key: &str, counters: &[String]) -> Result<(), LedgerError> {
        self.del_mark(key, counters).await
    }

    async fn create_job(&self, job: &Job) -> Result<(), LedgerError> {
        if self.write_job(job, "create").await? {
            Ok(())
        } else {
            Err(LedgerError::Store(format!("job `{}` exists", job.id)))
        }
    }

    async fn job(&self, id: &str) -> Result<Option<Job>, LedgerError> {
        self.get_job(id).await
    }

    async fn save_job(&self, job: &Job) -> Result<bool, LedgerError> {
        self.write_job(job, "save").await
    }

    async fn claim_jobs(
        &self,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Job>, LedgerError> {
        self.claim(owner, now_ms, until_ms, limit).await
    }

    async fn take_job(
        &self,
        id: &str,
        owner: &str,
        until_ms: i64,
    ) -> Result<Option<Job>, LedgerError> {
        Ok(self
            .take_jobs(&[id.to_string()], owner, until_ms, None)
            .await?
            .pop())
    }

    async fn renew_jobs(
        &self,
        owner: &str,
        ids: &[String],
        until_ms: i64,
    ) -> Result<Vec<String>, LedgerError> {
        self.renew(owner, ids, until_ms).await
    }

    async fn list_jobs(&self, after: Option<&str>, limit: usize) -> Result<Vec<Job>, LedgerError> {
        self.list(after, limit).await
    }

    async fn purge_jobs(&self, before_ms: i64) -> Result<usize, LedgerError> {
        self.purge(before_ms).await
    }

    async fn ping(&self) -> Result<(), LedgerError> {
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
            _ => Err(LedgerError::EpochLost(e.lost.clone().unwrap_or_default())),
        }
    }

    async fn accept_empty(&self, note: &str) -> Result<String, LedgerError> {
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

    fn lost(&self) -> Option<String> {
        self.lock().lost.clone()
    }

    fn kind(&self) -> &'static str {
        self.conn.kind()
    }
}

/// The operator acceptances recorded so far, oldest first (JSON records).
pub async fn acceptances(store: &RedisStore) -> Result<Vec<serde_json::Value>, LedgerError> {
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
