//! An in-memory ledger store, for embedding and tests. One mutex guards everything, so every
//! operation is atomic within the process; it is held for a few map operations and never
//! across IO or an await, so the async methods never wait. Totals are kept per month and open
//! reservations are indexed by expiry, so no operation scans the history.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::{
    admits, finish_move, millis, new_id, rfc3339, Entry, EntryState, LedgerError, Month,
    NewReservation, Store, Totals, EXPIRED_AFTER_SEND,
};
use crate::breaker::{Breaker, BreakerChange, BreakerConfig};
use crate::num::Fixed;

#[derive(Debug, Default)]
struct Inner {
    entries: Vec<Entry>,
    by_id: HashMap<String, usize>,
    open: BTreeSet<(i64, usize)>,
    expires: HashMap<usize, i64>,
    totals: HashMap<String, Totals>,
    breakers: HashMap<String, Breaker>,
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

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, LedgerError> {
        self.inner
            .lock()
            .map_err(|_| LedgerError::Store("a thread panicked while holding the ledger".into()))
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
            apply(
                self.totals.entry(e.month.clone()).or_default(),
                amount,
                moves,
            );
        }
    }

    fn index(&self, id: &str) -> Result<usize, LedgerError> {
        self.by_id
            .get(id)
            .copied()
            .ok_or_else(|| LedgerError::UnknownReservation(id.to_string()))
    }

    fn finish(
        &mut self,
        id: &str,
        to: EntryState,
        note: Option<&str>,
        now_ms: i64,
    ) -> Result<(), LedgerError> {
        // Settle expiries first, so that a late finish meets the entry as expiry left it.
        self.expire(now_ms);
        let i = self.index(id)?;
        let e = &self.entries[i];
        let (state, moves) = finish_move(e.state, e.note.as_deref(), to)
            .ok_or_else(|| LedgerError::UnknownReservation(id.to_string()))?;
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
        apply(
            self.totals.entry(e.month.clone()).or_default(),
            amount,
            moves,
        );
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn reserve(
        &self,
        r: &NewReservation,
        budget: Fixed,
        now: DateTime<Utc>,
    ) -> Result<String, LedgerError> {
        let mut inner = self.lock()?;
        let now_ms = millis(now);
        inner.expire(now_ms);
        let month = Month::of(now);
        let key = month.to_string();
        let totals = inner.totals.get(&key).copied().unwrap_or_default();
        admits(totals.counted(), r.amount, budget)?;
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
        };
        let i = inner.entries.len();
        let expires = now_ms.saturating_add(r.ttl_ms);
        apply(inner.totals.entry(key).or_default(), r.amount, [1, 0, 0]);
        inner.entries.push(entry);
        inner.by_id.insert(id.clone(), i);
        inner.open.insert((expires, i));
        inner.expires.insert(i, expires);
        Ok(id)
    }

    async fn mark_sent(&self, id: &str, now: DateTime<Utc>) -> Result<(), LedgerError> {
        let mut inner = self.lock()?;
        let i = inner.index(id)?;
        let e = &mut inner.entries[i];
        if e.state != EntryState::Reserved {
            return Err(LedgerError::UnknownReservation(id.to_string()));
        }
        e.sent = Some(rfc3339(millis(now)));
        Ok(())
    }

    async fn commit(&self, id: &str, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.lock()?
            .finish(id, EntryState::Committed, None, millis(now))
    }

    async fn release(&self, id: &str, note: &str, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.lock()?
            .finish(id, EntryState::Released, Some(note), millis(now))
    }

    async fn keep_in_doubt(
        &self,
        id: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.lock()?
            .finish(id, EntryState::InDoubt, Some(note), millis(now))
    }

    async fn totals(&self, month: Month, now: DateTime<Utc>) -> Result<Totals, LedgerError> {
        let mut inner = self.lock()?;
        inner.expire(millis(now));
        Ok(inner
            .totals
            .get(&month.to_string())
            .copied()
            .unwrap_or_default())
    }

    async fn entries(
        &self,
        month: Option<Month>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Entry>, LedgerError> {
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

    async fn breakers(&self, backends: &[String]) -> Result<Vec<Breaker>, LedgerError> {
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
    ) -> Result<(Breaker, bool), LedgerError> {
        let mut inner = self.lock()?;
        let b = inner.breakers.entry(backend.to_string()).or_default();
        let admitted = b.apply(change, now_ms, &cfg);
        Ok((*b, admitted))
    }

    async fn ping(&self) -> Result<(), LedgerError> {
        self.lock().map(|_| ())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
