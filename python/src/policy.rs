//! `Policy`: loading, checking, deciding and explaining, with its `Diagnostic`s and `Name`s.
//! The inputs are in `input.rs` (`Request`, `State`), the answers in `answer.rs` (`Decision`,
//! `Explanation` and its traces), a lone condition in `condition.rs`.
//!
//! Every result holds the library's own serde type, so `to_json()` is byte for byte what the
//! CLI prints (`genroute explain --format json`) and what the server answers, and
//! `to_dict()` is the same tree with money as `Decimal`.

use std::sync::Arc;

use genroute_core::check::expr::Type;
use genroute_core::check::scope::BUILTIN_NAMES;
use genroute_core::{LoadOptions, Source};
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyPermissionError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyList;
use serde::Serialize;

use crate::answer::*;
use crate::condition::*;
use crate::convert::Env;
use crate::errors::{self};
use crate::ser::to_py;

/// `'text'` or `None`, as Python writes an optional string.
pub fn py_str(v: Option<&str>) -> String {
    match v {
        Some(s) => format!("{s:?}"),
        None => "None".into(),
    }
}

/// Serializes to JSON the way the CLI does (`pretty`) or compactly.
pub(crate) fn json<T: Serialize>(v: &T, pretty: bool) -> PyResult<String> {
    let out = if pretty {
        serde_json::to_string_pretty(v)
    } else {
        serde_json::to_string(v)
    };
    out.map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
}

