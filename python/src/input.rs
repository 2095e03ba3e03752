//! `Request` and `State`: what a decision reads, built from dicts or by keyword, checked
//! against the policy's fields, with money as `Decimal`.
//!
//! `request()` and `state()` are what every method that decides calls to accept a `Request`
//! or a dict, a `State`, a dict or `None`. It uses `convert`, `errors`, `ser` and the
//! `Policy` struct from `load`; `policy`, `condition` and `router` use it.

use crate::convert;
use crate::errors::request_error;
use crate::load::Policy;
use crate::ser::{decimal_from_fixed, json, to_py};
use chrono::{DateTime, Utc};
use genroute_core::check::expr::EnumId;
use genroute_core::{BreakerState, Fixed};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMapping, PyString};
use std::sync::Arc;

/// A validated request, bound to the policy it was built for. Building one once and deciding
/// on it many times skips the validation of a dict.
#[pyclass(frozen, module = "genroute")]
pub struct Request {
    policy: Arc<genroute_core::Policy>,
    inner: genroute_core::Request,
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
            (None, None) => genroute_core::Request::with_defaults(&policy.inner, ""),
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
            if let Some(genroute_core::eval::FieldValue::Num(n)) = v {
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

fn enum_name(policy: &genroute_core::Policy, id: EnumId, i: u16) -> String {
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
    pub fn to_state(
        &self,
        py: Python<'_>,
        policy: &genroute_core::Policy,
    ) -> PyResult<genroute_core::State> {
        let mut s = genroute_core::State::new(policy, self.now.unwrap_or_else(Utc::now))
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
    pub fn from_state(policy: &genroute_core::Policy, s: &genroute_core::State) -> State {
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

/// A request, or a dict of one, as the library's request.
pub enum Req<'a> {
    Borrowed(&'a genroute_core::Request),
    Owned(genroute_core::Request),
}

impl std::ops::Deref for Req<'_> {
    type Target = genroute_core::Request;
    fn deref(&self) -> &genroute_core::Request {
        match self {
            Req::Borrowed(r) => r,
            Req::Owned(r) => r,
        }
    }
}

/// A `genroute.Request` built for `policy`, or a mapping validated against it.
pub fn request<'a>(
    policy: &Arc<genroute_core::Policy>,
    obj: &'a Bound<'_, PyAny>,
) -> PyResult<Req<'a>> {
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
    policy: &genroute_core::Policy,
    obj: Option<&Bound<'_, PyAny>>,
) -> PyResult<genroute_core::State> {
    match obj.filter(|o| !o.is_none()) {
        None => Ok(genroute_core::State::new(policy, Utc::now())),
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
