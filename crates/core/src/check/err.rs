//! Errors from checking a condition.

use crate::lang::ast::Span;

/// A problem with a condition that parsed: an unknown name, a type mismatch, a misspelled
/// enum value. Located within the condition's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CheckError {
    /// Stable kebab-case name of the kind of error, e.g. `unknown-name`.
    pub code: &'static str,
    /// Where in the condition.
    pub span: Span,
    /// What is wrong, lowercase, with user input in backticks.
    pub message: String,
    /// A short label for the underlined text.
    pub label: String,
    /// How to fix it.
    pub help: String,
}

impl CheckError {
    pub(crate) fn new(
        code: &'static str,
        span: Span,
        message: String,
        label: &str,
        help: &str,
    ) -> Self {
        CheckError {
            code,
            span,
            message,
            label: label.to_string(),
            help: help.to_string(),
        }
    }
}
