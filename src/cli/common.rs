//! What several commands share: reading a policy, finding and opening the ledger, building a
//! router, starting the async runtime.
//!
//! Each helper is here once so that every command reads files, names the data directory and
//! reports a broken policy in the same words. None of them decides anything: they locate and
//! open what the library needs, and turn its errors into one-line messages.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use genroute::exec::{DirSink, Router, SystemClock};
use genroute::ledger::sqlite::SqliteStore;
use genroute::ledger::Store;
use genroute::{LoadOptions, Policy, Source};

/// Reads a file as a [`Source`] named by its path, for loading and for rendering diagnostics.
pub fn read_source(path: &str) -> Result<Source, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
    Ok(Source::new(path, text))
}

/// The process environment, as the library's loaders and routers ask for it (API keys,
/// feature flags).
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Loads a policy with the process environment. The outer error is an unreadable file; the
/// inner one is an invalid policy, whose diagnostics the caller renders as it sees fit.
pub fn load(path: &str) -> Result<Result<Policy, genroute::LoadError>, String> {
    let source = read_source(path)?;
    Ok(Policy::load(source, &LoadOptions { env: &env_var }))
}

/// Loads a policy that must be valid: if it is not, prints its diagnostics to stderr and
/// returns a message that points at `genroute check`.
pub fn load_valid(path: &str) -> Result<Policy, String> {
    match load(path)? {
        Ok(p) => Ok(p),
        Err(e) => {
            eprint!("{e}");
            Err(format!(
                "`{path}` is not a valid policy; run `genroute check {path}`"
            ))
        }
    }
}

/// Where the ledger lives: `--data-dir`, else `$GENROUTE_DATA_DIR`, else the user's data
/// directory (`~/.local/share/genroute` on Linux), else `./.genroute`.
pub fn data_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("GENROUTE_DATA_DIR").map(PathBuf::from))
        .or_else(|| dirs::data_local_dir().map(|d| d.join("genroute")))
        .unwrap_or_else(|| PathBuf::from(".genroute"))
}

/// Opens the SQLite ledger in a data directory, creating the directory if needed.
pub fn open_store(dir: &Path) -> Result<SqliteStore, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create data directory `{}`: {e}", dir.display()))?;
    SqliteStore::open(&dir.join("ledger.sqlite3")).map_err(|e| e.to_string())
}

/// Opens the store named by `--store`.
pub fn store_from_flag(flag: Option<&str>, dir: &Path) -> Result<Arc<dyn Store>, String> {
    match flag {
        None => Ok(Arc::new(open_store(dir)?)),
        Some(s) if s.starts_with("sqlite:") => {
            let path = PathBuf::from(&s["sqlite:".len()..]);
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create `{}`: {e}", parent.display()))?;
            }
            Ok(Arc::new(
                SqliteStore::open(&path).map_err(|e| e.to_string())?,
            ))
        }
        Some(s) if s.starts_with("redis://") => Ok(Arc::new(
            genroute::ledger::redis::RedisStore::open(s).map_err(|e| e.to_string())?,
        )),
        Some(other) => Err(format!(
            "--store: `{other}` is not sqlite:PATH or redis://HOST:PORT/DB"
        )),
    }
}

/// A router over the SQLite ledger in `dir`, saving videos under `dir/videos`, with the
/// system clock and the process environment.
pub fn router(policy: Policy, dir: &Path) -> Result<Router, String> {
    let store = open_store(dir)?;
    Ok(Router::new(
        Arc::new(policy),
        Arc::new(store),
        &env_var,
        Arc::new(SystemClock),
        Arc::new(DirSink(dir.join("videos"))),
    )
    .with_trace_prompts(trace_prompts()))
}

/// The async runtime (two worker threads) for the commands that call backends or serve HTTP.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// `GENROUTE_TRACE_PROMPTS=1` lets traces carry prompt text (off by default).
pub fn trace_prompts() -> bool {
    std::env::var("GENROUTE_TRACE_PROMPTS").is_ok_and(|v| v == "1" || v == "true")
}
