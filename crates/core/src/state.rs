//! The live state a decision reads: spend, breaker states, failed attempts, the time, and
//! the caller's budget levels.
//!
//! The core never reads a clock or a store itself. Callers build a [`State`] (the CLI from
//! flags, a service from its ledger and breakers) and pass it in, which keeps decisions
//! deterministic and testable.

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};

use crate::breaker::BreakerState;
use crate::levels::LevelFigures;
use crate::num::Fixed;
use crate::policy::Policy;

/// A snapshot of everything outside the request that a decision depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// Committed plus reserved spend in the current month.
    pub spend: Fixed,
    /// Breaker state of each backend, by backend index.
    pub breakers: Vec<BreakerState>,
    /// Attempts that already failed for this request.
    pub failures: u32,
    /// The time of the decision.
    pub now: DateTime<Utc>,
    /// Each backend's measured figures, by backend index (empty: no history known).
    pub measured: Vec<crate::measure::Measured>,
    /// Per experiment of the policy, by index: whether it is rolled back.
    pub rolled_back: Vec<bool>,
    /// The further budgets that apply to this request (its tenant's, and per-backend caps),
    /// with their figures. Empty: only the policy's monthly budget applies.
    pub levels: Vec<LevelFigures>,
}

impl State {
    /// Nothing spent, every breaker closed, no failures.
    pub fn new(policy: &Policy, now: DateTime<Utc>) -> State {
        State {
            spend: Fixed::ZERO,
            breakers: vec![BreakerState::Closed; policy.backends.len()],
            failures: 0,
            now,
            measured: Vec::new(),
            rolled_back: Vec::new(),
            levels: Vec::new(),
        }
    }

    /// Sets the month's spend.
    pub fn with_spend(mut self, spend: Fixed) -> State {
        self.spend = spend;
        self
    }

    /// Sets the number of failed attempts.
    pub fn with_failures(mut self, failures: u32) -> State {
        self.failures = failures;
        self
    }

    /// Sets one backend's breaker state by name.
    pub fn set_breaker(
        &mut self,
        policy: &Policy,
        backend: &str,
        state: BreakerState,
    ) -> Result<(), String> {
        let i = policy
            .backend_index(backend)
            .ok_or_else(|| format!("unknown backend `{backend}`"))?;
        if let Some(slot) = self.breakers.get_mut(i as usize) {
            *slot = state;
        }
        Ok(())
    }
}

/// Calendar facts about an instant, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Elapsed fraction of the month, 0 to 1 (six decimals).
    pub month_progress: Fixed,
    /// 1 to 31.
    pub day_of_month: u32,
    /// 0 to 23.
    pub hour: u32,
}

impl Clock {
    /// Computes the calendar facts of `now`. Every decision does this, so it reads the
    /// date's fields rather than building month boundaries (which cost as much as the rest
    /// of a decision, measured with callgrind).
    pub fn of(now: DateTime<Utc>) -> Clock {
        let total = i64::from(days_in_month(now.year(), now.month())) * 86_400;
        let elapsed =
            i64::from(now.day() - 1) * 86_400 + i64::from(now.num_seconds_from_midnight());
        let progress = Fixed::from_micros(elapsed.clamp(0, total) * 1_000_000 / total);
        Clock {
            month_progress: progress,
            day_of_month: now.day(),
            hour: now.hour(),
        }
    }
}

/// Days in a month of the proleptic Gregorian calendar.
fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// The first instant of a UTC month.
pub fn month_start(year: i32, month: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_progress_is_exact_at_midpoint_of_a_thirty_day_month() {
        let now = Utc.with_ymd_and_hms(2026, 11, 16, 0, 0, 0).unwrap();
        let c = Clock::of(now);
        assert_eq!(c.month_progress, "0.5".parse().unwrap());
        assert_eq!(c.day_of_month, 16);
        assert_eq!(c.hour, 0);
    }

    #[test]
    fn month_progress_matches_the_month_boundaries_for_every_hour_of_four_years() {
        let mut t = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(2029, 1, 1, 0, 0, 0).unwrap();
        let mut leap_day = false;
        while t < end {
            let start = month_start(t.year(), t.month());
            let next = if t.month() == 12 {
                month_start(t.year() + 1, 1)
            } else {
                month_start(t.year(), t.month() + 1)
            };
            let total = (next - start).num_seconds();
            let expected = (t - start).num_seconds() * 1_000_000 / total;
            assert_eq!(Clock::of(t).month_progress.micros(), expected, "{t}");
            leap_day |= t.month() == 2 && t.day() == 29;
            t += chrono::Duration::minutes(59);
        }
        assert!(leap_day, "2028 is a leap year");
    }

    #[test]
    fn december_rolls_into_january() {
        let now = Utc.with_ymd_and_hms(2026, 12, 31, 23, 0, 0).unwrap();
        let c = Clock::of(now);
        assert!(c.month_progress < Fixed::ONE && c.month_progress > "0.99".parse().unwrap());
    }
}
