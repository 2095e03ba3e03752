//! Weighted splits and experiments (issue 14 §3): shares, stickiness, ineligible arms,
//! rollbacks, dynamic weights, explain, `simulate`, and the load errors.

use genroute::breaker::BreakerState;
use genroute::measure::Measured;
use genroute::simulate::{simulate, Item};
use genroute::store::Month;
use genroute::{Fixed, Policy, Request, RequestBuilder, State};

const SPLIT: &str = include_str!("fixtures/split.yaml");

fn policy(text: &str) -> Policy {
    Policy::from_yaml("split.yaml", text).unwrap_or_else(|e| panic!("{e}"))
}

fn now() -> chrono::DateTime<chrono::Utc> {
    "2026-11-10T12:00:00Z".parse().unwrap()
}

fn request(p: &Policy, user: Option<&str>, id: &str) -> Request {
    let mut b = RequestBuilder::new("a lighthouse in a storm")
        .set("priority", "balanced")
        .set("quality_threshold", 0.5);
    if let Some(u) = user {
        b = b.set("user", u);
    }
    let mut r = b.build(p).unwrap();
    r.id = Some(id.to_string());
    r
}

fn chosen<'p>(p: &'p Policy, r: &Request, s: &State) -> &'p str {
    let d = p.decide(r, s);
    p.backend(d.backend.expect("a backend"))
        .unwrap()
        .name
        .as_str()
}

/// Shares of 100,000 decisions keyed by request id.
fn shares(p: &Policy, state: &State, names: &[&str]) -> Vec<f64> {
    let n = 100_000;
    let mut counts = vec![0u32; names.len()];
    for i in 0..n {
        let r = request(p, None, &format!("req-{i}"));
        let b = chosen(p, &r, state);
        counts[names.iter().position(|x| *x == b).unwrap()] += 1;
    }
    counts
        .iter()
        .map(|c| f64::from(*c) / f64::from(n))
        .collect()
}

#[test]
fn split_shares_over_100k_decisions_are_within_one_percent_of_the_weights() {
    let p = policy(SPLIT);
    let s = shares(&p, &State::new(&p, now()), &["veo", "pixverse"]);
    assert!((s[0] - 0.8).abs() < 0.01, "{s:?}");
    assert!((s[1] - 0.2).abs() < 0.01, "{s:?}");
}

#[test]
fn one_user_stays_on_one_arm_whatever_the_request_id() {
    let p = policy(SPLIT);
    let state = State::new(&p, now());
    let mut on = std::collections::BTreeMap::<&str, u32>::new();
    for u in 0..300 {
        let user = format!("user-{u}");
        let first = chosen(&p, &request(&p, Some(&user), "r0"), &state);
        for i in 1..20 {
            let again = chosen(&p, &request(&p, Some(&user), &format!("r{i}")), &state);
            assert_eq!(again, first, "{user} moved from {first} to {again}");
        }
        *on.entry(first).or_default() += 1;
    }
    assert!(on["pixverse"] > 30 && on["veo"] > 200, "{on:?}");
}

const THREE_ARMS: &str = "
  - name: balanced_ab
    condition: \"priority == 'balanced'\"
    split:
      - {backend: veo, weight: 50}
      - {backend: pixverse, weight: 30}
      - {backend: cogvideox, weight: 20}
    split_key: user
";

fn three_arms() -> Policy {
    let text = SPLIT.replace(
        &SPLIT[SPLIT.find("  - name: balanced_ab").unwrap()..SPLIT.find("experiments:").unwrap()],
        &format!("{THREE_ARMS}\n"),
    );
    policy(&text)
}

#[test]
fn an_ineligible_arm_gives_its_share_to_the_others_and_only_its_keys_move() {
    let p = three_arms();
    let open = {
        let mut s = State::new(&p, now());
        s.set_breaker(&p, "pixverse", BreakerState::Open).unwrap();
        s
    };
    let closed = State::new(&p, now());
    let (mut moved_to, mut kept) = (std::collections::BTreeMap::<&str, u32>::new(), 0);
    for u in 0..20_000 {
        let r = request(&p, Some(&format!("u{u}")), "r");
        let before = chosen(&p, &r, &closed);
        let after = chosen(&p, &r, &open);
        assert_ne!(after, "pixverse", "an open breaker's arm is never drawn");
        if before == "pixverse" {
            *moved_to.entry(after).or_default() += 1;
        } else {
            assert_eq!(
                after, before,
                "u{u} was not on the ineligible arm and must stay"
            );
            kept += 1;
        }
    }
    // PixVerse's keys go to the others in proportion to their weights, 50:20.
    let (veo, cog) = (f64::from(moved_to["veo"]), f64::from(moved_to["cogvideox"]));
    assert!((veo / (veo + cog) - 5.0 / 7.0).abs() < 0.03, "{moved_to:?}");
    assert!(kept > 12_000, "{kept}");
}

