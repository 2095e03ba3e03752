//! `genroute budget show` and `genroute budget history`: the month's figures and the
//! ledger's entries.
//!
//! The ledger and [`Summary`] compute; this module picks the month and prints.

use std::process::ExitCode;

use genroute::store::{Month, Store};

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
        /// Tenants file, for `--team` and `--key`.
        #[arg(long)]
        tenants: Option<String>,
        /// Also show this team's budgets (its organisation's and its own).
        #[arg(long, conflicts_with = "key", requires = "tenants")]
        team: Option<String>,
        /// Also show this key's budgets (its organisation's, its team's and its own).
        #[arg(long, requires = "tenants")]
        key: Option<String>,
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
            tenants,
            team,
            key,
            format,
        } => {
            let who = Who { tenants, team, key };
            show(&policy, &store, month.as_deref(), &who, format)
        }
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

/// Whose budgets `budget show` adds: a team's or a key's, from a tenants file.
struct Who {
    tenants: Option<String>,
    team: Option<String>,
    key: Option<String>,
}

impl Who {
    /// The levels to show beside the month's: the policy's own, then the team's or key's.
    fn levels(
        &self,
        policy: &genroute::Policy,
    ) -> Result<Vec<genroute::levels::LevelBudget>, String> {
        let mut out = policy.budget_levels();
        let Some(path) = &self.tenants else {
            return Ok(out);
        };
        let tenants = genroute::Tenants::load(std::path::Path::new(path)).map_err(|d| {
            format!(
                "--tenants: `{path}` has {} problem(s); see `genroute keys check --tenants {path}`",
                d.len()
            )
        })?;
        if let Some(team) = &self.team {
            out.extend(
                tenants
                    .team_budgets(team)
                    .ok_or_else(|| format!("--team: `{path}` has no team `{team}`"))?,
            );
        }
        if let Some(key) = &self.key {
            out.extend(
                tenants
                    .tenancy_of(key)
                    .ok_or_else(|| format!("--key: `{path}` has no key `{key}`"))?
                    .budgets,
            );
        }
        Ok(out)
    }
}

/// `budget show`: spend, reservations, budget and what remains, for a month (default: now),
/// and each further budget level (the policy's, a team's or a key's).
fn show(
    policy: &str,
    store: &StoreArgs,
    month: Option<&str>,
    who: &Who,
    format: Format,
) -> Result<ExitCode, String> {
    let policy = load_valid(policy)?;
    let now = chrono::Utc::now();
    let month = match month {
        Some(m) => parse_month(m)?,
        None => Month::of(now),
    };
    let mut levels = who.levels(&policy)?;
    // A past month's levels: its monthly ones (its days are over).
    let at = if month == Month::of(now) {
        now
    } else {
        levels.retain(|l| l.period == genroute::levels::Period::Month);
        genroute::state::month_start(month.year, month.month)
    };
    let (v, levels) = block_on(async {
        let store = store.open().await?;
        let v = genroute::server::budget_summary(&*store, &policy, month, now)
            .await
            .map_err(|e| e.to_string())?;
        let l = genroute::exec::levels::summaries(&*store, &levels, at)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((v, l))
    })?;
    match format {
        Format::Json => {
            let mut body = serde_json::to_value(&v).map_err(|e| e.to_string())?;
            if let (Some(map), false) = (body.as_object_mut(), levels.is_empty()) {
                map.extend(who.team.clone().map(|t| ("team".to_string(), t.into())));
                map.extend(who.key.clone().map(|k| ("key".to_string(), k.into())));
                map.insert(
                    "levels".into(),
                    serde_json::to_value(&levels).map_err(|e| e.to_string())?,
                );
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&body).map_err(|e| e.to_string())?
            );
        }
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
            if !levels.is_empty() {
                println!();
                println!(
                    "{:<40} {:<10} {:>10} {:>10} {:>10} {:>10}",
                    "level", "period", "budget", "spent", "reserved", "remaining"
                );
                for l in &levels {
                    println!(
                        "{:<40} {:<10} {:>10} {:>10} {:>10} {:>10}",
                        l.label, l.of, l.budget_usd, l.spent_usd, l.reserved_usd, l.remaining_usd
                    );
                }
            }
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
