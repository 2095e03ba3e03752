//! The router's compiled form of a condition.
//!
//! The checked tree ([`CExpr`]) keeps a span on every node and a general [`Value`] at every
//! step, which is what explain needs. Deciding needs none of that, so each condition is also
//! compiled, once at load, into a [`Program`]: a tree of typed nodes in which
//!
//! - constant subtrees are folded, backend figures included (a backend's cost or quality never
//!   changes after loading);
//! - an enum test (`==`, `!=`, `in`, and their negation) is one bit test against a set;
//! - a number compared with a constant is one node that reads its slot and compares;
//! - booleans and numbers are never boxed into a [`Value`], and errors carry only their kind.
//!
//! The program and the tree are two evaluators of one language, so a property test checks
//! that they agree on random conditions and contexts (`tests/properties.rs`). Anything the
//! program has no special node for (ordering of enums or strings, say) runs through the tree
//! walker, so the program never has to be complete to be correct.
//!
//! With the `jit` feature (on by default) a program is also turned into machine code
//! (`program/jit/`, Cranelift). A policy's rules are generated together, into one block of
//! memory, on the policy's first decision or through [`crate::Policy::compile_native`]; a
//! program on its own (a standalone condition) on its first evaluation. The machine code
//! answers the common case and defers anything unusual (an error, arithmetic past 64 bits)
//! to the node interpreter below, which stays the definition. A program with a tree-walker
//! node, or a host without a JIT, has no machine code and runs in the interpreter.

use crate::expr::{Arith, CExpr, CKind, Cmp, Lit, Slot, Type};
use crate::num::Fixed;

use super::{arith, evaluate, evaluate_bool, Context, EvalErrorKind, FieldValue, Value};

#[cfg(feature = "jit")]
mod jit;

/// A compiled condition. See the module docs.
#[derive(Debug, Clone)]
pub struct Program {
    root: Node,
    /// Machine code for `root`, where the generator covers it and the host has a JIT;
    /// generated on the first evaluation or by [`Program::compile_native`].
    #[cfg(feature = "jit")]
    native: jit::NativeCell,
}

impl PartialEq for Program {
    /// Programs are equal when their nodes are; the machine code follows from them.
    fn eq(&self, other: &Program) -> bool {
        self.root == other.root
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Const(bool),
    /// The enum read from `slot` is in `set` (bit `i` for index `i`); an index past 63,
    /// which only an enum of more than 64 values has, gives `beyond`.
    Enum {
        slot: Slot,
        set: u64,
        beyond: bool,
    },
    /// The text read from `slot` is one of `values` (`==` and `in`; `!=` is its negation).
    Str {
        slot: Slot,
        values: Box<[Box<str>]>,
    },
    /// A boolean read.
    Flag(Slot),
    /// `slot op k`.
    NumK {
        slot: Slot,
        op: Cmp,
        k: Fixed,
    },
    /// `a op b`, both numeric.
    Num {
        op: Cmp,
        a: NumNode,
        b: NumNode,
    },
    Not(Box<Node>),
    All(Box<[Node]>),
    Any(Box<[Node]>),
    /// Anything else, by the tree walker.
    Tree(Box<CExpr>),
}

#[derive(Debug, Clone, PartialEq)]
enum NumNode {
    K(Fixed),
    Slot(Slot),
    Neg(Box<NumNode>),
    Arith(Arith, Box<NumNode>, Box<NumNode>),
    Tree(Box<CExpr>),
}

impl Program {
    /// Compiles a checked boolean condition.
    pub fn compile(e: &CExpr) -> Program {
        Program {
            root: node(e),
            #[cfg(feature = "jit")]
            native: jit::NativeCell::new(),
        }
    }

    /// Generates the machine code now, if it was not yet, and says whether the program runs as
    /// machine code. Without this call the code is generated on the first evaluation (about
    /// 0.1 ms per condition); a policy's rules are generated together by
    /// [`crate::Policy::compile_native`], which a service calls before a policy takes traffic.
    pub fn compile_native(&self) -> bool {
        #[cfg(feature = "jit")]
        return self.generate_native();
        #[cfg(not(feature = "jit"))]
        false
    }

    /// Whether the program runs as machine code, without generating any: false until it was
    /// generated.
    pub(crate) fn has_native(&self) -> bool {
        #[cfg(feature = "jit")]
        return self.native.has_code();
        #[cfg(not(feature = "jit"))]
        false
    }

