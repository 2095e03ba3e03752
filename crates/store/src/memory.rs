//! An in-memory store, for embedding and tests. One mutex guards everything, so every
//! operation is atomic within the process; it is held for a few map operations and never
//! across IO or an await, so the async methods never wait. Totals are kept per month and open
//! reservations are indexed by expiry, so no operation scans the history. A budget level's
//! totals sit in the same map as the months', under its level key (`team:growth@2026-12`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::job::Job;
use crate::ledger::{
    admits_all, check_levels, finish_move, millis, new_id, rfc3339, Entry, EntryState, Month,
    NewReservation, Totals, EXPIRED_AFTER_SEND,
};
use crate::store::{Counters, Store};
use genroute_core::breaker::{Breaker, BreakerChange, BreakerConfig};
use genroute_core::num::Fixed;

#[derive(Debug, Default)]
struct Inner {
    entries: Vec<Entry>,
    by_id: HashMap<String, usize>,
    open: BTreeSet<(i64, usize)>,
    expires: HashMap<usize, i64>,
    totals: HashMap<String, Totals>,
    breakers: HashMap<String, Breaker>,
    jobs: HashMap<String, Job>,
    /// Jobs by creation, for listing newest first.
    job_order: BTreeSet<(i64, String)>,
    samples: HashMap<String, std::collections::VecDeque<String>>,
    counters: HashMap<String, Counters>,
    marks: HashMap<String, String>,
    /// Bounded sets: member → until (ms).
    slots: HashMap<String, HashMap<String, i64>>,
}

/// Adds `times` × `by` to a total (saturating at the current value on overflow, which an
/// amount bounded by the budget cannot reach).
fn bump(slot: &mut Fixed, by: Fixed, times: i8) {
    let next = match times {
        1 => slot.checked_add(by),
        -1 => slot.checked_sub(by),
        _ => Some(*slot),
    };
    *slot = next.unwrap_or(*slot);
}

fn apply(t: &mut Totals, amount: Fixed, [reserved, committed, in_doubt]: [i8; 3]) {
    bump(&mut t.reserved, amount, reserved);
    bump(&mut t.committed, amount, committed);
    bump(&mut t.in_doubt, amount, in_doubt);
}

/// The in-memory store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Store("a thread panicked while holding the ledger".into()))
    }
}

impl Inner {
    fn expire(&mut self, now_ms: i64) {
        while let Some(&(at, i)) = self.open.iter().next() {
            if at > now_ms {
                break;
            }
            self.open.remove(&(at, i));
            self.expires.remove(&i);
            let e = &mut self.entries[i];
            e.updated = rfc3339(now_ms);
            let moves = if e.sent.is_some() {
                e.state = EntryState::InDoubt;
                e.note = Some(EXPIRED_AFTER_SEND.into());
                [-1, 0, 1]
            } else {
                e.state = EntryState::Expired;
                [-1, 0, 0]
            };
            let amount = e.amount_usd;
            let e = &self.entries[i];
            for key in std::iter::once(&e.month).chain(&e.levels) {
                apply(self.totals.entry(key.clone()).or_default(), amount, moves);
            }
        }
    }

    fn index(&self, id: &str) -> Result<usize, StoreError> {
        self.by_id
            .get(id)
            .copied()
            .ok_or_else(|| StoreError::UnknownReservation(id.to_string()))
    }

    fn finish(
        &mut self,
        id: &str,
        to: EntryState,
        note: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        // Settle expiries first, so that a late finish meets the entry as expiry left it.
        self.expire(now_ms);
        let i = self.index(id)?;
        let e = &self.entries[i];
        let (state, moves) = finish_move(e.state, e.note.as_deref(), to)
            .ok_or_else(|| StoreError::UnknownReservation(id.to_string()))?;
        if let Some(at) = self.expires.remove(&i) {
            self.open.remove(&(at, i));
        }
        let e = &mut self.entries[i];
        if moves != [0, 0, 0] {
            e.state = state;
            e.updated = rfc3339(now_ms);
            e.note = note.map(str::to_string).or(e.note.take());
        }
        let amount = e.amount_usd;
        let e = &self.entries[i];
        for key in std::iter::once(&e.month).chain(&e.levels) {
            apply(self.totals.entry(key.clone()).or_default(), amount, moves);
        }
        Ok(())
    }

