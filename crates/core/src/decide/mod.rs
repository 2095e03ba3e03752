//! The routing decision: which backend serves a request, with which model, and the fallback
//! order behind it.
//!
//! The semantics, in order (README "Decision semantics" says the same for policy authors):
//!
//! 1. **Eligibility.** A backend is eligible when it is enabled, its API key (if it names one)
//!    is set, its breaker is not open, its
//!    `selection_criteria` priority flag accepts the request's priority (a missing flag
//!    accepts), its cost fits the remaining budget if `selection_criteria.budget_available`
//!    is true, and its `quality.score` is at least the request's quality threshold.
//! 2. **Rules** are tried in order. The first whose condition is true and whose target is
//!    eligible decides. A rule's target skips the priority-flag check: a rule is an explicit
//!    choice by the author, and the flags describe default routing. Every other check applies,
//!    with the cost of the rule's preferred model.
//! 3. **No rule decides:** the eligible backend with the lowest priority number wins, ties by
//!    name, among those whose `fallback_failures` the request's failures already satisfy.
//! 4. **Fallbacks:** the other eligible backends in ascending priority. A backend with
//!    `fallback_failures: N` may only stand at a position in the chain that runs after at
//!    least N failed attempts of this request; it is moved back until it can, or left out.
//! 5. **Nothing eligible** is a decision too; explain lists every candidate's reasons.
//! 6. A condition that fails at run time (division by zero, an unset field) does not match,
//!    and explain shows the error.
//!
//! [`decide_into`] is generic over a [`RouteTrace`]. With [`NoTrace`] the hooks compile away,
//! conditions run as their compiled [`crate::eval::Program`], and a decision into a reused
//! [`Decision`] allocates nothing; a tracer that wants clauses gets the checked tree walked.

mod draw;

pub use draw::{arms, pick, ArmDraw};

use crate::eval::{self, Context, EvalError, NoTrace, Tracer};
use crate::num::Fixed;
use crate::policy::{Backend, Policy};
use crate::request::Request;
use crate::state::{Clock, State};

/// Why a backend is not eligible: a set of failed checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ineligible(u8);

impl Ineligible {
    /// `enabled: false`, or turned off by its environment flag.
    pub const DISABLED: Ineligible = Ineligible(1);
    /// Its circuit breaker is open.
    pub const BREAKER_OPEN: Ineligible = Ineligible(2);
    /// Its priority flag refuses the request's priority.
    pub const PRIORITY: Ineligible = Ineligible(4);
    /// Its cost does not fit the remaining budget.
    pub const BUDGET: Ineligible = Ineligible(8);
    /// Its quality is below the request's threshold.
    pub const QUALITY: Ineligible = Ineligible(16);
    /// The environment variable holding its API key is not set.
    pub const KEY_MISSING: Ineligible = Ineligible(32);

    /// No failed checks.
    pub fn is_eligible(self) -> bool {
        self.0 == 0
    }

    /// Whether `flag` is among the failed checks.
    pub fn has(self, flag: Ineligible) -> bool {
        self.0 & flag.0 != 0
    }

    fn add(&mut self, flag: Ineligible, failed: bool) {
        if failed {
            self.0 |= flag.0;
        }
    }
}

/// A routing decision. Indices refer to `policy.backends` and `policy.rules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'p> {
    /// The chosen backend, or `None` when nothing is eligible.
    pub backend: Option<u16>,
    /// The rule that decided, if one did.
    pub rule: Option<u16>,
    /// The model to run.
    pub model: Option<&'p str>,
    /// The expected cost of the chosen backend and model.
    pub cost: Fixed,
    /// Backends to try next, in order.
    pub fallbacks: Vec<u16>,
    /// When the deciding rule has a split: the drawn arm, by index into its arms.
    pub arm: Option<u16>,
}

/// Hooks into a decision, for explain. See [`NoTrace`] for the silent one.
pub trait RouteTrace<'a>: Tracer<'a> {
    /// Whether to evaluate the rules after the deciding one (explain does, for the record).
    const ALL_RULES: bool;
    /// Whether to walk each condition's checked tree, reporting every clause and read to the
    /// [`Tracer`] hooks. When false the compiled [`crate::eval::Program`] runs instead.
    const CLAUSES: bool;
    /// A rule is about to be evaluated.
    fn rule_start(&mut self, rule: usize);
    /// A rule was evaluated; `target` is the target's eligibility when it matched.
    fn rule_end(
        &mut self,
        rule: usize,
        outcome: Result<bool, EvalError>,
        target: Option<Ineligible>,
    );
}

impl<'a> RouteTrace<'a> for NoTrace {
    const ALL_RULES: bool = false;
    const CLAUSES: bool = false;
    #[inline(always)]
    fn rule_start(&mut self, _: usize) {}
    #[inline(always)]
    fn rule_end(&mut self, _: usize, _: Result<bool, EvalError>, _: Option<Ineligible>) {}
}

