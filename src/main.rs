//! The `genroute` command line. It only translates: flags and files in, library calls, text
//! or JSON out. Every decision is made by the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use opentelemetry_otlp::WithExportConfig;

use genroute::check::scope::BUILTIN_NAMES;
use genroute::exec::{DirSink, Generation, Router, SystemClock};
use genroute::ledger::sqlite::SqliteStore;
use genroute::ledger::{Month, Store};
use genroute::{BreakerState, Fixed, LoadOptions, Policy, Request, Source};

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
        /// Treat lint warnings as errors.
        #[arg(long)]
        deny_warnings: bool,
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
        /// Month-to-date spend in USD (committed plus reserved); default: read from the ledger.
        #[arg(long, allow_hyphen_values = true)]
        spend: Option<String>,
        /// Ledger directory (default: $GENROUTE_DATA_DIR, else the user's data directory).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// A breaker state, as NAME=closed|open|half_open, overriding the ledger's. Repeatable.
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
    /// Generate a video: decide, reserve, call, fall back.
    Generate {
        /// Policy file.
        #[arg(long)]
        policy: String,
        /// What to generate.
        #[arg(long)]
        prompt: String,
        /// quality, balanced or speed.
        #[arg(long)]
        priority: Option<String>,
        /// Seconds.
        #[arg(long)]
        duration: Option<String>,
        /// e.g. 16:9.
        #[arg(long)]
        aspect_ratio: Option<String>,
        /// Lowest acceptable quality, 0 to 1.
        #[arg(long)]
        quality_threshold: Option<String>,
        /// What to avoid.
        #[arg(long)]
        negative_prompt: Option<String>,
        /// Extra request fields as a JSON object, e.g. '{"tier": "pro"}'.
        #[arg(long)]
        fields: Option<String>,
        /// Ledger directory (default: $GENROUTE_DATA_DIR, else the user's data directory).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Decide and show what would be called, without calling or spending.
        #[arg(long)]
        dry_run: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// The month's budget and the ledger's entries.
    Budget {
        #[command(subcommand)]
        command: BudgetCommand,
    },
    /// List the names a condition can read, with their types.
    Names,
    /// Print the JSON Schema of policy files (for editors: yaml-language-server).
    Schema,
    /// Replay a month of requests through the policy and report cost, mix and latency.
    Simulate(SimArgs),
    /// Run policy test files (default: policies/tests).
    Test {
        /// Test files or directories of them.
        paths: Vec<PathBuf>,
        /// Also report coverage: rules and backends never selected, clauses not seen both ways.
        #[arg(long)]
        coverage: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Rewrite conditions into canonical form, leaving the rest of the file untouched.
    Fmt {
        /// Policy files.
        #[arg(required = true)]
        files: Vec<String>,
        /// Change nothing; show a diff and exit 1 if a file is not formatted.
        #[arg(long)]
        check: bool,
    },
    /// Run the HTTP service.
    Serve {
        /// Policy file; watched and reloaded when it changes.
        #[arg(long)]
        policy: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Ledger store: sqlite:PATH or redis://HOST:PORT/DB (default: SQLite in the data directory).
        #[arg(long)]
        store: Option<String>,
        /// Data directory for the default SQLite store and saved videos.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Prefix of the Prometheus metric names.
        #[arg(long, default_value = "videogen")]
        metrics_prefix: String,
        /// How long decisions may reuse the ledger's spend and breaker figures, in milliseconds.
        #[arg(long, default_value_t = 100)]
        state_ttl_ms: u64,
    },
}

#[derive(Subcommand)]
enum BudgetCommand {
    /// This month's spend, reservations and what remains.
    Show {
        /// Policy file (for the budget figures).
        #[arg(long)]
        policy: String,
        /// Ledger directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Month as YYYY-MM (default: this month, UTC).
        #[arg(long)]
        month: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Every ledger entry of a month (or all months).
    History {
        /// Ledger directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Month as YYYY-MM (default: all).
        #[arg(long)]
        month: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
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
    let telemetry = init_tracing();
    let result = run(cli);
    if let Some(provider) = telemetry {
        let _ = provider.shutdown();
    }
    result.unwrap_or_else(|message| {
        eprintln!("error: {message}");
        ExitCode::from(USAGE)
    })
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Check {
            files,
            format,
            deny_warnings,
        } => check(&files, format, deny_warnings),
        Command::Explain {
            policy,
            request,
            spend,
            data_dir,
            breakers,
            failures,
            now,
            format,
        } => {
            let ledger = LedgerArgs { spend, data_dir };
            explain(
                &policy,
                &request,
                ledger,
                &breakers,
                failures,
                now.as_deref(),
                format,
            )
        }
        Command::Generate {
            policy,
            prompt,
            priority,
            duration,
            aspect_ratio,
            quality_threshold,
            negative_prompt,
            fields,
            data_dir,
            dry_run,
            format,
        } => {
            let mut body = serde_json::Map::new();
            body.insert("prompt".into(), prompt.into());
            let mut set = |k: &str, v: Option<String>, number: bool| -> Result<(), String> {
                let Some(v) = v else { return Ok(()) };
                let value = if number {
                    serde_json::from_str::<serde_json::Value>(&v)
                        .ok()
                        .filter(serde_json::Value::is_number)
                        .ok_or_else(|| {
                            format!("--{}: `{v}` is not a number", k.replace('_', "-"))
                        })?
                } else {
                    v.into()
                };
                body.insert(k.into(), value);
                Ok(())
            };
            let flags = (|| {
                set("priority", priority, false)?;
                set("duration", duration, true)?;
                set("aspect_ratio", aspect_ratio, false)?;
                set("quality_threshold", quality_threshold, true)?;
                set("negative_prompt", negative_prompt, false)
            })();
            match flags.and_then(|_| merge_fields(&mut body, fields.as_deref())) {
                Ok(()) => generate(&policy, body, data_dir, dry_run, format),
                Err(e) => Err(e),
            }
        }
        Command::Budget { command } => budget(command),
        Command::Serve {
            policy,
            listen,
            store,
            data_dir,
            metrics_prefix,
            state_ttl_ms,
        } => serve(
            policy,
            &listen,
            store.as_deref(),
            data_dir,
            metrics_prefix,
            state_ttl_ms,
        ),
        Command::Names => {
            names();
            Ok(ExitCode::SUCCESS)
        }
        Command::Fmt { files, check } => fmt(&files, check),
        Command::Test {
            paths,
            coverage,
            format,
        } => policy_tests(paths, coverage, format),
        Command::Simulate(args) => simulate(args),
        Command::Schema => {
            let schema = genroute::policy::schema::policy_schema();
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).map_err(|e| e.to_string())?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
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

fn check(files: &[String], format: Format, deny_warnings: bool) -> Result<ExitCode, String> {
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

/// Logs go to stderr, filtered by `RUST_LOG` (default: warnings). When
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans are also exported over OTLP/HTTP (protobuf) to
/// that endpoint, with their own filter (`genroute=info`). Prompts and keys are never logged.
fn init_tracing() -> Option<opentelemetry_sdk::trace::SdkTracerProvider> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let fmt = tracing_subscriber::fmt::layer()
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let provider = std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").and_then(|_| otlp_provider());
    let otel = provider.as_ref().map(|p| {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("genroute"))
            .with_filter(tracing_subscriber::EnvFilter::new("genroute=info"))
    });
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init();
    provider
}

fn otlp_provider() -> Option<opentelemetry_sdk::trace::SdkTracerProvider> {
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_timeout(std::time::Duration::from_secs(5))
        .build()
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("warning: OTLP export disabled: {e}");
            return None;
        }
    };
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("genroute")
        .build();
    Some(
        opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    )
}

fn merge_fields(
    body: &mut serde_json::Map<String, serde_json::Value>,
    fields: Option<&str>,
) -> Result<(), String> {
    let Some(text) = fields else { return Ok(()) };
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => {
            body.extend(map);
            Ok(())
        }
        _ => Err(format!(
            "--fields: `{text}` is not a JSON object such as {{\"tier\": \"pro\"}}"
        )),
    }
}

