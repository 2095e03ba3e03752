//! `Policy`'s methods: loading (`from_file`, `from_yaml`, `demo`), its lints, deciding and
//! explaining, the names a condition can read (`Name`), and compiling a `Condition`.
//!
//! The class's data and the loading itself are in `load`, below the classes that take a
//! `Policy` (`Request` in `input`, `Condition`, the router); these methods build those classes
//! and the answers (`Decision`, `Explanation` in `answer`), so they sit above them all.
//!
//! Every result holds the library's own serde type, so `to_json()` is byte for byte what the
//! CLI prints (`genroute explain --format json`) and what the server answers, and
//! `to_dict()` is the same tree with money as `Decimal`.

use genroute_core::check::expr::Type;
use genroute_core::check::scope::BUILTIN_NAMES;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::answer::{Decision, Explanation};
use crate::condition::Condition;
use crate::convert::Env;
use crate::diagnostic::diagnostics;
use crate::errors;
use crate::input;
use crate::load::{load, read, Policy};

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
        let r = input::request(&self.inner, request)?;
        let s = input::state(&self.inner, state)?;
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
        let r = input::request(&self.inner, request)?;
        let s = input::state(&self.inner, state)?;
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
