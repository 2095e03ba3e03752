//! Reading the two files the server serves from: the policy and the tenants file.
//!
//! **Why apart from [`crate::app`].** Starting and reloading load the same files the same way,
//! and loading needs nothing of the running server: it takes a path and the environment and
//! gives a checked policy (compiled before it takes traffic) or the tenants that fit it. Both
//! run on blocking threads ([`policy_off_workers`], [`tenants_off_workers`]), so that a slow
//! or hostile file delays only the start or the reload, never a request.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use genroute_core::diag::Source;
use genroute_core::policy::{LoadOptions, Policy};
use genroute_core::tenant::Tenants;

/// Environment lookups, shared by reloads.
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Loads and checks the policy, and compiles it.
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

/// Loads the tenants file and checks it against `policy`: every backend a cap names exists,
/// and every key's attributes have the types the policy's `tenant_fields` declare.
fn load_tenants(path: &Path, policy: &Policy) -> Result<Tenants, String> {
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

/// Loads and checks the policy on a blocking thread.
pub(crate) async fn policy_off_workers(path: PathBuf, env: Env) -> Result<Policy, String> {
    tokio::task::spawn_blocking(move || load_policy(&path, &env))
        .await
        .unwrap_or_else(|e| Err(format!("the policy loader stopped: {e}")))
}

/// [`load_tenants`] on a blocking thread.
pub(crate) async fn tenants_off_workers(
    path: PathBuf,
    policy: Arc<Policy>,
) -> Result<Tenants, String> {
    tokio::task::spawn_blocking(move || load_tenants(&path, &policy))
        .await
        .unwrap_or_else(|e| Err(format!("the tenants loader stopped: {e}")))
}
