//! Condition text → located [`Expr`], through the pest grammar in `grammar/condition.pest`.
//!
//! Two guards run before and after pest so that hostile input cannot exhaust the stack:
//! the text length is bounded, and [`check_nesting`] bounds the depth of parentheses and
//! brackets (the only construct that makes the parser recurse). Operator chains are flat
//! repetitions in the grammar and are folded into trees by loops here.

use pest::iterators::Pair;
use pest::Parser as _;

use super::ast::{BinOp, Expr, ExprKind, Span, UnOp};
use super::err::ParseError;

#[derive(pest_derive::Parser)]
#[grammar = "../../../grammar/condition.pest"]
struct Grammar;

/// The longest condition accepted, in bytes.
pub const MAX_CONDITION_LEN: usize = 64 * 1024;
/// The deepest nesting of parentheses and brackets accepted.
pub const MAX_NESTING: usize = 24;
/// The deepest expression tree accepted (operators included).
pub const MAX_DEPTH: usize = 256;

/// Parses one condition.
///
/// ```
/// let e = genroute_core::parse_condition("priority == 'quality' AND budget_available").unwrap();
/// assert_eq!(e.to_string(), "priority == 'quality' AND budget_available");
/// ```
pub fn parse_condition(text: &str) -> Result<Expr, ParseError> {
    check_nesting(text)?;
    if text.len() > MAX_CONDITION_LEN {
        return Err(ParseError::new(
            Span::new(MAX_CONDITION_LEN, text.len()),
            format!(
                "condition is {} bytes long; the limit is {MAX_CONDITION_LEN}",
                text.len()
            ),
            "split it into several rules",
        ));
    }
    let mut pairs = Grammar::parse(Rule::condition, text).map_err(from_pest)?;
    let condition = pairs.next().ok_or_else(|| empty_error(text))?;
    let expr = condition
        .into_inner()
        .find(|p| p.as_rule() == Rule::expr)
        .ok_or_else(|| empty_error(text))?;
    Ok(build(expr)?.0)
}

fn empty_error(text: &str) -> ParseError {
    ParseError::new(
        Span::new(0, text.len()),
        "expected a condition".into(),
        "write an expression such as `priority == 'quality'`",
    )
}

/// Rejects parentheses or brackets nested deeper than [`MAX_NESTING`], skipping string
/// literals, without recursion. Unbalanced brackets are left for the grammar to report.
pub fn check_nesting(text: &str) -> Result<(), ParseError> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                c if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '(' | '[' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(ParseError::new(
                        Span::new(i, i + 1),
                        format!("parentheses nest more than {MAX_NESTING} levels deep"),
                        "remove redundant parentheses or split the condition into several rules",
                    ));
                }
            }
            ')' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// A pair's span without the trailing whitespace pest's implicit skipping leaves in it.
fn span_of(p: &Pair<'_, Rule>) -> Span {
    let s = p.as_span();
    let trimmed = p.as_str().trim_end().len();
    Span::new(s.start(), s.start() + trimmed)
}

fn node(kind: ExprKind, span: Span) -> Expr {
    Expr { kind, span }
}

fn too_deep(span: Span) -> ParseError {
    ParseError::new(
        span,
        format!("condition nests more than {MAX_DEPTH} levels deep"),
        "split it into several rules or flatten it",
    )
}

/// Wraps `e` (of depth `d`) in one more level, refusing to pass [`MAX_DEPTH`], so no deep
/// tree is ever built (and later walked or dropped recursively).
fn deeper(
    e: Expr,
    d: usize,
    kind: impl FnOnce(Box<Expr>) -> ExprKind,
    span: Span,
) -> Result<(Expr, usize), ParseError> {
    if d + 1 > MAX_DEPTH {
        return Err(too_deep(span));
    }
    Ok((node(kind(Box::new(e)), span), d + 1))
}