/// Where the ledger lives: `--data-dir`, else `$GENROUTE_DATA_DIR`, else the user's data
/// directory (`~/.local/share/genroute` on Linux), else `./.genroute`.
fn data_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("GENROUTE_DATA_DIR").map(PathBuf::from))
        .or_else(|| dirs::data_local_dir().map(|d| d.join("genroute")))
        .unwrap_or_else(|| PathBuf::from(".genroute"))
}

fn open_store(dir: &std::path::Path) -> Result<SqliteStore, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create data directory `{}`: {e}", dir.display()))?;
    SqliteStore::open(&dir.join("ledger.sqlite3")).map_err(|e| e.to_string())
}

fn load_valid(path: &str) -> Result<Policy, String> {
    match load(path)? {
        Ok(p) => Ok(p),
        Err(e) => {
            eprint!("{e}");
            Err(format!(
                "`{path}` is not a valid policy; run `genroute check {path}`"
            ))
        }
    }
}

fn router(policy: Policy, dir: &std::path::Path) -> Result<Router, String> {
    let store = open_store(dir)?;
    Ok(Router::new(
        Arc::new(policy),
        Arc::new(store),
        &env_var,
        Arc::new(SystemClock),
        Arc::new(DirSink(dir.join("videos"))),
    )
    .with_trace_prompts(trace_prompts()))
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn generate(
    policy_path: &str,
    body: serde_json::Map<String, serde_json::Value>,
    data_dir_flag: Option<PathBuf>,
    dry_run: bool,
    format: Format,
) -> Result<ExitCode, String> {
    let policy = load_valid(policy_path)?;
    let request = Request::from_map(&policy, body).map_err(|e| e.to_string())?;
    let dir = data_dir(data_dir_flag);
    let router = router(policy, &dir)?;
    let result = if dry_run {
        router.dry_run(&request)
    } else {
        runtime()?.block_on(router.generate(&request))
    }
    .map_err(|e| e.to_string())?;
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&result).map_err(|e| e.to_string())?
        ),
        Format::Text => print!("{}", generation_text(&result)),
    }
    let served = result.backend.is_some() && (dry_run || result.video.is_some());
    Ok(if served {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(NONE_ELIGIBLE)
    })
}

