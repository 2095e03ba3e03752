//! `Condition`: one condition compiled against a policy (and a backend target), evaluated on
//! a request and a state.
//!
//! Above `input` (it reads a request and a state as `Policy.decide` does) and `errors`; below
//! `policy`, whose `condition()` builds one.

use pyo3::prelude::*;
use std::sync::Arc;

/// A condition compiled on its own against a policy's names (a guard, a filter).
#[pyclass(frozen, module = "genroute")]
pub struct Condition {
    pub(crate) policy: Arc<genroute_core::Policy>,
    pub(crate) inner: genroute_core::Condition,
    pub(crate) target: Option<String>,
}

#[pymethods]
impl Condition {
    /// The condition as written.
    #[getter]
    fn source(&self) -> &str {
        self.inner.text()
    }
    /// The backend that backend-scoped names refer to.
    #[getter]
    fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }
    /// Evaluates it for `request` in `state` (as `Policy.decide` takes them). A runtime error
    /// (division by zero, an unset field) raises `EvaluationError`: never a silent `False`.
    #[pyo3(signature = (request, state = None))]
    fn evaluate(
        &self,
        request: &Bound<'_, PyAny>,
        state: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let r = crate::input::request(&self.policy, request)?;
        let s = crate::input::state(&self.policy, state)?;
        let ctx = self.policy.context(&r, &s);
        self.inner.evaluate(&ctx).map_err(|e| {
            let text = self.inner.text();
            let at = text
                .get(e.span.start as usize..e.span.end as usize)
                .unwrap_or(text);
            crate::errors::EvaluationError::new_err(format!("{e} (at `{at}`)"))
        })
    }
    fn __repr__(&self) -> String {
        format!("<genroute.Condition {:?}>", self.inner.text())
    }
}
