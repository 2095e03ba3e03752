//! The seed report's own YAML loads unchanged, and routes as its tests expect.

mod common;

const SEED: &str = include_str!("fixtures/seed_blocks.yaml");

#[test]
fn seed_pixverse_block_and_selection_rules_load_verbatim() {
    let p = common::policy(SEED);
    assert_eq!(
        p.rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["quality_priority", "speed_priority", "budget_exhausted"]
    );
    let pix = &p.backends[p.backend_index("pixverse").unwrap() as usize];
    assert_eq!(pix.cost_of(None), "0.05".parse().unwrap());
    assert_eq!(pix.criteria.fallback_failures, 1);
    assert_eq!(pix.criteria.priority_high, Some(false));
}

#[test]
fn seed_blocks_are_byte_for_byte_the_seeds() {
    // When the seed is beside the repository (as in CI), compare the blocks with it.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/seed/VIDEOGEN_BACKEND_OPTIMIZATION.md"
    );
    let Ok(seed) = std::fs::read_to_string(path) else {
        return;
    };
    let block = |start: &str| -> String {
        let from = seed.find(start).unwrap();
        let body = &seed[from..];
        body[..body.find("```").unwrap()].to_string()
    };
    let pixverse = block("pixverse:\n  enabled: true");
    let rules = block("selection_rules:\n");
    let indented: String = pixverse.lines().map(|l| format!("  {l}\n")).collect();
    assert!(
        SEED.contains(&indented),
        "pixverse block differs from the seed"
    );
    assert!(
        SEED.contains(rules.trim_end()),
        "selection_rules block differs from the seed"
    );
}

#[test]
fn seed_scenarios_route_as_its_tests_expect() {
    let p = common::policy(SEED);
    assert_eq!(
        common::chosen(&p, r#"{"priority": "quality"}"#, "0").as_deref(),
        Some("veo")
    );
    assert_eq!(
        common::chosen(&p, r#"{"priority": "speed"}"#, "0").as_deref(),
        Some("pixverse")
    );
    let e = common::explain(
        &p,
        r#"{"priority": "balanced", "quality_threshold": 0.70}"#,
        "99.98",
    );
    assert_eq!(e.backend.as_deref(), Some("cogvideox"));
    assert_eq!(e.cost_usd, Some("0.02".parse().unwrap()));
}
