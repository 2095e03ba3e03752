//! `Diagnostic`: one problem in a policy file, as `genroute check` reports it.
//!
//! Its own module because diagnostics are handed out at two heights: in
//! `PolicyError.diagnostics`, built by `errors` near the bottom of the crate, and by `check()`
//! and `Policy.check()` above it. It uses only `ser`.

use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::ser::{json, to_py};

/// Diagnostics as a list of `Diagnostic`.
pub fn diagnostics<'py>(
    py: Python<'py>,
    file: &str,
    list: &[genroute_core::Diagnostic],
) -> PyResult<Bound<'py, PyList>> {
    PyList::new(
        py,
        list.iter().map(|d| Diagnostic {
            inner: d.clone(),
            file: file.to_string(),
        }),
    )
}

/// One problem in a policy file, with its place.
#[pyclass(frozen, module = "genroute")]
pub struct Diagnostic {
    inner: genroute_core::Diagnostic,
    file: String,
}

#[pymethods]
impl Diagnostic {
    /// `error` or `warning`.
    #[getter]
    fn severity(&self) -> &'static str {
        match self.inner.severity {
            genroute_core::Severity::Error => "error",
            genroute_core::Severity::Warning => "warning",
        }
    }
    /// Stable kebab-case name, e.g. `unknown-name`.
    #[getter]
    fn code(&self) -> &'static str {
        self.inner.code
    }
    /// What is wrong.
    #[getter]
    fn message(&self) -> &str {
        &self.inner.message
    }
    /// The label of the underlined text.
    #[getter]
    fn label(&self) -> &str {
        &self.inner.label
    }
    /// How to fix it, when there is a suggestion.
    #[getter]
    fn help(&self) -> Option<&str> {
        self.inner.help.as_deref()
    }
    /// The file (the name the policy was loaded under).
    #[getter]
    fn file(&self) -> &str {
        &self.file
    }
    /// 1-based line, when the problem has a place.
    #[getter]
    fn line(&self) -> Option<usize> {
        self.inner.line
    }
    /// 1-based column, in characters.
    #[getter]
    fn column(&self) -> Option<usize> {
        self.inner.column
    }
    /// As in `genroute check --format json`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }
    #[pyo3(signature = (*, pretty = false))]
    fn to_json(&self, pretty: bool) -> PyResult<String> {
        json(&self.inner, pretty)
    }
    fn __str__(&self) -> String {
        let place = match (self.inner.line, self.inner.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.file),
            _ => self.file.clone(),
        };
        let help = self
            .inner
            .help
            .as_deref()
            .map(|h| format!(" (help: {h})"))
            .unwrap_or_default();
        format!(
            "{place}: {}[{}]: {}{help}",
            self.severity(),
            self.inner.code,
            self.inner.message
        )
    }
    fn __repr__(&self) -> String {
        format!("<genroute.Diagnostic {}>", self.__str__())
    }
}
