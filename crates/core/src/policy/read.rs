//! Reading a YAML file into genroute's serde types with located, actionable diagnostics:
//! serde_yaml's error classified (syntax, missing key, wrong value, too deep) and placed at
//! its byte, and every key serde ignored reported as an unknown key with a did-you-mean.
//!
//! **Why its own module.** Every YAML file genroute loads (policies, the tenants file) needs
//! the same reading and the same messages; the policy loader and the tenants loader both call
//! these, so they sit below both.

use super::yaml::{Node, Seg, MAX_NESTING as MAX_YAML_NESTING};
use crate::check::scope::did_you_mean;
use crate::diag::Diagnostic;

/// Reads `text` into `T` with serde_yaml, collecting the path of every key serde ignored (the
/// caller reports those that are not `x-` notes with [`unknown_key`]). On failure, the one
/// diagnostic serde_yaml's error gives, classified by code and located; its help for a wrong
/// value points at `reference` (e.g. "the policy reference in README.md"). Shared by every
/// YAML file genroute loads (policies, tenants).
pub(crate) fn deserialize_yaml<T: serde::de::DeserializeOwned>(
    text: &str,
    reference: &str,
) -> Result<(T, Vec<Vec<Seg>>), Box<Diagnostic>> {
    let mut unknown: Vec<Vec<Seg>> = Vec::new();
    let de = serde_yaml::Deserializer::from_str(text);
    let result: Result<T, _> = serde_ignored::deserialize(de, |path| {
        unknown.push(segments(&path));
    });
    match result {
        Ok(raw) => Ok((raw, unknown)),
        Err(e) => {
            let message = e.to_string();
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_string();
            const SYNTAX: &[&str] = &[
                "found",
                "did not find",
                "while parsing",
                "while scanning",
                "not allowed in this context",
                "end of stream",
                "control character",
                "invalid indentation",
            ];
            let (code, help) = if message.contains("recursion limit exceeded") {
                // serde_yaml's own bound (128 levels). The located tree stops at
                // MAX_YAML_NESTING first whenever saphyr reads the file; this is for text
                // saphyr rejects and libyaml does not.
                (
                    "too-deep",
                    format!(
                        "mappings and sequences may nest at most {MAX_YAML_NESTING} levels deep; flatten the structure"
                    ),
                )
            } else if message.contains("missing field") {
                (
                    "missing-key",
                    "add the key; README.md lists what each section needs".into(),
                )
            } else if message.contains("duplicate") {
                (
                    "duplicate-key",
                    "each key may appear once in a mapping".into(),
                )
            } else if SYNTAX.iter().any(|s| message.contains(s)) {
                (
                    "yaml-syntax",
                    "check indentation, quotes, brackets and colons around this place".into(),
                )
            } else {
                (
                    "invalid-value",
                    format!("check the value's type against {reference}"),
                )
            };
            let mut d = Diagnostic::error(code, first_lower(&message)).help(help);
            if let Some(loc) = e.location() {
                let start = loc.index().min(text.len());
                let end = next_boundary(text, start);
                d = d.at(start..end, "here");
            }
            Err(Box::new(d))
        }
    }
}

/// The diagnostic for the unknown key at `path` (none for an `x-` note), with a did-you-mean
/// among `known`, the keys accepted there, located at the key in `tree`.
pub(crate) fn unknown_key(path: &[Seg], known: &[&str], tree: Option<&Node>) -> Option<Diagnostic> {
    let Some(Seg::Key(name)) = path.last() else {
        return None;
    };
    if name.starts_with("x-") {
        return None;
    }
    let mut d = Diagnostic::error("unknown-key", format!("unknown key `{name}`"));
    d = match did_you_mean(name, known.iter().copied()) {
        Some(s) => d.help(format!("did you mean `{s}`?")),
        None if known.is_empty() => {
            d.help("remove it, or prefix it with `x-` to keep it as a note")
        }
        None => d.help(format!(
            "expected one of {}; prefix a key with `x-` to keep it as a note",
            ticks(known)
        )),
    };
    if let Some(n) = tree.and_then(|t| t.key_at(path)) {
        d = d.at(n.range.clone(), "not a known key");
    }
    Some(d)
}

fn segments(path: &serde_ignored::Path<'_>) -> Vec<Seg> {
    use serde_ignored::Path;
    let mut out = Vec::new();
    let mut p = path;
    loop {
        match p {
            Path::Root => break,
            Path::Seq { parent, index } => {
                out.push(Seg::Index(*index));
                p = parent;
            }
            Path::Map { parent, key } => {
                out.push(Seg::Key(key.clone()));
                p = parent;
            }
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => p = parent,
        }
    }
    out.reverse();
    out
}

pub(crate) fn ticks(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn first_lower(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn next_boundary(text: &str, at: usize) -> usize {
    let mut end = (at + 1).min(text.len());
    while end < text.len() && !text.is_char_boundary(end) {
        end += 1;
    }
    end
}

pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
