//! The figures of a request's budget levels, for its decision, and the levels its
//! reservations are made on; and the budget figures as `genroute budget show` and
//! `GET /v1/budget` print them (the month's, [`budget_summary`], and each level's,
//! [`summaries`]).
//!
//! **Why a cache of its own.** The state snapshot ([`crate::snapshot`]) holds what every
//! decision reads; levels belong to callers (a team's, a key's), so their totals are read by
//! level key, for the levels a request has, and kept for the state cache's TTL. As with the
//! snapshot, only the *decision* may see figures a TTL old: reserve checks every level in
//! the store, atomically, every time. A store that does not answer within [`crate::snapshot::FRESH_WAIT`]
//! leaves the decision on the last figures no older than `max_stale`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use genroute_core::levels::LevelFigures;
use genroute_core::levels::{LevelBudget, Period};
use genroute_core::policy::Policy;
use genroute_store::{LevelLimit, Month, Store, StoreError, Summary, Totals};

/// The most level keys kept; past it, entries older than `max_stale` are dropped.
const KEEP: usize = 10_000;

/// Level totals by level key, with when each was read.
pub struct LevelCache {
    store: Arc<dyn Store>,
    ttl: Duration,
    max_stale: Duration,
    seen: Mutex<HashMap<String, (Instant, Totals)>>,
}

impl LevelCache {
    /// A cache over `store`.
    pub fn new(store: Arc<dyn Store>, ttl: Duration, max_stale: Duration) -> LevelCache {
        LevelCache {
            store,
            ttl,
            max_stale,
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Totals)>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The totals of `keys`: cached ones younger than the TTL, the rest from the store (one
    /// call); when the store fails or is slow, cached ones up to `max_stale` old.
    pub async fn totals(
        &self,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<Totals>, StoreError> {
        let mut out: Vec<Option<Totals>> = {
            let seen = self.lock();
            keys.iter()
                .map(|k| {
                    seen.get(k)
                        .filter(|(t, _)| t.elapsed() < self.ttl)
                        .map(|(_, v)| *v)
                })
                .collect()
        };
        let missing: Vec<String> = keys
            .iter()
            .zip(&out)
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        if missing.is_empty() {
            return Ok(out.into_iter().flatten().collect());
        }
        let read = self.store.level_totals(&missing, now);
        let fresh = match tokio::time::timeout(crate::snapshot::FRESH_WAIT, read).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Store(
                "the ledger store did not answer in time for the budget levels".into(),
            )),
        };
        let mut seen = self.lock();
        match fresh {
            Ok(totals) => {
                if seen.len() > KEEP {
                    let max = self.max_stale;
                    seen.retain(|_, (t, _)| t.elapsed() <= max);
                }
                let mut it = totals.into_iter();
                for (k, v) in keys.iter().zip(out.iter_mut()) {
                    if v.is_none() {
                        let t = it.next().unwrap_or_default();
                        seen.insert(k.clone(), (Instant::now(), t));
                        *v = Some(t);
                    }
                }
                Ok(out.into_iter().flatten().collect())
            }
            Err(e) => keys
                .iter()
                .zip(out)
                .map(|(k, v)| match v {
                    Some(v) => Ok(v),
                    None => seen
                        .get(k)
                        .filter(|(t, _)| t.elapsed() <= self.max_stale)
                        .map(|(_, v)| *v)
                        .ok_or_else(|| e.clone()),
                })
                .collect(),
        }
    }

    /// Forgets what it holds (after a spend that decisions should see at once).
    pub fn invalidate(&self) {
        self.lock().clear();
    }
}

/// The figures of `levels` for a decision at `now`, from their totals.
pub fn figures(policy: &Policy, levels: &[LevelBudget], totals: &[Totals]) -> Vec<LevelFigures> {
    levels
        .iter()
        .zip(totals)
        .filter_map(|(l, t)| {
            let backend = match &l.backend {
                Some(name) => Some(policy.backend_index(name)?),
                None => None,
            };
            Some(LevelFigures {
                kind: l.kind,
                label: l.describe(),
                backend,
                daily: l.period == Period::Day,
                budget: l.budget,
                counted: t.counted(),
            })
        })
        .collect()
}

/// The ledger limits of the levels among `levels` that a spend on `backend` counts against.
pub fn limits(levels: &[LevelBudget], backend: &str, now: DateTime<Utc>) -> Vec<LevelLimit> {
    levels
        .iter()
        .filter(|l| l.applies_to(backend))
        .map(|l| LevelLimit {
            key: l.key(now),
            budget: l.budget,
        })
        .collect()
}

/// What an over-budget refusal of a spend on `backend` says, in the refusing level's words:
/// "team `growth` has $0.03 left of $50.00; veo costs $0.15".
pub fn refusal(
    e: &StoreError,
    levels: &[LevelBudget],
    backend: &str,
    now: DateTime<Utc>,
) -> String {
    let StoreError::OverBudget {
        amount,
        counted,
        budget,
        level,
    } = e
    else {
        return e.to_string();
    };
    let who = match level {
        None => "the monthly budget".to_string(),
        Some(key) => levels
            .iter()
            .find(|l| &l.key(now) == key)
            .map(LevelBudget::describe)
            .unwrap_or_else(|| format!("`{key}`")),
    };
    genroute_core::levels::refusal(
        &who,
        genroute_core::levels::remaining(*budget, *counted),
        *budget,
        backend,
        *amount,
    )
}

/// One level's figures, as `budget show --team` and `GET /v1/budget?team=` print them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LevelSummary {
    /// The level's name (`team:growth`, `team:growth/backend:pixverse`).
    pub level: String,
    /// For people ("team `growth` on `pixverse` (daily)").
    pub label: String,
    /// `global`, `org`, `team` or `key`.
    pub kind: genroute_core::levels::LevelKind,
    /// The backend it caps, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// `month` or `day`.
    pub period: Period,
    /// Its period: `2026-12` or `2026-12-01`.
    pub of: String,
    /// Its budget.
    pub budget_usd: genroute_core::num::Fixed,
    /// Committed plus in doubt.
    pub spent_usd: genroute_core::num::Fixed,
    /// Committed.
    pub committed_usd: genroute_core::num::Fixed,
    /// Kept because a call's outcome is unknown.
    pub in_doubt_usd: genroute_core::num::Fixed,
    /// Open reservations.
    pub reserved_usd: genroute_core::num::Fixed,
    /// Budget minus everything counted (never below zero).
    pub remaining_usd: genroute_core::num::Fixed,
}

