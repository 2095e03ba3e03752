//! Budgets at every level, in process: a tenant's organisation, team and key, the policy's own
//! daily budget and per-backend caps. Routing reads them (`tenant.*`, `budget.team.*`),
//! explain names the level that refuses, and the router's reservations hold every level to
//! the cent on every store (memory, SQLite, a real Redis), also when requests race.

#[path = "common/redis_server.rs"]
mod redis_server;
#[path = "common/scratch.rs"]
mod scratch;

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use genroute::exec::{DirSink, ManualClock, Router};
use genroute::store::memory::MemoryStore;
use genroute::store::redis::RedisStore;
use genroute::store::sqlite::SqliteStore;
use genroute::store::{EntryState, Month, Store};
use genroute::{Fixed, Policy, Request, State, Tenancy, Tenants};

const POLICY: &str = r#"
budget: {monthly_budget_usd: 1000, cost_threshold_usd: 900}
tenant_fields:
  tier: {type: enum, values: [free, pro], default: free}
backends:
  veo:
    priority: 1
    type: simulated
    cost: {per_video_usd: 0.07}
    quality: {score: 0.9}
    performance: {avg_generation_time_seconds: 1, max_generation_time_seconds: 60}
    simulation: {failure_rate: 0, time_scale: 0}
    selection_criteria: {budget_available: true}
  cheap:
    priority: 2
    type: simulated
    cost: {per_video_usd: 0.01}
    quality: {score: 0.9}
    performance: {avg_generation_time_seconds: 1, max_generation_time_seconds: 60}
    simulation: {failure_rate: 0, time_scale: 0}
    selection_criteria: {budget_available: true}
selection_rules:
  - name: near_the_team_cap
    condition: "budget.team.remaining < 1.00"
    backend: cheap
  - name: free_tier
    condition: "tenant.tier == 'free' AND tenant.team == 'research'"
    backend: cheap
"#;

const TENANTS: &str = r#"
orgs:
  acme: {budget: {monthly_usd: 500}}
teams:
  growth:
    org: acme
    budget: {monthly_usd: 50.00}
    attributes: {tier: pro}
  research:
    org: acme
    budget: {monthly_usd: 7.00}
keys:
  web:
    team: growth
    hash: "HASH_WEB"
    scopes: [generate]
  lab:
    team: research
    hash: "HASH_LAB"
    scopes: [generate]
    budget: {daily_usd: 100}
"#;

fn usd(s: &str) -> Fixed {
    s.parse().unwrap()
}

fn tenants() -> Tenants {
    let text = TENANTS
        .replace("HASH_WEB", &genroute::tenant::token::hash("gr_web_x"))
        .replace("HASH_LAB", &genroute::tenant::token::hash("gr_lab_x"));
    Tenants::from_yaml("tenants.yaml", &text).unwrap()
}

fn policy(yaml: &str) -> Policy {
    Policy::from_yaml("levels.yaml", yaml).unwrap()
}

fn tenancy(key: &str) -> Arc<Tenancy> {
    Arc::new(tenants().tenancy_of(key).unwrap())
}

