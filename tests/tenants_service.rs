//! Many teams on one genroute, as real `genroute serve` processes with a tenants file: API
//! keys (401, 403, revoked, the admin scope), per-key limits shared by replicas on a real
//! Redis (429 with `Retry-After`), budgets at every level raced by 8 processes on one SQLite
//! ledger and by 2 replicas on a real Redis, a hot reload of the tenants file under load,
//! and secrets that appear nowhere. Loopback only, bounded load.

#[path = "common/redis_server.rs"]
mod redis_server;
#[path = "common/scratch.rs"]
mod scratch;
#[path = "common/serve.rs"]
mod serve;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use genroute::store::{Month, Store};
use genroute::tenant::token::Token;
use genroute::Fixed;
use serde_json::{json, Value};

fn usd(s: &str) -> Fixed {
    s.parse().unwrap()
}

/// One simulated backend at `cost`, taking about `seconds` per video.
fn policy(cost: &str, seconds: &str) -> String {
    format!(
        r#"
budget: {{monthly_budget_usd: 100, cost_threshold_usd: 90}}
tenant_fields:
  tier: {{type: enum, values: [free, pro], default: free}}
backends:
  veo:
    priority: 1
    type: simulated
    cost: {{per_video_usd: {cost}}}
    quality: {{score: 0.9}}
    performance: {{avg_generation_time_seconds: {seconds}, max_generation_time_seconds: 60}}
    simulation: {{failure_rate: 0, latency_stddev_seconds: 0, time_scale: 1}}
    circuit_breaker: {{failure_threshold: 1000}}
    selection_criteria: {{budget_available: true}}
"#
    )
}

/// Tokens by key id, and the tenants file text for them.
struct Keys(HashMap<String, Token>);

impl Keys {
    fn new(ids: &[&str]) -> Keys {
        Keys(
            ids.iter()
                .map(|id| (id.to_string(), Token::generate(id)))
                .collect(),
        )
    }
    fn token(&self, id: &str) -> &str {
        self.0[id].expose()
    }
    /// `template` with `HASH(id)` replaced by each key's hash.
    fn file(&self, template: &str) -> String {
        self.0.iter().fold(template.to_string(), |t, (id, tok)| {
            t.replace(&format!("HASH({id})"), &tok.hash())
        })
    }
    /// Every secret (the part after `gr_<id>_`), for the never-appears checks.
    fn secrets(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(id, t)| t.expose()[format!("gr_{id}_").len()..].to_string())
            .collect()
    }
}

struct Setup {
    dir: PathBuf,
    policy: PathBuf,
    tenants: PathBuf,
}

fn setup(policy_text: &str, tenants_text: &str) -> Setup {
    let dir = scratch::scratch();
    let policy = dir.join("policy.yaml");
    let tenants = dir.join("tenants.yaml");
    std::fs::write(&policy, policy_text).unwrap();
    std::fs::write(&tenants, tenants_text).unwrap();
    Setup {
        dir,
        policy,
        tenants,
    }
}

fn replica(s: &Setup, store: &str, name: &str, extra: &[&str]) -> serve::Replica {
    let mut args = vec!["--tenants", s.tenants.to_str().unwrap()];
    args.extend_from_slice(extra);
    serve::replica(&s.policy, store, &s.dir.join(name), &args)
}

