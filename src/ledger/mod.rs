//! The budget ledger: exact, durable, and never overspent.
//!
//! Money moves in three steps. **Reserve** before calling a backend: an atomic
//! check-and-add of the expected cost, refused when committed plus reserved plus the new
//! amount would pass the monthly budget. **Commit** on success: the reservation becomes spend.
//! **Release** on failure: the reservation is returned. A fourth outcome, **in doubt**, covers
//! a create call whose answer was lost: the job may exist and be billed, so the reservation is
//! kept as spend (see `adapter`'s docs).
//!
//! Periods are calendar months in UTC (`2026-11`). A new month starts at zero because every
//! query is by month; old months stay readable.
//!
//! Every entry is kept, with its times, request id, backend, model, amount and final state.
//!
//! **Reclaiming reservations of dead processes.** Each reservation carries an expiry: the
//! backend's `max_generation_time_seconds` twice over plus a minute. The executor commits or
//! releases long before that, because a job is cut off at its maximum time. A reservation
//! still open past its expiry belongs to a process that died; it stops counting against the
//! budget and is marked `expired` the next time anyone reserves or reads the month. Committed
//! spend is never expired. If a process was merely frozen past its reservation's expiry and
//! then commits, the commit is still recorded (money spent is a fact), and that is the one way
//! a month can end above its budget; `budget show` would show it.
//!
//! Stores: [`memory::MemoryStore`] for embedding and tests, [`sqlite::SqliteStore`] for the
//! single-host default. Both keep the breakers too, so breaker state outlives a CLI process.

pub mod memory;
pub mod redis;
pub mod sqlite;

use std::fmt;

use chrono::{DateTime, Datelike, Utc};

use crate::breaker::Breaker;
use crate::num::Fixed;

/// A calendar month in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    /// Year.
    pub year: i32,
    /// 1 to 12.
    pub month: u32,
}

impl Month {
    /// The month of an instant.
    pub fn of(t: DateTime<Utc>) -> Month {
        Month {
            year: t.year(),
            month: t.month(),
        }
    }

    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.split_once('-')?;
        let (year, month) = (y.parse().ok()?, m.parse().ok()?);
        ((1..=12).contains(&month) && y.len() == 4 && m.len() == 2).then_some(Month { year, month })
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// The state of a ledger entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// Held for a call in progress.
    Reserved,
    /// Spent.
    Committed,
    /// Returned after a failure.
    Released,
    /// Returned because its process died (expiry passed).
    Expired,
    /// Kept as spent: the call may have started a billable job.
    InDoubt,
}

impl EntryState {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Reserved => "reserved",
            EntryState::Committed => "committed",
            EntryState::Released => "released",
            EntryState::Expired => "expired",
            EntryState::InDoubt => "in_doubt",
        }
    }

    /// From storage.
    pub fn parse(s: &str) -> Option<EntryState> {
        Some(match s {
            "reserved" => EntryState::Reserved,
            "committed" => EntryState::Committed,
            "released" => EntryState::Released,
            "expired" => EntryState::Expired,
            "in_doubt" => EntryState::InDoubt,
            _ => return None,
        })
    }

    /// Whether the amount counts against the budget.
    pub fn counts(self) -> bool {
        matches!(
            self,
            EntryState::Reserved | EntryState::Committed | EntryState::InDoubt
        )
    }
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// Entry id (the reservation id).
    pub id: String,
    /// `YYYY-MM`.
    pub month: String,
    /// When it was reserved, RFC 3339.
    pub created: String,
    /// When it last changed state, RFC 3339.
    pub updated: String,
    /// The request it was for.
    pub request_id: String,
    /// Backend.
    pub backend: String,
    /// Model, if known.
    pub model: Option<String>,
    /// Amount in USD.
    pub amount_usd: Fixed,
    /// Final (or current) state.
    pub state: EntryState,
    /// What happened, e.g. the failure class.
    pub note: Option<String>,
}

/// A reservation to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReservation {
    /// The request.
    pub request_id: String,
    /// Backend.
    pub backend: String,
    /// Model, if known.
    pub model: Option<String>,
    /// Expected cost.
    pub amount: Fixed,
    /// Milliseconds until an unfinished reservation stops counting.
    pub ttl_ms: i64,
}

/// A month's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Committed spend.
    pub committed: Fixed,
    /// Spend kept because a call's outcome is unknown.
    pub in_doubt: Fixed,
    /// Open reservations.
    pub reserved: Fixed,
}

