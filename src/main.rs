//! The `genroute` executable: parse the command line, set up telemetry, run the command, and
//! turn its result into an exit code. The commands are in [`cli`].

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// Parses (clap exits on a usage error), runs the command with telemetry around it, and
/// prints an error as `error: ...` with exit code [`cli::USAGE`].
fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let telemetry = cli::telemetry::init_tracing();
    let result = cli::run(cli);
    if let Some(provider) = telemetry {
        let _ = provider.shutdown();
    }
    result.unwrap_or_else(|message| {
        eprintln!("error: {message}");
        ExitCode::from(cli::USAGE)
    })
}
