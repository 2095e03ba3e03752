//! The evaluator: a checked condition and a [`Context`] in, a value out.
//!
//! One walker serves two callers. The router calls it with [`NoTrace`], whose hooks are empty
//! and inline away, so the hot path pays nothing for explanations. `explain` calls it with a
//! recording [`Tracer`] and gets the value of every clause and every name read, from the very
//! evaluation that decided, rather than from a second interpretation that could disagree.
//!
//! Evaluation short-circuits. An error (division by zero, overflow, an unset field) is a
//! value of its own that propagates up; the router treats it as "this rule did not match" and
//! explain shows it. It is never silently turned into `false`.

pub mod err;
pub mod program;

pub use err::{EvalError, EvalErrorKind};
pub use program::Program;

use crate::breaker::BreakerState;
use crate::expr::{Arith, CExpr, CKind, Cmp, Lit, Slot};
use crate::lang::ast::Span;
use crate::num::Fixed;

/// A runtime value. Strings borrow from the tree or the request; nothing is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// A boolean.
    Bool(bool),
    /// A number or money.
    Num(Fixed),
    /// A string.
    Str(&'a str),
    /// An enum value by index.
    Enum(u16),
}

/// A value of a declared request field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// A boolean.
    Bool(bool),
    /// A number.
    Num(Fixed),
    /// A string.
    Str(String),
    /// An enum value by index.
    Enum(u16),
}

/// Everything a condition can read, laid out flat. The router builds one per decision from
/// the request, the ledger's figures, the breakers and the clock.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Index into the `priority` enum.
    pub priority: u16,
    /// Seconds.
    pub duration: Fixed,
    /// Index into the `aspect_ratio` enum.
    pub aspect_ratio: u16,
    /// Lowest acceptable quality score.
    pub quality_threshold: Fixed,
    /// Requested style, if any.
    pub style: Option<&'a str>,
    /// Declared fields, by index; `None` when the request left one unset.
    pub fields: &'a [Option<FieldValue>],
    /// Committed plus reserved spend this month.
    pub monthly_spend: Fixed,
    /// The monthly budget.
    pub monthly_budget: Fixed,
    /// The cost threshold.
    pub cost_threshold: Fixed,
    /// Attempts that already failed for this request.
    pub failures: Fixed,
    /// Elapsed fraction of the UTC month.
    pub month_progress: Fixed,
    /// Day of the month, UTC.
    pub day_of_month: Fixed,
    /// Hour of the day, UTC.
    pub hour: Fixed,
    /// Breaker state per backend, by backend index.
    pub breakers: &'a [BreakerState],
    /// Measured figures per backend, by backend index (empty: none known).
    pub measured: &'a [crate::measure::Measured],
    /// Per experiment of the policy, by index: whether it is rolled back.
    pub rolled_back: &'a [bool],
    /// The delivered video being judged (`execution.quality_retry.when` only).
    pub video: Option<&'a crate::measure::VideoFigures>,
    /// What a split hashes when its key field is unset: the request id, else the prompt.
    pub request_key: &'a str,
    /// The caller's tenant values by index (`team`, `org`, `key`, then the policy's
    /// `tenant_fields`); empty for a request without an API key.
    pub tenant: &'a [Option<FieldValue>],
    /// The further budget levels that apply, with their figures.
    pub levels: &'a [crate::levels::LevelFigures],
    /// `!levels.is_empty()`, as a flag compiled code can load.
    pub capped: bool,
}

impl Context<'static> {
    /// A context with nothing in it, for folding constant expressions.
    pub fn constant() -> Context<'static> {
        Context {
            priority: 0,
            duration: Fixed::ZERO,
            aspect_ratio: 0,
            quality_threshold: Fixed::ZERO,
            style: None,
            fields: &[],
            monthly_spend: Fixed::ZERO,
            monthly_budget: Fixed::ZERO,
            cost_threshold: Fixed::ZERO,
            failures: Fixed::ZERO,
            month_progress: Fixed::ZERO,
            day_of_month: Fixed::ZERO,
            hour: Fixed::ZERO,
            breakers: &[],
            measured: &[],
            rolled_back: &[],
            video: None,
            request_key: "",
            tenant: &[],
            levels: &[],
            capped: false,
        }
    }
}