#[test]
fn a_rolled_back_experiment_sends_every_key_to_the_primary() {
    let p = policy(SPLIT);
    let mut state = State::new(&p, now());
    state.rolled_back = vec![true];
    for u in 0..2_000 {
        let r = request(&p, Some(&format!("u{u}")), "r");
        assert_eq!(chosen(&p, &r, &state), "veo");
    }
    let why = p.explain(&request(&p, Some("bob"), "r"), &state);
    let split = &serde_json::to_value(&why).unwrap()["rules"][0]["split"];
    assert_eq!(split["experiment"]["status"], "rolled_back", "{split}");
    assert_eq!(split["arms"][1]["effective_weight"], 0, "{split}");
}

/// Measured figures by backend name, in the policy's backend order.
fn by_name(p: &Policy, figures: &[(&str, Measured)]) -> Vec<Measured> {
    let mut out = vec![Measured::default(); p.backends.len()];
    for (name, m) in figures {
        out[p.backend_index(name).unwrap() as usize] = *m;
    }
    out
}

fn measured(samples: u32, p50: &str) -> Measured {
    Measured {
        samples,
        pass_rate: Some(Fixed::ONE),
        latency_p50: Some(p50.parse().unwrap()),
        latency_p95: Some(p50.parse().unwrap()),
        flicker: None,
    }
}

#[test]
fn dynamic_weights_move_share_away_from_a_slow_backend_once_it_has_samples() {
    let text = SPLIT.replace(
        "    split_key: user\n",
        "    split_key: user\n    dynamic_weights: {by: latency_p50, floor: 5, ceiling: 95, min_samples: 20}\n",
    );
    let p = policy(&text);
    let mut state = State::new(&p, now());
    // Veo at 120 s, PixVerse at 30 s: mean 75, so 80 × 75/120 = 50 and 20 × 75/30 = 50.
    state.measured = by_name(
        &p,
        &[
            ("veo", measured(50, "120")),
            ("pixverse", measured(50, "30")),
        ],
    );
    let s = shares(&p, &state, &["veo", "pixverse"]);
    assert!((s[1] - 0.5).abs() < 0.01, "{s:?}");
    // Below min_samples, the written weights hold.
    state.measured = by_name(
        &p,
        &[
            ("veo", measured(10, "120")),
            ("pixverse", measured(10, "30")),
        ],
    );
    let s = shares(&p, &state, &["veo", "pixverse"]);
    assert!((s[1] - 0.2).abs() < 0.01, "{s:?}");
}

#[test]
fn explain_shows_the_key_the_arms_and_the_draw() {
    let p = policy(SPLIT);
    let state = State::new(&p, now());
    let why = p.explain(&request(&p, Some("alice"), "r"), &state);
    let v = serde_json::to_value(&why).unwrap();
    let split = &v["rules"][0]["split"];
    assert_eq!(split["key"], "user = 'alice'", "{split}");
    assert_eq!(split["arms"][0]["backend"], "veo");
    assert_eq!(split["arms"][0]["share"], 0.8);
    assert_eq!(split["drawn"], v["backend"]);
    assert_eq!(split["experiment"]["status"], "running");
    let text = why.to_text();
    assert!(text.contains("split by user = 'alice'"), "{text}");
    assert!(text.contains("drawn"), "{text}");
}

fn workload(p: &Policy, n: usize) -> Vec<Item> {
    genroute::simulate::generate(
        p,
        n as u64,
        &[("balanced".to_string(), 1.0)],
        Month::parse("2026-11").unwrap(),
        3,
    )
    .unwrap()
}

#[test]
fn simulate_rolls_back_at_the_first_request_where_the_rule_holds() {
    let p = policy(SPLIT);
    let items = workload(&p, 5_000);
    let month = Month::parse("2026-11").unwrap();
    let full = simulate(&p, &items, 1, month, &|_| {});
    let e = &full.experiments[0];
    let at = e
        .rolled_back_at_request
        .expect("PixVerse at 0.70 against 0.98 rolls back") as usize;
    assert!(e.reason.as_deref().unwrap().contains("under 90 %"), "{e:?}");
    let pix = &e.arms[1];
    let at_rollback = pix.at_rollback.unwrap();
    assert!(at_rollback.samples >= 30 && e.arms[0].at_rollback.unwrap().samples >= 30);
    // After the rollback, the experimental arm draws no first attempts.
    assert_eq!(pix.figures.samples, at_rollback.samples, "{pix:?}");
    // The month cut at that request rolls back at it; one request earlier, it does not.
    let upto = simulate(&p, &items[..at], 1, month, &|_| {});
    assert_eq!(upto.experiments[0].rolled_back_at_request, Some(at as u64));
    let before = simulate(&p, &items[..at - 1], 1, month, &|_| {});
    assert_eq!(before.experiments[0].rolled_back_at_request, None);
    // Bad outputs were spent and fallen back from.
    assert!(full.backends["pixverse"].bad_outputs > 0);
}

