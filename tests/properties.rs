//! Properties of the language, checked on random inputs:
//! printing a tree and parsing it back gives the same tree; the evaluators (tree walker, traced
//! walker, program interpreter and the program's machine code) agree with a small reference
//! interpreter written here; the parser and checker never panic.

use std::collections::HashMap;

use genroute::check::check_condition;
use genroute::check::scope::{builtin_enums, Scope};
use genroute::eval::{self, Context, EvalError, EvalErrorKind, Tracer, Value};
use genroute::lang::ast::{BinOp, Expr, ExprKind, Span, UnOp};
use genroute::{parse_condition, Fixed};
use proptest::prelude::*;

fn e(kind: ExprKind) -> Expr {
    Expr {
        kind,
        span: Span::default(),
    }
}

/// n-ary AND/OR that never nests a chain in a chain of the same kind (the parser flattens).
fn chain(and: bool, items: Vec<Expr>) -> Expr {
    let mut flat = Vec::new();
    for i in items {
        match i.kind {
            ExprKind::And(v) if and => flat.extend(v),
            ExprKind::Or(v) if !and => flat.extend(v),
            k => flat.push(e(k)),
        }
    }
    e(if and {
        ExprKind::And(flat)
    } else {
        ExprKind::Or(flat)
    })
}

fn fixed() -> impl Strategy<Value = Fixed> {
    (0i64..100_000, 0usize..3)
        .prop_map(|(n, places)| Fixed::from_micros(n * 10i64.pow(6 - places as u32 * 2).max(1)))
}

const KEYWORDS: &[&str] = &["and", "or", "not", "in", "true", "false"];

fn ident() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,6}".prop_filter("not a keyword", |s| !KEYWORDS.contains(&s.as_str()))
}