impl Context<'_> {
    /// Whether spending `cost` more on backend `b` stays within the monthly budget
    /// (`spend + cost <= budget`) and within every level that caps `b`.
    pub fn cost_fits(&self, b: u16, cost: Fixed) -> bool {
        let month = match self.monthly_spend.checked_add(cost) {
            Some(total) => total <= self.monthly_budget,
            None => false,
        };
        month && self.refusing_level(b, cost).is_none()
    }

    /// The first level that caps backend `b` and has less than `cost` left.
    pub fn refusing_level(&self, b: u16, cost: Fixed) -> Option<&crate::levels::LevelFigures> {
        self.levels
            .iter()
            .find(|l| l.applies_to(b) && !l.fits(cost))
    }

    /// A figure of the caller's budget at level `kind` (its levels over every backend).
    pub fn level(
        &self,
        kind: crate::levels::LevelKind,
        prop: crate::expr::LevelProp,
    ) -> Result<Fixed, EvalErrorKind> {
        use crate::expr::LevelProp;
        let of_kind = || {
            self.levels
                .iter()
                .filter(move |l| l.kind == kind && l.backend.is_none())
        };
        // The monthly level when there is one, else the daily one.
        let main = of_kind()
            .find(|l| !l.daily)
            .or_else(|| of_kind().next())
            .ok_or(EvalErrorKind::NoLevel)?;
        Ok(match prop {
            LevelProp::Remaining => of_kind()
                .map(crate::levels::LevelFigures::remaining)
                .min()
                .unwrap_or(Fixed::ZERO),
            LevelProp::Spend => main.counted,
            LevelProp::Budget => main.budget,
        })
    }
}

/// Hooks that see each evaluation step. See the module docs.
pub trait Tracer<'a> {
    /// A name was read and had this value.
    fn read(&mut self, span: Span, value: Value<'a>);
    /// A clause finished with this outcome.
    fn clause(&mut self, span: Span, outcome: Result<bool, EvalError>);
}

/// The tracer that records nothing.
pub struct NoTrace;

impl<'a> Tracer<'a> for NoTrace {
    #[inline(always)]
    fn read(&mut self, _: Span, _: Value<'a>) {}
    #[inline(always)]
    fn clause(&mut self, _: Span, _: Result<bool, EvalError>) {}
}

/// Evaluates any checked expression.
pub fn evaluate<'a>(e: &'a CExpr, ctx: &Context<'a>) -> Result<Value<'a>, EvalError> {
    eval(e, ctx, &mut NoTrace)
}

/// Evaluates a condition to true or false, with no tracing.
#[inline]
pub fn evaluate_bool<'a>(e: &'a CExpr, ctx: &Context<'a>) -> Result<bool, EvalError> {
    eval_bool(e, ctx, &mut NoTrace)
}

/// Evaluates a condition to true or false, reporting each step to `tracer`.
pub fn eval_bool<'a, T: Tracer<'a>>(
    e: &'a CExpr,
    ctx: &Context<'a>,
    tracer: &mut T,
) -> Result<bool, EvalError> {
    match eval(e, ctx, tracer)? {
        Value::Bool(b) => Ok(b),
        _ => Err(EvalError::new(e.span, EvalErrorKind::NotBoolean)),
    }
}

/// Evaluates any checked expression, reporting each step to `tracer`.
pub fn eval<'a, T: Tracer<'a>>(
    e: &'a CExpr,
    ctx: &Context<'a>,
    tracer: &mut T,
) -> Result<Value<'a>, EvalError> {
    let result = step(e, ctx, tracer);
    if e.is_clause() {
        let outcome = match &result {
            Ok(Value::Bool(b)) => Ok(*b),
            Ok(_) => Err(EvalError::new(e.span, EvalErrorKind::NotBoolean)),
            Err(err) => Err(err.clone()),
        };
        tracer.clause(e.span, outcome);
    }
    result
}