/// Builds the evaluation context for a request and state.
pub fn context<'a>(policy: &Policy, request: &'a Request, state: &'a State) -> Context<'a> {
    let clock = Clock::of(state.now);
    let int = |n: u32| Fixed::from_int(i64::from(n)).unwrap_or(Fixed::ZERO);
    Context {
        priority: request.priority,
        duration: request.duration,
        aspect_ratio: request.aspect_ratio,
        quality_threshold: request.quality_threshold,
        style: request.style.as_deref(),
        fields: &request.fields,
        monthly_spend: state.spend,
        monthly_budget: policy.budget.monthly,
        cost_threshold: policy.budget.threshold,
        failures: int(state.failures),
        month_progress: clock.month_progress,
        day_of_month: int(clock.day_of_month),
        hour: int(clock.hour),
        breakers: &state.breakers,
        measured: &state.measured,
        rolled_back: &state.rolled_back,
        video: None,
        request_key: request.id.as_deref().unwrap_or(&request.prompt),
        tenant: &request.tenant,
        levels: &state.levels,
        capped: !state.levels.is_empty(),
    }
}

/// Checks one backend. `priority_flags` is false for a rule's target (see the module docs).
pub fn eligibility(
    b: &Backend,
    index: u16,
    cost: Fixed,
    ctx: &Context<'_>,
    priority_flags: bool,
) -> Ineligible {
    let mut why = Ineligible::default();
    why.add(Ineligible::DISABLED, !b.enabled);
    why.add(Ineligible::KEY_MISSING, b.key_missing.is_some());
    let breaker = ctx
        .breakers
        .get(index as usize)
        .copied()
        .unwrap_or_default();
    why.add(
        Ineligible::BREAKER_OPEN,
        breaker == crate::breaker::BreakerState::Open,
    );
    why.add(
        Ineligible::PRIORITY,
        priority_flags && !b.criteria.accepts_priority(ctx.priority),
    );
    why.add(
        Ineligible::BUDGET,
        b.criteria.budget_available && !ctx.cost_fits(index, cost),
    );
    why.add(Ineligible::QUALITY, b.quality < ctx.quality_threshold);
    why
}

/// Decides, with no tracing.
pub fn decide<'p>(policy: &'p Policy, request: &Request, state: &State) -> Decision<'p> {
    let ctx = context(policy, request, state);
    decide_with(policy, &ctx, state.failures, &mut NoTrace)
}

/// Decides into `out`, with no tracing; see [`decide_into`].
pub fn decide_reusing<'p>(
    policy: &'p Policy,
    request: &Request,
    state: &State,
    out: &mut Decision<'p>,
) {
    let ctx = context(policy, request, state);
    decide_into(policy, &ctx, state.failures, &mut NoTrace, out);
}

/// Decides over a prepared context, reporting to `trace`.
pub fn decide_with<'p: 'a, 'a, T: RouteTrace<'a>>(
    policy: &'p Policy,
    ctx: &Context<'a>,
    failures: u32,
    trace: &mut T,
) -> Decision<'p> {
    let mut out = Decision::default();
    decide_into(policy, ctx, failures, trace, &mut out);
    out
}

impl Default for Decision<'_> {
    fn default() -> Self {
        Decision {
            backend: None,
            rule: None,
            model: None,
            cost: Fixed::ZERO,
            fallbacks: Vec::new(),
            arm: None,
        }
    }
}

