//! `genroute experiments show`: each experiment of a policy with its arms' figures and its
//! rollback, read from the store every replica writes (the same view as
//! `GET /v1/experiments`).

use std::process::ExitCode;

use super::common::{block_on, load_valid, router, StoreArgs};
use super::Format;

/// `genroute experiments` arguments.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Every experiment: status, arms, figures, rollback.
    Show {
        /// Policy file.
        #[arg(long)]
        policy: String,
        #[command(flatten)]
        store: StoreArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode, String> {
    let Command::Show {
        policy,
        store,
        format,
    } = args.command;
    let policy = load_valid(&policy)?;
    let views = block_on(async {
        let r = router(policy, &store).await?;
        r.experiments().await.map_err(|e| e.to_string())
    })?;
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "experiments": views }))
                .map_err(|e| e.to_string())?
        ),
        Format::Text => {
            if views.is_empty() {
                println!("the policy has no experiments");
            }
            for v in &views {
                println!(
                    "{}  on rule `{}`, primary {}, {} (rolls back under {} of the primary after {} samples each)",
                    v.name, v.rule, v.primary, v.metric, v.rollback_below, v.min_samples
                );
                match &v.rollback {
                    Some(r) => println!(
                        "  ROLLED BACK at {}: {}",
                        genroute::store::rfc3339(r.at_ms),
                        r.reason
                    ),
                    None => println!("  running"),
                }
                for a in &v.arms {
                    let role = if a.backend == v.primary {
                        "primary"
                    } else if a.experimental {
                        "arm"
                    } else {
                        "other"
                    };
                    let value = a.value.map_or("–".to_string(), |x| format!("{x:.3}"));
                    println!(
                        "  {:<7} {:<12} weight {:<6} samples {:<6} passes {:<6} delivered {:<6} {} {}",
                        role,
                        a.backend,
                        a.weight.to_string(),
                        a.figures.samples,
                        a.figures.passes,
                        a.figures.delivered,
                        v.metric,
                        value
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
