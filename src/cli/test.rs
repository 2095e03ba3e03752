//! `genroute test`: run policy test files, optionally with coverage.
//!
//! A test file names its policy (relative to the file) and the environment to load it with;
//! [`genroute::testing`] runs the cases and tracks coverage. This module finds the files,
//! loads each policy and prints the results.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use genroute::testing::{run_case, TestFile, Tracker};
use genroute::{LoadOptions, Policy, Source};

use super::Format;

/// `genroute test` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Test files or directories of them.
    paths: Vec<PathBuf>,
    /// Also report coverage: rules and backends never selected, clauses not seen both ways.
    #[arg(long)]
    coverage: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Runs every case of every file; exits 1 if any case fails.
pub fn run(args: Args) -> Result<ExitCode, String> {
    let Args {
        paths,
        coverage,
        format,
    } = args;
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut report = Vec::new();
    for file in test_files(paths)? {
        let name = file.display().to_string();
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("cannot read `{name}`: {e}"))?;
        // Bounded first, as policies are: serde_yaml's scanner is quadratic in nesting.
        if let Err(e) = genroute::policy::yaml::parse(&text) {
            if let Some(d) = e.diagnostic() {
                eprint!(
                    "{}",
                    Source::new(name.clone(), text.clone()).render(&[d], false)
                );
                return Err(format!(
                    "`{name}` is not a valid test file: it nests too deep"
                ));
            }
        }
        let tests: TestFile = serde_yaml::from_str(&text)
            .map_err(|e| format!("`{name}` is not a valid test file: {e}"))?;
        let policy_path = file.parent().unwrap_or(Path::new(".")).join(&tests.policy);
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

/// The test files: each file given, and the `.yaml`/`.yml` files of each directory given,
/// sorted by name (default: `policies/tests`).
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
