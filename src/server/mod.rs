//! `genroute serve`: the HTTP API (axum), hot reload and metrics.
//!
//! The server only translates between HTTP and the library: every decision is made by the
//! [`Router`] of the policy currently loaded. The router sits behind an [`ArcSwap`]: a reload
//! builds a new one and swaps the pointer, so a request in flight finishes on the policy it
//! started with, and no request waits for a reload.
//!
//! Endpoints are documented in `openapi.yaml` at the repository root, and tested against it.

pub mod metrics;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde_json::json;

use crate::adapter::Secret;
use crate::diag::Source;
use crate::exec::{Clock, Generation, Router, VideoSink};
use crate::explain::Explanation;
use crate::ledger::{Month, Store};
use crate::policy::{LoadOptions, Policy};
use crate::request::{Request, MAX_REQUEST_BYTES};
use metrics::Metrics;

/// Environment lookups, shared by reloads.
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// How the server runs.
pub struct Config {
    /// The policy file, watched for changes.
    pub policy_path: PathBuf,
    /// Metric name prefix.
    pub metrics_prefix: String,
    /// Bearer token for the admin endpoints; `None` disables them.
    pub admin_token: Option<String>,
    /// How long decide may reuse the ledger's figures (spend, breakers).
    pub state_ttl: Duration,
    /// Whether traces may carry prompt text.
    pub trace_prompts: bool,
}

/// Shared server state.
pub struct App {
    router: ArcSwap<Router>,
    store: Arc<dyn Store>,
    env: Env,
    clock: Arc<dyn Clock>,
    sink: Arc<dyn VideoSink>,
    metrics: Metrics,
    jobs: Mutex<Jobs>,
    admin_token: Option<Secret>,
    reload_error: Mutex<Option<String>>,
    config: Config,
}

#[derive(Default)]
struct Jobs {
    order: VecDeque<String>,
    by_id: HashMap<String, Job>,
}

#[derive(Clone)]
enum Job {
    Running,
    Done {
        ok: bool,
        status: u16,
        body: serde_json::Value,
    },
}

/// The most jobs remembered; the oldest finished ones are forgotten first.
const MAX_JOBS: usize = 10_000;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The policy file is unreadable or invalid.
    #[error("{0}")]
    Policy(String),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(String),
}

fn load_policy(path: &Path, env: &Env) -> Result<Policy, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let lookup = |k: &str| env(k);
    let policy = Policy::load(
        Source::new(path.display().to_string(), text),
        &LoadOptions { env: &lookup },
    )
    .map_err(|e| e.to_string())?;
    // Before the policy takes traffic (at start and on every reload), not on a request.
    policy.compile_native();
    Ok(policy)
}

impl App {
    /// Loads the policy and builds the first router.
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        env: Env,
        clock: Arc<dyn Clock>,
        sink: Arc<dyn VideoSink>,
    ) -> Result<Arc<App>, StartError> {
        let policy = load_policy(&config.policy_path, &env).map_err(StartError::Policy)?;
        let metrics =
            Metrics::new(&config.metrics_prefix).map_err(|e| StartError::Metrics(e.to_string()))?;
        let router = build_router(policy, &store, &env, &clock, &sink, config.state_ttl)
            .with_trace_prompts(config.trace_prompts);
        Ok(Arc::new(App {
            router: ArcSwap::from_pointee(router),
            store,
            env,
            clock,
            sink,
            metrics,
            jobs: Mutex::new(Jobs::default()),
            admin_token: config
                .admin_token
                .clone()
                .filter(|t| !t.is_empty())
                .map(Secret::new),
            reload_error: Mutex::new(None),
            config,
        }))
    }

    /// Reloads the policy file. A valid file replaces the policy atomically; an invalid one is
    /// logged and counted, and the old policy keeps serving.
    pub fn reload(&self) -> Result<(), String> {
        match load_policy(&self.config.policy_path, &self.env) {
            Ok(policy) => {
                let router = build_router(
                    policy,
                    &self.store,
                    &self.env,
                    &self.clock,
                    &self.sink,
                    self.config.state_ttl,
                )
                .with_trace_prompts(self.config.trace_prompts);
                self.router.store(Arc::new(router));
                self.metrics.reload(true);
                *self.reload_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
                tracing::info!(policy = %self.config.policy_path.display(), "policy reloaded");
                Ok(())
            }
            Err(diagnostics) => {
                self.metrics.reload(false);
                tracing::error!(policy = %self.config.policy_path.display(), "policy reload refused; still serving the previous policy:\n{diagnostics}");
                *self.reload_error.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(diagnostics.clone());
                Err(diagnostics)
            }
        }
    }

    /// The router of the current policy.
    pub fn router(&self) -> Arc<Router> {
        self.router.load_full()
    }

    fn refresh_gauges(&self) {
        let router = self.router();
        let policy = router.policy();
        let now = self.clock.now();
        if let Ok(t) = self.store.totals(Month::of(now), now) {
            self.metrics.budget(t.spent(), policy.budget.monthly);
        }
        if let Ok(state) = router.state(0) {
            for (b, s) in policy.backends.iter().zip(&state.breakers) {
                self.metrics.breaker(&b.name, *s);
            }
        }
    }
}

