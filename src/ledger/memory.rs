//! An in-memory ledger store, for embedding and tests. One mutex guards everything, so every
//! operation is atomic within the process.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::{admits, millis, rfc3339, Entry, EntryState, LedgerError, Month, NewReservation, Store, Totals};
use crate::breaker::Breaker;
use crate::num::Fixed;

#[derive(Debug, Default)]
struct Inner {
    entries: Vec<(Entry, i64)>,
    breakers: HashMap<String, Breaker>,
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
        self.inner.lock().map_err(|_| LedgerError::Store("a thread panicked while holding the ledger".into()))
    }
}

impl Inner {
    fn expire(&mut self, now_ms: i64) {
        for (e, expires) in &mut self.entries {
            if e.state == EntryState::Reserved && *expires <= now_ms {
                e.state = EntryState::Expired;
                e.updated = rfc3339(now_ms);
            }
        }
    }

    fn totals(&self, month: &str) -> Totals {
        let mut t = Totals::default();
        for (e, _) in self.entries.iter().filter(|(e, _)| e.month == month) {
            let slot = match e.state {
                EntryState::Committed => &mut t.committed,
                EntryState::InDoubt => &mut t.in_doubt,
                EntryState::Reserved => &mut t.reserved,
                _ => continue,
            };
            *slot = slot.checked_add(e.amount_usd).unwrap_or(*slot);
        }
        t
    }

    fn finish(&mut self, id: &str, to: EntryState, note: Option<&str>, now_ms: i64) -> Result<(), LedgerError> {
        let (e, _) = self
            .entries
            .iter_mut()
            .find(|(e, _)| e.id == id)
            .ok_or_else(|| LedgerError::UnknownReservation(id.to_string()))?;
        // A commit after expiry is still recorded: the money was spent.
        let open = e.state == EntryState::Reserved || (e.state == EntryState::Expired && to != EntryState::Released);
        if !open {
            return Err(LedgerError::UnknownReservation(id.to_string()));
        }
        e.state = to;
        e.updated = rfc3339(now_ms);
        e.note = note.map(str::to_string).or(e.note.take());
        Ok(())
    }
}

impl Store for MemoryStore {
    fn reserve(&self, r: &NewReservation, budget: Fixed, now: DateTime<Utc>) -> Result<String, LedgerError> {
        let mut inner = self.lock()?;
        let now_ms = millis(now);
        inner.expire(now_ms);
        let month = Month::of(now).to_string();
        admits(inner.totals(&month).counted(), r.amount, budget)?;
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
        inner.entries.push((entry, now_ms.saturating_add(r.ttl_ms)));
        Ok(id)
    }

    fn commit(&self, id: &str, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.lock()?.finish(id, EntryState::Committed, None, millis(now))
    }

    fn release(&self, id: &str, note: &str, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.lock()?.finish(id, EntryState::Released, Some(note), millis(now))
    }

    fn keep_in_doubt(&self, id: &str, note: &str, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.lock()?.finish(id, EntryState::InDoubt, Some(note), millis(now))
    }

    fn totals(&self, month: Month, now: DateTime<Utc>) -> Result<Totals, LedgerError> {
        let mut inner = self.lock()?;
        inner.expire(millis(now));
        Ok(inner.totals(&month.to_string()))
    }

    fn entries(&self, month: Option<Month>) -> Result<Vec<Entry>, LedgerError> {
        let inner = self.lock()?;
        let month = month.map(|m| m.to_string());
        Ok(inner
            .entries
            .iter()
            .filter(|(e, _)| month.as_ref().is_none_or(|m| &e.month == m))
            .map(|(e, _)| e.clone())
            .collect())
    }

    fn breaker(&self, backend: &str) -> Result<Breaker, LedgerError> {
        Ok(self.lock()?.breakers.get(backend).copied().unwrap_or_default())
    }

    fn update_breaker(&self, backend: &str, change: &mut dyn FnMut(&mut Breaker)) -> Result<Breaker, LedgerError> {
        let mut inner = self.lock()?;
        let b = inner.breakers.entry(backend.to_string()).or_default();
        change(b);
        Ok(*b)
    }
}
