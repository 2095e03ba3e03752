//! Generation requests: the seed's `GenerationRequest` fields plus the policy's own fields,
//! validated against the policy and resolved to the indices conditions compare with.

use serde_json::{Map, Value as Json};

use crate::check::expr::{EnumId, Type};
use crate::check::scope::{did_you_mean, EnumDef, FieldDef};
use crate::eval::FieldValue;
use crate::num::Fixed;
use crate::policy::Policy;

/// The largest request body accepted, in bytes.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// The longest video a request may ask for, in seconds.
pub const MAX_DURATION_SECONDS: i64 = 600;

/// A validated request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// What to generate.
    pub prompt: String,
    /// What to avoid.
    pub negative_prompt: Option<String>,
    /// Index into the `priority` enum.
    pub priority: u16,
    /// Seconds.
    pub duration: Fixed,
    /// Index into the `aspect_ratio` enum.
    pub aspect_ratio: u16,
    /// Lowest acceptable quality score.
    pub quality_threshold: Fixed,
    /// Requested style.
    pub style: Option<String>,
    /// Declared fields by index; `None` when unset.
    pub fields: Vec<Option<FieldValue>>,
}

/// Why a request was refused. Names the field and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("request field `{field}`: {message}")]
pub struct RequestError {
    /// The offending field (`(body)` for the request as a whole).
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

fn err(field: &str, message: impl Into<String>) -> RequestError {
    RequestError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// Builds a request field by field, then validates it against a policy.
///
/// ```
/// # let policy = genroute::Policy::from_yaml("p.yaml", genroute::EXAMPLE_POLICY).unwrap();
/// let request = genroute::RequestBuilder::new("a red fox at dawn")
///     .set("priority", "quality")
///     .set("duration", 8)
///     .build(&policy)
///     .unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct RequestBuilder {
    body: Map<String, Json>,
}

impl RequestBuilder {
    /// Starts a request with its prompt.
    pub fn new(prompt: impl Into<String>) -> RequestBuilder {
        let mut body = Map::new();
        body.insert("prompt".into(), Json::String(prompt.into()));
        RequestBuilder { body }
    }

    /// Sets any field: a built-in one or one the policy declares.
    pub fn set(mut self, field: &str, value: impl Into<Json>) -> RequestBuilder {
        self.body.insert(field.to_string(), value.into());
        self
    }

    /// Validates against `policy`.
    pub fn build(self, policy: &Policy) -> Result<Request, RequestError> {
        Request::from_map(policy, self.body)
    }
}

impl Request {
    /// Parses and validates a JSON request body.
    pub fn from_json(policy: &Policy, text: &str) -> Result<Request, RequestError> {
        if text.len() > MAX_REQUEST_BYTES {
            return Err(err(
                "(body)",
                format!(
                    "the request is {} bytes; the limit is {MAX_REQUEST_BYTES}",
                    text.len()
                ),
            ));
        }
        let value: Json = serde_json::from_str(text)
            .map_err(|e| err("(body)", format!("not valid JSON: {e}")))?;
        match value {
            Json::Object(map) => Request::from_map(policy, map),
            _ => Err(err(
                "(body)",
                "expected a JSON object such as {\"prompt\": \"...\", \"priority\": \"quality\"}",
            )),
        }
    }

