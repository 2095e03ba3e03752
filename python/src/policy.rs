//! `Policy`, `Request`, `State`, and what deciding returns: `Decision`, `Explanation` (with
//! its `RuleTrace`, `ClauseTrace` and `BackendTrace`), `Diagnostic`, `Name`, `Condition`.
//!
//! Every result holds the library's own serde type, so `to_json()` is byte for byte what the
//! CLI prints (`genroute explain --format json`) and what the server answers, and
//! `to_dict()` is the same tree with money as `Decimal`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use genroute::check::expr::{EnumId, Type};
use genroute::check::scope::BUILTIN_NAMES;
use genroute::{BreakerState, Fixed, LoadOptions, Source};
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyPermissionError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyMapping, PyString};
use serde::Serialize;

use crate::convert::{self, decimal_from_fixed, opt_decimal, Env};
use crate::errors::{self, request_error};
use crate::ser::to_py;

/// `'text'` or `None`, as Python writes an optional string.
pub fn py_str(v: Option<&str>) -> String {
    match v {
        Some(s) => format!("{s:?}"),
        None => "None".into(),
    }
}

/// Serializes to JSON the way the CLI does (`pretty`) or compactly.
fn json<T: Serialize>(v: &T, pretty: bool) -> PyResult<String> {
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
        let loaded = genroute::Policy::load(Source::new(name, text), &LoadOptions { env: &lookup });
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
    pub inner: Arc<genroute::Policy>,
}

/// A request, or a dict of one, as the library's request.
pub enum Req<'a> {
    Borrowed(&'a genroute::Request),
    Owned(genroute::Request),
}

impl std::ops::Deref for Req<'_> {
    type Target = genroute::Request;
    fn deref(&self) -> &genroute::Request {
        match self {
            Req::Borrowed(r) => r,
            Req::Owned(r) => r,
        }
    }
}

/// A `genroute.Request` built for `policy`, or a mapping validated against it.
pub fn request<'a>(policy: &Arc<genroute::Policy>, obj: &'a Bound<'_, PyAny>) -> PyResult<Req<'a>> {
    if let Ok(r) = obj.cast::<Request>() {
        let r: &'a Request = r.get();
        if !Arc::ptr_eq(&r.policy, policy) {
            return Err(request_error(
                obj.py(),
                "(body)",
                "this genroute.Request was built for another policy; build it with this one, or pass a dict",
            ));
        }
        return Ok(Req::Borrowed(&r.inner));
    }
    convert::request_from_mapping(policy, obj).map(Req::Owned)
}

