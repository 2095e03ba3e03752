//! A guard in front of any store: a deadline on every call, a breaker that fails calls fast
//! while the store is down, and the health figures that `/readyz` reports.
//!
//! **Why here, once.** Every store call can stall (a paused Redis, a SQLite write lock held by
//! another process). Put a timeout at each call site and every request still waits out its own
//! timeout while the store is down, one after another. Here the timeout is applied once, and
//! after [`FAIL_FAST_AFTER`] failures or timeouts in a row the guard's breaker (the same state
//! machine as the backends', [`genroute_core::breaker`]) opens: for [`BACK_OFF`] every call fails at
//! once, naming the store and its last error, without touching the store. Then one call is let
//! through as a probe; its success closes the breaker.
//!
//! A definite answer from a healthy store (over budget, unknown reservation) is a success
//! here. A lost ledger ([`StoreError::EpochLost`]) is reported in the health, but does not
//! open the breaker: the store already refuses at once, and the operator's acceptance must
//! reach it.
//!
//! [`Guarded::spawn_probe`] pings the store in the background, so `/readyz` answers from the
//! last probe at once and a store that comes back is noticed without traffic.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::StoreError;
use crate::job::Job;
use crate::ledger::{Entry, Month, NewReservation, Totals};
use crate::store::{Counters, Store};
use genroute_core::breaker::BreakerState;
use genroute_core::breaker::{Breaker, BreakerChange, BreakerConfig};
use genroute_core::num::Fixed;

/// Failures or timeouts in a row after which calls fail fast.
pub const FAIL_FAST_AFTER: u32 = 3;
/// How long calls fail fast before one probe is let through.
pub const BACK_OFF: Duration = Duration::from_secs(1);
/// The default deadline of one store call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// What `/readyz` says about the store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    /// `memory`, `sqlite`, `redis` or `redis-cluster`.
    pub store: &'static str,
    /// True when the last call succeeded, calls are not failing fast, and the ledger is not
    /// lost.
    pub ok: bool,
    /// The guard's breaker: `open` while calls fail fast.
    pub breaker: BreakerState,
    /// Failures or timeouts in a row.
    pub consecutive_failures: u32,
    /// When a call last succeeded (RFC 3339).
    pub last_success: Option<String>,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// When it happened (RFC 3339).
    pub last_error_at: Option<String>,
    /// How long the last call that reached the store took, in milliseconds.
    pub latency_ms: Option<f64>,
    /// When the background probe last ran (RFC 3339).
    pub last_probe: Option<String>,
    /// True when the store lost its data and waits for an operator (see the Redis store);
    /// asked of the store itself, so no other call's success can hide it.
    pub ledger_lost: bool,
    /// The deadline of each call, in milliseconds.
    pub timeout_ms: u64,
}

#[derive(Debug)]
struct Inner {
    breaker: Breaker,
    health: Health,
}

/// A store behind a deadline and a fail-fast breaker.
pub struct Guarded {
    store: Arc<dyn Store>,
    timeout: Duration,
    cfg: BreakerConfig,
    started: Instant,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Guarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded")
            .field("store", &self.store.kind())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Guarded {
    /// Guards `store`; every call gets `timeout`.
    pub fn new(store: Arc<dyn Store>, timeout: Duration) -> Guarded {
        let health = Health {
            store: store.kind(),
            ok: true,
            breaker: BreakerState::Closed,
            consecutive_failures: 0,
            last_success: None,
            last_error: None,
            last_error_at: None,
            latency_ms: None,
            last_probe: None,
            ledger_lost: false,
            timeout_ms: timeout.as_millis() as u64,
        };
        Guarded {
            store,
            timeout,
            cfg: BreakerConfig {
                failure_threshold: FAIL_FAST_AFTER,
                timeout_ms: BACK_OFF.as_millis() as i64,
                half_open_requests: 1,
            },
            started: Instant::now(),
            inner: Mutex::new(Inner {
                breaker: Breaker::default(),
                health,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self) -> i64 {
        self.started.elapsed().as_millis() as i64
    }

    /// The store's health as of the last call or probe.
    pub fn health(&self) -> Health {
        let now = self.now_ms();
        let mut h = {
            let inner = self.lock();
            let mut h = inner.health.clone();
            h.breaker = inner.breaker.state_at(now, &self.cfg);
            h
        };
        if let Some(why) = self.store.lost() {
            h.ledger_lost = true;
            h.last_error = Some(why);
        }
        h.ok = h.ok && h.breaker != BreakerState::Open && !h.ledger_lost;
        h
    }

    /// Runs one call under the deadline, unless calls are failing fast.
    async fn call<T>(
        &self,
        gated: bool,
        fut: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        if gated {
            let now = self.now_ms();
            let mut inner = self.lock();
            let Inner { breaker, health } = &mut *inner;
            if let Err(refused) = breaker.try_acquire(now, &self.cfg) {
                let last = health.last_error.as_deref().unwrap_or("none recorded");
                return Err(StoreError::Store(format!(
                    "the {} store failed {} times in a row, so calls fail at once for the next {} ms (last error: {last})",
                    health.store, FAIL_FAST_AFTER, refused.retry_in_ms
                )));
            }
        }
        let started = Instant::now();
        let result = match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Store(format!(
                "the {} store did not answer within {} ms",
                self.store.kind(),
                self.timeout.as_millis()
            ))),
        };
        let latency = started.elapsed().as_secs_f64() * 1000.0;
        let now = self.now_ms();
        let mut inner = self.lock();
        let Inner { breaker, health } = &mut *inner;
        health.latency_ms = Some((latency * 1000.0).round() / 1000.0);
        match &result {
            Err(StoreError::EpochLost(m)) => {
                health.ok = false;
                health.last_error = Some(m.clone());
                health.last_error_at = Some(now_rfc3339());
                breaker.on_neutral();
            }
            Err(e @ StoreError::Store(_)) => {
                if gated {
                    breaker.on_failure(now, &self.cfg);
                }
                health.ok = false;
                health.consecutive_failures += 1;
                health.last_error = Some(e.to_string());
                health.last_error_at = Some(now_rfc3339());
            }
            _ => {
                if gated {
                    breaker.on_success(now, &self.cfg);
                } else {
                    // An ungated call that got through proves the store answers again.
                    breaker.reset();
                }
                health.ok = true;
                health.consecutive_failures = 0;
                health.last_success = Some(now_rfc3339());
            }
        }
        result
    }

    /// Pings the store every `every`, for as long as the returned task runs (abort it, or
    /// drop the runtime, to stop).
    pub fn spawn_probe(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { return };
                let _ = me.ping().await;
                me.lock().health.last_probe = Some(now_rfc3339());
            }
        })
    }
}