fn build_router(
    policy: Policy,
    store: &Arc<dyn Store>,
    env: &Env,
    clock: &Arc<dyn Clock>,
    sink: &Arc<dyn VideoSink>,
    ttl: Duration,
) -> Router {
    let lookup = |k: &str| env(k);
    Router::new(
        Arc::new(policy),
        store.clone(),
        &lookup,
        clock.clone(),
        sink.clone(),
    )
    .with_state_ttl(ttl)
}

/// The axum application.
pub fn routes(app: Arc<App>) -> axum::Router {
    axum::Router::new()
        .route("/v1/decide", post(decide))
        .route("/v1/generate", post(generate))
        .route("/v1/jobs", post(create_job))
        .route("/v1/jobs/{id}", get(job))
        .route("/v1/backends", get(backends))
        .route("/v1/budget", get(budget))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/v1/admin/reload", post(admin_reload))
        .route("/v1/admin/breakers/{backend}/reset", post(admin_reset))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                None,
                "no such endpoint; see openapi.yaml",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(app)
}

fn error(status: StatusCode, field: Option<&str>, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"field": field, "message": message}})),
    )
        .into_response()
}

/// A response, boxed: handlers return it early from helper functions.
type Early = Box<Response>;

fn parse_request(router: &Router, body: &Bytes) -> Result<Request, Early> {
    let text = std::str::from_utf8(body).map_err(|_| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            Some("(body)"),
            "the body is not UTF-8",
        ))
    })?;
    Request::from_json(router.policy(), text).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            Some(&e.field),
            &e.to_string(),
        ))
    })
}

fn ledger_unavailable(e: impl std::fmt::Display) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        None,
        &format!("the ledger is unavailable, so nothing can be spent (fail closed): {e}"),
    )
}