/// A `genroute.State`, a dict of its fields, or `None` (no spend, breakers closed, now).
pub fn state(
    policy: &genroute::Policy,
    obj: Option<&Bound<'_, PyAny>>,
) -> PyResult<genroute::State> {
    match obj.filter(|o| !o.is_none()) {
        None => Ok(genroute::State::new(policy, Utc::now())),
        Some(o) => {
            if let Ok(s) = o.cast::<State>() {
                return s.get().to_state(o.py(), policy);
            }
            if let Ok(m) = o.cast::<PyMapping>() {
                return State::from_mapping(m)?.to_state(o.py(), policy);
            }
            Err(PyTypeError::new_err(format!(
                "state: expected a genroute.State or a dict with spend, breakers, failures, now; got {}",
                convert::type_name(o)
            )))
        }
    }
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
        load(py, "demo.yaml".into(), genroute::DEMO_POLICY.into(), env)
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
        let r = self::request(&self.inner, request)?;
        let s = self::state(&self.inner, state)?;
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
        let r = self::request(&self.inner, request)?;
        let s = self::state(&self.inner, state)?;
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
fn type_text(policy: &genroute::Policy, ty: Type) -> String {
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
        genroute::Policy::load(
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
    list: &[genroute::Diagnostic],
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
    inner: genroute::Diagnostic,
    file: String,
}

#[pymethods]
impl Diagnostic {
    /// `error` or `warning`.
    #[getter]
    fn severity(&self) -> &'static str {
        match self.inner.severity {
            genroute::Severity::Error => "error",
            genroute::Severity::Warning => "warning",
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

/// A validated request, bound to the policy it was built for. Building one once and deciding
/// on it many times skips the validation of a dict.
#[pyclass(frozen, module = "genroute")]
pub struct Request {
    policy: Arc<genroute::Policy>,
    inner: genroute::Request,
}

#[pymethods]
impl Request {
    /// `Request(policy, {"prompt": ..., "priority": "quality"})` or
    /// `Request(policy, prompt=..., priority="quality")`: the fields of the JSON request
    /// plus the policy's `request_fields`.
    #[new]
    #[pyo3(signature = (policy, fields = None, /, **kwargs))]
    fn new(
        policy: &Policy,
        fields: Option<&Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Request> {
        let inner = match (fields, kwargs) {
            (Some(f), None) => convert::request_from_mapping(&policy.inner, f)?,
            (None, Some(k)) => convert::request_from_mapping(&policy.inner, k.as_any())?,
            (None, None) => genroute::Request::with_defaults(&policy.inner, ""),
            (Some(f), Some(k)) => {
                let merged = PyDict::new(f.py());
                merged.update(f.cast::<PyMapping>().map_err(|_| {
                    PyTypeError::new_err("fields: expected a dict of the JSON request's fields")
                })?)?;
                merged.update(k.as_mapping())?;
                convert::request_from_mapping(&policy.inner, merged.as_any())?
            }
        };
        Ok(Request {
            policy: policy.inner.clone(),
            inner,
        })
    }

    /// What to generate.
    #[getter]
    fn prompt(&self) -> &str {
        &self.inner.prompt
    }
    /// What to avoid.
    #[getter]
    fn negative_prompt(&self) -> Option<&str> {
        self.inner.negative_prompt.as_deref()
    }
    /// `quality`, `balanced` or `speed`.
    #[getter]
    fn priority(&self) -> String {
        enum_name(&self.policy, EnumId::PRIORITY, self.inner.priority)
    }
    /// e.g. `16:9`.
    #[getter]
    fn aspect_ratio(&self) -> String {
        enum_name(&self.policy, EnumId::ASPECT_RATIO, self.inner.aspect_ratio)
    }
    /// Seconds.
    #[getter]
    fn duration<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        decimal_from_fixed(py, self.inner.duration)
    }
    /// The lowest acceptable quality score.
    #[getter]
    fn quality_threshold<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        decimal_from_fixed(py, self.inner.quality_threshold)
    }
    /// The requested style.
    #[getter]
    fn style(&self) -> Option<&str> {
        self.inner.style.as_deref()
    }
    /// The policy's own fields that are set (enum values by name).
    #[getter]
    fn fields<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.field_values(&self.policy))
    }
    /// The request as JSON would carry it, defaults filled in; numbers as `Decimal`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let d = to_py(py, &self.inner.to_json(&self.policy))?;
        // The JSON form prints whole numbers as integers; the exact values are here.
        d.set_item("duration", decimal_from_fixed(py, self.inner.duration)?)?;
        d.set_item(
            "quality_threshold",
            decimal_from_fixed(py, self.inner.quality_threshold)?,
        )?;
        for (f, v) in self.policy.fields.iter().zip(&self.inner.fields) {
            if let Some(genroute::eval::FieldValue::Num(n)) = v {
                d.set_item(&f.name, decimal_from_fixed(py, *n)?)?;
            }
        }
        Ok(d)
    }
    #[pyo3(signature = (*, pretty = false))]
    fn to_json(&self, pretty: bool) -> PyResult<String> {
        json(&self.inner.to_json(&self.policy), pretty)
    }
    fn __repr__(&self) -> String {
        // The prompt is left out: it can hold personal or confidential text.
        format!(
            "<genroute.Request priority={:?} duration={} aspect_ratio={:?} quality_threshold={}>",
            self.priority(),
            self.inner.duration,
            self.aspect_ratio(),
            self.inner.quality_threshold
        )
    }
}

