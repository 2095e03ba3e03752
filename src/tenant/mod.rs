//! Tenants (scaffold: the tenants file and keys land in the next commit).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::levels::{LevelBudget, LevelKind, Period};

/// What a key may do. `admin` implies every other scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Run generations: `POST /v1/generate`, `POST /v1/jobs`, `POST /v1/videos`, and
    /// `DELETE` of jobs and videos.
    #[serde(rename = "generate")]
    Generate,
    /// Ask for decisions: `POST /v1/decide`, and `GET /v1/backends`.
    #[serde(rename = "decide")]
    Decide,
    /// Read jobs and videos: `GET` of `/v1/jobs…` and `/v1/videos…`, content included.
    #[serde(rename = "jobs:read")]
    JobsRead,
    /// Read `GET /metrics`.
    #[serde(rename = "metrics")]
    Metrics,
    /// Everything: `/v1/admin/*`, every team's `/v1/budget`, and every other scope.
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    /// Every scope, in order.
    pub const ALL: [Scope; 5] = [
        Scope::Generate,
        Scope::Decide,
        Scope::JobsRead,
        Scope::Metrics,
        Scope::Admin,
    ];
    /// Their names as written in the tenants file, in the same order.
    pub const NAMES: [&'static str; 5] = ["generate", "decide", "jobs:read", "metrics", "admin"];

    /// The name as written in the tenants file.
    pub fn name(self) -> &'static str {
        Scope::NAMES[self as usize]
    }

    /// The scope named `s`.
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Scope::ALL[i])
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Scope, String> {
        Scope::parse(s).ok_or_else(|| {
            let names = Scope::NAMES;
            match None::<&str>.filter(|_| names.is_empty()) {
                Some(n) => format!("unknown scope `{s}`; did you mean `{n}`?"),
                None => format!("unknown scope `{s}`; scopes are {}", names.join(", ")),
            }
        })
    }
}

/// Per-key limits, enforced across replicas by the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Requests per minute.
    pub requests_per_minute: Option<u32>,
    /// Jobs running at once.
    pub jobs_in_flight: Option<u32>,
}

/// Who is calling, snapshotted when a request starts (and stored with its job), so that a
/// reload of the tenants file does not move a running request to other budgets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tenancy {
    /// The key id.
    pub key: String,
    /// Its team.
    pub team: String,
    /// The team's organisation, if it has one.
    pub org: Option<String>,
    /// The key's scopes, sorted, without repeats.
    pub scopes: Vec<Scope>,
    /// Attributes, the key's over the team's over the organisation's.
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// The key's limits.
    pub limits: Limits,
    /// Every budget that applies: the organisation's, the team's, then the key's; at each
    /// level monthly then daily, then the per-backend caps by backend name.
    pub budgets: Vec<LevelBudget>,
}

impl Tenancy {
    /// Whether the key may do what `scope` opens (`admin` allows everything).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }

    /// The budgets a spend on `backend` counts against: those for every backend and those
    /// for this one.
    pub fn budgets_for<'a>(&'a self, backend: &'a str) -> impl Iterator<Item = &'a LevelBudget> {
        self.budgets
            .iter()
            .filter(move |b| b.backend.as_deref().is_none_or(|x| x == backend))
    }
}