/// 402 when the budget is what stops every backend, 503 otherwise.
fn none_eligible_status(e: &Explanation) -> StatusCode {
    let budget_blocked = e
        .backends
        .iter()
        .any(|b| b.reasons.iter().any(|r| r.contains("remaining budget")));
    let all_budget = e.backends.iter().filter(|b| !b.eligible).all(|b| {
        b.reasons.iter().any(|r| r.contains("remaining budget"))
            || b.reasons
                .iter()
                .all(|r| r.contains("priority_") || r.contains("disabled"))
    });
    if budget_blocked && all_budget {
        StatusCode::PAYMENT_REQUIRED
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn decide(AxState(app): AxState<Arc<App>>, body: Bytes) -> Response {
    let router = app.router();
    let request = match parse_request(&router, &body) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    match router.explain(&request) {
        Ok(e) if e.backend.is_some() => (StatusCode::OK, Json(e)).into_response(),
        Ok(e) => (none_eligible_status(&e), Json(e)).into_response(),
        Err(e) => ledger_unavailable(e),
    }
}

async fn run_generation(
    app: &App,
    router: &Router,
    request: &Request,
) -> (StatusCode, serde_json::Value) {
    let priority = router
        .policy()
        .enum_values(crate::check::expr::EnumId::PRIORITY)
        .get(request.priority as usize)
        .cloned()
        .unwrap_or_default();
    let result = router.generate(request).await;
    let g: Generation = match result {
        Ok(g) => g,
        Err(e) => {
            let message =
                format!("the ledger is unavailable, so nothing can be spent (fail closed): {e}");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": {"field": null, "message": message}}),
            );
        }
    };
    app.metrics.record(&g, &priority);
    app.refresh_gauges();
    let body = serde_json::to_value(&g).unwrap_or_default();
    if g.video.is_some() {
        (StatusCode::OK, body)
    } else if g.attempts.is_empty() {
        let explanation = router.explain(request).ok();
        let status = explanation
            .as_ref()
            .map_or(StatusCode::SERVICE_UNAVAILABLE, none_eligible_status);
        (
            status,
            json!({"error": {"field": null, "message": g.error}, "generation": body, "explanation": explanation}),
        )
    } else {
        (StatusCode::BAD_GATEWAY, body)
    }
}

async fn generate(AxState(app): AxState<Arc<App>>, body: Bytes) -> Response {
    let router = app.router();
    match parse_request(&router, &body) {
        Ok(request) => {
            let (status, body) = run_generation(&app, &router, &request).await;
            (status, Json(body)).into_response()
        }
        Err(resp) => *resp,
    }
}

async fn create_job(AxState(app): AxState<Arc<App>>, body: Bytes) -> Response {
    let router = app.router();
    let request = match parse_request(&router, &body) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let id = uuid::Uuid::new_v4().to_string();
    {
        let mut jobs = app.jobs.lock().unwrap_or_else(|e| e.into_inner());
        while jobs.order.len() >= MAX_JOBS {
            let evict = jobs
                .order
                .iter()
                .position(|id| matches!(jobs.by_id.get(id), Some(Job::Done { .. })));
            match evict.and_then(|i| jobs.order.remove(i)) {
                Some(old) => {
                    jobs.by_id.remove(&old);
                }
                None => {
                    return error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        None,
                        "too many jobs are running; retry later",
                    )
                }
            }
        }
        jobs.order.push_back(id.clone());
        jobs.by_id.insert(id.clone(), Job::Running);
    }
    let (app2, id2) = (app.clone(), id.clone());
    tokio::spawn(async move {
        let (status, body) = run_generation(&app2, &router, &request).await;
        let mut jobs = app2.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.by_id.insert(
            id2,
            Job::Done {
                ok: status == StatusCode::OK,
                status: status.as_u16(),
                body,
            },
        );
    });
    (
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "status": "running", "url": format!("/v1/jobs/{id}")})),
    )
        .into_response()
}

async fn job(AxState(app): AxState<Arc<App>>, UrlPath(id): UrlPath<String>) -> Response {
    let jobs = app.jobs.lock().unwrap_or_else(|e| e.into_inner());
    match jobs.by_id.get(&id) {
        None => error(StatusCode::NOT_FOUND, Some("id"), &format!("no job `{id}`")),
        Some(Job::Running) => Json(json!({"id": id, "status": "running"})).into_response(),
        Some(Job::Done { ok, status, body }) => {
            let state = if *ok { "succeeded" } else { "failed" };
            Json(json!({"id": id, "status": state, "http_status": status, "result": body}))
                .into_response()
        }
    }
}

