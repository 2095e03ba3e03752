//! Tenants file text → validated [`Tenants`], with every problem reported at once.
//!
//! The policy loader's machinery does the reading: [`crate::policy::yaml`] builds the located
//! tree (and bounds nesting before serde_yaml sees the text), and
//! `crate::policy::read::deserialize_yaml` and `crate::policy::read::unknown_key` turn
//! serde's errors and ignored keys into located diagnostics. What is here is the meaning:
//! ids that follow the rule, references that resolve, amounts that are not negative, scopes
//! and limits that exist.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_aux::serde_introspection::serde_introspect;

use super::raw::{RawBudget, RawCaps, RawKey, RawLimits, RawOrg, RawTeam, RawTenants};
use super::{
    BudgetDef, Caps, Digest, KeyDef, LevelKind, Limits, OrgDef, Scope, TeamDef, Tenancy, Tenants,
    MAX_TENANTS_BYTES,
};
use crate::check::scope::did_you_mean;
use crate::diag::{Diagnostic, Source};
use crate::num::Fixed;
use crate::policy::read::{deserialize_yaml, is_identifier, ticks, unknown_key};
use crate::policy::yaml::{self, Node, Range, Seg};

/// Where the help for a wrong value points.
const REFERENCE: &str = "\"Tenants and API keys\" in README.md";

/// What every id must be, for help lines.
const ID_RULE: &str = "an id is 1 to 63 lowercase letters, digits and `-`, starting with a letter or digit (`^[a-z0-9][a-z0-9-]{0,62}$`), because ids are part of storage keys and of tokens";

/// Attribute names that would hide the tenancy's own fields (`tenant.team`, ...).
const RESERVED_ATTRIBUTES: [&str; 3] = ["key", "team", "org"];

/// A backend named under some `budget.backends`.
#[derive(Debug, Clone)]
pub(crate) struct BackendRef {
    /// The backend name as written.
    pub backend: String,
    /// Whose budget: "team `growth`".
    pub owner: String,
    /// The key's place in the file.
    pub at: Option<Range>,
}

/// Whether `s` is a valid org, team or key id: `^[a-z0-9][a-z0-9-]{0,62}$`.
pub fn is_id(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && matches!(b[0], b'a'..=b'z' | b'0'..=b'9')
        && b.iter()
            .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'-'))
}

/// The diagnostic for a file over [`MAX_TENANTS_BYTES`].
pub(crate) fn too_large(name: &str) -> Diagnostic {
    Diagnostic::error(
        "too-large",
        format!("tenants file `{name}` is larger than {MAX_TENANTS_BYTES} bytes"),
    )
    .help("remove unused keys (revoked keys can go once their ids are retired), or split the tenants across services")
}

/// Loads and checks a tenants file. On failure, every error found, located in `source`.
pub(crate) fn load(source: &Source) -> Result<Tenants, Vec<Diagnostic>> {
    let mut cx = Loader {
        source,
        tree: None,
        diags: Vec::new(),
        backend_refs: Vec::new(),
    };
    let tenants = cx.run();
    let mut diags: Vec<Diagnostic> = cx.diags.into_iter().map(|d| source.locate(d)).collect();
    diags.sort_by_key(|d| d.range.as_ref().map_or(usize::MAX, |r| r.start));
    match tenants {
        Some(t) if diags.is_empty() => Ok(t),
        _ => Err(diags),
    }
}

/// See [`Tenants::check_backends`].
pub(crate) fn check_backends<'a>(
    source: &Source,
    refs: &[BackendRef],
    backends: impl IntoIterator<Item = &'a str>,
) -> Vec<Diagnostic> {
    let known: BTreeSet<&str> = backends.into_iter().collect();
    let mut out = Vec::new();
    for r in refs {
        if known.contains(r.backend.as_str()) {
            continue;
        }
        let help = match did_you_mean(&r.backend, known.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None if known.is_empty() => "the policy has no backends".to_string(),
            None => format!(
                "the policy's backends are {}",
                ticks(&known.iter().copied().collect::<Vec<_>>())
            ),
        };
        let mut d = Diagnostic::error(
            "unknown-backend",
            format!(
                "the budget of {} caps backend `{}`, which the policy does not have",
                r.owner, r.backend
            ),
        )
        .help(help);
        if let Some(at) = &r.at {
            d = d.at(at.clone(), "not a backend of the policy");
        }
        out.push(source.locate(d));
    }
    out
}

