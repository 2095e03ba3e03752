//! The JSON Schema of the policy file, generated from the serde types that load it
//! ([`super::raw`]), so it cannot drift from what genroute accepts.
//!
//! One adjustment is made to the generated schema: every fixed-key object refuses unknown
//! keys (as the loader does) but admits keys starting with `x-` (the loader ignores those).

use serde_json::{json, Value};

use super::raw::RawPolicy;

/// The schema, as JSON.
pub fn policy_schema() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(RawPolicy)).unwrap_or_default();
    close_objects(&mut schema);
    if let Value::Object(map) = &mut schema {
        map.insert("title".into(), json!("genroute policy"));
        map.insert(
            "$id".into(),
            json!("https://genroute.dev/schema/policy.schema.json"),
        );
    }
    schema
}

pub(crate) fn close_objects(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), json!(false));
                map.insert("patternProperties".into(), json!({"^x-": {}}));
            }
            map.values_mut().for_each(close_objects);
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}
