//! The Redis ledger store: one budget and one set of breakers shared by every replica.
//!
//! **Atomic reserve.** Reserve is a Lua script, which Redis runs without interleaving any
//! other command: it reclaims expired reservations, adds up the month, and inserts the new
//! reservation only if it fits. However the replicas race, the budget cannot be overspent.
//! Commit, release and in-doubt are scripts too, so an entry and the month's totals always
//! change together.
//!
//! **Keys** (all under `genroute:`): `month:<YYYY-MM>:totals` (hash of micro-USD:
//! `committed`, `in_doubt`, `reserved`), `month:<YYYY-MM>:open` (sorted set of open
//! reservations by expiry), `month:<YYYY-MM>:entries` (sorted set of entry ids by time),
//! `months` (set), `entry:<id>` (hash: every field of an entry, kept forever) and
//! `breaker:<backend>` (JSON). Keys are per month, so a new month starts at zero.
//!
//! **Expiry.** Every reservation carries its expiry in `month:…:open`; a replica that dies
//! mid-call holds budget only until then (see the ledger docs for the length). Committed spend
//! has no expiry.
//!
//! **Redis down is fail-closed.** Every call has a 2-second connect, read and write timeout;
//! any failure is a [`LedgerError::Store`], and the executor spends nothing without the
//! ledger (`generate` answers 503). Nothing falls back to a local count that could overspend.
//!
//! **Breakers** are updated with `WATCH`/`MULTI` optimistic transactions, so a breaker that
//! trips on one replica is seen open by all.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::{Commands, Connection, Script};

use super::{
    admits, millis, rfc3339, Entry, EntryState, LedgerError, Month, NewReservation, Store, Totals,
};
use crate::breaker::Breaker;
use crate::num::Fixed;

const TIMEOUT: Duration = Duration::from_secs(2);

const EXPIRE: &str = r#"
local open = KEYS[1]
local totals = KEYS[2]
local now = tonumber(ARGV[1])
local stale = redis.call('ZRANGEBYSCORE', open, '-inf', now)
for _, id in ipairs(stale) do
  local key = 'genroute:entry:' .. id
  if redis.call('HGET', key, 'state') == 'reserved' then
    local amount = tonumber(redis.call('HGET', key, 'amount'))
    redis.call('HSET', key, 'state', 'expired', 'updated_ms', now)
    redis.call('HINCRBY', totals, 'reserved', -amount)
  end
  redis.call('ZREM', open, id)
end
"#;

fn reserve_script() -> String {
    format!(
        r#"{EXPIRE}
local t = redis.call('HMGET', totals, 'committed', 'in_doubt', 'reserved')
local counted = (tonumber(t[1]) or 0) + (tonumber(t[2]) or 0) + (tonumber(t[3]) or 0)
local amount = tonumber(ARGV[2])
if counted + amount > tonumber(ARGV[3]) then
  return {{0, counted}}
end
local id = ARGV[4]
redis.call('HSET', 'genroute:entry:' .. id, 'month', ARGV[5], 'request_id', ARGV[6], 'backend', ARGV[7],
  'model', ARGV[8], 'amount', amount, 'state', 'reserved', 'created_ms', now, 'updated_ms', now,
  'expires_ms', ARGV[9])
redis.call('HINCRBY', totals, 'reserved', amount)
redis.call('ZADD', open, tonumber(ARGV[9]), id)
redis.call('ZADD', KEYS[3], now, id)
redis.call('SADD', 'genroute:months', ARGV[5])
return {{1, counted}}
"#
    )
}

/// Finishes a reservation: ARGV = id, new state, note, now.
const FINISH: &str = r#"
local key = 'genroute:entry:' .. ARGV[1]
local state = redis.call('HGET', key, 'state')
local to = ARGV[2]
if state ~= 'reserved' and not (state == 'expired' and to ~= 'released') then
  return 0
end
local amount = tonumber(redis.call('HGET', key, 'amount'))
local totals = 'genroute:month:' .. redis.call('HGET', key, 'month') .. ':totals'
if state == 'reserved' then
  redis.call('HINCRBY', totals, 'reserved', -amount)
  redis.call('ZREM', 'genroute:month:' .. redis.call('HGET', key, 'month') .. ':open', ARGV[1])
