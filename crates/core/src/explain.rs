//! Explanations: the decision together with the reasons for it, down to each clause.
//!
//! A [`Trace`] comes from the same [`decide_into`] call as a plain decision, with the trace
//! plugged in as its [`RouteTrace`], so what it records is what the router did: the rules'
//! outcomes are the same, walked on each condition's checked tree so that every clause and
//! read is seen (a property test checks the tree and the compiled program agree). An
//! [`Explanation`] is a trace rendered with names and messages; it serializes to the JSON
//! that `genroute explain --format json` prints and renders to the text report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::breaker::BreakerState;
use crate::decide::{context, decide_into, eligibility, Decision, Ineligible, RouteTrace};
use crate::eval::{EvalError, Tracer, Value};
use crate::expr::{CExpr, EnumId, Type};
use crate::lang::ast::Span;
use crate::num::Fixed;
use crate::policy::{Backend, Policy, Rule};
use crate::request::Request;
use crate::state::{Clock, State};

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

/// The full record of one decision, as the router made it: every rule's outcome, every
/// clause's value, every name read with its value, and every backend's eligibility. An
/// [`Explanation`] is this record rendered with names and messages.
///
/// Recording costs a few times a plain decision; reuse one `Trace` across decisions (see
/// [`Policy::trace_into`]) and, once its buffers have grown, recording allocates nothing.
#[derive(Debug, Clone, Default)]
pub struct Trace<'a> {
    /// The decision itself.
    pub decision: Decision<'a>,
    /// Each rule's outcome, by rule index. Every rule is evaluated, including those after
    /// the deciding one.
    pub rules: Vec<RuleRecord>,
    /// Each clause that was evaluated, in evaluation order.
    pub clauses: Vec<ClauseRecord>,
    /// Each name read, in evaluation order.
    pub reads: Vec<ReadRecord<'a>>,
    /// Each backend's eligibility as a default or fallback candidate (its default model's
    /// cost, priority flags applied), by backend index.
    pub backends: Vec<Ineligible>,
    current: u16,
}

/// A rule's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRecord {
    /// The condition's value, or the error that stopped it.
    pub outcome: Result<bool, EvalError>,
    /// When it matched: its target's eligibility.
    pub target: Option<Ineligible>,
}

/// A clause's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct ClauseRecord {
    /// The rule it belongs to.
    pub rule: u16,
    /// Where it is in the rule's condition.
    pub span: Span,
    /// Its value, or its error.
    pub outcome: Result<bool, EvalError>,
}

/// A name read while evaluating.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadRecord<'a> {
    /// The rule it belongs to.
    pub rule: u16,
    /// Where the name is in the rule's condition.
    pub span: Span,
    /// The value read.
    pub value: Value<'a>,
}

impl<'a> Tracer<'a> for Trace<'a> {
    fn read(&mut self, span: Span, value: Value<'a>) {
        let rule = self.current;
        self.reads.push(ReadRecord { rule, span, value });
    }
    fn clause(&mut self, span: Span, outcome: Result<bool, EvalError>) {
        let rule = self.current;
        self.clauses.push(ClauseRecord {
            rule,
            span,
            outcome,
        });
    }
}

impl<'a> RouteTrace<'a> for Trace<'a> {
    const ALL_RULES: bool = true;
    const CLAUSES: bool = true;
    fn rule_start(&mut self, rule: usize) {
        self.current = rule as u16;
    }
    fn rule_end(&mut self, _: usize, outcome: Result<bool, EvalError>, target: Option<Ineligible>) {
        self.rules.push(RuleRecord { outcome, target });
    }
}

/// Decides and records everything into `out`, reusing its buffers.
pub fn trace_into<'a>(
    policy: &'a Policy,
    request: &'a Request,
    state: &'a State,
    out: &mut Trace<'a>,
) {
    let ctx = context(policy, request, state);
    out.rules.clear();
    out.clauses.clear();
    out.reads.clear();
    out.backends.clear();
    let mut decision = std::mem::take(&mut out.decision);
    decide_into(policy, &ctx, state.failures, out, &mut decision);
    out.decision = decision;
    out.backends.extend(
        policy
            .backends
            .iter()
            .enumerate()
            .map(|(i, b)| eligibility(b, i as u16, b.default_cost, &ctx, true)),
    );
}

