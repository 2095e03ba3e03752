//! Values as clients send them (JSON, form fields, CLI flags, Python), checked against a
//! declared field: the [`Input`] kinds, the [`RequestError`] that names the field and the fix,
//! and the typed [`FieldValue`] a condition reads.
//!
//! **Why its own module.** The policy loader validates a declared field's `default` with the
//! same rules a request's value meets, and a request is validated against a loaded policy. So
//! the rules sit below both: the loader and [`crate::request`] call them, and they know neither
//! a policy nor a request.

use serde_json::Value as Json;

use crate::check::scope::{did_you_mean, EnumDef, FieldDef};
use crate::eval::FieldValue;
use crate::expr::{EnumId, Type};
use crate::num::Fixed;

/// Why a request was refused. Names the field and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("request field `{field}`: {message}")]
pub struct RequestError {
    /// The offending field (`(body)` for the request as a whole).
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

pub(crate) fn err(field: &str, message: impl Into<String>) -> RequestError {
    RequestError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// A value for [`crate::request::Request::set`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Input<'a> {
    /// Text: a string field or an enum value's name.
    Str(&'a str),
    /// A whole number.
    Int(i64),
    /// A number with a fraction, converted exactly (to six decimals) or refused.
    Float(f64),
    /// An exact number.
    Num(Fixed),
    /// A boolean.
    Bool(bool),
    /// Not given.
    Null,
    /// Something no field takes (a JSON array or object), by its description.
    Other(&'static str),
    /// Text from a form field (multipart or URL-encoded), read by the field's type: a number,
    /// `true`/`false`, an enum value's name, or text.
    Form(&'a str),
}

impl<'a> From<&'a str> for Input<'a> {
    fn from(s: &'a str) -> Input<'a> {
        Input::Str(s)
    }
}

impl From<i64> for Input<'_> {
    fn from(n: i64) -> Self {
        Input::Int(n)
    }
}

impl From<i32> for Input<'_> {
    fn from(n: i32) -> Self {
        Input::Int(i64::from(n))
    }
}

impl From<f64> for Input<'_> {
    fn from(x: f64) -> Self {
        Input::Float(x)
    }
}

impl From<Fixed> for Input<'_> {
    fn from(n: Fixed) -> Self {
        Input::Num(n)
    }
}

impl From<bool> for Input<'_> {
    fn from(b: bool) -> Self {
        Input::Bool(b)
    }
}

/// A JSON value as an [`Input`], borrowing its text.
pub(crate) fn input(v: &Json) -> Input<'_> {
    match v {
        Json::Null => Input::Null,
        Json::Bool(b) => Input::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Input::Int(i),
            (None, Some(f)) => Input::Float(f),
            _ => Input::Other("an unusable number"),
        },
        Json::String(s) => Input::Str(s),
        Json::Array(_) => Input::Other("an array"),
        Json::Object(_) => Input::Other("an object"),
    }
}

fn kind(v: Input<'_>) -> &'static str {
    match v {
        Input::Null => "null",
        Input::Bool(_) => "a boolean",
        Input::Int(_) | Input::Float(_) | Input::Num(_) => "a number",
        Input::Str(_) => "a string",
        Input::Form(_) => "text",
        Input::Other(k) => k,
    }
}

pub(crate) fn string<'a>(field: &str, v: Input<'a>) -> Result<&'a str, RequestError> {
    match v {
        Input::Str(s) | Input::Form(s) => Ok(s),
        other => Err(err(
            field,
            format!("expected a string, got {}", kind(other)),
        )),
    }
}

fn number(field: &str, v: Input<'_>) -> Result<Fixed, RequestError> {
    let bad = |why: String| err(field, why);
    match v {
        Input::Int(i) => Fixed::from_int(i).ok_or_else(|| bad(format!("{i} is too large"))),
        Input::Float(f) => Fixed::from_f64_exact(f).map_err(|e| bad(e.to_string())),
        Input::Num(n) => Ok(n),
        Input::Form(s) => s
            .trim()
            .parse::<Fixed>()
            .map_err(|e| bad(format!("`{s}` is not a number ({e})"))),
        other => Err(bad(format!("expected a number, got {}", kind(other)))),
    }
}

/// A number that is not money (seconds, a quality fraction): a float is kept to six decimals
/// instead of refused for its last digits.
pub(crate) fn quantity(field: &str, v: Input<'_>) -> Result<Fixed, RequestError> {
    match v {
        Input::Float(f) => Fixed::from_f64_rounded(f).map_err(|e| err(field, e.to_string())),
        Input::Form(s) => match s.trim().parse::<f64>() {
            Ok(f) => Fixed::from_f64_rounded(f).map_err(|e| err(field, e.to_string())),
            Err(_) => Err(err(field, format!("`{s}` is not a number"))),
        },
        other => number(field, other),
    }
}

pub(crate) fn enum_index(
    enums: &[EnumDef],
    field: &str,
    id: EnumId,
    v: Input<'_>,
) -> Result<u16, RequestError> {
    let values: &[String] = enums
        .get(id.0 as usize)
        .map_or(&[], |d| d.values.as_slice());
    let listed = || {
        values
            .iter()
            .map(|v| format!("'{v}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (Input::Str(s) | Input::Form(s)) = v else {
        return Err(err(
            field,
            format!("expected one of {}, got {}", listed(), kind(v)),
        ));
    };
    match values.iter().position(|x| x == s) {
        Some(i) => Ok(i as u16),
        None => {
            let hint = match did_you_mean(s, values.iter().map(String::as_str)) {
                Some(m) => format!("; did you mean '{m}'?"),
                None => String::new(),
            };
            Err(err(
                field,
                format!("'{s}' is not one of {}{hint}", listed()),
            ))
        }
    }
}

/// Validates a JSON value for a declared field.
pub(crate) fn field_value(
    enums: &[EnumDef],
    def: &FieldDef,
    v: Json,
) -> Result<FieldValue, RequestError> {
    typed_field_value(enums, def, input(&v))
}

pub(crate) fn typed_field_value(
    enums: &[EnumDef],
    def: &FieldDef,
    v: Input<'_>,
) -> Result<FieldValue, RequestError> {
    let field = def.name.as_str();
    Ok(match (def.ty, v) {
        (Type::Bool, Input::Bool(b)) => FieldValue::Bool(b),
        (Type::Bool, Input::Form("true")) => FieldValue::Bool(true),
        (Type::Bool, Input::Form("false")) => FieldValue::Bool(false),
        (Type::Str, Input::Form(s)) => FieldValue::Str(s.to_string()),
        (Type::Num | Type::Money, v) => FieldValue::Num(number(field, v)?),
        (Type::Str, Input::Str(s)) => FieldValue::Str(s.to_string()),
        (Type::Enum(id), v) => FieldValue::Enum(enum_index(enums, field, id, v)?),
        (Type::Bool, other) => {
            return Err(err(
                field,
                format!("expected true or false, got {}", kind(other)),
            ))
        }
        (Type::Str, other) => {
            return Err(err(
                field,
                format!("expected a string, got {}", kind(other)),
            ))
        }
    })
}
