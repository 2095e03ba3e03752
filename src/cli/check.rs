//! `genroute check`: load policy files and print every problem with its location.
//!
//! Loading is the check: the library parses, type-checks and lints while it loads, and this
//! command only renders what it found (text on stderr, or one JSON report on stdout).

use std::io::IsTerminal;
use std::process::ExitCode;

use super::common::{load, read_source};
use super::Format;

/// `genroute check` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Policy files.
    #[arg(required = true)]
    files: Vec<String>,
    /// Treat lint warnings as errors.
    #[arg(long)]
    deny_warnings: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Checks every file, even after one fails; exits 1 if any has errors (or warnings, with
/// `--deny-warnings`).
pub fn run(args: Args) -> Result<ExitCode, String> {
    let Args {
        files,
        deny_warnings,
        format,
    } = args;
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut failed = false;
    let mut report = Vec::new();
    for path in &files {
        match load(path) {
            Err(message) => {
                failed = true;
                eprintln!("error: {message}");
                report.push(serde_json::json!({"file": path, "ok": false, "diagnostics": [{"severity": "error", "code": "unreadable", "message": message}]}));
            }
            Ok(Ok(policy)) => {
                let warnings = &policy.warnings;
                let denied = deny_warnings && !warnings.is_empty();
                failed |= denied;
                if format == Format::Text {
                    if !warnings.is_empty() {
                        let source = read_source(path)?;
                        eprint!("{}", source.render(warnings, color));
                    }
                    let (n, b, r) = (warnings.len(), policy.backends.len(), policy.rules.len());
                    let plural = if n == 1 { "" } else { "s" };
                    match (n, denied) {
                        (0, _) => println!("{path}: ok ({b} backends, {r} rules)"),
                        (_, false) => println!(
                            "{path}: ok with {n} warning{plural} ({b} backends, {r} rules)"
                        ),
                        (_, true) => {
                            eprintln!("{path}: {n} warning{plural}, denied by --deny-warnings")
                        }
                    }
                }
                report.push(
                    serde_json::json!({"file": path, "ok": !denied, "diagnostics": warnings}),
                );
            }
            Ok(Err(e)) => {
                failed = true;
                if format == Format::Text {
                    eprint!("{}", e.source.render(&e.diagnostics, color));
                    let n = e.diagnostics.len();
                    eprintln!("{path}: {n} error{}", if n == 1 { "" } else { "s" });
                }
                report.push(
                    serde_json::json!({"file": path, "ok": false, "diagnostics": e.diagnostics}),
                );
            }
        }
    }
    if format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
