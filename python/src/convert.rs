//! Python values in: money as `decimal.Decimal` (or a string, or an int), instants as aware
//! `datetime`s (or RFC 3339 strings), requests as dicts, breaker states as names, `env=`
//! mappings. The classes that also take a `genroute.Request` or `genroute.State` are in
//! `input`, above this; the way back out (`Decimal`s, dicts) is `ser`, below it.
//!
//! A float is never taken where money is expected: `TypeError`, saying to use `Decimal` or a
//! string. Everything else that is refused is a `genroute.RequestError` naming the field and
//! what to give instead, the same words as the JSON request's errors.
//!
//! It uses `errors` (for those exceptions) and `ser` (for `decimal.Decimal`), nothing above.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use genroute_core::check::expr::Type;
use genroute_core::request::Input;
use genroute_core::{BreakerState, Fixed};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyMapping, PyString, PyType};

use crate::errors::{from_request_error, request_error};
use crate::ser::decimal_type;

static DATETIME: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// The message for a float where money belongs.
fn float_money(field: &str) -> PyErr {
    PyTypeError::new_err(format!(
        "{field}: money must be a decimal.Decimal or a string such as Decimal(\"12.50\") or \"12.50\", \
         not a float (a float cannot hold 0.10 exactly, and a budget check must not drift)"
    ))
}

/// A Decimal's plain digits (`Decimal("1E+2")` is `100`); `None` for anything else.
fn decimal_text(v: &Bound<'_, PyAny>, field: &str) -> PyResult<Option<String>> {
    if !v.is_instance(decimal_type(v.py())?)? {
        return Ok(None);
    }
    let finite: bool = v.call_method0("is_finite")?.extract()?;
    if !finite {
        return Err(request_error(
            v.py(),
            field,
            "is not a finite number (NaN or Infinity); give a decimal such as Decimal(\"12.50\")",
        ));
    }
    let text: String = v.call_method1("__format__", ("f",))?.extract()?;
    Ok(Some(text))
}

/// Money (or any exact number) from a Decimal, an int or a string; `field` names it in errors.
pub fn fixed_from_py(v: &Bound<'_, PyAny>, field: &str) -> PyResult<Fixed> {
    let py = v.py();
    let parse = |text: &str| -> PyResult<Fixed> {
        text.trim().parse::<Fixed>().map_err(|e| {
            request_error(
                py,
                field,
                &format!("{e}; give a decimal with at most 6 places, such as Decimal(\"12.50\")"),
            )
        })
    };
    if v.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{field}: expected a decimal.Decimal, a string or an int, got a bool"
        )));
    }
    if v.is_instance_of::<PyFloat>() {
        return Err(float_money(field));
    }
    if let Some(text) = decimal_text(v, field)? {
        return parse(&text);
    }
    if v.is_instance_of::<PyInt>() {
        let n: i64 = v.extract().map_err(|_| {
            request_error(py, field, "is too large; the largest is about 9.2 trillion")
        })?;
        return Fixed::from_int(n).ok_or_else(|| {
            request_error(py, field, "is too large; the largest is about 9.2 trillion")
        });
    }
    if let Ok(s) = v.cast::<PyString>() {
        return parse(s.to_str()?);
    }
    Err(PyTypeError::new_err(format!(
        "{field}: expected a decimal.Decimal, a string or an int, got {}",
        type_name(v)
    )))
}

/// The type's name, for messages.
pub fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an object".into())
}

/// An instant from an aware `datetime` or an RFC 3339 string.
pub fn datetime_from_py(v: &Bound<'_, PyAny>, field: &str) -> PyResult<DateTime<Utc>> {
    let py = v.py();
    let text: String = if let Ok(s) = v.cast::<PyString>() {
        s.to_str()?.to_string()
    } else if v.is_instance(DATETIME.import(py, "datetime", "datetime")?)? {
        if v.call_method0("utcoffset")?.is_none() {
            return Err(request_error(
                py,
                field,
                "is a naive datetime; give an aware one, e.g. datetime.now(timezone.utc)",
            ));
        }
        v.call_method0("isoformat")?.extract()?
    } else {
        return Err(PyTypeError::new_err(format!(
            "{field}: expected an aware datetime or an RFC 3339 string, got {}",
            type_name(v)
        )));
    };
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            request_error(
                py,
                field,
                &format!("`{text}` is not an RFC 3339 time ({e}), e.g. 2026-11-10T12:00:00Z"),
            )
        })
}

