//! Policy tests: `genroute test`. A test file names a policy and lists cases, each a request,
//! a state and what the decision must be. Running them is pure: the clock, spend, breakers and
//! environment come from the file, so a test means the same thing on every machine.
//!
//! ```yaml
//! policy: ../videogen.yaml            # relative to the test file
//! env: {PIXVERSE_API_KEY: test}       # the only environment the policy sees
//! now: 2026-11-10T12:00:00Z           # default time of every case
//! cases:
//!   - name: quality goes to Veo 3
//!     request: {priority: quality}
//!     state: {spend: 12.50, breakers: {veo: closed}, failures: 0}
//!     expect: {backend: veo, rule: quality_priority, model: veo-3.0-generate-preview, fallbacks: []}
//! ```
//!
//! `expect` checks only the keys it has; `backend: null` expects "none eligible", `rule: null`
//! expects the default order to decide. Coverage reports the rules that never decided a case,
//! the backends never chosen, and the clauses that were never seen both true and false.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::breaker::BreakerState;
use crate::explain::Explanation;
use crate::num::Fixed;
use crate::policy::Policy;
use crate::request::Request;
use crate::state::State;

/// A test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// The policy, relative to the test file.
    pub policy: String,
    /// Environment variables the policy sees (API keys, feature flags).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Default time of the cases (RFC 3339).
    #[serde(default)]
    pub now: Option<DateTime<Utc>>,
    /// The cases.
    pub cases: Vec<Case>,
}

/// One case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What it checks.
    pub name: String,
    /// The request JSON.
    #[serde(default)]
    pub request: serde_json::Map<String, serde_json::Value>,
    /// The live state.
    #[serde(default)]
    pub state: CaseState,
    /// The expected decision.
    pub expect: Expect,
}

/// The state of a case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseState {
    /// Month-to-date spend.
    #[serde(default)]
    pub spend: Option<Fixed>,
    /// Breaker states by backend.
    #[serde(default)]
    pub breakers: BTreeMap<String, BreakerState>,
    /// Failed attempts so far.
    #[serde(default)]
    pub failures: Option<u32>,
    /// The time of the decision.
    #[serde(default)]
    pub now: Option<DateTime<Utc>>,
}

/// What the decision must be; absent keys are not checked.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The backend (`null`: none eligible).
    #[serde(default, deserialize_with = "present")]
    pub backend: Option<Option<String>>,
    /// The deciding rule (`null`: the default order decided).
    #[serde(default, deserialize_with = "present")]
    pub rule: Option<Option<String>>,
    /// The model.
    #[serde(default, deserialize_with = "present")]
    pub model: Option<Option<String>>,
    /// The fallback order.
    #[serde(default)]
    pub fallbacks: Option<Vec<String>>,
}

/// Distinguishes a key set to `null` (`Some(None)`) from an absent key (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// The outcome of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// Case name.
    pub name: String,
    /// Whether every expectation held.
    pub passed: bool,
    /// What differed.
    pub mismatches: Vec<String>,
    /// What happened instead (for failures).
    #[serde(skip)]
    pub explanation: Option<Explanation>,
}

/// Coverage over every case run against one policy.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Coverage {
    /// Rules that decided no case.
    pub rules_never_deciding: Vec<String>,
    /// Backends chosen by no case.
    pub backends_never_chosen: Vec<String>,
    /// Clauses not seen both true and false: `rule: clause (seen: true|false|never)`.
    pub clauses_not_both_ways: Vec<String>,
    /// Rules that decided at least one case, of all rules.
    pub rules_covered: (usize, usize),
    /// Clauses seen both ways, of all clauses.
    pub clauses_covered: (usize, usize),
}

/// Tracks what cases exercised.
pub struct Tracker<'p> {
    policy: &'p Policy,
    decided: Vec<bool>,
    chosen: Vec<bool>,
    clauses: Vec<Vec<(bool, bool)>>,
}