struct Loader<'s> {
    source: &'s Source,
    tree: Option<Node>,
    diags: Vec<Diagnostic>,
    backend_refs: Vec<BackendRef>,
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

/// `path` and then `more`.
fn join(path: &[Seg], more: &[&str]) -> Vec<Seg> {
    let mut p = path.to_vec();
    p.extend(more.iter().map(|k| key(k)));
    p
}

impl Loader<'_> {
    fn run(&mut self) -> Option<Tenants> {
        let text = self.source.text.as_str();
        if text.len() > MAX_TENANTS_BYTES {
            self.diags.push(too_large(&self.source.name));
            return None;
        }
        // The located tree first: it bounds nesting before serde_yaml reads the text.
        self.tree = match yaml::parse_for_loading(text) {
            Ok(tree) => tree,
            Err(d) => {
                self.diags.push(*d);
                return None;
            }
        };
        if self.tree.is_none() && is_blank(text) {
            self.diags.push(
                Diagnostic::error(
                    "empty",
                    format!("tenants file `{}` is empty", self.source.name),
                )
                .help("declare `teams:` and `keys:`; policies/tenants.yaml is a commented example"),
            );
            return None;
        }
        if let Some(tree) = &self.tree {
            // serde_yaml keeps the last of two equal keys in a map: a second `growth-web`
            // would silently replace the first key.
            yaml::duplicate_keys(tree, &mut self.diags, self.source);
        }
        let raw: RawTenants = match deserialize_yaml(text, REFERENCE) {
            Ok((raw, unknown)) => {
                for path in unknown {
                    if let Some(d) = unknown_key(&path, known_keys(&path), self.tree.as_ref()) {
                        self.diags.push(d);
                    }
                }
                raw
            }
            Err(d) => {
                self.diags.push(*d);
                return None;
            }
        };
        let orgs: BTreeMap<String, OrgDef> = raw
            .orgs
            .iter()
            .map(|(id, o)| (id.clone(), self.org(id, o)))
            .collect();
        let teams: BTreeMap<String, TeamDef> = raw
            .teams
            .iter()
            .map(|(id, t)| (id.clone(), self.team(id, t, &orgs)))
            .collect();
        let mut hashes: HashMap<[u8; 32], &str> = HashMap::new();
        let mut keys = HashMap::with_capacity(raw.keys.len());
        for (id, k) in &raw.keys {
            if let Some(def) = self.key(id, k, &teams, &mut hashes) {
                keys.insert(id.clone(), def);
            }
        }
        if !self.diags.is_empty() {
            return None;
        }
        let tenancies = keys
            .values()
            .map(|k| (k.id.clone(), tenancy(k, &teams, &orgs)))
            .collect();
        Some(Tenants {
            source: self.source.clone(),
            orgs,
            teams,
            keys,
            tenancies,
            backend_refs: std::mem::take(&mut self.backend_refs),
        })
    }

    fn range_of(&self, path: &[Seg]) -> Option<Range> {
        self.tree.as_ref()?.get(path).map(|n| n.range.clone())
    }

    fn key_range(&self, path: &[Seg]) -> Option<Range> {
        self.tree.as_ref()?.key_at(path).map(|n| n.range.clone())
    }

    /// An error at the value at `path` (or, with `at_key`, at its key).
    fn error(
        &mut self,
        path: &[Seg],
        at_key: bool,
        code: &'static str,
        message: String,
        label: &str,
        help: String,
    ) {
        let range = if at_key {
            self.key_range(path)
        } else {
            self.range_of(path)
        };
        let mut d = Diagnostic::error(code, message).help(help);
        if let Some(r) = range {
            d = d.at(r, label);
        }
        self.diags.push(d);
    }

    /// Checks an id of `what` (organisation, team, key) under `section`.
    fn id(&mut self, section: &str, what: &str, id: &str) {
        if !is_id(id) {
            self.error(
                &[key(section), key(id)],
                true,
                "invalid-id",
                format!("`{id}` is not a valid {what} id"),
                "invalid id",
                ID_RULE.to_string(),
            );
        }
    }

    fn org(&mut self, id: &str, o: &RawOrg) -> OrgDef {
        self.id("orgs", "organisation", id);
        let at = [key("orgs"), key(id)];
        let owner = format!("organisation `{id}`");
        OrgDef {
            id: id.to_string(),
            budget: self.budget(&at, &owner, o.budget.as_ref()),
            attributes: self.attributes(&at, &owner, &o.attributes),
        }
    }

    fn team(&mut self, id: &str, t: &RawTeam, orgs: &BTreeMap<String, OrgDef>) -> TeamDef {
        self.id("teams", "team", id);
        let at = [key("teams"), key(id)];
        let owner = format!("team `{id}`");
        if let Some(org) = &t.org {
            if !orgs.contains_key(org) {
                let help = match did_you_mean(org, orgs.keys().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => {
                        "declare it under `orgs:`, or remove `org:` (a team needs no organisation)"
                            .to_string()
                    }
                };
                self.error(
                    &join(&at, &["org"]),
                    false,
                    "unknown-org",
                    format!("team `{id}` belongs to unknown organisation `{org}`"),
                    "no such organisation",
                    help,
                );
            }
        }
        TeamDef {
            id: id.to_string(),
            org: t.org.clone(),
            budget: self.budget(&at, &owner, t.budget.as_ref()),
            attributes: self.attributes(&at, &owner, &t.attributes),
        }
    }

    fn key<'k>(
        &mut self,
        id: &'k str,
        k: &RawKey,
        teams: &BTreeMap<String, TeamDef>,
        hashes: &mut HashMap<[u8; 32], &'k str>,
    ) -> Option<KeyDef> {
        self.id("keys", "key", id);
        let at = [key("keys"), key(id)];
        let owner = format!("key `{id}`");
        if !teams.contains_key(&k.team) {
            let help = match did_you_mean(&k.team, teams.keys().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "every key belongs to a team: declare it under `teams:`".to_string(),
            };
            self.error(
                &join(&at, &["team"]),
                false,
                "unknown-team",
                format!("key `{id}` belongs to unknown team `{}`", k.team),
                "no such team",
                help,
            );
        }
        let hash = self.hash(id, &k.hash);
        if let Some(h) = hash {
            if let Some(first) = hashes.insert(h.0, id) {
                self.error(
                    &join(&at, &["hash"]),
                    false,
                    "duplicate-hash",
                    format!("keys `{first}` and `{id}` have the same hash"),
                    "same hash as another key",
                    "a token names its key, so a hash fits one key only: give each key the hash `genroute keys create` printed for it".to_string(),
                );
            }
        }
        let scopes = self.scopes(id, &k.scopes);
        let limits = self.limits(id, k.limits.as_ref());
        let budget = self.budget(&at, &owner, k.budget.as_ref());
        let attributes = self.attributes(&at, &owner, &k.attributes);
        Some(KeyDef {
            id: id.to_string(),
            team: k.team.clone(),
            hash: hash?,
            scopes,
            budget,
            limits,
            revoked: k.revoked,
            attributes,
        })
    }

    fn hash(&mut self, id: &str, text: &str) -> Option<Digest> {
        if let Some(d) = Digest::parse(text) {
            return Some(d);
        }
        let path = [key("keys"), key(id), key("hash")];
        // The value is never repeated in the message: it may be a secret.
        if text.starts_with(super::token::PREFIX) {
            // Located by line and column only, with no excerpt: rendering the line would copy
            // the token into a terminal or a CI log.
            let mut d = Diagnostic::error(
                "token-in-file",
                format!("the `hash` of key `{id}` is a token, not the hash of one"),
            )
            .help("the file must never hold a token: treat this one as leaked, make a new key with `genroute keys create`, and paste the `hash:` it prints");
            if let Some(r) = self.range_of(&path) {
                let (line, column) = self.source.line_col(r.start);
                d.message = format!("{} (`{}:{line}:{column}`)", d.message, self.source.name);
                d.line = Some(line);
                d.column = Some(column);
            }
            self.diags.push(d);
        } else {
            self.error(
                &path,
                false,
                "invalid-hash",
                format!("the `hash` of key `{id}` is not `sha256:` followed by 64 lowercase hex digits"),
                "not a hash",
                "paste the `hash:` line `genroute keys create` printed, or compute it from the token with `genroute keys hash`".to_string(),
            );
        }
        None
    }

    fn scopes(&mut self, id: &str, names: &[String]) -> Vec<Scope> {
        let path = [key("keys"), key(id), key("scopes")];
        if names.is_empty() {
            self.error(
                &path,
                false,
                "no-scopes",
                format!("key `{id}` has no scopes"),
                "empty",
                format!(
                    "list what it may do, e.g. `scopes: [generate, decide, jobs:read]`; scopes are {}",
                    ticks(&Scope::NAMES)
                ),
            );
        }
        let mut scopes = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let mut p = path.to_vec();
            p.push(Seg::Index(i));
            match Scope::parse(name) {
                Some(s) if scopes.contains(&s) => self.error(
                    &p,
                    false,
                    "duplicate-scope",
                    format!("key `{id}` lists scope `{name}` twice"),
                    "listed before",
                    "remove one".to_string(),
                ),
                Some(s) => scopes.push(s),
                None => {
                    let help = match did_you_mean(name, Scope::NAMES) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!(
                            "scopes are {} (`admin` implies all the others)",
                            ticks(&Scope::NAMES)
                        ),
                    };
                    self.error(
                        &p,
                        false,
                        "unknown-scope",
                        format!("unknown scope `{name}`"),
                        "not a scope",
                        help,
                    );
                }
            }
        }
        scopes.sort_unstable();
        scopes
    }

    fn limits(&mut self, id: &str, l: Option<&RawLimits>) -> Limits {
        let Some(l) = l else {
            return Limits::default();
        };
        for (k, v) in [
            ("requests_per_minute", l.requests_per_minute),
            ("jobs_in_flight", l.jobs_in_flight),
        ] {
            if v == Some(0) {
                self.error(
                    &[key("keys"), key(id), key("limits"), key(k)],
                    false,
                    "out-of-range",
                    format!("`{k}` of key `{id}` is 0; it must be at least 1"),
                    "zero",
                    "remove it for no limit, or revoke the key to stop it".to_string(),
                );
            }
        }
        Limits {
            requests_per_minute: l.requests_per_minute,
            jobs_in_flight: l.jobs_in_flight,
        }
    }

    /// `budget:` under `at` (an org, team or key).
    fn budget(&mut self, at: &[Seg], owner: &str, b: Option<&RawBudget>) -> BudgetDef {
        let Some(b) = b else {
            return BudgetDef::default();
        };
        let path = join(at, &["budget"]);
        let total = self.caps(&path, owner, b.monthly_usd, b.daily_usd);
        let mut backends = BTreeMap::new();
        for (name, c) in &b.backends {
            let p = join(&path, &["backends", name.as_str()]);
            let RawCaps {
                monthly_usd,
                daily_usd,
            } = c;
            if monthly_usd.is_none() && daily_usd.is_none() {
                self.error(
                    &p,
                    true,
                    "empty-cap",
                    format!("the cap of {owner} on `{name}` sets no amount"),
                    "no amount",
                    "give `monthly_usd`, `daily_usd` or both, e.g. `{monthly_usd: 10.00}`, or remove the entry".to_string(),
                );
            }
            let caps = self.caps(&p, owner, *monthly_usd, *daily_usd);
            self.backend_refs.push(BackendRef {
                backend: name.clone(),
                owner: owner.to_string(),
                at: self.key_range(&p),
            });
            backends.insert(name.clone(), caps);
        }
        BudgetDef { total, backends }
    }

    fn caps(
        &mut self,
        at: &[Seg],
        owner: &str,
        monthly: Option<Fixed>,
        daily: Option<Fixed>,
    ) -> Caps {
        for (k, v) in [("monthly_usd", monthly), ("daily_usd", daily)] {
            if let Some(v) = v.filter(|v| v.is_negative()) {
                self.error(
                    &join(at, &[k]),
                    false,
                    "out-of-range",
                    format!("`{k}` of {owner} is {v}; it must not be negative"),
                    "negative",
                    "amounts are in USD and at least 0 (0 allows no spend); remove the key for no cap".to_string(),
                );
            }
        }
        Caps {
            monthly_usd: monthly,
            daily_usd: daily,
        }
    }

    fn attributes(
        &mut self,
        at: &[Seg],
        owner: &str,
        raw: &BTreeMap<String, serde_yaml::Value>,
    ) -> BTreeMap<String, serde_json::Value> {
        let mut out = BTreeMap::new();
        for (name, v) in raw {
            let p = join(at, &["attributes", name.as_str()]);
            if !is_identifier(name) {
                self.error(
                    &p,
                    true,
                    "invalid-name",
                    format!("`{name}` is not a valid attribute name"),
                    "invalid name",
                    "use letters, digits and `_`, starting with a letter or `_`: conditions read it as `tenant.<name>`".to_string(),
                );
                continue;
            }
            if RESERVED_ATTRIBUTES.contains(&name.as_str()) {
                self.error(
                    &p,
                    true,
                    "reserved-attribute",
                    format!("attribute `{name}` would hide the tenancy's own `{name}`"),
                    "reserved",
                    format!(
                        "{} are the key's, team's and organisation's ids; choose another name",
                        ticks(&RESERVED_ATTRIBUTES)
                    ),
                );
                continue;
            }
            let value = match v {
                serde_yaml::Value::Bool(b) => Some(serde_json::Value::Bool(*b)),
                serde_yaml::Value::String(s) => Some(serde_json::Value::String(s.clone())),
                serde_yaml::Value::Number(n) => {
                    if let Some(i) = n.as_i64() {
                        Some(i.into())
                    } else if let Some(u) = n.as_u64() {
                        Some(u.into())
                    } else {
                        n.as_f64()
                            .and_then(serde_json::Number::from_f64)
                            .map(serde_json::Value::Number)
                    }
                }
                _ => None,
            };
            match value {
                Some(v) => {
                    out.insert(name.clone(), v);
                }
                None => self.error(
                    &p,
                    false,
                    "invalid-value",
                    format!("attribute `{name}` of {owner} is not a string, number or bool"),
                    "not a scalar",
                    "attributes are scalar values, e.g. `tier: pro`; quote text that YAML would read otherwise".to_string(),
                ),
            }
        }
        out
    }
}

