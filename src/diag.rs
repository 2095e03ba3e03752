//! Diagnostics: one type for every problem found in a policy, rendered like rustc.
//!
//! Parse, check and load errors all end up here, located by byte range in the policy file.
//! Rendering uses codespan-reporting, which prints `file:line:col`, the source line and a
//! caret underline, followed by a `help` line.

use std::ops::Range;

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label, Severity as CsSeverity};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term;

/// How bad it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The policy does not load.
    Error,
    /// The policy loads, but something is probably wrong.
    Warning,
}

/// One problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable kebab-case name, e.g. `unknown-name`.
    pub code: &'static str,
    /// What is wrong, lowercase, user input in backticks.
    pub message: String,
    /// Label for the underlined text.
    pub label: String,
    /// How to fix it.
    pub help: Option<String>,
    /// Byte range in the file, when the problem has a place.
    #[serde(skip)]
    pub range: Option<Range<usize>>,
    /// 1-based line and column of `range.start`, filled in by [`Source::locate`].
    pub line: Option<usize>,
    /// 1-based column, in characters.
    pub column: Option<usize>,
}

impl Diagnostic {
    /// An error.
    pub fn error(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            label: String::new(),
            help: None,
            range: None,
            line: None,
            column: None,
        }
    }

    /// Sets the place and its label.
    pub fn at(mut self, range: Range<usize>, label: impl Into<String>) -> Diagnostic {
        self.range = Some(range);
        self.label = label.into();
        self
    }

    /// Sets the help line.
    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }
}

/// A policy file's name and text.
#[derive(Debug, Clone)]
pub struct Source {
    /// Shown in diagnostics, e.g. `policies/videogen.yaml`.
    pub name: String,
    /// The whole file.
    pub text: String,
    /// Byte offset of each line's start, computed on first use, so that locating every
    /// rule of a large policy stays linear.
    line_starts: std::sync::OnceLock<Vec<usize>>,
}

impl Source {
    /// A source from a name and text.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Source {
        Source {
            name: name.into(),
            text: text.into(),
            line_starts: std::sync::OnceLock::new(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let starts = self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        let line = starts.partition_point(|&start| start <= offset);
        let line_start = starts.get(line.wrapping_sub(1)).copied().unwrap_or(0);
        let column = self
            .text
            .get(line_start..offset)
            .map_or(0, |s| s.chars().count())
            + 1;
        (line, column)
    }

    /// Fills in line and column from the range.
    pub fn locate(&self, mut d: Diagnostic) -> Diagnostic {
        if let Some(r) = &d.range {
            let (line, column) = self.line_col(r.start);
            d.line = Some(line);
            d.column = Some(column);
        }
        d
    }

    /// Renders diagnostics as text, optionally with ANSI colours.
    pub fn render(&self, diagnostics: &[Diagnostic], color: bool) -> String {
        let file = SimpleFile::new(self.name.as_str(), self.text.as_str());
        let config = term::Config::default();
        let mut out = String::new();
        for d in diagnostics {
            let cs = to_codespan(d, self.text.len());
            let rendered = if color {
                let mut buf = term::termcolor::Buffer::ansi();
                term::emit_to_write_style(&mut buf, &config, &file, &cs)
                    .map(|_| String::from_utf8_lossy(buf.as_slice()).into_owned())
            } else {
                let mut s = String::new();
                term::emit_to_string(&mut s, &config, &file, &cs).map(|_| s)
            };
            match rendered {
                Ok(s) => out.push_str(&s),
                Err(_) => out.push_str(&format!("{}: {}\n", self.name, d.message)),
            }
        }
        out
    }
}

fn to_codespan(d: &Diagnostic, len: usize) -> CsDiagnostic<()> {
    let severity = match d.severity {
        Severity::Error => CsSeverity::Error,
        Severity::Warning => CsSeverity::Warning,
    };
    let mut cs = CsDiagnostic::new(severity)
        .with_message(d.message.clone())
        .with_code(d.code);
    if let Some(r) = &d.range {
        let r = r.start.min(len)..r.end.min(len).max(r.start.min(len));
        cs = cs.with_labels(vec![Label::primary((), r).with_message(d.label.clone())]);
    }
    if let Some(h) = &d.help {
        cs = cs.with_notes(vec![format!("help: {h}")]);
    }
    cs
}

#[cfg(test)]
mod line_col_tests {
    use super::Source;

    #[test]
    fn line_col_agrees_with_counting_from_the_start_at_every_offset() {
        let text = "a: 1\n\nbé: \"ünï\"\n  - x\r\nlast";
        let source = Source::new("t.yaml", text);
        for offset in 0..=text.len() + 2 {
            let Some(before) = text.get(..offset.min(text.len())) else {
                continue;
            };
            let line = before.matches('\n').count() + 1;
            let start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = before[start..].chars().count() + 1;
            assert_eq!(source.line_col(offset), (line, column), "offset {offset}");
        }
    }
}
