//! `genroute schema`: the JSON Schema of policy files (or, with `--tenants`, of tenants
//! files), for editors (yaml-language-server).
//!
//! Each schema is derived from the library's types for that file, so it describes what the
//! loader accepts.

use std::process::ExitCode;

/// `genroute schema` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The schema of tenants files instead of policies.
    #[arg(long)]
    tenants: bool,
}

/// Prints the schema as pretty JSON.
pub fn run(args: Args) -> Result<ExitCode, String> {
    let schema = if args.tenants {
        genroute::tenant::schema::tenants_schema()
    } else {
        genroute::policy::schema::policy_schema()
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&schema).map_err(|e| e.to_string())?
    );
    Ok(ExitCode::SUCCESS)
}
