//! Where the time comes from.
//!
//! **Why injected.** Breakers, reservations' expiries, budget periods and the state cache all
//! read "now"; a test that steps the clock by hand ([`ManualClock`]) can then cross a breaker's
//! timeout or a month's end without waiting. Everything else uses [`SystemClock`].

use chrono::{DateTime, Utc};

/// Where the time comes from.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock stopped at `t`.
    pub fn new(t: DateTime<Utc>) -> ManualClock {
        ManualClock(std::sync::Mutex::new(t))
    }

    /// Moves it forward.
    pub fn advance(&self, d: chrono::Duration) {
        if let Ok(mut t) = self.0.lock() {
            *t += d;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.lock().map(|t| *t).unwrap_or_default()
    }
}