/// Any syntactically valid tree (not necessarily well typed).
fn any_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(|b| e(ExprKind::Bool(b))),
        fixed().prop_map(|n| e(ExprKind::Num(n))),
        any::<String>().prop_map(|s| e(ExprKind::Str(s))),
        prop::collection::vec(ident(), 1..3).prop_map(|p| e(ExprKind::Name(p.join(".")))),
    ];
    leaf.prop_recursive(5, 48, 4, |inner| {
        let binop = prop_oneof![
            Just(BinOp::Add),
            Just(BinOp::Sub),
            Just(BinOp::Mul),
            Just(BinOp::Div),
            Just(BinOp::Eq),
            Just(BinOp::Ne),
            Just(BinOp::Lt),
            Just(BinOp::Le),
            Just(BinOp::Gt),
            Just(BinOp::Ge)
        ];
        prop_oneof![
            inner
                .clone()
                .prop_map(|a| e(ExprKind::Unary(UnOp::Not, Box::new(a)))),
            inner
                .clone()
                .prop_map(|a| e(ExprKind::Unary(UnOp::Neg, Box::new(a)))),
            (binop, inner.clone(), inner.clone()).prop_map(|(op, a, b)| e(ExprKind::Binary(
                op,
                Box::new(a),
                Box::new(b)
            ))),
            (inner.clone(), prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(a, l)| e(ExprKind::In(Box::new(a), l))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|v| chain(true, v)),
            prop::collection::vec(inner, 2..4).prop_map(|v| chain(false, v)),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn printed_tree_parses_back_to_the_same_tree(tree in any_expr()) {
        let text = tree.to_string();
        let back = parse_condition(&text).map_err(|err| TestCaseError::fail(format!("`{text}`: {err}")))?;
        prop_assert_eq!(&back, &tree, "printed as `{}`", text);
        prop_assert_eq!(back.to_string(), text, "printing is idempotent");
    }

    #[test]
    fn parser_and_checker_never_panic_on_arbitrary_text(text in any::<String>()) {
        check_any(&text);
    }

    #[test]
    fn parser_and_checker_never_panic_on_token_soup(tokens in prop::collection::vec(prop_oneof![
        Just("("), Just(")"), Just("["), Just("]"), Just("'"), Just("\""), Just("\\"), Just("AND"), Just("or"),
        Just("!"), Just("NOT"), Just("=="), Just("<="), Just("in"), Just(","), Just("+"), Just("-"), Just("/"),
        Just("1"), Just("0.5"), Just("1e9"), Just("priority"), Just("monthly_spend"), Just("'quality'"),
        Just("backends.veo.breaker"), Just("true"), Just(" "), Just("9999999999999999999"),
    ], 0..40)) {
        check_any(&tokens.concat());
    }
}

fn check_any(text: &str) {
    let enums = builtin_enums();
    let scope = Scope {
        enums: &enums,
        fields: &[],
        tenant: &[],
        backends: &[],
        target: None,
        lookup: None,
        video: false,
    };
    if let Ok(tree) = parse_condition(text) {
        let _ = check_condition(&tree, &scope);
    }
}

// ------------------------------------------------------------------ reference interpreter

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ref {
    Bool(bool),
    Num(i128),
    Str(&'static str),
}

type Env = HashMap<&'static str, Ref>;

fn micros(n: i128) -> Result<i128, EvalErrorKind> {
    if n > i64::MAX as i128 || n < i64::MIN as i128 {
        Err(EvalErrorKind::Overflow)
    } else {
        Ok(n)
    }
}

/// Evaluates a tree directly, by names, with i128 arithmetic.
fn reference(t: &Expr, env: &Env) -> Result<Ref, EvalErrorKind> {
    Ok(match &t.kind {
        ExprKind::Bool(b) => Ref::Bool(*b),
        ExprKind::Num(n) => Ref::Num(n.micros() as i128),
        ExprKind::Str(s) => Ref::Str(Box::leak(s.clone().into_boxed_str())),
        ExprKind::Name(n) => env[n.as_str()],
        ExprKind::Unary(UnOp::Not, a) => match reference(a, env)? {
            Ref::Bool(b) => Ref::Bool(!b),
            _ => unreachable!(),
        },
        ExprKind::Unary(UnOp::Neg, a) => match reference(a, env)? {
            Ref::Num(n) => Ref::Num(micros(-n)?),
            _ => unreachable!(),
        },
        ExprKind::And(items) => {
            for i in items {
                if reference(i, env)? == Ref::Bool(false) {
                    return Ok(Ref::Bool(false));
                }
            }
            Ref::Bool(true)
        }
        ExprKind::Or(items) => {
            for i in items {
                if reference(i, env)? == Ref::Bool(true) {
                    return Ok(Ref::Bool(true));
                }
            }
            Ref::Bool(false)
        }
        ExprKind::In(a, items) => {
            let x = reference(a, env)?;
            let mut found = false;
            for i in items {
                found |= reference(i, env)? == x;
            }
            Ref::Bool(found)
        }
        ExprKind::Binary(op, a, b) => {
            let (x, y) = (reference(a, env)?, reference(b, env)?);
            match (op, x, y) {
                (BinOp::Eq, x, y) => Ref::Bool(x == y),
                (BinOp::Ne, x, y) => Ref::Bool(x != y),
                (op, Ref::Num(x), Ref::Num(y)) => match op {
                    BinOp::Add => Ref::Num(micros(x + y)?),
                    BinOp::Sub => Ref::Num(micros(x - y)?),
                    BinOp::Mul => Ref::Num(micros(x * y / 1_000_000)?),
                    BinOp::Div if y == 0 => return Err(EvalErrorKind::DivisionByZero),
                    BinOp::Div => Ref::Num(micros(x * 1_000_000 / y)?),
                    BinOp::Lt => Ref::Bool(x < y),
                    BinOp::Le => Ref::Bool(x <= y),
                    BinOp::Gt => Ref::Bool(x > y),
                    _ => Ref::Bool(x >= y),
                },
                _ => unreachable!(),
            }
        }
    })
}

const NUMS: &[&str] = &[
    "duration",
    "quality_threshold",
    "failures",
    "hour",
    "monthly_spend",
    "monthly_budget",
    "cost_threshold",
];

fn num_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        (0i64..2_000, 0usize..3).prop_map(|(n, p)| e(ExprKind::Num(Fixed::from_micros(
            n * 10i64.pow(6 - p as u32 * 2)
        )))),
        prop::sample::select(NUMS).prop_map(|n| e(ExprKind::Name(n.to_string()))),
        Just(e(ExprKind::Num(Fixed::from_micros(9_000_000_000_000_000)))),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        let op = prop_oneof![
            Just(BinOp::Add),
            Just(BinOp::Sub),
            Just(BinOp::Mul),
            Just(BinOp::Div)
        ];
        prop_oneof![
            (op, inner.clone(), inner.clone()).prop_map(|(op, a, b)| e(ExprKind::Binary(
                op,
                Box::new(a),
                Box::new(b)
            ))),
            inner.prop_map(|a| e(ExprKind::Unary(UnOp::Neg, Box::new(a)))),
        ]
    })
}

