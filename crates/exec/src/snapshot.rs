//! The state cache: the ledger figures (the month's totals, every breaker) that a decision
//! reads, held as one snapshot and refreshed off the request path.
//!
//! **Why.** Deciding needs spend and breaker states, but deciding never spends: a decision
//! made on figures a few seconds old can name another backend, never move money, because
//! reserve always asks the store. So a decision does not wait for a store that does not
//! answer. A request whose snapshot is older than the TTL starts one refresh (single flight:
//! concurrent requests share it) and waits for it at most [`FRESH_WAIT`]; if the store has
//! not answered by then, the request is decided on the snapshot it has, as long as that is no
//! older than `max_stale`, and the answer says so (its age, `stale: true`). The refresh goes
//! on in the background under the store's own deadline. Past `max_stale`, or with no snapshot
//! at all, the request waits for the store (bounded by the store guard) and fails if it fails.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use chrono::{DateTime, Utc};
use futures_util::future::{BoxFuture, FutureExt, Shared};
use serde::Serialize;

use super::Clock;
use genroute_core::breaker::Breaker;
use genroute_core::policy::Policy;
use genroute_core::state::State;
use genroute_store::{millis, Month, Store, StoreError, Totals};

/// How long a request waits for a refresh when it holds a usable snapshot.
pub const FRESH_WAIT: Duration = Duration::from_millis(100);

/// The default bound on a snapshot's age (`--state-max-stale`).
pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(30);

/// The ledger's figures at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When they were read (for their age).
    pub taken: Instant,
    /// The clock's time when they were read (for their month).
    pub at: DateTime<Utc>,
    /// The month's totals.
    pub totals: Totals,
    /// Each backend's breaker, by backend index.
    pub breakers: Vec<Breaker>,
    /// Each backend's measured figures, by backend index.
    pub measured: Vec<genroute_core::measure::Measured>,
    /// Each experiment's rollback, by experiment index (`None` while it runs).
    pub rollbacks: Vec<Option<genroute_core::experiment::Rollback>>,
}

/// How fresh the figures behind an answer are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Freshness {
    /// Age of the ledger figures, in milliseconds.
    pub state_age_ms: u64,
    /// True when the store did not answer in time and an older snapshot was used.
    pub state_stale: bool,
}

type Flight = Shared<BoxFuture<'static, Result<Arc<Snapshot>, StoreError>>>;

/// The cache.
pub struct StateCache {
    store: Arc<dyn Store>,
    names: Vec<String>,
    experiments: Vec<String>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    max_stale: Duration,
    snap: ArcSwapOption<Snapshot>,
    flight: Mutex<Option<Flight>>,
}

impl StateCache {
    /// A cache of `policy`'s figures in `store`.
    pub fn new(
        policy: &Policy,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        ttl: Duration,
        max_stale: Duration,
    ) -> StateCache {
        StateCache {
            store,
            names: policy.backends.iter().map(|b| b.name.clone()).collect(),
            experiments: policy.experiments.iter().map(|e| e.name.clone()).collect(),
            clock,
            ttl,
            max_stale,
            snap: ArcSwapOption::empty(),
            flight: Mutex::new(None),
        }
    }

    /// Takes `other`'s last snapshot, if it holds the same backends (a policy reload that kept
    /// them), so that the new cache can answer before it has read the store itself.
    pub fn inherit(&self, other: &StateCache) {
        if self.names == other.names && self.experiments == other.experiments {
            if let Some(s) = other.last() {
                self.snap.store(Some(s));
            }
        }
    }

    /// Forgets the last snapshot, so that the next decision reads the store (after an
    /// operator's change that decisions must see at once, such as a resumed experiment).
    pub fn invalidate(&self) {
        self.snap.store(None);
    }

    /// The last snapshot if it is younger than the TTL.
    pub fn fresh(&self) -> Option<Arc<Snapshot>> {
        self.snap
            .load_full()
            .filter(|s| s.taken.elapsed() < self.ttl)
    }

