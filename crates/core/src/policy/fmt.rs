//! `genroute fmt`: rewrites every rule's condition into the canonical form (keywords in upper
//! case, single-quoted strings, one space around operators, only the parentheses precedence
//! needs) and leaves every other byte of the file as it was, comments included.
//!
//! A condition already in canonical form is left exactly as written, whatever its YAML quoting.
//! One that changes is written as a double-quoted YAML scalar on the `condition:` line (a block
//! scalar becomes one line). Printing a parsed condition and parsing it back gives the same
//! tree, so formatting never changes what a condition means, and formatting twice changes
//! nothing the second time.

use super::yaml::{self, NodeKind, Seg};
use crate::diag::{Diagnostic, Source};
use crate::lang::parse::parse_condition;

/// The file's new text, or why it cannot be formatted.
pub fn format_policy(source: &Source) -> Result<String, Vec<Diagnostic>> {
    let text = source.text.as_str();
    let root = yaml::parse(text).map_err(|e| {
        let d = e.diagnostic().unwrap_or_else(|| {
            Diagnostic::error("yaml-syntax", "the file is not valid YAML")
                .help("run `genroute check` on it for the exact place")
        });
        vec![source.locate(d)]
    })?;
    let rules = match root
        .get(&[Seg::Key("selection_rules".into())])
        .map(|n| &n.kind)
    {
        Some(NodeKind::Seq(items)) => items.len(),
        _ => 0,
    };
    let mut edits = Vec::new();
    let mut errors = Vec::new();
    for i in 0..rules {
        let path = [
            Seg::Key("selection_rules".into()),
            Seg::Index(i),
            Seg::Key("condition".into()),
        ];
        let Some(node) = root.get(&path) else {
            continue;
        };
        let Some(value) = node.scalar() else { continue };
        match parse_condition(value) {
            Ok(tree) => {
                let canonical = tree.to_string();
                if canonical != value {
                    edits.push((scalar_range(text, node), quote(&canonical)));
                }
            }
            Err(e) => {
                let map = yaml::OffsetMap::new(text, node, value);
                let d = Diagnostic::error(
                    "syntax",
                    format!(
                        "cannot format a condition that does not parse: {}",
                        e.message
                    ),
                )
                .help(e.help.clone())
                .at(
                    map.range(text, e.span.start as usize, e.span.end as usize),
                    "here",
                );
                errors.push(source.locate(d));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut out = text.to_string();
    for (range, replacement) in edits.into_iter().rev() {
        let end = trim_block_end(text, range.clone());
        out.replace_range(range.start..end, &replacement);
    }
    Ok(out)
}

/// The bytes to replace: a block scalar's span starts at its content, so reach back to its
/// `|` or `>` indicator on the key's line.
fn scalar_range(text: &str, node: &yaml::Node) -> std::ops::Range<usize> {
    let block = matches!(
        node.kind,
        NodeKind::Scalar(
            _,
            saphyr_parser::ScalarStyle::Literal | saphyr_parser::ScalarStyle::Folded
        )
    );
    if !block {
        return node.range.clone();
    }
    let before = text.get(..node.range.start).unwrap_or("");
    let head = before.trim_end();
    let line_start = head.rfind('\n').map_or(0, |i| i + 1);
    match head[line_start..].rfind(['|', '>']) {
        Some(i) => line_start + i..node.range.end,
        None => node.range.clone(),
    }
}

/// A block scalar's span runs to the start of the next line; keep that line break.
fn trim_block_end(text: &str, range: std::ops::Range<usize>) -> usize {
    let raw = text.get(range.clone()).unwrap_or("");
    range.start + raw.trim_end_matches(['\n', '\r', ' ']).len()
}

/// A double-quoted YAML scalar.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A unified diff between the file and its formatted form.
pub fn diff(name: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(2)
        .header(name, &format!("{name} (formatted)"))
        .to_string()
}
