//! What `check` tells a policy author: every error at once, located in the YAML file, with a
//! caret and a help line. The rendered text is snapshotted in `snapshots/`.

mod common;
use common::{diagnostics, policy};

fn with_rules(rules: &str) -> String {
    format!(
        r#"budget:
  monthly_budget_usd: 100
  cost_threshold_usd: 80
backends:
  veo:
    priority: 1
    type: cloud_api
    cost:
      veo_2: {{per_video_usd: 0.10}}
      veo_3: {{per_video_usd: 0.15}}
    models:
      - {{id: veo-2.0-generate-001, cost: veo_2}}
      - {{id: veo-3.0-generate-preview, cost: veo_3}}
    quality: {{score: 0.95}}
    performance: {{avg_generation_time_seconds: 45, max_generation_time_seconds: 300}}
  pixverse:
    priority: 2
    type: cloud_api
    cost: {{per_video_usd: 0.05}}
    quality: {{score: 0.85}}
    performance: {{avg_generation_time_seconds: 30, max_generation_time_seconds: 90}}
selection_rules:
{rules}"#
    )
}

fn rule(name: &str, condition: &str, backend: &str) -> String {
    format!("  - name: {name}\n    condition: \"{condition}\"\n    backend: {backend}\n")
}

#[test]
fn base_policy_is_valid() {
    let p = policy(&with_rules(&rule("ok", "priority == 'quality'", "veo")));
    assert_eq!(p.rules.len(), 1);
}

#[test]
fn unknown_name_suggests_the_closest() {
    let out = diagnostics(
        "p.yaml",
        &with_rules(&rule("q", "prioirty == 'quality'", "veo")),
    );
    assert!(out.contains("unknown name `prioirty`"), "{out}");
    assert!(out.contains("did you mean `priority`?"), "{out}");
    assert!(out.contains("p.yaml:24:17"), "{out}");
    snap!("unknown_name", out);
}

#[test]
fn money_compared_with_a_string_is_a_type_error() {
    let out = diagnostics(
        "p.yaml",
        &with_rules(&rule("m", "monthly_spend == 'high'", "veo")),
    );
    assert!(out.contains("cannot compare money with a string"), "{out}");
    snap!("type_mismatch", out);
}

#[test]
fn misspelled_enum_value_suggests_the_right_one() {
    let out = diagnostics(
        "p.yaml",
        &with_rules(&rule("q", "priority == 'qualty'", "veo")),
    );
    assert!(
        out.contains("'qualty' is not a value of `priority`"),
        "{out}"
    );
    assert!(out.contains("did you mean 'quality'?"), "{out}");
    snap!("enum_value", out);
}

#[test]
fn rule_targeting_an_unknown_backend() {
    let out = diagnostics(
        "p.yaml",
        &with_rules(&rule("s", "priority == 'speed'", "pixvers")),
    );
    assert!(out.contains("targets unknown backend `pixvers`"), "{out}");
    assert!(out.contains("did you mean `pixverse`?"), "{out}");
    snap!("unknown_backend", out);
}

#[test]
fn duplicate_rule_names_point_at_the_first() {
    let rules = rule("same", "priority == 'speed'", "pixverse")
        + &rule("same", "priority == 'quality'", "veo");
    let out = diagnostics("p.yaml", &with_rules(&rules));
    assert!(out.contains("duplicate rule name `same`"), "{out}");
    assert!(out.contains("is at line 23"), "{out}");
    snap!("duplicate_rule", out);
}

#[test]
fn a_repeated_backend_is_an_error_not_a_silent_replacement() {
    // serde_yaml would keep the second `pixverse` and drop the first without a word.
    let yaml = with_rules(&rule("ok", "true", "veo")).replace(
        "selection_rules:\n",
        "  pixverse:\n    priority: 3\n    type: cloud_api\n    cost: {per_video_usd: 0.01}\n    quality: {score: 0.5}\n    performance: {avg_generation_time_seconds: 1, max_generation_time_seconds: 9}\nselection_rules:\n",
    );
    let out = diagnostics("p.yaml", &yaml);
    assert!(
        out.contains("error[duplicate-key]: duplicate key `pixverse`"),
        "{out}"
    );
    assert!(out.contains("p.yaml:22:3"), "{out}");
    assert!(out.contains("the first `pixverse` is at line 16"), "{out}");
}