/// Decides and explains.
pub fn explain(policy: &Policy, request: &Request, state: &State) -> Explanation {
    // Sized up front: growing these vectors was a tenth of explain's instructions.
    let rules = policy.rules.len();
    let mut trace = Trace {
        rules: Vec::with_capacity(rules),
        clauses: Vec::with_capacity(rules * 4),
        reads: Vec::with_capacity(rules * 6),
        backends: Vec::with_capacity(policy.backends.len()),
        ..Trace::default()
    };
    trace_into(policy, request, state, &mut trace);
    render(policy, request, state, &trace)
}

/// Renders a trace into an explanation.
pub fn render(policy: &Policy, request: &Request, state: &State, trace: &Trace<'_>) -> Explanation {
    let decision = &trace.decision;
    let name = |i: u16| policy.backends[i as usize].name.clone();
    let rules = policy
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| rule_trace(policy, i, r, trace, request, state))
        .collect();
    let backends = policy
        .preference_order()
        .iter()
        .map(|&i| backend_trace(policy, i, trace, request, state))
        .collect();
    Explanation {
        backend: decision.backend.map(name),
        model: decision.model.map(str::to_string),
        rule: decision.rule.map(|i| policy.rules[i as usize].name.clone()),
        cost_usd: decision.backend.map(|_| decision.cost),
        fallbacks: decision.fallbacks.iter().map(|&i| name(i)).collect(),
        summary: summary(policy, decision),
        request: request_view(policy, request),
        context: context_view(policy, state),
        rules,
        backends,
    }
}

fn summary(policy: &Policy, d: &Decision<'_>) -> String {
    match (d.backend, d.rule) {
        (Some(b), Some(r)) if d.arm.is_some() => format!(
            "rule `{}` matched and its split drew `{}`, which is eligible",
            policy.rules[r as usize].name, policy.backends[b as usize].name
        ),
        (Some(b), Some(r)) => format!(
            "rule `{}` matched and its target `{}` is eligible",
            policy.rules[r as usize].name, policy.backends[b as usize].name
        ),
        (Some(b), None) => format!(
            "no rule decided; `{}` is the most preferred eligible backend",
            policy.backends[b as usize].name
        ),
        _ => "no backend is eligible for this request".to_string(),
    }
}

fn rule_trace(
    policy: &Policy,
    i: usize,
    r: &Rule,
    trace: &Trace<'_>,
    request: &Request,
    state: &State,
) -> RuleTrace {
    let d = &trace.decision;
    let (outcome, target) = trace
        .rules
        .get(i)
        .map_or((Ok(false), None), |x| (x.outcome.clone(), x.target));
    let decided = d.rule == Some(i as u16);
    let after = d.rule.is_some_and(|x| (x as usize) < i);
    let status = match (&outcome, target) {
        _ if decided => "decided",
        _ if after => "not reached",
        (Err(_), _) => "error",
        (Ok(true), Some(t)) if !t.is_eligible() => "target ineligible",
        _ => "not matched",
    };
    let split = match (&r.split, &outcome) {
        (Some(sp), Ok(true)) => Some(split_trace(policy, sp, request, state)),
        _ => None,
    };
    let shown = split
        .as_ref()
        .and_then(|s| s.drawn.as_deref())
        .and_then(|n| policy.backend_index(n))
        .unwrap_or(r.backend);
    let backend = &policy.backends[shown as usize];
    let clauses = r
        .condition
        .clauses()
        .into_iter()
        .map(|c| clause_trace(policy, i, r, c, trace))
        .collect();
    RuleTrace {
        name: r.name.clone(),
        condition: r.condition_text.clone(),
        location: format!("{}:{}:{}", policy.source_name, r.line, r.column),
        backend: backend.name.clone(),
        model: r.model.clone(),
        matched: matches!(outcome, Ok(true)),
        error: outcome.as_ref().err().map(|e| describe_error(r, e)),
        target_eligible: target.map(Ineligible::is_eligible),
        target_reasons: target.map_or_else(Vec::new, |t| {
            reasons(backend, t, r.cost, policy, state, None)
        }),
        status,
        clauses,
        split,
    }
}

