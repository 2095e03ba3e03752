//! `genroute budget show` and `genroute budget history`: the month's figures and the
//! ledger's entries.
//!
//! The ledger and [`Summary`] compute; this module picks the month and prints.

use std::process::ExitCode;

use genroute::ledger::{Month, Store};

use super::common::{block_on, load_valid, StoreArgs};
use super::Format;

/// `genroute budget` arguments: one of its subcommands.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

/// The `genroute budget` subcommands.
#[derive(clap::Subcommand)]
enum Command {
    /// This month's spend, reservations and what remains.
    Show {
        /// Policy file (for the budget figures).
        #[arg(long)]
        policy: String,
        #[command(flatten)]
        store: StoreArgs,
        /// Month as YYYY-MM (default: this month, UTC).
        #[arg(long)]
        month: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Every ledger entry of a month (or all months).
    History {
        #[command(flatten)]
        store: StoreArgs,
        /// Month as YYYY-MM (default: all).
        #[arg(long)]
        month: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode, String> {
    match args.command {
        Command::Show {
            policy,
            store,
            month,
            format,
        } => show(&policy, &store, month.as_deref(), format),
        Command::History {
            store,
            month,
            format,
        } => history(&store, month.as_deref(), format),
    }
}

/// Parses `--month`.
fn parse_month(m: &str) -> Result<Month, String> {
    Month::parse(m).ok_or_else(|| format!("--month: `{m}` is not YYYY-MM"))
}

/// `budget show`: spend, reservations, budget and what remains, for a month (default: now).
fn show(
    policy: &str,
    store: &StoreArgs,
    month: Option<&str>,
    format: Format,
) -> Result<ExitCode, String> {
    let policy = load_valid(policy)?;
    let now = chrono::Utc::now();
    let month = match month {
        Some(m) => parse_month(m)?,
        None => Month::of(now),
    };
    let v = block_on(async {
        let store = store.open().await?;
        genroute::server::budget_summary(&*store, &policy, month, now)
            .await
            .map_err(|e| e.to_string())
    })?;
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

/// `budget history`: every entry of a month, or of all months.
fn history(store: &StoreArgs, month: Option<&str>, format: Format) -> Result<ExitCode, String> {
    let month = month.map(parse_month).transpose()?;
    let entries = block_on(async {
        let store = store.open().await?;
        store
            .entries(month, chrono::Utc::now())
            .await
            .map_err(|e| e.to_string())
    })?;
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
