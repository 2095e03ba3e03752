//! Why a store call failed.
//!
//! **Why its own module.** Every other module answers with it: the ledger's arithmetic (a
//! reservation over budget), the [`Store`](crate::store::Store) contract, each store and the
//! guard in front of them. Kept apart, it depends on nothing, so none of those modules has to
//! depend on another just to name an error.

use genroute_core::num::Fixed;

/// Why a store operation failed (the ledger's refusals among them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The reservation would pass a budget: the policy's monthly one, or a level's.
    #[error("reserving {amount} would pass {} of {budget}: {counted} is already spent or reserved", level_phrase(.level))]
    OverBudget {
        /// Requested.
        amount: Fixed,
        /// Already counted.
        counted: Fixed,
        /// The budget.
        budget: Fixed,
        /// The level that refused ([`LevelLimit::key`](crate::ledger::LevelLimit::key));
        /// `None` for the policy's monthly budget.
        level: Option<String>,
    },
    /// No open reservation with that id.
    #[error("no open reservation `{0}`")]
    UnknownReservation(String),
    /// The store failed, timed out, or is failing fast after repeated failures.
    #[error("ledger store: {0}")]
    Store(String),
    /// The store lost its data (its epoch marker is gone or changed): spending is refused
    /// until an operator accepts the empty ledger.
    #[error("ledger store: {0}")]
    EpochLost(String),
}

impl StoreError {
    /// Whether this says the store is unhealthy (as opposed to a definite answer from a
    /// healthy store, such as "over budget").
    pub fn is_store_failure(&self) -> bool {
        matches!(self, StoreError::Store(_) | StoreError::EpochLost(_))
    }
}

fn level_phrase(level: &Option<String>) -> String {
    match level.as_deref().and_then(|l| l.rsplit_once('@')) {
        Some((name, period)) => format!("the budget of `{name}` for {period}"),
        None => "the monthly budget".into(),
    }
}
