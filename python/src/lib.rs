//! `genroute` for Python: the rule engine, its explanations and its router, as a native module.
//!
//! Everything here is a thin layer over the Rust library: a Python call converts its
//! arguments (dicts, `decimal.Decimal`, `datetime`), calls the very function the CLI and the
//! server call, and converts the answer back through the same serde types, so a decision,
//! an explanation or a generation has one shape in every front end.
//!
//! Why these choices:
//! - Every class is `frozen` (immutable after construction) and `Send + Sync`, so one policy
//!   or router can be shared by any number of threads, with or without the GIL
//!   (`gil_used = false`: the module declares itself safe for free-threaded Python).
//! - Money crosses the boundary as `decimal.Decimal` only: a float is refused with a
//!   `TypeError`, because `0.1 + 0.2 != 0.3` in floats and a budget check must not drift.
//! - Waiting (a backend call, a store) happens with the GIL released (`py.detach`),
//!   and `await router.generate(...)` runs on the Rust tokio runtime: cancelling the asyncio
//!   task drops the Rust future.
//! - Errors are exception classes with fields (`diagnostics`, `field`, `explanation`),
//!   never a `RuntimeError` holding JSON text; and no panic crosses into Python: PyO3 turns
//!   one into `pyo3_runtime.PanicException`, and the library is written not to panic on
//!   input.
//!
//! The modules, bottom to top (each uses only those before it): `ser` (the way out:
//! `Decimal`s, dicts, JSON text), `diagnostic`, `errors`, `convert` (the way in), `load` (the
//! `Policy` struct and loading), `input` (`Request`, `State`), `answer`, `condition`,
//! `policy` (`Policy`'s methods), `router`, `bench`.

use pyo3::prelude::*;

mod answer;
mod bench;
mod condition;
mod convert;
mod diagnostic;
mod errors;
mod input;
mod load;
mod policy;
mod router;
mod ser;

/// The native module, imported as `genroute._genroute` and re-exported by `genroute`.
#[pymodule(gil_used = false)]
fn _genroute(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("DEMO_POLICY", genroute_core::DEMO_POLICY)?;
    m.add("EXAMPLE_POLICY", genroute_core::EXAMPLE_POLICY)?;
    errors::register(py, m)?;
    m.add_class::<load::Policy>()?;
    m.add_class::<input::Request>()?;
    m.add_class::<input::State>()?;
    m.add_class::<answer::Decision>()?;
    m.add_class::<answer::Explanation>()?;
    m.add_class::<answer::RuleTrace>()?;
    m.add_class::<answer::ClauseTrace>()?;
    m.add_class::<answer::BackendTrace>()?;
    m.add_class::<diagnostic::Diagnostic>()?;
    m.add_class::<policy::Name>()?;
    m.add_class::<condition::Condition>()?;
    m.add_class::<router::Router>()?;
    m.add_class::<router::Generation>()?;
    m.add_class::<router::Attempt>()?;
    m.add_class::<router::Budget>()?;
    m.add_function(wrap_pyfunction!(load::check, m)?)?;
    // Timing helpers for python/bench, kept out of `__all__` and the stubs.
    m.setattr("_bench_decide", wrap_pyfunction!(bench::_bench_decide, m)?)?;
    m.setattr(
        "_bench_generate",
        wrap_pyfunction!(bench::_bench_generate, m)?,
    )?;
    m.setattr(
        "_bench_generate_standalone",
        wrap_pyfunction!(bench::_bench_generate_standalone, m)?,
    )?;
    Ok(())
}
