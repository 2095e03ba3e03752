//! The sentences that say why a backend cannot serve a request ("circuit breaker is open",
//! "team `growth` has $0.03 left of $50.00; ..."), and the reading of them back into why no
//! backend could serve it ([`Unserved`]).
//!
//! Why together: [`Explanation::unserved`] classifies by the wording these functions write
//! (every budget refusal ends with [`BUDGET_REASON`]), so a sentence and the test that
//! recognises it change together. Planning a request pinned to one backend (in the exec crate)
//! words its refusal with [`reasons`] too.

use crate::decide::Ineligible;
use crate::expr::EnumId;
use crate::num::Fixed;
use crate::policy::{Backend, Policy};
use crate::state::State;

use super::Explanation;

/// Why `b` cannot serve the request, one sentence per flag in `why`, each naming the setting
/// or figure that refuses it (`priority`: the request's, to name the flag it lacks).
pub fn reasons(
    b: &Backend,
    why: Ineligible,
    cost: Fixed,
    policy: &Policy,
    state: &State,
    priority: Option<u16>,
) -> Vec<String> {
    let mut out = Vec::new();
    if why.has(Ineligible::DISABLED) {
        out.push(match &b.enabled_by {
            Some(var) => format!("disabled by environment variable {var}"),
            None => "disabled (enabled: false)".to_string(),
        });
    }
    if why.has(Ineligible::KEY_MISSING) {
        let var = b.key_missing.as_deref().unwrap_or("its key variable");
        out.push(format!("{var} is not set (api.key_env)"));
    }
    if why.has(Ineligible::BREAKER_OPEN) {
        out.push("circuit breaker is open".to_string());
    }
    if why.has(Ineligible::PRIORITY) {
        let p = priority.unwrap_or(0);
        let flag = ["priority_high", "priority_balanced", "priority_speed"][usize::from(p.min(2))];
        let name = policy
            .enum_values(EnumId::PRIORITY)
            .get(p as usize)
            .cloned()
            .unwrap_or_default();
        out.push(format!(
            "selection_criteria.{flag} is false, so it does not serve '{name}' requests"
        ));
    }
    if why.has(Ineligible::BUDGET) {
        out.push(budget_refusal(b, cost, policy, state));
    }
    if why.has(Ineligible::QUALITY) {
        out.push(format!(
            "quality {} is below the request's quality_threshold",
            b.quality
        ));
    }
    out
}

/// What every budget refusal among a backend's reasons ends with (the server tells a request
/// that only money stops from one that no backend serves by it).
pub const BUDGET_REASON: &str = "(selection_criteria.budget_available)";

/// Which budget refuses `cost` on `b`, in its own figures: the monthly budget, or the
/// tightest level that caps `b` ("team `growth` has $0.03 left of $50.00; veo costs $0.15").
fn budget_refusal(b: &Backend, cost: Fixed, policy: &Policy, state: &State) -> String {
    use crate::levels::{refusal, remaining};
    let fits_month = state
        .spend
        .checked_add(cost)
        .is_some_and(|t| t <= policy.budget.monthly);
    let index = policy.backend_index(&b.name);
    // Of the levels that refuse, the tightest (the least left) says the most.
    let level = index.and_then(|i| {
        state
            .levels
            .iter()
            .filter(|l| l.applies_to(i) && !l.fits(cost))
            .min_by_key(|l| l.remaining())
    });
    let monthly = policy.budget.monthly;
    let why = match (fits_month, level) {
        (false, _) => refusal(
            "the monthly budget",
            remaining(monthly, state.spend),
            monthly,
            &b.name,
            cost,
        ),
        (true, Some(l)) => refusal(&l.label, l.remaining(), l.budget, &b.name, cost),
        (true, None) => format!(
            "cost {} does not fit the remaining budget",
            crate::num::Usd(cost)
        ),
    };
    format!("{why} {BUDGET_REASON}")
}

/// Why no backend could serve a request, from an explanation's reasons: what a front door
/// answers (the service maps it to 402, 503 or 409; the Python package to its exceptions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unserved {
    /// The budget (at some level) is what stops every backend.
    Budget,
    /// A backend is out of service (breaker open, key missing, disabled): retry later.
    OutOfService,
    /// The request asks for what no backend offers (a quality above every backend's, a
    /// priority none serves): retrying it unchanged will not help.
    Unservable,
}

impl Explanation {
    /// Why no backend could serve the request (meaningful when none is eligible).
    pub fn unserved(&self) -> Unserved {
        let budget_blocked = self
            .backends
            .iter()
            .any(|b| b.reasons.iter().any(|r| r.ends_with(BUDGET_REASON)));
        let all_budget = self.backends.iter().filter(|b| !b.eligible).all(|b| {
            b.reasons.iter().any(|r| r.ends_with(BUDGET_REASON))
                || b.reasons
                    .iter()
                    .all(|r| r.contains("priority_") || r.contains("disabled"))
        });
        let out_of_service = |r: &String| {
            r.contains("circuit breaker") || r.contains("is not set") || r.contains("disabled")
        };
        if budget_blocked && all_budget {
            Unserved::Budget
        } else if self
            .backends
            .iter()
            .filter(|b| !b.eligible)
            .any(|b| b.reasons.iter().any(out_of_service))
        {
            Unserved::OutOfService
        } else {
            Unserved::Unservable
        }
    }
}