fn split_trace(
    policy: &Policy,
    sp: &crate::split::Split,
    request: &Request,
    state: &State,
) -> SplitTrace {
    let ctx = context(policy, request, state);
    let key = match sp.key {
        crate::split::SplitKey::Field(f) => {
            let name = policy
                .fields
                .get(f as usize)
                .map_or("", |d| d.name.as_str());
            match request.field_values(policy).get(name) {
                Some(v) => format!("{name} = {}", show(v)),
                None if request.id.is_some() => format!("request id (`{name}` is unset)"),
                None => format!("prompt (`{name}` is unset and the request has no id)"),
            }
        }
        crate::split::SplitKey::RequestId if request.id.is_some() => "request id".to_string(),
        crate::split::SplitKey::RequestId => "prompt (the request has no id)".to_string(),
    };
    let arms: Vec<ArmTrace> = crate::decide::arms(policy, sp, &ctx)
        .into_iter()
        .map(|a| {
            let b = &policy.backends[a.backend as usize];
            let cost = sp
                .arms
                .iter()
                .find(|x| x.backend == a.backend)
                .map_or(b.default_cost, |x| x.cost);
            ArmTrace {
                backend: b.name.clone(),
                weight: a.weight,
                effective_weight: a.effective,
                share: crate::measure::fraction(a.share),
                eligible: a.ineligible.is_eligible(),
                reasons: reasons(b, a.ineligible, cost, policy, state, None),
                drawn: a.chosen,
            }
        })
        .collect();
    let experiment = sp.experiment.and_then(|(e, _)| {
        let x = policy.experiments.get(e as usize)?;
        Some(ExperimentTrace {
            name: x.name.clone(),
            primary: policy.backends[x.primary as usize].name.clone(),
            status: if sp.rolled_back(&ctx) {
                "rolled_back"
            } else {
                "running"
            },
        })
    });
    SplitTrace {
        key,
        drawn: arms.iter().find(|a| a.drawn).map(|a| a.backend.clone()),
        arms,
        experiment,
    }
}

fn describe_error(r: &Rule, e: &EvalError) -> String {
    let at = r.condition_text.get(e.span.range()).unwrap_or("");
    format!("{} in `{at}`", e.kind)
}

fn clause_trace(
    policy: &Policy,
    rule: usize,
    r: &Rule,
    c: &CExpr,
    trace: &Trace<'_>,
) -> ClauseTrace {
    let rule = rule as u16;
    let text = |s: Span| r.condition_text.get(s.range()).unwrap_or("").to_string();
    let recorded = trace
        .clauses
        .iter()
        .find(|x| x.rule == rule && x.span == c.span)
        .map(|x| x.outcome.clone());
    let inside = |s: &Span| s.start >= c.span.start && s.end <= c.span.end;
    let mut reads: Vec<ReadTrace> = Vec::new();
    for read in trace
        .reads
        .iter()
        .filter(|x| x.rule == rule && inside(&x.span))
    {
        let name = text(read.span);
        if reads.iter().all(|x| x.name != name) {
            reads.push(ReadTrace {
                name,
                value: json_value(policy, r, read.span, read.value),
            });
        }
    }
    ClauseTrace {
        text: text(c.span),
        value: recorded.as_ref().and_then(|o| o.as_ref().ok().copied()),
        evaluated: recorded.is_some(),
        error: recorded
            .and_then(|o| o.err())
            .map(|e| describe_error(r, &e)),
        reads,
    }
}

/// A value as JSON, with enums by name. The read's type comes from the checked tree.
fn json_value(policy: &Policy, r: &Rule, span: Span, v: Value<'_>) -> serde_json::Value {
    match v {
        Value::Bool(b) => b.into(),
        Value::Num(n) => serde_json::to_value(n).unwrap_or_default(),
        Value::Str(s) => s.into(),
        Value::Enum(i) => {
            let id = enum_at(&r.condition, span).unwrap_or(EnumId::PRIORITY);
            policy
                .enum_values(id)
                .get(i as usize)
                .cloned()
                .unwrap_or_default()
                .into()
        }
    }
}

fn enum_at(e: &CExpr, span: Span) -> Option<EnumId> {
    use crate::expr::CKind;
    if e.span == span {
        if let Type::Enum(id) = e.ty {
            return Some(id);
        }
    }
    match &e.kind {
        CKind::Not(a) | CKind::Neg(a) | CKind::In(a, _) => enum_at(a, span),
        CKind::Arith(_, a, b) | CKind::Cmp(_, a, b) => {
            enum_at(a, span).or_else(|| enum_at(b, span))
        }
        CKind::And(v) | CKind::Or(v) => v.iter().find_map(|x| enum_at(x, span)),
        _ => None,
    }
}

