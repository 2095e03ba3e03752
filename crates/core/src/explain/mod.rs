//! Explanations: the decision together with the reasons for it, down to each clause.
//!
//! A [`Trace`] comes from the same [`decide_into`] call as a plain decision, with the trace
//! plugged in as its [`RouteTrace`], so what it records is what the router did: the rules'
//! outcomes are the same, walked on each condition's checked tree so that every clause and
//! read is seen (a property test checks the tree and the compiled program agree). An
//! [`Explanation`] is a trace rendered with names and messages; it serializes to the JSON
//! that `genroute explain --format json` prints and renders to the text report.
//!
//! The work is split by what each step answers: `record.rs` is the recording ([`Trace`], what
//! the router did, with no names or text); `render.rs` turns a trace into an [`Explanation`]
//! (names, values as JSON, each rule's status and split draw); `reasons.rs` writes the
//! sentences for an ineligible backend, the budget refusals among them, and reads them back
//! into an [`Unserved`] answer; `text.rs` lays an explanation out as the text report. This
//! file holds the explanation's types, the serialized shape that the CLI's JSON, the service
//! and the Python package share.
//!
//! [`decide_into`]: crate::decide::decide_into
//! [`RouteTrace`]: crate::decide::RouteTrace

mod reasons;
mod record;
mod render;
mod text;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::breaker::BreakerState;
use crate::num::Fixed;
use crate::policy::Policy;
use crate::request::Request;
use crate::state::State;

pub use reasons::{reasons, Unserved, BUDGET_REASON};
pub use record::{trace_into, ClauseRecord, ReadRecord, RuleRecord, Trace};
pub use render::render;

/// A decision with everything that led to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// Chosen backend, or `null` when none is eligible.
    pub backend: Option<String>,
    /// Model to run.
    pub model: Option<String>,
    /// The rule that decided, or `null` when the default order did.
    pub rule: Option<String>,
    /// Expected cost of the chosen backend.
    pub cost_usd: Option<Fixed>,
    /// Backends to try next, in order.
    pub fallbacks: Vec<String>,
    /// One sentence on why.
    pub summary: String,
    /// The request values used, defaults filled in (the prompt is left out).
    pub request: RequestView,
    /// The state values used.
    pub context: ContextView,
    /// Every rule, in order, with its clauses.
    pub rules: Vec<RuleTrace>,
    /// Every backend, in preference order, with its eligibility.
    pub backends: Vec<BackendTrace>,
}

/// Request values as the decision saw them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestView {
    /// `quality`, `balanced` or `speed`.
    pub priority: String,
    /// Seconds.
    pub duration: Fixed,
    /// e.g. `16:9`.
    pub aspect_ratio: String,
    /// Lowest acceptable quality.
    pub quality_threshold: Fixed,
    /// Style, if set.
    pub style: Option<String>,
    /// Declared fields that are set.
    pub fields: BTreeMap<String, serde_json::Value>,
}

/// State values as the decision saw them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContextView {
    /// RFC 3339, UTC.
    pub now: String,
    /// Committed plus reserved.
    pub monthly_spend: Fixed,
    /// The monthly budget.
    pub monthly_budget: Fixed,
    /// Budget minus spend.
    pub budget_remaining: Fixed,
    /// The cost threshold.
    pub cost_threshold: Fixed,
    /// Failed attempts so far.
    pub failures: u32,
    /// Elapsed fraction of the month.
    pub month_progress: Fixed,
    /// Day of month, UTC.
    pub day_of_month: u32,
    /// Hour, UTC.
    pub hour: u32,
    /// Breaker state by backend name.
    pub breakers: BTreeMap<String, BreakerState>,
    /// Measured figures by backend name, for backends with samples (what the videos
    /// themselves showed: pass rate of the output checks, latency, flicker).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub measured: BTreeMap<String, crate::measure::Measured>,
}

/// One rule's evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleTrace {
    /// Rule name.
    pub name: String,
    /// Condition as written.
    pub condition: String,
    /// `file:line:column` of the condition.
    pub location: String,
    /// Target backend.
    pub backend: String,
    /// Preferred model.
    pub model: Option<String>,
    /// Whether the condition was true (false when it failed with an error).
    pub matched: bool,
    /// The evaluation error, if any.
    pub error: Option<String>,
    /// When matched: whether the target was eligible.
    pub target_eligible: Option<bool>,
    /// When matched and the target was not eligible: why.
    pub target_reasons: Vec<String>,
    /// `decided`, `target ineligible`, `not matched`, `error`, or `not reached` for rules
    /// after the deciding one (still evaluated here, for the record).
    pub status: &'static str,
    /// Each clause, in source order.
    pub clauses: Vec<ClauseTrace>,
    /// When the rule has a split and matched: the draw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitTrace>,
}

/// A split's draw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitTrace {
    /// What was hashed: `user = "alice"`, `request id` or `prompt`.
    pub key: String,
    /// The arm drawn, if any was eligible.
    pub drawn: Option<String>,
    /// Every arm.
    pub arms: Vec<ArmTrace>,
    /// The experiment run on the split, if any.
    pub experiment: Option<ExperimentTrace>,
}

/// One arm of a draw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmTrace {
    /// Backend.
    pub backend: String,
    /// Weight as written.
    pub weight: Fixed,
    /// Weight used (dynamic weights, a rollback).
    pub effective_weight: Fixed,
    /// Share of the eligible weight, 0 to 1 (six decimals).
    pub share: Fixed,
    /// Whether it could be drawn.
    pub eligible: bool,
    /// Why not.
    pub reasons: Vec<String>,
    /// Whether it was drawn.
    pub drawn: bool,
}

/// The experiment on a split, as the decision saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentTrace {
    /// Its name.
    pub name: String,
    /// The primary arm.
    pub primary: String,
    /// `running` or `rolled_back` (the experimental arms draw nothing).
    pub status: &'static str,
}

/// One clause of a condition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClauseTrace {
    /// The clause's text.
    pub text: String,
    /// Its value; `null` when it was not evaluated (short-circuit) or failed.
    pub value: Option<bool>,
    /// Whether evaluation reached it.
    pub evaluated: bool,
    /// Its error, if it failed.
    pub error: Option<String>,
    /// The names it read and their values.
    pub reads: Vec<ReadTrace>,
}

/// A name read during evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadTrace {
    /// The name as written.
    pub name: String,
    /// Its value.
    pub value: serde_json::Value,
}

/// One backend's standing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendTrace {
    /// Backend name.
    pub name: String,
    /// Whether it passed every eligibility check (as a default or fallback candidate).
    pub eligible: bool,
    /// Why not, or notes on an eligible backend left out of the chain.
    pub reasons: Vec<String>,
    /// `selected`, `fallback`, or `unused`.
    pub role: &'static str,
    /// Priority number.
    pub priority: Fixed,
    /// Cost of its default model.
    pub cost_usd: Fixed,
    /// `quality.score`
    pub quality: Fixed,
    /// Breaker state.
    pub breaker: BreakerState,
}

/// Decides and explains.
pub fn explain(policy: &Policy, request: &Request, state: &State) -> Explanation {
    let mut trace = Trace::sized_for(policy);
    trace_into(policy, request, state, &mut trace);
    render(policy, request, state, &trace)
}
