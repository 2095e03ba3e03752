//! The condition JIT (`src/eval/program/jit.rs`): machine code answers the common cases on its
//! own, defers everything unusual to the interpreter, and the two never disagree.
//!
//! `tests/properties.rs` checks the machine code against a reference interpreter on random
//! conditions; these tests pin down the paths random conditions rarely reach: declared fields,
//! breakers, an unset style, arithmetic outside 64 bits, and the code's lifetime.
#![cfg(feature = "jit")]

use genroute::breaker::BreakerState;
use genroute::eval::{Context, EvalErrorKind, FieldValue};
use genroute::{Condition, Fixed, Policy};

const POLICY: &str = r#"
defaults: {quality_threshold: 0.80, duration: 5, aspect_ratio: "16:9", priority: balanced}
request_fields:
  tier: {type: enum, values: [free, pro, enterprise], default: free}
  vip: {type: bool}
  seats: {type: number}
  region: {type: string}
budget: {monthly_budget_usd: 100.00, cost_threshold_usd: 80.00}
backends:
  veo:
    priority: 1
    type: simulated
    cost: {per_video_usd: 0.50}
    quality: {score: 0.95, temporal_coherence: 0.93, prompt_adherence: 0.92}
    performance: {avg_generation_time_seconds: 45, max_generation_time_seconds: 300}
  kling:
    priority: 2
    type: simulated
    cost: {per_video_usd: 0.20}
    quality: {score: 0.85, temporal_coherence: 0.82, prompt_adherence: 0.80}
    performance: {avg_generation_time_seconds: 30, max_generation_time_seconds: 90}
selection_rules:
  - {name: quality, condition: "priority == 'quality'", action: select_backend, backend: veo}
"#;

fn policy() -> Policy {
    Policy::from_yaml("jit.yaml", POLICY).unwrap_or_else(|e| panic!("{e}"))
}