fn generation_text(g: &Generation) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "request   {}{}",
        g.request_id,
        if g.dry_run {
            " (dry run: nothing called, nothing spent)"
        } else {
            ""
        }
    );
    for (i, a) in g.attempts.iter().enumerate() {
        let model = a
            .model
            .as_deref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        let sim = a
            .simulated_seconds
            .map(|s| format!(", simulated {s} s"))
            .unwrap_or_default();
        let msg = a
            .message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "attempt   {}. {}{model} -> {} in {} ms{sim}, cost {}{msg}",
            i + 1,
            a.backend,
            a.outcome,
            a.latency_ms,
            a.cost_usd
        );
    }
    match (&g.backend, &g.video) {
        (Some(b), Some(v)) => {
            let _ = writeln!(
                o,
                "backend   {b}{}",
                g.model
                    .as_deref()
                    .map(|m| format!(" (model {m})"))
                    .unwrap_or_default()
            );
            let _ = writeln!(o, "video     {v}");
            let _ = writeln!(o, "cost      {}", g.cost_usd);
        }
        (Some(b), None) if g.dry_run => {
            let _ = writeln!(
                o,
                "would use {b}{}",
                g.model
                    .as_deref()
                    .map(|m| format!(" (model {m})"))
                    .unwrap_or_default()
            );
        }
        _ => {
            let _ = writeln!(o, "failed    {}", g.error.as_deref().unwrap_or("no video"));
            let _ = writeln!(o, "cost      {}", g.cost_usd);
        }
    }
    o
}

