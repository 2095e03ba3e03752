//! `genroute serve`: the HTTP API (axum), hot reload and metrics.
//!
//! The server only translates between HTTP and the library: every decision is made by the
//! [`Router`] of the policy currently loaded. The router sits behind an [`ArcSwap`]: a reload
//! builds a new one and swaps the pointer, so a request in flight finishes on the policy it
//! started with, and no request waits for a reload.
//!
//! **Nothing here waits on a stalled dependency.** `/healthz` touches neither the store nor
//! the policy's state. `/readyz` answers from the store guard's last probe. Decisions read the
//! state cache, which answers from its last snapshot when the store is slow
//! ([`genroute_exec::snapshot`]). Every store call has a deadline and fails fast while the store
//! is down ([`genroute_store::guard`]). A policy reload parses and checks the file on a
//! blocking thread, so a slow or hostile file delays only the reload. Bodies are read whole,
//! bounded in size and time, before a handler runs ([`body`]).
//!
//! Endpoints are documented in `openapi.yaml` at the repository root, and tested against it.

mod admin;
pub mod auth;
pub mod body;
mod jobs;
pub mod metrics;
pub mod videos;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde_json::{json, Value};

use genroute_core::diag::Source;
use genroute_core::explain::Explanation;
use genroute_core::explain::Unserved;
use genroute_core::policy::{LoadOptions, Policy};
use genroute_core::request::MAX_REQUEST_BYTES;
use genroute_exec::adapter::Secret;
use genroute_exec::jobs::runner::Runner;
use genroute_exec::snapshot::Freshness;
use genroute_exec::{Clock, Router, VideoSink};
use genroute_store::guard::Guarded;
use genroute_store::{Month, Store};
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
    /// How old those figures may be when the store does not answer (`--state-max-stale`).
    pub state_max_stale: Duration,
    /// The deadline of each store call (`--store-timeout`).
    pub store_timeout: Duration,
    /// Whether traces may carry prompt text.
    pub trace_prompts: bool,
    /// How jobs are run: leases, takeover, retention, webhooks.
    pub jobs: genroute_exec::jobs::runner::Options,
    /// The webhook URL of requests that name none (`--webhook-default`).
    pub default_webhook: Option<String>,
    /// This replica's name in job leases (default: host, pid and a random suffix).
    pub replica: Option<String>,
    /// The tenants file (`--tenants`), watched for changes: with one, every endpoint but the
    /// health probes needs an API key ([`auth`]).
    pub tenants_path: Option<PathBuf>,
}

impl Config {
    /// A configuration with the defaults of `genroute serve`.
    pub fn new(policy_path: PathBuf) -> Config {
        Config {
            policy_path,
            metrics_prefix: "videogen".into(),
            admin_token: None,
            state_ttl: Duration::from_millis(100),
            state_max_stale: genroute_exec::snapshot::DEFAULT_MAX_STALE,
            store_timeout: genroute_store::guard::DEFAULT_TIMEOUT,
            trace_prompts: false,
            jobs: genroute_exec::jobs::runner::Options::default(),
            default_webhook: None,
            replica: None,
            tenants_path: None,
        }
    }
}

/// Shared server state.
pub struct App {
    router: Arc<ArcSwap<Router>>,
    store: Arc<Guarded>,
    env: Env,
    clock: Arc<dyn Clock>,
    sink: Arc<dyn VideoSink>,
    metrics: Arc<Metrics>,
    runner: Arc<Runner>,
    tenants: Arc<ArcSwapOption<genroute_core::tenant::Tenants>>,
    admin_token: Option<Secret>,
    reload_error: Mutex<Option<String>>,
    /// One reload at a time, so that reloads finish in the order they started.
    reloading: tokio::sync::Mutex<()>,
    config: Config,
}

/// A replica's default name: host, process and a random suffix (a restarted process is a
/// new owner).
fn replica_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "genroute".into());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &suffix[..8])
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The policy file is unreadable or invalid.
    #[error("{0}")]
    Policy(String),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(String),
    /// The tenants file is unreadable, invalid, or does not fit the policy.
    #[error("{0}")]
    Tenants(String),
}