    fn counted(&self, key: &str) -> Fixed {
        self.totals
            .get(key)
            .map(Totals::counted)
            .unwrap_or(Fixed::ZERO)
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn reserve(
        &self,
        r: &NewReservation,
        budget: Fixed,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let mut inner = self.lock()?;
        let now_ms = millis(now);
        inner.expire(now_ms);
        let month = Month::of(now);
        check_levels(&r.levels, month)?;
        let key = month.to_string();
        let counted: Vec<Fixed> = r.levels.iter().map(|l| inner.counted(&l.key)).collect();
        admits_all(inner.counted(&key), budget, r.amount, &r.levels, &counted)?;
        let id = new_id(month);
        let entry = Entry {
            id: id.clone(),
            month: key.clone(),
            created: rfc3339(now_ms),
            updated: rfc3339(now_ms),
            request_id: r.request_id.clone(),
            backend: r.backend.clone(),
            model: r.model.clone(),
            amount_usd: r.amount,
            state: EntryState::Reserved,
            note: None,
            sent: None,
            key: r.payer.key.clone(),
            team: r.payer.team.clone(),
            levels: {
                let mut l: Vec<String> = r.levels.iter().map(|l| l.key.clone()).collect();
                l.sort();
                l
            },
        };
        let i = inner.entries.len();
        let expires = now_ms.saturating_add(r.ttl_ms);
        for key in std::iter::once(key).chain(r.levels.iter().map(|l| l.key.clone())) {
            apply(inner.totals.entry(key).or_default(), r.amount, [1, 0, 0]);
        }
        inner.entries.push(entry);
        inner.by_id.insert(id.clone(), i);
        inner.open.insert((expires, i));
        inner.expires.insert(i, expires);
        Ok(id)
    }

    async fn mark_sent(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        let i = inner.index(id)?;
        let e = &mut inner.entries[i];
        if e.state != EntryState::Reserved {
            return Err(StoreError::UnknownReservation(id.to_string()));
        }
        e.sent = Some(rfc3339(millis(now)));
        Ok(())
    }

    async fn commit(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.lock()?
            .finish(id, EntryState::Committed, None, millis(now))
    }

    async fn commit_noted(
        &self,
        id: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.lock()?
            .finish(id, EntryState::Committed, Some(note), millis(now))
    }

    async fn release(&self, id: &str, note: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.lock()?
            .finish(id, EntryState::Released, Some(note), millis(now))
    }

    async fn keep_in_doubt(
        &self,
        id: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.lock()?
            .finish(id, EntryState::InDoubt, Some(note), millis(now))
    }

    async fn totals(&self, month: Month, now: DateTime<Utc>) -> Result<Totals, StoreError> {
        let mut inner = self.lock()?;
        inner.expire(millis(now));
        Ok(inner
            .totals
            .get(&month.to_string())
            .copied()
            .unwrap_or_default())
    }

    async fn level_totals(
        &self,
        levels: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<Totals>, StoreError> {
        let mut inner = self.lock()?;
        inner.expire(millis(now));
        Ok(levels
            .iter()
            .map(|l| inner.totals.get(l).copied().unwrap_or_default())
            .collect())
    }

    async fn take_slot(
        &self,
        set: &str,
        member: &str,
        limit: u32,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut inner = self.lock()?;
        let places = inner.slots.entry(set.to_string()).or_default();
        places.retain(|_, until| *until > now_ms);
        if places.contains_key(member) || places.len() < limit as usize {
            places.insert(member.to_string(), until_ms);
            return Ok(None);
        }
        Ok(Some(places.values().copied().min().unwrap_or(now_ms)))
    }

    async fn drop_slot(&self, set: &str, member: &str) -> Result<(), StoreError> {
        if let Some(places) = self.lock()?.slots.get_mut(set) {
            places.remove(member);
        }
        Ok(())
    }

    async fn entries(
        &self,
        month: Option<Month>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut inner = self.lock()?;
        inner.expire(millis(now));
        let month = month.map(|m| m.to_string());
        Ok(inner
            .entries
            .iter()
            .filter(|e| month.as_ref().is_none_or(|m| &e.month == m))
            .cloned()
            .collect())
    }

    async fn breakers(&self, backends: &[String]) -> Result<Vec<Breaker>, StoreError> {
        let inner = self.lock()?;
        Ok(backends
            .iter()
            .map(|b| inner.breakers.get(b).copied().unwrap_or_default())
            .collect())
    }

    async fn update_breaker(
        &self,
        backend: &str,
        change: BreakerChange,
        now_ms: i64,
        cfg: BreakerConfig,
    ) -> Result<(Breaker, bool), StoreError> {
        let mut inner = self.lock()?;
        let b = inner.breakers.entry(backend.to_string()).or_default();
        let admitted = b.apply(change, now_ms, &cfg);
        Ok((*b, admitted))
    }

    async fn push_sample(&self, key: &str, sample: &str, keep: usize) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        let list = inner.samples.entry(key.to_string()).or_default();
        list.push_front(sample.to_string());
        list.truncate(keep);
        Ok(())
    }

    async fn samples(&self, keys: &[String], limit: usize) -> Result<Vec<Vec<String>>, StoreError> {
        let inner = self.lock()?;
        Ok(keys
            .iter()
            .map(|k| {
                inner
                    .samples
                    .get(k)
                    .map(|l| l.iter().take(limit).cloned().collect())
                    .unwrap_or_default()
            })
            .collect())
    }

    async fn add_counters(&self, key: &str, by: &[(&str, i64)]) -> Result<Counters, StoreError> {
        let mut inner = self.lock()?;
        let c = inner.counters.entry(key.to_string()).or_default();
        for (field, n) in by {
            let v = c.entry((*field).to_string()).or_insert(0);
            *v = v.saturating_add(*n);
        }
        Ok(c.clone())
    }

    async fn counters(&self, keys: &[String]) -> Result<Vec<Counters>, StoreError> {
        let inner = self.lock()?;
        Ok(keys
            .iter()
            .map(|k| inner.counters.get(k).cloned().unwrap_or_default())
            .collect())
    }

    async fn put_mark(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        if inner.marks.contains_key(key) {
            return Ok(false);
        }
        inner.marks.insert(key.to_string(), value.to_string());
        Ok(true)
    }

    async fn marks(&self, keys: &[String]) -> Result<Vec<Option<String>>, StoreError> {
        let inner = self.lock()?;
        Ok(keys.iter().map(|k| inner.marks.get(k).cloned()).collect())
    }

    async fn clear_mark(&self, key: &str, counters: &[String]) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        for c in counters {
            inner.counters.remove(c);
        }
        inner.marks.remove(key);
        Ok(())
    }