/// Builds the tree with its depth. Recursion here follows the pair tree, whose depth is
/// bounded by [`check_nesting`]; chains are folded iteratively.
fn build(pair: Pair<'_, Rule>) -> Result<(Expr, usize), ParseError> {
    let span = span_of(&pair);
    Ok(match pair.as_rule() {
        Rule::expr => chain(pair, Rule::or_op)?,
        Rule::and_expr => chain(pair, Rule::and_op)?,
        Rule::not_expr | Rule::unary => {
            let (op_rule, op) = if pair.as_rule() == Rule::not_expr {
                (Rule::not_op, UnOp::Not)
            } else {
                (Rule::neg_op, UnOp::Neg)
            };
            let inner: Vec<_> = pair.into_inner().collect();
            let ops: Vec<Span> = inner
                .iter()
                .filter(|p| p.as_rule() == op_rule)
                .map(span_of)
                .collect();
            if ops.len() > MAX_DEPTH {
                return Err(too_deep(span));
            }
            let (mut e, mut d) = match inner.into_iter().find(|p| p.as_rule() != op_rule) {
                Some(p) => build(p)?,
                None => return Ok((node(ExprKind::Bool(false), span), 1)),
            };
            for o in ops.into_iter().rev() {
                let s = o.to(e.span);
                (e, d) = deeper(e, d, |b| ExprKind::Unary(op, b), s)?;
            }
            (e, d)
        }
        Rule::cmp_expr => {
            let mut inner = pair.into_inner();
            let Some(first) = inner.next() else {
                return Ok((node(ExprKind::Bool(false), span), 1));
            };
            let (lhs, ld) = build(first)?;
            match (inner.next(), inner.next()) {
                (Some(op), Some(rhs)) if op.as_rule() == Rule::in_op => {
                    let mut items = Vec::new();
                    let mut d = ld;
                    for p in rhs.into_inner() {
                        let (item, id) = build(p)?;
                        d = d.max(id);
                        items.push(item);
                    }
                    deeper(lhs, d, |b| ExprKind::In(b, items), span)?
                }
                (Some(op), Some(rhs)) => {
                    let op = binop(op.as_str());
                    let (rhs, rd) = build(rhs)?;
                    deeper(
                        lhs,
                        ld.max(rd),
                        |b| ExprKind::Binary(op, b, Box::new(rhs)),
                        span,
                    )?
                }
                _ => (lhs, ld),
            }
        }
        Rule::sum | Rule::product => {
            let mut inner = pair.into_inner();
            let Some(first) = inner.next() else {
                return Ok((node(ExprKind::Bool(false), span), 1));
            };
            let (mut acc, mut d) = build(first)?;
            while let (Some(op), Some(rhs)) = (inner.next(), inner.next()) {
                let (rhs, rd) = build(rhs)?;
                let s = acc.span.to(rhs.span);
                let op = binop(op.as_str());
                (acc, d) = deeper(
                    acc,
                    d.max(rd),
                    |b| ExprKind::Binary(op, b, Box::new(rhs)),
                    s,
                )?;
            }
            (acc, d)
        }
        Rule::boolean => (
            node(
                ExprKind::Bool(pair.as_str().eq_ignore_ascii_case("true")),
                span,
            ),
            1,
        ),
        Rule::number => match pair.as_str().parse() {
            Ok(n) => (node(ExprKind::Num(n), span), 1),
            Err(e) => {
                let help = "numbers have at most 6 decimal places and 12 integer digits";
                return Err(ParseError::new(span, e.to_string(), help));
            }
        },
        Rule::string => (node(ExprKind::Str(unescape(pair)), span), 1),
        Rule::name => (node(ExprKind::Name(pair.as_str().to_string()), span), 1),
        // Unreachable for well-formed pest output; a harmless leaf keeps this total.
        _ => (node(ExprKind::Bool(false), span), 1),
    })
}