impl Totals {
    /// Everything that counts against the budget.
    pub fn counted(&self) -> Fixed {
        self.committed
            .checked_add(self.in_doubt)
            .and_then(|x| x.checked_add(self.reserved))
            .unwrap_or(Fixed::from_micros(i64::MAX))
    }

    /// Spend: committed plus in doubt.
    pub fn spent(&self) -> Fixed {
        self.committed
            .checked_add(self.in_doubt)
            .unwrap_or(Fixed::from_micros(i64::MAX))
    }
}

/// A month's budget figures, as `budget show --format json` and `GET /v1/budget` print them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// `YYYY-MM`.
    pub month: String,
    /// Committed plus in doubt.
    pub spent_usd: Fixed,
    /// Committed.
    pub committed_usd: Fixed,
    /// Kept because a call's outcome is unknown.
    pub in_doubt_usd: Fixed,
    /// Open reservations.
    pub reserved_usd: Fixed,
    /// The monthly budget.
    pub budget_usd: Fixed,
    /// Budget minus everything counted (never below zero).
    pub remaining_usd: Fixed,
    /// The policy's cost threshold.
    pub cost_threshold_usd: Fixed,
    /// Spent as a percentage of the budget.
    pub utilization_percent: Fixed,
}

impl Summary {
    /// Summarises a month's totals against a budget and threshold.
    pub fn new(month: Month, t: &Totals, budget: Fixed, threshold: Fixed) -> Summary {
        Summary {
            month: month.to_string(),
            spent_usd: t.spent(),
            committed_usd: t.committed,
            in_doubt_usd: t.in_doubt,
            reserved_usd: t.reserved,
            budget_usd: budget,
            remaining_usd: budget
                .checked_sub(t.counted())
                .filter(|r| !r.is_negative())
                .unwrap_or(Fixed::ZERO),
            cost_threshold_usd: threshold,
            utilization_percent: t
                .spent()
                .checked_mul(Fixed::from_micros(100_000_000))
                .and_then(|x| x.checked_div(budget))
                .unwrap_or(Fixed::ZERO),
        }
    }
}

/// Why a ledger operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The reservation would pass the budget.
    #[error("reserving {amount} would pass the monthly budget of {budget}: {counted} is already spent or reserved")]
    OverBudget {
        /// Requested.
        amount: Fixed,
        /// Already counted.
        counted: Fixed,
        /// The budget.
        budget: Fixed,
    },
    /// No open reservation with that id.
    #[error("no open reservation `{0}`")]
    UnknownReservation(String),
    /// The store failed.
    #[error("ledger store: {0}")]
    Store(String),
}

/// The check at the heart of reserve: does `amount` fit on top of what is counted?
pub fn admits(counted: Fixed, amount: Fixed, budget: Fixed) -> Result<(), LedgerError> {
    match counted.checked_add(amount) {
        Some(total) if total <= budget && !amount.is_negative() => Ok(()),
        _ => Err(LedgerError::OverBudget {
            amount,
            counted,
            budget,
        }),
    }
}

/// What a ledger store must do. Every method is atomic with respect to every other caller,
/// in this process or (for shared stores) any other.
pub trait Store: Send + Sync {
    /// Reserves `r.amount` in the month of `now`, or refuses with [`LedgerError::OverBudget`].
    fn reserve(
        &self,
        r: &NewReservation,
        budget: Fixed,
        now: DateTime<Utc>,
    ) -> Result<String, LedgerError>;
    /// Turns a reservation into spend.
    fn commit(&self, id: &str, now: DateTime<Utc>) -> Result<(), LedgerError>;
    /// Returns a reservation; `note` says why (e.g. the failure class).
    fn release(&self, id: &str, note: &str, now: DateTime<Utc>) -> Result<(), LedgerError>;
    /// Keeps a reservation as spend because the call's outcome is unknown.
    fn keep_in_doubt(&self, id: &str, note: &str, now: DateTime<Utc>) -> Result<(), LedgerError>;
    /// A month's totals as of `now` (expired reservations excluded).
    fn totals(&self, month: Month, now: DateTime<Utc>) -> Result<Totals, LedgerError>;
    /// Entries of a month (or all), oldest first.
    fn entries(&self, month: Option<Month>) -> Result<Vec<Entry>, LedgerError>;
    /// A backend's breaker.
    fn breaker(&self, backend: &str) -> Result<Breaker, LedgerError>;
    /// Atomically reads, changes and writes a backend's breaker; returns the new value.
    fn update_breaker(
        &self,
        backend: &str,
        change: &mut dyn FnMut(&mut Breaker),
    ) -> Result<Breaker, LedgerError>;
}

/// Milliseconds since the Unix epoch.
pub fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// RFC 3339 with milliseconds.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