/// A call with an optional bearer token: status, headers, JSON body (`null` if not JSON).
async fn call(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut rb = match method {
        "post" => client.post(url),
        "delete" => client.delete(url),
        _ => client.get(url),
    };
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.timeout(Duration::from_secs(30)).send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

const AUTH_TENANTS: &str = r#"
orgs:
  acme: {budget: {monthly_usd: 50}}
teams:
  growth: {org: acme, budget: {monthly_usd: 10}, attributes: {tier: pro}}
  research: {org: acme}
keys:
  web: {team: growth, hash: "HASH(web)", scopes: [generate, decide, jobs:read]}
  reader: {team: research, hash: "HASH(reader)", scopes: [jobs:read]}
  ops: {team: research, hash: "HASH(ops)", scopes: [admin]}
  watcher: {team: research, hash: "HASH(watcher)", scopes: [metrics]}
  gone: {team: growth, hash: "HASH(gone)", scopes: [generate], revoked: true}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_scopes_revocation_and_team_visibility_are_enforced() {
    let keys = Keys::new(&["web", "reader", "ops", "watcher", "gone"]);
    let s = setup(&policy("0.05", "0.01"), &keys.file(AUTH_TENANTS));
    let r = replica(
        &s,
        &format!("sqlite:{}", s.dir.join("ledger.sqlite3").display()),
        "a",
        &[],
    );
    let c = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", r.url);
    let decide = Some(json!({"prompt": "a fox"}));
    // The probes need no key.
    assert_eq!(call(&c, "get", &url("/healthz"), None, None).await.0, 200);
    assert_ne!(call(&c, "get", &url("/readyz"), None, None).await.0, 401);
    // 401: none, malformed, unknown, a wrong secret (told apart from nothing), revoked.
    let wrong = format!("gr_web_{}", "A".repeat(43));
    for (token, code) in [
        (None, "missing_key"),
        (Some("not-a-key"), "malformed_key"),
        (Some("gr_nobody_abcdef"), "unknown_key"),
        (Some(wrong.as_str()), "unknown_key"),
        (Some(keys.token("gone")), "revoked_key"),
    ] {
        let (status, h, v) = call(&c, "post", &url("/v1/decide"), token, decide.clone()).await;
        assert_eq!(status, 401, "{token:?}: {v}");
        assert_eq!(h["x-genroute-error"], code);
        assert!(h["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
    }
    let (_, _, unknown) = call(
        &c,
        "post",
        &url("/v1/decide"),
        Some("gr_nobody_x"),
        decide.clone(),
    )
    .await;
    let (_, _, wrong_secret) =
        call(&c, "post", &url("/v1/decide"), Some(&wrong), decide.clone()).await;
    assert_eq!(
        unknown, wrong_secret,
        "an unknown id and a wrong secret read the same"
    );
    // 403: a key without the scope, named with what it has.
    let (status, _, v) = call(
        &c,
        "post",
        &url("/v1/generate"),
        Some(keys.token("reader")),
        decide.clone(),
    )
    .await;
    assert_eq!(status, 403);
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("`reader` lacks the scope `generate`") && msg.contains("`jobs:read`"),
        "{msg}"
    );
    assert_eq!(
        call(&c, "get", &url("/metrics"), Some(keys.token("web")), None)
            .await
            .0,
        403
    );
    assert_eq!(
        call(
            &c,
            "post",
            &url("/v1/admin/reload"),
            Some(keys.token("web")),
            None
        )
        .await
        .0,
        403
    );
    // The right scopes pass; admin implies all; the admin token still opens admin endpoints.
    let (status, _, job) = call(
        &c,
        "post",
        &url("/v1/generate"),
        Some(keys.token("web")),
        decide.clone(),
    )
    .await;
    assert_eq!(status, 200, "{job}");
    let id = job["request_id"].as_str().unwrap().to_string();
    assert_eq!(
        call(
            &c,
            "post",
            &url("/v1/admin/reload"),
            Some(keys.token("ops")),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        call(&c, "post", &url("/v1/admin/reload"), Some("t0ken"), None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(
            &c,
            "post",
            &url("/v1/decide"),
            Some("t0ken"),
            decide.clone()
        )
        .await
        .0,
        401
    );
    // Jobs are their team's: another team's reads as absent, an admin sees all.
    let job_url = url(&format!("/v1/jobs/{id}"));
    assert_eq!(
        call(&c, "get", &job_url, Some(keys.token("web")), None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(&c, "get", &job_url, Some(keys.token("reader")), None)
            .await
            .0,
        404
    );
    assert_eq!(
        call(
            &c,
            "get",
            &url(&format!("/v1/videos/{id}")),
            Some(keys.token("reader")),
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(
        call(&c, "get", &job_url, Some(keys.token("ops")), None)
            .await
            .0,
        200
    );
    let (_, _, list) = call(
        &c,
        "get",
        &url("/v1/jobs"),
        Some(keys.token("reader")),
        None,
    )
    .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "{list}");
    let (_, _, list) = call(&c, "get", &url("/v1/jobs"), Some(keys.token("web")), None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    // Budgets: a key sees its own team's levels; another team's needs admin.
    let (status, _, b) = call(&c, "get", &url("/v1/budget"), Some(keys.token("web")), None).await;
    assert_eq!(status, 200);
    assert_eq!(b["team"], "growth");
    let levels = b["levels"].as_array().unwrap();
    let team = levels.iter().find(|l| l["level"] == "team:growth").unwrap();
    assert_eq!(
        (team["spent_usd"].clone(), team["remaining_usd"].clone()),
        (json!(0.05), json!(9.95))
    );
    assert_eq!(
        call(
            &c,
            "get",
            &url("/v1/budget?team=research"),
            Some(keys.token("web")),
            None
        )
        .await
        .0,
        403
    );
    let (status, _, b) = call(
        &c,
        "get",
        &url("/v1/budget?team=growth"),
        Some(keys.token("ops")),
        None,
    )
    .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(
        b["levels"].as_array().unwrap().len(),
        2,
        "the org's and the team's: {b}"
    );
    // With both, the key must be of that team.
    let both = |q: &str| url(&format!("/v1/budget?{q}"));
    let ops = Some(keys.token("ops"));
    assert_eq!(
        call(&c, "get", &both("team=growth&key=web"), ops, None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(&c, "get", &both("team=research&key=web"), ops, None)
            .await
            .0,
        404
    );
    // Metrics: by team, never by key.
    let text = c
        .get(url("/metrics"))
        .bearer_auth(keys.token("watcher"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"videogen_team_requests_total{outcome="success",team="growth"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"videogen_auth_refused_total{reason="missing_scope"}"#),
        "{text}"
    );
    assert!(!text.contains("web"), "no key id in the metrics");
    // The ledger entry names the key and its team.
    let store = genroute::store::sqlite::SqliteStore::open(
        &s.dir.join("ledger.sqlite3"),
        Duration::from_secs(5),
    )
    .unwrap();
    let entries = store.entries(None, chrono::Utc::now()).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].key.as_deref(), entries[0].team.as_deref()),
        (Some("web"), Some("growth"))
    );
}

const LIMITS_TENANTS: &str = r#"
teams:
  growth: {}
keys:
  web: {team: growth, hash: "HASH(web)", scopes: [generate, decide, jobs:read], limits: {requests_per_minute: 6}}
  batch: {team: growth, hash: "HASH(batch)", scopes: [generate, jobs:read], limits: {jobs_in_flight: 2}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_are_shared_by_replicas_on_redis() {
    let redis = redis_server::start();
    let keys = Keys::new(&["web", "batch"]);
    let s = setup(&policy("0.05", "3"), &keys.file(LIMITS_TENANTS));
    let a = replica(&s, &redis.url(), "a", &[]);
    let b = replica(&s, &redis.url(), "b", &[]);
    let c = reqwest::Client::new();
    // Six requests a minute, counted across both replicas.
    for i in 0..6 {
        let base = if i % 2 == 0 { &a.url } else { &b.url };
        let (status, _, v) = call(
            &c,
            "post",
            &format!("{base}/v1/decide"),
            Some(keys.token("web")),
            Some(json!({"prompt": "x"})),
        )
        .await;
        assert_eq!(status, 200, "request {i}: {v}");
    }
    for base in [&a.url, &b.url] {
        let (status, h, v) = call(
            &c,
            "post",
            &format!("{base}/v1/decide"),
            Some(keys.token("web")),
            Some(json!({"prompt": "x"})),
        )
        .await;
        assert_eq!(status, 429, "{v}");
        let wait: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "Retry-After {wait}");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("6 requests per minute"));
    }
    // Two jobs in flight; a third waits for one to end.
    let job = json!({"prompt": "a slow one"});
    for base in [&a.url, &b.url] {
        let (status, _, v) = call(
            &c,
            "post",
            &format!("{base}/v1/jobs"),
            Some(keys.token("batch")),
            Some(job.clone()),
        )
        .await;
        assert_eq!(status, 202, "{v}");
    }
    let (status, h, v) = call(
        &c,
        "post",
        &format!("{}/v1/jobs", a.url),
        Some(keys.token("batch")),
        Some(job.clone()),
    )
    .await;
    assert_eq!(status, 429, "{v}");
    assert!(h.contains_key("retry-after"));
    let started = std::time::Instant::now();
    loop {
        let (status, _, v) = call(
            &c,
            "post",
            &format!("{}/v1/jobs", b.url),
            Some(keys.token("batch")),
            Some(job.clone()),
        )
        .await;
        if status == 202 {
            break;
        }
        assert_eq!(status, 429, "{v}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "a place never freed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const RACE_TENANTS: &str = r#"
orgs:
  acme: {budget: {monthly_usd: 1.80}}
teams:
  growth: {org: acme, budget: {monthly_usd: 1.00}}
  research: {org: acme, budget: {monthly_usd: 5.00}}
keys:
  web: {team: growth, hash: "HASH(web)", scopes: [generate], budget: {monthly_usd: 0.60}}
  app: {team: growth, hash: "HASH(app)", scopes: [generate]}
  lab: {team: research, hash: "HASH(lab)", scopes: [generate]}
"#;

/// Clients per key race over `urls` until their key is refused for money (402); returns
/// what each key's clients were told they spent.
async fn race(urls: &[String], keys: &Keys) -> HashMap<String, Fixed> {
    let c = reqwest::Client::new();
    let mut tasks = Vec::new();
    for key in ["web", "app", "lab"] {
        for n in 0..4 {
            let (c, urls, token) = (c.clone(), urls.to_vec(), keys.token(key).to_string());
            tasks.push(tokio::spawn(async move {
                let mut told = Fixed::ZERO;
                for i in 0..400 {
                    let url = format!("{}/v1/generate", urls[(n + i) % urls.len()]);
                    let (status, _, v) = call(
                        &c,
                        "post",
                        &url,
                        Some(&token),
                        Some(json!({"prompt": "a race"})),
                    )
                    .await;
                    match status {
                        200 => {
                            told = told
                                .checked_add(v["cost_usd"].to_string().parse().unwrap())
                                .unwrap()
                        }
                        402 => return (key, told),
                        // Anything else (a store busy past its deadline) spent nothing; go on.
                        _ => {}
                    }
                }
                panic!("key {key}'s client never met its budget");
            }));
        }
    }
    let mut told: HashMap<String, Fixed> = HashMap::new();
    for t in tasks {
        let (key, sum) = t.await.unwrap();
        let e = told.entry(key.to_string()).or_insert(Fixed::ZERO);
        *e = e.checked_add(sum).unwrap();
    }
    told
}

/// No level passed, every level's total is what its clients were told, the org is full.
async fn assert_levels(store: &dyn Store, told: &HashMap<String, Fixed>) {
    let now = chrono::Utc::now();
    let month = Month::of(now);
    let keys: Vec<String> = ["key:web", "team:growth", "org:acme", "team:research"]
        .iter()
        .map(|l| format!("{l}@{month}"))
        .collect();
    let t = store.level_totals(&keys, now).await.unwrap();
    for l in &t {
        assert_eq!(
            (l.reserved, l.in_doubt),
            (Fixed::ZERO, Fixed::ZERO),
            "{t:?}"
        );
    }
    let sum = |ks: &[&str]| {
        ks.iter()
            .fold(Fixed::ZERO, |a, k| a.checked_add(told[*k]).unwrap())
    };
    assert_eq!(t[0].committed, told["web"]);
    assert_eq!(t[1].committed, sum(&["web", "app"]));
    assert_eq!(t[2].committed, sum(&["web", "app", "lab"]));
    assert_eq!(t[3].committed, told["lab"]);
    assert!(
        t[0].committed <= usd("0.60"),
        "key web passed its budget: {t:?}"
    );
    assert!(
        t[1].committed <= usd("1.00"),
        "team growth passed its budget: {t:?}"
    );
    assert_eq!(
        t[2].committed,
        usd("1.80"),
        "org acme is filled exactly: {t:?}"
    );
    assert_eq!(
        store.totals(month, now).await.unwrap().committed,
        usd("1.80")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_processes_on_one_sqlite_ledger_hold_every_level() {
    let keys = Keys::new(&["web", "app", "lab"]);
    let s = setup(&policy("0.01", "0.02"), &keys.file(RACE_TENANTS));
    let path = s.dir.join("ledger.sqlite3");
    let store = format!("sqlite:{}", path.display());
    let replicas: Vec<_> = (0..8)
        .map(|i| replica(&s, &store, &format!("r{i}"), &[]))
        .collect();
    let urls: Vec<String> = replicas.iter().map(|r| r.url.clone()).collect();
    let told = race(&urls, &keys).await;
    drop(replicas);
    let sqlite = genroute::store::sqlite::SqliteStore::open(&path, Duration::from_secs(5)).unwrap();
    assert_levels(&sqlite, &told).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_redis_hold_every_level() {
    let redis = redis_server::start();
    let keys = Keys::new(&["web", "app", "lab"]);
    let s = setup(&policy("0.01", "0.02"), &keys.file(RACE_TENANTS));
    let a = replica(&s, &redis.url(), "a", &[]);
    let b = replica(&s, &redis.url(), "b", &[]);
    let told = race(&[a.url.clone(), b.url.clone()], &keys).await;
    let store = genroute::store::redis::RedisStore::open(&redis.url(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_levels(&store, &told).await;
}

const RELOAD_V1: &str = r#"
teams:
  growth: {budget: {monthly_usd: 10}}
  research: {budget: {monthly_usd: 10}}
keys:
  web: {team: growth, hash: "HASH(web)", scopes: [generate, decide]}
  old: {team: growth, hash: "HASH(old)", scopes: [generate, decide]}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenants_reload_under_load_keeps_requests_in_flight_on_their_keys() {
    let keys = Keys::new(&["web", "old"]);
    let s = setup(&policy("0.05", "2"), &keys.file(RELOAD_V1));
    let path = s.dir.join("ledger.sqlite3");
    let r = replica(&s, &format!("sqlite:{}", path.display()), "a", &[]);
    let c = reqwest::Client::new();
    let generate = format!("{}/v1/generate", r.url);
    // Ten slow generations in flight (five per key), and decisions going on beside them.
    let mut flying = Vec::new();
    for i in 0..10 {
        let (c, url) = (c.clone(), generate.clone());
        let token = keys
            .token(if i % 2 == 0 { "web" } else { "old" })
            .to_string();
        flying.push(tokio::spawn(async move {
            call(
                &c,
                "post",
                &url,
                Some(&token),
                Some(json!({"prompt": "in flight"})),
            )
            .await
        }));
    }
    let decide = {
        let (c, url, token) = (
            c.clone(),
            format!("{}/v1/decide", r.url),
            keys.token("web").to_string(),
        );
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..40 {
                statuses.push(
                    call(&c, "post", &url, Some(&token), Some(json!({"prompt": "x"})))
                        .await
                        .0,
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            statuses
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The new file moves `web` to research and revokes `old`.
    let v2 = RELOAD_V1
        .replace("web: {team: growth", "web: {team: research")
        .replace(
            r#"old: {team: growth, hash: "HASH(old)", scopes: [generate, decide]}"#,
            r#"old: {team: growth, hash: "HASH(old)", scopes: [generate, decide], revoked: true}"#,
        );
    std::fs::write(&s.tenants, keys.file(&v2)).unwrap();
    let started = std::time::Instant::now();
    while call(
        &c,
        "post",
        &format!("{}/v1/decide", r.url),
        Some(keys.token("old")),
        Some(json!({"prompt": "x"})),
    )
    .await
    .0 != 401
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the tenants file was never reloaded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for f in flying {
        let (status, _, v) = f.await.unwrap();
        assert_eq!(
            status, 200,
            "a request in flight finishes on the key it started with: {v}"
        );
    }
    assert!(
        decide.await.unwrap().iter().all(|s| *s == 200),
        "decisions never failed across the reload"
    );
    let (status, _, v) = call(
        &c,
        "post",
        &generate,
        Some(keys.token("web")),
        Some(json!({"prompt": "after"})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let store = genroute::store::sqlite::SqliteStore::open(&path, Duration::from_secs(5)).unwrap();
    let entries = store.entries(None, chrono::Utc::now()).await.unwrap();
    assert_eq!(entries.len(), 11);
    let by = |key: &str, team: &str| {
        entries
            .iter()
            .filter(|e| e.key.as_deref() == Some(key) && e.team.as_deref() == Some(team))
            .count()
    };
    assert_eq!(
        (
            by("web", "growth"),
            by("old", "growth"),
            by("web", "research")
        ),
        (5, 5, 1)
    );
    let month = Month::of(chrono::Utc::now());
    let t = store
        .level_totals(
            &[
                format!("team:growth@{month}"),
                format!("team:research@{month}"),
            ],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!((t[0].committed, t[1].committed), (usd("0.50"), usd("0.05")));
}

/// Every byte an OTLP collector is sent.
type Bodies = std::sync::Arc<std::sync::Mutex<Vec<u8>>>;

async fn collector() -> (String, Bodies) {
    let bodies: Bodies = Default::default();
    let app =
        axum::Router::new()
            .route(
                "/v1/traces",
                axum::routing::post(
                    |axum::extract::State(b): axum::extract::State<Bodies>,
                     body: axum::body::Bytes| async move {
                        b.lock().unwrap().extend_from_slice(&body);
                        ""
                    },
                ),
            )
            .with_state(bodies.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, bodies)
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_appear_in_no_log_trace_error_answer_or_ledger() {
    let keys = Keys::new(&["web", "reader", "ops", "watcher", "gone"]);
    let s = setup(&policy("0.05", "0.01"), &keys.file(AUTH_TENANTS));
    let (otlp, bodies) = collector().await;
    let log = s.dir.join("serve.log");
    let ledger = s.dir.join("ledger.sqlite3");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_genroute"))
        .args([
            "serve",
            "--policy",
            s.policy.to_str().unwrap(),
            "--tenants",
            s.tenants.to_str().unwrap(),
        ])
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--store",
            &format!("sqlite:{}", ledger.display()),
        ])
        .arg("--data-dir")
        .arg(s.dir.join("data"))
        .env("RUST_LOG", "trace")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp)
        .stdout(std::fs::File::create(s.dir.join("serve.out")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(20));
    }
    let c = reqwest::Client::new();
    let mut answers: Vec<u8> = Vec::new();
    let wrong_secret = format!("gr_web_{}", keys.secrets()[0]);
    let calls: Vec<(&str, &str, Option<&str>)> = vec![
        ("post", "/v1/generate", Some(keys.token("web"))),
        ("post", "/v1/jobs", Some(keys.token("web"))),
        ("post", "/v1/decide", Some(keys.token("web"))),
        ("post", "/v1/decide", Some(&wrong_secret)),
        ("post", "/v1/decide", Some(keys.token("gone"))),
        ("post", "/v1/generate", Some(keys.token("reader"))),
        ("get", "/v1/jobs", Some(keys.token("web"))),
        ("get", "/v1/budget", Some(keys.token("web"))),
        ("get", "/metrics", Some(keys.token("watcher"))),
        ("post", "/v1/admin/reload", Some(keys.token("ops"))),
    ];
    for (method, path, token) in calls {
        let (status, headers, v) = call(
            &c,
            method,
            &format!("{base}{path}"),
            token,
            Some(json!({"prompt": "p"})),
        )
        .await;
        answers.extend(format!("{status} {headers:?} {v}").as_bytes());
    }
    let metrics = c
        .get(format!("{base}/metrics"))
        .bearer_auth(keys.token("watcher"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    answers.extend(metrics.as_bytes());
    // A graceful stop flushes the trace exporter.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
    let history = std::process::Command::new(env!("CARGO_BIN_EXE_genroute"))
        .args([
            "budget",
            "history",
            "--format",
            "json",
            "--store",
            &format!("sqlite:{}", ledger.display()),
        ])
        .output()
        .unwrap();
    assert!(history.status.success());
    assert!(
        contains(&history.stdout, "\"team\": \"growth\""),
        "the ledger names the team"
    );
    let log_bytes = std::fs::read(&log).unwrap();
    assert!(
        contains(&log_bytes, "TRACE") || contains(&log_bytes, "DEBUG"),
        "the log is verbose"
    );
    let traces = bodies.lock().unwrap().clone();
    assert!(!traces.is_empty(), "spans were exported");
    let mut places: Vec<(String, Vec<u8>)> = vec![
        ("answers".into(), answers),
        ("traces".into(), traces),
        ("budget history".into(), history.stdout),
    ];
    for f in files_under(&s.dir) {
        if f != s.tenants {
            places.push((f.display().to_string(), std::fs::read(&f).unwrap()));
        }
    }
    for secret in keys.secrets() {
        for (place, bytes) in &places {
            assert!(!contains(bytes, &secret), "a key's secret is in {place}");
        }
    }
}
