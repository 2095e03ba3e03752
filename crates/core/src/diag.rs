//! Diagnostics: one type for every problem found in a policy, rendered like rustc.
//!
//! Parse, check and load errors all end up here, located by byte range in the policy file.
//! Rendering uses codespan-reporting, which prints `file:line:col`, the source line and a
//! caret underline, followed by a `help` line.

use std::ops::Range;

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label, Severity as CsSeverity};
use codespan_reporting::files::{Error as FilesError, Files, SimpleFile};
use codespan_reporting::term;

/// Lines longer than this, in bytes, are shown as an excerpt around the label, so that a
/// diagnostic in a file written on one long line stays short, and rendering many of them
/// stays linear in the file's size.
const LONG_LINE: usize = 240;
/// In an excerpt: how much of the line is shown on each side of the label, and of the label
/// itself, in bytes.
const CONTEXT: usize = 80;
/// Marks where an excerpt cuts a line.
const ELLIPSIS: &str = "…";
/// Characters are counted in blocks of this many bytes, for columns on long lines.
const BLOCK: usize = 4096;

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
    /// Where lines start and how many characters precede each block, computed on first use,
    /// so that locating every rule of a large policy stays linear, however long its lines.
    index: std::sync::OnceLock<Box<Index>>,
}

/// Line starts and character counts of a text.
#[derive(Debug, Clone)]
struct Index {
    /// Byte offset of each line's start.
    line_starts: Vec<usize>,
    /// Characters before each [`BLOCK`]-byte block of the text.
    block_chars: Vec<usize>,
}

/// Whether `b` starts a character (is not a UTF-8 continuation byte).
fn starts_char(b: &u8) -> bool {
    (*b as i8) >= -0x40
}

impl Source {
    /// A source from a name and text.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Source {
        Source {
            name: name.into(),
            text: text.into(),
            index: std::sync::OnceLock::new(),
        }
    }

    fn index(&self) -> &Index {
        self.index.get_or_init(|| {
            let bytes = self.text.as_bytes();
            let mut block_chars = Vec::with_capacity(bytes.len() / BLOCK + 1);
            let mut chars = 0;
            block_chars.push(0);
            for block in bytes.chunks(BLOCK) {
                chars += block.iter().filter(|b| starts_char(b)).count();
                block_chars.push(chars);
            }
            Box::new(Index {
                line_starts: std::iter::once(0)
                    .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                    .collect(),
                block_chars,
            })
        })
    }

    /// Characters before byte `offset` (at most `BLOCK` bytes are counted).
    fn chars_before(&self, offset: usize) -> usize {
        let block = offset / BLOCK;
        self.index().block_chars[block]
            + self.text.as_bytes()[block * BLOCK..offset]
                .iter()
                .filter(|b| starts_char(b))
                .count()
    }

    /// 0-based index and byte range (without the line break) of the line holding `offset`.
    fn line_at(&self, offset: usize) -> (usize, Range<usize>) {
        let starts = &self.index().line_starts;
        let line = starts.partition_point(|&start| start <= offset) - 1;
        let start = starts[line];
        let end = starts
            .get(line + 1)
            .map_or(self.text.len(), |&next| next - 1);
        (line, start..end)
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let (line, range) = self.line_at(offset);
        let column = if !self.text.is_char_boundary(offset) {
            1
        } else if offset - range.start <= BLOCK {
            self.text[range.start..offset].chars().count() + 1
        } else {
            self.chars_before(offset) - self.chars_before(range.start) + 1
        };
        (line + 1, column)
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
            let rendered = match Excerpt::of(self, d) {
                Some((excerpt, label)) => {
                    let mut cs = to_codespan(d, excerpt.text.len());
                    if let Some(l) = cs.labels.first_mut() {
                        l.range = label;
                    }
                    emit(&config, &excerpt, &cs, color)
                }
                None => emit(&config, &file, &to_codespan(d, self.text.len()), color),
            };
            match rendered {
                Ok(s) => out.push_str(&s),
                Err(_) => out.push_str(&format!("{}: {}\n", self.name, d.message)),
            }
        }
        out
    }
}

