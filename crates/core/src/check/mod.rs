//! The checker: a located syntax tree in, a typed and resolved [`CExpr`] out.
//!
//! It reports every problem of a condition in one pass rather than stopping at the first: a
//! subtree with an error yields `None`, and its siblings are still checked.

pub mod err;
pub use crate::expr;
mod names;
pub mod scope;

use crate::expr::{Arith, CExpr, CKind, Cmp, EnumId, Lit, Type};
use err::CheckError;
use scope::{did_you_mean, Scope, Unresolved};

use crate::lang::ast::{BinOp, Expr, ExprKind, Span, UnOp};

/// Checks a condition, which must be boolean.
pub fn check_condition(e: &Expr, scope: &Scope<'_>) -> Result<CExpr, Vec<CheckError>> {
    let mut errors = Vec::new();
    let checked = Checker {
        scope,
        errors: &mut errors,
    }
    .expr(e);
    match checked {
        Some(c) if c.ty != Type::Bool => {
            let ty = scope.type_name(c.ty);
            errors.push(CheckError::new(
                "type-mismatch",
                c.span,
                format!("a condition must be true or false, but this is {ty}"),
                "not a boolean",
                "compare it with something, e.g. `duration > 8`",
            ));
            Err(errors)
        }
        Some(c) if errors.is_empty() => Ok(c),
        _ => Err(errors),
    }
}

struct Checker<'s, 'e> {
    scope: &'s Scope<'s>,
    errors: &'e mut Vec<CheckError>,
}

fn node(kind: CKind, ty: Type, span: Span) -> CExpr {
    CExpr { kind, ty, span }
}

impl Checker<'_, '_> {
    fn expr(&mut self, e: &Expr) -> Option<CExpr> {
        match &e.kind {
            ExprKind::Bool(b) => Some(node(CKind::Lit(Lit::Bool(*b)), Type::Bool, e.span)),
            ExprKind::Num(n) => Some(node(CKind::Lit(Lit::Num(*n)), Type::Num, e.span)),
            ExprKind::Str(s) => Some(node(
                CKind::Lit(Lit::Str(s.as_str().into())),
                Type::Str,
                e.span,
            )),
            ExprKind::Name(name) => self.name(name, e.span),
            ExprKind::Unary(UnOp::Not, inner) => {
                let c = self.expect(inner, Type::Bool, "`NOT` applies to true/false values")?;
                Some(fold_not(c, e.span))
            }
            ExprKind::Unary(UnOp::Neg, inner) => {
                let c = self.expr(inner)?;
                if !c.ty.is_numeric() {
                    return self.mismatch(&c, "`-` applies to numbers");
                }
                let ty = c.ty;
                self.fold(node(CKind::Neg(Box::new(c)), ty, e.span))
            }
            ExprKind::And(items) | ExprKind::Or(items) => {
                let help = "`AND` and `OR` combine true/false values";
                let checked: Vec<Option<CExpr>> = items
                    .iter()
                    .map(|i| self.expect(i, Type::Bool, help))
                    .collect();
                let checked: Option<Vec<CExpr>> = checked.into_iter().collect();
                let kind = match e.kind {
                    ExprKind::And(_) => CKind::And(checked?.into()),
                    _ => CKind::Or(checked?.into()),
                };
                Some(node(kind, Type::Bool, e.span))
            }
            ExprKind::Binary(op, a, b) => {
                let (a, b) = (self.expr(a), self.expr(b));
                let (a, b) = (a?, b?);
                match Cmp::from_binop(*op) {
                    Some(cmp) => self.compare(cmp, a, b, e.span),
                    None => self.arith(*op, a, b, e.span),
                }
            }
            ExprKind::In(lhs, items) => self.membership(lhs, items, e.span),
        }
    }

    fn expect(&mut self, e: &Expr, ty: Type, help: &str) -> Option<CExpr> {
        let c = self.expr(e)?;
        if c.ty == ty {
            Some(c)
        } else {
            self.mismatch(&c, help)
        }
    }

    fn mismatch(&mut self, c: &CExpr, help: &str) -> Option<CExpr> {
        let ty = self.scope.type_name(c.ty);
        self.errors.push(CheckError::new(
            "type-mismatch",
            c.span,
            format!("type mismatch: this is {ty}"),
            &ty,
            help,
        ));
        None
    }