fn compile(p: &Policy, text: &str, target: &str) -> Condition {
    p.condition(text, Some(target))
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn money(units: i64) -> Fixed {
    Fixed::from_int(units).unwrap()
}

/// A context with ordinary figures: balanced priority, 16:9, 5 s, $10 of $100 spent.
fn ordinary<'a>(fields: &'a [Option<FieldValue>], breakers: &'a [BreakerState]) -> Context<'a> {
    Context {
        priority: 1,
        duration: money(5),
        aspect_ratio: 0,
        quality_threshold: Fixed::from_micros(800_000),
        style: Some("noir"),
        fields,
        monthly_spend: money(10),
        monthly_budget: money(100),
        cost_threshold: money(80),
        failures: Fixed::ZERO,
        month_progress: Fixed::from_micros(500_000),
        day_of_month: money(15),
        hour: money(12),
        breakers,
        measured: &[],
        rolled_back: &[],
        video: None,
        request_key: "",
        tenant: &[],
        levels: &[],
        capped: false,
    }
}

/// The machine code answered, and its answer is the interpreter's.
fn native_answer(c: &Condition, ctx: &Context<'_>) -> bool {
    let program = c.program();
    let native = program.run_native(ctx);
    let interpreted = program.run_interpreted(ctx);
    match native {
        Some(b) => {
            assert_eq!(Ok(b), interpreted, "`{}`", c.text());
            b
        }
        None => panic!(
            "`{}`: the machine code deferred; the interpreter says {interpreted:?}",
            c.text()
        ),
    }
}

/// The machine code deferred, and `evaluate` gives the interpreter's answer.
fn deferred(c: &Condition, ctx: &Context<'_>) -> Result<bool, EvalErrorKind> {
    let program = c.program();
    assert_eq!(
        program.run_native(ctx),
        None,
        "`{}` answered natively",
        c.text()
    );
    let interpreted = program.run_interpreted(ctx);
    assert_eq!(
        c.evaluate(ctx).map_err(|e| e.kind),
        interpreted,
        "`{}`",
        c.text()
    );
    interpreted
}

#[test]
fn the_benchmark_conditions_run_as_machine_code_on_both_outcomes() {
    let p = policy();
    let conditions = [
        "priority == 'quality' AND budget_available",
        "monthly_spend >= cost_threshold",
        "priority == 'speed' AND budget_available",
        "duration > 8 AND aspect_ratio in ['9:16', '1:1']",
        "(monthly_spend + cost) / monthly_budget < 0.8 OR priority == 'quality'",
        "priority != 'speed' AND budget_available AND duration <= 10 \
         AND aspect_ratio in ['16:9', '9:16'] AND monthly_spend < monthly_budget * 0.9 \
         AND quality_threshold <= 0.9 AND style != 'anime' AND failures < 3 \
         AND hour >= 6 AND day_of_month <= 28",
    ];
    let plain = ordinary(&[], &[]);
    let mut opposite = ordinary(&[], &[]);
    opposite.priority = 0; // quality
    opposite.duration = money(9);
    opposite.aspect_ratio = 1; // 9:16
    opposite.monthly_spend = money(99);
    opposite.style = Some("anime");
    opposite.hour = money(3);
    let mut speed = ordinary(&[], &[]);
    speed.priority = 2;
    speed.monthly_spend = money(99);
    for text in conditions {
        let c = compile(&p, text, "veo");
        assert!(c.program().compile_native(), "`{text}` has no machine code");
        let answers = [plain, opposite, speed].map(|ctx| native_answer(&c, &ctx));
        assert!(
            answers.contains(&true) && answers.contains(&false),
            "`{text}`: the contexts do not give both answers"
        );
    }
}

#[test]
fn declared_fields_of_every_type_are_read_natively() {
    let p = policy();
    let field = |name: &str| p.fields.iter().position(|f| f.name == name).unwrap();
    let mut fields = vec![None; p.fields.len()];
    fields[field("tier")] = Some(FieldValue::Enum(1)); // pro
    fields[field("vip")] = Some(FieldValue::Bool(true));
    fields[field("seats")] = Some(FieldValue::Num(money(4)));
    fields[field("region")] = Some(FieldValue::Str("eu-west".into()));
    let ctx = ordinary(&fields, &[]);
    for (text, want) in [
        ("tier == 'pro'", true),
        ("tier in ['free', 'enterprise']", false),
        ("vip", true),
        ("NOT vip", false),
        ("seats > 3", true),
        ("seats * 2 == 9", false),
        ("region == 'eu-west'", true),
        ("region in ['us', 'eu-west-1']", false),
        (
            "tier == 'pro' AND vip AND seats >= 4 AND region != 'us'",
            true,
        ),
    ] {
        let c = compile(&p, text, "veo");
        assert!(c.program().compile_native(), "`{text}` has no machine code");
        assert_eq!(native_answer(&c, &ctx), want, "`{text}`");
    }
}

#[test]
fn an_unset_field_or_style_defers_to_the_interpreters_error() {
    let p = policy();
    let fields = vec![None; p.fields.len()];
    let mut ctx = ordinary(&fields, &[]);
    ctx.style = None;
    for text in ["vip", "seats > 3", "region == 'eu'", "style == 'noir'"] {
        let c = compile(&p, text, "veo");
        assert_eq!(deferred(&c, &ctx), Err(EvalErrorKind::Unset), "`{text}`");
    }
    // Short-circuiting comes first, exactly as in the interpreter.
    let c = compile(&p, "priority == 'speed' AND vip", "veo");
    assert!(!native_answer(&c, &ctx));
}

#[test]
fn breakers_are_read_within_the_slice_and_a_missing_one_reads_closed() {
    let p = policy();
    let open = compile(&p, "breaker == 'open'", "kling");
    let half = compile(&p, "backends.veo.breaker in ['half_open', 'open']", "kling");
    let mut both = [BreakerState::Closed; 2];
    both[p.backend_index("kling").unwrap() as usize] = BreakerState::Open;
    both[p.backend_index("veo").unwrap() as usize] = BreakerState::HalfOpen;
    assert!(native_answer(&open, &ordinary(&[], &both)));
    assert!(native_answer(&half, &ordinary(&[], &both)));
    let closed = [BreakerState::Closed];
    assert!(!native_answer(&open, &ordinary(&[], &closed)));
    assert!(!native_answer(&half, &ordinary(&[], &closed)));
    assert!(!native_answer(&open, &ordinary(&[], &[])));
}

#[test]
fn arithmetic_outside_the_64_bit_fast_path_defers_and_keeps_the_exact_answer() {
    let p = policy();
    let mut ctx = ordinary(&[], &[]);
    // $5,000,000 × 3: the product of micro-units needs 128 bits, the result does not.
    ctx.monthly_spend = money(5_000_000);
    let wide = compile(&p, "monthly_spend * 3 == 15000000", "veo");
    assert_eq!(deferred(&wide, &ctx), Ok(true));
    let zero = compile(
        &p,
        "monthly_spend / (monthly_budget - monthly_budget) > 1",
        "veo",
    );
    assert_eq!(deferred(&zero, &ctx), Err(EvalErrorKind::DivisionByZero));
    let minus_one = compile(&p, "monthly_spend / -0.000001 < 0", "veo");
    assert_eq!(deferred(&minus_one, &ctx), Ok(true));
    ctx.monthly_spend = Fixed::from_micros(i64::MIN);
    let negate = compile(&p, "-monthly_spend > 0", "veo");
    assert_eq!(deferred(&negate, &ctx), Err(EvalErrorKind::Overflow));
    let remaining = compile(&p, "budget_remaining > 0", "veo");
    assert_eq!(deferred(&remaining, &ctx), Err(EvalErrorKind::Overflow));
    // An overflowing `spend + cost` does not fit the budget: an answer, not an error.
    ctx.monthly_spend = Fixed::from_micros(i64::MAX);
    let fits = compile(&p, "budget_available", "veo");
    assert!(!native_answer(&fits, &ctx));
}

#[test]
fn a_clone_keeps_the_machine_code_alive_after_the_original_and_policy_are_gone() {
    let c = {
        let p = policy();
        let original = compile(&p, "priority == 'balanced' AND duration < 6", "veo");
        original.clone()
    };
    assert!(native_answer(&c, &ordinary(&[], &[])));
}

#[test]
fn machine_code_is_shared_across_threads() {
    let p = policy();
    let c = compile(
        &p,
        "monthly_spend < cost_threshold AND priority != 'speed'",
        "veo",
    );
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for spend in 0..1_000 {
                    let mut ctx = ordinary(&[], &[]);
                    ctx.monthly_spend = money(spend / 10);
                    assert_eq!(native_answer(&c, &ctx), spend / 10 < 80);
                }
            });
        }
    });
}

