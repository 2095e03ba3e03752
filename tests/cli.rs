//! Golden tests of the real `genroute` binary: output, exit codes, and one-line errors.

mod common;
#[path = "common/scratch.rs"]
mod scratch;

use std::process::{Command, Output};

/// The binary, with fake keys for the shipped policy and a fresh, empty ledger.
fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_genroute"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("VIDEOGEN_BACKEND_PIXVERSE_ENABLED")
        .env("VERTEX_ACCESS_TOKEN", "test-token")
        .env("PIXVERSE_API_KEY", "test-key")
        .env("GENROUTE_DATA_DIR", tempdir());
    c
}

fn genroute(args: &[&str]) -> Output {
    command().args(args).output().expect("binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const EXPLAIN: &[&str] = &[
    "explain",
    "--policy",
    "policies/videogen.yaml",
    "--now",
    common::NOW,
];

fn explain(extra: &[&str]) -> Output {
    genroute(&[EXPLAIN, extra].concat())
}

#[test]
fn check_accepts_the_shipped_policy() {
    let o = genroute(&["check", "policies/videogen.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "policies/videogen.yaml: ok (4 backends, 7 rules)\n"
    );
}

#[test]
fn check_reports_every_error_and_exits_1() {
    let dir = tempdir();
    let bad = dir.join("bad.yaml");
    let text = genroute::EXAMPLE_POLICY
        .replace(
            "priority == 'speed' AND budget_available",
            "prioirty == 'speed' AND budget_available",
        )
        .replace("backend: \"cogvideox\"", "backend: \"cogvidex\"");
    std::fs::write(&bad, text).unwrap();
    let o = genroute(&["check", "policies/videogen.yaml", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o).replace(dir.to_str().unwrap(), "$DIR");
    let at = format!(
        "$DIR/bad.yaml:{}:17",
        line_of("priority == 'speed' AND budget_available")
    );
    assert!(err.contains(&at), "{err}");
    assert!(err.contains("$DIR/bad.yaml: 3 errors"), "{err}");
    assert!(stdout(&o).contains("policies/videogen.yaml: ok"));
    snap!("cli_check_errors", err);
}

#[test]
fn check_json_lists_diagnostics_with_line_and_column() {
    let dir = tempdir();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        genroute::EXAMPLE_POLICY.replace(
            "priority == 'quality' AND budget_available",
            "priority == 'qualty' AND budget_available",
        ),
    )
    .unwrap();
    let o = genroute(&["check", "--format", "json", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let d = &v[0]["diagnostics"][0];
    assert_eq!(d["code"], "unknown-enum-value");
    assert_eq!(
        d["line"],
        line_of("priority == 'quality' AND budget_available")
    );
    assert_eq!(d["column"], 29);
    assert_eq!(
        d["help"],
        "did you mean 'quality'? `priority` is one of 'quality', 'balanced', 'speed'"
    );
}

#[test]
fn explain_text_shows_clauses_values_and_the_decision() {
    let o = explain(&[
        "--request",
        r#"{"priority": "balanced", "aspect_ratio": "9:16"}"#,
        "--spend",
        "20",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("decision  pixverse"), "{out}");
    assert!(
        out.contains("true   aspect_ratio in ['9:16', '1:1']  (aspect_ratio = '9:16')"),
        "{out}"
    );
    snap!("cli_explain_text", out);
}

#[test]
fn explain_json_has_the_documented_keys() {
    let o = explain(&[
        "--request",
        r#"{"priority": "quality"}"#,
        "--format",
        "json",
        "--breaker",
        "veo=open",
        "--spend",
        "12.5",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["backend"], "mochi");
    assert_eq!(v["rule"], "veo_outage_quality");
    assert!(v["fallbacks"].is_array());
    assert_eq!(v["rules"][0]["name"], "quality_priority");
    assert_eq!(v["rules"][0]["matched"], true);
    assert_eq!(v["backends"][0]["name"], "veo");
    assert_eq!(v["backends"][0]["eligible"], false);
    assert_eq!(v["backends"][0]["reasons"][0], "circuit breaker is open");
    snap_json!("cli_explain_json", v);
}

#[test]
fn explain_exits_3_when_nothing_is_eligible_and_still_prints() {
    let o = explain(&[
        "--request",
        r#"{"priority": "speed", "quality_threshold": 0.95}"#,
    ]);
    assert_eq!(o.status.code(), Some(3));
    let out = stdout(&o);
    assert!(
        out.contains("decision  none: no backend is eligible"),
        "{out}"
    );
    snap!("cli_explain_none", out);
}

#[test]
fn explain_reads_the_request_from_a_file() {
    let dir = tempdir();
    let req = dir.join("req.json");
    std::fs::write(&req, r#"{"priority": "speed"}"#).unwrap();
    let o = explain(&["--request", &format!("@{}", req.display())]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("decision  pixverse"));
}

#[test]
fn environment_feature_flag_reaches_explain() {
    let o = command()
        .args(EXPLAIN)
        .args(["--request", r#"{"priority": "speed"}"#])
        .env("VIDEOGEN_BACKEND_PIXVERSE_ENABLED", "false")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stdout(&o).contains("disabled by environment variable VIDEOGEN_BACKEND_PIXVERSE_ENABLED")
    );
}

#[test]
fn bad_input_gets_one_line_and_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--request", r#"{"priority": "fast"}"#],
            "error: --request: request field `priority`: 'fast' is not one of",
        ),
        (
            &["--request", "{not json"],
            "error: --request: request field `(body)`: not valid JSON",
        ),
        (&["--spend", "-3"], "error: --spend: -3 is negative"),
        (
            &["--spend", "lots"],
            "error: --spend: `lots` is not a decimal number",
        ),
        (
            &["--breaker", "veo=broken"],
            "error: --breaker: `broken` is not closed, open or half_open",
        ),
        (
            &["--breaker", "vo=open"],
            "error: --breaker: unknown backend `vo`",
        ),
        (
            &["--request", "@/nonexistent/req.json"],
            "error: cannot read request file `/nonexistent/req.json`",
        ),
    ];
    for (args, expected) in cases {
        let o = explain(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(err.starts_with(expected), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(stdout(&o).is_empty());
    }
    let o = genroute(&[
        "explain",
        "--policy",
        "policies/videogen.yaml",
        "--now",
        "yesterday",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("error: --now: `yesterday` is not an RFC 3339 time"));
}

#[test]
fn missing_or_invalid_policy_exits_2() {
    let o = genroute(&["explain", "--policy", "/nonexistent.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("error: cannot read `/nonexistent.yaml`"));
    let o = genroute(&["check", "/nonexistent.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let o = genroute(&["explain"]);
    assert_eq!(o.status.code(), Some(2), "usage error");
}

#[test]
fn names_lists_every_name_with_its_type() {
    let o = genroute(&["names"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    for name in [
        "request.priority",
        "budget.monthly_spend",
        "backend.breaker",
        "attempt.failures",
        "time.hour",
    ] {
        assert!(out.contains(name), "{name}");
    }
    snap!("cli_names", out);
}

/// 1-based line of the first line of the shipped policy containing `needle`.
fn line_of(needle: &str) -> usize {
    genroute::EXAMPLE_POLICY
        .lines()
        .position(|l| l.contains(needle))
        .unwrap()
        + 1
}

fn tempdir() -> std::path::PathBuf {
    scratch::scratch()
}

#[test]
fn fmt_check_passes_on_the_shipped_policies() {
    let o = genroute(&[
        "fmt",
        "--check",
        "policies/videogen.yaml",
        "policies/demo.yaml",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn fmt_rewrites_conditions_only_and_check_shows_a_diff() {
    let dir = tempdir();
    let path = dir.join("p.yaml");
    let original = include_str!("fixtures/unformatted.yaml");
    std::fs::write(&path, original).unwrap();
    let p = path.to_str().unwrap();
    let o = genroute(&["fmt", "--check", p]);
    assert_eq!(o.status.code(), Some(1));
    snap!("cli_fmt_check_diff", stdout(&o).replace(p, "p.yaml"));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        original,
        "--check changes nothing"
    );
    let o = genroute(&["fmt", p]);
    assert_eq!(o.status.code(), Some(0));
    let formatted = std::fs::read_to_string(&path).unwrap();
    snap!("cli_fmt_result", formatted.clone());
    assert!(
        formatted.contains("# top comment")
            && formatted.contains("# keep me")
            && formatted.contains("# budget")
    );
    assert_eq!(
        genroute(&["fmt", "--check", p]).status.code(),
        Some(0),
        "idempotent"
    );
    assert_eq!(genroute(&["check", p]).status.code(), Some(0));
}

#[test]
fn check_prints_lint_warnings_and_deny_warnings_fails() {
    let o = genroute(&["check", "tests/fixtures/lints.yaml"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("ok with 8 warnings"));
    assert!(stderr(&o).contains("warning[unreachable-rule]"));
    let o = genroute(&["check", "--deny-warnings", "tests/fixtures/lints.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("8 warnings, denied by --deny-warnings"));
}

#[test]
fn policy_tests_pass_for_the_shipped_policies_with_full_rule_coverage() {
    let o = genroute(&["test", "--coverage"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.ends_with("30 passed, 0 failed\n"), "{out}");
    assert_eq!(
        out.matches("coverage: 7/7 rules decided a case").count(),
        2,
        "{out}"
    );
    let o = genroute(&[
        "test",
        "--coverage",
        "--format",
        "json",
        "policies/tests/videogen.yaml",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["failed"], 0);
    assert_eq!(
        v["files"][0]["coverage"]["rules_never_deciding"],
        serde_json::json!([])
    );
    assert_eq!(
        v["files"][0]["coverage"]["backends_never_chosen"],
        serde_json::json!([])
    );
}

#[test]
fn a_failing_policy_test_shows_what_happened_instead() {
    let o = genroute(&["test", "tests/fixtures/failing-tests.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("  PASS right\n  FAIL wrong on purpose\n"),
        "{out}"
    );
    assert!(
        out.contains("expected backend `pixverse`, got `veo`"),
        "{out}"
    );
    assert!(
        out.contains("| decision  veo"),
        "the explain trace follows: {out}"
    );
    assert!(out.ends_with("1 passed, 1 failed\n"));
    let o = genroute(&["test", "tests/fixtures/lints.yaml"]);
    assert_eq!(o.status.code(), Some(2), "not a test file");
    assert!(stderr(&o).contains("is not a valid test file"));
}

#[test]
fn outputs_of_test_and_simulate_are_stable() {
    let o = genroute(&["test", "--coverage", "policies/tests/demo.yaml"]);
    snap!("cli_test_output", stdout(&o));
    let o = genroute(&[
        "simulate",
        "--policy",
        "scenarios/optimal-mix.yaml",
        "--workload",
        "scenarios/workloads/optimal-mix.jsonl",
        "--baseline",
        "scenarios/veo-only.yaml",
    ]);
    assert_eq!(o.status.code(), Some(0));
    snap!("cli_simulate_output", stdout(&o));
    let o = genroute(&[
        "simulate",
        "--policy",
        "policies/demo.yaml",
        "--mix",
        "quality=40,balanced=40,speed=20",
        "--count",
        "500",
        "--month",
        "2026-11",
        "--seed",
        "3",
    ]);
    snap!("cli_simulate_demo", stdout(&o));
    let o = genroute(&["simulate", "--policy", "policies/demo.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("give --workload FILE.jsonl, or --mix and --count"));
}

#[test]
fn generate_then_budget_show_and_history() {
    let data = tempdir();
    let d = data.to_str().unwrap();
    // The demo policy without its failure rates, so the outcome does not depend on the
    // (random) request id.
    let policy = data.join("demo.yaml");
    let reliable = ["0.05", "0.08", "0.10", "0.15"]
        .iter()
        .fold(genroute::DEMO_POLICY.to_string(), |p, r| {
            p.replace(&format!("failure_rate: {r}"), "failure_rate: 0")
        });
    assert!(!reliable.contains("failure_rate: 0."));
    std::fs::write(&policy, reliable).unwrap();
    let p = policy.to_str().unwrap();
    let o = genroute(&[
        "generate",
        "--policy",
        p,
        "--prompt",
        "a red fox at dawn",
        "--priority",
        "speed",
        "--data-dir",
        d,
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let g: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(g["backend"], "pixverse");
    assert_eq!(g["cost_usd"], serde_json::json!(0.05));
    assert_eq!(g["attempts"][0]["outcome"], "success");
    assert!(g["video"].as_str().unwrap().starts_with("sim://pixverse/"));
    let o = genroute(&[
        "budget",
        "show",
        "--policy",
        p,
        "--data-dir",
        d,
        "--format",
        "json",
    ]);
    let mut b: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    b["month"] = "YYYY-MM".into();
    snap_json!("cli_budget_show", b);
    let o = genroute(&["budget", "history", "--data-dir", d, "--format", "json"]);
    let h: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(h.as_array().unwrap().len(), 1);
    assert_eq!(h[0]["state"], "committed");
    assert_eq!(h[0]["request_id"], g["request_id"]);
    let o = genroute(&[
        "generate",
        "--policy",
        "policies/demo.yaml",
        "--prompt",
        "x",
        "--priority",
        "quality",
        "--dry-run",
        "--data-dir",
        d,
    ]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert!(
        text.contains("dry run: nothing called, nothing spent")
            && text.contains("would use veo (model veo-3.0-generate-preview)"),
        "{text}"
    );
    let o = genroute(&[
        "budget",
        "show",
        "--policy",
        "policies/demo.yaml",
        "--data-dir",
        d,
        "--format",
        "json",
    ]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()["spent_usd"],
        serde_json::json!(0.05),
        "the dry run spent nothing"
    );
}

#[test]
fn a_policy_test_file_nested_too_deep_is_refused_where_the_bound_is_passed() {
    let dir = tempdir();
    let file = dir.join("deep.yaml");
    let n = 100_000;
    let policy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/demo.yaml");
    std::fs::write(
        &file,
        format!(
            "policy: {}\ncases: []\nx-note: {}{}\n",
            policy.display(),
            "[".repeat(n),
            "]".repeat(n)
        ),
    )
    .unwrap();
    let o = genroute(&["test", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("level 65"), "{}", stderr(&o));
    assert!(stderr(&o).contains("nests too deep"), "{}", stderr(&o));
}
