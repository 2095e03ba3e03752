//! Budget levels: the budgets a spend counts against beside the policy's monthly one.
//!
//! A level is whose budget it is (the policy's own, an organisation's, a team's, a key's),
//! optionally one backend it caps, and a period (a UTC month or day). The policy declares its
//! own (`budget.daily_budget_usd`, `budget.backends`); a tenants file declares the others
//! ([`crate::tenant`]). The stores each level's totals under the key [`LevelBudget::key`]
//! builds, and reserves on all of a request's levels at once (`genroute_store`); decisions
//! read them as [`crate::levels::LevelFigures`]. This module is pure: names and periods only.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::num::Fixed;

/// Whose budget a level is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LevelKind {
    /// The policy's own further budgets (daily, per backend), for every caller.
    Global,
    /// An organisation.
    Org,
    /// A team.
    Team,
    /// An API key.
    Key,
}

impl LevelKind {
    /// `global`, `org`, `team` or `key`.
    pub fn name(self) -> &'static str {
        match self {
            LevelKind::Global => "global",
            LevelKind::Org => "org",
            LevelKind::Team => "team",
            LevelKind::Key => "key",
        }
    }
}

/// The period a budget resets on (calendar, UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// A calendar month.
    Month,
    /// A calendar day.
    Day,
}

/// One budget that applies to a request: a level, optionally one backend, a period, an amount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelBudget {
    /// Whose.
    pub kind: LevelKind,
    /// Its id, e.g. `growth` (empty for [`LevelKind::Global`]).
    pub id: String,
    /// `Some("pixverse")` for a cap on one backend.
    pub backend: Option<String>,
    /// Month or day.
    pub period: Period,
    /// The amount, in USD.
    pub budget: Fixed,
}

impl LevelBudget {
    /// The storage name, without the period: `org:acme`, `team:growth`, `key:growth-web`,
    /// `team:growth/backend:pixverse`; the policy's own are `all` and `backend:pixverse`. Ids
    /// cannot hold `:`, `/`, `@` or spaces, so names are unambiguous.
    pub fn name(&self) -> String {
        let owner = match self.kind {
            LevelKind::Global => None,
            k => Some(format!("{}:{}", k.name(), self.id)),
        };
        match (owner, &self.backend) {
            (None, None) => "all".into(),
            (None, Some(b)) => format!("backend:{b}"),
            (Some(o), None) => o,
            (Some(o), Some(b)) => format!("{o}/backend:{b}"),
        }
    }

    /// For people: "team `growth`", "team `growth` on `pixverse`", "key `growth-web`
    /// (daily)", "the daily budget", "the cap on `pixverse`".
    pub fn describe(&self) -> String {
        let mut s = match (self.kind, &self.backend) {
            (LevelKind::Global, None) => "the policy's budget".to_string(),
            (LevelKind::Global, Some(b)) => format!("the cap on `{b}`"),
            (k, None) => format!("{} `{}`", k.name(), self.id),
            (k, Some(b)) => format!("{} `{}` on `{b}`", k.name(), self.id),
        };
        if self.period == Period::Day {
            s.push_str(" (daily)");
        }
        s
    }

    /// The ledger key of this level in the period of `now` (`team:growth@2026-12`).
    pub fn key(&self, now: DateTime<Utc>) -> String {
        level_key(&self.name(), self.period == Period::Day, now)
    }

    /// Whether a spend on `backend` counts against it.
    pub fn applies_to(&self, backend: &str) -> bool {
        self.backend.as_deref().is_none_or(|b| b == backend)
    }
}

/// One budget level as a decision sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelFigures {
    /// Whose.
    pub kind: LevelKind,
    /// For people: "team `growth`", "team `growth` on `pixverse` (daily)".
    pub label: String,
    /// The backend it caps, by index; `None`: every backend.
    pub backend: Option<u16>,
    /// Daily rather than monthly.
    pub daily: bool,
    /// Its budget for the period.
    pub budget: Fixed,
    /// Spent or reserved in the period.
    pub counted: Fixed,
}

impl LevelFigures {
    /// Budget minus what is counted (never below zero).
    pub fn remaining(&self) -> Fixed {
        remaining(self.budget, self.counted)
    }

    /// Whether `cost` more fits: `counted + cost <= budget`.
    pub fn fits(&self, cost: Fixed) -> bool {
        self.counted
            .checked_add(cost)
            .is_some_and(|total| total <= self.budget)
    }

    /// Whether it caps backend `b`.
    pub fn applies_to(&self, b: u16) -> bool {
        self.backend.is_none_or(|x| x == b)
    }
}

/// The storage key of level `name` (`team:growth`, `backend:veo`, `key:web/backend:veo`) for
/// the month of `now` (`team:growth@2026-12`), or its day when `daily` (`…@2026-12-07`).
pub fn level_key(name: &str, daily: bool, now: DateTime<Utc>) -> String {
    if daily {
        format!("{name}@{}", now.format("%Y-%m-%d"))
    } else {
        format!("{name}@{}", now.format("%Y-%m"))
    }
}

/// What is left of `budget` once `counted` (spent or reserved) is taken: never below zero.
/// The one place that says it, for every budget: the month's, each level's, in decisions,
/// refusals and summaries.
pub fn remaining(budget: Fixed, counted: Fixed) -> Fixed {
    budget
        .checked_sub(counted)
        .filter(|r| !r.is_negative())
        .unwrap_or(Fixed::ZERO)
}

/// The sentence that says why a budget refuses a spend, in the budget's own figures: "team
/// `growth` has $0.03 left of $50.00; veo costs $0.15". Explain (a decision) and the walk (a
/// reservation the store refused) both say it this way.
pub fn refusal(who: &str, left: Fixed, budget: Fixed, backend: &str, cost: Fixed) -> String {
    use crate::num::Usd;
    format!(
        "{who} has {} left of {}; {backend} costs {}",
        Usd(left),
        Usd(budget),
        Usd(cost)
    )
}
