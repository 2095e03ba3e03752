//! Errors from parsing a condition.

use super::ast::Span;

/// A syntax error in a condition, located within the condition's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// Where in the condition.
    pub span: Span,
    /// What is wrong, lowercase.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

impl ParseError {
    pub(crate) fn new(span: Span, message: String, help: &str) -> ParseError {
        ParseError {
            span,
            message,
            help: help.to_string(),
        }
    }
}