    async fn create_job(&self, job: &Job) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if inner.jobs.contains_key(&job.id) {
            return Err(StoreError::Store(format!("job `{}` exists", job.id)));
        }
        inner.job_order.insert((job.created_ms, job.id.clone()));
        inner.jobs.insert(job.id.clone(), job.clone());
        Ok(())
    }

    async fn job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        Ok(self.lock()?.jobs.get(id).cloned())
    }

    async fn save_job(&self, job: &Job) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        match inner.jobs.get_mut(&job.id) {
            Some(stored) if stored.owner == job.owner => {
                *stored = job.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn claim_jobs(
        &self,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        let mut inner = self.lock()?;
        let mut claimed: Vec<Job> = Vec::new();
        for job in inner.jobs.values_mut() {
            if claimed.len() >= limit {
                break;
            }
            if job.is_active() && job.lease_until_ms <= now_ms {
                job.owner = Some(owner.to_string());
                job.lease_until_ms = until_ms;
                claimed.push(job.clone());
            }
        }
        claimed.sort_by_key(|j| j.created_ms);
        Ok(claimed)
    }

    async fn take_job(
        &self,
        id: &str,
        owner: &str,
        until_ms: i64,
    ) -> Result<Option<Job>, StoreError> {
        let mut inner = self.lock()?;
        Ok(inner.jobs.get_mut(id).map(|job| {
            job.owner = Some(owner.to_string());
            job.lease_until_ms = until_ms;
            job.clone()
        }))
    }

    async fn renew_jobs(
        &self,
        owner: &str,
        ids: &[String],
        until_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut inner = self.lock()?;
        let mut lost = Vec::new();
        for id in ids {
            match inner.jobs.get_mut(id) {
                Some(job) if job.owner.as_deref() == Some(owner) => job.lease_until_ms = until_ms,
                _ => lost.push(id.clone()),
            }
        }
        Ok(lost)
    }

    async fn list_jobs(&self, after: Option<&str>, limit: usize) -> Result<Vec<Job>, StoreError> {
        let inner = self.lock()?;
        let start = after.and_then(|a| inner.jobs.get(a).map(|j| (j.created_ms, a.to_string())));
        Ok(inner
            .job_order
            .iter()
            .rev()
            .skip_while(|k| start.as_ref().is_some_and(|s| *k >= s))
            .take(limit)
            .filter_map(|(_, id)| inner.jobs.get(id).cloned())
            .collect())
    }

    async fn purge_jobs(&self, before_ms: i64) -> Result<usize, StoreError> {
        let mut inner = self.lock()?;
        let old: Vec<(i64, String)> = inner
            .jobs
            .values()
            .filter(|j| !j.is_active() && j.finished_ms.is_some_and(|f| f < before_ms))
            .map(|j| (j.created_ms, j.id.clone()))
            .collect();
        for key in &old {
            inner.jobs.remove(&key.1);
            inner.job_order.remove(key);
        }
        Ok(old.len())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.lock().map(|_| ())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