    fn name(&mut self, name: &str, span: Span) -> Option<CExpr> {
        match self.scope.resolve(name) {
            Ok((slot, ty)) => Some(node(CKind::Read(slot), ty, span)),
            Err(Unresolved::Unavailable(why)) => {
                self.errors.push(CheckError::new(
                    "unavailable-name",
                    span,
                    format!("`{name}` cannot be read here"),
                    "not available here",
                    &why,
                ));
                None
            }
            Err(Unresolved::Unknown) => {
                let candidates = self.scope.candidates();
                let help = match did_you_mean(name, candidates.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => {
                        "run `genroute names` or see README.md for the names a condition can read"
                            .to_string()
                    }
                };
                self.errors.push(CheckError::new(
                    "unknown-name",
                    span,
                    format!("unknown name `{name}`"),
                    "not a name a condition can read",
                    &help,
                ));
                None
            }
        }
    }

    fn arith(&mut self, op: BinOp, a: CExpr, b: CExpr, span: Span) -> Option<CExpr> {
        let help = "arithmetic applies to numbers and money";
        if !a.ty.is_numeric() {
            return self.mismatch(&a, help);
        }
        if !b.ty.is_numeric() {
            return self.mismatch(&b, help);
        }
        let money = (a.ty == Type::Money, b.ty == Type::Money);
        let (op, ty) = match op {
            BinOp::Add => (
                Arith::Add,
                if money.0 || money.1 {
                    Type::Money
                } else {
                    Type::Num
                },
            ),
            BinOp::Sub => (
                Arith::Sub,
                if money.0 || money.1 {
                    Type::Money
                } else {
                    Type::Num
                },
            ),
            BinOp::Mul => (
                Arith::Mul,
                if money.0 || money.1 {
                    Type::Money
                } else {
                    Type::Num
                },
            ),
            // money / money is a ratio; money / number is still money.
            _ => (
                Arith::Div,
                if money.0 && !money.1 {
                    Type::Money
                } else {
                    Type::Num
                },
            ),
        };
        self.fold(node(CKind::Arith(op, Box::new(a), Box::new(b)), ty, span))
    }

    fn compare(&mut self, cmp: Cmp, a: CExpr, b: CExpr, span: Span) -> Option<CExpr> {
        let ordering = !matches!(cmp, Cmp::Eq | Cmp::Ne);
        let (a, b) = self.unify(a, b)?;
        if ordering && !a.ty.is_numeric() {
            let ty = self.scope.type_name(a.ty);
            self.errors.push(CheckError::new(
                "type-mismatch",
                span,
                format!("`<`, `<=`, `>` and `>=` compare numbers, but this compares {ty}"),
                "not numbers",
                "use `==`, `!=` or `in` for non-numbers",
            ));
            return None;
        }
        self.fold(node(
            CKind::Cmp(cmp, Box::new(a), Box::new(b)),
            Type::Bool,
            span,
        ))
    }

    /// Makes two operands comparable: numbers with numbers (money included), and an enum
    /// with a string literal that names one of its values.
    fn unify(&mut self, a: CExpr, b: CExpr) -> Option<(CExpr, CExpr)> {
        match (a.ty, b.ty) {
            (x, y) if x == y => Some((a, b)),
            (x, y) if x.is_numeric() && y.is_numeric() => Some((a, b)),
            (Type::Enum(id), Type::Str) => {
                let b = self.enum_literal(id, &a, b)?;
                Some((a, b))
            }
            (Type::Str, Type::Enum(id)) => {
                let a = self.enum_literal(id, &b, a)?;
                Some((a, b))
            }
            _ => {
                let (ta, tb) = (self.scope.type_name(a.ty), self.scope.type_name(b.ty));
                let help = match (a.ty, b.ty) {
                    (Type::Money, _) | (_, Type::Money) => {
                        "compare money with a number such as `80` or `0.05`"
                    }
                    (Type::Enum(_), _) | (_, Type::Enum(_)) => {
                        "compare an enum with a quoted value, e.g. `priority == 'quality'`"
                    }
                    _ => "both sides of a comparison must have the same type",
                };
                self.errors.push(CheckError::new(
                    "type-mismatch",
                    a.span.to(b.span),
                    format!("type mismatch: cannot compare {ta} with {tb}"),
                    &format!("{ta} vs {tb}"),
                    help,
                ));
                None
            }
        }
    }