/// A breaker state by name.
pub fn breaker_from_str(py: Python<'_>, field: &str, s: &str) -> PyResult<BreakerState> {
    match s {
        "closed" => Ok(BreakerState::Closed),
        "open" => Ok(BreakerState::Open),
        "half_open" => Ok(BreakerState::HalfOpen),
        other => Err(request_error(
            py,
            field,
            &format!("`{other}` is not a breaker state; give closed, open or half_open"),
        )),
    }
}

/// A request value as the library's [`Input`], borrowing Python strings. Money fields refuse
/// floats; Decimals are exact.
fn input<'a>(v: &'a Bound<'_, PyAny>, field: &str, money: bool) -> PyResult<Input<'a>> {
    if v.is_none() {
        return Ok(Input::Null);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Input::Bool(b.is_true()));
    }
    if v.is_instance_of::<PyInt>() {
        return Ok(match v.extract::<i64>() {
            Ok(n) => Input::Int(n),
            Err(_) => Input::Other("a number too large"),
        });
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        if money {
            return Err(float_money(field));
        }
        return Ok(Input::Float(f.value()));
    }
    if let Ok(s) = v.cast::<PyString>() {
        if money {
            // Money may be given as text ("12.50"), exactly as a Decimal would be.
            return Ok(Input::Num(fixed_from_py(v, field)?));
        }
        return Ok(Input::Str(s.to_str()?));
    }
    if v.is_instance(decimal_type(v.py())?)? {
        return Ok(Input::Num(fixed_from_py(v, field)?));
    }
    Ok(Input::Other(
        if v.is_instance_of::<pyo3::types::PyList>() || v.is_instance_of::<pyo3::types::PyTuple>() {
            "a list"
        } else if v.is_instance_of::<PyMapping>() {
            "a mapping"
        } else {
            "an object of another type"
        },
    ))
}

/// Builds and validates a request from a mapping of the JSON request's fields.
pub fn request_from_mapping(
    policy: &genroute_core::Policy,
    map: &Bound<'_, PyAny>,
) -> PyResult<genroute_core::Request> {
    let py = map.py();
    let mut request = genroute_core::Request::with_defaults(policy, "");
    let items = if let Ok(d) = map.cast::<PyDict>() {
        d.items()
    } else if let Ok(m) = map.cast::<PyMapping>() {
        m.items()?
    } else {
        return Err(PyTypeError::new_err(format!(
            "request: expected a dict of the JSON request's fields (or a genroute.Request), got {}",
            type_name(map)
        )));
    };
    for item in items.iter() {
        let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
        let key = k.cast::<PyString>().map_err(|_| {
            request_error(
                py,
                "(body)",
                "field names must be strings, such as \"priority\"",
            )
        })?;
        let key = key.to_str()?;
        let money = policy
            .fields
            .iter()
            .any(|f| f.name == key && f.ty == Type::Money);
        let value = input(&v, key, money)?;
        request
            .set(policy, key, value)
            .map_err(|e| from_request_error(py, &e))?;
    }
    Ok(request)
}

/// An environment for feature flags or API keys: a mapping of strings, or `None` for the
/// process environment.
pub enum Env {
    /// `os.environ` (the process environment, as Rust sees it).
    Process,
    /// Exactly these variables.
    Given(HashMap<String, String>),
}

impl Env {
    /// Reads the `env=` argument.
    pub fn from_py(v: Option<&Bound<'_, PyAny>>) -> PyResult<Env> {
        let Some(v) = v.filter(|v| !v.is_none()) else {
            return Ok(Env::Process);
        };
        let map = v.cast::<PyMapping>().map_err(|_| {
            PyTypeError::new_err(format!(
                "env: expected a mapping of str to str (or None for the process environment), got {}",
                type_name(v)
            ))
        })?;
        let mut out = HashMap::new();
        for item in map.items()?.iter() {
            let (k, v): (String, String) = item
                .extract()
                .map_err(|_| PyTypeError::new_err("env: every name and value must be a str"))?;
            out.insert(k, v);
        }
        Ok(Env::Given(out))
    }

    /// Looks a variable up.
    pub fn get(&self, name: &str) -> Option<String> {
        match self {
            Env::Process => std::env::var(name).ok(),
            Env::Given(m) => m.get(name).cloned(),
        }
    }
}