#[test]
fn yaml_syntax_error_is_located() {
    let out = diagnostics(
        "p.yaml",
        "budget:\n  monthly_budget_usd: 100\n  cost_threshold_usd: \"80\nbackends: {}\n",
    );
    assert!(out.contains("error[yaml-syntax]"), "{out}");
    assert!(out.contains("p.yaml:5:1"), "{out}");
    snap!("yaml_syntax", out);
}

#[test]
fn unknown_keys_are_errors_with_suggestions() {
    let yaml = with_rules(&rule("ok", "true", "veo"))
        .replace("    priority: 2\n", "    priority: 2\n    enabeld: false\n")
        .replace(
            "  cost_threshold_usd: 80\n",
            "  cost_threshold_usd: 80\n  x-owner: finance\n",
        );
    let out = diagnostics("p.yaml", &yaml);
    assert!(out.contains("unknown key `enabeld`"), "{out}");
    assert!(out.contains("did you mean `enabled`?"), "{out}");
    assert!(!out.contains("x-owner"), "x- keys are notes: {out}");
    snap!("unknown_key", out);
}

#[test]
fn every_error_is_reported_in_one_pass() {
    let rules = [
        rule("a", "prioirty == 'quality'", "veo"),
        rule(
            "b",
            "monthly_spend == 'high' AND priority == 'qualty'",
            "veo",
        ),
        rule("c", "duration > ", "veo"),
        rule("d", "true", "mochi"),
        rule("a", "true", "veo"),
    ]
    .concat();
    let yaml = with_rules(&rules).replace(
        "    cost: {per_video_usd: 0.05}",
        "    cost: {per_vidoe_usd: 0.05}",
    );
    let out = diagnostics("p.yaml", &yaml);
    for needle in [
        "unknown name `prioirty`",
        "cannot compare money with a string",
        "'qualty' is not a value of `priority`",
        "syntax error in rule `c`",
        "unknown backend `mochi`",
        "duplicate rule name `a`",
        "`per_vidoe_usd` under `cost`",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }
    snap!("many_errors", out);
}

#[test]
fn columns_are_exact_inside_escaped_and_block_conditions() {
    let escaped = with_rules("  - name: e\n    condition: \"style == \\\"noir\\\" AND prioirty == 'speed'\"\n    backend: veo\n");
    let out = diagnostics("p.yaml", &escaped);
    assert!(out.contains("p.yaml:24:39"), "{out}");
    let block = with_rules("  - name: b\n    condition: >-\n      priority == 'speed'\n      AND bugdet_available\n    backend: veo\n");
    let out = diagnostics("p.yaml", &block);
    assert!(out.contains("p.yaml:26:11"), "{out}");
    assert!(out.contains("did you mean `budget_available`?"), "{out}");
    snap!("block_scalar", out);
}

#[test]
fn unknown_model_preference() {
    let yaml = with_rules("  - name: q\n    condition: \"true\"\n    backend: veo\n    model_preference: veo-3.0-generate-previw\n");
    let out = diagnostics("p.yaml", &yaml);
    assert!(
        out.contains("has no model `veo-3.0-generate-previw`"),
        "{out}"
    );
    assert!(
        out.contains("did you mean `veo-3.0-generate-preview`?"),
        "{out}"
    );
}

#[test]
fn missing_section_names_the_key() {
    let yaml = with_rules(&rule("ok", "true", "veo")).replace(
        "budget:\n  monthly_budget_usd: 100\n  cost_threshold_usd: 80\n",
        "",
    );
    let out = diagnostics("p.yaml", &yaml);
    assert!(out.contains("missing field `budget`"), "{out}");
}

#[test]
fn money_with_more_than_six_decimals_is_refused() {
    let yaml = with_rules(&rule("ok", "true", "veo"))
        .replace("per_video_usd: 0.05", "per_video_usd: 0.0500001");
    let out = diagnostics("p.yaml", &yaml);
    assert!(out.contains("more than 6 decimal places"), "{out}");
}

#[test]
fn condition_that_is_not_boolean() {
    let out = diagnostics(
        "p.yaml",
        &with_rules(&rule("n", "monthly_spend + 1", "veo")),
    );
    assert!(out.contains("a condition must be true or false"), "{out}");
}