fn str_lit(s: &str) -> Expr {
    e(ExprKind::Str(s.to_string()))
}

fn bool_expr() -> impl Strategy<Value = Expr> {
    let cmp = prop_oneof![
        Just(BinOp::Eq),
        Just(BinOp::Ne),
        Just(BinOp::Lt),
        Just(BinOp::Le),
        Just(BinOp::Gt),
        Just(BinOp::Ge)
    ];
    let leaf = prop_oneof![
        any::<bool>().prop_map(|b| e(ExprKind::Bool(b))),
        Just(e(ExprKind::Name("budget.available".into()))),
        (cmp, num_expr(), num_expr()).prop_map(|(op, a, b)| e(ExprKind::Binary(
            op,
            Box::new(a),
            Box::new(b)
        ))),
        prop::sample::select(&["quality", "balanced", "speed"][..]).prop_map(|p| e(
            ExprKind::Binary(
                BinOp::Eq,
                Box::new(e(ExprKind::Name("priority".into()))),
                Box::new(str_lit(p))
            )
        )),
        prop::collection::vec(prop::sample::select(&["16:9", "9:16", "1:1"][..]), 0..3).prop_map(
            |l| {
                e(ExprKind::In(
                    Box::new(e(ExprKind::Name("aspect_ratio".into()))),
                    l.into_iter().map(str_lit).collect(),
                ))
            }
        ),
        prop::sample::select(&["noir", "anime"][..]).prop_map(|s| e(ExprKind::Binary(
            BinOp::Ne,
            Box::new(e(ExprKind::Name("style".into()))),
            Box::new(str_lit(s))
        ))),
    ];
    leaf.prop_recursive(4, 32, 3, |inner| {
        prop_oneof![
            inner
                .clone()
                .prop_map(|a| e(ExprKind::Unary(UnOp::Not, Box::new(a)))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|v| chain(true, v)),
            prop::collection::vec(inner, 2..4).prop_map(|v| chain(false, v)),
        ]
    })
}

#[derive(Debug, Clone)]
struct World {
    nums: Vec<i64>,
    priority: u16,
    aspect: u16,
    style: &'static str,
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(0i64..200_000_000, NUMS.len()),
        0u16..3,
        0u16..3,
        prop::sample::select(&["noir", "anime", "pastel"][..]),
    )
        .prop_map(|(nums, priority, aspect, style)| World {
            nums,
            priority,
            aspect,
            style,
        })
}

struct Counting(usize);

