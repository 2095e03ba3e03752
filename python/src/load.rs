//! The `Policy` class's data and how YAML becomes one: reading a file (with Python's
//! `OSError` kinds), loading with the GIL released, and `check()`, which loads without
//! raising.
//!
//! Why the struct is here and its methods are in `policy`: the classes bound to a policy
//! (`Request`, `Condition`, `Router`) take a `Policy` and so sit above this, while
//! `Policy.decide`, `.explain` and `.condition` build those classes and so sit above them.
//! This module uses only `convert`, `errors` and `diagnostic`.

use std::sync::Arc;

use genroute_core::{LoadOptions, Source};
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyPermissionError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::convert::Env;
use crate::diagnostic::diagnostics;
use crate::errors;

/// A loaded, checked policy. Immutable and safe to share between threads.
#[pyclass(frozen, module = "genroute")]
pub struct Policy {
    pub inner: Arc<genroute_core::Policy>,
}

/// Reads a policy file, with the path in the error.
pub fn read(path: &str) -> PyResult<String> {
    std::fs::read_to_string(path).map_err(|e| {
        let message = format!("cannot read `{path}`: {e}");
        match e.kind() {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
            std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(message),
            _ => PyOSError::new_err(message),
        }
    })
}

/// Loads a policy with the GIL released (loading and checking a policy takes a fraction of a
/// millisecond to a few milliseconds, and generates the rules' machine code).
pub fn load(py: Python<'_>, name: String, text: String, env: Env) -> PyResult<Policy> {
    let result = py.detach(move || {
        let lookup = |k: &str| env.get(k);
        let loaded =
            genroute_core::Policy::load(Source::new(name, text), &LoadOptions { env: &lookup });
        if let Ok(p) = &loaded {
            p.compile_native();
        }
        loaded
    });
    match result {
        Ok(p) => Ok(Policy { inner: Arc::new(p) }),
        Err(e) => Err(errors::policy_error(py, &e, "policy")),
    }
}

/// Checks a policy without raising: every error (or, for a valid policy, every warning).
/// Give `path`, or `text` (with `name` for the diagnostics).
#[pyfunction]
#[pyo3(signature = (path = None, *, text = None, name = None, env = None))]
pub fn check(
    py: Python<'_>,
    path: Option<std::path::PathBuf>,
    text: Option<String>,
    name: Option<String>,
    env: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyList>> {
    let env = Env::from_py(env)?;
    let (name, text) = match (path, text) {
        (Some(p), None) => {
            let n = p.display().to_string();
            let t = read(&n)?;
            (name.unwrap_or(n), t)
        }
        (None, Some(t)) => (name.unwrap_or_else(|| "policy.yaml".into()), t),
        _ => {
            return Err(PyTypeError::new_err(
                "check: give either a path or text=, not both",
            ))
        }
    };
    let result = py.detach(move || {
        let lookup = |k: &str| env.get(k);
        genroute_core::Policy::load(
            Source::new(name.clone(), text),
            &LoadOptions { env: &lookup },
        )
        .map(|p| (p.source_name.clone(), p.warnings.clone()))
        .map_err(|e| (e.source.name.clone(), e.diagnostics))
    });
    let (file, list) = match result {
        Ok(v) | Err(v) => v,
    };
    Ok(diagnostics(py, &file, &list)?.unbind())
}