#[test]
fn constant_division_by_zero_is_caught_at_load() {
    let out = diagnostics("p.yaml", &with_rules(&rule("z", "duration > 1 / 0", "veo")));
    assert!(out.contains("division by zero"), "{out}");
}

#[test]
fn deeply_nested_condition_in_a_policy_is_an_error_not_a_crash() {
    let deep = format!("{}true{}", "(".repeat(10_000), ")".repeat(10_000));
    let out = diagnostics("p.yaml", &with_rules(&rule("deep", &deep, "veo")));
    assert!(
        out.contains("parentheses nest more than 24 levels deep"),
        "{out}"
    );
}

#[test]
fn invalid_feature_flag_value_names_the_variable() {
    let yaml = with_rules(&rule("ok", "true", "veo"));
    let env = |k: &str| (k == "GENROUTE_BACKEND_PIXVERSE_ENABLED").then(|| "maybe".to_string());
    let err = genroute::Policy::load(
        genroute::Source::new("p.yaml", yaml),
        &genroute::LoadOptions { env: &env },
    )
    .unwrap_err();
    let out = err.to_string();
    assert!(
        out.contains("`GENROUTE_BACKEND_PIXVERSE_ENABLED` is `maybe`"),
        "{out}"
    );
}

#[test]
fn declared_fields_are_typed() {
    let yaml = format!(
        "request_fields:\n  tier: {{type: enum, values: [free, pro]}}\n{}",
        with_rules(&rule("t", "tier == 'prro'", "veo"))
    );
    let out = diagnostics("p.yaml", &yaml);
    assert!(out.contains("did you mean 'pro'?"), "{out}");
}

/// The policy from the issue: valid, with an `x-` note of `n` nested brackets on one line.
fn with_deep_note(n: usize) -> String {
    format!(
        "budget: {{monthly_budget_usd: 10, cost_threshold_usd: 8}}\nbackends:\n  a: {{priority: 1, type: simulated, cost: {{per_video_usd: 0.1}}, quality: {{score: 0.9}}, performance: {{avg_generation_time_seconds: 1, max_generation_time_seconds: 2}}}}\nx-note: {}{}\n",
        "[".repeat(n),
        "]".repeat(n)
    )
}

#[test]
fn yaml_nested_past_the_bound_is_one_error_where_the_bound_is_passed() {
    // 100,000 brackets (200 KB) used to take libyaml's scanner quadratic time before
    // serde_yaml ignored the note; now the located tree stops at level 65.
    let out = diagnostics("p.yaml", &with_deep_note(100_000));
    assert_eq!(out.matches("error[").count(), 1, "{out}");
    assert!(
        out.contains("error[too-deep]: mappings and sequences nest more than 64 levels deep"),
        "{out}"
    );
    // The top-level mapping is level 1 and the note's first bracket level 2, at column 9.
    assert!(out.contains("p.yaml:4:72"), "{out}");
    assert!(
        out.len() < 1000,
        "the 200 KB line is shown as an excerpt: {out}"
    );
    snap!("too_deep", out);
}

#[test]
fn yaml_nested_past_the_bound_after_a_line_only_libyaml_accepts_is_still_too_deep() {
    // saphyr stops at the tab after `x-a:`; libyaml (under serde_yaml) would read on, into
    // the brackets, in quadratic time. A tab after a colon alone still loads, as before.
    let tab = |yaml: String| yaml.replace("x-note:", "x-a:\t1\nx-note:");
    assert_eq!(policy(&tab(with_deep_note(10))).backends.len(), 1);
    let out = diagnostics("p.yaml", &tab(with_deep_note(100_000)));
    assert_eq!(out.matches("error[").count(), 1, "{out}");
    assert!(out.contains("error[too-deep]"), "{out}");
    assert!(out.contains("p.yaml:5:73"), "{out}");
}

#[test]
fn yaml_nested_to_the_bound_loads() {
    // 63 brackets under the top-level mapping: 64 levels.
    let p = policy(&with_deep_note(63));
    assert_eq!(p.backends.len(), 1);
    let out = diagnostics("p.yaml", &with_deep_note(64));
    assert!(out.contains("error[too-deep]"), "{out}");
}

