//! The recording side of an explanation: a [`Trace`] plugged into the router as its
//! [`RouteTrace`], so that it sees the decision being made rather than a re-enactment.
//!
//! Why apart from the rendering: recording runs inside every traced decision and must stay
//! cheap (no names, no strings, buffers reused across decisions), while rendering builds the
//! text and JSON once, after the fact, from what was recorded.

use crate::decide::{context, decide_into, eligibility, Decision, Ineligible, RouteTrace};
use crate::eval::{EvalError, Tracer, Value};
use crate::lang::ast::Span;
use crate::policy::Policy;
use crate::request::Request;
use crate::state::State;

/// The full record of one decision, as the router made it: every rule's outcome, every
/// clause's value, every name read with its value, and every backend's eligibility. An
/// [`Explanation`](super::Explanation) is this record rendered with names and messages.
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

impl Trace<'_> {
    /// An empty trace with room for a decision on `policy`.
    pub(super) fn sized_for(policy: &Policy) -> Self {
        // Sized up front: growing these vectors was a tenth of explain's instructions.
        let rules = policy.rules.len();
        Trace {
            rules: Vec::with_capacity(rules),
            clauses: Vec::with_capacity(rules * 4),
            reads: Vec::with_capacity(rules * 6),
            backends: Vec::with_capacity(policy.backends.len()),
            ..Trace::default()
        }
    }
}
