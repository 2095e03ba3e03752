//! The alert rules and the dashboard only use metrics the server really exports.

use genroute::exec::{Attempt, Generation};
use genroute::server::metrics::Metrics;
use genroute::{BreakerState, Fixed};

fn metric_names(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("videogen_"))
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

fn exported() -> String {
    let m = Metrics::new("videogen").unwrap();
    let attempt = |backend: &str, outcome: &str| Attempt {
        backend: backend.into(),
        model: None,
        outcome: outcome.into(),
        latency_ms: 1200,
        simulated_seconds: None,
        cost_usd: Fixed::from_micros(50_000),
        message: None,
        in_doubt: false,
        check: None,
        kept_video: None,
    };
    let g = Generation {
        request_id: "r".into(),
        backend: Some("pixverse".into()),
        model: None,
        video: Some("sim://x".into()),
        cost_usd: Fixed::from_micros(50_000),
        quality: Some(Fixed::from_micros(850_000)),
        attempts: vec![attempt("veo", "retryable"), attempt("pixverse", "success")],
        error: None,
        dry_run: false,
    };
    m.record(&g, "balanced");
    m.budget(
        Fixed::from_micros(96_000_000),
        Fixed::from_micros(100_000_000),
    );
    m.breaker("veo", BreakerState::Open);
    m.reload(true);
    let text = m.render();
    assert!(
        text.contains("videogen_budget_utilization_percent 96"),
        "{text}"
    );
    assert!(text.contains("videogen_circuit_breaker_state{backend=\"veo\"} 2"));
    assert!(text.contains("videogen_fallback_count{from=\"veo\",to=\"pixverse\"} 1"));
    text
}

#[test]
fn alert_rules_use_exported_metrics() {
    let rules = include_str!("../deploy/prometheus/alerts.yaml");
    let doc: serde_yaml::Value = serde_yaml::from_str(rules).unwrap();
    let alerts: Vec<&str> = doc["groups"][0]["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r["alert"].as_str().unwrap())
        .collect();
    for a in [
        "VideoGenBackendDown",
        "VideoGenBudgetExhausted",
        "VideoGenCircuitBreakerOpen",
    ] {
        assert!(alerts.contains(&a), "{a}");
    }
    let text = exported();
    for name in metric_names(rules) {
        assert!(
            text.contains(&name),
            "alerts use `{name}`, which /metrics does not export"
        );
    }
}

#[test]
fn dashboard_uses_exported_metrics() {
    let dash = include_str!("../deploy/grafana/genroute-dashboard.json");
    let v: serde_json::Value = serde_json::from_str(dash).unwrap();
    assert!(v["panels"].as_array().unwrap().len() >= 5);
    let text = exported();
    let names = metric_names(dash);
    assert!(names.len() >= 8, "{names:?}");
    for name in names {
        assert!(
            text.contains(&name),
            "the dashboard uses `{name}`, which /metrics does not export"
        );
    }
}
