//! `genroute fmt`: rewrite conditions into canonical form, leaving the rest of the file
//! untouched.
//!
//! [`genroute::policy::fmt`] computes the formatted text and the diff; this module writes
//! files (through a temporary file and a rename, so an interrupted run leaves the original)
//! or, with `--check`, only reports.

use std::io::IsTerminal;
use std::process::ExitCode;

use super::common::read_source;
use super::USAGE;

/// `genroute fmt` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Policy files.
    #[arg(required = true)]
    files: Vec<String>,
    /// Change nothing; show a diff and exit 1 if a file is not formatted.
    #[arg(long)]
    check: bool,
}

/// Formats every file; exits [`USAGE`] if a file does not parse, else 1 if `--check` found
/// a file not formatted.
pub fn run(args: Args) -> Result<ExitCode, String> {
    let mut unformatted = false;
    let mut failed = false;
    for path in &args.files {
        let source = read_source(path)?;
        match genroute::policy::fmt::format_policy(&source) {
            Err(diags) => {
                failed = true;
                eprint!("{}", source.render(&diags, std::io::stderr().is_terminal()));
            }
            Ok(new) if new == source.text => {}
            Ok(new) if args.check => {
                unformatted = true;
                print!("{}", genroute::policy::fmt::diff(path, &source.text, &new));
            }
            Ok(new) => {
                let tmp = format!("{path}.genroute-fmt.tmp");
                std::fs::write(&tmp, &new).map_err(|e| format!("cannot write `{tmp}`: {e}"))?;
                std::fs::rename(&tmp, path).map_err(|e| format!("cannot replace `{path}`: {e}"))?;
                println!("formatted {path}");
            }
        }
    }
    Ok(if failed {
        ExitCode::from(USAGE)
    } else if unformatted {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