#[test]
fn an_experiment_whose_arm_holds_up_does_not_roll_back() {
    let p = policy(&SPLIT.replace("pass_rate: 0.70", "pass_rate: 0.97"));
    let items = workload(&p, 5_000);
    let r = simulate(&p, &items, 1, Month::parse("2026-11").unwrap(), &|_| {});
    let e = &r.experiments[0];
    assert_eq!(e.rolled_back_at_request, None, "{e:?}");
    let pix = &e.arms[1].figures;
    assert!(pix.samples > 800, "{pix:?}");
}

fn codes(text: &str) -> Vec<&'static str> {
    match Policy::from_yaml("bad.yaml", text) {
        Ok(_) => Vec::new(),
        Err(e) => e.diagnostics.iter().map(|d| d.code).collect(),
    }
}

#[test]
fn split_and_experiment_mistakes_are_load_errors_with_their_codes() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "{backend: pixverse, weight: 20}",
            "{backend: pixvers, weight: 20}",
            "unknown-backend",
        ),
        (
            "{backend: pixverse, weight: 20}",
            "{backend: pixverse, weight: -1}",
            "out-of-range",
        ),
        (
            "{backend: pixverse, weight: 20}",
            "{backend: veo, weight: 20}",
            "duplicate-arm",
        ),
        ("split_key: user", "split_key: usr", "unknown-field"),
        (
            "    split:\n",
            "    backend: veo\n    split:\n",
            "backend-and-split",
        ),
        ("primary: veo", "primary: cogvideox", "arm-not-in-rule"),
        ("rule: balanced_ab", "rule: balanced", "unknown-rule"),
        ("metric: pass_rate", "metric: quality", "invalid-value"),
        ("rollback_below: 0.9", "rollback_below: 1.5", "out-of-range"),
    ];
    for (from, to, code) in cases {
        assert!(SPLIT.contains(from), "{from}");
        let got = codes(&SPLIT.replacen(from, to, 1));
        assert!(got.contains(code), "{to}: expected `{code}`, got {got:?}");
    }
    let zero = SPLIT
        .replace("weight: 80", "weight: 0")
        .replace("weight: 20", "weight: 0");
    assert!(codes(&zero).contains(&"out-of-range"));
}

#[test]
fn conditions_read_measured_figures_and_an_unmeasured_one_does_not_match() {
    let text = SPLIT.replace(
        "selection_rules:\n",
        "selection_rules:\n  - name: pixverse_degraded\n    condition: \"backends.pixverse.measured.pass_rate < 0.9 AND backends.pixverse.measured.samples >= 20\"\n    backend: veo\n",
    );
    let p = policy(&text);
    let r = request(&p, Some("bob"), "r");
    let mut state = State::new(&p, now());
    // No history: the figure is unset, the rule does not match, explain says why.
    let why = serde_json::to_value(p.explain(&r, &state)).unwrap();
    assert_eq!(why["rules"][0]["status"], "error", "{}", why["rules"][0]);
    assert!(
        why["rules"][0]["error"]
            .as_str()
            .unwrap()
            .contains("no measured data"),
        "{}",
        why["rules"][0]
    );
    let mut bad = measured(40, "30");
    bad.pass_rate = Some("0.5".parse().unwrap());
    state.measured = by_name(&p, &[("pixverse", bad)]);
    assert_eq!(
        p.explain(&r, &state).rule.as_deref(),
        Some("pixverse_degraded")
    );
    // The compiled program (no machine code for live figures) agrees with explain.
    let d = p.decide(&r, &state);
    assert_eq!(d.rule, Some(0));
}

#[test]
fn video_figures_are_only_for_quality_retry() {
    let text = SPLIT.replace(
        "condition: \"priority == 'balanced'\"",
        "condition: \"video.flicker > 0.2\"",
    );
    let err = Policy::from_yaml("bad.yaml", &text)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("only `execution.quality_retry.when` can read it"),
        "{err}"
    );
}