    /// The last snapshot, if any, without asking the store.
    pub fn last(&self) -> Option<Arc<Snapshot>> {
        self.snap.load_full()
    }

    /// Reads both figures from the store, concurrently.
    async fn fetch(
        store: Arc<dyn Store>,
        names: Vec<String>,
        experiments: Vec<String>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Snapshot>, StoreError> {
        use genroute_core::measure::{sample_key, summarize_stored, WINDOW};
        let at = clock.now();
        let sample_keys: Vec<String> = names.iter().map(|n| sample_key(n)).collect();
        let mark_keys: Vec<String> = experiments
            .iter()
            .map(|e| genroute_core::experiment::mark_key(e))
            .collect();
        let (totals, breakers, samples, marks) = tokio::join!(
            store.totals(Month::of(at), at),
            store.breakers(&names),
            store.samples(&sample_keys, WINDOW),
            store.marks(&mark_keys)
        );
        Ok(Arc::new(Snapshot {
            taken: Instant::now(),
            at,
            totals: totals?,
            breakers: breakers?,
            measured: samples?.iter().map(|s| summarize_stored(s)).collect(),
            rollbacks: marks?
                .into_iter()
                .map(|m| m.and_then(|j| serde_json::from_str(&j).ok()))
                .collect(),
        }))
    }

    /// The refresh in flight, or a new one.
    fn refresh(self: &Arc<Self>) -> Flight {
        let mut flight = self.flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = flight.as_ref().filter(|f| f.peek().is_none()) {
            return f.clone();
        }
        let me = Arc::downgrade(self);
        let (store, names, clock) = (self.store.clone(), self.names.clone(), self.clock.clone());
        let experiments = self.experiments.clone();
        let task = tokio::spawn(async move {
            let fresh = StateCache::fetch(store, names, experiments, clock).await;
            if let (Ok(s), Some(me)) = (&fresh, me.upgrade()) {
                me.snap.store(Some(s.clone()));
            }
            fresh
        });
        let f = async move {
            task.await.unwrap_or_else(|e| {
                Err(StoreError::Store(format!("the state refresh stopped: {e}")))
            })
        }
        .boxed()
        .shared();
        *flight = Some(f.clone());
        f
    }

    /// A snapshot to decide on, and how fresh it is.
    pub async fn get(self: &Arc<Self>) -> Result<(Arc<Snapshot>, Freshness), StoreError> {
        let now = self.clock.now();
        let current = self
            .snap
            .load_full()
            .filter(|s| Month::of(s.at) == Month::of(now));
        if let Some(s) = current.as_ref().filter(|s| s.taken.elapsed() < self.ttl) {
            return Ok((s.clone(), freshness(s, false)));
        }
        let flight = self.refresh();
        match current.filter(|s| s.taken.elapsed() <= self.max_stale) {
            Some(old) => match tokio::time::timeout(FRESH_WAIT, flight).await {
                Ok(Ok(fresh)) => Ok((fresh.clone(), freshness(&fresh, false))),
                _ => Ok((old.clone(), freshness(&old, true))),
            },
            None => {
                let fresh = flight.await?;
                Ok((fresh.clone(), freshness(&fresh, false)))
            }
        }
    }

    /// The decision's state from a snapshot, with breaker states as of the clock's now.
    pub fn state(&self, policy: &Policy, snap: &Snapshot, failures: u32) -> State {
        let now = self.clock.now();
        let mut state = State::new(policy, now)
            .with_spend(snap.totals.counted())
            .with_failures(failures);
        for ((slot, b), backend) in state
            .breakers
            .iter_mut()
            .zip(&snap.breakers)
            .zip(&policy.backends)
        {
            *slot = b.state_at(millis(now), &backend.breaker);
        }
        state.measured = snap.measured.clone();
        state.rolled_back = snap.rollbacks.iter().map(Option::is_some).collect();
        state
    }
}

fn freshness(s: &Snapshot, stale: bool) -> Freshness {
    Freshness {
        state_age_ms: s.taken.elapsed().as_millis() as u64,
        state_stale: stale,
    }
}