    /// Turns a string literal into the index of an enum value, or reports a misspelling.
    fn enum_literal(&mut self, id: EnumId, subject: &CExpr, lit: CExpr) -> Option<CExpr> {
        let CKind::Lit(Lit::Str(text)) = &lit.kind else {
            let ty = self.scope.type_name(subject.ty);
            self.errors.push(CheckError::new(
                "type-mismatch",
                lit.span,
                format!("type mismatch: {ty} can only be compared with one of its values"),
                "a free-text string",
                "write the value as a quoted literal, e.g. `priority == 'quality'`",
            ));
            return None;
        };
        let def = self.scope.enum_def(id)?;
        if let Some(i) = self.scope.enum_value(id, text) {
            return Some(node(CKind::Lit(Lit::Enum(i)), Type::Enum(id), lit.span));
        }
        let values = def
            .values
            .iter()
            .map(|v| format!("'{v}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let help = match did_you_mean(text, def.values.iter().map(String::as_str)) {
            Some(s) => format!("did you mean '{s}'? `{}` is one of {values}", def.name),
            None => format!("`{}` is one of {values}", def.name),
        };
        self.errors.push(CheckError::new(
            "unknown-enum-value",
            lit.span,
            format!("'{text}' is not a value of `{}`", def.name),
            "not a known value",
            &help,
        ));
        None
    }

    fn membership(&mut self, lhs: &Expr, items: &[Expr], span: Span) -> Option<CExpr> {
        let subject = self.expr(lhs);
        let mut lits = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            let Some(c) = self.expr(item) else {
                ok = false;
                continue;
            };
            if !matches!(c.kind, CKind::Lit(_)) {
                self.errors.push(CheckError::new(
                    "not-a-literal",
                    c.span,
                    "list items must be literal values".to_string(),
                    "not a literal",
                    "write quoted strings, numbers or true/false, e.g. `['9:16', '1:1']`",
                ));
                ok = false;
                continue;
            }
            if let Some(subject) = &subject {
                match self.unify(subject.clone(), c) {
                    Some((
                        _,
                        CExpr {
                            kind: CKind::Lit(l),
                            ..
                        },
                    )) => lits.push(l),
                    _ => ok = false,
                }
            }
        }
        let subject = subject?;
        if !ok {
            return None;
        }
        Some(node(
            CKind::In(Box::new(subject), lits.into()),
            Type::Bool,
            span,
        ))
    }

    /// Folds an operator whose operands are all literals into a literal. An error found while
    /// folding (such as `1 / 0`) is an error in the policy, reported now.
    fn fold(&mut self, e: CExpr) -> Option<CExpr> {
        let all_lits = match &e.kind {
            CKind::Neg(a) => is_lit(a),
            CKind::Arith(_, a, b) | CKind::Cmp(_, a, b) => is_lit(a) && is_lit(b),
            _ => false,
        };
        if !all_lits {
            return Some(e);
        }
        let ctx = crate::eval::Context::constant();
        match crate::eval::evaluate(&e, &ctx) {
            Ok(v) => {
                let lit = match v {
                    crate::eval::Value::Bool(b) => Lit::Bool(b),
                    crate::eval::Value::Num(n) => Lit::Num(n),
                    _ => return Some(e),
                };
                Some(node(CKind::Lit(lit), e.ty, e.span))
            }
            Err(err) => {
                self.errors.push(CheckError::new(
                    "constant-error",
                    e.span,
                    format!("this constant expression fails: {}", err.kind),
                    "always fails",
                    "fix the arithmetic; it does not depend on the request",
                ));
                None
            }
        }
    }
}

fn is_lit(e: &CExpr) -> bool {
    matches!(e.kind, CKind::Lit(_))
}

fn fold_not(c: CExpr, span: Span) -> CExpr {
    match c.kind {
        CKind::Lit(Lit::Bool(b)) => node(CKind::Lit(Lit::Bool(!b)), Type::Bool, span),
        kind => node(CKind::Not(Box::new(CExpr { kind, ..c })), Type::Bool, span),
    }
}
