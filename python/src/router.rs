//! `Router`: decide, reserve, call, fall back, commit, on the library's router and ledger.
//!
//! `await router.generate(request)` runs the library's `Router::generate` on the tokio
//! runtime of pyo3-async-runtimes (`future_into_py`): the asyncio future completes when the
//! Rust future does, and cancelling the asyncio task drops the Rust future, which stops the
//! walk where it is (a reservation already sent stays in the ledger until it settles or
//! expires, exactly as when a server's client disconnects). `router.generate_sync(request)`
//! blocks on the same future with the GIL released, waking every 50 ms to let Ctrl-C through
//! (which cancels the future the same way).
//!
//! The top of the crate with `policy`: it uses `load` (the `Policy` it is built on), `input`,
//! `answer` (the explanation in `NoBackendAvailable`), `convert`, `errors` and `ser`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use genroute_exec::{DirSink, SystemClock};
use genroute_store::guard::Guarded;
use genroute_store::memory::MemoryStore;
use genroute_store::redis::RedisStore;
use genroute_store::sqlite::SqliteStore;
use genroute_store::{Month, Store};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::answer::Explanation;
use crate::convert::Env;
use crate::errors::{self, with_fields, BudgetExceeded, GenerationFailed, NoBackendAvailable};
use crate::input::State;
use crate::load::Policy;
use crate::ser::{decimal_from_fixed, json, opt_decimal, py_str, to_py};

/// The runtime every router runs on (pyo3-async-runtimes' tokio runtime: multi-threaded,
/// one worker per core, started on first use).
fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Opens a store by URL, as `genroute serve --store` does.
async fn open_store(url: &str, timeout: Duration) -> Result<Arc<dyn Store>, String> {
    Ok(if url == "memory" {
        Arc::new(MemoryStore::new())
    } else if let Some(path) = url.strip_prefix("sqlite:") {
        let path = PathBuf::from(path);
        if path.as_os_str().is_empty() {
            return Err(
                "store `sqlite:` has no path; give sqlite:PATH, e.g. sqlite:ledger.sqlite3".into(),
            );
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create `{}`: {e}", parent.display()))?;
        }
        Arc::new(SqliteStore::open(&path, timeout).map_err(|e| e.to_string())?)
    } else if url.starts_with("redis://")
        || url.starts_with("rediss://")
        || url.starts_with("redis-cluster://")
    {
        Arc::new(
            RedisStore::open(url, timeout)
                .await
                .map_err(|e| e.to_string())?,
        )
    } else {
        return Err(format!(
            "store `{}` is not \"memory\", \"sqlite:PATH\", \"redis://HOST:PORT/DB\" or \"redis-cluster://HOST:PORT[,HOST:PORT...]\"",
            genroute_store::redis::redact(url)
        ));
    })
}

/// Where videos go when `videos_dir` is not given: the CLI's data directory's `videos`
/// (`$GENROUTE_DATA_DIR`, else the user's data directory).
fn default_videos_dir() -> PathBuf {
    genroute_exec::data_dir(None).join("videos")
}

/// Runs requests for real: a policy, a store, API keys and a place for videos.
#[pyclass(frozen, module = "genroute")]
pub struct Router {
    policy: Arc<genroute_core::Policy>,
    policy_obj: Py<Policy>,
    inner: Arc<genroute_exec::Router>,
    store: Arc<dyn Store>,
    store_name: String,
}

/// How a generation ended, before Python sees it.
enum Outcome {
    Served(genroute_exec::Generation),
    /// Nothing eligible: the explanation, and whether the budget is the reason.
    Nothing(Option<Box<genroute_core::Explanation>>, bool),
    /// Every backend failed.
    Failed(genroute_exec::Generation),
    /// The store failed before or between calls.
    Store(String, Option<genroute_exec::Generation>),
}

async fn run(router: Arc<genroute_exec::Router>, request: genroute_core::Request) -> Outcome {
    match router.generate(&request).await {
        Err(e) => Outcome::Store(e.to_string(), None),
        Ok(g) if g.video.is_some() => Outcome::Served(g),
        Ok(g)
            if g.attempts
                .iter()
                .any(|a| a.outcome == genroute_exec::LEDGER_ERROR) =>
        {
            let message = g
                .attempts
                .iter()
                .rev()
                .find_map(|a| a.message.clone())
                .unwrap_or_else(|| "the ledger store failed".into());
            Outcome::Store(message, Some(g))
        }
        Ok(g) if g.attempts.is_empty() => match router.explain(&request).await {
            Ok((e, _)) => {
                let budget = e.unserved() == genroute_core::explain::Unserved::Budget;
                Outcome::Nothing(Some(Box::new(e)), budget)
            }
            Err(_) => Outcome::Nothing(None, false),
        },
        Ok(g) => Outcome::Failed(g),
    }
}

