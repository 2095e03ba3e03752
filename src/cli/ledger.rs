//! `genroute ledger`: operator actions on the store itself.
//!
//! `accept-empty` is the way back after a Redis lost its data: every replica fails closed
//! rather than start the month again at zero (see the Redis store's docs), until an operator
//! accepts the ledger as it now is. The acceptance and its note are recorded in Redis.

use std::process::ExitCode;

use genroute::store::Store;

use super::common::{block_on, StoreArgs};

/// `genroute ledger` arguments: one of its subcommands.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

/// The `genroute ledger` subcommands.
#[derive(clap::Subcommand)]
enum Command {
    /// Accept a Redis ledger that lost its data (restarted empty, failed over), so that the
    /// replicas spend again. The month's spend starts from what Redis holds now.
    AcceptEmpty {
        #[command(flatten)]
        store: StoreArgs,
        /// Why, and by whom; recorded with the acceptance.
        #[arg(long)]
        note: String,
    },
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode, String> {
    match args.command {
        Command::AcceptEmpty { store, note } => {
            if note.trim().is_empty() {
                return Err("--note: say why the empty ledger is accepted, and by whom".into());
            }
            let who = std::env::var("USER").unwrap_or_else(|_| "unknown user".into());
            let note = format!("{} (via the CLI, by {who})", note.trim());
            let epoch = block_on(async {
                let store = store.open().await?;
                store.accept_empty(&note).await.map_err(|e| e.to_string())
            })?;
            println!("accepted the ledger as it is; new epoch {epoch}");
            println!("replicas resume spending within a few seconds (their next probe)");
            Ok(ExitCode::SUCCESS)
        }
    }
}
