//! An in-memory ledger store, for embedding and tests. One mutex guards everything, so every
//! operation is atomic within the process. Totals are kept per month and open reservations
//! are indexed by expiry, so no operation scans the history.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::{
    admits, millis, rfc3339, Entry, EntryState, LedgerError, Month, NewReservation, Store, Totals,
};
use crate::breaker::Breaker;
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

fn bump(slot: &mut Fixed, by: Fixed, add: bool) {
    let next = if add {
        slot.checked_add(by)
    } else {
        slot.checked_sub(by)
    };
    *slot = next.unwrap_or(*slot);
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
            e.state = EntryState::Expired;
            e.updated = rfc3339(now_ms);
            let t = self.totals.entry(e.month.clone()).or_default();
            bump(&mut t.reserved, e.amount_usd, false);
        }
    }

    fn finish(
        &mut self,
        id: &str,
        to: EntryState,
        note: Option<&str>,
        now_ms: i64,
    ) -> Result<(), LedgerError> {
        let unknown = || LedgerError::UnknownReservation(id.to_string());
        let i = *self.by_id.get(id).ok_or_else(unknown)?;
        let from = self.entries[i].state;
        // A commit after expiry is still recorded: the money was spent.
        let open = from == EntryState::Reserved
            || (from == EntryState::Expired && to != EntryState::Released);
        if !open {
            return Err(unknown());
        }
        if let Some(at) = self.expires.remove(&i) {
            self.open.remove(&(at, i));
        }
        let e = &mut self.entries[i];
        e.state = to;
        e.updated = rfc3339(now_ms);
        e.note = note.map(str::to_string).or(e.note.take());
        let (amount, t) = (
            e.amount_usd,
            self.totals.entry(e.month.clone()).or_default(),
        );
        if from == EntryState::Reserved {
            bump(&mut t.reserved, amount, false);
        }
        match to {
            EntryState::Committed => bump(&mut t.committed, amount, true),
            EntryState::InDoubt => bump(&mut t.in_doubt, amount, true),
            _ => {}
        }
        Ok(())
    }
}

impl Store for MemoryStore {
    fn reserve(
        &self,
        r: &NewReservation,
        budget: Fixed,
        now: DateTime<Utc>,
    ) -> Result<String, LedgerError> {
        let mut inner = self.lock()?;
        let now_ms = millis(now);
        inner.expire(now_ms);
        let month = Month::of(now).to_string();
        admits(
            inner
                .totals
                .get(&month)
                .copied()
                .unwrap_or_default()
                .counted(),
            r.amount,
            budget,
        )?;
        let id = uuid::Uuid::new_v4().to_string();
        let entry = Entry {
            id: id.clone(),
            month,
            created: rfc3339(now_ms),
            updated: rfc3339(now_ms),
            request_id: r.request_id.clone(),
            backend: r.backend.clone(),
            model: r.model.clone(),
            amount_usd: r.amount,
            state: EntryState::Reserved,
            note: None,
        };
        let i = inner.entries.len();
        let expires = now_ms.saturating_add(r.ttl_ms);
        inner
            .totals
            .entry(entry.month.clone())
            .or_default()
            .reserved = inner.totals.get(&entry.month).map_or(r.amount, |t| {
            t.reserved.checked_add(r.amount).unwrap_or(t.reserved)
        });
        inner.entries.push(entry);
        inner.by_id.insert(id.clone(), i);
        inner.open.insert((expires, i));
        inner.expires.insert(i, expires);
        Ok(id)
    }

    fn commit(&self, id: &str, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.lock()?
            .finish(id, EntryState::Committed, None, millis(now))
    }

    fn release(&self, id: &str, note: &str, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.lock()?
            .finish(id, EntryState::Released, Some(note), millis(now))
    }

    fn keep_in_doubt(&self, id: &str, note: &str, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.lock()?
            .finish(id, EntryState::InDoubt, Some(note), millis(now))
    }

    fn totals(&self, month: Month, now: DateTime<Utc>) -> Result<Totals, LedgerError> {
        let mut inner = self.lock()?;
        inner.expire(millis(now));
        Ok(inner
            .totals
            .get(&month.to_string())
            .copied()
            .unwrap_or_default())
    }

    fn entries(&self, month: Option<Month>) -> Result<Vec<Entry>, LedgerError> {
        let inner = self.lock()?;
        let month = month.map(|m| m.to_string());
        Ok(inner
            .entries
            .iter()
            .filter(|e| month.as_ref().is_none_or(|m| &e.month == m))
            .cloned()
            .collect())
    }

    fn breaker(&self, backend: &str) -> Result<Breaker, LedgerError> {
        Ok(self
            .lock()?
            .breakers
            .get(backend)
            .copied()
            .unwrap_or_default())
    }

    fn update_breaker(
        &self,
        backend: &str,
        change: &mut dyn FnMut(&mut Breaker),
    ) -> Result<Breaker, LedgerError> {
        let mut inner = self.lock()?;
        let b = inner.breakers.entry(backend.to_string()).or_default();
        change(b);
        Ok(*b)
    }
}
