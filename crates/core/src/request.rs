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
    /// The request's id, when the caller has one (the router sets it): what a split hashes
    /// when its `split_key` field is unset. Never read by conditions.
    pub id: Option<String>,
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
    /// The caller's tenant values by index (`team`, `org`, `key`, then the policy's
    /// `tenant_fields`), set by whoever authenticated the caller, never from the request's
    /// own fields; empty without an API key.
    pub tenant: Vec<Option<FieldValue>>,
    /// Who is calling, when an API key was given: its key, team, organisation and budgets,
    /// as they were when the request was accepted (a reload of the tenants file does not move
    /// a running request to other budgets).
    pub tenancy: Option<std::sync::Arc<crate::tenant::Tenancy>>,
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
/// # let policy = genroute_core::Policy::from_yaml("p.yaml", genroute_core::EXAMPLE_POLICY).unwrap();
/// let request = genroute_core::RequestBuilder::new("a red fox at dawn")
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
    pub fn from_map(policy: &Policy, map: Map<String, Json>) -> Result<Request, RequestError> {
        let mut request = Request::with_defaults(policy, "");
        for (field, value) in &map {
            request.set(policy, field, input(value))?;
        }
        Ok(request)
    }

    /// Validates form fields (each read by its field's type, [`Input::Form`]).
    pub fn from_form<'a>(
        policy: &Policy,
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Request, RequestError> {
        let mut request = Request::with_defaults(policy, "");
        for (field, value) in fields {
            request.set(policy, field, Input::Form(value))?;
        }
        Ok(request)
    }

    /// The declared fields that are set, as JSON (enum values by name).
    pub fn field_values(&self, policy: &Policy) -> std::collections::BTreeMap<String, Json> {
        let enum_name = |id: EnumId, i: u16| -> Json {
            policy
                .enum_values(id)
                .get(i as usize)
                .cloned()
                .unwrap_or_default()
                .into()
        };
        policy
            .fields
            .iter()
            .zip(&self.fields)
            .filter_map(|(def, v)| {
                let json = match (v.as_ref()?, def.ty) {
                    (FieldValue::Bool(b), _) => (*b).into(),
                    (FieldValue::Num(n), _) => serde_json::to_value(n).unwrap_or_default(),
                    (FieldValue::Str(s), _) => s.clone().into(),
                    (FieldValue::Enum(i), Type::Enum(id)) => enum_name(id, *i),
                    (FieldValue::Enum(i), _) => (*i).into(),
                };
                Some((def.name.clone(), json))
            })
            .collect()
    }

    /// The request as a JSON body that [`Request::from_json`] reads back to the same request
    /// (a job keeps its request this way, whatever shape the client sent).
    pub fn to_json(&self, policy: &Policy) -> Json {
        let name = |id: EnumId, i: u16| {
            policy
                .enum_values(id)
                .get(i as usize)
                .cloned()
                .unwrap_or_default()
        };
        let mut map = Map::new();
        map.insert("prompt".into(), self.prompt.clone().into());
        if let Some(n) = &self.negative_prompt {
            map.insert("negative_prompt".into(), n.clone().into());
        }
        if let Some(s) = &self.style {
            map.insert("style".into(), s.clone().into());
        }
        map.insert(
            "priority".into(),
            name(EnumId::PRIORITY, self.priority).into(),
        );
        map.insert(
            "aspect_ratio".into(),
            name(EnumId::ASPECT_RATIO, self.aspect_ratio).into(),
        );
        map.insert(
            "duration".into(),
            serde_json::to_value(self.duration).unwrap_or_default(),
        );
        map.insert(
            "quality_threshold".into(),
            serde_json::to_value(self.quality_threshold).unwrap_or_default(),
        );
        map.extend(self.field_values(policy));
        Json::Object(map)
    }

    /// A request for `prompt` with the policy's defaults for everything else: what a request
    /// body holding only a prompt gets.
    pub fn with_defaults(policy: &Policy, prompt: impl Into<String>) -> Request {
        let d = &policy.defaults;
        Request {
            id: None,
            prompt: prompt.into(),
            negative_prompt: None,
            priority: d.priority,
            duration: d.duration,
            aspect_ratio: d.aspect_ratio,
            quality_threshold: d.quality_threshold,
            style: None,
            fields: policy.fields.iter().map(|f| f.default.clone()).collect(),
            tenant: Vec::new(),
            tenancy: None,
        }
    }

    /// Makes this the request of `tenancy`'s caller: its budgets apply, and conditions read
    /// its team, organisation and key id and, of its attributes, those the policy declares
    /// as `tenant_fields` (one the tenant does not set takes the field's default). A value of
    /// the wrong type is an error naming `tenant.<field>`.
    pub fn set_tenancy(
        &mut self,
        policy: &Policy,
        tenancy: std::sync::Arc<crate::tenant::Tenancy>,
    ) -> Result<(), RequestError> {
        let n = crate::check::scope::TENANT_BUILTINS.len();
        let t = &tenancy;
        let mut values = vec![
            Some(FieldValue::Str(t.team.clone())),
            t.org.clone().map(FieldValue::Str),
            Some(FieldValue::Str(t.key.clone())),
        ];
        for def in policy.tenant_fields.iter().skip(n) {
            let value = match t.attributes.get(&def.name) {
                Some(v) => Some(
                    typed_field_value(&policy.enums, def, input(v)).map_err(|e| RequestError {
                        field: format!("tenant.{}", def.name),
                        message: e.message,
                    })?,
                ),
                None => def.default.clone(),
            };
            values.push(value);
        }
        self.tenant = values;
        self.tenancy = Some(tenancy);
        Ok(())
    }

    /// Sets a built-in field or one the policy declares, validated exactly as in a JSON body
    /// (this is the one place that validates request values). [`Input::Null`] leaves the
    /// field as it is. This is the typed path for embedding: no JSON values are built, and
    /// only strings that the request keeps (prompt, style) allocate.
    ///
    /// ```
    /// # let policy = genroute_core::Policy::from_yaml("p.yaml", genroute_core::DEMO_POLICY).unwrap();
    /// let mut request = genroute_core::Request::with_defaults(&policy, "a red fox at dawn");
    /// request.set(&policy, "priority", "quality".into())?;
    /// request.set(&policy, "duration", 8.into())?;
    /// request.set(&policy, "tier", "pro".into())?;
    /// # Ok::<(), genroute_core::RequestError>(())
    /// ```
    pub fn set(
        &mut self,
        policy: &Policy,
        field: &str,
        value: Input<'_>,
    ) -> Result<(), RequestError> {
        if value == Input::Null {
            // Not given: nothing to set, but an unknown name is still an error.
            let builtin = matches!(
                field,
                "prompt"
                    | "negative_prompt"
                    | "style"
                    | "priority"
                    | "aspect_ratio"
                    | "duration"
                    | "quality_threshold"
            );
            if !builtin && !policy.fields.iter().any(|f| f.name == field) {
                return Err(unknown_field(policy, field));
            }
            return Ok(());
        }
        let enums = policy.enums.as_slice();
        match field {
            "prompt" => self.prompt = string(field, value)?.to_string(),
            "negative_prompt" => self.negative_prompt = Some(string(field, value)?.to_string()),
            "style" => self.style = Some(string(field, value)?.to_string()),
            "priority" => self.priority = enum_index(enums, field, EnumId::PRIORITY, value)?,
            "aspect_ratio" => {
                self.aspect_ratio = enum_index(enums, field, EnumId::ASPECT_RATIO, value)?
            }
            "duration" => {
                let duration = quantity(field, value)?;
                let max = Fixed::from_int(MAX_DURATION_SECONDS).unwrap_or(Fixed::ZERO);
                if duration <= Fixed::ZERO || duration > max {
                    return Err(err("duration", format!("{duration} is out of range; give seconds between 0 and {MAX_DURATION_SECONDS}, e.g. 8")));
                }
                self.duration = duration;
            }
            "quality_threshold" => {
                let q = quantity(field, value)?;
                if q < Fixed::ZERO || q > Fixed::ONE {
                    return Err(err(
                        "quality_threshold",
                        format!("{q} is out of range; give a fraction between 0 and 1, e.g. 0.8"),
                    ));
                }
                self.quality_threshold = q;
            }
            _ => match policy.fields.iter().position(|f| f.name == field) {
                Some(i) => {
                    self.fields[i] = Some(typed_field_value(enums, &policy.fields[i], value)?)
                }
                None => return Err(unknown_field(policy, field)),
            },
        }
        Ok(())
    }
}