/// Reads a policy file, with the path in the error.
fn read(path: &str) -> PyResult<String> {
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
fn load(py: Python<'_>, name: String, text: String, env: Env) -> PyResult<Policy> {
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

/// A loaded, checked policy. Immutable and safe to share between threads.
#[pyclass(frozen, module = "genroute")]
pub struct Policy {
    pub inner: Arc<genroute_core::Policy>,
}

#[pymethods]
impl Policy {
    /// Loads a policy file. `env` supplies feature flags (`<PREFIX>_BACKEND_<NAME>_ENABLED`)
    /// and decides which API keys count as set; `None` reads the process environment.
    #[staticmethod]
    #[pyo3(signature = (path, *, env = None))]
    fn from_file(
        py: Python<'_>,
        path: std::path::PathBuf,
        env: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Policy> {
        let env = Env::from_py(env)?;
        let name = path.display().to_string();
        let text = read(&name)?;
        load(py, name, text, env)
    }

    /// Loads a policy from YAML text; `name` is the file name diagnostics and explanations
    /// show.
    #[staticmethod]
    #[pyo3(
        signature = (text, *, name = "policy.yaml".to_string(), env = None),
        text_signature = "(text, *, name='policy.yaml', env=None)"
    )]
    fn from_yaml(
        py: Python<'_>,
        text: String,
        name: String,
        env: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Policy> {
        let env = Env::from_py(env)?;
        load(py, name, text, env)
    }

    /// The built-in demo policy (`policies/demo.yaml`: the seed's four backends, simulated).
    #[staticmethod]
    #[pyo3(signature = (*, env = None))]
    fn demo(py: Python<'_>, env: Option<&Bound<'_, PyAny>>) -> PyResult<Policy> {
        let env = Env::from_py(env)?;
        load(
            py,
            "demo.yaml".into(),
            genroute_core::DEMO_POLICY.into(),
            env,
        )
    }

    /// The file name the policy was loaded under.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.source_name
    }

    /// Backend names, in preference order (ascending `priority`, ties by name): the order
    /// explanations list them in.
    #[getter]
    fn backends(&self) -> Vec<String> {
        self.inner
            .preference_order()
            .iter()
            .map(|&i| self.inner.backends[i as usize].name.clone())
            .collect()
    }

    /// Rule names, in order.
    #[getter]
    fn rules(&self) -> Vec<String> {
        self.inner.rules.iter().map(|r| r.name.clone()).collect()
    }

    /// The lint warnings of this (valid) policy, as `genroute check` prints them. Errors
    /// never reach here: a policy with errors does not load (`PolicyError.diagnostics`).
    fn check(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        Ok(diagnostics(py, &self.inner.source_name, &self.inner.warnings)?.unbind())
    }

    /// Decides which backend serves `request` (a dict of the JSON request's fields or a
    /// `Request`) in `state` (a `State`, a dict of its fields, or `None` for no spend, closed
    /// breakers and the current time).
    #[pyo3(signature = (request, state = None))]
    fn decide(
        &self,
        request: &Bound<'_, PyAny>,
        state: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Decision> {
        let r = crate::input::request(&self.inner, request)?;
        let s = crate::input::state(&self.inner, state)?;
        let d = self.inner.decide(&r, &s);
        Ok(Decision::of(&self.inner, &d))
    }

    /// Decides and explains: every rule with every clause's value, every backend with its
    /// reasons. The same content as `genroute explain --format json`.
    #[pyo3(signature = (request, state = None))]
    fn explain(
        &self,
        request: &Bound<'_, PyAny>,
        state: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Explanation> {
        let r = crate::input::request(&self.inner, request)?;
        let s = crate::input::state(&self.inner, state)?;
        Ok(Explanation {
            inner: self.inner.explain(&r, &s),
        })
    }

    /// The names a condition in this policy can read: the built-in ones, the policy's own
    /// request fields, and `backends.<name>.<property>` for each backend.
    fn names(&self) -> Vec<Name> {
        let mut out: Vec<Name> = BUILTIN_NAMES
            .iter()
            .map(|n| Name {
                name: n.name.to_string(),
                alias: n.alias.map(str::to_string),
                ty: n.ty.to_string(),
                doc: n.doc.to_string(),
            })
            .collect();
        for f in &self.inner.fields {
            out.push(Name {
                name: format!("request.{}", f.name),
                alias: Some(f.name.clone()),
                ty: type_text(&self.inner, f.ty),
                doc: "a field the policy declares under request_fields".into(),
            });
        }
        for b in &self.inner.backends {
            for n in BUILTIN_NAMES
                .iter()
                .filter(|n| n.name.starts_with("backend."))
            {
                out.push(Name {
                    name: format!("backends.{}.{}", b.name, &n.name["backend.".len()..]),
                    alias: None,
                    ty: n.ty.to_string(),
                    doc: format!("{} (of `{}`)", n.doc, b.name),
                });
            }
        }
        out
    }

    /// Compiles a condition against this policy's names. Backend-scoped names (`cost`,
    /// `budget_available`, `breaker`) refer to `target`, as in a rule that targets it.
    #[pyo3(signature = (source, target = None))]
    fn condition(&self, py: Python<'_>, source: &str, target: Option<&str>) -> PyResult<Condition> {
        match self.inner.condition(source, target) {
            Ok(c) => Ok(Condition {
                policy: self.inner.clone(),
                inner: c,
                target: target.map(str::to_string),
            }),
            Err(e) => Err(errors::policy_error(py, &e, "condition")),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "<genroute.Policy {:?}: {} backends, {} rules>",
            self.inner.source_name,
            self.inner.backends.len(),
            self.inner.rules.len()
        )
    }
}

/// A declared field's type, as `genroute names` writes types.
fn type_text(policy: &genroute_core::Policy, ty: Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::Num => "number".into(),
        Type::Money => "money".into(),
        Type::Str => "string".into(),
        Type::Enum(id) => format!("enum {}", policy.enum_values(id).join("|")),
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

/// A name a condition can read.
#[pyclass(frozen, module = "genroute", get_all)]
pub struct Name {
    /// Canonical dotted form, e.g. `budget.monthly_spend`.
    name: String,
    /// The short form accepted without the prefix, if any.
    alias: Option<String>,
    /// Its type, e.g. `money` or `enum quality|balanced|speed`.
    #[pyo3(name = "type")]
    ty: String,
    /// What it means.
    doc: String,
}

#[pymethods]
impl Name {
    fn __repr__(&self) -> String {
        format!("<genroute.Name {} : {}>", self.name, self.ty)
    }
}
