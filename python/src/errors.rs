//! The exception tree, and the one place Rust errors become Python exceptions.
//!
//! ```text
//! genroute.Error
//!  ├── PolicyError         .diagnostics: list[Diagnostic]   (a policy or condition that does not load)
//!  ├── RequestError        .field, .reason                   (a request or state value refused)
//!  ├── EvaluationError                                       (a standalone condition hit a runtime error)
//!  ├── NoBackendAvailable  .explanation: Explanation         (nothing is eligible)
//!  │    └── BudgetExceeded                                   (... because of the budget)
//!  ├── GenerationFailed    .generation: Generation           (every backend in the chain failed)
//!  └── StoreError          .generation: Generation | None    (the store failed)
//! ```
//!
//! Each exception's message is the one line the CLI prints for the same error; the fields
//! carry the structure, so nobody parses messages. Messages never hold a secret: API keys are
//! held by the library in a type that prints as `***`, and store URLs are redacted.
//!
//! Near the bottom of the crate, since every layer raises: it uses only `diagnostic` (the
//! objects in `PolicyError.diagnostics`). The exceptions that carry an answer
//! (`NoBackendAvailable`, `GenerationFailed`, `StoreError`) are given it, built by the caller.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyList;

create_exception!(
    genroute,
    Error,
    PyException,
    "The base of every error genroute raises."
);
create_exception!(
    genroute,
    PolicyError,
    Error,
    "A policy (or a standalone condition) that does not load; `.diagnostics` lists every problem with its place."
);
create_exception!(
    genroute,
    RequestError,
    Error,
    "A request or state value that was refused; `.field` names it and `.reason` says what to give instead."
);
create_exception!(
    genroute,
    EvaluationError,
    Error,
    "A standalone condition that could not be evaluated (division by zero, an unset field, ...)."
);
create_exception!(
    genroute,
    NoBackendAvailable,
    Error,
    "No backend is eligible for the request; `.explanation` says why for every backend."
);
create_exception!(
    genroute,
    BudgetExceeded,
    NoBackendAvailable,
    "No backend is eligible because the monthly budget stops them; `.explanation` has the figures."
);
create_exception!(
    genroute,
    GenerationFailed,
    Error,
    "Every backend in the chain was tried and none produced a video; `.generation` has every attempt."
);
create_exception!(
    genroute,
    StoreError,
    Error,
    "The ledger store failed or timed out, so nothing was spent; `.generation` has the attempts made, if any."
);

/// Adds the exception classes to the module, with class-level defaults for their fields (so
/// that the attributes exist on the class, as the stubs say, before any instance sets them).
pub fn register(py: Python<'_>, m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("Error", py.get_type::<Error>())?;
    m.add("PolicyError", py.get_type::<PolicyError>())?;
    m.add("RequestError", py.get_type::<RequestError>())?;
    m.add("EvaluationError", py.get_type::<EvaluationError>())?;
    m.add("NoBackendAvailable", py.get_type::<NoBackendAvailable>())?;
    m.add("BudgetExceeded", py.get_type::<BudgetExceeded>())?;
    m.add("GenerationFailed", py.get_type::<GenerationFailed>())?;
    m.add("StoreError", py.get_type::<StoreError>())?;
    py.get_type::<PolicyError>()
        .setattr("diagnostics", PyList::empty(py))?;
    py.get_type::<RequestError>().setattr("field", "")?;
    py.get_type::<RequestError>().setattr("reason", "")?;
    py.get_type::<NoBackendAvailable>()
        .setattr("explanation", py.None())?;
    py.get_type::<GenerationFailed>()
        .setattr("generation", py.None())?;
    py.get_type::<StoreError>()
        .setattr("generation", py.None())?;
    Ok(())
}

/// An exception of type `T` with `message`, and its fields set.
pub fn with_fields<T: pyo3::PyTypeInfo>(
    py: Python<'_>,
    message: String,
    fields: &[(&str, Bound<'_, PyAny>)],
) -> PyErr {
    let err = PyErr::new::<T, _>(message);
    for (name, value) in fields {
        if let Err(e) = err.value(py).setattr(*name, value) {
            return e;
        }
    }
    err
}

/// A request (or state) value refused: `field` and how to fix it.
pub fn request_error(py: Python<'_>, field: &str, reason: &str) -> PyErr {
    with_fields::<RequestError>(
        py,
        format!("request field `{field}`: {reason}"),
        &[
            (
                "field",
                field
                    .into_pyobject(py)
                    .map(|s| s.into_any())
                    .unwrap_or_else(|_| py.None().into_bound(py)),
            ),
            (
                "reason",
                reason
                    .into_pyobject(py)
                    .map(|s| s.into_any())
                    .unwrap_or_else(|_| py.None().into_bound(py)),
            ),
        ],
    )
}

/// The library's request error as a Python one.
pub fn from_request_error(py: Python<'_>, e: &genroute_core::RequestError) -> PyErr {
    request_error(py, &e.field, &e.message)
}

/// A policy that failed to load: the rendered diagnostics as the message (as `genroute check`
/// prints them, without colour) and the diagnostics as objects.
pub fn policy_error(py: Python<'_>, e: &genroute_core::LoadError, what: &str) -> PyErr {
    let diagnostics = crate::diagnostic::diagnostics(py, &e.source.name, &e.diagnostics);
    let diagnostics = match diagnostics {
        Ok(d) => d,
        Err(err) => return err,
    };
    let n = e.diagnostics.len();
    let first = e
        .diagnostics
        .first()
        .map(|d| d.message.clone())
        .unwrap_or_default();
    let message = format!(
        "`{}` is not a valid {what} ({n} error{}; first: {first})\n{}",
        e.source.name,
        if n == 1 { "" } else { "s" },
        e
    );
    with_fields::<PolicyError>(py, message, &[("diagnostics", diagnostics.into_any())])
}

/// A store failure.
pub fn store_error(py: Python<'_>, message: String, generation: Option<Bound<'_, PyAny>>) -> PyErr {
    let generation = generation.unwrap_or_else(|| py.None().into_bound(py));
    with_fields::<StoreError>(py, message, &[("generation", generation)])
}
