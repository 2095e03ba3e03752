//! One-line helpers shared by the integration tests.
#![allow(dead_code)]

use genroute::{Explanation, Policy, Request, Source, State};

/// A fixed instant: 10 November 2026, 12:00 UTC (month progress 0.316666).
pub const NOW: &str = "2026-11-10T12:00:00Z";

/// Fake API keys for the shipped policy's backends, so that none is ineligible for a
/// missing key.
pub fn fake_keys(name: &str) -> Option<String> {
    matches!(name, "VERTEX_ACCESS_TOKEN" | "PIXVERSE_API_KEY").then(|| format!("test-{name}"))
}

/// The shipped `policies/videogen.yaml`, with fake keys set.
pub fn videogen() -> Policy {
    let source = Source::new("policies/videogen.yaml", genroute::EXAMPLE_POLICY);
    Policy::load(source, &genroute::LoadOptions { env: &fake_keys }).expect("videogen.yaml loads")
}

/// Loads YAML that must be valid.
pub fn policy(yaml: &str) -> Policy {
    Policy::from_yaml("test.yaml", yaml).unwrap_or_else(|e| panic!("policy should load:\n{e}"))
}

/// Loads YAML that must be invalid; returns the rendered diagnostics.
pub fn diagnostics(name: &str, yaml: &str) -> String {
    match Policy::load(Source::new(name, yaml), &genroute::LoadOptions::default()) {
        Ok(_) => panic!("policy should not load"),
        Err(e) => e.to_string(),
    }
}

/// A request from JSON.
pub fn request(p: &Policy, json: &str) -> Request {
    Request::from_json(p, json).unwrap_or_else(|e| panic!("request should parse: {e}"))
}

/// A state at [`NOW`] with the given spend.
pub fn state(p: &Policy, spend: &str) -> State {
    State::new(p, NOW.parse().unwrap()).with_spend(spend.parse().unwrap())
}

/// The chosen backend's name for a request (JSON) at a spend.
pub fn chosen(p: &Policy, json: &str, spend: &str) -> Option<String> {
    explain(p, json, spend).backend
}

/// The explanation for a request (JSON) at a spend.
pub fn explain(p: &Policy, json: &str, spend: &str) -> Explanation {
    p.explain(&request(p, json), &state(p, spend))
}

/// Snapshot assertions stored in the top-level `snapshots/` folder.
#[macro_export]
macro_rules! snap {
    ($name:expr, $value:expr) => {
        insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

/// JSON snapshot assertions stored in the top-level `snapshots/` folder.
#[macro_export]
macro_rules! snap_json {
    ($name:expr, $value:expr) => {
        insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_json_snapshot!($name, $value);
        })
    };
}