impl<'p> Tracker<'p> {
    /// A tracker for `policy`.
    pub fn new(policy: &'p Policy) -> Tracker<'p> {
        Tracker {
            policy,
            decided: vec![false; policy.rules.len()],
            chosen: vec![false; policy.backends.len()],
            clauses: policy
                .rules
                .iter()
                .map(|r| vec![(false, false); r.condition.clauses().len()])
                .collect(),
        }
    }

    fn record(&mut self, e: &Explanation) {
        for (i, r) in e.rules.iter().enumerate() {
            if r.status == "decided" {
                self.decided[i] = true;
            }
            for (j, c) in r.clauses.iter().enumerate() {
                if let (Some(slot), Some(v)) = (self.clauses[i].get_mut(j), c.value) {
                    if v {
                        slot.0 = true;
                    } else {
                        slot.1 = true;
                    }
                }
            }
        }
        if let Some(b) = e
            .backend
            .as_deref()
            .and_then(|b| self.policy.backend_index(b))
        {
            self.chosen[b as usize] = true;
        }
    }

    /// The coverage so far.
    pub fn coverage(&self) -> Coverage {
        let p = self.policy;
        let mut not_both = Vec::new();
        let (mut both, mut total) = (0, 0);
        for (i, rule) in p.rules.iter().enumerate() {
            for (j, clause) in rule.condition.clauses().iter().enumerate() {
                total += 1;
                let (t, f) = self.clauses[i][j];
                if t && f {
                    both += 1;
                    continue;
                }
                let seen = match (t, f) {
                    (true, _) => "only true",
                    (_, true) => "only false",
                    _ => "never evaluated",
                };
                let text = rule.condition_text.get(clause.span.range()).unwrap_or("");
                not_both.push(format!("{}: `{text}` ({seen})", rule.name));
            }
        }
        Coverage {
            rules_never_deciding: p
                .rules
                .iter()
                .zip(&self.decided)
                .filter(|(_, d)| !**d)
                .map(|(r, _)| r.name.clone())
                .collect(),
            backends_never_chosen: p
                .backends
                .iter()
                .zip(&self.chosen)
                .filter(|(_, c)| !**c)
                .map(|(b, _)| b.name.clone())
                .collect(),
            clauses_not_both_ways: not_both,
            rules_covered: (self.decided.iter().filter(|d| **d).count(), p.rules.len()),
            clauses_covered: (both, total),
        }
    }
}

/// Runs one case.
pub fn run_case(
    policy: &Policy,
    file: &TestFile,
    case: &Case,
    tracker: &mut Tracker<'_>,
) -> CaseResult {
    let fail = |m: String| CaseResult {
        name: case.name.clone(),
        passed: false,
        mismatches: vec![m],
        explanation: None,
    };
    let request = match Request::from_map(policy, case.request.clone()) {
        Ok(r) => r,
        Err(e) => return fail(format!("invalid request: {e}")),
    };
    let now = case
        .state
        .now
        .or(file.now)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let mut state = State::new(policy, now)
        .with_spend(case.state.spend.unwrap_or(Fixed::ZERO))
        .with_failures(case.state.failures.unwrap_or(0));
    for (name, s) in &case.state.breakers {
        if let Err(e) = state.set_breaker(policy, name, *s) {
            return fail(format!("state.breakers: {e}"));
        }
    }
    let e = policy.explain(&request, &state);
    tracker.record(&e);
    let mut mismatches = Vec::new();
    let show = |v: &Option<String>| {
        v.as_deref()
            .map_or("null".to_string(), |s| format!("`{s}`"))
    };
    for (what, want, got) in [
        ("backend", &case.expect.backend, &e.backend),
        ("rule", &case.expect.rule, &e.rule),
        ("model", &case.expect.model, &e.model),
    ] {
        if let Some(want) = want {
            if want != got {
                mismatches.push(format!("expected {what} {}, got {}", show(want), show(got)));
            }
        }
    }
    if let Some(want) = &case.expect.fallbacks {
        if want != &e.fallbacks {
            mismatches.push(format!(
                "expected fallbacks {want:?}, got {:?}",
                e.fallbacks
            ));
        }
    }
    CaseResult {
        name: case.name.clone(),
        passed: mismatches.is_empty(),
        mismatches,
        explanation: Some(e),
    }
}
