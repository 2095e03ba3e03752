//! The running service's state: its configuration, the router of the policy in use, the
//! store, the job runner, the tenants and the metrics, and how they are replaced on a reload.
//!
//! **Why the handlers sit above this.** [`App`] is what every endpoint reads, so it names no
//! endpoint: the handler modules, the auth middleware and the route table depend on it, and it
//! depends only on loading ([`crate::load`]) and the metrics it feeds ([`crate::metrics`]).
//!
//! The router sits behind an [`ArcSwap`]: a reload builds a new one and swaps the pointer, so a
//! request in flight finishes on the policy it started with, and no request waits for a
//! reload. Reloads take a lock so that they finish in the order they started.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};

use genroute_core::policy::Policy;
use genroute_core::tenant::Tenants;
use genroute_exec::adapter::Secret;
use genroute_exec::jobs::runner::{OnEnd, Options, RouterSource, Runner};
use genroute_exec::{Clock, Router, VideoSink};
use genroute_store::guard::Guarded;
use genroute_store::Store;

use crate::load::{policy_off_workers, tenants_off_workers, Env};
use crate::metrics::Metrics;

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
    pub jobs: Options,
    /// The webhook URL of requests that name none (`--webhook-default`).
    pub default_webhook: Option<String>,
    /// This replica's name in job leases (default: host, pid and a random suffix).
    pub replica: Option<String>,
    /// The tenants file (`--tenants`), watched for changes: with one, every endpoint but the
    /// health probes needs an API key ([`crate::auth`]).
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
            jobs: Options::default(),
            default_webhook: None,
            replica: None,
            tenants_path: None,
        }
    }
}

/// Shared server state.
pub struct App {
    router: Arc<ArcSwap<Router>>,
    pub(crate) store: Arc<Guarded>,
    env: Env,
    pub(crate) clock: Arc<dyn Clock>,
    sink: Arc<dyn VideoSink>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) runner: Arc<Runner>,
    tenants: Arc<ArcSwapOption<Tenants>>,
    pub(crate) admin_token: Option<Secret>,
    pub(crate) reload_error: Mutex<Option<String>>,
    /// One reload at a time, so that reloads finish in the order they started.
    reloading: tokio::sync::Mutex<()>,
    pub(crate) config: Config,
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
        let policy = policy_off_workers(config.policy_path.clone(), env.clone())
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
            Arc::new(move || router.load_full()) as RouterSource
        };
        let on_end = {
            let (metrics, router, tenants) = (metrics.clone(), router.clone(), tenants.clone());
            Arc::new(move |job: &genroute_exec::jobs::Job| {
                let team = job
                    .tenancy
                    .as_ref()
                    .map(|t| team_label(tenants.load().as_deref(), &t.team));
                metrics.record_job(router.load().policy(), job, team)
            }) as OnEnd
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
    pub fn tenants(&self) -> Option<Arc<Tenants>> {
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
        let loaded =
            match policy_off_workers(self.config.policy_path.clone(), self.env.clone()).await {
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
}

/// The metric label of `team` (see [`App::team_label`]).
fn team_label(tenants: Option<&Tenants>, team: &str) -> String {
    match tenants {
        Some(t) if t.team(team).is_some() => team.to_string(),
        _ => "other".into(),
    }
}

/// The router of `policy`, on the server's store, clock and sink.
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
