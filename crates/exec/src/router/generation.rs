//! The result of a generation, as the walk returns it and callers read it.
//!
//! **Why apart from the walk.** The CLI prints it, the service answers with it (its JSON is the
//! API's body), a job keeps it as its outcome, and the Python package wraps it: they read a
//! [`Generation`] without walking anything.

use serde::Serialize;

use crate::adapter::FailureClass;
use genroute_core::num::Fixed;
use genroute_store::job::{Attempt, NotCalled};

/// The outcome of an attempt that stopped because the store failed before the call
/// ([`NotCalled::StoreError`], as written): callers answer 503 for it.
pub const LEDGER_ERROR: &str = NotCalled::StoreError.as_str();

/// The outcome (and ledger note) of an attempt whose delivered video failed its output
/// checks ([`FailureClass::BadOutput`], as written): the provider finished the job, so its
/// money is spent.
pub const BAD_OUTPUT: &str = FailureClass::BadOutput.as_str();

/// The result of a generation.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Generation {
    /// Request id (also in the ledger).
    pub request_id: String,
    /// Backend that produced the video, if one did.
    pub backend: Option<String>,
    /// Model used.
    pub model: Option<String>,
    /// URI of the video, or the path it was written to.
    pub video: Option<String>,
    /// Total committed for this request (including in-doubt attempts).
    pub cost_usd: Fixed,
    /// Quality reported by the backend, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<Fixed>,
    /// Every attempt, in order.
    pub attempts: Vec<Attempt>,
    /// Why nothing was produced, when nothing was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// True for `--dry-run`: nothing was called and nothing spent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// A generation for which no backend is eligible.
pub fn not_eligible(request_id: &str) -> Generation {
    Generation {
        request_id: request_id.to_string(),
        backend: None,
        model: None,
        video: None,
        cost_usd: Fixed::ZERO,
        quality: None,
        attempts: Vec::new(),
        error: Some(
            "no backend is eligible for this request; run `genroute explain` for the reasons"
                .into(),
        ),
        dry_run: false,
    }
}
