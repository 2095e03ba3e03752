//! Decision semantics on the shipped policy and on small purpose-built ones, including the
//! seed report's scenarios (its §3 tests).

mod common;
use common::{chosen, explain, policy, request, state, videogen};
use genroute::{BreakerState, LoadOptions, Policy, RequestBuilder, Source, State};

#[test]
fn seed_quality_priority_routes_to_veo_3() {
    let p = videogen();
    let e = explain(&p, r#"{"priority": "quality"}"#, "0");
    assert_eq!(e.backend.as_deref(), Some("veo"));
    assert_eq!(e.rule.as_deref(), Some("quality_priority"));
    assert_eq!(e.model.as_deref(), Some("veo-3.0-generate-preview"));
    assert_eq!(e.cost_usd, Some("0.15".parse().unwrap()));
    // mochi needs two failed attempts; the first fallback position follows only one.
    assert!(e.fallbacks.is_empty());
}

#[test]
fn seed_speed_priority_routes_to_pixverse() {
    let p = videogen();
    let e = explain(&p, r#"{"priority": "speed"}"#, "0");
    assert_eq!(e.backend.as_deref(), Some("pixverse"));
    assert_eq!(e.rule.as_deref(), Some("speed_priority"));
}

#[test]
fn seed_balanced_priority_takes_the_preferred_backend_and_a_full_chain() {
    let p = videogen();
    let e = explain(&p, r#"{"priority": "balanced"}"#, "0");
    assert_eq!(e.backend.as_deref(), Some("veo"));
    assert_eq!(e.rule, None);
    assert_eq!(e.model.as_deref(), Some("veo-2.0-generate-001"));
    assert_eq!(e.cost_usd, Some("0.10".parse().unwrap()));
    assert_eq!(e.fallbacks, ["pixverse", "mochi"]);
}

#[test]
fn seed_budget_exhaustion_at_99_98_of_100_routes_to_cogvideox() {
    // The seed's test: spend 99.98, threshold 0.70, balanced. 99.98 + 0.02 is exactly 100.00,
    // which fits; in binary floating point it would be 100.00000000000001 and would not.
    let p = videogen();
    let e = explain(
        &p,
        r#"{"priority": "balanced", "quality_threshold": 0.70, "duration": 5}"#,
        "99.98",
    );
    assert_eq!(e.backend.as_deref(), Some("cogvideox"));
    assert_eq!(e.rule.as_deref(), Some("budget_exhausted"));
    assert_eq!(e.cost_usd, Some("0.02".parse().unwrap()));
    let cog = e.backends.iter().find(|b| b.name == "cogvideox").unwrap();
    assert!(cog.eligible, "{:?}", cog.reasons);
}

#[test]
fn budget_check_is_exact_at_the_boundary() {
    let p = videogen();
    assert_eq!(
        chosen(&p, r#"{"priority": "quality"}"#, "79.85"),
        Some("veo".into())
    );
    let e = explain(&p, r#"{"priority": "quality"}"#, "99.85");
    // 99.85 >= 80 triggers budget_exhausted only after quality_priority, which still fits.
    assert_eq!(e.rule.as_deref(), Some("quality_priority"));
    // At 99.86 Veo 3 (0.15) no longer fits, but Veo's default model, Veo 2 (0.10), does.
    let e = explain(&p, r#"{"priority": "quality"}"#, "99.86");
    assert_eq!(e.rule, None);
    assert_eq!(e.model.as_deref(), Some("veo-2.0-generate-001"));
    assert_eq!(e.cost_usd, Some("0.1".parse().unwrap()));
    // At 99.91 only mochi (0.03) fits, and it waits for two failed attempts.
    assert_eq!(chosen(&p, r#"{"priority": "quality"}"#, "99.91"), None);
}

#[test]
fn seed_quality_threshold_filters_backends() {
    let p = videogen();
    let e = explain(
        &p,
        r#"{"priority": "balanced", "quality_threshold": 0.9}"#,
        "0",
    );
    assert_eq!(e.backend.as_deref(), Some("veo"));
    assert!(e.fallbacks.is_empty());
    let pix = e.backends.iter().find(|b| b.name == "pixverse").unwrap();
    assert!(!pix.eligible);
    assert!(pix
        .reasons
        .iter()
        .any(|r| r.contains("below the request's quality_threshold")));
}

#[test]
fn nothing_eligible_is_a_decision_with_every_reason() {
    let p = videogen();
    let e = explain(
        &p,
        r#"{"priority": "speed", "quality_threshold": 0.9}"#,
        "0",
    );
    assert_eq!(e.backend, None);
    assert_eq!(e.summary, "no backend is eligible for this request");
    let speed = e.rules.iter().find(|r| r.name == "speed_priority").unwrap();
    assert!(speed.matched);
    assert_eq!(speed.status, "target ineligible");
    assert!(e
        .backends
        .iter()
        .all(|b| !b.eligible && !b.reasons.is_empty()));
}

#[test]
fn open_breaker_skips_a_matching_rule_and_the_next_rule_decides() {
    let p = videogen();
    let req = request(&p, r#"{"priority": "quality"}"#);
    let mut s = state(&p, "0");
    s.set_breaker(&p, "veo", BreakerState::Open).unwrap();
    let e = p.explain(&req, &s);
    let first = &e.rules[0];
    assert!(first.matched);
    assert_eq!(first.target_reasons, ["circuit breaker is open"]);
    assert_eq!(e.rule.as_deref(), Some("veo_outage_quality"));
    assert_eq!(e.backend.as_deref(), Some("mochi"));
}

#[test]
fn half_open_breaker_still_admits_calls() {
    let p = videogen();
    let req = request(&p, r#"{"priority": "quality"}"#);
    let mut s = state(&p, "0");
    s.set_breaker(&p, "veo", BreakerState::HalfOpen).unwrap();
    assert_eq!(p.explain(&req, &s).backend.as_deref(), Some("veo"));
}

#[test]
fn rule_targets_skip_priority_flags_but_not_quality() {
    let p = videogen();
    // cogvideox has priority_high: false, yet budget_exhausted may send quality work there.
    let e = explain(
        &p,
        r#"{"priority": "quality", "quality_threshold": 0.7}"#,
        "99.9",
    );
    assert_eq!(e.rule.as_deref(), Some("budget_exhausted"));
    assert_eq!(e.backend.as_deref(), Some("cogvideox"));
    // With the default threshold 0.8, cogvideox (0.75) is not eligible, rule or no rule.
    let e = explain(&p, r#"{"priority": "quality"}"#, "99.9");
    let rule = e
        .rules
        .iter()
        .find(|r| r.name == "budget_exhausted")
        .unwrap();
    assert_eq!(rule.status, "target ineligible");
}

#[test]
fn fallback_failures_holds_a_backend_back_until_enough_attempts_failed() {
    let p = videogen();
    let req = request(&p, r#"{"priority": "quality"}"#);
    let s = state(&p, "0").with_failures(1);
    let e = p.explain(&req, &s);
    assert_eq!(e.backend.as_deref(), Some("veo"));
    assert_eq!(e.fallbacks, ["mochi"]);
    // With no failures, pixverse (fallback_failures: 1) cannot be first, so veo leads.
    let e = explain(&p, r#"{"priority": "balanced"}"#, "0");
    assert_eq!(e.fallbacks.first().map(String::as_str), Some("pixverse"));
}

#[test]
fn missing_api_key_makes_a_backend_ineligible_with_the_reason() {
    let p = Policy::from_yaml("videogen.yaml", genroute::EXAMPLE_POLICY).unwrap();
    let e = explain(&p, r#"{"priority": "speed"}"#, "0");
    let pix = e.backends.iter().find(|b| b.name == "pixverse").unwrap();
    assert!(!pix.eligible);
    assert_eq!(pix.reasons, ["PIXVERSE_API_KEY is not set (api.key_env)"]);
    let rule = e.rules.iter().find(|r| r.name == "speed_priority").unwrap();
    assert_eq!(rule.status, "target ineligible");
}

#[test]
fn environment_flag_disables_a_backend() {
    let env = |k: &str| match k {
        "VIDEOGEN_BACKEND_PIXVERSE_ENABLED" => Some("false".to_string()),
        _ => common::fake_keys(k),
    };
    let p = Policy::load(
        Source::new("videogen.yaml", genroute::EXAMPLE_POLICY),
        &LoadOptions { env: &env },
    )
    .unwrap();
    let e = explain(&p, r#"{"priority": "speed"}"#, "0");
    assert_eq!(e.backend, None);
    let pix = e.backends.iter().find(|b| b.name == "pixverse").unwrap();
    assert_eq!(
        pix.reasons,
        ["disabled by environment variable VIDEOGEN_BACKEND_PIXVERSE_ENABLED"]
    );
}

const SMALL: &str = r#"
budget: {monthly_budget_usd: 0, cost_threshold_usd: 0}
request_fields:
  team: {type: string}
backends:
  b: {priority: 1, type: t, cost: {per_video_usd: 0}, quality: {score: 0.9}, performance: {avg_generation_time_seconds: 1, max_generation_time_seconds: 2}}
  a: {priority: 1, type: t, cost: {per_video_usd: 0}, quality: {score: 0.9}, performance: {avg_generation_time_seconds: 1, max_generation_time_seconds: 2}}
  c: {priority: 0.5, type: t, enabled: false, cost: {per_video_usd: 0}, quality: {score: 0.9}, performance: {avg_generation_time_seconds: 1, max_generation_time_seconds: 2}}
selection_rules:
  - {name: ratio, condition: "monthly_spend / monthly_budget > 0.5", backend: b}
  - {name: team, condition: "team == 'video'", backend: b}
  - {name: disabled_target, condition: "true", backend: c}
"#;

#[test]
fn runtime_error_means_no_match_and_is_shown() {
    let p = policy(SMALL);
    let e = explain(&p, "{}", "0");
    let ratio = &e.rules[0];
    assert!(!ratio.matched);
    assert_eq!(ratio.status, "error");
    assert_eq!(
        ratio.error.as_deref(),
        Some("division by zero in `monthly_spend / monthly_budget`")
    );
    let team = &e.rules[1];
    assert_eq!(team.status, "error");
    assert!(
        team.error.as_deref().unwrap().contains("does not set"),
        "{:?}",
        team.error
    );
    assert!(e.to_text().contains("error: division by zero"));
}

#[test]
fn ties_in_priority_go_by_name_and_disabled_targets_are_skipped() {
    let p = policy(SMALL);
    let e = explain(&p, "{}", "0");
    assert_eq!(e.rules[2].status, "target ineligible");
    assert_eq!(e.rules[2].target_reasons, ["disabled (enabled: false)"]);
    assert_eq!(e.backend.as_deref(), Some("a"));
    assert_eq!(e.fallbacks, ["b"]);
}

#[test]
fn declared_string_field_routes() {
    let p = policy(SMALL);
    let e = explain(&p, r#"{"team": "video"}"#, "0");
    assert_eq!(e.rule.as_deref(), Some("team"));
}

#[test]
fn decide_and_explain_always_agree() {
    let p = videogen();
    let priorities = ["quality", "balanced", "speed"];
    let ratios = ["16:9", "9:16", "1:1"];
    let tiers = ["free", "pro", "enterprise"];
    let spends = ["0", "35", "79.99", "80", "99.9", "99.98", "100", "150"];
    let thresholds = ["0", "0.7", "0.8", "0.9", "1"];
    let breakers = [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
    ];
    let mut checked = 0;
    for pr in priorities {
        for ar in ratios {
            for tier in tiers {
                for spend in spends {
                    for q in thresholds {
                        for (i, br) in breakers.iter().enumerate() {
                            let req = RequestBuilder::new("x")
                                .set("priority", pr)
                                .set("aspect_ratio", ar)
                                .set("tier", tier)
                                .set("quality_threshold", q.parse::<f64>().unwrap())
                                .build(&p)
                                .unwrap();
                            let mut s = State::new(&p, common::NOW.parse().unwrap())
                                .with_spend(spend.parse().unwrap())
                                .with_failures(i as u32);
                            s.set_breaker(&p, "veo", *br).unwrap();
                            let d = p.decide(&req, &s);
                            let e = p.explain(&req, &s);
                            let name = |i: u16| p.backend(i).unwrap().name.clone();
                            assert_eq!(d.backend.map(name), e.backend);
                            assert_eq!(d.rule.map(|r| p.rules[r as usize].name.clone()), e.rule);
                            assert_eq!(
                                d.fallbacks.iter().map(|&b| name(b)).collect::<Vec<_>>(),
                                e.fallbacks
                            );
                            assert_eq!(d.model.map(str::to_string), e.model);
                            // Whatever is chosen or in the chain is never an open breaker.
                            if *br == BreakerState::Open {
                                assert_ne!(e.backend.as_deref(), Some("veo"));
                                assert!(!e.fallbacks.iter().any(|f| f == "veo"));
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checked, 3 * 3 * 3 * 8 * 5 * 3);
}

#[test]
fn chosen_backend_always_fits_the_budget_when_it_requires_it() {
    let p = videogen();
    for cents in (9_900..10_010).step_by(1) {
        let spend = genroute::Fixed::from_micros(cents * 10_000);
        for pr in ["quality", "balanced", "speed"] {
            let req = RequestBuilder::new("x")
                .set("priority", pr)
                .set("quality_threshold", 0)
                .build(&p)
                .unwrap();
            let s = State::new(&p, common::NOW.parse().unwrap()).with_spend(spend);
            let d = p.decide(&req, &s);
            if let Some(b) = d.backend {
                let total = spend.checked_add(d.cost).unwrap();
                assert!(total <= p.budget.monthly, "{pr} at {spend}: {total}");
                assert!(p.backend(b).unwrap().criteria.budget_available);
            }
        }
    }
}

#[test]
fn bad_requests_get_one_clear_error() {
    let p = videogen();
    let err = |json: &str| {
        genroute::Request::from_json(&p, json)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(r#"{"priority": "qualty"}"#),
        "request field `priority`: 'qualty' is not one of 'quality', 'balanced', 'speed'; did you mean 'quality'?"
    );
    assert!(err(r#"{"duration": -5}"#).contains("out of range"));
    assert!(err(r#"{"quality_threshold": 1.5}"#).contains("out of range"));
    assert!(err(r#"{"prority": "speed"}"#).contains("did you mean `priority`?"));
    assert!(err(r#"{"tier": "gold"}"#).contains("'gold' is not one of 'free', 'pro', 'enterprise'"));
    assert!(err(r#"{"duration": "8"}"#).contains("expected a number"));
    assert!(err("[1, 2]").contains("expected a JSON object"));
    assert!(err("{").contains("not valid JSON"));
}

#[test]
fn a_standalone_condition_means_what_it_means_in_a_rule() {
    let p = videogen();
    let guard = p
        .condition("priority == 'quality' AND budget_available", Some("veo"))
        .unwrap();
    let req = request(&p, r#"{"priority": "quality"}"#);
    // veo's default model costs 0.10: it fits at 99.90 and not at 99.95.
    assert_eq!(
        guard.evaluate(&p.context(&req, &state(&p, "99.90"))),
        Ok(true)
    );
    assert_eq!(
        guard.evaluate(&p.context(&req, &state(&p, "99.95"))),
        Ok(false)
    );
    let speed = request(&p, r#"{"priority": "speed"}"#);
    assert_eq!(
        guard.evaluate(&p.context(&speed, &state(&p, "0"))),
        Ok(false)
    );

    let unset = p.condition("style == 'anime'", None).unwrap();
    let err = unset
        .evaluate(&p.context(&req, &state(&p, "0")))
        .unwrap_err();
    assert_eq!(err.kind, genroute::eval::EvalErrorKind::Unset);
    assert_eq!(
        (err.span.start, err.span.end),
        (0, 5),
        "the error points at `style`"
    );
}

#[test]
fn a_standalone_condition_is_checked_like_a_rule() {
    let p = videogen();
    let typo = p
        .condition("priorty == 'quality'", None)
        .unwrap_err()
        .to_string();
    assert!(typo.contains("did you mean `priority`"), "{typo}");
    let no_target = p.condition("cost < 1", None).unwrap_err().to_string();
    assert!(no_target.contains("cost"), "{no_target}");
    let target = p.condition("cost < 1", Some("vo")).unwrap_err().to_string();
    assert!(target.contains("unknown target backend `vo`"), "{target}");
    assert!(target.contains("did you mean `veo`?"), "{target}");
    let syntax = p.condition("priority ==", None).unwrap_err().to_string();
    assert!(syntax.contains("<condition>"), "{syntax}");
}