#[test]
fn a_quotient_compared_with_a_constant_agrees_with_the_division_at_every_edge() {
    let p = policy();
    let mut texts = Vec::new();
    for op in ["<", "<=", ">", ">=", "==", "!="] {
        texts.push(format!("monthly_spend / monthly_budget {op} 0.8"));
        texts.push(format!("0.8 {op} monthly_spend / monthly_budget"));
        texts.push(format!("monthly_spend / monthly_budget {op} -0.25"));
        texts.push(format!("monthly_spend / monthly_budget {op} 0"));
        // `k + 1` past 64 bits: only the division can answer.
        texts.push(format!(
            "monthly_spend / monthly_budget {op} 9223372036854.775807"
        ));
    }
    let micros = [
        i64::MIN,
        -80_000_001,
        -80_000_000,
        -1,
        0,
        1,
        79_999_999,
        80_000_000,
        80_000_001,
        100_000_000,
        9_223_372_036_854,
        i64::MAX,
    ];
    let mut answered = 0;
    for text in &texts {
        let c = compile(&p, text, "veo");
        for spend in micros {
            for budget in micros {
                let mut ctx = ordinary(&[], &[]);
                ctx.monthly_spend = Fixed::from_micros(spend);
                ctx.monthly_budget = Fixed::from_micros(budget);
                let interpreted = c.program().run_interpreted(&ctx);
                if let Some(b) = c.program().run_native(&ctx) {
                    answered += 1;
                    assert_eq!(Ok(b), interpreted, "`{text}`, {spend} / {budget}");
                }
                assert_eq!(
                    c.evaluate(&ctx).map_err(|e| e.kind),
                    interpreted,
                    "`{text}`"
                );
            }
        }
    }
    assert!(
        answered > 1_000,
        "the machine code answered only {answered} cases"
    );
    // The usual case, $80 of $100 against 0.8, answers natively on both sides of the edge.
    let usual = compile(&p, "monthly_spend / monthly_budget < 0.8", "veo");
    let mut ctx = ordinary(&[], &[]);
    ctx.monthly_spend = money(80);
    assert!(!native_answer(&usual, &ctx));
    ctx.monthly_spend = Fixed::from_micros(79_999_999);
    assert!(native_answer(&usual, &ctx));
}

#[test]
fn a_fresh_condition_generates_its_code_on_its_first_evaluation() {
    let p = policy();
    for text in [
        "priority == 'balanced' AND duration < 6",
        "style == 'noir'",
        "budget_available",
    ] {
        let c = compile(&p, text, "veo");
        // `evaluate` first, with no `run_native` or `compile_native` before it.
        assert_eq!(c.evaluate(&ordinary(&[], &[])), Ok(true), "`{text}`");
        assert!(c.program().compile_native(), "`{text}` has no machine code");
        assert!(native_answer(&c, &ordinary(&[], &[])));
    }
}

#[test]
fn budget_levels_send_budget_available_to_the_interpreter_which_reads_them() {
    let p = policy();
    let fits = compile(&p, "budget_available", "veo");
    let veo = p.backend_index("veo").unwrap();
    let level = |counted: i64| genroute::levels::LevelFigures {
        kind: genroute::levels::LevelKind::Team,
        label: "team `growth`".into(),
        backend: None,
        daily: false,
        budget: money(1),
        counted: money(counted),
    };
    // Room at the month and at the team: true, from the interpreter.
    let room = [level(0)];
    let mut ctx = ordinary(&[], &[]);
    ctx.levels = &room;
    ctx.capped = true;
    assert_eq!(deferred(&fits, &ctx), Ok(true));
    // The team's budget is spent: false, though the month has room.
    let full = [level(1)];
    ctx.levels = &full;
    assert_eq!(deferred(&fits, &ctx), Ok(false));
    // A cap on another backend does not bind this one.
    let other = [genroute::levels::LevelFigures {
        backend: Some(veo + 1),
        ..level(1)
    }];
    ctx.levels = &other;
    assert_eq!(deferred(&fits, &ctx), Ok(true));
}