/// A value for [`Request::set`].
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
fn input(v: &Json) -> Input<'_> {
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

fn unknown_field(policy: &Policy, field: &str) -> RequestError {
    let builtin = [
        "prompt",
        "negative_prompt",
        "style",
        "priority",
        "aspect_ratio",
        "duration",
        "quality_threshold",
    ];
    let known = builtin
        .into_iter()
        .chain(policy.fields.iter().map(|f| f.name.as_str()));
    let hint = match did_you_mean(field, known) {
        Some(s) => format!("did you mean `{s}`?"),
        None => "declare it under `request_fields` in the policy to route on it".to_string(),
    };
    err(field, format!("unknown field; {hint}"))
}

fn string<'a>(field: &str, v: Input<'a>) -> Result<&'a str, RequestError> {
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
fn quantity(field: &str, v: Input<'_>) -> Result<Fixed, RequestError> {
    match v {
        Input::Float(f) => Fixed::from_f64_rounded(f).map_err(|e| err(field, e.to_string())),
        Input::Form(s) => match s.trim().parse::<f64>() {
            Ok(f) => Fixed::from_f64_rounded(f).map_err(|e| err(field, e.to_string())),
            Err(_) => Err(err(field, format!("`{s}` is not a number"))),
        },
        other => number(field, other),
    }
}

fn enum_index(
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

fn typed_field_value(
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