/// Decides into `out`, reusing its fallback buffer: once that buffer has grown to the number
/// of backends, deciding allocates nothing.
pub fn decide_into<'p: 'a, 'a, T: RouteTrace<'a>>(
    policy: &'p Policy,
    ctx: &Context<'a>,
    failures: u32,
    trace: &mut T,
    out: &mut Decision<'p>,
) {
    if !T::CLAUSES {
        policy.ensure_native();
    }
    // (rule, backend, arm of its split)
    let mut chosen: Option<(u16, u16, Option<u16>)> = None;
    for (i, rule) in policy.rules.iter().enumerate() {
        if chosen.is_some() && !T::ALL_RULES {
            break;
        }
        trace.rule_start(i);
        let outcome = if T::CLAUSES {
            eval::eval_bool(&rule.condition, ctx, trace)
        } else {
            rule.program
                .run(ctx)
                .map_err(|kind| EvalError::new(rule.condition.span, kind))
        };
        let mut arm = None;
        let target = match (&outcome, &rule.split, policy.backend(rule.backend)) {
            (Ok(true), Some(split), _) => {
                let (picked, why) = pick(policy, split, ctx);
                arm = picked;
                Some(why)
            }
            (Ok(true), None, Some(b)) => Some(eligibility(b, rule.backend, rule.cost, ctx, false)),
            _ => None,
        };
        trace.rule_end(i, outcome, target);
        if chosen.is_none() && target.is_some_and(Ineligible::is_eligible) {
            let backend = match (&rule.split, arm) {
                (Some(split), Some(a)) => split.arms[a].backend,
                _ => rule.backend,
            };
            chosen = Some((i as u16, backend, arm.map(|a| a as u16)));
        }
    }
    let eligible = |b: u16| {
        policy
            .backend(b)
            .is_some_and(|x| eligibility(x, b, x.default_cost, ctx, true).is_eligible())
    };
    out.fallbacks.clear();
    match chosen {
        Some((rule_index, backend, arm)) => {
            let rule = &policy.rules[rule_index as usize];
            let b = &policy.backends[backend as usize];
            let drawn = arm.and_then(|a| rule.split.as_ref().map(|s| &s.arms[a as usize]));
            let others = policy
                .preference_order()
                .iter()
                .copied()
                .filter(|x| *x != backend && eligible(*x));
            chain(policy, others, failures + 1, &mut out.fallbacks);
            out.backend = Some(backend);
            out.rule = Some(rule_index);
            out.arm = arm;
            match drawn {
                Some(a) => {
                    out.model = a.model.as_deref().or(b.default_model());
                    out.cost = a.cost;
                }
                None => {
                    out.model = rule.model.as_deref().or(b.default_model());
                    out.cost = rule.cost;
                }
            }
        }
        None => {
            let all = policy
                .preference_order()
                .iter()
                .copied()
                .filter(|x| eligible(*x));
            chain(policy, all, failures, &mut out.fallbacks);
            out.rule = None;
            out.arm = None;
            if out.fallbacks.is_empty() {
                out.backend = None;
                out.model = None;
                out.cost = Fixed::ZERO;
                return;
            }
            let first = out.fallbacks.remove(0);
            let b = &policy.backends[first as usize];
            out.backend = Some(first);
            out.model = b.default_model();
            out.cost = b.default_cost;
        }
    }
}

/// How many held-back backends fit on the stack before the chain spills to the heap.
const HELD_INLINE: usize = 32;

/// Orders candidates (already in preference order) into `out`, a chain whose first position
/// runs after `failed` failures, holding back any backend whose `fallback_failures` is not yet
/// met until enough positions precede it. Backends that can never qualify are left out.
fn chain(policy: &Policy, candidates: impl Iterator<Item = u16>, failed: u32, out: &mut Vec<u16>) {
    let needs = |b: u16| {
        policy
            .backend(b)
            .map_or(0, |x| x.criteria.fallback_failures)
    };
    let mut inline = [0u16; HELD_INLINE];
    let mut count = 0usize;
    let mut spilled: Vec<u16> = Vec::new();
    for b in candidates {
        release(out, &mut inline, &mut count, &mut spilled, failed, needs);
        if needs(b) <= failed + out.len() as u32 {
            out.push(b);
        } else if count < HELD_INLINE {
            inline[count] = b;
            count += 1;
        } else {
            spilled.push(b);
        }
    }
    release(out, &mut inline, &mut count, &mut spilled, failed, needs);
}

/// Moves held backends into the chain, in preference order, while their requirement is met.
fn release(
    out: &mut Vec<u16>,
    inline: &mut [u16; HELD_INLINE],
    count: &mut usize,
    spilled: &mut Vec<u16>,
    failed: u32,
    needs: impl Fn(u16) -> u32,
) {
    loop {
        let ready = |b: &u16| needs(*b) <= failed + out.len() as u32;
        if let Some(pos) = inline[..*count].iter().position(ready) {
            out.push(inline[pos]);
            inline.copy_within(pos + 1..*count, pos);
            *count -= 1;
        } else if let Some(pos) = spilled.iter().position(ready) {
            out.push(spilled.remove(pos));
        } else {
            return;
        }
    }
}

/// A client's explicit target (a backend, and the model to run on it), decided as a rule's
/// target would be: eligible or not by the same checks, priority flags skipped, and followed
/// by the same fallbacks. `Err` carries why the target is not eligible.
pub fn decide_target<'p>(
    policy: &'p Policy,
    request: &Request,
    state: &State,
    backend: u16,
    model: Option<&'p str>,
) -> Result<Decision<'p>, Ineligible> {
    let ctx = context(policy, request, state);
    let Some(b) = policy.backend(backend) else {
        return Err(Ineligible::default());
    };
    let cost = b.cost_of(model);
    let why = eligibility(b, backend, cost, &ctx, false);
    if !why.is_eligible() {
        return Err(why);
    }
    let mut out = Decision::default();
    let others = policy.preference_order().iter().copied().filter(|x| {
        *x != backend
            && policy
                .backend(*x)
                .is_some_and(|o| eligibility(o, *x, o.default_cost, &ctx, true).is_eligible())
    });
    chain(policy, others, state.failures + 1, &mut out.fallbacks);
    out.backend = Some(backend);
    out.model = model.or(b.default_model());
    out.cost = cost;
    out.arm = None;
    Ok(out)
}
