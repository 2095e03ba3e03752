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

// The tenants file's schema (`genroute schema --tenants`), held to the same promises.

fn tenants_schema() -> serde_json::Value {
    genroute::tenant::schema::tenants_schema()
}

#[test]
fn committed_tenants_schema_is_the_generated_one() {
    let committed: serde_json::Value =
        serde_json::from_str(include_str!("../schema/tenants.schema.json")).unwrap();
    assert_eq!(
        committed,
        tenants_schema(),
        "run `genroute schema --tenants > schema/tenants.schema.json`"
    );
}

#[test]
fn shipped_tenants_file_validates_and_carries_the_modeline() {
    let text = genroute::tenant::EXAMPLE;
    assert!(text.starts_with("# yaml-language-server: $schema=../schema/tenants.schema.json\n"));
    let validator = jsonschema::validator_for(&tenants_schema()).unwrap();
    let doc: serde_json::Value = serde_yaml::from_str(text).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn tenants_schema_flags_what_the_loader_refuses_and_admits_notes() {
    let validator = jsonschema::validator_for(&tenants_schema()).unwrap();
    let base: serde_json::Value = serde_yaml::from_str(genroute::tenant::EXAMPLE).unwrap();
    let refused = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut doc = base.clone();
        edit(&mut doc);
        let text = serde_yaml::to_string(&doc).unwrap();
        assert!(
            genroute::Tenants::from_yaml("t.yaml", &text).is_err(),
            "the loader refuses it"
        );
        !validator.is_valid(&doc)
    };
    assert!(refused(&|d| d["keys"]["growth-web"]["revokd"] = true.into()));
    assert!(refused(
        &|d| d["keys"]["growth-web"]["scopes"] = serde_json::json!(["fly"])
    ));
    assert!(refused(
        &|d| d["keys"]["growth-web"]["scopes"] = serde_json::json!([])
    ));
    assert!(refused(
        &|d| d["keys"]["growth-web"]["hash"] = "sha256:abc".into()
    ));
    assert!(refused(
        &|d| d["keys"]["growth-web"]["limits"]["jobs_in_flight"] = 0.into()
    ));
    assert!(refused(&|d| d["teams"]["Growth_2"] = serde_json::json!({})));
    assert!(refused(
        &|d| d["teams"]["growth"]["attributes"]["tier"] = serde_json::json!([1])
    ));
    assert!(refused(&|d| {
        d["teams"]["growth"]["budget"]["backends"]["veo"] = serde_json::json!({"montly_usd": 1})
    }));
    let mut note = base;
    note["teams"]["growth"]["x-slack"] = "#growth".into();
    note["x-reviewed"] = "2026-01".into();
    assert!(validator.is_valid(&note));
}
