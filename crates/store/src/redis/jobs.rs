//! The Redis store's jobs. All job keys share the `{jobs}` hash tag (one cluster slot), so that
//! a claim can check and take several jobs in one script:
//!
//! | key | type | what |
//! |---|---|---|
//! | `genroute:{jobs}:job:<id>` | hash | `json` (the record), `owner`, `lease` (ms) |
//! | `genroute:{jobs}:active` | sorted set | jobs that need an owner, by lease expiry |
//! | `genroute:{jobs}:created` | sorted set | every job by creation (listing) |
//! | `genroute:{jobs}:finished` | sorted set | ended jobs by end time (retention) |
//!
//! Owner and lease live in their own fields; the record's copies are overwritten on read.
//! Every write names its owner and is refused when another replica holds the job (fencing).

use redis::Script;

use super::{store_err, RedisStore};
use crate::error::StoreError;
use crate::job::{Job, MAX_ID};

/// Writes a job. KEYS: job, active, created, finished. ARGV: json, owner, lease, active (0/1),
/// created ms, finished ms ('' if not ended), mode (`create` or `save`), id. A save is refused
/// (0) when the stored owner differs; a create when the job exists.
pub const WRITE: &str = r#"
local exists = redis.call('EXISTS', KEYS[1]) == 1
if ARGV[7] == 'create' then
  if exists then return 0 end
  redis.call('ZADD', KEYS[3], tonumber(ARGV[5]), ARGV[8])
else
  if not exists then return 0 end
  if (redis.call('HGET', KEYS[1], 'owner') or '') ~= ARGV[2] then return 0 end
end
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'owner', ARGV[2], 'lease', ARGV[3])
if ARGV[4] == '1' then
  redis.call('ZADD', KEYS[2], tonumber(ARGV[3]), ARGV[8])
else
  redis.call('ZREM', KEYS[2], ARGV[8])
end
if ARGV[6] ~= '' then
  redis.call('ZADD', KEYS[4], tonumber(ARGV[6]), ARGV[8])
end
return 1
"#;

/// Takes jobs. KEYS: active, then one job key per id; ARGV: owner, until, now ('' to take
/// whatever the lease), then the ids. Each job is taken if it is still active and its lease has
/// expired by now (or unconditionally); answers the taken jobs' `json`.
pub const TAKE: &str = r#"
local out = {}
for i = 2, #KEYS do
  local id = ARGV[i + 2]
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local lease = tonumber(redis.call('HGET', KEYS[i], 'lease') or '0')
    local active = redis.call('ZSCORE', KEYS[1], id)
    if ARGV[3] == '' or (active and lease <= tonumber(ARGV[3])) then
      redis.call('HSET', KEYS[i], 'owner', ARGV[1], 'lease', ARGV[2])
      if active then redis.call('ZADD', KEYS[1], tonumber(ARGV[2]), id) end
      table.insert(out, redis.call('HGET', KEYS[i], 'json'))
    end
  end
end
return out
"#;

/// Renews leases. KEYS: active, then one job key per id; ARGV: owner, until, then the ids.
/// Answers the ids whose owner is someone else (or that are gone).
pub const RENEW: &str = r#"
local lost = {}
for i = 2, #KEYS do
  local id = ARGV[i + 1]
  if redis.call('HGET', KEYS[i], 'owner') == ARGV[1] then
    redis.call('HSET', KEYS[i], 'lease', ARGV[2])
    if redis.call('ZSCORE', KEYS[1], id) then
      redis.call('ZADD', KEYS[1], tonumber(ARGV[2]), id)
    end
  else
    table.insert(lost, id)
  end
end
return lost
"#;

/// The job scripts.
pub struct JobScripts {
    write: Script,
    take: Script,
    renew: Script,
}

impl JobScripts {
    /// Loads them.
    pub fn new() -> JobScripts {
        JobScripts {
            write: Script::new(WRITE),
            take: Script::new(TAKE),
            renew: Script::new(RENEW),
        }
    }
}

/// Job ids are ours (UUIDs); anything else is refused before a key is built from it.
fn valid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn parse(json: &str, owner: &str, lease: i64) -> Result<Job, StoreError> {
    let mut job: Job = serde_json::from_str(json).map_err(store_err)?;
    job.owner = (!owner.is_empty()).then(|| owner.to_string());
    job.lease_until_ms = lease;
    Ok(job)
}

impl RedisStore {
    fn job_key(&self, id: &str) -> String {
        format!("{}:{{jobs}}:job:{id}", self.keys.prefix)
    }

    fn jobs_key(&self, what: &str) -> String {
        format!("{}:{{jobs}}:{what}", self.keys.prefix)
    }

    pub(super) async fn write_job(&self, job: &Job, mode: &str) -> Result<bool, StoreError> {
        if !valid(&job.id) {
            return Err(StoreError::Store(format!("`{}` is not a job id", job.id)));
        }
        let json = serde_json::to_string(job).map_err(store_err)?;
        let mut c = self.conn.clone();
        let n: i64 = self
            .job_scripts
            .write
            .key(self.job_key(&job.id))
            .key(self.jobs_key("active"))
            .key(self.jobs_key("created"))
            .key(self.jobs_key("finished"))
            .arg(json)
            .arg(job.owner.as_deref().unwrap_or(""))
            .arg(job.lease_until_ms)
            .arg(if job.is_active() { "1" } else { "0" })
            .arg(job.created_ms)
            .arg(job.finished_ms.map(|f| f.to_string()).unwrap_or_default())
            .arg(mode)
            .arg(&job.id)
            .invoke_async(&mut c)
            .await
            .map_err(store_err)?;
        Ok(n == 1)
    }