fn budget(command: BudgetCommand) -> Result<ExitCode, String> {
    match command {
        BudgetCommand::Show {
            policy,
            data_dir: dir,
            month,
            format,
        } => {
            let policy = load_valid(&policy)?;
            let store = open_store(&data_dir(dir))?;
            let now = chrono::Utc::now();
            let month = match month {
                Some(m) => {
                    Month::parse(&m).ok_or_else(|| format!("--month: `{m}` is not YYYY-MM"))?
                }
                None => Month::of(now),
            };
            let t = store.totals(month, now).map_err(|e| e.to_string())?;
            let v = genroute::ledger::Summary::new(
                month,
                &t,
                policy.budget.monthly,
                policy.budget.threshold,
            );
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
                ),
                Format::Text => {
                    println!("month      {}", v.month);
                    println!(
                        "spent      {} (committed {}, in doubt {})",
                        v.spent_usd, v.committed_usd, v.in_doubt_usd
                    );
                    println!("reserved   {}", v.reserved_usd);
                    println!(
                        "budget     {} (threshold {})",
                        v.budget_usd, v.cost_threshold_usd
                    );
                    println!("remaining  {}", v.remaining_usd);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        BudgetCommand::History {
            data_dir: dir,
            month,
            format,
        } => {
            let store = open_store(&data_dir(dir))?;
            let month = match month {
                Some(m) => {
                    Some(Month::parse(&m).ok_or_else(|| format!("--month: `{m}` is not YYYY-MM"))?)
                }
                None => None,
            };
            let entries = store.entries(month).map_err(|e| e.to_string())?;
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&entries).map_err(|e| e.to_string())?
                ),
                Format::Text => {
                    for e in &entries {
                        println!(
                            "{}  {:<9}  {:>10}  {:<12} {:<28} request {}{}",
                            e.created,
                            e.state.as_str(),
                            e.amount_usd.to_string(),
                            e.backend,
                            e.model.as_deref().unwrap_or("-"),
                            e.request_id,
                            e.note
                                .as_deref()
                                .map(|n| format!("  ({n})"))
                                .unwrap_or_default()
                        );
                    }
                    println!("{} entries", entries.len());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `genroute simulate` arguments.
#[derive(clap::Args)]
struct SimArgs {
    /// Policy file.
    #[arg(long)]
    policy: String,
    /// JSON Lines of requests, each with an optional "at" (RFC 3339) beside the request fields.
    #[arg(long, conflicts_with = "mix")]
    workload: Option<PathBuf>,
    /// Generate the workload instead: priority shares such as quality=40,balanced=40,speed=20.
    #[arg(long, requires = "count")]
    mix: Option<String>,
    /// How many requests to generate with --mix.
    #[arg(long)]
    count: Option<u64>,
    /// A second policy to compare against, on the same workload.
    #[arg(long)]
    baseline: Option<String>,
    /// Month as YYYY-MM (default: the workload's, else this month).
    #[arg(long)]
    month: Option<String>,
    /// Seed of the simulated outcomes and of generated workloads.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write a self-contained HTML report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Loads a policy for simulation: every API key counts as set (the simulation draws outcomes
/// instead of calling), feature flags come from the environment.
fn load_for_simulation(path: &str) -> Result<Policy, String> {
    let source = read_source(path)?;
    let env = |k: &str| {
        std::env::var(k)
            .ok()
            .or_else(|| (!k.ends_with("_ENABLED")).then(|| "simulated".to_string()))
    };
    Policy::load(source, &LoadOptions { env: &env }).map_err(|e| {
        eprint!("{e}");
        format!("`{path}` is not a valid policy")
    })
}

fn read_workload(
    policy: &Policy,
    path: &std::path::Path,
    month: Option<Month>,
) -> Result<(Vec<genroute::simulate::Item>, Month), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let mut raw = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let at_line = |m: String| format!("{}:{}: {m}", path.display(), n + 1);
        let mut obj = match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(o)) => o,
            Ok(_) => return Err(at_line("expected a JSON object".into())),
            Err(e) => return Err(at_line(format!("not valid JSON: {e}"))),
        };
        let at = match obj.remove("at") {
            Some(serde_json::Value::String(s)) => Some(
                chrono::DateTime::parse_from_rfc3339(&s)
                    .map_err(|e| at_line(format!("`at`: `{s}` is not RFC 3339: {e}")))?
                    .with_timezone(&chrono::Utc),
            ),
            Some(_) => return Err(at_line("`at` must be an RFC 3339 string".into())),
            None => None,
        };
        let request = Request::from_map(policy, obj).map_err(|e| at_line(e.to_string()))?;
        raw.push((at, request));
    }
    let month = month
        .or_else(|| raw.iter().find_map(|(at, _)| *at).map(Month::of))
        .unwrap_or_else(|| Month::of(chrono::Utc::now()));
    let start = genroute::state::month_start(month.year, month.month);
    let span = chrono::Duration::days(i64::from(genroute::simulate::days_in(month))).num_seconds();
    let len = raw.len().max(1) as i64;
    let mut items: Vec<_> = raw
        .into_iter()
        .enumerate()
        .map(|(i, (at, request))| {
            let at = at.unwrap_or_else(|| start + chrono::Duration::seconds(span * i as i64 / len));
            genroute::simulate::Item { at, request }
        })
        .collect();
    items.sort_by_key(|i| i.at);
    Ok((items, month))
}

