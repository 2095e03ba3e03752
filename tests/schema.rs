//! The JSON Schema: generated from the loader's own types, committed for editors, and true
//! to what the loader accepts.

fn schema() -> serde_json::Value {
    genroute::policy::schema::policy_schema()
}

#[test]
fn committed_schema_is_the_generated_one() {
    let committed: serde_json::Value =
        serde_json::from_str(include_str!("../schema/policy.schema.json")).unwrap();
    assert_eq!(
        committed,
        schema(),
        "run `genroute schema > schema/policy.schema.json`"
    );
}

#[test]
fn shipped_policies_validate_and_carry_the_modeline() {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    for (name, text) in [
        ("videogen", genroute::EXAMPLE_POLICY),
        ("demo", genroute::DEMO_POLICY),
    ] {
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schema/policy.schema.json\n"),
            "{name}"
        );
        let doc: serde_json::Value = serde_yaml::from_str(text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
}

#[test]
fn schema_flags_what_the_loader_refuses_and_admits_notes() {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    let base: serde_json::Value = serde_yaml::from_str(genroute::DEMO_POLICY).unwrap();
    let mut typo = base.clone();
    typo["backends"]["veo"]["enabeld"] = serde_json::json!(false);
    assert!(!validator.is_valid(&typo));
    let mut note = base.clone();
    note["backends"]["veo"]["x-owner"] = serde_json::json!("video team");
    assert!(validator.is_valid(&note));
    let mut bad_cost = base;
    bad_cost["backends"]["pixverse"]["cost"] = serde_json::json!({"per_vidoe_usd": 0.05});
    assert!(!validator.is_valid(&bad_cost));
}
