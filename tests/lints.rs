//! Lints in `genroute check`: each fires where it should, explains itself, and can be
//! allowed per rule or backend.

mod common;
use genroute::{Policy, Severity};

const FIXTURE: &str = include_str!("fixtures/lints.yaml");

fn warnings(yaml: &str) -> Vec<(String, String)> {
    let p = Policy::from_yaml("lints.yaml", yaml).unwrap();
    assert!(p.warnings.iter().all(|w| w.severity == Severity::Warning));
    p.warnings
        .iter()
        .map(|w| (w.code.to_string(), w.message.clone()))
        .collect()
}

#[test]
fn each_lint_fires_once_with_its_reason() {
    let got = warnings(FIXTURE);
    let codes: Vec<&str> = got.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        codes,
        [
            "unselectable-backend",
            "unselectable-backend",
            "unused-fallback-failures",
            "unreachable-rule",
            "unreachable-rule",
            "shadowed-rule",
            "disabled-target",
            "money-precision"
        ]
    );
    assert!(got[3].1.contains("rule `never` can never match"));
    assert!(got[5].1.contains("the earlier rule `first`"));
    let p = Policy::from_yaml("lints.yaml", FIXTURE).unwrap();
    let source = genroute::Source::new("lints.yaml", FIXTURE);
    snap!("lint_warnings", source.render(&p.warnings, false));
}

#[test]
fn allow_silences_a_lint_for_one_rule_only() {
    // `allowed` repeats `cents` (so it is shadowed, and finer than a cent) but allows both.
    let got = warnings(FIXTURE);
    assert!(!got.iter().any(|(_, m)| m.contains("`allowed`")));
    let without_allow = FIXTURE.replace("    allow: [money-precision, shadowed-rule]\n", "");
    let got = warnings(&without_allow);
    assert!(got
        .iter()
        .any(|(c, m)| c == "money-precision" && m.contains("`allowed`")));
    assert!(got
        .iter()
        .any(|(c, m)| c == "shadowed-rule" && m.contains("`allowed`")));
}

#[test]
fn contradictions_are_found_only_when_real() {
    let rule = |cond: &str| {
        FIXTURE
            .split("selection_rules:")
            .next()
            .unwrap()
            .to_string()
            + &format!("selection_rules:\n  - name: r\n    condition: \"{cond}\"\n    backend: a\n")
    };
    let unreachable = |cond: &str| {
        warnings(&rule(cond))
            .iter()
            .any(|(c, _)| c == "unreachable-rule")
    };
    for never in [
        "false",
        "priority == 'quality' AND priority != 'quality'",
        "aspect_ratio in ['9:16'] AND aspect_ratio == '16:9'",
        "duration >= 8 AND duration < 8",
        "8 < duration AND duration <= 8",
        "hour == 3 AND hour == 4",
    ] {
        assert!(unreachable(never), "{never}");
    }
    for possible in [
        "priority == 'quality' OR priority == 'speed'",
        "duration >= 8 AND duration <= 8",
        "duration > 8 AND hour < 5",
        "priority != 'quality' AND priority != 'speed'",
    ] {
        assert!(!unreachable(possible), "{possible}");
    }
}

#[test]
fn shipped_policies_are_lint_free() {
    assert!(common::videogen().warnings.is_empty());
    assert!(Policy::from_yaml("demo.yaml", genroute::DEMO_POLICY)
        .unwrap()
        .warnings
        .is_empty());
}

#[test]
fn shadowed_rule_names_the_earliest_rule_that_pre_empts_it() {
    // Rules are filed under their rarest conjunct; the answer must not depend on it.
    let head = FIXTURE.split("selection_rules:").next().unwrap();
    let rules = [
        ("ab", "priority == 'speed' AND duration > 4", "a"),
        ("a_only", "priority == 'speed'", "a"),
        (
            "abc",
            "duration > 4 AND hour == 3 AND priority == 'speed'",
            "a",
        ),
        ("elsewhere", "duration > 4", "c"),
        ("c_any", "true", "c"),
        ("c_later", "hour == 3 AND duration > 4", "c"),
    ];
    let yaml = rules
        .iter()
        .fold(format!("{head}selection_rules:\n"), |y, (n, c, b)| {
            y + &format!("  - name: {n}\n    condition: \"{c}\"\n    backend: {b}\n")
        });
    let shadowed: Vec<String> = warnings(&yaml)
        .into_iter()
        .filter(|(c, _)| c == "shadowed-rule")
        .map(|(_, m)| m)
        .collect();
    assert_eq!(shadowed.len(), 2, "{shadowed:?}");
    assert!(
        shadowed[0].contains("rule `abc` never decides")
            && shadowed[0].contains("earlier rule `ab`"),
        "{shadowed:?}"
    );
    assert!(
        shadowed[1].contains("rule `c_later` never decides")
            && shadowed[1].contains("earlier rule `elsewhere`"),
        "{shadowed:?}"
    );
}
