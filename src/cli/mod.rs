//! The `genroute` command line. It only translates: flags and files in, library calls, text
//! or JSON out. Every decision is made by the library.
//!
//! That is why the CLI is shaped as it is. Which backend serves a request, what it may cost,
//! whether a policy is valid, what a simulation reports: all of it is decided by the
//! `genroute` library, which the HTTP service and the tests call too, so the command line
//! cannot answer differently from them. What is left here is the shape of the interface.
//!
//! - One module per command (`check`, `explain`, `generate`, ...), each holding its
//!   [`clap::Args`] struct next to the code that reads it, so a flag, its help text and what
//!   it turns into are read in one place. This file only names the commands and dispatches.
//! - What several commands share (reading and loading a policy, finding and opening the
//!   ledger, building a router, the async runtime) is in [`common`], once.
//! - A command returns its exit code, or a one-line message that `main` prints as
//!   `error: ...` and exits [`USAGE`] with. Exit 1 means checks, tests or `fmt --check` found
//!   something; [`NONE_ELIGIBLE`] means no backend would serve the request.
//! - Logging and trace export are set up in [`telemetry`], by `main`, around the command.

mod budget;
mod check;
mod common;
mod experiments;
mod explain;
mod fmt;
mod generate;
mod jobs;
mod keys;
mod ledger;
mod names;
mod schema;
mod serve;
mod simulate;
pub mod telemetry;
mod test;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Routes generation requests across backends within a budget, and explains every decision.
#[derive(Parser)]
#[command(name = "genroute", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The commands; each variant's arguments live in its command's module.
#[derive(Subcommand)]
enum Command {
    /// Load and check policy files; print every problem with its location.
    Check(check::Args),
    /// Show which backend would serve a request now, and why.
    Explain(explain::Args),
    /// Generate a video: decide, reserve, call, fall back.
    Generate(generate::Args),
    /// The month's budget and the ledger's entries.
    Budget(budget::Args),
    /// Operator actions on the store (accept a Redis that lost its data).
    Ledger(ledger::Args),
    /// The durable job records (the same any replica reads).
    Jobs(jobs::Args),
    /// A/B experiments: each arm's figures and whether it rolled back.
    Experiments(experiments::Args),
    /// List the names a condition can read, with their types.
    Names,
    /// Print the JSON Schema of policy files, or of tenants files (for editors:
    /// yaml-language-server).
    Schema(schema::Args),
    /// API keys: make one (its token is printed once), hash a token, check a tenants file.
    Keys(keys::Args),
    /// Replay a month of requests through the policy and report cost, mix and latency.
    Simulate(simulate::Args),
    /// Run policy test files (default: policies/tests).
    Test(test::Args),
    /// Rewrite conditions into canonical form, leaving the rest of the file untouched.
    Fmt(fmt::Args),
    /// Run the HTTP service.
    Serve(serve::Args),
}

/// `--format`: `text` for people, `json` for programs.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Exit code for usage errors and invalid policies.
pub const USAGE: u8 = 2;
/// Exit code for "no backend is eligible".
const NONE_ELIGIBLE: u8 = 3;

/// Runs the command: its exit code, or the message of an error that ends it.
pub fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Budget(args) => budget::run(args),
        Command::Ledger(args) => ledger::run(args),
        Command::Jobs(args) => jobs::run(args),
        Command::Experiments(args) => experiments::run(args),
        Command::Names => names::run(),
        Command::Schema(args) => schema::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Test(args) => test::run(args),
        Command::Fmt(args) => fmt::run(args),
        Command::Serve(args) => serve::run(args),
    }
}