/// The figures of `levels` in the period of `at`, read from `store` (one call).
pub async fn summaries(
    store: &dyn Store,
    levels: &[LevelBudget],
    at: DateTime<Utc>,
) -> Result<Vec<LevelSummary>, StoreError> {
    let keys: Vec<String> = levels.iter().map(|l| l.key(at)).collect();
    let totals = store.level_totals(&keys, at).await?;
    Ok(levels
        .iter()
        .zip(keys)
        .zip(totals)
        .map(|((l, key), t)| LevelSummary {
            level: l.name(),
            label: l.describe(),
            kind: l.kind,
            backend: l.backend.clone(),
            period: l.period,
            of: key
                .rsplit_once('@')
                .map(|(_, p)| p.to_string())
                .unwrap_or_default(),
            budget_usd: l.budget,
            spent_usd: t.spent(),
            committed_usd: t.committed,
            in_doubt_usd: t.in_doubt,
            reserved_usd: t.reserved,
            remaining_usd: genroute_core::levels::remaining(l.budget, t.counted()),
        })
        .collect())
}

/// The same figures as `genroute budget show --format json`.
pub async fn budget_summary(
    store: &dyn Store,
    policy: &Policy,
    month: Month,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Summary, StoreError> {
    let t = store.totals(month, now).await?;
    Ok(Summary::new(
        month,
        &t,
        policy.budget.monthly,
        policy.budget.threshold,
    ))
}
