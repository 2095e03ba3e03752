//! What a policy says about a `/v1/videos` server: its dialect, and the fields sent on every
//! create call (`api.parameters`), checked at load against the fields that dialect knows.
//!
//! Why dialects: the servers that speak `/v1/videos` agree on the paths and the job object but
//! not on the body. vLLM-Omni reads form fields only (`prompt: str = Form(...)`) and answers a
//! JSON body with 422; SGLang Diffusion reads JSON (its multipart path wants an input image);
//! OpenAI's own package, gateways and genroute's worker read multipart form. The field names
//! below come from each server's own request model (vLLM-Omni's `_parse_video_form`, SGLang's
//! `VideoGenerationsRequest`, the worker's create handler), so a misspelled
//! `num_inference_step` is an error at load instead of a field the server silently ignores.
//! The wire mapping itself (encoding, statuses, cancel) lives in `adapter::videos`.

use std::fmt;

use crate::num::Fixed;

/// The `/v1/videos` server a `videos` backend talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// OpenAI's shape as its Python package sends it (multipart form): gateways and
    /// genroute's worker. The default.
    #[default]
    OpenAi,
    /// vLLM-Omni (`vllm serve … --omni`): form fields only.
    VllmOmni,
    /// SGLang Diffusion (`sglang serve`) and FastVideo: JSON.
    Sglang,
}

impl Dialect {
    /// Names as written in `api.dialect`.
    pub const NAMES: [&'static str; 3] = ["openai", "vllm-omni", "sglang"];

    /// Parses an `api.dialect` value.
    pub fn parse(s: &str) -> Option<Dialect> {
        Some(match s {
            "openai" => Dialect::OpenAi,
            "vllm-omni" => Dialect::VllmOmni,
            "sglang" => Dialect::Sglang,
            _ => return None,
        })
    }

    /// As written in `api.dialect`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::OpenAi => "openai",
            Dialect::VllmOmni => "vllm-omni",
            Dialect::Sglang => "sglang",
        }
    }

    /// The fields `api.parameters` may set for this dialect, with their types.
    pub fn parameters(self) -> &'static [(&'static str, Kind)] {
        match self {
            Dialect::OpenAi => OPENAI,
            Dialect::VllmOmni => VLLM_OMNI,
            Dialect::Sglang => SGLANG,
        }
    }
}

/// The type of a create-call field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole number of at least 1 (frames, steps, pixels).
    Count,
    /// Any whole number (a seed).
    Int,
    /// A decimal number (guidance scales, ratios).
    Number,
    /// `true` or `false`.
    Bool,
    /// Text.
    Text,
    /// `WIDTHxHEIGHT`, e.g. `720x480`.
    Size,
    /// A mapping, sent as a JSON object (SGLang's `diffusers_kwargs`).
    Map,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Count => "a whole number of at least 1",
            Kind::Int => "a whole number",
            Kind::Number => "a number",
            Kind::Bool => "`true` or `false`",
            Kind::Text => "text",
            Kind::Size => "a size `WIDTHxHEIGHT`, e.g. `720x480`",
            Kind::Map => "a mapping",
        }
    }
}

use Kind::{Bool, Count, Int, Map, Number, Size, Text};

/// genroute's worker and OpenAI-style gateways.
const OPENAI: &[(&str, Kind)] = &[
    ("size", Size),
    ("width", Count),
    ("height", Count),
    ("num_frames", Count),
    ("fps", Count),
    ("num_inference_steps", Count),
    ("guidance_scale", Number),
    ("negative_prompt", Text),
    ("seed", Int),
];