fn finish(py: Python<'_>, o: Outcome) -> PyResult<Generation> {
    match o {
        Outcome::Served(g) => Ok(Generation { inner: g }),
        Outcome::Nothing(e, budget) => {
            let (message, explanation) = match e {
                Some(e) => (
                    format!("no backend is eligible for this request: {}", e.summary),
                    Bound::new(py, Explanation { inner: *e })?.into_any(),
                ),
                None => (
                    "no backend is eligible for this request".to_string(),
                    py.None().into_bound(py),
                ),
            };
            let fields = [("explanation", explanation)];
            Err(if budget {
                with_fields::<BudgetExceeded>(py, message, &fields)
            } else {
                with_fields::<NoBackendAvailable>(py, message, &fields)
            })
        }
        Outcome::Failed(g) => {
            let tried: Vec<String> = g
                .attempts
                .iter()
                .map(|a| format!("{} {}", a.backend, a.outcome))
                .collect();
            let message = format!(
                "every backend failed ({}); nothing was produced",
                tried.join(", ")
            );
            let generation = Bound::new(py, Generation { inner: g })?.into_any();
            Err(with_fields::<GenerationFailed>(
                py,
                message,
                &[("generation", generation)],
            ))
        }
        Outcome::Store(message, g) => {
            let generation = match g {
                Some(g) => Some(Bound::new(py, Generation { inner: g })?.into_any()),
                None => None,
            };
            Err(errors::store_error(py, message, generation))
        }
    }
}

impl Router {
    /// The library's router and a validated request, for `bench`.
    pub fn prepare(
        &self,
        request: &Bound<'_, PyAny>,
    ) -> PyResult<(Arc<genroute_exec::Router>, genroute_core::Request)> {
        let req = crate::input::request(&self.policy, request)?;
        Ok((self.inner.clone(), (*req).clone()))
    }
}