impl<'a> Tracer<'a> for Counting {
    fn read(&mut self, _: Span, _: Value<'a>) {
        self.0 += 1;
    }
    fn clause(&mut self, _: Span, _: Result<bool, EvalError>) {}
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn evaluators_agree_with_the_reference_interpreter(tree in bool_expr(), w in world()) {
        let enums = builtin_enums();
        let scope = Scope { enums: &enums, fields: &[], tenant: &[], backends: &[], target: None, lookup: None, video: false };
        let checked = match check_condition(&tree, &scope) {
            Ok(c) => c,
            Err(errors) => {
                // Only a constant sub-expression that always fails may be refused.
                prop_assert!(errors.iter().all(|e| e.code == "constant-error"), "{errors:?} for `{tree}`");
                return Ok(());
            }
        };
        let n = |name: &str| Fixed::from_micros(w.nums[NUMS.iter().position(|x| *x == name).unwrap()]);
        let ctx = Context {
            priority: w.priority,
            duration: n("duration"),
            aspect_ratio: w.aspect,
            quality_threshold: n("quality_threshold"),
            style: Some(w.style),
            fields: &[],
            monthly_spend: n("monthly_spend"),
            monthly_budget: n("monthly_budget"),
            cost_threshold: n("cost_threshold"),
            failures: n("failures"),
            month_progress: Fixed::ZERO,
            day_of_month: Fixed::ZERO,
            hour: n("hour"),
            breakers: &[],
            measured: &[],
            rolled_back: &[],
            video: None,
            request_key: "",
            tenant: &[],
            levels: &[],
            capped: false,
        };
        let mut env: Env = NUMS.iter().map(|k| (*k, Ref::Num(n(k).micros() as i128))).collect();
        let prio = ["quality", "balanced", "speed"][w.priority as usize];
        let aspect = ["16:9", "9:16", "1:1"][w.aspect as usize];
        env.insert("priority", Ref::Str(prio));
        env.insert("aspect_ratio", Ref::Str(aspect));
        env.insert("style", Ref::Str(w.style));
        env.insert("budget.available", Ref::Bool(n("monthly_budget") > n("monthly_spend")));
        let expected = reference(&tree, &env).map(|r| r == Ref::Bool(true));
        let fast = eval::evaluate_bool(&checked, &ctx).map_err(|e| e.kind);
        let traced = eval::eval_bool(&checked, &ctx, &mut Counting(0)).map_err(|e| e.kind);
        prop_assert_eq!(&fast, &expected, "`{}`", tree);
        prop_assert_eq!(&traced, &expected, "traced `{}`", tree);
        let program = eval::Program::compile(&checked);
        prop_assert_eq!(&program.run(&ctx), &expected, "compiled `{}`", tree);
        prop_assert_eq!(&program.run_interpreted(&ctx), &expected, "interpreted `{}`", tree);
        // Machine code may defer (None), but when it answers, it is right.
        if let Some(native) = program.run_native(&ctx) {
            prop_assert_eq!(Ok(native), expected, "native `{}`", tree);
        }
    }

    #[test]
    fn money_sums_are_exact(a in 0i64..100_000, b in 0i64..100_000, spend in 0i64..100_000) {
        // Cents: `monthly_spend + a + b == total` holds exactly, as in integer arithmetic.
        let cents = |c: i64| Fixed::from_micros(c * 10_000);
        let text = format!("monthly_spend + {} + {} == {}", cents(a), cents(b), cents(spend + a + b));
        let tree = parse_condition(&text).unwrap();
        let enums = builtin_enums();
        let scope = Scope { enums: &enums, fields: &[], tenant: &[], backends: &[], target: None, lookup: None, video: false };
        let checked = check_condition(&tree, &scope).unwrap();
        let mut ctx = Context::constant();
        ctx.monthly_spend = cents(spend);
        prop_assert_eq!(eval::evaluate_bool(&checked, &ctx), Ok(true), "{}", text);
    }
}

#[test]
fn point_one_plus_point_two_equals_point_three_in_conditions() {
    let enums = builtin_enums();
    let scope = Scope {
        enums: &enums,
        fields: &[],
        tenant: &[],
        backends: &[],
        target: None,
        lookup: None,
        video: false,
    };
    let checked = check_condition(
        &parse_condition("monthly_spend + 0.1 + 0.2 == 0.3").unwrap(),
        &scope,
    )
    .unwrap();
    assert_eq!(
        eval::evaluate_bool(&checked, &Context::constant()),
        Ok(true)
    );
}