async fn backends(AxState(app): AxState<Arc<App>>) -> Response {
    let router = app.router();
    let policy = router.policy();
    let state = match router.state(0) {
        Ok(s) => s,
        Err(e) => return ledger_unavailable(e),
    };
    let list: Vec<_> = policy
        .preference_order()
        .iter()
        .map(|&i| {
            let b = &policy.backends[i as usize];
            let recent = app.metrics.recent(&b.name);
            json!({
                "name": b.name,
                "type": b.kind,
                "protocol": b.protocol().map(|p| format!("{p:?}").to_lowercase()),
                "enabled": b.enabled,
                "key_missing": b.key_missing,
                "priority": b.priority,
                "cost_usd": b.cost_of(None),
                "quality": b.quality,
                "avg_generation_time_seconds": b.avg_latency,
                "max_generation_time_seconds": b.max_latency,
                "breaker": state.breakers.get(i as usize).copied().unwrap_or_default(),
                "recent": recent,
            })
        })
        .collect();
    Json(json!({"backends": list})).into_response()
}

/// The same figures as `genroute budget show --format json`.
pub fn budget_summary(
    store: &dyn Store,
    policy: &Policy,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<crate::ledger::Summary, crate::ledger::LedgerError> {
    let month = Month::of(now);
    let t = store.totals(month, now)?;
    Ok(crate::ledger::Summary::new(
        month,
        &t,
        policy.budget.monthly,
        policy.budget.threshold,
    ))
}

async fn budget(AxState(app): AxState<Arc<App>>) -> Response {
    let router = app.router();
    match budget_summary(&*app.store, router.policy(), app.clock.now()) {
        Ok(v) => Json(v).into_response(),
        Err(e) => ledger_unavailable(e),
    }
}

async fn metrics_text(AxState(app): AxState<Arc<App>>) -> Response {
    app.refresh_gauges();
    (
        [("content-type", "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

async fn readyz(AxState(app): AxState<Arc<App>>) -> Response {
    let reload = app
        .reload_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let now = app.clock.now();
    let ledger = app
        .store
        .totals(Month::of(now), now)
        .err()
        .map(|e| e.to_string());
    let ready = ledger.is_none();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": ready,
        "policy": app.config.policy_path.display().to_string(),
        "last_reload_ok": reload.is_none(),
        "last_reload_error": reload,
        "ledger_error": ledger,
    });
    (status, Json(body)).into_response()
}

fn authorized(app: &App, headers: &HeaderMap) -> Result<(), Early> {
    let Some(token) = &app.admin_token else {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            None,
            "admin endpoints are disabled: set GENROUTE_ADMIN_TOKEN to enable them",
        )));
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), token.expose().as_bytes()) => Ok(()),
        _ => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            Some("authorization"),
            "a valid `Authorization: Bearer <token>` header is required",
        ))),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn admin_reload(AxState(app): AxState<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized(&app, &headers) {
        return *r;
    }
    match app.reload() {
        Ok(()) => Json(json!({"reloaded": true})).into_response(),
        Err(diagnostics) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"reloaded": false, "error": {"message": diagnostics}})),
        )
            .into_response(),
    }
}

async fn admin_reset(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    UrlPath(backend): UrlPath<String>,
) -> Response {
    if let Err(r) = authorized(&app, &headers) {
        return *r;
    }
    let router = app.router();
    if router.policy().backend_index(&backend).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            Some("backend"),
            &format!("unknown backend `{backend}`"),
        );
    }
    match router.reset_breaker(&backend) {
        Ok(()) => Json(json!({"backend": backend, "breaker": "closed"})).into_response(),
        Err(e) => ledger_unavailable(e),
    }
}

/// Watches the policy file and reloads on change. Editors often replace a file by renaming,
/// so the directory is watched and events are filtered by name, then debounced.
pub fn watch(app: Arc<App>) -> Result<notify::RecommendedWatcher, notify::Error> {
    use notify::{RecursiveMode, Watcher};
    let path = app.config.policy_path.clone();
    let name = path.file_name().map(|n| n.to_os_string());
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(e) = event {
            if e.paths
                .iter()
                .any(|p| p.file_name().map(|n| n.to_os_string()) == name)
            {
                let _ = tx.send(());
            }
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            tokio::time::sleep(Duration::from_millis(150)).await;
            while rx.try_recv().is_ok() {}
            let _ = app.reload();
        }
    });
    Ok(watcher)
}
