//! Errors raised while evaluating a condition.

use crate::lang::ast::Span;

/// A runtime error, located at the sub-expression that raised it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct EvalError {
    /// Where in the condition.
    pub span: Span,
    /// What went wrong.
    pub kind: EvalErrorKind,
}

impl EvalError {
    pub(crate) fn new(span: Span, kind: EvalErrorKind) -> EvalError {
        EvalError { span, kind }
    }
}

/// The kinds of runtime error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalErrorKind {
    /// `x / 0`
    #[error("division by zero")]
    DivisionByZero,
    /// A result outside the representable range.
    #[error("arithmetic overflow")]
    Overflow,
    /// The request does not set a value this condition reads.
    #[error("the request does not set this value")]
    Unset,
    /// A measured figure with no data yet (a backend with no samples, a video whose frames
    /// were not measured).
    #[error("no measured data for this figure yet")]
    NoData,
    /// A tenant value of a request made without an API key (or one the tenant does not set).
    #[error("the request has no tenant value here (no API key, or the tenant does not set it)")]
    NoTenant,
    /// A budget level the caller does not have.
    #[error("the caller has no budget at this level")]
    NoLevel,
    /// Internal: a non-boolean reached a boolean position (the checker prevents it).
    #[error("expected true or false")]
    NotBoolean,
    /// Internal: a non-number reached arithmetic (the checker prevents it).
    #[error("expected a number")]
    NotNumeric,
}
