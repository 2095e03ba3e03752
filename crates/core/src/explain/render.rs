//! A [`Trace`] rendered into an [`Explanation`]: each rule with its status, clauses, reads
//! and split draw, each backend with its role, and the request and state as the decision saw
//! them, with enums and backends by name.
//!
//! Why apart from the recording: everything that costs (strings, JSON values, walking the
//! checked tree for a read's type) happens here, once, for the one decision being shown.

use crate::decide::{context, Decision, Ineligible};
use crate::eval::{EvalError, Value};
use crate::expr::{CExpr, EnumId, Type};
use crate::lang::ast::Span;
use crate::num::Fixed;
use crate::policy::{Policy, Rule};
use crate::request::Request;
use crate::state::{Clock, State};

use super::text::show;
use super::{
    reasons, ArmTrace, BackendTrace, ClauseTrace, ContextView, ExperimentTrace, Explanation,
    ReadTrace, RequestView, RuleTrace, SplitTrace, Trace,
};

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
