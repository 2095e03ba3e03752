//! `genroute simulate`: replay a month of requests through a policy and report cost, mix and
//! latency, optionally against a baseline policy.
//!
//! This module reads or generates the workload and prints; [`genroute::simulate`] draws the
//! outcomes and computes the report.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use genroute::simulate::Item;
use genroute::store::Month;
use genroute::{LoadOptions, Policy, Request};

use super::common::read_source;
use super::Format;

/// `genroute simulate` arguments.
#[derive(clap::Args)]
pub struct Args {
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

/// Simulates the policy (and the baseline) on one workload, writes the HTML report if asked,
/// and prints the report.
pub fn run(a: Args) -> Result<ExitCode, String> {
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

/// Reads a JSON Lines workload. Requests without an `at` are spread evenly over the month
/// (the one given, else that of the first `at`, else this month), and the items are sorted
/// by time.
fn read_workload(
    policy: &Policy,
    path: &Path,
    month: Option<Month>,
) -> Result<(Vec<Item>, Month), String> {
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
            Item { at, request }
        })
        .collect();
    items.sort_by_key(|i| i.at);
    Ok((items, month))
}

/// Parses `--mix`: comma-separated PRIORITY=SHARE pairs, each share a finite number, 0 or more.
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