end
if to ~= 'released' then
  redis.call('HINCRBY', totals, to, amount)
end
redis.call('HSET', key, 'state', to, 'updated_ms', ARGV[4])
if ARGV[3] ~= '' then
  redis.call('HSET', key, 'note', ARGV[3])
end
return 1
"#;

/// Connections kept open; concurrent callers each take one, so they do not queue behind a
/// single socket.
const POOL: usize = 8;

/// A ledger in Redis.
pub struct RedisStore {
    client: redis::Client,
    conns: Vec<Mutex<Option<Connection>>>,
    next: std::sync::atomic::AtomicUsize,
    reserve: Script,
    expire: Script,
    finish: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisStore")
    }
}

fn store_err(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Store(format!("redis: {e}"))
}

fn month_key(month: &str, what: &str) -> String {
    format!("genroute:month:{month}:{what}")
}

impl RedisStore {
    /// Connects to `redis://HOST:PORT/DB` and checks the connection.
    pub fn open(url: &str) -> Result<RedisStore, LedgerError> {
        let client = redis::Client::open(url)
            .map_err(|e| LedgerError::Store(format!("`{url}` is not a Redis URL: {e}")))?;
        let store = RedisStore {
            client,
            conns: (0..POOL).map(|_| Mutex::new(None)).collect(),
            next: std::sync::atomic::AtomicUsize::new(0),
            reserve: Script::new(&reserve_script()),
            expire: Script::new(&format!("{EXPIRE}\nreturn 1")),
            finish: Script::new(FINISH),
        };
        store.with(|c| redis::cmd("PING").query::<String>(c))?;
        Ok(store)
    }