#[test]
fn yaml_nested_past_the_bound_in_a_typed_value_is_too_deep_not_a_type_error() {
    // serde_yaml would have read up to its own limit of 128 levels, then reported
    // "recursion limit exceeded" as a syntax error.
    let yaml = with_rules(&rule("ok", "true", "veo")).replace(
        "      veo_2: {per_video_usd: 0.10}\n",
        &format!(
            "      veo_2: {{per_video_usd: 0.10, x: {}1{}}}\n",
            "[".repeat(200),
            "]".repeat(200)
        ),
    );
    let out = diagnostics("p.yaml", &yaml);
    assert_eq!(out.matches("error[").count(), 1, "{out}");
    assert!(out.contains("error[too-deep]"), "{out}");
    assert!(out.contains("the limit is 64 levels"), "{out}");
}

/// About 300 KB of YAML that is shallow but large in every other way: long flow sequences,
/// mappings with thousands of keys, long strings, hundreds of backends and rules.
fn large_shallow_policy() -> String {
    let backends: String = (0..300)
        .map(|i| format!("  b{i}: {{priority: {i}, type: simulated, cost: {{per_video_usd: 0.1}}, quality: {{score: 0.9}}, performance: {{avg_generation_time_seconds: 1, max_generation_time_seconds: 2}}}}\n"))
        .collect();
    let rules: String = (0..600)
        .map(|i| {
            format!(
                "  - {{name: r{i}, condition: \"duration > {i} AND priority == 'speed'\", backend: b{}}}\n",
                i % 300
            )
        })
        .collect();
    let list = vec!["1"; 20_000].join(", ");
    let keys: String = (0..5_000).map(|i| format!("  k{i}: v{i}\n")).collect();
    let notes: String = (0..2_000).map(|i| format!("x-n{i}: {i}\n")).collect();
    format!(
        "budget: {{monthly_budget_usd: 10, cost_threshold_usd: 8}}\nbackends:\n{backends}selection_rules:\n{rules}x-list: [{list}]\nx-map:\n{keys}x-text: \"{}\"\nx-block: |\n{}{notes}",
        "ab\\t".repeat(10_000),
        "  line\n".repeat(5_000)
    )
}

#[test]
fn large_shallow_policy_loads() {
    let yaml = large_shallow_policy();
    assert!(yaml.len() > 250_000, "{}", yaml.len());
    let p = policy(&yaml);
    assert_eq!(p.backends.len(), 300);
    assert_eq!(p.rules.len(), 600);
}

#[test]
fn every_unknown_key_of_a_large_mapping_is_located() {
    // Keys are found through the mapping's index once it has more than a few entries.
    let extra: String = (0..100).map(|i| format!("  unknown{i}: 1\n")).collect();
    let yaml = with_rules(&rule("ok", "true", "veo")).replace(
        "  cost_threshold_usd: 80\n",
        &format!("  cost_threshold_usd: 80\n{extra}"),
    );
    let out = diagnostics("p.yaml", &yaml);
    assert_eq!(out.matches("error[unknown-key]").count(), 100, "{out}");
    assert!(out.contains("p.yaml:4:3"), "{out}");
    assert!(out.contains("p.yaml:103:3"), "{out}");
}

#[test]
fn a_diagnostic_on_a_long_line_shows_an_excerpt_at_the_true_column() {
    // A policy written on one line, with a misspelled key at its end.
    let note = "n".repeat(10_000);
    let yaml = format!(
        "{{x-note: {note}, budget: {{monthly_budget_usd: 10, cost_threshold_usd: 8}}, backends: {{a: {{priority: 1, type: simulated, cost: {{per_video_usd: 0.1}}, quality: {{score: 0.9}}, performance: {{avg_generation_time_seconds: 1, max_generation_time_seconds: 2}}}}}}, enabeld: 1}}\n"
    );
    let out = diagnostics("p.yaml", &yaml);
    let column = yaml.find("enabeld").unwrap() + 1;
    assert!(out.contains(&format!("p.yaml:1:{column}")), "{out}");
    assert!(out.contains("…"), "{out}");
    assert!(out.len() < 1000, "{out}");
    assert!(out.contains("unknown key `enabeld`"), "{out}");
}
