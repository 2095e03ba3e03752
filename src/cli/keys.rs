//! `genroute keys create`, `keys hash` and `keys check`: make API keys, hash a token, check a
//! tenants file.
//!
//! The library makes the token ([`genroute::tenant::Token`]) and loads the file; this module
//! picks the id, prints the token once with the YAML block to paste, and renders diagnostics.
//! The token goes to stdout only, once; it is never in the YAML block, in an error, or in a
//! file genroute writes.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use genroute::tenant::load::is_id;
use genroute::tenant::Token;
use genroute::{Diagnostic, Scope, Source, Tenants};

use super::common::{load_valid, read_source};
use super::Format;

/// `genroute keys` arguments: one of its subcommands.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

/// The `genroute keys` subcommands.
#[derive(clap::Subcommand)]
enum Command {
    /// Make a key: print its token once, and the YAML block to paste under `keys:`.
    Create {
        /// The team the key belongs to.
        #[arg(long)]
        team: String,
        /// The key id (default: `<team>-` and 6 random lowercase letters and digits).
        #[arg(long)]
        id: Option<String>,
        /// What the key may do, comma-separated: generate, decide, jobs:read, metrics, admin.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "generate,decide,jobs:read"
        )]
        scopes: Vec<Scope>,
        /// Tenants file: check that the team exists and the id is free.
        #[arg(long)]
        tenants: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Read a token on stdin and print its `sha256:` hash, as the tenants file stores it.
    Hash,
    /// Load a tenants file and print every problem with its location (exit 1 if any).
    Check {
        /// Tenants file.
        #[arg(long)]
        tenants: String,
        /// Policy file: also check that every `budget.backends` entry names one of its
        /// backends.
        #[arg(long)]
        policy: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode, String> {
    match args.command {
        Command::Create {
            team,
            id,
            scopes,
            tenants,
            format,
        } => create(&team, id, &scopes, tenants.as_deref(), format),
        Command::Hash => hash(),
        Command::Check {
            tenants,
            policy,
            format,
        } => check(&tenants, policy.as_deref(), format),
    }
}

const ID_RULE: &str = "ids are 1 to 63 lowercase letters, digits and `-`, starting with a letter or digit (`^[a-z0-9][a-z0-9-]{0,62}$`)";

fn create(
    team: &str,
    id: Option<String>,
    scopes: &[Scope],
    tenants: Option<&str>,
    format: Format,
) -> Result<ExitCode, String> {
    if !is_id(team) {
        return Err(format!(
            "--team: `{team}` is not a valid team id; {ID_RULE}"
        ));
    }
    if let Some(id) = id.as_deref().filter(|id| !is_id(id)) {
        return Err(format!("--id: `{id}` is not a valid key id; {ID_RULE}"));
    }
    let mut scopes = scopes.to_vec();
    scopes.sort_unstable();
    scopes.dedup();
    if scopes.is_empty() {
        return Err("--scopes: give at least one scope".into());
    }
    let existing = match tenants {
        Some(path) => Some(load_tenants(path)?),
        None => None,
    };
    if let (Some(t), Some(path)) = (&existing, tenants) {
        if t.team(team).is_none() {
            let near = genroute::check::scope::did_you_mean(team, t.teams())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_else(|| "; declare it under `teams:` first".into());
            return Err(format!("team `{team}` is not in `{path}`{near}"));
        }
        if let Some(id) = id.as_deref().filter(|id| t.key(id).is_some()) {
            return Err(format!(
                "key id `{id}` is already taken in `{path}` (a revoked key keeps its id); choose another --id"
            ));
        }
    }
    let id = match id {
        Some(id) => id,
        None => loop {
            let id = random_id(team);
            if existing.as_ref().is_none_or(|t| t.key(&id).is_none()) {
                break id;
            }
        },
    };
    let token = Token::generate(&id);
    let hash = token.hash();
    let names: Vec<&str> = scopes.iter().map(|s| s.name()).collect();
    let yaml = format!(
        "  {id}:\n    team: {team}\n    hash: \"{hash}\"\n    scopes: [{}]\n",
        names.join(", ")
    );
    match format {
        Format::Text => {
            println!(
                "the token of key `{id}` (team `{team}`) is shown once, here: store it now; genroute keeps only its hash"
            );
            println!();
            println!("{}", token.expose());
            println!();
            println!("add this under `keys:` in the tenants file:");
            println!();
            print!("{yaml}");
        }
        Format::Json => {
            let out = serde_json::json!({
                "id": id,
                "token": token.expose(),
                "hash": hash,
                "yaml": yaml,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `<team>-` and 6 random lowercase letters and digits, the team cut so the id stays within
/// 63 characters.
fn random_id(team: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let suffix: String = (0..6)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{}-{suffix}", &team[..team.len().min(56)])
}

/// Loads a tenants file that must be valid: if it is not, prints its diagnostics to stderr
/// and returns a message that points at `genroute keys check`.
fn load_tenants(path: &str) -> Result<Tenants, String> {
    let source = read_source(path)?;
    Tenants::from_source(&source).map_err(|diags| {
        eprint!("{}", source.render(&diags, color()));
        format!("`{path}` is not a valid tenants file; run `genroute keys check --tenants {path}`")
    })
}

fn color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn hash() -> Result<ExitCode, String> {
    let mut text = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read the token from stdin: {e}"))?;
    // Never echo what was read: it may be a token, or most of one.
    let token = Token::parse(text.trim_ascii()).ok_or(
        "stdin does not hold a genroute key (`gr_<key id>_<secret>`, on one line); nothing was hashed",
    )?;
    println!("{}", token.hash());
    Ok(ExitCode::SUCCESS)
}

fn check(path: &str, policy: Option<&str>, format: Format) -> Result<ExitCode, String> {
    let source = match read_source(path) {
        Ok(s) => s,
        Err(message) => {
            if format == Format::Json {
                let report = serde_json::json!({"file": path, "ok": false, "diagnostics": [{"severity": "error", "code": "unreadable", "message": message}]});
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
                );
                return Ok(ExitCode::from(1));
            }
            return Err(message);
        }
    };
    let policy = policy.map(load_valid).transpose()?;
    let (diagnostics, summary): (Vec<Diagnostic>, Option<String>) =
        match Tenants::from_source(&source) {
            Err(diags) => (diags, None),
            Ok(t) => {
                let diags = match &policy {
                    Some(p) => t.check_backends(p.backends.iter().map(|b| b.name.as_str())),
                    None => Vec::new(),
                };
                (diags, Some(summary(&t)))
            }
        };
    let ok = diagnostics.is_empty();
    match format {
        Format::Text => report_text(&source, &diagnostics, summary.filter(|_| ok)),
        Format::Json => {
            let report = serde_json::json!({"file": path, "ok": ok, "diagnostics": diagnostics});
            println!(
                "{}",
                serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
            );
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn report_text(source: &Source, diagnostics: &[Diagnostic], summary: Option<String>) {
    let path = &source.name;
    match summary {
        Some(s) => println!("{path}: ok ({s})"),
        None => {
            eprint!("{}", source.render(diagnostics, color()));
            let n = diagnostics.len();
            eprintln!("{path}: {n} error{}", if n == 1 { "" } else { "s" });
        }
    }
}

fn summary(t: &Tenants) -> String {
    let count =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let keys = t.key_ids();
    let revoked = keys
        .iter()
        .filter(|k| t.key(k).is_some_and(|k| k.revoked))
        .count();
    format!(
        "{}, {}, {}, {revoked} revoked",
        count(t.orgs().count(), "organisation", "organisations"),
        count(t.teams().count(), "team", "teams"),
        count(keys.len(), "key", "keys"),
    )
}