fn parse_mix(spec: &str) -> Result<Vec<(String, f64)>, String> {
    spec.split(',')
        .map(|part| {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("--mix: `{part}` should be PRIORITY=SHARE"))?;
            let v: f64 = v
                .trim()
                .parse()
                .map_err(|_| format!("--mix: `{v}` is not a number"))?;
            if !(v >= 0.0 && v.is_finite()) {
                return Err(format!("--mix: share `{v}` must be 0 or more"));
            }
            Ok((k.trim().to_string(), v))
        })
        .collect()
}

fn simulate(a: SimArgs) -> Result<ExitCode, String> {
    let policy = load_for_simulation(&a.policy)?;
    let month = match &a.month {
        Some(m) => Some(Month::parse(m).ok_or_else(|| format!("--month: `{m}` is not YYYY-MM"))?),
        None => None,
    };
    let (items, month) = match (&a.workload, &a.mix, a.count) {
        (Some(path), _, _) => read_workload(&policy, path, month)?,
        (None, Some(_), Some(count)) if count > 10_000_000 => {
            return Err(format!("--count: {count} is more than the 10,000,000 requests a simulation holds in memory"));
        }
        (None, Some(mix), Some(count)) => {
            let month = month.unwrap_or_else(|| Month::of(chrono::Utc::now()));
            (
                genroute::simulate::generate(&policy, count, &parse_mix(mix)?, month, a.seed)?,
                month,
            )
        }
        _ => return Err("give --workload FILE.jsonl, or --mix and --count".into()),
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(items.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} requests ({per_sec}, {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let progress = |n: u64| {
        if let Some(b) = &bar {
            b.set_position(n);
        }
    };
    let report = genroute::simulate::simulate(&policy, &items, a.seed, month, &progress);
    let baseline = match &a.baseline {
        Some(path) => {
            let base = load_for_simulation(path)?;
            Some(genroute::simulate::simulate(
                &base, &items, a.seed, month, &progress,
            ))
        }
        None => None,
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if let Some(path) = &a.report {
        let html = genroute::simulate::html::render(
            &format!("genroute simulation: {}", a.policy),
            &report,
            baseline.as_ref(),
        );
        std::fs::write(path, html)
            .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
    }
    match a.format {
        Format::Text => print!("{}", genroute::simulate::text(&report, baseline.as_ref())),
        Format::Json => {
            let savings = baseline.as_ref().map(|b| {
                let (usd, pct) = genroute::simulate::savings(b, &report);
                serde_json::json!({"baseline_usd": b.total_usd, "savings_usd": usd, "savings_percent": pct})
            });
            let v = serde_json::json!({"report": report, "baseline": baseline, "savings": savings});
            println!(
                "{}",
                serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn test_files(paths: Vec<PathBuf>) -> Result<Vec<PathBuf>, String> {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("policies/tests")]
    } else {
        paths
    };
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(&p)
                .map_err(|e| format!("cannot read `{}`: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(p);
        }
    }
    Ok(files)
}

fn policy_tests(paths: Vec<PathBuf>, coverage: bool, format: Format) -> Result<ExitCode, String> {
    use genroute::testing::{run_case, TestFile, Tracker};
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut report = Vec::new();
    for file in test_files(paths)? {
        let name = file.display().to_string();
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("cannot read `{name}`: {e}"))?;
        let tests: TestFile = serde_yaml::from_str(&text)
            .map_err(|e| format!("`{name}` is not a valid test file: {e}"))?;
        let policy_path = file
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join(&tests.policy);
        let policy_name = policy_path.display().to_string();
        let policy_text = std::fs::read_to_string(&policy_path)
            .map_err(|e| format!("{name}: cannot read policy `{policy_name}`: {e}"))?;
        let env = |k: &str| tests.env.get(k).cloned();
        let policy = Policy::load(
            Source::new(policy_name.clone(), policy_text),
            &LoadOptions { env: &env },
        )
        .map_err(|e| {
            eprint!("{e}");
            format!("{name}: the policy `{policy_name}` does not load")
        })?;
        let mut tracker = Tracker::new(&policy);
        let results: Vec<_> = tests
            .cases
            .iter()
            .map(|c| run_case(&policy, &tests, c, &mut tracker))
            .collect();
        let cov = tracker.coverage();
        if format == Format::Text {
            println!("{name} ({policy_name})");
            for r in &results {
                println!("  {} {}", if r.passed { "PASS" } else { "FAIL" }, r.name);
                for m in &r.mismatches {
                    println!("       {m}");
                }
                if let (false, Some(e)) = (r.passed, &r.explanation) {
                    for line in e.to_text().lines() {
                        println!("       | {line}");
                    }
                }
            }
            if coverage {
                println!(
                    "  coverage: {}/{} rules decided a case; {}/{} clauses seen both true and false",
                    cov.rules_covered.0, cov.rules_covered.1, cov.clauses_covered.0, cov.clauses_covered.1
                );
                for (title, items) in [
                    ("rules that never decided", &cov.rules_never_deciding),
                    ("backends never chosen", &cov.backends_never_chosen),
                    ("clauses not seen both ways", &cov.clauses_not_both_ways),
                ] {
                    if !items.is_empty() {
                        println!("    {title}:");
                        for i in items {
                            println!("      {i}");
                        }
                    }
                }
            }
        }
        passed += results.iter().filter(|r| r.passed).count();
        failed += results.iter().filter(|r| !r.passed).count();
        report.push(serde_json::json!({"file": name, "policy": policy_name, "cases": results, "coverage": if coverage { serde_json::to_value(&cov).ok() } else { None }}));
    }
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"files": report, "passed": passed, "failed": failed})
            )
            .map_err(|e| e.to_string())?
        ),
        Format::Text => println!("\n{passed} passed, {failed} failed"),
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn fmt(files: &[String], check: bool) -> Result<ExitCode, String> {
    let mut unformatted = false;
    let mut failed = false;
    for path in files {
        let source = read_source(path)?;
        match genroute::policy::fmt::format_policy(&source) {
            Err(diags) => {
                failed = true;
                eprint!("{}", source.render(&diags, std::io::stderr().is_terminal()));
            }
            Ok(new) if new == source.text => {}
            Ok(new) if check => {
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

/// `GENROUTE_TRACE_PROMPTS=1` lets traces carry prompt text (off by default).
fn trace_prompts() -> bool {
    std::env::var("GENROUTE_TRACE_PROMPTS").is_ok_and(|v| v == "1" || v == "true")
}

/// Opens the store named by `--store`.
fn store_from_flag(flag: Option<&str>, dir: &std::path::Path) -> Result<Arc<dyn Store>, String> {
    match flag {
        None => Ok(Arc::new(open_store(dir)?)),
        Some(s) if s.starts_with("sqlite:") => {
            let path = PathBuf::from(&s["sqlite:".len()..]);
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create `{}`: {e}", parent.display()))?;
            }
            Ok(Arc::new(
                SqliteStore::open(&path).map_err(|e| e.to_string())?,
            ))
        }
        Some(s) if s.starts_with("redis://") => Ok(Arc::new(
            genroute::ledger::redis::RedisStore::open(s).map_err(|e| e.to_string())?,
        )),
        Some(other) => Err(format!(
            "--store: `{other}` is not sqlite:PATH or redis://HOST:PORT/DB"
        )),
    }
}

fn serve(
    policy: PathBuf,
    listen: &str,
    store: Option<&str>,
    data_dir_flag: Option<PathBuf>,
    metrics_prefix: String,
    state_ttl_ms: u64,
) -> Result<ExitCode, String> {
    let addr: std::net::SocketAddr = listen.parse().map_err(|e| {
        format!("--listen: `{listen}` is not an address such as 127.0.0.1:8080 ({e})")
    })?;
    let dir = data_dir(data_dir_flag);
    let store = store_from_flag(store, &dir)?;
    let config = genroute::server::Config {
        policy_path: policy,
        metrics_prefix,
        admin_token: std::env::var("GENROUTE_ADMIN_TOKEN").ok(),
        state_ttl: std::time::Duration::from_millis(state_ttl_ms),
        trace_prompts: trace_prompts(),
    };
    let env: genroute::server::Env = Arc::new(env_var);
    let sink = Arc::new(DirSink(dir.join("videos")));
    let app = genroute::server::App::new(config, store, env, Arc::new(SystemClock), sink)
        .map_err(|e| e.to_string())?;
    runtime()?.block_on(async move {
        let _watcher = genroute::server::watch(app.clone())
            .map_err(|e| format!("cannot watch the policy file: {e}"))?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        eprintln!(
            "genroute listening on http://{}",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        axum::serve(listener, genroute::server::routes(app))
            .with_graceful_shutdown(shutdown())
            .await
            .map_err(|e| format!("server error: {e}"))
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

struct LedgerArgs {
    spend: Option<String>,
    data_dir: Option<PathBuf>,
}

#[allow(clippy::too_many_arguments)]
fn explain(
    policy_path: &str,
    request: &str,
    ledger: LedgerArgs,
    breakers: &[String],
    failures: u32,
    now: Option<&str>,
    format: Format,
) -> Result<ExitCode, String> {
    let policy = match load(policy_path)? {
        Ok(p) => p,
        Err(e) => {
            eprint!("{e}");
            return Err(format!(
                "`{policy_path}` is not a valid policy; run `genroute check {policy_path}`"
            ));
        }
    };
    let body = match request.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read request file `{file}`: {e}"))?,
        None => request.to_string(),
    };
    let request = Request::from_json(&policy, &body).map_err(|e| format!("--request: {e}"))?;
    let now = match now {
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map_err(|e| {
                format!("--now: `{t}` is not an RFC 3339 time ({e}); e.g. 2026-11-25T12:00:00Z")
            })?
            .with_timezone(&chrono::Utc),
        None => chrono::Utc::now(),
    };
    let mut state = match &ledger.spend {
        Some(spend) => {
            let spend: Fixed = spend
                .parse()
                .map_err(|e| format!("--spend: {e}; give USD such as 12.50"))?;
            if spend.is_negative() {
                return Err(format!(
                    "--spend: {spend} is negative; give the month's spend in USD, e.g. 12.50"
                ));
            }
            genroute::State::new(&policy, now).with_spend(spend)
        }
        None => {
            let dir = data_dir(ledger.data_dir.clone());
            let router = router(policy.clone(), &dir)?;
            let mut s = router.state(0).map_err(|e| e.to_string())?;
            s.now = now;
            s
        }
    };
    state = state.with_failures(failures);
    for b in breakers {
        let (name, value) = b
            .split_once('=')
            .ok_or_else(|| format!("--breaker: `{b}` should be NAME=closed|open|half_open"))?;
        let value = match value {
            "closed" => BreakerState::Closed,
            "open" => BreakerState::Open,
            "half_open" => BreakerState::HalfOpen,
            other => {
                return Err(format!(
                    "--breaker: `{other}` is not closed, open or half_open"
                ))
            }
        };
        state
            .set_breaker(&policy, name, value)
            .map_err(|e| format!("--breaker: {e}"))?;
    }
    let why = policy.explain(&request, &state);
    match format {
        Format::Text => print!("{}", why.to_text()),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&why).map_err(|e| e.to_string())?
        ),
    }
    Ok(if why.backend.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(NONE_ELIGIBLE)
    })
}

fn names() {
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
}
