//! `genroute generate`: decide, reserve, call, fall back.
//!
//! The flags become the request body (`--fields` adds the policy's own request fields), and
//! [`Router::generate`](genroute::exec::Router::generate) does the rest; `--dry-run` asks the
//! router for the decision and the chain it would walk, without calling or spending.

use std::path::PathBuf;
use std::process::ExitCode;

use genroute::exec::Generation;
use genroute::Request;

use super::common::{block_on, load_valid, router, StoreArgs};
use super::{Format, NONE_ELIGIBLE};

/// A request body: the JSON object a request is built from.
type Body = serde_json::Map<String, serde_json::Value>;

/// `genroute generate` arguments.
#[derive(clap::Args)]
pub struct Args {
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
}

/// Prints the generation (or the dry run); exits [`NONE_ELIGIBLE`] unless a backend served
/// the request (or, in a dry run, would serve it).
pub fn run(args: Args) -> Result<ExitCode, String> {
    let body = body(&args)?;
    let policy = load_valid(&args.policy)?;
    let request = Request::from_map(&policy, body).map_err(|e| e.to_string())?;
    let store = StoreArgs::in_dir(args.data_dir.clone());
    let dry_run = args.dry_run;
    let result = block_on(async {
        let router = router(policy, &store).await?;
        if dry_run {
            router.dry_run(&request).await
        } else {
            router.generate(&request).await
        }
        .map_err(|e| e.to_string())
    })?;
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&result).map_err(|e| e.to_string())?
        ),
        Format::Text => print!("{}", generation_text(&result)),
    }
    let served = result.backend.is_some() && (args.dry_run || result.video.is_some());
    Ok(if served {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(NONE_ELIGIBLE)
    })
}

/// The request body from the flags: the prompt, each flag that was given (`--duration` and
/// `--quality-threshold` as JSON numbers), then `--fields`.
fn body(args: &Args) -> Result<Body, String> {
    let mut body = Body::new();
    body.insert("prompt".into(), args.prompt.clone().into());
    let mut set = |k: &str, v: &Option<String>, number: bool| -> Result<(), String> {
        let Some(v) = v else { return Ok(()) };
        let value = if number {
            serde_json::from_str::<serde_json::Value>(v)
                .ok()
                .filter(serde_json::Value::is_number)
                .ok_or_else(|| format!("--{}: `{v}` is not a number", k.replace('_', "-")))?
        } else {
            v.clone().into()
        };
        body.insert(k.into(), value);
        Ok(())
    };
    set("priority", &args.priority, false)?;
    set("duration", &args.duration, true)?;
    set("aspect_ratio", &args.aspect_ratio, false)?;
    set("quality_threshold", &args.quality_threshold, true)?;
    set("negative_prompt", &args.negative_prompt, false)?;
    merge_fields(&mut body, args.fields.as_deref())?;
    Ok(body)
}

/// Adds the fields of `--fields`, a JSON object, to the body (they win over the flags).
fn merge_fields(body: &mut Body, fields: Option<&str>) -> Result<(), String> {
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

/// The text form: one line per attempt, then the backend, video and cost (or what would be
/// used, or why it failed).
fn generation_text(g: &Generation) -> String {
    use genroute::output::Verdict;
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
        // The check of a delivered video (a simulated one has none worth a line).
        match &a.check {
            Some(c) if !(c.verdict == Verdict::NotChecked && a.simulated_seconds.is_some()) => {
                let _ = writeln!(o, "          {}", c.summary());
            }
            _ => {}
        }
    }
    let model = || {
        g.model
            .as_deref()
            .map(|m| format!(" (model {m})"))
            .unwrap_or_default()
    };
    match (&g.backend, &g.video) {
        (Some(b), Some(v)) => {
            let _ = writeln!(o, "backend   {b}{}", model());
            let _ = writeln!(o, "video     {v}");
            let _ = writeln!(o, "cost      {}", g.cost_usd);
        }
        (Some(b), None) if g.dry_run => {
            let _ = writeln!(o, "would use {b}{}", model());
        }
        _ => {
            let _ = writeln!(o, "failed    {}", g.error.as_deref().unwrap_or("no video"));
            let _ = writeln!(o, "cost      {}", g.cost_usd);
        }
    }
    o
}