    /// Generates this program's code alone, unless it was tried already; whether it has code.
    #[cfg(feature = "jit")]
    #[cold]
    #[inline(never)]
    fn generate_native(&self) -> bool {
        let native = if self.native.tried() {
            None
        } else {
            jit::Native::compile_all(&[&self.root]).pop().flatten()
        };
        self.native.publish(native)
    }

    /// Generates machine code for every program in `programs` that has none yet, all in one
    /// module so that the code sits together in memory (see [`crate::Policy::compile_native`]).
    pub(crate) fn compile_native_all(programs: &[&Program]) {
        #[cfg(feature = "jit")]
        {
            let pending: Vec<&Program> = programs
                .iter()
                .copied()
                .filter(|p| !p.native.tried())
                .collect();
            let roots: Vec<&Node> = pending.iter().map(|p| &p.root).collect();
            for (program, native) in pending.iter().zip(jit::Native::compile_all(&roots)) {
                program.native.publish(native);
            }
        }
        #[cfg(not(feature = "jit"))]
        let _ = programs;
    }

    /// Evaluates it: the machine code when it has an answer, else the interpreter. The error,
    /// if any, is the one the tree walker would locate; call [`super::evaluate_bool`] on the
    /// tree to get its span.
    #[inline(always)]
    pub fn run(&self, ctx: &Context<'_>) -> Result<bool, EvalErrorKind> {
        #[cfg(feature = "jit")]
        {
            let answer = self.native.run(ctx);
            if answer < jit::DEFER {
                return Ok(answer != jit::FALSE);
            }
            self.run_unanswered(answer, ctx)
        }
        #[cfg(not(feature = "jit"))]
        self.run_interpreted(ctx)
    }

    /// The machine code had no answer: it deferred, or it does not exist yet (then it is
    /// generated and asked once more; after that the entry never answers pending again).
    #[cfg(feature = "jit")]
    #[cold]
    #[inline(never)]
    fn run_unanswered(&self, answer: u32, ctx: &Context<'_>) -> Result<bool, EvalErrorKind> {
        let answer = match answer {
            jit::PENDING if self.generate_native() => self.native.run(ctx),
            other => other,
        };
        if answer < jit::DEFER {
            return Ok(answer != jit::FALSE);
        }
        self.run_interpreted(ctx)
    }

    /// The machine code's answer alone: `None` when there is no machine code (the `jit`
    /// feature is off, the host has no JIT, or the condition needs the tree walker) or when it
    /// deferred to the interpreter (an error, or a number outside its 64-bit fast paths).
    pub fn run_native(&self, ctx: &Context<'_>) -> Option<bool> {
        #[cfg(feature = "jit")]
        if self.compile_native() {
            let answer = self.native.run(ctx);
            return (answer < jit::DEFER).then_some(answer != jit::FALSE);
        }
        let _ = ctx;
        None
    }

