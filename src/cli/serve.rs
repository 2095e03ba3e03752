//! `genroute serve`: run the HTTP service.
//!
//! [`genroute::server`] is the service: its routes, the policy reload, the metrics. This
//! module opens the store, binds the address, starts the policy watcher and runs until
//! Ctrl-C or SIGTERM. Then it takes no new jobs, lets the jobs in flight go on for
//! `--shutdown-grace`, and gives up the leases of those still running, so that another replica
//! resumes them at once.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use genroute::exec::{DirSink, SystemClock};

use super::common::{duration, env_var, runtime, trace_prompts, StoreArgs};

/// `genroute serve` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Policy file; watched and reloaded when it changes.
    #[arg(long)]
    policy: PathBuf,
    /// Tenants file (organisations, teams, API keys; see policies/tenants.yaml); watched and
    /// reloaded with the policy. With it, every endpoint but /healthz and /readyz needs
    /// `Authorization: Bearer <key>`.
    #[arg(long)]
    tenants: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    #[command(flatten)]
    store: StoreArgs,
    /// Prefix of the Prometheus metric names.
    #[arg(long, default_value = "videogen")]
    metrics_prefix: String,
    /// How long decisions may reuse the ledger's spend and breaker figures, in milliseconds.
    #[arg(long, default_value_t = 100)]
    state_ttl_ms: u64,
    /// How old those figures may be when the store does not answer: decisions say they are
    /// stale until then, and fail (503) after, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = duration)]
    state_max_stale: std::time::Duration,
    /// How long a replica holds a job without renewing it; another replica takes it over
    /// after that (e.g. 5s).
    #[arg(long, default_value = "5s", value_parser = duration)]
    job_lease: std::time::Duration,
    /// How long ended jobs are kept (ledger entries are kept forever), e.g. 7d.
    #[arg(long, default_value = "7d", value_parser = duration)]
    job_retention: std::time::Duration,
    /// Hosts (or addresses) webhooks may be sent to: names, *.domain, or IP addresses.
    /// Internal addresses are refused unless named here. Repeatable or comma-separated.
    #[arg(long = "webhook-allow", value_name = "HOST", value_delimiter = ',')]
    webhook_allow: Vec<String>,
    /// The webhook of requests that name none.
    #[arg(long)]
    webhook_default: Option<String>,
    /// How long a failed webhook delivery is retried, e.g. 1h.
    #[arg(long, default_value = "1h", value_parser = duration)]
    webhook_window: std::time::Duration,
    /// On SIGTERM, how long jobs in flight may go on before their leases are given up to
    /// another replica, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = duration)]
    shutdown_grace: std::time::Duration,
    /// This replica's name in job leases (default: host, pid and a random suffix).
    #[arg(long)]
    replica: Option<String>,
}

/// Serves until shut down; the admin token comes from `GENROUTE_ADMIN_TOKEN`.
pub fn run(args: Args) -> Result<ExitCode, String> {
    let listen = &args.listen;
    let addr: std::net::SocketAddr = listen.parse().map_err(|e| {
        format!("--listen: `{listen}` is not an address such as 127.0.0.1:8080 ({e})")
    })?;
    let dir = args.store.dir();
    let config = genroute::server::Config {
        policy_path: args.policy,
        metrics_prefix: args.metrics_prefix,
        admin_token: std::env::var("GENROUTE_ADMIN_TOKEN").ok(),
        state_ttl: std::time::Duration::from_millis(args.state_ttl_ms),
        state_max_stale: args.state_max_stale,
        store_timeout: args.store.store_timeout,
        trace_prompts: trace_prompts(),
        jobs: genroute::jobs::runner::Options {
            lease: args.job_lease,
            retention: args.job_retention,
            webhooks: genroute::jobs::webhook::Config {
                allow: args.webhook_allow,
                secret: std::env::var("GENROUTE_WEBHOOK_SECRET")
                    .ok()
                    .filter(|s| !s.is_empty())
                    .map(genroute::adapter::Secret::new),
                window: args.webhook_window,
                ..genroute::jobs::webhook::Config::default()
            },
            ..genroute::jobs::runner::Options::default()
        },
        default_webhook: args.webhook_default,
        replica: args.replica,
        tenants_path: args.tenants,
    };
    let grace = args.shutdown_grace;
    let env: genroute::server::Env = Arc::new(env_var);
    let sink = Arc::new(DirSink(dir.join("videos")));
    runtime()?.block_on(async move {
        let store = args.store.open_bare().await?;
        let app = genroute::server::App::new(config, store, env, Arc::new(SystemClock), sink)
            .await
            .map_err(|e| e.to_string())?;
        let _watcher = genroute::server::watch(app.clone())
            .map_err(|e| format!("cannot watch the policy and tenants files: {e}"))?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        eprintln!(
            "genroute listening on http://{}",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        // A make-service that clones the router (an Arc) per connection; serving the Router
        // itself rebuilds its route table for every connection, about 6 KB each, which
        // matters at 10,000 connections in flight (docs/PERFORMANCE.md).
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let serving = axum::serve(
            listener,
            genroute::server::routes(app.clone()).into_make_service(),
        )
        .with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|s| *s).await;
        });
        let server = tokio::spawn(std::future::IntoFuture::into_future(serving));
        shutdown().await;
        // Graceful: no new jobs (503, so a load balancer retries elsewhere), the jobs in
        // flight go on for the grace period, then their leases are given up so that another
        // replica resumes them at once.
        eprintln!("genroute: shutting down; jobs in flight have {grace:?}");
        let _ = stop.send(true);
        app.runner().shut_down(grace).await;
        match tokio::time::timeout(std::time::Duration::from_secs(2), server).await {
            Ok(Ok(Err(e))) => Err(format!("server error: {e}")),
            _ => Ok(()),
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM; the server then stops accepting and drains. If
/// SIGTERM cannot be watched it never resolves, not even on Ctrl-C.
async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