    /// Validates a JSON object.
    pub fn from_map(policy: &Policy, mut map: Map<String, Json>) -> Result<Request, RequestError> {
        let d = &policy.defaults;
        let prompt = take_string(&mut map, "prompt")?.unwrap_or_default();
        let negative_prompt = take_string(&mut map, "negative_prompt")?;
        let style = take_string(&mut map, "style")?;
        let priority =
            take_enum(&mut map, policy, "priority", EnumId::PRIORITY)?.unwrap_or(d.priority);
        let aspect_ratio = take_enum(&mut map, policy, "aspect_ratio", EnumId::ASPECT_RATIO)?
            .unwrap_or(d.aspect_ratio);
        let duration = take_number(&mut map, "duration")?.unwrap_or(d.duration);
        let max = Fixed::from_int(MAX_DURATION_SECONDS).unwrap_or(Fixed::ZERO);
        if duration <= Fixed::ZERO || duration > max {
            return Err(err("duration", format!("{duration} is out of range; give seconds between 0 and {MAX_DURATION_SECONDS}, e.g. 8")));
        }
        let quality_threshold =
            take_number(&mut map, "quality_threshold")?.unwrap_or(d.quality_threshold);
        if quality_threshold < Fixed::ZERO || quality_threshold > Fixed::ONE {
            return Err(err("quality_threshold", format!("{quality_threshold} is out of range; give a fraction between 0 and 1, e.g. 0.8")));
        }
        let mut fields = Vec::with_capacity(policy.fields.len());
        for f in &policy.fields {
            let v = map.remove(&f.name);
            fields.push(match v {
                None | Some(Json::Null) => f.default.clone(),
                Some(v) => Some(field_value(&policy.enums, f, v)?),
            });
        }
        if let Some(unknown) = map.keys().next() {
            let mut known: Vec<&str> = vec![
                "prompt",
                "negative_prompt",
                "style",
                "priority",
                "aspect_ratio",
                "duration",
                "quality_threshold",
            ];
            known.extend(policy.fields.iter().map(|f| f.name.as_str()));
            let hint = match did_you_mean(unknown, known.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => {
                    "declare it under `request_fields` in the policy to route on it".to_string()
                }
            };
            return Err(err(unknown, format!("unknown field; {hint}")));
        }
        Ok(Request {
            prompt,
            negative_prompt,
            priority,
            duration,
            aspect_ratio,
            quality_threshold,
            style,
            fields,
        })
    }
}

fn take_string(map: &mut Map<String, Json>, field: &str) -> Result<Option<String>, RequestError> {
    match map.remove(field) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(other) => Err(err(
            field,
            format!("expected a string, got {}", kind(&other)),
        )),
    }
}

fn take_number(map: &mut Map<String, Json>, field: &str) -> Result<Option<Fixed>, RequestError> {
    match map.remove(field) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => number(field, &v).map(Some),
    }
}

fn number(field: &str, v: &Json) -> Result<Fixed, RequestError> {
    let bad = |why: String| err(field, why);
    match v {
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Fixed::from_int(i).ok_or_else(|| bad(format!("{i} is too large"))),
            (None, Some(f)) => Fixed::from_f64_exact(f).map_err(|e| bad(e.to_string())),
            _ => Err(bad(format!("{n} is not a usable number"))),
        },
        other => Err(bad(format!("expected a number, got {}", kind(other)))),
    }
}

fn take_enum(
    map: &mut Map<String, Json>,
    policy: &Policy,
    field: &str,
    id: EnumId,
) -> Result<Option<u16>, RequestError> {
    match map.remove(field) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => enum_index(policy, field, id, &v).map(Some),
    }
}

fn enum_index(policy: &Policy, field: &str, id: EnumId, v: &Json) -> Result<u16, RequestError> {
    enum_index_in(&policy.enums, field, id, v)
}

fn enum_index_in(
    enums: &[EnumDef],
    field: &str,
    id: EnumId,
    v: &Json,
) -> Result<u16, RequestError> {
    let values: &[String] = enums
        .get(id.0 as usize)
        .map_or(&[], |d| d.values.as_slice());
    let listed = values
        .iter()
        .map(|v| format!("'{v}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let Json::String(s) = v else {
        return Err(err(
            field,
            format!("expected one of {listed}, got {}", kind(v)),
        ));
    };
    match values.iter().position(|x| x == s) {
        Some(i) => Ok(i as u16),
        None => {
            let hint = match did_you_mean(s, values.iter().map(String::as_str)) {
                Some(m) => format!("; did you mean '{m}'?"),
                None => String::new(),
            };
            Err(err(field, format!("'{s}' is not one of {listed}{hint}")))
        }
    }
}

/// Validates a value for a declared field.
pub(crate) fn field_value(
    enums: &[EnumDef],
    def: &FieldDef,
    v: Json,
) -> Result<FieldValue, RequestError> {
    let field = def.name.as_str();
    Ok(match (def.ty, v) {
        (Type::Bool, Json::Bool(b)) => FieldValue::Bool(b),
        (Type::Num | Type::Money, v) => FieldValue::Num(number(field, &v)?),
        (Type::Str, Json::String(s)) => FieldValue::Str(s),
        (Type::Enum(id), v) => FieldValue::Enum(enum_index_in(enums, field, id, &v)?),
        (Type::Bool, other) => {
            return Err(err(
                field,
                format!("expected true or false, got {}", kind(&other)),
            ))
        }
        (Type::Str, other) => {
            return Err(err(
                field,
                format!("expected a string, got {}", kind(&other)),
            ))
        }
    })
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}