#[pymethods]
impl Router {
    /// `store`: `"memory"`, `"sqlite:PATH"`, `"redis://HOST:PORT/DB"` or
    /// `"redis-cluster://HOST:PORT[,...]"`. `env` supplies API keys (`None`: the process
    /// environment). `videos_dir` is where returned video bytes are written.
    /// `store_timeout` (seconds) bounds every ledger call; past it nothing is spent.
    #[new]
    #[pyo3(
        signature = (policy, store = "memory".to_string(), *, env = None, videos_dir = None, store_timeout = 2.0),
        text_signature = "(policy, store='memory', *, env=None, videos_dir=None, store_timeout=2.0)"
    )]
    fn new(
        py: Python<'_>,
        policy: Bound<'_, Policy>,
        store: String,
        env: Option<&Bound<'_, PyAny>>,
        videos_dir: Option<PathBuf>,
        store_timeout: f64,
    ) -> PyResult<Router> {
        if !(store_timeout.is_finite() && store_timeout > 0.0 && store_timeout <= 3600.0) {
            return Err(PyValueError::new_err(
                "store_timeout: give seconds between 0 and 3600, e.g. 2.0",
            ));
        }
        let timeout = Duration::from_secs_f64(store_timeout);
        let env = Env::from_py(env)?;
        let p = policy.get().inner.clone();
        let videos = videos_dir.unwrap_or_else(default_videos_dir);
        let url = store.clone();
        let opened = py.detach(move || {
            let rt = runtime();
            let _enter = rt.enter();
            let bare = rt.block_on(open_store(&url, timeout))?;
            let store: Arc<dyn Store> = Arc::new(Guarded::new(bare, timeout));
            let lookup = |k: &str| env.get(k);
            let router = genroute_exec::Router::new(
                p.clone(),
                store.clone(),
                &lookup,
                Arc::new(SystemClock),
                Arc::new(DirSink(videos)),
            );
            Ok::<_, String>((router, store))
        });
        let (router, store_arc) = opened.map_err(|m| errors::store_error(py, m, None))?;
        Ok(Router {
            policy: policy.get().inner.clone(),
            policy_obj: policy.unbind(),
            inner: Arc::new(router),
            store: store_arc,
            store_name: genroute_store::redis::redact(&store),
        })
    }

    /// The policy in use.
    #[getter]
    fn policy(&self, py: Python<'_>) -> Py<Policy> {
        self.policy_obj.clone_ref(py)
    }

    /// Generates a video: decide, then walk the chain (reserve, call, commit or release)
    /// until a backend succeeds. Returns an awaitable that runs on the Rust runtime;
    /// cancelling the asyncio task cancels the generation. Raises `NoBackendAvailable`
    /// (or `BudgetExceeded`), `GenerationFailed` or `StoreError`.
    fn generate<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let req = crate::input::request(&self.policy, request)?;
        let req: genroute_core::Request = (*req).clone();
        let router = self.inner.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let o = run(router, req).await;
            Python::attach(|py| finish(py, o))
        })
    }

    /// `generate`, blocking: the GIL is released while the generation runs, and Ctrl-C
    /// (any pending signal handler that raises) cancels it.
    fn generate_sync(&self, py: Python<'_>, request: &Bound<'_, PyAny>) -> PyResult<Generation> {
        let req = crate::input::request(&self.policy, request)?;
        let req: genroute_core::Request = (*req).clone();
        let router = self.inner.clone();
        let o = block_interruptibly(py, run(router, req))?;
        finish(py, o)
    }

    /// This month's figures from the ledger (`genroute budget show`): spent, committed, in
    /// doubt, reserved, budget, remaining. `month` is `YYYY-MM` (default: this month, UTC).
    #[pyo3(signature = (month = None))]
    fn budget(&self, py: Python<'_>, month: Option<&str>) -> PyResult<Budget> {
        let now = chrono::Utc::now();
        let month = match month {
            None => Month::of(now),
            Some(m) => Month::parse(m).ok_or_else(|| {
                PyValueError::new_err(format!("month: `{m}` is not YYYY-MM, e.g. 2026-11"))
            })?,
        };
        let store = self.store.clone();
        let policy = self.policy.clone();
        let summary = block_interruptibly(py, async move {
            genroute_exec::budget_summary(&*store, &policy, month, now).await
        })?;
        summary
            .map(|s| Budget { inner: s })
            .map_err(|e| errors::store_error(py, e.to_string(), None))
    }

    /// The live state decisions see: the month's spend (committed plus reserved) and the
    /// breakers, from the ledger; pass it to `Policy.decide` or `Policy.explain`.
    fn state(&self, py: Python<'_>) -> PyResult<State> {
        let router = self.inner.clone();
        let s = block_interruptibly(py, async move { router.state(0).await })?;
        match s {
            Ok((s, _)) => Ok(State::from_state(&self.policy, &s)),
            Err(e) => Err(errors::store_error(py, e.to_string(), None)),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "<genroute.Router policy={:?} store={:?}>",
            self.policy.source_name, self.store_name
        )
    }
}

/// Runs `fut` on the runtime with the GIL released, checking for signals (Ctrl-C) every
/// 50 ms; a raised signal drops the future and is returned.
fn block_interruptibly<F>(py: Python<'_>, fut: F) -> PyResult<F::Output>
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    let rt = runtime();
    let mut fut = std::pin::pin!(fut);
    loop {
        let step = py.detach(|| {
            rt.block_on(async {
                tokio::time::timeout(Duration::from_millis(50), fut.as_mut()).await
            })
        });
        match step {
            Ok(out) => return Ok(out),
            Err(_elapsed) => py.check_signals()?,
        }
    }
}

/// One attempt in a generation.
#[pyclass(frozen, module = "genroute")]
pub struct Attempt {
    inner: genroute_exec::Attempt,
}

#[pymethods]
impl Attempt {
    #[getter]
    fn backend(&self) -> &str {
        &self.inner.backend
    }
    #[getter]
    fn model(&self) -> Option<&str> {
        self.inner.model.as_deref()
    }
    /// `success`, `retryable`, `terminal`, `content_rejected`, `no_video`, or why it was not
    /// called: `breaker_open`, `over_budget`, `not_configured`, `ledger_error`.
    #[getter]
    fn outcome(&self) -> &str {
        &self.inner.outcome
    }
    /// Wall-clock milliseconds of the call.
    #[getter]
    fn latency_ms(&self) -> u64 {
        self.inner.latency_ms
    }
    /// The simulated seconds, for simulated backends.
    #[getter]
    fn simulated_seconds<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        opt_decimal(py, self.inner.simulated_seconds)
    }
    /// Money committed (or kept in doubt) for this attempt.
    #[getter]
    fn cost_usd<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        decimal_from_fixed(py, self.inner.cost_usd)
    }
    #[getter]
    fn message(&self) -> Option<&str> {
        self.inner.message.as_deref()
    }
    /// True when the call may have started a billable job whose outcome is unknown.
    #[getter]
    fn in_doubt(&self) -> bool {
        self.inner.in_doubt
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "<genroute.Attempt {} {} {} ms cost_usd=Decimal('{}')>",
            self.inner.backend, self.inner.outcome, self.inner.latency_ms, self.inner.cost_usd
        )
    }
}