fn backend_trace(
    policy: &Policy,
    i: u16,
    trace: &Trace<'_>,
    request: &Request,
    state: &State,
) -> BackendTrace {
    let d = &trace.decision;
    let failures = state.failures;
    let b = &policy.backends[i as usize];
    let cost = b.default_cost;
    let why = trace.backends.get(i as usize).copied().unwrap_or_default();
    let role = if d.backend == Some(i) {
        "selected"
    } else if d.fallbacks.contains(&i) {
        "fallback"
    } else {
        "unused"
    };
    let mut reasons = reasons(b, why, cost, policy, state, Some(request.priority));
    if why.is_eligible() && role == "unused" && b.criteria.fallback_failures > failures {
        reasons.push(format!(
            "joins a fallback chain only after {} failed attempts (selection_criteria.fallback_failures), more than this request's chain reaches",
            b.criteria.fallback_failures
        ));
    }
    if d.backend == Some(i) && d.rule.is_some() && !why.is_eligible() {
        reasons.push("selected by a rule, which skips the priority flags".to_string());
    }
    BackendTrace {
        name: b.name.clone(),
        eligible: why.is_eligible(),
        reasons,
        role,
        priority: b.priority,
        cost_usd: cost,
        quality: b.quality,
        breaker: state.breakers.get(i as usize).copied().unwrap_or_default(),
    }
}

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
pub(crate) fn budget_refusal(b: &Backend, cost: Fixed, policy: &Policy, state: &State) -> String {
    let month_left = policy
        .budget
        .monthly
        .checked_sub(state.spend)
        .filter(|r| !r.is_negative())
        .unwrap_or(Fixed::ZERO);
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
    use crate::num::Usd;
    match (fits_month, level) {
        (false, _) => format!(
            "the monthly budget has {} left of {}; {} costs {} {BUDGET_REASON}",
            Usd(month_left),
            Usd(policy.budget.monthly),
            b.name,
            Usd(cost)
        ),
        (true, Some(l)) => format!(
            "{} has {} left of {}; {} costs {} {BUDGET_REASON}",
            l.label,
            Usd(l.remaining()),
            Usd(l.budget),
            b.name,
            Usd(cost)
        ),
        (true, None) => format!(
            "cost {} does not fit the remaining budget {BUDGET_REASON}",
            Usd(cost)
        ),
    }
}

fn request_view(policy: &Policy, r: &Request) -> RequestView {
    let enum_name = |id: EnumId, i: u16| {
        policy
            .enum_values(id)
            .get(i as usize)
            .cloned()
            .unwrap_or_default()
    };
    let fields = r.field_values(policy);
    RequestView {
        priority: enum_name(EnumId::PRIORITY, r.priority),
        duration: r.duration,
        aspect_ratio: enum_name(EnumId::ASPECT_RATIO, r.aspect_ratio),
        quality_threshold: r.quality_threshold,
        style: r.style.clone(),
        fields,
    }
}

