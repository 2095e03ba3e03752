//! The budget ledger, the money part of the store: its records and the arithmetic every
//! store shares, so that memory, SQLite and Redis count money by one set of rules.
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
//! Every entry is kept, with its times, request id, backend, model, amount and final state,
//! and, for a tenant's request, the key id and team that made it (never the key's secret).
//!
//! **Levels.** Beside the policy's monthly budget, a reservation may have to fit further
//! budgets, its [`LevelLimit`]s: an organisation's, a team's, a key's, a backend's, each
//! monthly or daily. A reservation is made only if it fits *every* one of them, and on all of
//! them in the same atomic step as the month's (one SQLite transaction, one Redis script); the
//! entry records its levels, so commit, release, in doubt and expiry move every level with
//! the month, in the same step again. A level is named by a key that includes its period,
//! `team:growth@2026-12` or `key:web@2026-12-01` ([`level_key`]), and its totals live in its
//! month's storage (on Redis, in the month's hash-tagged slot), so a new month or day starts
//! at zero exactly as the month does.
//!
//! **Reclaiming reservations of dead processes.** Each reservation carries an expiry: the
//! backend's `max_generation_time_seconds` twice over plus a minute. The executor commits or
//! releases long before that, because a job is cut off at its maximum time. A reservation
//! still open past its expiry belongs to a process that died, and what happens to it depends
//! on one fact the executor records before it calls the backend
//! ([`Store::mark_sent`](crate::store::Store::mark_sent)):
//! - its create call was **never sent**: nothing can have been charged, so it stops counting
//!   and is marked `expired`;
//! - its create call **was sent**: the provider may have accepted (and billed) the job, so it
//!   becomes `in_doubt` and keeps counting, exactly like a call whose answer was lost.
//!
//! Committed spend is never expired. If a process was merely frozen past its reservation's
//! expiry and then commits, the commit is still recorded (money spent is a fact), and that is
//! the one way a month can end above its budget; `budget show` would show it.
//!
//! The stored forms here (entry states as strings, reservation ids that name their month)
//! are wire formats: SQLite rows and Redis keys hold them, and replicas of different builds
//! read each other's.

use std::fmt;

use chrono::{DateTime, Datelike, Utc};

use crate::error::StoreError;
use genroute_core::num::Fixed;

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
    /// Returned because its process died (expiry passed) before its create call was sent.
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
    /// When the backend's create call was sent, RFC 3339 (from then on it may be billed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<String>,
    /// The API key that made the request (its id, never its secret), for a tenant's request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The key's team.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The further budget levels this entry counts on ([`LevelLimit::key`]), sorted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub levels: Vec<String>,
}

/// Who made a reservation: an API key's id and its team (never the key's secret).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Payer {
    /// The key's id.
    pub key: Option<String>,
    /// The key's team.
    pub team: Option<String>,
}

/// One more budget a reservation must fit, beside the policy's monthly budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelLimit {
    /// The level and its period, as [`level_key`] builds it: `team:growth@2026-12`.
    pub key: String,
    /// Its budget for that period.
    pub budget: Fixed,
}

/// The most levels one reservation may name.
pub const MAX_LEVELS: usize = 16;

pub use genroute_core::levels::level_key;

/// Checks the levels of a reservation made in `month`: at most [`MAX_LEVELS`], each key a
/// level of that month (or one of its days) with no spaces, none twice.
pub fn check_levels(levels: &[LevelLimit], month: Month) -> Result<(), StoreError> {
    if levels.len() > MAX_LEVELS {
        return Err(StoreError::Store(format!(
            "a reservation names {} budget levels; at most {MAX_LEVELS} are allowed",
            levels.len()
        )));
    }
    let month = month.to_string();
    for (i, l) in levels.iter().enumerate() {
        let period = l.key.rsplit_once('@').map(|(_, p)| p);
        let ok = !l.key.is_empty()
            && !l.key.contains(char::is_whitespace)
            && period.is_some_and(|p| {
                p.get(..7) == Some(month.as_str()) && (p.len() == 7 || p.len() == 10)
            })
            && !levels[..i].iter().any(|o| o.key == l.key);
        if !ok {
            return Err(StoreError::Store(format!(
                "budget level `{}` is not a level of {month} (or is named twice)",
                l.key
            )));
        }
    }
    Ok(())
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
    /// Further budgets it must fit, each reserved in the same atomic step.
    pub levels: Vec<LevelLimit>,
    /// Who pays.
    pub payer: Payer,
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
            remaining_usd: genroute_core::levels::remaining(budget, t.counted()),
            cost_threshold_usd: threshold,
            utilization_percent: t
                .spent()
                .checked_mul(Fixed::from_micros(100_000_000))
                .and_then(|x| x.checked_div(budget))
                .unwrap_or(Fixed::ZERO),
        }
    }
}

