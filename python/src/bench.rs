//! Timing helpers for `python/bench`: the same Rust calls the Python methods make, looped in
//! Rust, so that one benchmark run can put "from Python" beside "in Rust" on the same machine
//! and build. Not part of the API (underscore names, not in the stubs). It sits on top: it
//! uses `input`, `load` and `router`, and nothing uses it but the module.

use std::time::Instant;

use pyo3::prelude::*;

use crate::input::{request, state};
use crate::load::Policy;
use crate::router::Router;

/// Nanoseconds per `Policy::decide` of the Rust library, over `n` calls (request and state
/// converted once, as a Rust caller would hold them). `decide_into` reuses one decision, as
/// the server does.
#[pyfunction]
#[pyo3(signature = (policy, req, st, n))]
pub fn _bench_decide(
    policy: &Policy,
    req: &Bound<'_, PyAny>,
    st: Option<&Bound<'_, PyAny>>,
    n: u32,
) -> PyResult<f64> {
    let r = request(&policy.inner, req)?;
    let s = state(&policy.inner, st)?;
    let p = &policy.inner;
    let mut out = genroute_core::Decision::default();
    let started = Instant::now();
    for _ in 0..n {
        p.decide_into(std::hint::black_box(&r), std::hint::black_box(&s), &mut out);
        std::hint::black_box(&out);
    }
    Ok(started.elapsed().as_nanos() as f64 / f64::from(n.max(1)))
}

/// Nanoseconds per `Router::generate` of the Rust library, awaited `n` times in a row on the
/// module's tokio runtime.
#[pyfunction]
#[pyo3(signature = (router, req, n))]
pub fn _bench_generate(
    py: Python<'_>,
    router: &Router,
    req: &Bound<'_, PyAny>,
    n: u32,
) -> PyResult<f64> {
    let (inner, request) = router.prepare(req)?;
    let rt = pyo3_async_runtimes::tokio::get_runtime();
    let ns = py.detach(move || {
        rt.block_on(async move {
            let started = Instant::now();
            for _ in 0..n {
                let g = inner.generate(&request).await;
                std::hint::black_box(&g);
            }
            started.elapsed().as_nanos() as f64 / f64::from(n.max(1))
        })
    });
    Ok(ns)
}

/// Nanoseconds per `Router::generate` set up as `benches/execute.rs` sets it up: a router of
/// its own over a bare in-memory store (no deadline guard), on a current-thread runtime.
#[pyfunction]
pub fn _bench_generate_standalone(
    py: Python<'_>,
    policy: &Policy,
    req: &Bound<'_, PyAny>,
    n: u32,
) -> PyResult<f64> {
    use std::sync::Arc;
    let r: genroute_core::Request = (*request(&policy.inner, req)?).clone();
    let p = policy.inner.clone();
    py.detach(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))?;
        let router = genroute_exec::Router::new(
            p,
            Arc::new(genroute_store::memory::MemoryStore::new()),
            &|_| None,
            Arc::new(genroute_exec::SystemClock),
            Arc::new(genroute_exec::DirSink(
                std::env::temp_dir().join("genroute-bench-videos"),
            )),
        );
        let started = Instant::now();
        for _ in 0..n {
            let g = rt.block_on(router.generate(std::hint::black_box(&r)));
            std::hint::black_box(&g);
        }
        Ok(started.elapsed().as_nanos() as f64 / f64::from(n.max(1)))
    })
}
