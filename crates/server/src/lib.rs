//! `genroute serve`: the HTTP API (axum), hot reload and metrics.
//!
//! **What this crate is for.** It translates between HTTP and the library, and nothing more:
//! every decision is made by the [`Router`](genroute_exec::Router) of the policy currently
//! loaded, every figure comes from the store, every job is run by exec's runner.
//!
//! **What it may depend on.** `genroute-core` (the language, policies, decisions,
//! explanations, tenants), `genroute-store` (the shared state behind a guard) and
//! `genroute-exec` (the walk, jobs, adapters): never the other way round, and nothing else of
//! the workspace.
//!
//! **What it must never do.** Hold business logic that the CLI or the Python package would
//! need: a rule about money, eligibility, budgets or job records belongs in exec or core, where
//! all three front ends share it (so `GET /v1/budget` and `genroute budget` print the same
//! [`budget_summary`]). Here is only what is HTTP's: parsing bodies, statuses, auth headers,
//! the route table, the process's metrics and reload.
//!
//! **Nothing here waits on a stalled dependency.** `/healthz` touches neither the store nor
//! the policy's state. `/readyz` answers from the store guard's last probe. Decisions read the
//! state cache, which answers from its last snapshot when the store is slow
//! ([`genroute_exec::snapshot`]). Every store call has a deadline and fails fast while the store
//! is down ([`genroute_store::guard`]). A policy reload parses and checks the file on a
//! blocking thread, so a slow or hostile file delays only the reload. Bodies are read whole,
//! bounded in size and time, before a handler runs ([`body`]).
//!
//! **How the modules stack.** At the bottom, `error` (the refusal answers),
//! `load` (reading the policy and tenants files) and [`metrics`]; above them `app` (the
//! shared state, [`App`], and its reload); above that the middleware ([`auth`], [`body`]) and
//! the handlers (`decide`, `backends`, `budget`, `health`, `jobs`, [`videos`], `admin`), and
//! `watch` (hot reload); on top, `routes`, the one module that names every handler.
//!
//! Endpoints are documented in `openapi.yaml` at the repository root, and tested against it.

mod admin;
mod app;
pub mod auth;
mod backends;
pub mod body;
mod budget;
mod decide;
mod error;
mod health;
mod jobs;
mod load;
pub mod metrics;
mod routes;
pub mod videos;
mod watch;

pub use app::{App, Config, StartError, PROBE_EVERY};
pub use budget::{budget_summary, BudgetQuery};
pub use error::none_eligible_status;
pub use load::Env;
pub use routes::routes;
pub use watch::watch;