    pub(super) async fn get_job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        if !valid(id) {
            return Ok(None);
        }
        let mut c = self.conn.retrying();
        let (json, owner, lease): (Option<String>, Option<String>, Option<i64>) =
            redis::cmd("HMGET")
                .arg(self.job_key(id))
                .arg("json")
                .arg("owner")
                .arg("lease")
                .query_async(&mut c)
                .await
                .map_err(store_err)?;
        json.map(|j| parse(&j, owner.as_deref().unwrap_or(""), lease.unwrap_or(0)))
            .transpose()
    }

    /// Takes `ids` for `owner` until `until_ms`: only those whose lease expired by `now` when
    /// `now` is given, else whatever their lease.
    pub(super) async fn take_jobs(
        &self,
        ids: &[String],
        owner: &str,
        until_ms: i64,
        now: Option<i64>,
    ) -> Result<Vec<Job>, StoreError> {
        let ids: Vec<&String> = ids.iter().filter(|i| valid(i)).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.job_scripts.take.prepare_invoke();
        inv.key(self.jobs_key("active"));
        for id in &ids {
            inv.key(self.job_key(id));
        }
        inv.arg(owner)
            .arg(until_ms)
            .arg(now.map(|n| n.to_string()).unwrap_or_default());
        for id in &ids {
            inv.arg(id.as_str());
        }
        let mut c = self.conn.clone();
        let taken: Vec<String> = inv.invoke_async(&mut c).await.map_err(store_err)?;
        taken.iter().map(|j| parse(j, owner, until_ms)).collect()
    }

    pub(super) async fn claim(
        &self,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        let mut c = self.conn.retrying();
        let due: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.jobs_key("active"))
            .arg("-inf")
            .arg(now_ms)
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut c)
            .await
            .map_err(store_err)?;
        self.take_jobs(&due, owner, until_ms, Some(now_ms)).await
    }

    pub(super) async fn renew(
        &self,
        owner: &str,
        ids: &[String],
        until_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let (good, mut lost): (Vec<&String>, Vec<String>) = (
            ids.iter().filter(|i| valid(i)).collect(),
            ids.iter().filter(|i| !valid(i)).cloned().collect(),
        );
        if good.is_empty() {
            return Ok(lost);
        }
        let mut inv = self.job_scripts.renew.prepare_invoke();
        inv.key(self.jobs_key("active"));
        for id in &good {
            inv.key(self.job_key(id));
        }
        inv.arg(owner).arg(until_ms);
        for id in &good {
            inv.arg(id.as_str());
        }
        let mut c = self.conn.retrying();
        let more: Vec<String> = inv.invoke_async(&mut c).await.map_err(store_err)?;
        lost.extend(more);
        Ok(lost)
    }

    pub(super) async fn list(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        let mut c = self.conn.retrying();
        let created = self.jobs_key("created");
        let start = match after {
            Some(a) => {
                let rank: Option<i64> = redis::cmd("ZREVRANK")
                    .arg(&created)
                    .arg(a)
                    .query_async(&mut c)
                    .await
                    .map_err(store_err)?;
                match rank {
                    Some(r) => r + 1,
                    None => return Ok(Vec::new()),
                }
            }
            None => 0,
        };
        let ids: Vec<String> = redis::cmd("ZREVRANGE")
            .arg(&created)
            .arg(start)
            .arg(start + limit as i64 - 1)
            .query_async(&mut c)
            .await
            .map_err(store_err)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(job) = self.get_job(&id).await? {
                out.push(job);
            }
        }
        Ok(out)
    }

    pub(super) async fn purge(&self, before_ms: i64) -> Result<usize, StoreError> {
        let mut c = self.conn.retrying();
        let finished = self.jobs_key("finished");
        let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(&finished)
            .arg("-inf")
            .arg(format!("({before_ms}"))
            .query_async(&mut c)
            .await
            .map_err(store_err)?;
        let active = self.jobs_key("active");
        let mut purged = 0;
        for chunk in ids.chunks(200) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.cmd("ZSCORE").arg(&active).arg(id);
            }
            let scores: Vec<Option<f64>> = pipe.query_async(&mut c).await.map_err(store_err)?;
            let mut pipe = redis::pipe();
            for (id, active) in chunk.iter().zip(scores) {
                if active.is_none() && valid(id) {
                    pipe.cmd("DEL").arg(self.job_key(id)).ignore();
                    pipe.cmd("ZREM")
                        .arg(self.jobs_key("created"))
                        .arg(id)
                        .ignore();
                    pipe.cmd("ZREM").arg(&finished).arg(id).ignore();
                    purged += 1;
                }
            }
            let _: () = pipe.query_async(&mut c).await.map_err(store_err)?;
        }
        Ok(purged)
    }
}
