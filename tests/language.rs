//! The condition language: precedence, spellings, literals and syntax errors.

use genroute::lang::ast::{Expr, ExprKind, UnOp};
use genroute::parse_condition;

/// Fully parenthesised prefix form, so a test states the tree it expects.
fn sexpr(e: &Expr) -> String {
    let list = |items: &[Expr]| items.iter().map(sexpr).collect::<Vec<_>>().join(" ");
    match &e.kind {
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Num(n) => n.to_string(),
        ExprKind::Str(s) => format!("{s:?}"),
        ExprKind::Name(n) => n.clone(),
        ExprKind::Unary(UnOp::Not, a) => format!("(not {})", sexpr(a)),
        ExprKind::Unary(UnOp::Neg, a) => format!("(neg {})", sexpr(a)),
        ExprKind::Binary(op, a, b) => format!("({} {} {})", op.symbol(), sexpr(a), sexpr(b)),
        ExprKind::In(a, items) => format!("(in {} [{}])", sexpr(a), list(items)),
        ExprKind::And(v) => format!("(and {})", list(v)),
        ExprKind::Or(v) => format!("(or {})", list(v)),
    }
}

fn tree(text: &str) -> String {
    sexpr(&parse_condition(text).unwrap_or_else(|e| panic!("`{text}` should parse: {e}")))
}

fn error(text: &str) -> String {
    match parse_condition(text) {
        Ok(e) => panic!("`{text}` should not parse, got {}", sexpr(&e)),
        Err(e) => e.message,
    }
}

#[test]
fn and_binds_tighter_than_or() {
    assert_eq!(tree("a OR b AND c"), "(or a (and b c))");
    assert_eq!(tree("a AND b OR c"), "(or (and a b) c)");
}

#[test]
fn not_binds_looser_than_comparison_and_tighter_than_and() {
    assert_eq!(tree("NOT a == 1"), "(not (== a 1))");
    assert_eq!(tree("!a == 1"), "(not (== a 1))");
    assert_eq!(tree("NOT a AND b"), "(and (not a) b)");
    assert_eq!(tree("NOT NOT a"), "(not (not a))");
}

#[test]
fn arithmetic_binds_tighter_than_comparison_and_is_left_associative() {
    assert_eq!(tree("a + b * c > 1"), "(> (+ a (* b c)) 1)");
    assert_eq!(tree("a - b - c"), "(- (- a b) c)");
    assert_eq!(tree("a / b / c"), "(/ (/ a b) c)");
    assert_eq!(tree("-a * b"), "(* (neg a) b)");
    assert_eq!(tree("(a + b) * c"), "(* (+ a b) c)");
}

#[test]
fn membership_is_a_comparison() {
    assert_eq!(
        tree("duration > 8 AND aspect_ratio in ['9:16', '1:1']"),
        "(and (> duration 8) (in aspect_ratio [\"9:16\" \"1:1\"]))"
    );
    assert_eq!(tree("x in []"), "(in x [])");
    assert_eq!(tree("x in [1, 2,]"), "(in x [1 2])");
}

#[test]
fn comparisons_do_not_chain() {
    assert!(error("a == 1 == 2").contains("expected"));
    assert!(error("1 < a < 3").contains("expected"));
    assert_eq!(tree("(a == 1) == true"), "(== (== a 1) true)");
}

#[test]
fn keywords_are_case_insensitive_and_have_symbol_spellings() {
    let canonical = "(or (and a b) (not c))";
    for text in [
        "a AND b OR NOT c",
        "a and b or not c",
        "a And b Or Not c",
        "a && b || !c",
    ] {
        assert_eq!(tree(text), canonical, "{text}");
    }
    assert_eq!(tree("TRUE OR False"), "(or true false)");
}

#[test]
fn keywords_are_not_names_but_may_start_names() {
    assert_eq!(tree("android AND order"), "(and android order)");
    assert_eq!(tree("input == notes"), "(== input notes)");
    assert!(error("and == 1").contains("expected"));
}