fn request_of(p: &Policy, key: Option<&str>) -> Request {
    let mut r = Request::with_defaults(p, "a lantern festival");
    if let Some(k) = key {
        r.set_tenancy(p, tenancy(k)).unwrap();
    }
    r
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

/// A router over `store` on `yaml`, with a clock fixed at noon on 2026-12-01.
fn router(yaml: &str, store: Arc<dyn Store>) -> Router {
    let p = Arc::new(policy(yaml));
    Router::new(
        p,
        store,
        &|_| None,
        Arc::new(ManualClock::new(now())),
        Arc::new(DirSink(scratch::scratch())),
    )
}

#[test]
fn conditions_read_the_tenant_and_its_budgets() {
    let p = policy(POLICY);
    // research is on the free tier (its default), growth on pro.
    let research = request_of(&p, Some("lab"));
    let growth = request_of(&p, Some("web"));
    let plain = request_of(&p, None);
    let state = State::new(&p, now());
    let chosen = |r: &Request, s: &State| {
        let d = genroute::decide::decide(&p, r, s);
        let b = d.backend.map(|b| p.backends[b as usize].name.clone());
        (b, d.rule.map(|r| p.rules[r as usize].name.clone()))
    };
    assert_eq!(
        chosen(&research, &state),
        (Some("cheap".into()), Some("free_tier".into()))
    );
    assert_eq!(chosen(&growth, &state), (Some("veo".into()), None));
    // Without a key, `tenant.*` and `budget.team.*` do not match: the explanation says why.
    assert_eq!(chosen(&plain, &state), (Some("veo".into()), None));
    let e = p.explain(&plain, &state);
    let rules = serde_json::to_value(&e).unwrap()["rules"].clone();
    assert!(
        rules[0]["error"]
            .as_str()
            .unwrap()
            .contains("no budget at this level"),
        "{rules}"
    );
    assert!(
        rules[1]["error"]
            .as_str()
            .unwrap()
            .contains("no tenant value"),
        "{rules}"
    );
    // A team near its cap is sent to the cheaper backend.
    let mut near = state.clone();
    near.levels = vec![genroute::levels::LevelFigures {
        kind: genroute::levels::LevelKind::Team,
        label: "team `growth`".into(),
        backend: None,
        daily: false,
        budget: usd("50.00"),
        counted: usd("49.50"),
    }];
    assert_eq!(
        chosen(&growth, &near),
        (Some("cheap".into()), Some("near_the_team_cap".into()))
    );
}

#[test]
fn explain_names_the_level_that_refuses() {
    let p = policy(POLICY);
    let growth = request_of(&p, Some("web"));
    let mut s = State::new(&p, now());
    s.levels = vec![genroute::levels::LevelFigures {
        kind: genroute::levels::LevelKind::Team,
        label: "team `growth`".into(),
        backend: None,
        daily: false,
        budget: usd("50.00"),
        counted: usd("49.995"),
    }];
    let e = p.explain(&growth, &s);
    let v = serde_json::to_value(&e).unwrap();
    let veo = v["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "veo")
        .unwrap()
        .clone();
    assert_eq!(veo["eligible"], false);
    let reason = veo["reasons"][0].as_str().unwrap();
    assert!(
        reason.starts_with("team `growth` has $0.005 left of $50.00; veo costs $0.07"),
        "{reason}"
    );
    // Nothing fits: the server answers 402, as for the monthly budget.
    assert_eq!(
        genroute::server::none_eligible_status(&e),
        axum::http::StatusCode::PAYMENT_REQUIRED
    );
}

async fn fills_exactly(store: Arc<dyn Store>) {
    // One backend, so that every request asks for $0.07 on the research team's $7.00.
    let yaml = POLICY.split("  cheap:").next().unwrap().to_string() + "";
    let r = Arc::new(router(&yaml, store.clone()));
    let p = r.policy().clone();
    let tasks: Vec<_> = (0..110)
        .map(|_| {
            let (r, req) = (r.clone(), request_of(&p, Some("lab")));
            tokio::spawn(async move { r.generate(&req).await.unwrap() })
        })
        .collect();
    let (mut served, mut told) = (0, Fixed::ZERO);
    let mut refusals = Vec::new();
    for t in tasks {
        let g = t.await.unwrap();
        if g.video.is_some() {
            served += 1;
            told = told.checked_add(g.cost_usd).unwrap();
        } else {
            refusals.push(g);
        }
    }
    assert_eq!(served, 100, "100 × $0.07 fill $7.00");
    assert_eq!(told, usd("7.00"));
    let at = now();
    let levels = store
        .level_totals(
            &[
                "team:research@2026-12".to_string(),
                "org:acme@2026-12".to_string(),
                "key:lab@2026-12-01".to_string(),
            ],
            at,
        )
        .await
        .unwrap();
    for l in &levels {
        assert_eq!(
            (l.committed, l.reserved, l.in_doubt),
            (usd("7.00"), Fixed::ZERO, Fixed::ZERO)
        );
    }
    assert_eq!(
        store.totals(Month::of(at), at).await.unwrap().committed,
        usd("7.00")
    );
    // The refused ones name the team (at decision, or at reserve when they raced).
    for g in &refusals {
        let why = format!("{g:?}");
        assert!(
            why.contains("team `research` has $0.00 left of $7.00")
                || why.contains("no backend is eligible"),
            "{why}"
        );
    }
    let entries = store.entries(Some(Month::of(at)), at).await.unwrap();
    let committed: Vec<_> = entries
        .iter()
        .filter(|e| e.state == EntryState::Committed)
        .collect();
    assert_eq!(committed.len(), 100);
    for e in committed {
        assert_eq!(
            (e.key.as_deref(), e.team.as_deref()),
            (Some("lab"), Some("research"))
        );
        assert_eq!(
            e.levels,
            [
                "key:lab@2026-12-01",
                "org:acme@2026-12",
                "team:research@2026-12"
            ]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_at_seven_cents_fill_seven_dollars_in_memory() {
    fills_exactly(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_at_seven_cents_fill_seven_dollars_on_sqlite() {
    let path = scratch::scratch().join("ledger.sqlite3");
    fills_exactly(Arc::new(
        SqliteStore::open(&path, Duration::from_secs(5)).unwrap(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_at_seven_cents_fill_seven_dollars_on_redis() {
    let server = redis_server::start();
    let store = RedisStore::open(&server.url(), Duration::from_secs(5))
        .await
        .unwrap();
    fills_exactly(Arc::new(store)).await;
}

#[tokio::test]
async fn the_policys_caps_send_work_elsewhere_and_say_so() {
    let yaml = POLICY.replace(
        "budget: {monthly_budget_usd: 1000, cost_threshold_usd: 900}",
        "budget:\n  monthly_budget_usd: 1000\n  cost_threshold_usd: 900\n  daily_budget_usd: 0.25\n  backends: {veo: {monthly_usd: 0.21}}",
    );
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let r = router(&yaml, store.clone());
    let p = r.policy().clone();
    let plain = request_of(&p, None);
    let mut served = Vec::new();
    let mut reasons = Vec::new();
    for _ in 0..8 {
        let g = r.generate(&plain).await.unwrap();
        served.push(g.backend.clone().unwrap_or_else(|| "none".into()));
        let (e, _) = r.explain(&plain).await.unwrap();
        let v = serde_json::to_value(&e).unwrap();
        reasons.extend(
            v["backends"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|b| b["reasons"][0].as_str().map(str::to_string)),
        );
    }
    // Three at veo fill its $0.21 cap; then cheap until the day's $0.25: 0.21 + 4 × 0.01.
    assert_eq!(
        served,
        ["veo", "veo", "veo", "cheap", "cheap", "cheap", "cheap", "none"]
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("the cap on `veo` has $0.00 left of $0.21; veo costs $0.07")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r
            .starts_with("the policy's budget (daily) has $0.00 left of $0.25; cheap costs $0.01")),
        "{reasons:?}"
    );
    let t = store
        .level_totals(
            &["backend:veo@2026-12".into(), "all@2026-12-01".into()],
            now(),
        )
        .await
        .unwrap();
    assert_eq!((t[0].committed, t[1].committed), (usd("0.21"), usd("0.25")));
}

#[test]
fn a_tenants_attribute_of_the_wrong_type_is_refused_with_its_name() {
    let p = policy(POLICY);
    let mut t = (*tenancy("web")).clone();
    t.attributes
        .insert("tier".into(), serde_json::json!("platinum"));
    let mut r = Request::with_defaults(&p, "x");
    let e = r.set_tenancy(&p, Arc::new(t)).unwrap_err();
    assert_eq!(e.field, "tenant.tier");
    assert!(e.message.contains("platinum"), "{e}");
}
