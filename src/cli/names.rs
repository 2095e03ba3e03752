//! `genroute names`: the names a condition can read, with their types.
//!
//! The list is the library's ([`BUILTIN_NAMES`], which also feeds the checker's "did you
//! mean" suggestions); this module only lays it out.

use std::process::ExitCode;

use genroute::check::scope::BUILTIN_NAMES;

/// Prints one line per built-in name (name, type, description), then the two families of
/// names that depend on the policy.
pub fn run() -> Result<ExitCode, String> {
    let width = BUILTIN_NAMES
        .iter()
        .map(|n| n.name.len())
        .max()
        .unwrap_or(0);
    for n in BUILTIN_NAMES {
        let alias = n.alias.map(|a| format!(" (or `{a}`)")).unwrap_or_default();
        println!("{:width$}  {:<32} {}{alias}", n.name, n.ty, n.doc);
    }
    println!(
        "{:width$}  {:<32} same as backend.*, for any backend by name",
        "backends.<name>.*", ""
    );
    println!(
        "{:width$}  {:<32} a field the policy declares under request_fields",
        "request.<field>", ""
    );
    println!(
        "{:width$}  {:<32} a value the policy declares under tenant_fields (from the tenants file's attributes)",
        "tenant.<field>", ""
    );
    Ok(ExitCode::SUCCESS)
}
