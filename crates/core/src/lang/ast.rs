//! The located syntax tree of a condition, and its canonical printer.
//!
//! Spans are byte offsets into the condition text. The policy loader maps them to the
//! line and column of the YAML file, so the tree itself does not need to know about files.
//!
//! `AND` and `OR` chains are n-ary (`And(vec![a, b, c])`): a long conjunction is one node, not
//! a deep tree, and explain can show each conjunct as a clause.

use std::fmt;

use crate::num::Fixed;

/// A byte range in a condition's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// A span from byte offsets.
    pub fn new(start: usize, end: usize) -> Span {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Span {
            start: clamp(start),
            end: clamp(end),
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// As a `Range<usize>` for slicing.
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A located expression. Equality compares structure and ignores spans, so a tree equals
/// the tree parsed back from its printed form.
#[derive(Debug, Clone)]
pub struct Expr {
    /// What the expression is.
    pub kind: ExprKind,
    /// Where it is in the condition text.
    pub span: Span,
}

impl PartialEq for Expr {
    fn eq(&self, other: &Expr) -> bool {
        self.kind == other.kind
    }
}

/// The kinds of expression.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// `true` / `false`
    Bool(bool),
    /// A non-negative decimal literal (negation is [`UnOp::Neg`]).
    Num(Fixed),
    /// A string literal, unescaped.
    Str(String),
    /// A dotted name such as `priority` or `backends.veo.breaker`.
    Name(String),
    /// `NOT e` or `-e`.
    Unary(UnOp, Box<Expr>),
    /// Arithmetic or comparison.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `e in [a, b]`.
    In(Box<Expr>, Vec<Expr>),
    /// A conjunction of two or more operands.
    And(Vec<Expr>),
    /// A disjunction of two or more operands.
    Or(Vec<Expr>),
}

/// Prefix operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    /// `NOT` / `!`
    Not,
    /// `-`
    Neg,
}

/// Infix operators other than `AND`, `OR` and `in`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
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

impl BinOp {
    /// The operator as written in canonical form.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
        }
    }

    /// True for `== != < <= > >=`.
    pub fn is_comparison(self) -> bool {
        !matches!(self, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div)
    }
}

/// Binding strength, loosest first. The grammar and the printer both follow this table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Prec {
    /// `OR`
    Or,
    /// `AND`
    And,
    /// `NOT`
    Not,
    /// comparisons and `in`
    Cmp,
    /// `+ -`
    Sum,
    /// `* /`
    Product,
    /// unary `-`
    Neg,
    /// literals, names, parentheses
    Atom,
}

impl Expr {
    /// How tightly this expression binds when printed without parentheses.
    pub fn prec(&self) -> Prec {
        match &self.kind {
            ExprKind::Or(_) => Prec::Or,
            ExprKind::And(_) => Prec::And,
            ExprKind::Unary(UnOp::Not, _) => Prec::Not,
            ExprKind::Unary(UnOp::Neg, _) => Prec::Neg,
            ExprKind::In(..) => Prec::Cmp,
            ExprKind::Binary(op, ..) if op.is_comparison() => Prec::Cmp,
            ExprKind::Binary(BinOp::Add | BinOp::Sub, ..) => Prec::Sum,
            ExprKind::Binary(..) => Prec::Product,
            _ => Prec::Atom,
        }
    }

    /// Nesting depth of the tree (a leaf has depth 1).
    pub fn depth(&self) -> usize {
        1 + match &self.kind {
            ExprKind::Unary(_, e) => e.depth(),
            ExprKind::Binary(_, a, b) => a.depth().max(b.depth()),
            ExprKind::In(e, items) => items
                .iter()
                .map(Expr::depth)
                .max()
                .unwrap_or(0)
                .max(e.depth()),
            ExprKind::And(v) | ExprKind::Or(v) => v.iter().map(Expr::depth).max().unwrap_or(0),
            _ => 0,
        }
    }
}

/// Writes `s` as a single-quoted condition string literal.
pub fn quote(s: &str, out: &mut impl fmt::Write) -> fmt::Result {
    out.write_char('\'')?;
    for c in s.chars() {
        match c {
            '\'' => out.write_str("\\'")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\t' => out.write_str("\\t")?,
            '\r' => out.write_str("\\r")?,
            '\0' => out.write_str("\\0")?,
            c if c.is_control() => write!(out, "\\u{{{:x}}}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('\'')
}

/// The canonical form: keywords in upper case, single quotes, one space around binary
/// operators, and only the parentheses that precedence requires. Parsing the printed text
/// gives back the same tree.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Bool(b) => f.write_str(if *b { "true" } else { "false" }),
            ExprKind::Num(n) => write!(f, "{n}"),
            ExprKind::Str(s) => quote(s, f),
            ExprKind::Name(n) => f.write_str(n),
            ExprKind::Unary(UnOp::Not, e) => {
                f.write_str("NOT ")?;
                child(f, e, Prec::Not, false)
            }
            ExprKind::Unary(UnOp::Neg, e) => {
                f.write_str("-")?;
                child(f, e, Prec::Neg, false)
            }
            ExprKind::Binary(op, a, b) => {
                let p = self.prec();
                // Comparisons do not chain, so both sides of one must bind tighter.
                child(f, a, p, op.is_comparison())?;
                write!(f, " {} ", op.symbol())?;
                child(f, b, p, true)
            }
            ExprKind::In(e, items) => {
                child(f, e, Prec::Cmp, true)?;
                f.write_str(" in [")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            ExprKind::And(v) => join(f, v, " AND ", Prec::And),
            ExprKind::Or(v) => join(f, v, " OR ", Prec::Or),
        }
    }
}

fn join(f: &mut fmt::Formatter<'_>, items: &[Expr], sep: &str, p: Prec) -> fmt::Result {
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        // A nested chain of the same kind only exists if it was parenthesised, so keep it so.
        child(f, e, p, true)?;
    }
    Ok(())
}

/// Prints `e` as an operand of an operator with precedence `p`. With `strict`, an operand of
/// the same precedence is parenthesised too (right operands, and non-chaining operators).
fn child(f: &mut fmt::Formatter<'_>, e: &Expr, p: Prec, strict: bool) -> fmt::Result {
    let needs = if strict { e.prec() <= p } else { e.prec() < p };
    // `- 5` and `-5` are the same tree; a leading minus on a negation stays readable as `--x`.
    if needs && e.prec() != Prec::Atom {
        write!(f, "({e})")
    } else {
        write!(f, "{e}")
    }
}
