//! What deciding returns: `Decision` and `Explanation` (with its `RuleTrace`, `ClauseTrace`
//! and `BackendTrace`). Each holds the library's own serde type, so `to_json()` is what the
//! CLI prints and the server answers.
//!
//! They are plain records built from the library's answer, so this uses only `ser`; the
//! methods that produce them (`Policy.decide`, `.explain`, the router's errors) sit above.

use crate::ser::{decimal_from_fixed, json, opt_decimal, py_str, to_py};
use genroute_core::Fixed;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde::Serialize;

/// The head of an explanation: the same keys and values as `Explanation.to_dict()` has for
/// them, without the reasons.
#[derive(Serialize, Clone, PartialEq)]
struct DecisionView {
    backend: Option<String>,
    model: Option<String>,
    rule: Option<String>,
    cost_usd: Option<Fixed>,
    fallbacks: Vec<String>,
}

/// Which backend serves a request, with which model, by which rule, at what expected cost,
/// and what to try next.
#[pyclass(frozen, module = "genroute")]
pub struct Decision {
    inner: DecisionView,
}

impl Decision {
    pub(crate) fn of(policy: &genroute_core::Policy, d: &genroute_core::Decision<'_>) -> Decision {
        let name = |i: u16| policy.backends[i as usize].name.clone();
        Decision {
            inner: DecisionView {
                backend: d.backend.map(name),
                model: d.backend.and(d.model.map(str::to_string)),
                rule: d.rule.map(|r| policy.rules[r as usize].name.clone()),
                cost_usd: d.backend.map(|_| d.cost),
                fallbacks: d.fallbacks.iter().map(|&i| name(i)).collect(),
            },
        }
    }
}

#[pymethods]
impl Decision {
    /// The chosen backend, or `None` when no backend is eligible.
    #[getter]
    fn backend(&self) -> Option<&str> {
        self.inner.backend.as_deref()
    }
    /// The model to run (`None`: the backend's default).
    #[getter]
    fn model(&self) -> Option<&str> {
        self.inner.model.as_deref()
    }
    /// The rule that decided, or `None` when the default order did.
    #[getter]
    fn rule(&self) -> Option<&str> {
        self.inner.rule.as_deref()
    }
    /// Expected cost (a `Decimal`), `None` when no backend is eligible.
    #[getter]
    fn cost_usd<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        opt_decimal(py, self.inner.cost_usd)
    }
    /// The backends to try next, in order.
    #[getter]
    fn fallbacks(&self) -> Vec<String> {
        self.inner.fallbacks.clone()
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }
    #[pyo3(signature = (*, pretty = false))]
    fn to_json(&self, pretty: bool) -> PyResult<String> {
        json(&self.inner, pretty)
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<Decision>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }
    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.inner.backend.hash(&mut h);
        self.inner.model.hash(&mut h);
        self.inner.rule.hash(&mut h);
        self.inner.cost_usd.hash(&mut h);
        self.inner.fallbacks.hash(&mut h);
        h.finish()
    }
    fn __repr__(&self) -> String {
        format!(
            "<genroute.Decision backend={} model={} rule={} cost_usd={} fallbacks={:?}>",
            py_str(self.inner.backend.as_deref()),
            py_str(self.inner.model.as_deref()),
            py_str(self.inner.rule.as_deref()),
            self.inner
                .cost_usd
                .map(|c| format!("Decimal('{c}')"))
                .unwrap_or_else(|| "None".into()),
            self.inner.fallbacks
        )
    }
}

/// A decision with everything that led to it.
#[pyclass(frozen, module = "genroute")]
pub struct Explanation {
    pub inner: genroute_core::Explanation,
}

#[pymethods]
impl Explanation {
    #[getter]
    fn backend(&self) -> Option<&str> {
        self.inner.backend.as_deref()
    }
    #[getter]
    fn model(&self) -> Option<&str> {
        self.inner.model.as_deref()
    }
    #[getter]
    fn rule(&self) -> Option<&str> {
        self.inner.rule.as_deref()
    }
    #[getter]
    fn cost_usd<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        opt_decimal(py, self.inner.cost_usd)
    }
    #[getter]
    fn fallbacks(&self) -> Vec<String> {
        self.inner.fallbacks.clone()
    }
    /// One sentence on why.
    #[getter]
    fn summary(&self) -> &str {
        &self.inner.summary
    }
    /// The request values used, defaults filled in (the prompt is left out).
    #[getter]
    fn request<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.request)
    }
    /// The state values used: spend, budget, failures, clock, breakers.
    #[getter]
    fn context<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.context)
    }
    /// Every rule, in order, with its clauses.
    #[getter]
    fn rules(&self) -> Vec<RuleTrace> {
        self.inner
            .rules
            .iter()
            .map(|r| RuleTrace { inner: r.clone() })
            .collect()
    }
    /// Every backend, in preference order, with its eligibility.
    #[getter]
    fn backends(&self) -> Vec<BackendTrace> {
        self.inner
            .backends
            .iter()
            .map(|b| BackendTrace { inner: b.clone() })
            .collect()
    }
    /// The text `genroute explain` prints.
    fn to_text(&self) -> String {
        self.inner.to_text()
    }
    /// The JSON of `genroute explain --format json`, as Python objects (money as Decimal).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }
    /// The JSON of `genroute explain --format json` (`pretty=True`: byte for byte).
    #[pyo3(signature = (*, pretty = false))]
    fn to_json(&self, pretty: bool) -> PyResult<String> {
        json(&self.inner, pretty)
    }
    fn __str__(&self) -> String {
        self.inner.to_text()
    }
    fn __repr__(&self) -> String {
        format!(
            "<genroute.Explanation backend={} rule={}: {}>",
            py_str(self.inner.backend.as_deref()),
            py_str(self.inner.rule.as_deref()),
            self.inner.summary
        )
    }
}

