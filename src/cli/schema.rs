//! `genroute schema`: the JSON Schema of policy files, for editors (yaml-language-server).
//!
//! The schema is derived from the library's policy types, so it describes what the loader
//! accepts.

use std::process::ExitCode;

/// Prints the schema as pretty JSON.
pub fn run() -> Result<ExitCode, String> {
    let schema = genroute::policy::schema::policy_schema();
    println!(
        "{}",
        serde_json::to_string_pretty(&schema).map_err(|e| e.to_string())?
    );
    Ok(ExitCode::SUCCESS)
}