/// The check at the heart of reserve: does `amount` fit on top of what is counted?
pub fn admits(counted: Fixed, amount: Fixed, budget: Fixed) -> Result<(), StoreError> {
    match counted.checked_add(amount) {
        Some(total) if total <= budget && !amount.is_negative() => Ok(()),
        _ => Err(StoreError::OverBudget {
            amount,
            counted,
            budget,
            level: None,
        }),
    }
}

/// Reserve's whole check: `amount` must fit the month (`month`: its counted total) and each
/// level (`levels[i]` counted `counted[i]`); the first that refuses is named.
pub fn admits_all(
    month: Fixed,
    budget: Fixed,
    amount: Fixed,
    levels: &[LevelLimit],
    counted: &[Fixed],
) -> Result<(), StoreError> {
    admits(month, amount, budget)?;
    for (l, &c) in levels.iter().zip(counted) {
        admits(c, amount, l.budget).map_err(|e| match e {
            StoreError::OverBudget {
                amount,
                counted,
                budget,
                ..
            } => StoreError::OverBudget {
                amount,
                counted,
                budget,
                level: Some(l.key.clone()),
            },
            e => e,
        })?;
    }
    Ok(())
}

/// The note of a reservation that expired after its create call was sent. It is in doubt
/// and counted; a late commit from its (frozen, not dead) process still turns it into spend,
/// while a late release or in-doubt leaves it counted.
pub const EXPIRED_AFTER_SEND: &str = "expired_after_send";

/// How a finish call (commit, release, in doubt) moves an entry in state `from` with note
/// `note`, or `None` if the entry is not open. Every store follows this one table.
///
/// Returns the new state and the change to each total (reserved, committed, in doubt), as
/// signed multiples of the entry's amount.
pub fn finish_move(
    from: EntryState,
    note: Option<&str>,
    to: EntryState,
) -> Option<(EntryState, [i8; 3])> {
    use EntryState::*;
    Some(match (from, to) {
        (Reserved, Committed) => (Committed, [-1, 1, 0]),
        (Reserved, InDoubt) => (InDoubt, [-1, 0, 1]),
        (Reserved, _) => (Released, [-1, 0, 0]),
        // A commit (or in doubt) after expiry is still recorded: the money was spent.
        (Expired, Committed) => (Committed, [0, 1, 0]),
        (Expired, InDoubt) => (InDoubt, [0, 0, 1]),
        // Expired while its create call was out: it stays counted unless it is committed.
        (InDoubt, Committed) if note == Some(EXPIRED_AFTER_SEND) => (Committed, [0, 1, -1]),
        (InDoubt, _) if note == Some(EXPIRED_AFTER_SEND) => (InDoubt, [0, 0, 0]),
        _ => return None,
    })
}

/// An entry as of `now_ms`: a reservation past its expiry reads as its settlement will leave
/// it (in doubt if its create call was sent, expired if not), whether or not a write has
/// settled it in storage yet.
pub fn settle(e: &mut Entry, expires_ms: i64, now_ms: i64) {
    if e.state == EntryState::Reserved && expires_ms <= now_ms {
        if e.sent.is_some() {
            e.state = EntryState::InDoubt;
            e.note = Some(EXPIRED_AFTER_SEND.into());
        } else {
            e.state = EntryState::Expired;
        }
    }
}

/// A new reservation id. It names its month (`2026-11.<uuid>`), so that a store whose keys
/// are per month (Redis, where each month is one cluster slot) finds the entry from the id.
pub fn new_id(month: Month) -> String {
    format!("{month}.{}", uuid::Uuid::new_v4().simple())
}

/// The month a reservation id names, if it is one of ours.
pub fn month_of_id(id: &str) -> Option<Month> {
    let (month, rest) = id.split_once('.')?;
    (!rest.is_empty()).then_some(())?;
    Month::parse(month)
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
