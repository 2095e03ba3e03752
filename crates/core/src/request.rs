//! Generation requests: the seed's `GenerationRequest` fields plus the policy's own fields,
//! validated against the policy and resolved to the indices conditions compare with.

use serde_json::{Map, Value as Json};

use crate::check::scope::did_you_mean;
use crate::eval::FieldValue;
use crate::expr::{EnumId, Type};
use crate::input::{enum_index, err, input, quantity, string, typed_field_value};
pub use crate::input::{Input, RequestError};
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