/// The tenancy of a key whose team (and org) exist.
fn tenancy(
    k: &KeyDef,
    teams: &BTreeMap<String, TeamDef>,
    orgs: &BTreeMap<String, OrgDef>,
) -> Tenancy {
    let team = teams.get(&k.team);
    let org = team.and_then(|t| t.org.as_ref()).and_then(|o| orgs.get(o));
    let mut attributes = BTreeMap::new();
    let mut budgets = Vec::new();
    if let Some(o) = org {
        attributes.extend(o.attributes.clone());
        budgets.extend(o.budget.levels(LevelKind::Org, &o.id));
    }
    if let Some(t) = team {
        attributes.extend(t.attributes.clone());
        budgets.extend(t.budget.levels(LevelKind::Team, &t.id));
    }
    attributes.extend(k.attributes.clone());
    budgets.extend(k.budget.levels(LevelKind::Key, &k.id));
    Tenancy {
        key: k.id.clone(),
        team: k.team.clone(),
        org: org.map(|o| o.id.clone()),
        scopes: k.scopes.clone(),
        attributes,
        limits: k.limits,
        budgets,
    }
}

/// Whether the text holds nothing but blank lines and comments.
fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    })
}

/// The keys serde accepts at the mapping that holds `path`'s last key, from the serde types.
fn known_keys(path: &[Seg]) -> &'static [&'static str] {
    match yaml::parent_shape(path).as_slice() {
        [] => serde_introspect::<RawTenants>(),
        ["orgs", _] => serde_introspect::<RawOrg>(),
        ["teams", _] => serde_introspect::<RawTeam>(),
        ["keys", _] => serde_introspect::<RawKey>(),
        [_, _, "budget"] => serde_introspect::<RawBudget>(),
        [_, _, "budget", "backends", _] => serde_introspect::<RawCaps>(),
        ["keys", _, "limits"] => serde_introspect::<RawLimits>(),
        _ => &[],
    }
}
