//! Tenants: organisations, teams and API keys, read from a tenants file (YAML), and who a
//! request's `Authorization: Bearer <token>` says is calling.
//!
//! ```yaml
//! orgs:
//!   acme: {budget: {monthly_usd: 500}}
//! teams:
//!   growth: {org: acme, budget: {monthly_usd: 50, backends: {pixverse: {monthly_usd: 10}}}}
//! keys:
//!   growth-web:
//!     team: growth
//!     hash: "sha256:…"          # of the whole token; the token itself is never stored
//!     scopes: [generate, decide, jobs:read]
//! ```
//!
//! [`Tenants::load`] checks the whole file and reports every problem at once, located at
//! its line and column with a help line, in the manner of the policy loader whose machinery it
//! shares ([`crate::policy::yaml`], [`crate::diag`]). Its messages follow the same conventions
//! as cedar's and ripgrep's: lowercase, what the user wrote in backticks, and a `help` that
//! says what to do, because the person reading them is an operator with the file open, and a
//! message that names the exact key and the rule it broke is fixed in one edit. Unknown keys
//! are errors with a did-you-mean, not warnings: a misspelled `revokd: true` that is silently
//! ignored would leave a key working that an operator meant to turn off.
//!
//! [`Tenants::authenticate`] turns a token into a [`Tenancy`]: the key, its team and org,
//! its scopes, limits, merged attributes and every budget level that applies. Tokens are
//! `gr_<key id>_<secret>` ([`token`]); the file holds only `sha256:` of the whole token,
//! compared in constant time. An unknown key id and a wrong secret take the same work and get
//! the same answer ([`AuthError::Unknown`]), so that the answer does not tell an attacker
//! which ids exist. [`AuthError`]'s messages never hold the token or any part of it.

pub mod load;
pub mod raw;
pub mod schema;
pub mod token;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::diag::{Diagnostic, Source};
use crate::num::Fixed;
pub use token::{Digest, Token};

/// `policies/tenants.yaml`, the commented example.
pub const EXAMPLE: &str = include_str!("../../../../policies/tenants.yaml");

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
            match crate::check::scope::did_you_mean(s, names) {
                Some(n) => format!("unknown scope `{s}`; did you mean `{n}`?"),
                None => format!(
                    "unknown scope `{s}`; scopes are {}",
                    crate::policy::read::ticks(&names)
                ),
            }
        })
    }
}

/// Why a token was refused. Every one is a 401. The messages never hold the token or any part
/// of its secret (only a revoked key's id, which is no secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header, or an empty token.
    #[error("missing API key: send it as `Authorization: Bearer <key>`")]
    Missing,
    /// Not `gr_<key id>_<secret>`.
    #[error("malformed API key: a genroute key looks like `gr_<key id>_<secret>`; send it whole, as `Authorization: Bearer <key>`")]
    Malformed,
    /// No key has this id, or the secret is wrong (the two are not told apart).
    #[error("unknown API key: check that it was copied whole, or ask an operator for a new one (`genroute keys create`)")]
    Unknown,
    /// The key is marked `revoked: true` (and the secret is right).
    #[error("revoked API key `{key}`: ask an operator for a new one (`genroute keys create`)")]
    Revoked {
        /// The key's id.
        key: String,
    },
}

impl AuthError {
    /// A stable snake_case name for error bodies and metrics: `missing_key`,
    /// `malformed_key`, `unknown_key`, `revoked_key`.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing_key",
            AuthError::Malformed => "malformed_key",
            AuthError::Unknown => "unknown_key",
            AuthError::Revoked { .. } => "revoked_key",
        }
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

pub use crate::levels::{LevelBudget, LevelKind, Period};

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

/// Caps in USD per period; `None` is no cap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    /// Per calendar month.
    pub monthly_usd: Option<Fixed>,
    /// Per calendar day.
    pub daily_usd: Option<Fixed>,
}

