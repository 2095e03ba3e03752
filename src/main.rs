//! The `genroute` command line. It only translates: flags and files in, library calls, text
//! or JSON out. Every decision is made by the library.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use genroute::check::scope::BUILTIN_NAMES;
use genroute::{BreakerState, Fixed, LoadOptions, Policy, Request, Source, State};

/// Routes generation requests across backends within a budget, and explains every decision.
#[derive(Parser)]
#[command(name = "genroute", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load and check policy files; print every problem with its location.
    Check {
        /// Policy files.
        #[arg(required = true)]
        files: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Show which backend would serve a request now, and why.
    Explain {
        /// Policy file.
        #[arg(long)]
        policy: String,
        /// The request as JSON, or @FILE to read it from a file.
        #[arg(long, default_value = "{}")]
        request: String,
        /// Month-to-date spend in USD (committed plus reserved).
        #[arg(long, default_value = "0", allow_hyphen_values = true)]
        spend: String,
        /// A breaker state, as NAME=closed|open|half_open. Repeatable.
        #[arg(long = "breaker", value_name = "NAME=STATE")]
        breakers: Vec<String>,
        /// Attempts that already failed for this request.
        #[arg(long, default_value_t = 0)]
        failures: u32,
        /// The time of the decision (RFC 3339); default now.
        #[arg(long)]
        now: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// List the names a condition can read, with their types.
    Names,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Exit code for usage errors and invalid policies.
const USAGE: u8 = 2;
/// Exit code for "no backend is eligible".
const NONE_ELIGIBLE: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { files, format } => check(&files, format),
        Command::Explain { policy, request, spend, breakers, failures, now, format } => {
            explain(&policy, &request, &spend, &breakers, failures, now.as_deref(), format)
        }
        Command::Names => {
            names();
            Ok(ExitCode::SUCCESS)
        }
    };
    result.unwrap_or_else(|message| {
        eprintln!("error: {message}");
        ExitCode::from(USAGE)
    })
}

fn read_source(path: &str) -> Result<Source, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
    Ok(Source::new(path, text))
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn load(path: &str) -> Result<Result<Policy, genroute::LoadError>, String> {
    let source = read_source(path)?;
    Ok(Policy::load(source, &LoadOptions { env: &env_var }))
}

fn check(files: &[String], format: Format) -> Result<ExitCode, String> {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut failed = false;
    let mut report = Vec::new();
    for path in files {
        match load(path) {
            Err(message) => {
                failed = true;
                eprintln!("error: {message}");
                report.push(serde_json::json!({"file": path, "ok": false, "diagnostics": [{"severity": "error", "code": "unreadable", "message": message}]}));
            }
            Ok(Ok(policy)) => {
                if format == Format::Text {
                    println!("{path}: ok ({} backends, {} rules)", policy.backends.len(), policy.rules.len());
                }
                report.push(serde_json::json!({"file": path, "ok": true, "diagnostics": []}));
            }
            Ok(Err(e)) => {
                failed = true;
                if format == Format::Text {
                    eprint!("{}", e.source.render(&e.diagnostics, color));
                    let n = e.diagnostics.len();
                    eprintln!("{path}: {n} error{}", if n == 1 { "" } else { "s" });
                }
                report.push(serde_json::json!({"file": path, "ok": false, "diagnostics": e.diagnostics}));
            }
        }
    }
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

#[allow(clippy::too_many_arguments)]
fn explain(
    policy_path: &str,
    request: &str,
    spend: &str,
    breakers: &[String],
    failures: u32,
    now: Option<&str>,
    format: Format,
) -> Result<ExitCode, String> {
    let policy = match load(policy_path)? {
        Ok(p) => p,
        Err(e) => {
            eprint!("{e}");
            return Err(format!("`{policy_path}` is not a valid policy; run `genroute check {policy_path}`"));
        }
    };
    let body = match request.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(file).map_err(|e| format!("cannot read request file `{file}`: {e}"))?,
        None => request.to_string(),
    };
    let request = Request::from_json(&policy, &body).map_err(|e| format!("--request: {e}"))?;
    let spend: Fixed = spend
        .parse()
        .map_err(|e| format!("--spend: {e}; give USD such as 12.50"))?;
    if spend.is_negative() {
        return Err(format!("--spend: {spend} is negative; give the month's spend in USD, e.g. 12.50"));
    }
    let now = match now {
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map_err(|e| format!("--now: `{t}` is not an RFC 3339 time ({e}); e.g. 2026-11-25T12:00:00Z"))?
            .with_timezone(&chrono::Utc),
        None => chrono::Utc::now(),
    };
    let mut state = State::new(&policy, now).with_spend(spend).with_failures(failures);
    for b in breakers {
        let (name, value) = b
            .split_once('=')
            .ok_or_else(|| format!("--breaker: `{b}` should be NAME=closed|open|half_open"))?;
        let value = match value {
            "closed" => BreakerState::Closed,
            "open" => BreakerState::Open,
            "half_open" => BreakerState::HalfOpen,
            other => return Err(format!("--breaker: `{other}` is not closed, open or half_open")),
        };
        state.set_breaker(&policy, name, value).map_err(|e| format!("--breaker: {e}"))?;
    }
    let why = policy.explain(&request, &state);
    match format {
        Format::Text => print!("{}", why.to_text()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&why).map_err(|e| e.to_string())?),
    }
    Ok(if why.backend.is_some() { ExitCode::SUCCESS } else { ExitCode::from(NONE_ELIGIBLE) })
}

fn names() {
    let width = BUILTIN_NAMES.iter().map(|n| n.name.len()).max().unwrap_or(0);
    for n in BUILTIN_NAMES {
        let alias = n.alias.map(|a| format!(" (or `{a}`)")).unwrap_or_default();
        println!("{:width$}  {:<32} {}{alias}", n.name, n.ty, n.doc);
    }
    println!("{:width$}  {:<32} same as backend.*, for any backend by name", "backends.<name>.*", "");
    println!("{:width$}  {:<32} a field the policy declares under request_fields", "request.<field>", "");
}
