//! The tenants file as written: serde types that mirror the YAML one to one.
//!
//! As for policies ([`crate::policy::raw`]), these types describe shape only; meaning (ids
//! that follow the rule, teams and orgs that exist, amounts that are not negative, scopes that
//! exist) is established by [`super::load`]. They are also what the JSON Schema is derived
//! from ([`super::schema`]), so the schema and the loader cannot disagree on shape.

use std::collections::BTreeMap;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;

use crate::num::Fixed;

/// The whole file.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RawTenants {
    /// Organisations, by id. An organisation's budget binds every team in it.
    #[serde(default)]
    #[schemars(schema_with = "ids::<RawOrg>")]
    pub orgs: BTreeMap<String, RawOrg>,
    /// Teams, by id, each in at most one organisation.
    #[serde(default)]
    #[schemars(schema_with = "ids::<RawTeam>")]
    pub teams: BTreeMap<String, RawTeam>,
    /// API keys, by id; each belongs to one team.
    #[serde(default)]
    #[schemars(schema_with = "ids::<RawKey>")]
    pub keys: BTreeMap<String, RawKey>,
}

/// One organisation.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RawOrg {
    /// What the organisation as a whole may spend.
    #[serde(default)]
    pub budget: Option<RawBudget>,
    /// Values conditions can read (`tenant.<name>`); a team's and a key's win over these.
    #[serde(default)]
    #[schemars(schema_with = "attributes")]
    pub attributes: BTreeMap<String, serde_yaml::Value>,
}

/// One team.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RawTeam {
    /// The organisation it belongs to (optional).
    #[serde(default)]
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]{0,62}$"))]
    pub org: Option<String>,
    /// What the team as a whole may spend, across all its keys.
    #[serde(default)]
    pub budget: Option<RawBudget>,
    /// Values conditions can read; a key's win over these, these over the organisation's.
    #[serde(default)]
    #[schemars(schema_with = "attributes")]
    pub attributes: BTreeMap<String, serde_yaml::Value>,
}

/// One API key. The secret is never in the file: only the SHA-256 of the whole token.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RawKey {
    /// The team it belongs to.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]{0,62}$"))]
    pub team: String,
    /// `sha256:` and the lowercase hex SHA-256 of the whole token (`genroute keys create`
    /// prints it; `genroute keys hash` computes it from a token).
    #[schemars(regex(pattern = r"^sha256:[0-9a-f]{64}$"))]
    pub hash: String,
    /// What the key may do: `generate`, `decide`, `jobs:read`, `metrics`, `admin` (which
    /// implies every other scope).
    #[schemars(schema_with = "scopes")]
    pub scopes: Vec<String>,
    /// What this key may spend, on top of its team's and organisation's budgets.
    #[serde(default)]
    pub budget: Option<RawBudget>,
    /// Request-rate and concurrency limits.
    #[serde(default)]
    pub limits: Option<RawLimits>,
    /// A revoked key stays in the file, so that its id is not reused and a request with it
    /// is told it is revoked.
    #[serde(default)]
    pub revoked: bool,
    /// Values conditions can read; these win over the team's and the organisation's.
    #[serde(default)]
    #[schemars(schema_with = "attributes")]
    pub attributes: BTreeMap<String, serde_yaml::Value>,
}

/// A budget: monthly and daily caps in USD, and caps per backend.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RawBudget {
    /// Spend per calendar month (UTC), in USD.
    #[serde(default)]
    pub monthly_usd: Option<Fixed>,
    /// Spend per calendar day (UTC), in USD.
    #[serde(default)]
    pub daily_usd: Option<Fixed>,
    /// Caps on the spend on one backend, by the policy's backend name.
    #[serde(default)]
    pub backends: BTreeMap<String, RawCaps>,
}

/// The caps on one backend.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RawCaps {
    /// Spend on this backend per calendar month (UTC), in USD.
    #[serde(default)]
    pub monthly_usd: Option<Fixed>,
    /// Spend on this backend per calendar day (UTC), in USD.
    #[serde(default)]
    pub daily_usd: Option<Fixed>,
}

/// `limits:` of a key.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RawLimits {
    /// Requests per minute, across every replica (at least 1).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub requests_per_minute: Option<u32>,
    /// Jobs running at once, across every replica (at least 1).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub jobs_in_flight: Option<u32>,
}

/// The pattern every org, team and key id matches.
pub const ID_PATTERN: &str = "^[a-z0-9][a-z0-9-]{0,62}$";

/// A map keyed by id.
fn ids<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    let mut schema = g.subschema_for::<BTreeMap<String, T>>();
    schema.insert(
        "propertyNames".into(),
        serde_json::json!({ "pattern": ID_PATTERN }),
    );
    schema
}

fn attributes(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "Scalar values (string, number or bool) by name.",
        "type": "object",
        "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" },
        "additionalProperties": { "type": ["string", "number", "boolean"] }
    })
}

fn scopes(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "minItems": 1,
        "uniqueItems": true,
        "items": { "enum": super::Scope::NAMES }
    })
}
