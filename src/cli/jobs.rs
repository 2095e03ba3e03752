//! `genroute jobs list` and `genroute jobs show ID`: the durable job records, read from the
//! store (the same records every replica reads).

use std::process::ExitCode;

use genroute::jobs::runner::public;
use genroute::store::Store;

use super::common::{block_on, StoreArgs};
use super::Format;

/// `genroute jobs` arguments: one of its subcommands.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

/// The `genroute jobs` subcommands.
#[derive(clap::Subcommand)]
enum Command {
    /// Jobs, newest first.
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Start after this job id (the last of the previous page).
        #[arg(long)]
        after: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// One job: its state, attempts and result.
    Show {
        /// The job id.
        id: String,
        #[command(flatten)]
        store: StoreArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

fn ms(t: i64) -> String {
    genroute::store::rfc3339(t)
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode, String> {
    match args.command {
        Command::List {
            store,
            limit,
            after,
            format,
        } => {
            let jobs = block_on(async {
                let store = store.open().await?;
                store
                    .list_jobs(after.as_deref(), limit.clamp(1, 1000))
                    .await
                    .map_err(|e| e.to_string())
            })?;
            match format {
                Format::Json => {
                    let v: Vec<_> = jobs.iter().map(public).collect();
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
                    );
                }
                Format::Text => {
                    for j in &jobs {
                        let backend = j
                            .outcome
                            .as_ref()
                            .and_then(|o| o.backend.clone())
                            .or_else(|| j.current.as_ref().map(|c| c.backend.clone()))
                            .unwrap_or_else(|| "-".into());
                        println!(
                            "{}  {:<9}  {}  {:<12} {:>10}",
                            j.id,
                            j.state.as_str(),
                            ms(j.created_ms),
                            backend,
                            j.cost_usd.to_string()
                        );
                    }
                    println!("{} jobs", jobs.len());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { id, store, format } => {
            let job = block_on(async {
                let store = store.open().await?;
                store.job(&id).await.map_err(|e| e.to_string())
            })?
            .ok_or_else(|| format!("no job `{id}`"))?;
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&public(&job)).map_err(|e| e.to_string())?
                ),
                Format::Text => {
                    println!("job       {}", job.id);
                    println!("status    {}", job.state.as_str());
                    println!("created   {}", ms(job.created_ms));
                    if let Some(f) = job.finished_ms {
                        println!("ended     {}", ms(f));
                    }
                    for (i, a) in job.attempts.iter().enumerate() {
                        println!(
                            "attempt   {}. {} -> {} in {} ms, cost {}{}",
                            i + 1,
                            a.backend,
                            a.outcome,
                            a.latency_ms,
                            a.cost_usd,
                            a.message
                                .as_deref()
                                .map(|m| format!(": {m}"))
                                .unwrap_or_default()
                        );
                    }
                    if let Some(c) = &job.current {
                        let phase = serde_json::to_value(c.phase).unwrap_or_default();
                        println!(
                            "current   {} ({}), {}",
                            c.backend,
                            phase.as_str().unwrap_or_default(),
                            c.handle
                                .as_ref()
                                .map(|h| h.id.as_str())
                                .unwrap_or("no handle yet")
                        );
                    }
                    if let Some(v) = job.outcome.as_ref().and_then(|o| o.video.clone()) {
                        println!("video     {v}");
                    }
                    println!("cost      {}", job.cost_usd);
                    if let Some(e) = &job.error {
                        println!("error     {e}");
                    }
                    if let Some(w) = &job.webhook {
                        let state = serde_json::to_value(w.state).unwrap_or_default();
                        println!(
                            "webhook   {} ({}, {} tries)",
                            w.url,
                            state.as_str().unwrap_or_default(),
                            w.attempts
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