/// `budget:` of an org, team or key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BudgetDef {
    /// On every backend together.
    pub total: Caps,
    /// On one backend, by the policy's backend name.
    pub backends: BTreeMap<String, Caps>,
}

impl BudgetDef {
    /// The level budgets this defines for level `kind` `id`, in [`Tenancy::budgets`]' order.
    pub fn levels(&self, kind: LevelKind, id: &str) -> Vec<LevelBudget> {
        let mut out = Vec::new();
        let caps = std::iter::once((None, &self.total))
            .chain(self.backends.iter().map(|(b, c)| (Some(b), c)));
        for (backend, c) in caps {
            for (period, amount) in [(Period::Month, c.monthly_usd), (Period::Day, c.daily_usd)] {
                if let Some(budget) = amount {
                    out.push(LevelBudget {
                        kind,
                        id: id.to_string(),
                        backend: backend.cloned(),
                        period,
                        budget,
                    });
                }
            }
        }
        out
    }
}

/// An organisation.
#[derive(Clone, Debug, PartialEq)]
pub struct OrgDef {
    /// Its id.
    pub id: String,
    /// Its budget.
    pub budget: BudgetDef,
    /// Its attributes.
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// A team.
#[derive(Clone, Debug, PartialEq)]
pub struct TeamDef {
    /// Its id.
    pub id: String,
    /// Its organisation.
    pub org: Option<String>,
    /// Its budget.
    pub budget: BudgetDef,
    /// Its attributes.
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// An API key. It holds the token's digest, never the token.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyDef {
    /// Its id.
    pub id: String,
    /// Its team.
    pub team: String,
    /// SHA-256 of the whole token.
    pub hash: Digest,
    /// Its scopes, sorted, without repeats.
    pub scopes: Vec<Scope>,
    /// Its own budget.
    pub budget: BudgetDef,
    /// Its limits.
    pub limits: Limits,
    /// Whether it is revoked.
    pub revoked: bool,
    /// Its attributes.
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// A loaded tenants file. Immutable; share it in an `Arc` and swap it whole on reload.
pub struct Tenants {
    source: Source,
    orgs: BTreeMap<String, OrgDef>,
    teams: BTreeMap<String, TeamDef>,
    keys: HashMap<String, KeyDef>,
    /// Each key's tenancy, made at load so that authenticating is a lookup, a hash and a
    /// clone.
    tenancies: HashMap<String, Tenancy>,
    /// Every backend named under a `budget.backends`, where, and by whom.
    backend_refs: Vec<load::BackendRef>,
}

impl fmt::Debug for Tenants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenants")
            .field("file", &self.source.name)
            .field("orgs", &self.orgs.len())
            .field("teams", &self.teams.len())
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// The largest tenants file accepted, in bytes.
pub const MAX_TENANTS_BYTES: usize = 4 * 1024 * 1024;

/// A fixed digest that unknown key ids are compared against, so that they cost the same
/// work as a wrong secret. No token hashes to it that anyone knows of.
const DUMMY: Digest = Digest([0x5a; 32]);

impl Tenants {
    /// Reads and loads a tenants file. To render the diagnostics with the file's lines, read
    /// the file into a [`Source`] and call [`Tenants::from_source`], which gives the same
    /// diagnostics. An unreadable file is one diagnostic with code `unreadable`.
    pub fn load(path: &Path) -> Result<Tenants, Vec<Diagnostic>> {
        let text = read(path)?;
        Tenants::from_source(&Source::new(path.display().to_string(), text))
    }

    /// Loads tenants from YAML text; `name` is the file name diagnostics show.
    pub fn from_yaml(name: &str, text: &str) -> Result<Tenants, Vec<Diagnostic>> {
        Tenants::from_source(&Source::new(name, text))
    }

    /// Loads tenants from a source. The diagnostics are located (line and column) in it.
    pub fn from_source(source: &Source) -> Result<Tenants, Vec<Diagnostic>> {
        load::load(source)
    }