fn context_view(policy: &Policy, s: &State) -> ContextView {
    let clock = Clock::of(s.now);
    ContextView {
        now: s.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        monthly_spend: s.spend,
        monthly_budget: policy.budget.monthly,
        budget_remaining: policy
            .budget
            .monthly
            .checked_sub(s.spend)
            .unwrap_or(Fixed::ZERO),
        cost_threshold: policy.budget.threshold,
        failures: s.failures,
        month_progress: clock.month_progress,
        day_of_month: clock.day_of_month,
        hour: clock.hour,
        breakers: policy
            .backends
            .iter()
            .zip(&s.breakers)
            .map(|(b, st)| (b.name.clone(), *st))
            .collect(),
        measured: policy
            .backends
            .iter()
            .zip(&s.measured)
            .filter(|(_, m)| m.samples > 0)
            .map(|(b, m)| (b.name.clone(), *m))
            .collect(),
    }
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

    /// The human-readable report that `genroute explain` prints.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let r = &self.request;
        let _ = write!(
            o,
            "request   priority = '{}', duration = {}, aspect_ratio = '{}', quality_threshold = {}",
            r.priority, r.duration, r.aspect_ratio, r.quality_threshold
        );
        if let Some(s) = &r.style {
            let _ = write!(o, ", style = {s:?}");
        }
        for (k, v) in &r.fields {
            let _ = write!(o, ", {k} = {}", show(v));
        }
        let c = &self.context;
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "budget    monthly_spend = {} of monthly_budget = {} (budget_remaining = {}), cost_threshold = {}",
            c.monthly_spend, c.monthly_budget, c.budget_remaining, c.cost_threshold
        );
        let _ = writeln!(
            o,
            "time      {} (day_of_month = {}, hour = {}, month_progress = {}); failures = {}",
            c.now, c.day_of_month, c.hour, c.month_progress, c.failures
        );
        let breakers: Vec<String> = c
            .breakers
            .iter()
            .map(|(k, v)| format!("{k} {}", v.as_str()))
            .collect();
        let _ = writeln!(o, "breakers  {}", breakers.join(", "));
        for (name, m) in &c.measured {
            let show = |v: Option<Fixed>| v.map_or("-".to_string(), |x| x.to_string());
            let _ = writeln!(
                o,
                "measured  {name}: {} videos, pass_rate {}, latency_p50 {} s, flicker {}",
                m.samples,
                show(m.pass_rate),
                show(m.latency_p50),
                show(m.flicker)
            );
        }
        let _ = writeln!(
            o,
            "\nrules (tried in order; the first that matches with an eligible target decides)"
        );
        for (n, rule) in self.rules.iter().enumerate() {
            let model = rule
                .model
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "  {}. {} -> {}{}    [{}]",
                n + 1,
                rule.name,
                rule.backend,
                model,
                rule.location
            );
            let _ = writeln!(o, "     when {}", rule.condition);
            if let Some(sp) = &rule.split {
                let _ = writeln!(o, "     split by {}", sp.key);
                if let Some(e) = &sp.experiment {
                    let _ = writeln!(
                        o,
                        "     experiment `{}` ({}; primary {})",
                        e.name,
                        e.status.replace('_', " "),
                        e.primary
                    );
                }
                for a in &sp.arms {
                    let mark = if a.drawn { "drawn" } else { "     " };
                    let state = if a.eligible {
                        format!("share {:.1} %", a.share.to_f64() * 100.0)
                    } else {
                        format!("ineligible: {}", a.reasons.join("; "))
                    };
                    let moved = if a.effective_weight != a.weight {
                        format!(" (now {})", a.effective_weight)
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        o,
                        "       {mark}  {} weight {}{moved}, {state}",
                        a.backend, a.weight
                    );
                }
            }
            for cl in &rule.clauses {
                let value = match (cl.evaluated, cl.value) {
                    (false, _) => "skip ",
                    (true, Some(true)) => "true ",
                    (true, Some(false)) => "false",
                    (true, None) => "error",
                };
                let reads: Vec<String> = cl
                    .reads
                    .iter()
                    .map(|x| format!("{} = {}", x.name, show(&x.value)))
                    .collect();
                let detail = match (&cl.error, cl.evaluated) {
                    (Some(e), _) => format!("  ({e})"),
                    (None, false) => "  (not evaluated)".to_string(),
                    (None, true) if reads.is_empty() => String::new(),
                    (None, true) => format!("  ({})", reads.join(", ")),
                };
                let _ = writeln!(o, "       {value}  {}{detail}", cl.text);
            }
            let outcome = match rule.status {
                "decided" => "matched; target eligible: DECIDES".to_string(),
                "target ineligible" => format!(
                    "matched, but {} is ineligible: {}",
                    rule.backend,
                    rule.target_reasons.join("; ")
                ),
                "error" => format!("error: {}", rule.error.as_deref().unwrap_or("")),
                "not reached" => format!(
                    "not reached (would {})",
                    if rule.matched {
                        "have matched"
                    } else {
                        "not have matched"
                    }
                ),
                _ => "not matched".to_string(),
            };
            let _ = writeln!(o, "     => {outcome}");
        }
        let _ = writeln!(o, "\nbackends (in preference order)");
        let width = self
            .backends
            .iter()
            .map(|b| b.name.len())
            .max()
            .unwrap_or(0);
        for b in &self.backends {
            let state = if b.eligible { "eligible" } else { "ineligible" };
            let _ = write!(
                o,
                "  {:width$}  priority {:<4} cost {:<6} quality {:<5} breaker {:<9} {:<10} {}",
                b.name,
                b.priority.to_string(),
                b.cost_usd.to_string(),
                b.quality.to_string(),
                b.breaker.as_str(),
                state,
                b.role
            );
            if !b.reasons.is_empty() {
                let _ = write!(o, ": {}", b.reasons.join("; "));
            }
            let _ = writeln!(o);
        }
        let _ = writeln!(o);
        match &self.backend {
            Some(b) => {
                let model = self.model.as_deref().unwrap_or("(backend default)");
                let cost = self.cost_usd.map(|c| c.to_string()).unwrap_or_default();
                let _ = writeln!(o, "decision  {b}, model {model}, cost {cost}");
            }
            None => {
                let _ = writeln!(o, "decision  none: no backend is eligible");
            }
        }
        let _ = writeln!(o, "because   {}", self.summary);
        let fallbacks = if self.fallbacks.is_empty() {
            "(none)".to_string()
        } else {
            self.fallbacks.join(" -> ")
        };
        let _ = writeln!(o, "fallbacks {fallbacks}");
        o
    }
}

fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}