/// The result of a generation, as `genroute generate --format json` prints it.
#[pyclass(frozen, module = "genroute")]
pub struct Generation {
    inner: genroute_exec::Generation,
}

#[pymethods]
impl Generation {
    /// The request id (also in the ledger).
    #[getter]
    fn request_id(&self) -> &str {
        &self.inner.request_id
    }
    /// The backend that produced the video.
    #[getter]
    fn backend(&self) -> Option<&str> {
        self.inner.backend.as_deref()
    }
    #[getter]
    fn model(&self) -> Option<&str> {
        self.inner.model.as_deref()
    }
    /// URI of the video, or the path it was written to.
    #[getter]
    fn video(&self) -> Option<&str> {
        self.inner.video.as_deref()
    }
    /// Total committed for this request (in-doubt attempts included).
    #[getter]
    fn cost_usd<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        decimal_from_fixed(py, self.inner.cost_usd)
    }
    /// Quality reported by the backend, if any.
    #[getter]
    fn quality<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        opt_decimal(py, self.inner.quality)
    }
    /// Every attempt, in order.
    #[getter]
    fn attempts(&self) -> Vec<Attempt> {
        self.inner
            .attempts
            .iter()
            .map(|a| Attempt { inner: a.clone() })
            .collect()
    }
    /// Why nothing was produced, when nothing was.
    #[getter]
    fn error(&self) -> Option<&str> {
        self.inner.error.as_deref()
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }
    #[pyo3(signature = (*, pretty = false))]
    fn to_json(&self, pretty: bool) -> PyResult<String> {
        json(&self.inner, pretty)
    }
    fn __repr__(&self) -> String {
        format!(
            "<genroute.Generation backend={} model={} cost_usd=Decimal('{}') attempts={}>",
            py_str(self.inner.backend.as_deref()),
            py_str(self.inner.model.as_deref()),
            self.inner.cost_usd,
            self.inner.attempts.len()
        )
    }
}

/// A month's budget figures from the ledger.
#[pyclass(frozen, module = "genroute")]
pub struct Budget {
    inner: genroute_store::Summary,
}

#[pymethods]
impl Budget {
    /// Committed plus in doubt.
    #[getter]
    fn spent_usd<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        decimal_from_fixed(py, self.inner.spent_usd)
    }
    /// Committed.
    #[getter]
    fn committed_usd<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        decimal_from_fixed(py, self.inner.committed_usd)
    }
    /// Kept because a call's outcome is unknown.
    #[getter]
    fn in_doubt_usd<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        decimal_from_fixed(py, self.inner.in_doubt_usd)
    }
    /// Open reservations.
    #[getter]
    fn reserved_usd<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        decimal_from_fixed(py, self.inner.reserved_usd)
    }
    /// The monthly budget.
    #[getter]
    fn budget_usd<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        decimal_from_fixed(py, self.inner.budget_usd)
    }
    /// Budget minus everything counted (never below zero).
    #[getter]
    fn remaining_usd<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        decimal_from_fixed(py, self.inner.remaining_usd)
    }
    /// The policy's cost threshold.
    #[getter]
    fn cost_threshold_usd<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        decimal_from_fixed(py, self.inner.cost_threshold_usd)
    }
    /// Spent as a percentage of the budget.
    #[getter]
    fn utilization_percent<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        decimal_from_fixed(py, self.inner.utilization_percent)
    }
    /// `YYYY-MM`.
    #[getter]
    fn month(&self) -> &str {
        &self.inner.month
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }
    #[pyo3(signature = (*, pretty = false))]
    fn to_json(&self, pretty: bool) -> PyResult<String> {
        json(&self.inner, pretty)
    }
    fn __repr__(&self) -> String {
        format!(
            "<genroute.Budget {} spent_usd=Decimal('{}') remaining_usd=Decimal('{}')>",
            self.inner.month, self.inner.spent_usd, self.inner.remaining_usd
        )
    }
}