fn emit<'f, F: Files<'f, FileId = ()>>(
    config: &term::Config,
    files: &'f F,
    cs: &CsDiagnostic<()>,
    color: bool,
) -> Result<String, FilesError> {
    if color {
        let mut buf = term::termcolor::Buffer::ansi();
        term::emit_to_write_style(&mut buf, config, files, cs)
            .map(|_| String::from_utf8_lossy(buf.as_slice()).into_owned())
    } else {
        let mut s = String::new();
        term::emit_to_string(&mut s, config, files, cs).map(|_| s)
    }
}

/// The part of a long line around a diagnostic's label, with `…` where the line is cut,
/// shown in place of the whole line (with the line's true number and columns).
struct Excerpt<'a> {
    source: &'a Source,
    /// The shown part, between ellipses.
    text: String,
    /// File offset of the shown part's first byte.
    start: usize,
    /// Where the shown part starts in `text` (after a leading ellipsis).
    lead: usize,
    /// 0-based index of the line.
    line: usize,
}

impl<'a> Excerpt<'a> {
    /// The excerpt for `d`, and its label's range in it, if `d`'s label starts on a long
    /// line. A label is shown on its first line only, for at most [`CONTEXT`] bytes.
    fn of(source: &'a Source, d: &Diagnostic) -> Option<(Excerpt<'a>, Range<usize>)> {
        let text = source.text.as_str();
        let range = d.range.as_ref()?;
        let a = floor_boundary(text, range.start.min(text.len()));
        let (line, bounds) = source.line_at(a);
        if bounds.len() <= LONG_LINE {
            return None;
        }
        let b = ceil_boundary(text, range.end.clamp(a, bounds.end).min(a + CONTEXT));
        let lo = floor_boundary(text, a.saturating_sub(CONTEXT).max(bounds.start));
        let hi = ceil_boundary(text, (b + CONTEXT).min(bounds.end));
        let mut shown = String::new();
        if lo > bounds.start {
            shown.push_str(ELLIPSIS);
        }
        let lead = shown.len();
        shown.push_str(&text[lo..hi]);
        if hi < bounds.end {
            shown.push_str(ELLIPSIS);
        }
        let excerpt = Excerpt {
            source,
            text: shown,
            start: lo,
            lead,
            line,
        };
        Some((excerpt, a - lo + lead..b - lo + lead))
    }
}

impl<'a, 's: 'a> Files<'a> for Excerpt<'s> {
    type FileId = ();
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, (): ()) -> Result<&'a str, FilesError> {
        Ok(self.source.name.as_str())
    }

    fn source(&'a self, (): ()) -> Result<&'a str, FilesError> {
        Ok(self.text.as_str())
    }

    fn line_index(&'a self, (): (), _byte_index: usize) -> Result<usize, FilesError> {
        Ok(0)
    }

    fn line_number(&'a self, (): (), line_index: usize) -> Result<usize, FilesError> {
        Ok(self.line + line_index + 1)
    }

    fn column_number(
        &'a self,
        (): (),
        _line_index: usize,
        byte_index: usize,
    ) -> Result<usize, FilesError> {
        let offset = self.start + byte_index.saturating_sub(self.lead);
        Ok(self.source.line_col(offset).1)
    }

    fn line_range(&'a self, (): (), line_index: usize) -> Result<Range<usize>, FilesError> {
        match line_index {
            0 => Ok(0..self.text.len()),
            given => Err(FilesError::LineTooLarge { given, max: 0 }),
        }
    }
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn ceil_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
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

    #[test]
    fn line_col_is_exact_far_into_a_long_line() {
        // Columns past one block of bytes come from the per-block character counts.
        let text = format!("a\n{}x{}\n", "é".repeat(5000), "b".repeat(9000));
        let source = Source::new("t.yaml", text.as_str());
        let x = text.find('x').unwrap();
        assert_eq!(source.line_col(x), (2, 5001));
        assert_eq!(source.line_col(text.len() - 1), (2, 14_002));
        assert_eq!(source.line_col(text.len()), (3, 1));
    }
}