/// vLLM-Omni's `_parse_video_form` (text-to-video fields).
const VLLM_OMNI: &[(&str, Kind)] = &[
    ("size", Size),
    ("width", Count),
    ("height", Count),
    ("num_frames", Count),
    ("fps", Count),
    ("num_inference_steps", Count),
    ("guidance_scale", Number),
    ("guidance_scale_2", Number),
    ("boundary_ratio", Number),
    ("flow_shift", Number),
    ("true_cfg_scale", Number),
    ("negative_prompt", Text),
    ("seed", Int),
    ("user", Text),
    ("enable_frame_interpolation", Bool),
    ("frame_interpolation_exp", Count),
    ("frame_interpolation_scale", Number),
    ("extra_params", Map),
];

/// SGLang's `VideoGenerationsRequest`.
const SGLANG: &[(&str, Kind)] = &[
    ("size", Size),
    ("width", Count),
    ("height", Count),
    ("num_frames", Count),
    ("fps", Count),
    ("num_inference_steps", Count),
    ("guidance_scale", Number),
    ("guidance_scale_2", Number),
    ("true_cfg_scale", Number),
    ("flow_shift", Number),
    ("negative_prompt", Text),
    ("seed", Int),
    ("generator_device", Text),
    ("max_sequence_length", Count),
    ("enable_teacache", Bool),
    ("enable_frame_interpolation", Bool),
    ("frame_interpolation_exp", Count),
    ("frame_interpolation_scale", Number),
    ("diffusers_kwargs", Map),
];

/// Fields genroute fills from the request itself; a policy cannot fix them.
const FROM_REQUEST: &[&str] = &["prompt", "model", "seconds"];

/// One field's value, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// A whole number.
    Int(i64),
    /// A decimal number (six decimals, as all of genroute's numbers).
    Number(Fixed),
    /// A flag.
    Bool(bool),
    /// Text (also a size).
    Text(String),
    /// A mapping, as JSON text.
    Json(String),
}

impl Param {
    /// As JSON, for servers that read JSON bodies.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Param::Int(i) => (*i).into(),
            Param::Number(n) => serde_json::from_str(&n.to_string())
                .unwrap_or_else(|_| serde_json::Value::from(n.to_f64())),
            Param::Bool(b) => (*b).into(),
            Param::Text(s) => s.clone().into(),
            Param::Json(j) => serde_json::from_str(j).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// As a form field's text.
impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Param::Int(i) => write!(f, "{i}"),
            Param::Number(n) => write!(f, "{n}"),
            Param::Bool(b) => write!(f, "{b}"),
            Param::Text(s) | Param::Json(s) => f.write_str(s),
        }
    }
}

/// A problem with one entry of `api.parameters`, for the loader to place and report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The parameter's name.
    pub name: String,
    /// Whether the key itself is wrong (else its value is).
    pub at_key: bool,
    /// Diagnostic code.
    pub code: &'static str,
    /// The message.
    pub message: String,
    /// The label under the span.
    pub label: &'static str,
    /// How to fix it.
    pub help: String,
}

