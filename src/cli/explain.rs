//! `genroute explain`: which backend would serve a request now, and why.
//!
//! The flags build the two inputs of [`Policy::explain`](genroute::Policy::explain): the
//! request, and a state snapshot that comes from the ledger unless `--spend`, `--breaker`,
//! `--failures` and `--now` give it by hand. Nothing is reserved or called.

use std::path::PathBuf;
use std::process::ExitCode;

use genroute::{BreakerState, Fixed, Request};

use super::common::{block_on, load_valid, router, StoreArgs};
use super::{Format, NONE_ELIGIBLE};

/// `genroute explain` arguments.
#[derive(clap::Args)]
pub struct Args {
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
}

/// Prints the explanation; exits [`NONE_ELIGIBLE`] if no backend would serve the request.
pub fn run(args: Args) -> Result<ExitCode, String> {
    let policy = load_valid(&args.policy)?;
    let body = match args.request.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read request file `{file}`: {e}"))?,
        None => args.request.clone(),
    };
    let request = Request::from_json(&policy, &body).map_err(|e| format!("--request: {e}"))?;
    let now = match args.now.as_deref() {
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map_err(|e| {
                format!("--now: `{t}` is not an RFC 3339 time ({e}); e.g. 2026-11-25T12:00:00Z")
            })?
            .with_timezone(&chrono::Utc),
        None => chrono::Utc::now(),
    };
    let mut state = match &args.spend {
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
            let store = StoreArgs::in_dir(args.data_dir.clone());
            let mut s = block_on(async {
                let router = router(policy.clone(), &store).await?;
                router
                    .state_for(&request, 0)
                    .await
                    .map_err(|e| e.to_string())
            })?
            .0;
            s.now = now;
            s
        }
    };
    state = state.with_failures(args.failures);
    for b in &args.breakers {
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
    match args.format {
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
