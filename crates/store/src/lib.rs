//! genroute's shared state: what replicas agree on.
//!
//! The money ledger ([`ledger`]: reserve, commit, release, in doubt, on the monthly budget and
//! its levels), the backends' breakers, durable job records ([`job`]), measured samples,
//! experiment figures and the slots behind per-key limits. Every one of them is kept by a
//! [`Store`]: [`memory::MemoryStore`] for embedding and tests, [`sqlite::SqliteStore`] for the
//! single-host default, [`redis::RedisStore`] (one Redis or a Redis Cluster) for replicas.
//! All keep the breakers too, so breaker state outlives a CLI process. [`guard::Guarded`]
//! puts a deadline on every call and fails fast while the store is down.
//!
//! **What it may depend on.** `genroute-core` only (for money, breakers, levels and the
//! records it stores), beside the storage clients themselves.
//!
//! **What it must never do.** Import execution code, call a backend, or serve HTTP: the
//! executor and the server call the store, never the other way round.
//!
//! **The stored formats are wire formats.** The SQLite schema, the Redis key layout and the
//! JSON of breakers and jobs are read by other replicas and by later builds: change them
//! only with a migration.
//!
//! Modules: [`error`] (why a call failed), [`ledger`] (the money records and arithmetic),
//! [`store`] (the [`Store`] contract), [`job`] (the job record), [`guard`] (deadline and
//! fail-fast in front of any store), and the stores [`memory`], [`sqlite`], [`redis`].

pub mod error;
pub mod guard;
pub mod job;
pub mod ledger;
pub mod memory;
pub mod redis;
pub mod sqlite;
pub mod store;

pub use error::StoreError;
pub use ledger::{
    admits, admits_all, check_levels, finish_move, level_key, millis, month_of_id, new_id, rfc3339,
    settle, Entry, EntryState, LevelLimit, Month, NewReservation, Payer, Summary, Totals,
    EXPIRED_AFTER_SEND, MAX_LEVELS,
};
pub use store::{Counters, Store};