fn step<'a, T: Tracer<'a>>(
    e: &'a CExpr,
    ctx: &Context<'a>,
    tracer: &mut T,
) -> Result<Value<'a>, EvalError> {
    Ok(match &e.kind {
        CKind::Lit(l) => lit(l),
        CKind::Read(slot) => {
            let v = read(*slot, ctx).map_err(|k| EvalError::new(e.span, k))?;
            tracer.read(e.span, v);
            v
        }
        CKind::Not(a) => Value::Bool(!eval_bool(a, ctx, tracer)?),
        CKind::Neg(a) => {
            let n = num(a, ctx, tracer)?;
            Value::Num(
                n.checked_neg()
                    .ok_or(EvalError::new(e.span, EvalErrorKind::Overflow))?,
            )
        }
        CKind::And(items) => {
            for item in items.iter() {
                if !eval_bool(item, ctx, tracer)? {
                    return Ok(Value::Bool(false));
                }
            }
            Value::Bool(true)
        }
        CKind::Or(items) => {
            for item in items.iter() {
                if eval_bool(item, ctx, tracer)? {
                    return Ok(Value::Bool(true));
                }
            }
            Value::Bool(false)
        }
        CKind::Arith(op, a, b) => {
            let (x, y) = (num(a, ctx, tracer)?, num(b, ctx, tracer)?);
            Value::Num(arith(*op, x, y).map_err(|k| EvalError::new(e.span, k))?)
        }
        CKind::Cmp(op, a, b) => {
            let (x, y) = (eval(a, ctx, tracer)?, eval(b, ctx, tracer)?);
            Value::Bool(compare(*op, x, y))
        }
        CKind::In(a, items) => {
            let x = eval(a, ctx, tracer)?;
            Value::Bool(items.iter().any(|l| lit(l) == x))
        }
    })
}

fn num<'a, T: Tracer<'a>>(
    e: &'a CExpr,
    ctx: &Context<'a>,
    tracer: &mut T,
) -> Result<Fixed, EvalError> {
    match eval(e, ctx, tracer)? {
        Value::Num(n) => Ok(n),
        _ => Err(EvalError::new(e.span, EvalErrorKind::NotNumeric)),
    }
}

/// A literal as a value.
#[inline]
pub fn lit(l: &Lit) -> Value<'_> {
    match l {
        Lit::Bool(b) => Value::Bool(*b),
        Lit::Num(n) => Value::Num(*n),
        Lit::Str(s) => Value::Str(s),
        Lit::Enum(i) => Value::Enum(*i),
    }
}

/// Checked exact arithmetic.
pub fn arith(op: Arith, x: Fixed, y: Fixed) -> Result<Fixed, EvalErrorKind> {
    match op {
        Arith::Add => x.checked_add(y).ok_or(EvalErrorKind::Overflow),
        Arith::Sub => x.checked_sub(y).ok_or(EvalErrorKind::Overflow),
        Arith::Mul => x.checked_mul(y).ok_or(EvalErrorKind::Overflow),
        Arith::Div if y == Fixed::ZERO => Err(EvalErrorKind::DivisionByZero),
        Arith::Div => x.checked_div(y).ok_or(EvalErrorKind::Overflow),
    }
}

/// Compares two values of the same type (the checker guarantees it; mixed types are unequal).
pub fn compare(op: Cmp, x: Value<'_>, y: Value<'_>) -> bool {
    let ordering = match (x, y) {
        (Value::Num(a), Value::Num(b)) => a.cmp(&b),
        (Value::Bool(a), Value::Bool(b)) => a.cmp(&b),
        (Value::Str(a), Value::Str(b)) => a.cmp(b),
        (Value::Enum(a), Value::Enum(b)) => a.cmp(&b),
        _ => return op == Cmp::Ne,
    };
    op.test(ordering)
}

fn read<'a>(slot: Slot, ctx: &Context<'a>) -> Result<Value<'a>, EvalErrorKind> {
    Ok(match slot {
        Slot::Style => Value::Str(program::read_str(slot, ctx)?),
        Slot::Field(i) => match ctx.fields.get(i as usize) {
            Some(Some(FieldValue::Bool(b))) => Value::Bool(*b),
            Some(Some(FieldValue::Num(n))) => Value::Num(*n),
            Some(Some(FieldValue::Str(s))) => Value::Str(s),
            Some(Some(FieldValue::Enum(e))) => Value::Enum(*e),
            _ => return Err(EvalErrorKind::Unset),
        },
        Slot::Tenant(i) => match ctx.tenant.get(i as usize) {
            Some(Some(FieldValue::Bool(b))) => Value::Bool(*b),
            Some(Some(FieldValue::Num(n))) => Value::Num(*n),
            Some(Some(FieldValue::Str(s))) => Value::Str(s),
            Some(Some(FieldValue::Enum(e))) => Value::Enum(*e),
            _ => return Err(EvalErrorKind::NoTenant),
        },
        Slot::Priority | Slot::AspectRatio | Slot::Breaker(_) => {
            Value::Enum(program::read_enum(slot, ctx)?)
        }
        Slot::BudgetLeft | Slot::CostFits(..) => Value::Bool(program::read_flag(slot, ctx)?),
        Slot::Video(p) if p.is_bool() => Value::Bool(program::read_flag(slot, ctx)?),
        _ => Value::Num(program::read_num(slot, ctx)?),
    })
}