    /// The file, as loaded (to render diagnostics of [`Tenants::check_backends`]).
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Verifies a bearer token (surrounding whitespace ignored), in constant time with
    /// respect to the secret, and with the same work whether or not the key id exists.
    pub fn authenticate(&self, token: &str) -> Result<Tenancy, AuthError> {
        let token = token.trim_ascii();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let Some(token) = Token::parse(token) else {
            return Err(AuthError::Malformed);
        };
        let digest = token.digest();
        let key = self.keys.get(token.id());
        let expected = key.map_or(&DUMMY, |k| &k.hash);
        let matches = std::hint::black_box(digest.ct_eq(expected));
        match key {
            Some(k) if matches && k.revoked => Err(AuthError::Revoked { key: k.id.clone() }),
            Some(k) if matches => self.tenancies.get(&k.id).cloned().ok_or(AuthError::Unknown),
            _ => Err(AuthError::Unknown),
        }
    }

    /// A key by id.
    pub fn key(&self, id: &str) -> Option<&KeyDef> {
        self.keys.get(id)
    }

    /// Key ids, sorted.
    pub fn key_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }

    /// A team by id.
    pub fn team(&self, id: &str) -> Option<&TeamDef> {
        self.teams.get(id)
    }

    /// Team ids, sorted (a bounded label set for metrics).
    pub fn teams(&self) -> impl Iterator<Item = &str> {
        self.teams.keys().map(String::as_str)
    }

    /// An organisation by id.
    pub fn org(&self, id: &str) -> Option<&OrgDef> {
        self.orgs.get(id)
    }

    /// Organisation ids, sorted.
    pub fn orgs(&self) -> impl Iterator<Item = &str> {
        self.orgs.keys().map(String::as_str)
    }

    /// The tenancy of key `key_id` as if it had authenticated, revoked or not (for
    /// `budget show --key`).
    pub fn tenancy_of(&self, key_id: &str) -> Option<Tenancy> {
        self.tenancies.get(key_id).cloned()
    }

    /// The budgets that bind a team as a whole: its organisation's, then its own (for
    /// `budget show --team`). Its keys' own budgets are not included.
    pub fn team_budgets(&self, team: &str) -> Option<Vec<LevelBudget>> {
        let t = self.teams.get(team)?;
        let mut out = Vec::new();
        if let Some(o) = t.org.as_ref().and_then(|o| self.orgs.get(o)) {
            out.extend(o.budget.levels(LevelKind::Org, &o.id));
        }
        out.extend(t.budget.levels(LevelKind::Team, &t.id));
        Some(out)
    }

    /// Every backend named under a `budget.backends`, for checking against the policy.
    pub fn backend_names(&self) -> BTreeSet<String> {
        self.backend_refs
            .iter()
            .map(|r| r.backend.clone())
            .collect()
    }

    /// An error for every `budget.backends` entry that names none of `backends` (the
    /// policy's backend names), located in [`Tenants::source`], with a did-you-mean. `serve`
    /// refuses a tenants file that has any: a cap on a backend that does not exist caps
    /// nothing.
    pub fn check_backends<'a>(
        &self,
        backends: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Diagnostic> {
        load::check_backends(&self.source, &self.backend_refs, backends)
    }
}

fn read(path: &Path) -> Result<String, Vec<Diagnostic>> {
    use std::io::Read as _;
    let unreadable = |e: String| {
        vec![Diagnostic::error(
            "unreadable",
            format!("cannot read tenants file `{}`: {e}", path.display()),
        )
        .help("check the path and its permissions")]
    };
    let file = std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
    // Bounded: a file past the limit is refused without reading all of it.
    let mut bytes = Vec::new();
    file.take(MAX_TENANTS_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(e.to_string()))?;
    if bytes.len() > MAX_TENANTS_BYTES {
        return Err(vec![load::too_large(&path.display().to_string())]);
    }
    String::from_utf8(bytes).map_err(|_| unreadable("it is not UTF-8 text".into()))
}
