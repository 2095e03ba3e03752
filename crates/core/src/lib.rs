//! genroute-core: the pure core of genroute. It decides which generation backend serves a
//! request, within a budget, and explains every decision.
//!
//! A policy (YAML) declares backends with their cost, quality and latency, and selection
//! rules whose conditions are written in a small expression language. Loading a policy parses
//! and checks every condition, so a policy that loads cannot hit a type error later.
//! Deciding is pure: the request and a [`State`] snapshot (spend, breakers, failures, time)
//! go in, a [`Decision`] or a full [`Explanation`] comes out.
//!
//! **What it holds**: the condition language (grammar → [`lang`] → [`check`] → [`expr`] →
//! [`eval`], with the Cranelift JIT behind the `jit` feature), policy loading, formatting,
//! schema and lints ([`policy`]), decisions and splits ([`decide`], [`split`]), explanations
//! ([`explain`]), budget levels ([`levels`]), breakers as a state machine ([`breaker`]),
//! measured figures and experiments ([`measure`], [`experiment`]), tenants and API keys
//! ([`tenant`]), requests ([`request`], [`input`]), output judging ([`output`]), exact money
//! ([`num`]) and diagnostics ([`diag`]).
//!
//! **What it may depend on**: pure libraries only (parsing, serde, hashing, the JIT). Nothing
//! from the workspace.
//!
//! **What it must never do**: IO of any kind (files, network, processes, the clock, the
//! environment) or anything async. No tokio, reqwest, rusqlite, redis or axum: the clock, the
//! state, the environment and the request come in as values (`tests/layers.rs` and `.ci/run`
//! check the manifest and the dependency tree). Its modules form no cycle: each imports only
//! those below it (`ARCHITECTURE.md` has the order).
//!
//! ```
//! use genroute_core::{Policy, RequestBuilder, State};
//!
//! let policy = Policy::from_yaml("demo.yaml", genroute_core::DEMO_POLICY)?;
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

pub mod breaker;
pub mod check;
pub mod condition;
pub mod decide;
pub mod diag;
pub mod eval;
pub mod experiment;
pub mod explain;
pub mod expr;
pub mod front;
pub mod input;
pub mod lang;
pub mod levels;
pub mod measure;
pub mod num;
pub mod output;
pub mod policy;
pub mod request;
pub mod split;
pub mod state;
pub mod tenant;
pub mod testing;

pub use breaker::BreakerState;
pub use condition::Condition;
pub use decide::{Decision, Ineligible};
pub use diag::{Diagnostic, Severity, Source};
pub use explain::{Explanation, Trace};
pub use front::LoadError;
pub use lang::parse::parse_condition;
pub use num::Fixed;
pub use policy::{lint, LoadOptions, Policy};
pub use request::{Request, RequestBuilder, RequestError};
pub use state::State;
pub use tenant::{AuthError, Scope, Tenancy, Tenants};

/// `policies/videogen.yaml`, built in: the seed's four backends and seven rules, reached
/// through their real APIs (their keys come from the environment).
pub const EXAMPLE_POLICY: &str = include_str!("../../../policies/videogen.yaml");

/// `policies/demo.yaml`, built in: the same backends and rules, simulated.
pub const DEMO_POLICY: &str = include_str!("../../../policies/demo.yaml");