/// Folds `a op b op c` into one n-ary node, splicing in parenthesised chains of the same
/// operator (`(a AND b) AND c` is `a AND b AND c`).
fn chain(pair: Pair<'_, Rule>, op: Rule) -> Result<(Expr, usize), ParseError> {
    let span = span_of(&pair);
    let is_or = op == Rule::or_op;
    let mut items = Vec::new();
    let mut depth = 0;
    for p in pair.into_inner().filter(|p| p.as_rule() != op) {
        let (e, d) = build(p)?;
        depth = depth.max(d);
        match e {
            Expr {
                kind: ExprKind::Or(v),
                ..
            } if is_or => items.extend(v),
            Expr {
                kind: ExprKind::And(v),
                ..
            } if !is_or => items.extend(v),
            e => items.push(e),
        }
    }
    if items.len() == 1 {
        let e = items
            .pop()
            .unwrap_or_else(|| node(ExprKind::Bool(false), span));
        return Ok((e, depth));
    }
    if depth + 1 > MAX_DEPTH {
        return Err(too_deep(span));
    }
    Ok((
        node(
            if is_or {
                ExprKind::Or(items)
            } else {
                ExprKind::And(items)
            },
            span,
        ),
        depth + 1,
    ))
}

fn binop(s: &str) -> BinOp {
    match s {
        "+" => BinOp::Add,
        "-" => BinOp::Sub,
        "*" => BinOp::Mul,
        "/" => BinOp::Div,
        "==" => BinOp::Eq,
        "!=" => BinOp::Ne,
        "<" => BinOp::Lt,
        "<=" => BinOp::Le,
        ">" => BinOp::Gt,
        _ => BinOp::Ge,
    }
}

fn unescape(pair: Pair<'_, Rule>) -> String {
    let raw = pair.into_inner().next().map(|p| p.as_str()).unwrap_or("");
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('u') => {
                let hex: String = chars.by_ref().skip(1).take_while(|c| *c != '}').collect();
                let c = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                out.push(c.unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn from_pest(e: pest::error::Error<Rule>) -> ParseError {
    use pest::error::{ErrorVariant, InputLocation};
    let span = match e.location {
        InputLocation::Pos(p) => Span::new(p, p + 1),
        InputLocation::Span((a, b)) => Span::new(a, b.max(a + 1)),
    };
    let (message, help) = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut wanted: Vec<&str> = positives.iter().filter_map(|r| describe(*r)).collect();
            wanted.sort_unstable();
            wanted.dedup();
            let message = if wanted.is_empty() {
                "unexpected input".to_string()
            } else {
                format!("expected {}", list(&wanted))
            };
            (message, help_for(&wanted))
        }
        ErrorVariant::CustomError { message } => (message.clone(), ""),
    };
    ParseError::new(span, message, help)
}

fn describe(r: Rule) -> Option<&'static str> {
    Some(match r {
        Rule::expr | Rule::and_expr | Rule::not_expr | Rule::cmp_expr => "an expression",
        Rule::sum | Rule::product | Rule::unary => "an expression",
        Rule::name | Rule::ident => "a name",
        Rule::number => "a number",
        Rule::string => "a string",
        Rule::boolean => "`true` or `false`",
        Rule::list => "a list such as `['a', 'b']`",
        Rule::or_op => "`OR`",
        Rule::and_op => "`AND`",
        Rule::not_op => "`NOT`",
        Rule::in_op => "`in`",
        Rule::cmp_op => "a comparison operator",
        Rule::add_op | Rule::mul_op => "an arithmetic operator",
        Rule::EOI => "the end of the condition",
        _ => return None,
    })
}

fn list(items: &[&str]) -> String {
    match items {
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
        [] => String::new(),
    }
}

fn help_for(wanted: &[&str]) -> &'static str {
    if wanted.contains(&"the end of the condition") {
        "join clauses with `AND` or `OR`, and check that parentheses are balanced"
    } else if wanted.contains(&"an expression") || wanted.contains(&"a name") {
        "operands are names, numbers, quoted strings, `true`/`false` or parenthesised expressions"
    } else {
        "see the language reference in README.md"
    }
}
