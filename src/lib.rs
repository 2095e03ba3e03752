//! genroute: a rule engine that decides which generation backend serves a request, within a
//! budget, calls it, falls back when it fails, and explains every decision.
//!
//! This crate is the one users install and link: the `genroute` binary and this library, which
//! re-exports the workspace's crates under the paths the library has always had. Each crate
//! has one concern and imports only the crates below it (see `ARCHITECTURE.md`):
//!
//! - [`genroute_core`]: the condition language, policies, decisions, explanations, budget
//!   levels and output judging. Pure: no IO, no async runtime.
//! - [`genroute_store`] ([`store`]): the state replicas share (the money ledger, breakers, job
//!   records, samples, experiment figures, slots) on memory, SQLite, Redis and Redis Cluster.
//! - [`genroute_exec`] ([`exec`]): adapters, output checks, the walk along a chain, durable
//!   jobs, webhooks and the simulator.
//! - [`genroute_server`] ([`server`]): the HTTP service.
//!
//! This crate may depend on all of them; none depends on it. It must hold no logic of its
//! own: the binary's subcommands (`src/cli/`) parse flags and print, and what they compute
//! comes from the crates below, where the service and the Python package share it.
//!
//! ```
//! use genroute::{Policy, RequestBuilder, State};
//!
//! let policy = Policy::from_yaml("demo.yaml", genroute::DEMO_POLICY)?;
//! let request = RequestBuilder::new("a lighthouse in a storm")
//!     .set("priority", "quality")
//!     .build(&policy)?;
//! let now = "2026-11-25T12:00:00Z".parse()?;
//! let state = State::new(&policy, now).with_spend("12.50".parse()?);
//!
//! let decision = policy.decide(&request, &state);
//! let chosen = decision.backend.and_then(|i| policy.backend(i)).map(|b| b.name.as_str());
//! assert_eq!(chosen, Some("veo"));
//!
//! let why = policy.explain(&request, &state);
//! assert_eq!(why.rule.as_deref(), Some("quality_priority"));
//! println!("{}", why.to_text());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use genroute_core::*;
pub use genroute_exec as exec;
pub use genroute_exec::{adapter, jobs, output, simulate};
pub use genroute_server as server;
pub use genroute_store as store;