/// Writes out `impl Store for Guarded`: each method listed by its signature forwards to the
/// wrapped store through [`Guarded::call`], gated (so it fails fast while the store is down)
/// and under the deadline; `-> T` in the list stands for `-> Result<T, StoreError>`. The
/// methods after `@rest` behave otherwise and are written out.
///
/// **Why a macro.** The forwarding is the same for every method; written out, a method added
/// to [`Store`] would be one more copy to get right, and a copy that forgot the gate or the
/// deadline would look like every other.
macro_rules! forward_gated {
    (
        $(async fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*
        @rest $($rest:tt)*
    ) => {
        #[async_trait::async_trait]
        impl Store for Guarded {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> Result<$ret, StoreError> {
                    self.call(true, self.store.$name($($arg),*)).await
                }
            )*
            $($rest)*
        }
    };
}

forward_gated! {
    async fn reserve(&self, r: &NewReservation, budget: Fixed, now: DateTime<Utc>) -> String;
    async fn mark_sent(&self, id: &str, now: DateTime<Utc>) -> ();
    async fn commit(&self, id: &str, now: DateTime<Utc>) -> ();
    async fn commit_noted(&self, id: &str, note: &str, now: DateTime<Utc>) -> ();
    async fn release(&self, id: &str, note: &str, now: DateTime<Utc>) -> ();
    async fn keep_in_doubt(&self, id: &str, note: &str, now: DateTime<Utc>) -> ();
    async fn totals(&self, month: Month, now: DateTime<Utc>) -> Totals;
    async fn level_totals(&self, levels: &[String], now: DateTime<Utc>) -> Vec<Totals>;
    async fn take_slot(
        &self,
        set: &str,
        member: &str,
        limit: u32,
        until_ms: i64,
        now_ms: i64
    ) -> Option<i64>;
    async fn drop_slot(&self, set: &str, member: &str) -> ();
    async fn entries(&self, month: Option<Month>, now: DateTime<Utc>) -> Vec<Entry>;
    async fn breakers(&self, backends: &[String]) -> Vec<Breaker>;
    async fn update_breaker(
        &self,
        backend: &str,
        change: BreakerChange,
        now_ms: i64,
        cfg: BreakerConfig
    ) -> (Breaker, bool);
    async fn push_sample(&self, key: &str, sample: &str, keep: usize) -> ();
    async fn samples(&self, keys: &[String], limit: usize) -> Vec<Vec<String>>;
    async fn add_counters(&self, key: &str, by: &[(&str, i64)]) -> Counters;
    async fn counters(&self, keys: &[String]) -> Vec<Counters>;
    async fn put_mark(&self, key: &str, value: &str) -> bool;
    async fn marks(&self, keys: &[String]) -> Vec<Option<String>>;
    async fn clear_mark(&self, key: &str, counters: &[String]) -> ();
    async fn create_job(&self, job: &Job) -> ();
    async fn job(&self, id: &str) -> Option<Job>;
    async fn save_job(&self, job: &Job) -> bool;
    async fn claim_jobs(&self, owner: &str, now_ms: i64, until_ms: i64, limit: usize) -> Vec<Job>;
    async fn take_job(&self, id: &str, owner: &str, until_ms: i64) -> Option<Job>;
    async fn renew_jobs(&self, owner: &str, ids: &[String], until_ms: i64) -> Vec<String>;
    async fn list_jobs(&self, after: Option<&str>, limit: usize) -> Vec<Job>;
    async fn purge_jobs(&self, before_ms: i64) -> usize;
    async fn ping(&self) -> ();

    @rest

    /// Never failed fast: the acceptance must reach a store that refuses everything else.
    async fn accept_empty(&self, note: &str) -> Result<String, StoreError> {
        self.call(false, self.store.accept_empty(note)).await
    }

    /// Asked of the store itself, never of the guard's own record, so no other call's
    /// success can hide a lost ledger; no deadline, it answers from memory.
    fn lost(&self) -> Option<String> {
        self.store.lost()
    }

    fn kind(&self) -> &'static str {
        self.store.kind()
    }
}