#[test]
fn deep_inputs_are_refused_without_deep_recursion() {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let parens = format!("{}1 == 1{}", "(".repeat(10_000), ")".repeat(10_000));
            assert!(parse_condition(&parens)
                .unwrap_err()
                .message
                .contains("nest"));
            let nots = "NOT ".repeat(100_000) + "true";
            assert!(parse_condition(&nots).is_err());
            let chain = vec!["a == 1"; 100_000].join(" AND ");
            assert!(
                parse_condition(&chain).is_err(),
                "longer than the 64 KiB limit"
            );
            check_any(&"-".repeat(60_000));
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn sixty_thousand_prefix_operators_are_refused_without_deep_recursion() {
    std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(|| {
            for op in ["!", "-", "NOT "] {
                let text = format!("{}a", op.repeat(60_000 / op.len()));
                let err = parse_condition(&text).unwrap_err();
                assert!(
                    err.message.contains("levels deep") || err.message.contains("expected"),
                    "{op}: {}",
                    err.message
                );
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

// ------------------------------------------------------------------ genroute fmt

/// Prints a tree the way a hurried author might: random keyword spellings and case, random
/// spacing, redundant parentheses, double-quoted strings.
fn pick(r: &mut impl Iterator<Item = u8>, n: u8) -> u8 {
    r.next().unwrap_or(0) % n
}

fn messy(t: &Expr, r: &mut impl Iterator<Item = u8>) -> String {
    let sp = |k: u8| [" ", "  ", " ", "\t "][k as usize % 4];
    let body = match &t.kind {
        ExprKind::Bool(b) => {
            if pick(r, 2) == 0 {
                b.to_string()
            } else {
                b.to_string().to_uppercase()
            }
        }
        ExprKind::Num(n) => n.to_string(),
        ExprKind::Str(s) if !s.contains(['"', '\\', '\'']) && pick(r, 2) == 0 => format!("\"{s}\""),
        ExprKind::Name(_) | ExprKind::Str(_) => t.to_string(),
        ExprKind::Unary(UnOp::Not, a) => {
            let kw = ["NOT ", "not ", "! ", "!"][pick(r, 4) as usize];
            format!("{kw}({})", messy(a, r))
        }
        ExprKind::Unary(UnOp::Neg, a) => format!("-({})", messy(a, r)),
        ExprKind::Binary(op, a, b) => {
            let (x, k, y) = (messy(a, r), pick(r, 4), messy(b, r));
            format!("({x}){}{}{}({y})", sp(k), op.symbol(), sp(k + 1))
        }
        ExprKind::In(a, items) => {
            let list: Vec<String> = items.iter().map(|i| messy(i, r)).collect();
            format!("({}) IN [{}]", messy(a, r), list.join(" ,"))
        }
        ExprKind::And(v) | ExprKind::Or(v) => {
            let and = matches!(t.kind, ExprKind::And(_));
            let words = if and {
                ["AND", "and", "&&", "And"]
            } else {
                ["OR", "or", "||", "Or"]
            };
            let parts: Vec<String> = v.iter().map(|x| format!("({})", messy(x, r))).collect();
            let w = words[pick(r, 4) as usize];
            parts.join(&format!(" {w} "))
        }
    };
    if pick(r, 3) == 0 {
        format!("( {body} )")
    } else {
        body
    }
}

fn policy_with(condition: &str) -> String {
    let yaml_quoted = serde_json::to_string(condition).unwrap();
    format!(
        "# a comment that must survive\nbudget: {{monthly_budget_usd: 100, cost_threshold_usd: 80}}  # trailing\nbackends:\n  a: {{priority: 1, type: t, cost: {{per_video_usd: 0.05}}, quality: {{score: 0.9}}, performance: {{avg_generation_time_seconds: 1, max_generation_time_seconds: 2}}}}\nselection_rules:\n  - name: r   # keep\n    condition: {yaml_quoted}\n    backend: a\n"
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `genroute fmt` is idempotent, keeps every other byte, and never changes what a
    /// condition evaluates to.
    #[test]
    fn fmt_is_idempotent_and_keeps_meaning(tree in bool_expr(), entropy in prop::collection::vec(any::<u8>(), 256), w in world()) {
        let text = messy(&tree, &mut entropy.into_iter().cycle());
        let original = policy_with(&text);
        let source = genroute::Source::new("p.yaml", original.clone());
        let formatted = genroute::policy::fmt::format_policy(&source).map_err(|d| TestCaseError::fail(format!("{text}: {d:?}")))?;
        let again = genroute::policy::fmt::format_policy(&genroute::Source::new("p.yaml", formatted.clone())).unwrap();
        prop_assert_eq!(&again, &formatted, "idempotent");
        let strip = |s: &str| s.lines().filter(|l| !l.trim_start().starts_with("condition:")).collect::<Vec<_>>().join("\n");
        prop_assert_eq!(strip(&formatted), strip(&original), "only condition lines change");
        let (before, after) = match (genroute::Policy::from_yaml("p.yaml", &original), genroute::Policy::from_yaml("p.yaml", &formatted)) {
            (Ok(b), Ok(a)) => (b, a),
            (Err(_), Err(_)) => return Ok(()), // a constant expression that always fails: refused either way
            (b, a) => return Err(TestCaseError::fail(format!("loads differ for `{text}`: {:?} vs {:?}", b.is_ok(), a.is_ok()))),
        };
        let n = |name: &str| Fixed::from_micros(w.nums[NUMS.iter().position(|x| *x == name).unwrap()]);
        let mut ctx = Context::constant();
        ctx.priority = w.priority;
        ctx.aspect_ratio = w.aspect;
        ctx.style = Some(w.style);
        ctx.duration = n("duration");
        ctx.quality_threshold = n("quality_threshold");
        ctx.failures = n("failures");
        ctx.hour = n("hour");
        ctx.monthly_spend = n("monthly_spend");
        ctx.monthly_budget = n("monthly_budget");
        ctx.cost_threshold = n("cost_threshold");
        let x = eval::evaluate_bool(&before.rules[0].condition, &ctx).map_err(|e| e.kind);
        let y = eval::evaluate_bool(&after.rules[0].condition, &ctx).map_err(|e| e.kind);
        prop_assert_eq!(x, y, "`{}` vs `{}`", text, after.rules[0].condition_text);
    }
}

/// Regression: a debug build on a 2 MiB stack (tokio's workers, spawned threads) used to
/// overflow its stack on a condition nested as deep as the parser allowed (64 levels). The
/// limit is now 24, and the whole path runs on 1.5 MiB, leaving a quarter of a 2 MiB
/// worker stack to its callers.
#[test]
fn the_deepest_allowed_nesting_loads_decides_and_explains_with_room_on_a_two_mib_stack() {
    use genroute::lang::parse::MAX_NESTING;
    std::thread::Builder::new()
        .stack_size(3 << 19)
        .spawn(|| {
            let depth = MAX_NESTING;
            let inner = "(duration + 1) * 2 > 3 AND NOT priority == 'speed'";
            let condition = format!("{}{inner}{}", "(".repeat(depth - 1), ")".repeat(depth - 1));
            assert!(
                parse_condition(&condition).is_ok(),
                "{depth} levels are allowed"
            );
            let yaml = policy_with(&condition);
            let p = genroute::Policy::from_yaml("deep.yaml", &yaml).unwrap();
            let req = genroute::RequestBuilder::new("x").build(&p).unwrap();
            let state = genroute::State::new(&p, "2026-11-10T12:00:00Z".parse().unwrap());
            assert_eq!(p.decide(&req, &state).rule, Some(0));
            assert_eq!(p.explain(&req, &state).rule.as_deref(), Some("r"));
            let formatted = genroute::policy::fmt::format_policy(&genroute::Source::new(
                "deep.yaml",
                yaml.as_str(),
            ))
            .unwrap();
            assert!(formatted.contains("duration"));
            let too_deep = format!("{}{inner}{}", "(".repeat(depth), ")".repeat(depth));
            assert!(parse_condition(&too_deep).is_err());
        })
        .unwrap()
        .join()
        .unwrap();
}

/// A policy whose one rule splits over `weights.len()` backends (named `b0`, `b1`, …).
fn split_policy(weights: &[u32]) -> genroute::Policy {
    let mut text = String::from("backends:\n");
    for i in 0..weights.len() {
        text.push_str(&format!(
            "  b{i}:\n    priority: {i}\n    type: simulated\n    cost: {{per_video_usd: 0.01}}\n    quality: {{score: 0.9}}\n    performance: {{avg_generation_time_seconds: 10, max_generation_time_seconds: 20}}\n"
        ));
    }
    text.push_str("selection_rules:\n  - name: split\n    condition: \"true\"\n    split:\n");
    for (i, w) in weights.iter().enumerate() {
        text.push_str(&format!("      - {{backend: b{i}, weight: {w}}}\n"));
    }
    text.push_str("budget: {monthly_budget_usd: 100, cost_threshold_usd: 90}\n");
    genroute::Policy::from_yaml("split.yaml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A split never routes to an ineligible backend (here: an open breaker), the shares of
    /// the eligible arms sum to 1, and an ineligible arm has no share.
    #[test]
    fn a_split_never_routes_to_an_ineligible_backend_and_its_shares_sum_to_one(
        weights in proptest::collection::vec(0u32..100, 1..6),
        open in proptest::collection::vec(any::<bool>(), 6),
        key in "[a-z0-9]{1,12}",
    ) {
        prop_assume!(weights.iter().any(|w| *w > 0));
        let p = split_policy(&weights);
        let now = "2026-11-10T12:00:00Z".parse().unwrap();
        let mut state = genroute::State::new(&p, now);
        for (i, _) in open.iter().enumerate().take(weights.len()).filter(|(_, o)| **o) {
            state.set_breaker(&p, &format!("b{i}"), genroute::breaker::BreakerState::Open).unwrap();
        }
        let mut request = genroute::RequestBuilder::new("x").build(&p).unwrap();
        request.id = Some(key);
        let d = p.decide(&request, &state);
        let open_of = |b: u16| {
            let name = &p.backends[b as usize].name;
            open[name[1..].parse::<usize>().unwrap()]
        };
        if let Some(b) = d.backend {
            prop_assert!(!open_of(b), "routed to {} whose breaker is open", p.backends[b as usize].name);
        }
        for b in &d.fallbacks {
            prop_assert!(!open_of(*b));
        }
        let split = p.rules[0].split.as_ref().unwrap();
        let ctx = genroute::decide::context(&p, &request, &state);
        let arms = genroute::decide::arms(&p, split, &ctx);
        let drawable: f64 = arms.iter().filter(|a| a.ineligible.is_eligible()).map(|a| a.effective.to_f64()).sum();
        let total: f64 = arms.iter().map(|a| a.share).sum();
        if drawable > 0.0 {
            prop_assert!((total - 1.0).abs() < 1e-9, "shares sum to {total}");
            let drawn: Vec<_> = arms.iter().filter(|a| a.chosen).collect();
            prop_assert_eq!(drawn.len(), 1);
            prop_assert!(drawn[0].ineligible.is_eligible() && drawn[0].effective > Fixed::ZERO);
        } else {
            prop_assert_eq!(total, 0.0);
            prop_assert!(arms.iter().all(|a| !a.chosen));
        }
        for a in &arms {
            if !a.ineligible.is_eligible() {
                prop_assert_eq!(a.share, 0.0);
            }
        }
    }
}
