//! What several commands share: reading a policy, finding and opening the ledger, building a
//! router, starting the async runtime.
//!
//! Each helper is here once so that every command reads files, names the data directory and
//! reports a broken policy in the same words. None of them decides anything: they locate and
//! open what the library needs, and turn its errors into one-line messages.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use genroute::exec::{DirSink, Router, SystemClock};
use genroute::store::guard::{self, Guarded};
use genroute::store::redis::RedisStore;
use genroute::store::sqlite::SqliteStore;
use genroute::store::Store;
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
    genroute::exec::data_dir(flag)
}

/// Where the ledger is and how long each of its calls may take: `--store`, `--data-dir` and
/// `--store-timeout`, shared by the commands that read or write the ledger.
#[derive(clap::Args, Clone)]
pub struct StoreArgs {
    /// Store: sqlite:PATH, redis://HOST:PORT/DB or
    /// redis-cluster://HOST:PORT[,HOST:PORT...] (default: SQLite in the data directory).
    #[arg(long)]
    pub store: Option<String>,
    /// Data directory for the default SQLite store and saved videos (default:
    /// $GENROUTE_DATA_DIR, else the user's data directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Deadline of each store call, e.g. 2s or 500ms; past it the call fails (closed:
    /// nothing is spent).
    #[arg(long, default_value = "2s", value_parser = duration)]
    pub store_timeout: Duration,
}

/// Parses a duration such as `2s`, `500ms` or `1m`.
pub fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration such as 2s, 500ms or 1m ({e})"))
}

impl StoreArgs {
    /// The ledger in a data directory only (`--data-dir`), for commands that have no
    /// `--store`.
    pub fn in_dir(data_dir: Option<PathBuf>) -> StoreArgs {
        StoreArgs {
            store: None,
            data_dir,
            store_timeout: guard::DEFAULT_TIMEOUT,
        }
    }

    /// The data directory.
    pub fn dir(&self) -> PathBuf {
        data_dir(self.data_dir.clone())
    }

    /// Opens the store, behind its guard (a deadline on every call).
    pub async fn open(&self) -> Result<Arc<Guarded>, String> {
        Ok(Arc::new(Guarded::new(
            self.open_bare().await?,
            self.store_timeout,
        )))
    }

    /// Opens the store without a guard (for the server, which puts its own in front). Redis
    /// is reached within the deadline or not at all.
    pub async fn open_bare(&self) -> Result<Arc<dyn Store>, String> {
        Ok(match self.store.as_deref() {
            None => {
                let dir = self.dir();
                std::fs::create_dir_all(&dir).map_err(|e| {
                    format!("cannot create data directory `{}`: {e}", dir.display())
                })?;
                Arc::new(
                    SqliteStore::open(&dir.join("ledger.sqlite3"), self.store_timeout)
                        .map_err(|e| e.to_string())?,
                )
            }
            Some(s) if s.starts_with("sqlite:") => {
                let path = PathBuf::from(&s["sqlite:".len()..]);
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| format!("cannot create `{}`: {e}", parent.display()))?;
                }
                Arc::new(
                    SqliteStore::open(&path, self.store_timeout).map_err(|e| e.to_string())?,
                )
            }
            Some(s) if s.starts_with("redis://") || s.starts_with("rediss://") || s.starts_with("redis-cluster://") => {
                Arc::new(
                    RedisStore::open(s, self.store_timeout)
                        .await
                        .map_err(|e| e.to_string())?,
                )
            }
            Some(other) => {
                return Err(format!(
                    "--store: `{}` is not sqlite:PATH, redis://HOST:PORT/DB or redis-cluster://HOST:PORT[,HOST:PORT...]",
                    genroute::store::redis::redact(other)
                ))
            }
        })
    }
}

/// A router over the ledger of `store`, saving videos under the data directory's `videos`,
/// with the system clock and the process environment.
pub async fn router(policy: Policy, store: &StoreArgs) -> Result<Router, String> {
    let ledger: Arc<dyn Store> = store.open().await?;
    Ok(Router::new(
        Arc::new(policy),
        ledger,
        &env_var,
        Arc::new(SystemClock),
        Arc::new(DirSink(store.dir().join("videos"))),
    )
    .with_trace_prompts(trace_prompts()))
}

/// Runs `f` to completion on a fresh [`runtime`].
pub fn block_on<T>(f: impl std::future::Future<Output = Result<T, String>>) -> Result<T, String> {
    runtime()?.block_on(f)
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
