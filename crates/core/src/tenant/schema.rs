//! The JSON Schema of the tenants file, generated from the serde types that load it
//! ([`super::raw`]), so it cannot drift from what genroute accepts.
//!
//! As for the policy schema ([`crate::policy::schema`]), every fixed-key object refuses
//! unknown keys (as the loader does) but admits keys starting with `x-` (notes).

use serde_json::{json, Value};

use super::raw::RawTenants;

/// The schema, as JSON.
pub fn tenants_schema() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(RawTenants)).unwrap_or_default();
    crate::policy::schema::close_objects(&mut schema);
    if let Value::Object(map) = &mut schema {
        map.insert("title".into(), json!("genroute tenants"));
        map.insert(
            "$id".into(),
            json!("https://genroute.dev/schema/tenants.schema.json"),
        );
    }
    schema
}