#[test]
fn parenthesised_chains_of_the_same_operator_flatten() {
    assert_eq!(tree("(a AND b) AND c"), "(and a b c)");
    assert_eq!(tree("a OR (b OR c)"), "(or a b c)");
    assert_eq!(tree("(a OR b) AND c"), "(and (or a b) c)");
}

#[test]
fn strings_take_either_quote_and_escapes() {
    assert_eq!(tree(r#"s == 'it\'s'"#), r#"(== s "it's")"#);
    assert_eq!(tree(r#"s == "say \"hi\"""#), r#"(== s "say \"hi\"")"#);
    assert_eq!(tree(r#"s == 'a\nb\t\\'"#), r#"(== s "a\nb\t\\")"#);
    assert_eq!(tree(r#"s == '\u{1F600}'"#), "(== s \"😀\")");
    assert_eq!(tree("s == \"don't\""), "(== s \"don't\")");
}

#[test]
fn numbers_are_exact_decimals() {
    assert_eq!(tree("x == 0.1"), "(== x 0.1)");
    assert_eq!(tree("x == 100.000"), "(== x 100)");
    assert!(error("x == 0.0000001").contains("more than 6 decimal places"));
    assert!(error("x == 1e5").contains("expected"));
}

#[test]
fn dotted_names() {
    assert_eq!(
        tree("backends.veo.breaker == 'open'"),
        "(== backends.veo.breaker \"open\")"
    );
    assert_eq!(tree("request.tier != 'free'"), "(!= request.tier \"free\")");
}

#[test]
fn printer_writes_the_canonical_form() {
    let e = parse_condition("(a and b) or (not (c == 'x'))  &&  d").unwrap();
    assert_eq!(e.to_string(), "a AND b OR NOT c == 'x' AND d");
    let e = parse_condition("a - (b - c) * -(d)").unwrap();
    assert_eq!(e.to_string(), "a - (b - c) * -d");
}

#[test]
fn syntax_errors_say_what_was_expected_and_where() {
    let e = parse_condition("priority == 'quality' AND").unwrap_err();
    assert_eq!(e.span.start, 25);
    assert!(
        e.message.contains("expected an expression"),
        "{}",
        e.message
    );
    let e = parse_condition("(a == 1").unwrap_err();
    assert!(e.message.contains("expected"), "{}", e.message);
    assert!(error("").contains("expected"));
    assert!(error("a == 'unterminated").contains("expected"));
}

#[test]
fn ten_thousand_nested_parentheses_give_a_clear_error() {
    let text = format!("{}1 == 1{}", "(".repeat(10_000), ")".repeat(10_000));
    let e = parse_condition(&text).unwrap_err();
    assert!(
        e.message.contains("nest more than 24 levels"),
        "{}",
        e.message
    );
    assert_eq!(e.span.start, 24);
    assert!(e.help.contains("parentheses"));
}

#[test]
fn parentheses_inside_strings_do_not_count_as_nesting() {
    let text = format!("s == '{}'", "(".repeat(1000));
    assert!(parse_condition(&text).is_ok());
}

#[test]
fn long_flat_chains_are_accepted_without_recursion() {
    let text = vec!["a == 1"; 2000].join(" AND ");
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let e = parse_condition(&text).unwrap();
            assert!(matches!(e.kind, ExprKind::And(ref v) if v.len() == 2000));
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn deep_operator_trees_and_huge_conditions_are_refused() {
    let nots = format!("{}a", "NOT ".repeat(300));
    assert!(error(&nots).contains("levels deep"));
    let sum = format!("{} > 1", vec!["a"; 300].join(" + "));
    assert!(error(&sum).contains("levels deep"));
    let huge = format!("s == '{}'", "x".repeat(70_000));
    assert!(error(&huge).contains("the limit is"));
}