    /// The interpreter's answer alone, never the machine code's. Out of line, so that the
    /// caller of [`Program::run`] stays small where the machine code answers.
    #[cfg_attr(feature = "jit", inline(never))]
    pub fn run_interpreted(&self, ctx: &Context<'_>) -> Result<bool, EvalErrorKind> {
        run(&self.root, ctx)
    }
}

// ------------------------------------------------------------------------------ compiling

/// Whether `e` reads nothing that changes between decisions.
fn is_constant(e: &CExpr) -> bool {
    match &e.kind {
        CKind::Lit(_) => true,
        CKind::Read(slot) => matches!(slot, Slot::Static(_)),
        CKind::Not(a) | CKind::Neg(a) | CKind::In(a, _) => is_constant(a),
        CKind::And(v) | CKind::Or(v) => v.iter().all(is_constant),
        CKind::Arith(_, a, b) | CKind::Cmp(_, a, b) => is_constant(a) && is_constant(b),
    }
}

fn node(e: &CExpr) -> Node {
    if is_constant(e) {
        // A constant that fails (say `1 / 0 > 1`) stays in the tree, so it fails at run time
        // exactly as the tree walker does.
        if let Ok(b) = evaluate_bool(e, &Context::constant()) {
            return Node::Const(b);
        }
        return Node::Tree(Box::new(e.clone()));
    }
    match &e.kind {
        CKind::Read(slot) if e.ty == Type::Bool => Node::Flag(*slot),
        CKind::Not(a) => negate(node(a)),
        CKind::And(items) => all(items.iter().map(node).collect()),
        CKind::Or(items) => any(items.iter().map(node).collect()),
        CKind::In(a, items) => match (enum_slot(a), enum_set(items.iter())) {
            (Some(slot), Some(set)) => Node::Enum {
                slot,
                set,
                beyond: false,
            },
            _ => match (str_slot(a), str_values(items.iter())) {
                (Some(slot), Some(values)) => Node::Str { slot, values },
                _ => Node::Tree(Box::new(e.clone())),
            },
        },
        CKind::Cmp(op, a, b) => {
            compare(*op, a, b).unwrap_or_else(|| Node::Tree(Box::new(e.clone())))
        }
        _ => Node::Tree(Box::new(e.clone())),
    }
}

fn compare(op: Cmp, a: &CExpr, b: &CExpr) -> Option<Node> {
    if a.ty.is_numeric() && b.ty.is_numeric() {
        let (x, y) = (num(a), num(b));
        return Some(match (x, y) {
            (NumNode::Slot(slot), NumNode::K(k)) => Node::NumK { slot, op, k },
            (NumNode::K(k), NumNode::Slot(slot)) => Node::NumK {
                slot,
                op: op.flipped(),
                k,
            },
            (a, b) => Node::Num { op, a, b },
        });
    }
    let eq = match op {
        Cmp::Eq => true,
        Cmp::Ne => false,
        _ => return None,
    };
    // Equality is symmetric: `'quality' == priority` is `priority == 'quality'`.
    let (x, k) = if is_constant(a) { (b, a) } else { (a, b) };
    if !is_constant(k) {
        return None;
    }
    let tested = if let Some(slot) = enum_slot(x) {
        Node::Enum {
            slot,
            set: enum_set(std::iter::once(&constant_lit(k)?))?,
            beyond: false,
        }
    } else if let (Some(slot), CKind::Lit(text @ Lit::Str(_))) = (str_slot(x), &k.kind) {
        Node::Str {
            slot,
            values: str_values(std::iter::once(text))?,
        }
    } else if x.ty == Type::Bool {
        bool_test(x, constant_lit(k)?)?
    } else {
        return None;
    };
    Some(if eq { tested } else { negate(tested) })
}

/// `e == lit` for a boolean `e`.
fn bool_test(e: &CExpr, lit: Lit) -> Option<Node> {
    match lit {
        Lit::Bool(true) => Some(node(e)),
        Lit::Bool(false) => Some(negate(node(e))),
        _ => None,
    }
}

fn constant_lit(e: &CExpr) -> Option<Lit> {
    Some(match evaluate(e, &Context::constant()).ok()? {
        Value::Bool(b) => Lit::Bool(b),
        Value::Num(n) => Lit::Num(n),
        Value::Enum(i) => Lit::Enum(i),
        Value::Str(_) => return None,
    })
}

fn enum_slot(e: &CExpr) -> Option<Slot> {
    match (&e.kind, e.ty) {
        (CKind::Read(slot), Type::Enum(_)) => Some(*slot),
        _ => None,
    }
}

fn str_slot(e: &CExpr) -> Option<Slot> {
    match (&e.kind, e.ty) {
        (CKind::Read(slot), Type::Str) => Some(*slot),
        _ => None,
    }
}

fn str_values<'a>(items: impl Iterator<Item = &'a Lit>) -> Option<Box<[Box<str>]>> {
    items
        .map(|item| match item {
            Lit::Str(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn enum_set<'a>(items: impl Iterator<Item = &'a Lit>) -> Option<u64> {
    let mut set = 0u64;
    for item in items {
        match item {
            Lit::Enum(i) if *i < 64 => set |= 1 << i,
            _ => return None,
        }
    }
    Some(set)
}

fn num(e: &CExpr) -> NumNode {
    if is_constant(e) {
        if let Ok(Value::Num(n)) = evaluate(e, &Context::constant()) {
            return NumNode::K(n);
        }
        return NumNode::Tree(Box::new(e.clone()));
    }
    match &e.kind {
        CKind::Read(slot) => NumNode::Slot(*slot),
        CKind::Neg(a) => NumNode::Neg(Box::new(num(a))),
        CKind::Arith(op, a, b) => NumNode::Arith(*op, Box::new(num(a)), Box::new(num(b))),
        _ => NumNode::Tree(Box::new(e.clone())),
    }
}

fn negate(n: Node) -> Node {
    match n {
        Node::Const(b) => Node::Const(!b),
        Node::Enum { slot, set, beyond } => Node::Enum {
            slot,
            set: !set,
            beyond: !beyond,
        },
        Node::Not(inner) => *inner,
        other => Node::Not(Box::new(other)),
    }
}

/// A conjunction, simplified: `true` items dropped, nothing after a `false` kept (it can
/// never run), a single item unwrapped. Items before a `false` stay: they may fail.
fn all(items: Vec<Node>) -> Node {
    junction(items, false, Node::All)
}

/// A disjunction, simplified as [`all`] with the roles of `true` and `false` swapped.
fn any(items: Vec<Node>) -> Node {
    junction(items, true, Node::Any)
}

fn junction(items: Vec<Node>, stop: bool, make: fn(Box<[Node]>) -> Node) -> Node {
    let mut kept = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Node::Const(b) if b == stop => {
                kept.push(Node::Const(stop));
                break;
            }
            Node::Const(_) => {}
            other => kept.push(other),
        }
    }
    match kept.len() {
        0 => Node::Const(!stop),
        1 => kept.pop().unwrap_or(Node::Const(!stop)),
        _ => make(kept.into_boxed_slice()),
    }
}

// ------------------------------------------------------------------------------- running

/// Runs a node. Junctions loop over their items with each leaf test inlined into the loop,
/// so a flat `AND` of leaves costs no call per clause (callgrind: call overhead was most of a
/// 10-clause condition's instructions).
fn run(n: &Node, ctx: &Context<'_>) -> Result<bool, EvalErrorKind> {
    match n {
        Node::All(items) => {
            for item in items.iter() {
                if !step(item, ctx)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Node::Any(items) => {
            for item in items.iter() {
                if step(item, ctx)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        _ => step(n, ctx),
    }
}

#[inline(always)]
fn step(n: &Node, ctx: &Context<'_>) -> Result<bool, EvalErrorKind> {
    match n {
        Node::Const(b) => Ok(*b),
        Node::Enum { slot, set, beyond } => {
            let i = read_enum(*slot, ctx)?;
            Ok(if i < 64 { set >> i & 1 != 0 } else { *beyond })
        }
        Node::Str { slot, values } => {
            let text = read_str(*slot, ctx)?;
            Ok(values.iter().any(|v| **v == *text))
        }
        Node::Flag(slot) => read_flag(*slot, ctx),
        Node::NumK { slot, op, k } => Ok(op.test(read_num(*slot, ctx)?.cmp(k))),
        Node::Num { op, a, b } => Ok(op.test(num_step(a, ctx)?.cmp(&num_step(b, ctx)?))),
        Node::Not(a) => Ok(!run(a, ctx)?),
        Node::All(_) | Node::Any(_) => run(n, ctx),
        Node::Tree(e) => evaluate_bool(e, ctx).map_err(|e| e.kind),
    }
}

/// A numeric operand: slots and constants inline, anything else by a call.
#[inline(always)]
fn num_step(n: &NumNode, ctx: &Context<'_>) -> Result<Fixed, EvalErrorKind> {
    match n {
        NumNode::K(k) => Ok(*k),
        NumNode::Slot(slot) => read_num(*slot, ctx),
        _ => run_num(n, ctx),
    }
}

fn run_num(n: &NumNode, ctx: &Context<'_>) -> Result<Fixed, EvalErrorKind> {
    match n {
        NumNode::K(k) => Ok(*k),
        NumNode::Slot(slot) => read_num(*slot, ctx),
        NumNode::Neg(a) => run_num(a, ctx)?
            .checked_neg()
            .ok_or(EvalErrorKind::Overflow),
        NumNode::Arith(op, a, b) => arith(*op, run_num(a, ctx)?, run_num(b, ctx)?),
        NumNode::Tree(e) => match evaluate(e, ctx) {
            Ok(Value::Num(n)) => Ok(n),
            Ok(_) => Err(EvalErrorKind::NotNumeric),
            Err(e) => Err(e.kind),
        },
    }
}

/// Reads a numeric slot.
#[inline(always)]
pub(super) fn read_num(slot: Slot, ctx: &Context<'_>) -> Result<Fixed, EvalErrorKind> {
    Ok(match slot {
        Slot::Duration => ctx.duration,
        Slot::QualityThreshold => ctx.quality_threshold,
        Slot::MonthlySpend => ctx.monthly_spend,
        Slot::MonthlyBudget => ctx.monthly_budget,
        Slot::BudgetRemaining => ctx
            .monthly_budget
            .checked_sub(ctx.monthly_spend)
            .ok_or(EvalErrorKind::Overflow)?,
        Slot::CostThreshold => ctx.cost_threshold,
        Slot::Failures => ctx.failures,
        Slot::MonthProgress => ctx.month_progress,
        Slot::DayOfMonth => ctx.day_of_month,
        Slot::Hour => ctx.hour,
        Slot::Static(v) => v,
        Slot::Measured(b, p) => match ctx.measured.get(b as usize) {
            Some(m) => m.get(p).ok_or(EvalErrorKind::NoData)?,
            None if p == crate::measure::MeasuredProp::Samples => Fixed::ZERO,
            None => return Err(EvalErrorKind::NoData),
        },
        Slot::Video(p) => ctx
            .video
            .and_then(|v| v.num(p))
            .ok_or(EvalErrorKind::NoData)?,
        Slot::Field(i) => match ctx.fields.get(i as usize) {
            Some(Some(FieldValue::Num(n))) => *n,
            Some(Some(_)) => return Err(EvalErrorKind::NotNumeric),
            _ => return Err(EvalErrorKind::Unset),
        },
        Slot::Tenant(i) => match ctx.tenant.get(i as usize) {
            Some(Some(FieldValue::Num(n))) => *n,
            Some(Some(_)) => return Err(EvalErrorKind::NotNumeric),
            _ => return Err(EvalErrorKind::NoTenant),
        },
        Slot::Level(kind, prop) => ctx.level(kind, prop)?,
        _ => return Err(EvalErrorKind::NotNumeric),
    })
}

/// Reads a text slot.
#[inline(always)]
pub(super) fn read_str<'a>(slot: Slot, ctx: &Context<'a>) -> Result<&'a str, EvalErrorKind> {
    match slot {
        Slot::Style => ctx.style.ok_or(EvalErrorKind::Unset),
        Slot::Field(i) => match ctx.fields.get(i as usize) {
            Some(Some(FieldValue::Str(s))) => Ok(s),
            _ => Err(EvalErrorKind::Unset),
        },
        Slot::Tenant(i) => match ctx.tenant.get(i as usize) {
            Some(Some(FieldValue::Str(s))) => Ok(s),
            _ => Err(EvalErrorKind::NoTenant),
        },
        _ => Err(EvalErrorKind::NotBoolean),
    }
}

/// Reads an enum slot, as its index.
#[inline(always)]
pub(super) fn read_enum(slot: Slot, ctx: &Context<'_>) -> Result<u16, EvalErrorKind> {
    Ok(match slot {
        Slot::Priority => ctx.priority,
        Slot::AspectRatio => ctx.aspect_ratio,
        Slot::Breaker(i) => ctx.breakers.get(i as usize).copied().unwrap_or_default() as u16,
        Slot::Field(i) => match ctx.fields.get(i as usize) {
            Some(Some(FieldValue::Enum(e))) => *e,
            _ => return Err(EvalErrorKind::Unset),
        },
        Slot::Tenant(i) => match ctx.tenant.get(i as usize) {
            Some(Some(FieldValue::Enum(e))) => *e,
            _ => return Err(EvalErrorKind::NoTenant),
        },
        _ => return Err(EvalErrorKind::NotBoolean),
    })
}

/// Reads a boolean slot.
#[inline(always)]
pub(super) fn read_flag(slot: Slot, ctx: &Context<'_>) -> Result<bool, EvalErrorKind> {
    Ok(match slot {
        Slot::BudgetLeft => ctx.monthly_spend < ctx.monthly_budget,
        Slot::CostFits(b, cost) => ctx.cost_fits(b, cost),
        Slot::Video(p) => ctx
            .video
            .and_then(|v| v.flag(p))
            .ok_or(EvalErrorKind::NoData)?,
        Slot::Field(i) => match ctx.fields.get(i as usize) {
            Some(Some(FieldValue::Bool(b))) => *b,
            _ => return Err(EvalErrorKind::Unset),
        },
        Slot::Tenant(i) => match ctx.tenant.get(i as usize) {
            Some(Some(FieldValue::Bool(b))) => *b,
            _ => return Err(EvalErrorKind::NoTenant),
        },
        _ => return Err(EvalErrorKind::NotBoolean),
    })
}