    /// Runs `f` on a live connection from the pool, reconnecting once after a failure.
    fn with<T>(
        &self,
        mut f: impl FnMut(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, LedgerError> {
        let start = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pick = (0..POOL)
            .map(|i| &self.conns[(start + i) % POOL])
            .find_map(|m| m.try_lock().ok());
        let mut slot = match pick {
            Some(s) => s,
            None => self.conns[start % POOL]
                .lock()
                .map_err(|_| LedgerError::Store("redis connection lock poisoned".into()))?,
        };
        for attempt in 0..2 {
            if slot.is_none() {
                let conn = self
                    .client
                    .get_connection_with_timeout(TIMEOUT)
                    .map_err(store_err)?;
                conn.set_read_timeout(Some(TIMEOUT)).map_err(store_err)?;
                conn.set_write_timeout(Some(TIMEOUT)).map_err(store_err)?;
                *slot = Some(conn);
            }
            let Some(conn) = slot.as_mut() else { continue };
            match f(conn) {
                Ok(v) => return Ok(v),
                Err(e)
                    if attempt == 0
                        && (e.is_io_error() || e.is_connection_dropped() || e.is_timeout()) =>
                {
                    *slot = None
                }
                Err(e) => {
                    *slot = None;
                    return Err(store_err(e));
                }
            }
        }
        Err(LedgerError::Store("redis: connection lost".into()))
    }

    fn finish(
        &self,
        id: &str,
        to: EntryState,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let ok: i64 = self.with(|c| {
            self.finish
                .arg(id)
                .arg(to.as_str())
                .arg(note)
                .arg(millis(now))
                .invoke(c)
        })?;
        if ok == 1 {
            Ok(())
        } else {
            Err(LedgerError::UnknownReservation(id.to_string()))
        }
    }
}

fn entry_from(id: &str, h: &HashMap<String, String>) -> Entry {
    let get = |k: &str| h.get(k).cloned().unwrap_or_default();
    let num = |k: &str| h.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    Entry {
        id: id.to_string(),
        month: get("month"),
        created: rfc3339(num("created_ms")),
        updated: rfc3339(num("updated_ms")),
        request_id: get("request_id"),
        backend: get("backend"),
        model: h.get("model").filter(|m| !m.is_empty()).cloned(),
        amount_usd: Fixed::from_micros(num("amount")),
        state: EntryState::parse(&get("state")).unwrap_or(EntryState::Reserved),
        note: h.get("note").cloned(),
    }
}

impl Store for RedisStore {
    fn reserve(
        &self,
        r: &NewReservation,
        budget: Fixed,
        now: DateTime<Utc>,
    ) -> Result<String, LedgerError> {
        let month = Month::of(now).to_string();
        let id = uuid::Uuid::new_v4().to_string();
        let now_ms = millis(now);
        let (ok, counted): (i64, i64) = self.with(|c| {
            self.reserve
                .key(month_key(&month, "open"))
                .key(month_key(&month, "totals"))
                .key(month_key(&month, "entries"))
                .arg(now_ms)
                .arg(r.amount.micros())
                .arg(budget.micros())
                .arg(&id)
                .arg(&month)
                .arg(&r.request_id)
                .arg(&r.backend)
                .arg(r.model.as_deref().unwrap_or(""))
                .arg(now_ms.saturating_add(r.ttl_ms))
                .invoke(c)
        })?;
        if ok == 1 {
            Ok(id)
        } else {
            admits(Fixed::from_micros(counted), r.amount, budget).map(|_| id)
        }
    }

    fn commit(&self, id: &str, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.finish(id, EntryState::Committed, "", now)
    }

    fn release(&self, id: &str, note: &str, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.finish(id, EntryState::Released, note, now)
    }

    fn keep_in_doubt(&self, id: &str, note: &str, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.finish(id, EntryState::InDoubt, note, now)
    }

    fn totals(&self, month: Month, now: DateTime<Utc>) -> Result<Totals, LedgerError> {
        let m = month.to_string();
        let (open, totals) = (month_key(&m, "open"), month_key(&m, "totals"));
        let h: HashMap<String, i64> = self.with(|c| {
            let _: i64 = self
                .expire
                .key(&open)
                .key(&totals)
                .arg(millis(now))
                .invoke(c)?;
            c.hgetall(&totals)
        })?;
        let get = |k: &str| Fixed::from_micros(h.get(k).copied().unwrap_or(0));
        Ok(Totals {
            committed: get("committed"),
            in_doubt: get("in_doubt"),
            reserved: get("reserved"),
        })
    }

    fn entries(&self, month: Option<Month>) -> Result<Vec<Entry>, LedgerError> {
        let months: Vec<String> = match month {
            Some(m) => vec![m.to_string()],
            None => {
                let mut all: Vec<String> = self.with(|c| c.smembers("genroute:months"))?;
                all.sort();
                all
            }
        };
        let mut out = Vec::new();
        for m in months {
            let ids: Vec<String> = self.with(|c| c.zrange(month_key(&m, "entries"), 0, -1))?;
            for id in ids {
                let h: HashMap<String, String> =
                    self.with(|c| c.hgetall(format!("genroute:entry:{id}")))?;
                out.push(entry_from(&id, &h));
            }
        }
        Ok(out)
    }

    fn breaker(&self, backend: &str) -> Result<Breaker, LedgerError> {
        let json: Option<String> = self.with(|c| c.get(format!("genroute:breaker:{backend}")))?;
        match json {
            Some(j) => serde_json::from_str(&j).map_err(store_err),
            None => Ok(Breaker::default()),
        }
    }

    fn update_breaker(
        &self,
        backend: &str,
        change: &mut dyn FnMut(&mut Breaker),
    ) -> Result<Breaker, LedgerError> {
        let key = format!("genroute:breaker:{backend}");
        self.with(|c| {
            redis::transaction(c, &[&key], |c, pipe| {
                let json: Option<String> = c.get(&key)?;
                let mut b: Breaker = json
                    .and_then(|j| serde_json::from_str(&j).ok())
                    .unwrap_or_default();
                change(&mut b);
                let text = serde_json::to_string(&b).unwrap_or_default();
                pipe.set(&key, text)
                    .ignore()
                    .query::<Option<()>>(c)
                    .map(|r| r.map(|_| b))
            })
        })
    }
}
