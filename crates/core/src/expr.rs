//! The checked, compiled form of a condition.
//!
//! Every name is already resolved to a [`Slot`], every enum literal to its index and every
//! number to an exact [`Fixed`]. Evaluation therefore never looks a name up and never
//! compares strings, except for free-text fields such as `style`. Spans stay on every node so
//! the same tree drives both the fast evaluator and the explain trace.

use crate::lang::ast::{BinOp, Span};
use crate::num::Fixed;

/// Identifies an enum type: the built-in ones first, then the policy's declared enums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnumId(pub u16);

impl EnumId {
    /// `quality | balanced | speed`
    pub const PRIORITY: EnumId = EnumId(0);
    /// `16:9 | 9:16 | 1:1 | 4:3 | 3:4 | 21:9`
    pub const ASPECT_RATIO: EnumId = EnumId(1);
    /// `closed | open | half_open`
    pub const BREAKER: EnumId = EnumId(2);
}

/// The type of an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    /// `true` / `false`
    Bool,
    /// A plain number.
    Num,
    /// US dollars; a number that explain prints as money.
    Money,
    /// Free text.
    Str,
    /// One value of a closed set.
    Enum(EnumId),
}

impl Type {
    /// True for `Num` and `Money`.
    pub fn is_numeric(self) -> bool {
        matches!(self, Type::Num | Type::Money)
    }
}

/// Where a value is read from at evaluation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// `request.priority`
    Priority,
    /// `request.duration`
    Duration,
    /// `request.aspect_ratio`
    AspectRatio,
    /// `request.quality_threshold`
    QualityThreshold,
    /// `request.style`
    Style,
    /// A field the policy declared, by index.
    Field(u16),
    /// Committed plus reserved spend this month.
    MonthlySpend,
    /// `budget.monthly_budget_usd`
    MonthlyBudget,
    /// Budget minus spend.
    BudgetRemaining,
    /// `budget.cost_threshold_usd`
    CostThreshold,
    /// True while any budget remains.
    BudgetLeft,
    /// Attempts that already failed for this request.
    Failures,
    /// Elapsed fraction of the current UTC month, 0 to 1.
    MonthProgress,
    /// Day of the month (UTC), 1 to 31.
    DayOfMonth,
    /// Hour of the day (UTC), 0 to 23.
    Hour,
    /// A backend property that never changes after loading (cost, quality, latency, ...).
    Static(Fixed),
    /// Whether spending `cost` more on backend `.0` stays within the monthly budget and every
    /// level that caps it.
    CostFits(u16, Fixed),
    /// A tenant value, by index: `team`, `org`, `key`, then the policy's `tenant_fields`.
    Tenant(u16),
    /// A figure of the caller's budget at one level (`budget.team.remaining`).
    Level(crate::levels::LevelKind, LevelProp),
    /// A backend's circuit breaker state, by backend index.
    Breaker(u16),
    /// A backend's measured figure, by backend index (see [`crate::measure`]).
    Measured(u16, crate::measure::MeasuredProp),
    /// A figure of the delivered video (`execution.quality_retry.when` only).
    Video(crate::measure::VideoProp),
}

/// A figure of a budget level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelProp {
    /// What the level can still spend now: the least of its monthly and daily remainders.
    Remaining,
    /// Spent or reserved this month (this day, for a level with only a daily budget).
    Spend,
    /// Its monthly budget (its daily one, for a level with only that).
    Budget,
}

impl LevelProp {
    /// By name.
    pub fn parse(s: &str) -> Option<LevelProp> {
        Some(match s {
            "remaining" => LevelProp::Remaining,
            "spend" => LevelProp::Spend,
            "budget" => LevelProp::Budget,
            _ => return None,
        })
    }
}

/// A literal value in the compiled tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// A boolean.
    Bool(bool),
    /// A number or money.
    Num(Fixed),
    /// A string.
    Str(Box<str>),
    /// An enum value by index.
    Enum(u16),
}

/// Arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arith {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Cmp {
    /// From the syntax operator; `None` for arithmetic.
    pub fn from_binop(op: BinOp) -> Option<Cmp> {
        Some(match op {
            BinOp::Eq => Cmp::Eq,
            BinOp::Ne => Cmp::Ne,
            BinOp::Lt => Cmp::Lt,
            BinOp::Le => Cmp::Le,
            BinOp::Gt => Cmp::Gt,
            BinOp::Ge => Cmp::Ge,
            _ => return None,
        })
    }

    /// The same comparison with its operands swapped: `a < b` is `b > a`.
    pub fn flipped(self) -> Cmp {
        match self {
            Cmp::Lt => Cmp::Gt,
            Cmp::Le => Cmp::Ge,
            Cmp::Gt => Cmp::Lt,
            Cmp::Ge => Cmp::Le,
            same => same,
        }
    }

    /// Applies the comparison to an ordering: a bit test against the set of orderings the
    /// operator accepts, without branches.
    #[inline]
    pub fn test(self, o: std::cmp::Ordering) -> bool {
        // Bit 0: less, bit 1: equal, bit 2: greater.
        let accepted: u8 = match self {
            Cmp::Eq => 0b010,
            Cmp::Ne => 0b101,
            Cmp::Lt => 0b001,
            Cmp::Le => 0b011,
            Cmp::Gt => 0b100,
            Cmp::Ge => 0b110,
        };
        accepted >> (o as i8 + 1) & 1 != 0
    }
}

/// A checked expression node.
#[derive(Debug, Clone, PartialEq)]
pub struct CExpr {
    /// What to compute.
    pub kind: CKind,
    /// Its type.
    pub ty: Type,
    /// Where it is in the condition text.
    pub span: Span,
}

/// The kinds of checked expression.
#[derive(Debug, Clone, PartialEq)]
pub enum CKind {
    /// A constant.
    Lit(Lit),
    /// A value from the context.
    Read(Slot),
    /// Boolean negation.
    Not(Box<CExpr>),
    /// Numeric negation.
    Neg(Box<CExpr>),
    /// Short-circuit conjunction.
    And(Box<[CExpr]>),
    /// Short-circuit disjunction.
    Or(Box<[CExpr]>),
    /// Arithmetic on numbers.
    Arith(Arith, Box<CExpr>, Box<CExpr>),
    /// A comparison of two values of compatible types.
    Cmp(Cmp, Box<CExpr>, Box<CExpr>),
    /// Membership in a list of literals.
    In(Box<CExpr>, Box<[Lit]>),
}

impl CExpr {
    /// True for the nodes that explain reports as clauses: the boolean leaves and
    /// comparisons, as opposed to the `AND`/`OR`/`NOT` that combine them.
    pub fn is_clause(&self) -> bool {
        self.ty == Type::Bool && !matches!(self.kind, CKind::And(_) | CKind::Or(_) | CKind::Not(_))
    }

    /// The clauses of this expression, in source order.
    pub fn clauses(&self) -> Vec<&CExpr> {
        let mut out = Vec::new();
        self.collect_clauses(&mut out);
        out
    }

    fn collect_clauses<'a>(&'a self, out: &mut Vec<&'a CExpr>) {
        match &self.kind {
            CKind::And(v) | CKind::Or(v) => v.iter().for_each(|e| e.collect_clauses(out)),
            CKind::Not(e) => e.collect_clauses(out),
            _ if self.is_clause() => out.push(self),
            _ => {}
        }
    }
}