/// One rule's outcome.
#[pyclass(frozen, module = "genroute")]
pub struct RuleTrace {
    inner: genroute_core::explain::RuleTrace,
}

#[pymethods]
impl RuleTrace {
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }
    #[getter]
    fn condition(&self) -> &str {
        &self.inner.condition
    }
    /// `file:line:column` of the condition.
    #[getter]
    fn location(&self) -> &str {
        &self.inner.location
    }
    /// The rule's target backend.
    #[getter]
    fn backend(&self) -> &str {
        &self.inner.backend
    }
    #[getter]
    fn model(&self) -> Option<&str> {
        self.inner.model.as_deref()
    }
    /// Whether the condition was true.
    #[getter]
    fn matched(&self) -> bool {
        self.inner.matched
    }
    /// The evaluation error that made it not match, if any.
    #[getter]
    fn error(&self) -> Option<&str> {
        self.inner.error.as_deref()
    }
    /// Whether its target was eligible (`None` when the rule was not reached or did not match).
    #[getter]
    fn target_eligible(&self) -> Option<bool> {
        self.inner.target_eligible
    }
    #[getter]
    fn target_reasons(&self) -> Vec<String> {
        self.inner.target_reasons.clone()
    }
    /// e.g. `DECIDES`, `no match`, `target ineligible`, `not reached`.
    #[getter]
    fn status(&self) -> &'static str {
        self.inner.status
    }
    #[getter]
    fn clauses(&self) -> Vec<ClauseTrace> {
        self.inner
            .clauses
            .iter()
            .map(|c| ClauseTrace { inner: c.clone() })
            .collect()
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "<genroute.RuleTrace {} -> {}: {}>",
            self.inner.name, self.inner.backend, self.inner.status
        )
    }
}

/// One clause of a rule's condition, with its value and the names it read.
#[pyclass(frozen, module = "genroute")]
pub struct ClauseTrace {
    inner: genroute_core::explain::ClauseTrace,
}

#[pymethods]
impl ClauseTrace {
    #[getter]
    fn text(&self) -> &str {
        &self.inner.text
    }
    /// Its value; `None` when it was not evaluated or raised an error.
    #[getter]
    fn value(&self) -> Option<bool> {
        self.inner.value
    }
    #[getter]
    fn evaluated(&self) -> bool {
        self.inner.evaluated
    }
    #[getter]
    fn error(&self) -> Option<&str> {
        self.inner.error.as_deref()
    }
    /// `{name: value}` for every name the clause read.
    #[getter]
    fn reads<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for r in &self.inner.reads {
            d.set_item(&r.name, to_py(py, &r.value)?)?;
        }
        Ok(d)
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "<genroute.ClauseTrace {:?} = {}>",
            self.inner.text,
            match self.inner.value {
                Some(true) => "True",
                Some(false) => "False",
                None => "None",
            }
        )
    }
}

/// One backend's standing in a decision.
#[pyclass(frozen, module = "genroute")]
pub struct BackendTrace {
    inner: genroute_core::explain::BackendTrace,
}

#[pymethods]
impl BackendTrace {
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }
    #[getter]
    fn eligible(&self) -> bool {
        self.inner.eligible
    }
    /// Why it is not eligible, or notes on an eligible backend left out of the chain.
    #[getter]
    fn reasons(&self) -> Vec<String> {
        self.inner.reasons.clone()
    }
    /// `selected`, `fallback` or `unused`.
    #[getter]
    fn role(&self) -> &'static str {
        self.inner.role
    }
    #[getter]
    fn priority<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        decimal_from_fixed(py, self.inner.priority)
    }
    /// Cost of its default model.
    #[getter]
    fn cost_usd<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        decimal_from_fixed(py, self.inner.cost_usd)
    }
    #[getter]
    fn quality<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        decimal_from_fixed(py, self.inner.quality)
    }
    /// `closed`, `open` or `half_open`.
    #[getter]
    fn breaker(&self) -> &'static str {
        self.inner.breaker.as_str()
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "<genroute.BackendTrace {} eligible={} role={}>",
            self.inner.name, self.inner.eligible, self.inner.role
        )
    }
}