/// Loads the tenants file and checks it against `policy`: every backend a cap names exists,
/// and every key's attributes have the types the policy's `tenant_fields` declare.
fn load_tenants(path: &Path, policy: &Policy) -> Result<genroute_core::tenant::Tenants, String> {
    use genroute_core::tenant::Tenants;
    let render = |source: &Source, d: &[genroute_core::diag::Diagnostic]| source.render(d, false);
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read tenants file `{}`: {e}", path.display()))?;
    let source = Source::new(path.display().to_string(), text);
    let tenants = Tenants::from_source(&source).map_err(|d| render(&source, &d))?;
    let unknown = tenants.check_backends(policy.backends.iter().map(|b| b.name.as_str()));
    if !unknown.is_empty() {
        return Err(render(&source, &unknown));
    }
    for key in tenants.key_ids() {
        if let Some(t) = tenants.tenancy_of(key) {
            let mut probe = genroute_core::Request::with_defaults(policy, "");
            probe
                .set_tenancy(policy, Arc::new(t))
                .map_err(|e| format!("tenants file `{}`: key `{key}`: {e}", path.display()))?;
        }
    }
    Ok(tenants)
}

/// [`load_tenants`] on a blocking thread.
async fn tenants_off_workers(
    path: PathBuf,
    policy: Arc<Policy>,
) -> Result<genroute_core::tenant::Tenants, String> {
    tokio::task::spawn_blocking(move || load_tenants(&path, &policy))
        .await
        .unwrap_or_else(|e| Err(format!("the tenants loader stopped: {e}")))
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

/// How often the background probe pings the store.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

impl App {
    /// Loads the policy, builds the first router, and starts the store's background probe
    /// (on the current tokio runtime).
    pub async fn new(
        config: Config,
        store: Arc<dyn Store>,
        env: Env,
        clock: Arc<dyn Clock>,
        sink: Arc<dyn VideoSink>,
    ) -> Result<Arc<App>, StartError> {
        let policy = load_off_workers(config.policy_path.clone(), env.clone())
            .await
            .map_err(StartError::Policy)?;
        let metrics = Arc::new(
            Metrics::new(&config.metrics_prefix).map_err(|e| StartError::Metrics(e.to_string()))?,
        );
        let tenants = Arc::new(ArcSwapOption::empty());
        if let Some(path) = &config.tenants_path {
            let t = tenants_off_workers(path.clone(), Arc::new(policy.clone()))
                .await
                .map_err(StartError::Tenants)?;
            tenants.store(Some(Arc::new(t)));
        }
        let store = Arc::new(Guarded::new(store, config.store_timeout));
        store.spawn_probe(PROBE_EVERY);
        let router = Arc::new(ArcSwap::from_pointee(build_router(
            policy, &store, &env, &clock, &sink, &config,
        )));
        let source = {
            let router = router.clone();
            Arc::new(move || router.load_full()) as genroute_exec::jobs::runner::RouterSource
        };
        let on_end = {
            let (metrics, router, tenants) = (metrics.clone(), router.clone(), tenants.clone());
            Arc::new(move |job: &genroute_exec::jobs::Job| {
                let team = job
                    .tenancy
                    .as_ref()
                    .map(|t| team_label(tenants.load().as_deref(), &t.team));
                jobs::record_metrics(&metrics, &router.load(), job, team)
            }) as genroute_exec::jobs::runner::OnEnd
        };
        let runner = Runner::new(
            config.replica.clone().unwrap_or_else(replica_name),
            store.clone(),
            source,
            config.jobs.clone(),
            Some(on_end),
        );
        runner.start();
        Ok(Arc::new(App {
            router,
            store,
            env,
            clock,
            sink,
            metrics,
            runner,
            tenants,
            admin_token: config
                .admin_token
                .clone()
                .filter(|t| !t.is_empty())
                .map(Secret::new),
            reload_error: Mutex::new(None),
            reloading: tokio::sync::Mutex::new(()),
            config,
        }))
    }

    /// The tenants file in use, if the server has one.
    pub fn tenants(&self) -> Option<Arc<genroute_core::tenant::Tenants>> {
        self.tenants.load_full()
    }

    /// The metric label of `team`: itself while the tenants file names it, else `other`.
    pub fn team_label(&self, team: &str) -> String {
        team_label(self.tenants.load().as_deref(), team)
    }

    /// Reloads the policy file, and the tenants file with it. A valid pair replaces both
    /// atomically (each behind its pointer); an invalid file is logged and counted, and the old
    /// ones keep serving. The files are read, parsed and checked on blocking threads. Requests
    /// in flight keep the policy and the tenancy they started with.
    pub async fn reload(&self) -> Result<(), String> {
        let _one = self.reloading.lock().await;
        let loaded = match load_off_workers(self.config.policy_path.clone(), self.env.clone()).await
        {
            Ok(policy) => match &self.config.tenants_path {
                None => Ok((policy, None)),
                Some(path) => {
                    let policy = Arc::new(policy);
                    match tenants_off_workers(path.clone(), policy.clone()).await {
                        Ok(t) => Ok((Arc::unwrap_or_clone(policy), Some(t))),
                        Err(e) => Err(e),
                    }
                }
            },
            Err(e) => Err(e),
        };
        match loaded {
            Ok((policy, tenants)) => {
                if let Some(t) = tenants {
                    self.tenants.store(Some(Arc::new(t)));
                }
                let router = build_router(
                    policy,
                    &self.store,
                    &self.env,
                    &self.clock,
                    &self.sink,
                    &self.config,
                );
                // The new policy decides on the figures the old one last read, until it
                // reads its own: a reload during a store outage keeps decide answering.
                router.cache().inherit(self.router().cache());
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

    /// The job runner.
    pub fn runner(&self) -> &Arc<Runner> {
        &self.runner
    }

    /// The store, behind its guard.
    pub fn store(&self) -> &Arc<Guarded> {
        &self.store
    }

    /// Sets the budget and breaker gauges from the state cache's last snapshot: the metrics
    /// never wait on the store.
    fn refresh_gauges(&self) {
        let router = self.router();
        let policy = router.policy();
        if let Some(snap) = router.cache().last() {
            self.metrics
                .budget(snap.totals.spent(), policy.budget.monthly);
            let state = router.cache().state(policy, &snap, 0);
            for (b, s) in policy.backends.iter().zip(&state.breakers) {
                self.metrics.breaker(&b.name, *s);
            }
            for (b, m) in policy.backends.iter().zip(&snap.measured) {
                self.metrics.measured(&b.name, m);
            }
            for (e, r) in policy.experiments.iter().zip(&snap.rollbacks) {
                self.metrics.experiment(&e.name, r.is_some());
            }
        }
        self.metrics.store(&self.store.health());
    }
}

/// The metric label of `team` (see [`App::team_label`]).
fn team_label(tenants: Option<&genroute_core::tenant::Tenants>, team: &str) -> String {
    match tenants {
        Some(t) if t.team(team).is_some() => team.to_string(),
        _ => "other".into(),
    }
}

/// Loads and checks the policy on a blocking thread.
async fn load_off_workers(path: PathBuf, env: Env) -> Result<Policy, String> {
    tokio::task::spawn_blocking(move || load_policy(&path, &env))
        .await
        .unwrap_or_else(|e| Err(format!("the policy loader stopped: {e}")))
}

fn build_router(
    policy: Policy,
    store: &Arc<Guarded>,
    env: &Env,
    clock: &Arc<dyn Clock>,
    sink: &Arc<dyn VideoSink>,
    config: &Config,
) -> Router {
    let lookup = |k: &str| env(k);
    let store: Arc<dyn Store> = store.clone();
    Router::new(
        Arc::new(policy),
        store,
        &lookup,
        clock.clone(),
        sink.clone(),
    )
    .with_state_cache(config.state_ttl, config.state_max_stale)
    .with_trace_prompts(config.trace_prompts)
}

/// The axum application.
pub fn routes(app: Arc<App>) -> axum::Router {
    axum::Router::new()
        .route("/v1/decide", post(decide))
        .route("/v1/generate", post(jobs::generate))
        .route("/v1/jobs", post(jobs::create).get(jobs::list))
        .route("/v1/jobs/{id}", get(jobs::show).delete(jobs::cancel))
        .route("/v1/videos", post(videos::create).get(videos::list))
        .route(
            "/v1/videos/{id}",
            get(videos::retrieve).delete(videos::delete),
        )
        .route("/v1/videos/{id}/content", get(videos::content))
        .route("/v1/backends", get(backends))
        .route("/v1/budget", get(budget))
        .route("/v1/experiments", get(experiments))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/v1/admin/reload", post(admin::reload))
        .route("/v1/admin/breakers/{backend}/reset", post(admin::reset))
        .route("/v1/admin/ledger/accept-empty", post(admin::accept_empty))
        .route(
            "/v1/admin/experiments/{name}/resume",
            post(admin::resume_experiment),
        )
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                None,
                "no such endpoint; see openapi.yaml",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(axum::middleware::from_fn(body::bounded))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::authenticate,
        ))
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

/// 429 with `Retry-After` (whole seconds, at least 1).
pub(crate) fn too_many(message: &str, retry_after_ms: i64) -> Response {
    let mut r = error(StatusCode::TOO_MANY_REQUESTS, None, message);
    let secs = (retry_after_ms.max(0) + 999) / 1000;
    if let Ok(v) = axum::http::HeaderValue::from_str(&secs.max(1).to_string()) {
        r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
    }
    r
}

fn unavailable_message(e: impl std::fmt::Display) -> String {
    format!("the ledger is unavailable, so nothing can be spent (fail closed): {e}")
}

fn ledger_unavailable(e: impl std::fmt::Display) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        None,
        &unavailable_message(e),
    )
}

/// An explanation with the freshness of the figures it was decided on.
fn explained(status: StatusCode, e: &Explanation, fresh: Freshness) -> Response {
    let mut body = serde_json::to_value(e).unwrap_or_default();
    if let (Some(map), Ok(serde_json::Value::Object(extra))) =
        (body.as_object_mut(), serde_json::to_value(fresh))
    {
        map.extend(extra);
    }
    (status, Json(body)).into_response()
}

/// The status that answers a request no backend could serve: 402 when the budget is what
/// stops every backend, 503 when a backend is out of service, 409 when the request asks for
/// what no backend offers ([`genroute_core::explain::Unserved`]).
pub fn none_eligible_status(e: &Explanation) -> StatusCode {
    match e.unserved() {
        Unserved::Budget => StatusCode::PAYMENT_REQUIRED,
        Unserved::OutOfService => StatusCode::SERVICE_UNAVAILABLE,
        Unserved::Unservable => StatusCode::CONFLICT,
    }
}

async fn decide(AxState(app): AxState<Arc<App>>, caller: auth::Caller, body: Bytes) -> Response {
    let router = app.router();
    // The same body as /v1/generate (its `webhook_url` is read and left aside: deciding
    // calls nothing).
    let request = match jobs::parse(&app, &router, &caller, &body) {
        Ok(s) => s.request,
        Err(resp) => return *resp,
    };
    match router.explain(&request).await {
        Ok((e, fresh)) if e.backend.is_some() => explained(StatusCode::OK, &e, fresh),
        Ok((e, fresh)) => explained(none_eligible_status(&e), &e, fresh),
        Err(e) => ledger_unavailable(e),
    }
}

async fn backends(AxState(app): AxState<Arc<App>>) -> Response {
    let router = app.router();
    let policy = router.policy();
    let state = match router.state(0).await {
        Ok((s, _)) => s,
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

pub use genroute_exec::budget_summary;

/// The query of `GET /v1/budget`.
#[derive(serde::Deserialize)]
pub struct BudgetQuery {
    /// A team's budgets.
    team: Option<String>,
    /// A key's budgets.
    key: Option<String>,
}

/// The budgets that `GET /v1/budget?team=|key=` shows to `caller`, or the answer refusing.
fn budgets_shown(
    app: &App,
    caller: &auth::Caller,
    q: &BudgetQuery,
) -> Result<Option<(serde_json::Value, Vec<genroute_core::levels::LevelBudget>)>, Early> {
    let policy_levels = app.router().policy().budget_levels();
    let need_tenants = || {
        Box::new(error(
            StatusCode::NOT_FOUND,
            Some(if q.team.is_some() { "team" } else { "key" }),
            "this server has no tenants file (`serve --tenants FILE`), so it has no teams or keys",
        ))
    };
    let forbidden = |what: &str| {
        Box::new(error(
            StatusCode::FORBIDDEN,
            Some(what),
            &format!("an API key sees its own team's budgets only; another {what}'s need the `admin` scope"),
        ))
    };
    let with_policy = |mut v: Vec<genroute_core::levels::LevelBudget>| {
        let mut all = policy_levels.clone();
        all.append(&mut v);
        all
    };
    match (&q.team, &q.key) {
        (Some(team), None) => {
            let tenants = app.tenants().ok_or_else(need_tenants)?;
            if !caller.sees_team(Some(team)) {
                return Err(forbidden("team"));
            }
            let levels = tenants.team_budgets(team).ok_or_else(|| {
                Box::new(error(
                    StatusCode::NOT_FOUND,
                    Some("team"),
                    &format!("no team `{team}` in the tenants file"),
                ))
            })?;
            Ok(Some((json!({"team": team}), with_policy(levels))))
        }
        (team, Some(key)) => {
            let tenants = app.tenants().ok_or_else(need_tenants)?;
            // With both, the key of that team (its levels include the team's).
            let t = tenants
                .tenancy_of(key)
                .filter(|t| team.as_ref().is_none_or(|team| &t.team == team))
                .ok_or_else(|| {
                    let of = team
                        .as_ref()
                        .map(|t| format!(" of team `{t}`"))
                        .unwrap_or_default();
                    Box::new(error(
                        StatusCode::NOT_FOUND,
                        Some("key"),
                        &format!("no key `{key}`{of} in the tenants file"),
                    ))
                })?;
            if !caller.sees_team(Some(&t.team)) {
                return Err(forbidden("key"));
            }
            Ok(Some((
                json!({"key": key, "team": t.team}),
                with_policy(t.budgets),
            )))
        }
        (None, None) => match &caller.0 {
            Some(t) => Ok(Some((
                json!({"key": t.key, "team": t.team}),
                with_policy(t.budgets.clone()),
            ))),
            None if policy_levels.is_empty() => Ok(None),
            None => Ok(Some((json!({}), policy_levels))),
        },
    }
}

async fn budget(
    AxState(app): AxState<Arc<App>>,
    caller: auth::Caller,
    q: Result<axum::extract::Query<BudgetQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match jobs::query(q) {
        Ok(q) => q,
        Err(r) => return *r,
    };
    let shown = match budgets_shown(&app, &caller, &q) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let router = app.router();
    let now = app.clock.now();
    let summary = match budget_summary(&*app.store, router.policy(), Month::of(now), now).await {
        Ok(v) => v,
        Err(e) => return ledger_unavailable(e),
    };
    let mut body = serde_json::to_value(summary).unwrap_or_default();
    if let Some((who, levels)) = shown {
        match genroute_exec::levels::summaries(&*app.store, &levels, now).await {
            Ok(l) => {
                if let (Some(map), Value::Object(who)) = (body.as_object_mut(), who) {
                    map.extend(who);
                    map.insert("levels".into(), serde_json::to_value(l).unwrap_or_default());
                }
            }
            Err(e) => return ledger_unavailable(e),
        }
    }
    Json(body).into_response()
}

/// `GET /v1/experiments`: every experiment with its arms' figures and its rollback.
async fn experiments(AxState(app): AxState<Arc<App>>) -> Response {
    match app.router().experiments().await {
        Ok(v) => Json(json!({"experiments": v})).into_response(),
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

/// Ready when the policy loaded and the store's last call or probe succeeded. Answers at
/// once, from what the probe last saw.
async fn readyz(AxState(app): AxState<Arc<App>>) -> Response {
    let reload = app
        .reload_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let health = app.store.health();
    let ready = health.ok;
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
        "ledger_error": if ready { None } else { health.last_error.clone() },
        "store": health,
    });
    (status, Json(body)).into_response()
}

/// Watches the policy file (and the tenants file) and reloads on change. Editors often
/// replace a file by renaming, so each file's directory is watched and events are filtered by
/// name, then debounced.
pub fn watch(app: Arc<App>) -> Result<notify::RecommendedWatcher, notify::Error> {
    use notify::{RecursiveMode, Watcher};
    let files: Vec<PathBuf> = std::iter::once(app.config.policy_path.clone())
        .chain(app.config.tenants_path.clone())
        .collect();
    let names: Vec<std::ffi::OsString> = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_os_string()))
        .collect();
    let dir_of = |path: &Path| {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf()
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(e) = event {
            // Only changes: reading the file (as every reload does) raises access events,
            // which would otherwise reload it again and again.
            let change = matches!(
                e.kind,
                notify::EventKind::Create(_)
                    | notify::EventKind::Modify(_)
                    | notify::EventKind::Remove(_)
            );
            if change
                && e.paths.iter().any(|p| {
                    p.file_name()
                        .is_some_and(|n| names.iter().any(|x| x.as_os_str() == n))
                })
            {
                let _ = tx.send(());
            }
        }
    })?;
    let mut dirs: Vec<PathBuf> = files.iter().map(|f| dir_of(f)).collect();
    dirs.dedup();
    for dir in &dirs {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
    }
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            tokio::time::sleep(Duration::from_millis(150)).await;
            while rx.try_recv().is_ok() {}
            let _ = app.reload().await;
        }
    });
    Ok(watcher)
}