/// Checks `api.parameters` against a dialect: known names, values of their type.
pub fn check_parameters(
    dialect: Dialect,
    raw: &std::collections::BTreeMap<String, serde_json::Value>,
) -> (Vec<(String, Param)>, Vec<Problem>) {
    let known = dialect.parameters();
    let mut params = Vec::new();
    let mut problems = Vec::new();
    for (name, value) in raw {
        let Some(&(_, kind)) = known.iter().find(|(n, _)| n == name) else {
            let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
            let help = if FROM_REQUEST.contains(&name.as_str()) {
                format!("genroute sets `{name}` from each request; remove it here")
            } else {
                match crate::check::scope::did_you_mean(name, names.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "the `{}` dialect knows {}",
                        dialect.as_str(),
                        names
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            };
            problems.push(Problem {
                name: name.clone(),
                at_key: true,
                code: "unknown-parameter",
                message: format!(
                    "`{name}` is not a create-call field of the `{}` dialect",
                    dialect.as_str()
                ),
                label: "not a field of this dialect",
                help,
            });
            continue;
        };
        match value_of(kind, value) {
            Some(p) => params.push((name.clone(), p)),
            None => problems.push(Problem {
                name: name.clone(),
                at_key: false,
                code: "bad-parameter",
                message: format!(
                    "`{name}` is `{}`; it must be {}",
                    short(value),
                    kind.describe()
                ),
                label: "wrong type",
                help: match kind {
                    Kind::Size => "write the width and height in pixels, e.g. `720x480`".into(),
                    Kind::Count => format!("e.g. `{name}: 49`"),
                    _ => format!("give {}", kind.describe()),
                },
            }),
        }
    }
    (params, problems)
}

fn value_of(kind: Kind, v: &serde_json::Value) -> Option<Param> {
    use serde_json::Value as V;
    Some(match (kind, v) {
        (Kind::Count, V::Number(n)) => Param::Int(n.as_i64().filter(|i| *i >= 1)?),
        (Kind::Int, V::Number(n)) => Param::Int(n.as_i64()?),
        (Kind::Number, V::Number(n)) => Param::Number(n.to_string().parse().ok()?),
        (Kind::Bool, V::Bool(b)) => Param::Bool(*b),
        (Kind::Text, V::String(s)) if s.len() <= 4096 => Param::Text(s.clone()),
        (Kind::Size, V::String(s)) => {
            parse_size(s)?;
            Param::Text(s.clone())
        }
        (Kind::Map, V::Object(_)) => Param::Json(serde_json::to_string(v).ok()?),
        _ => return None,
    })
}

fn short(v: &serde_json::Value) -> String {
    let s = match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

/// Parses `WIDTHxHEIGHT` (each 1 to 16384 pixels).
pub fn parse_size(s: &str) -> Option<(u32, u32)> {
    let (w, h) = s.split_once('x')?;
    let dim = |t: &str| {
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse::<u32>().ok())
            .flatten()
            .filter(|n| (1..=16384).contains(n))
    };
    Some((dim(w)?, dim(h)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(d: Dialect, v: serde_json::Value) -> (Vec<(String, Param)>, Vec<Problem>) {
        let map = serde_json::from_value(v).unwrap();
        check_parameters(d, &map)
    }

    #[test]
    fn known_fields_of_their_type_pass() {
        let (p, problems) = check(
            Dialect::VllmOmni,
            json!({"size": "720x480", "num_frames": 49, "fps": 8, "guidance_scale": 6.0, "seed": -3}),
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(p.len(), 5);
        assert!(p.contains(&("guidance_scale".into(), Param::Number("6".parse().unwrap()))));
        assert!(p.contains(&("seed".into(), Param::Int(-3))));
    }

    #[test]
    fn misspelled_and_mistyped_fields_are_named() {
        let (_, problems) = check(
            Dialect::Sglang,
            json!({"num_inference_step": 50, "num_frames": 0, "size": "720*480", "prompt": "x"}),
        );
        let by: std::collections::HashMap<_, _> =
            problems.iter().map(|p| (p.name.as_str(), p)).collect();
        assert_eq!(
            by["num_inference_step"].help,
            "did you mean `num_inference_steps`?"
        );
        assert!(by["num_frames"].message.contains("at least 1"));
        assert_eq!(by["size"].code, "bad-parameter");
        assert!(by["prompt"].help.contains("from each request"));
    }

    #[test]
    fn dialects_differ() {
        let (_, problems) = check(Dialect::OpenAi, json!({"diffusers_kwargs": {"a": 1}}));
        assert_eq!(problems.len(), 1);
        let (p, problems) = check(Dialect::Sglang, json!({"diffusers_kwargs": {"a": 1}}));
        assert!(problems.is_empty());
        assert_eq!(p[0].1.to_json(), json!({"a": 1}));
        assert_eq!(p[0].1.to_string(), r#"{"a":1}"#);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("720x480"), Some((720, 480)));
        assert_eq!(parse_size("32x32"), Some((32, 32)));
        for bad in [
            "720X480", "x480", "720x", "0x10", "99999x10", "+7x7", "7x7x7",
        ] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }
}