fn enum_name(policy: &genroute::Policy, id: EnumId, i: u16) -> String {
    policy
        .enum_values(id)
        .get(i as usize)
        .cloned()
        .unwrap_or_default()
}

/// What the decision sees besides the request: the month's spend, breaker states, failed
/// attempts so far, and the time.
#[pyclass(frozen, module = "genroute")]
pub struct State {
    spend: Fixed,
    breakers: Vec<(String, BreakerState)>,
    failures: u32,
    now: Option<DateTime<Utc>>,
}

impl State {
    fn from_mapping(m: &Bound<'_, PyMapping>) -> PyResult<State> {
        let py = m.py();
        let mut spend = None;
        let mut breakers = None;
        let mut failures = None;
        let mut now = None;
        for item in m.items()?.iter() {
            let (k, v): (String, Bound<'_, PyAny>) = item.extract()?;
            match k.as_str() {
                "spend" => spend = Some(v),
                "breakers" => breakers = Some(v),
                "failures" => failures = Some(v),
                "now" => now = Some(v),
                other => {
                    return Err(request_error(
                        py,
                        &format!("state.{other}"),
                        "unknown state field; the fields are spend, breakers, failures, now",
                    ))
                }
            }
        }
        State::build(
            spend.as_ref(),
            breakers.as_ref(),
            failures.as_ref(),
            now.as_ref(),
        )
    }

    fn build(
        spend: Option<&Bound<'_, PyAny>>,
        breakers: Option<&Bound<'_, PyAny>>,
        failures: Option<&Bound<'_, PyAny>>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<State> {
        let spend = match spend.filter(|v| !v.is_none()) {
            Some(v) => convert::fixed_from_py(v, "state.spend")?,
            None => Fixed::ZERO,
        };
        let mut list = Vec::new();
        if let Some(b) = breakers.filter(|v| !v.is_none()) {
            let py = b.py();
            let map = b.cast::<PyMapping>().map_err(|_| {
                PyTypeError::new_err(
                    "state.breakers: expected a dict of backend name to 'closed', 'open' or 'half_open'",
                )
            })?;
            for item in map.items()?.iter() {
                let (k, v): (String, Bound<'_, PyAny>) = item.extract()?;
                let field = format!("state.breakers.{k}");
                let s = v.cast::<PyString>().map_err(|_| {
                    PyTypeError::new_err(format!(
                        "{field}: expected 'closed', 'open' or 'half_open'"
                    ))
                })?;
                list.push((
                    k.clone(),
                    convert::breaker_from_str(py, &field, s.to_str()?)?,
                ));
            }
        }
        let failures = match failures.filter(|v| !v.is_none()) {
            Some(v) => {
                if v.is_instance_of::<pyo3::types::PyBool>()
                    || !v.is_instance_of::<pyo3::types::PyInt>()
                {
                    return Err(PyTypeError::new_err(format!(
                        "state.failures: expected an int, got {}",
                        convert::type_name(v)
                    )));
                }
                v.extract::<u32>().map_err(|_| {
                    request_error(v.py(), "state.failures", "give a whole number from 0 up")
                })?
            }
            None => 0,
        };
        let now = match now.filter(|v| !v.is_none()) {
            Some(v) => Some(convert::datetime_from_py(v, "state.now")?),
            None => None,
        };
        Ok(State {
            spend,
            breakers: list,
            failures,
            now,
        })
    }

    /// The library's state for `policy`: unknown backends in `breakers` are refused.
    pub fn to_state(&self, py: Python<'_>, policy: &genroute::Policy) -> PyResult<genroute::State> {
        let mut s = genroute::State::new(policy, self.now.unwrap_or_else(Utc::now))
            .with_spend(self.spend)
            .with_failures(self.failures);
        for (name, b) in &self.breakers {
            s.set_breaker(policy, name, *b).map_err(|_| {
                let names: Vec<&str> = policy.backends.iter().map(|b| b.name.as_str()).collect();
                request_error(
                    py,
                    &format!("state.breakers.{name}"),
                    &format!(
                        "unknown backend; the policy's backends are {}",
                        names.join(", ")
                    ),
                )
            })?;
        }
        Ok(s)
    }

    /// From the library's state (the router's live figures).
    pub fn from_state(policy: &genroute::Policy, s: &genroute::State) -> State {
        State {
            spend: s.spend,
            breakers: policy
                .backends
                .iter()
                .zip(&s.breakers)
                .map(|(b, st)| (b.name.clone(), *st))
                .collect(),
            failures: s.failures,
            now: Some(s.now),
        }
    }
}

#[pymethods]
impl State {
    /// `spend` is money: a `Decimal`, a string or an int, never a float. `breakers` maps
    /// backend names to `closed`, `open` or `half_open` (unnamed ones are closed). `now` is
    /// an aware `datetime` or an RFC 3339 string; `None` means the time of each decision.
    #[new]
    #[pyo3(signature = (*, spend = None, breakers = None, failures = None, now = None))]
    fn new(
        spend: Option<&Bound<'_, PyAny>>,
        breakers: Option<&Bound<'_, PyAny>>,
        failures: Option<&Bound<'_, PyAny>>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<State> {
        State::build(spend, breakers, failures, now)
    }

    /// This month's spend: committed plus reserved.
    #[getter]
    fn spend<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        decimal_from_fixed(py, self.spend)
    }
    /// Breaker states by backend name.
    #[getter]
    fn breakers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in &self.breakers {
            d.set_item(k, v.as_str())?;
        }
        Ok(d)
    }
    /// Attempts that already failed for this request.
    #[getter]
    fn failures(&self) -> u32 {
        self.failures
    }
    /// The instant decided at, or `None` for "the time of each decision".
    #[getter]
    fn now<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.now {
            None => Ok(py.None().into_bound(py)),
            Some(t) => {
                use chrono::{Datelike, Timelike};
                let m = py.import("datetime")?;
                let utc = m.getattr("timezone")?.getattr("utc")?;
                m.getattr("datetime")?.call1((
                    t.year(),
                    t.month(),
                    t.day(),
                    t.hour(),
                    t.minute(),
                    t.second(),
                    t.timestamp_subsec_micros().min(999_999),
                    utc,
                ))
            }
        }
    }
    fn __repr__(&self) -> String {
        let breakers: Vec<String> = self
            .breakers
            .iter()
            .map(|(k, v)| format!("{k:?}: {:?}", v.as_str()))
            .collect();
        format!(
            "genroute.State(spend=Decimal('{}'), breakers={{{}}}, failures={}, now={})",
            self.spend,
            breakers.join(", "),
            self.failures,
            self.now
                .map(|t| format!(
                    "'{}'",
                    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                ))
                .unwrap_or_else(|| "None".into())
        )
    }
}

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
    fn of(policy: &genroute::Policy, d: &genroute::Decision<'_>) -> Decision {
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
    pub inner: genroute::Explanation,
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
    inner: genroute::explain::RuleTrace,
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
    inner: genroute::explain::ClauseTrace,
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
    inner: genroute::explain::BackendTrace,
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

/// A condition compiled on its own against a policy's names (a guard, a filter).
#[pyclass(frozen, module = "genroute")]
pub struct Condition {
    policy: Arc<genroute::Policy>,
    inner: genroute::Condition,
    target: Option<String>,
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
        let r = self::request(&self.policy, request)?;
        let s = self::state(&self.policy, state)?;
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
