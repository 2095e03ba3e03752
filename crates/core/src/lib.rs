//! genroute: a rule engine that decides which generation backend serves a request, within a
//! monthly budget, and explains every decision.
//!
//! A policy (YAML) declares backends with their cost, quality and latency, and selection
//! rules whose conditions are written in a small expression language. Loading a policy parses
//! and checks every condition, so a policy that loads cannot hit a type error later.
//! Deciding is pure: the request and a [`State`] snapshot (spend, breakers, failures, time)
//! go in, a [`Decision`] or a full [`Explanation`] comes out.
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

/// A policy that failed to load, with every diagnostic. `Display` renders them like rustc.
#[derive(Debug, Clone)]
pub struct LoadError {
    /// The file.
    pub source: Source,
    /// What is wrong with it.
    pub diagnostics: Vec<Diagnostic>,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source.render(&self.diagnostics, false))
    }
}

impl std::error::Error for LoadError {}

impl Policy {
    /// Loads a policy from YAML text, with no environment overrides.
    pub fn from_yaml(name: &str, text: &str) -> Result<Policy, LoadError> {
        Policy::load(Source::new(name, text), &LoadOptions::default())
    }

    /// Loads a policy with explicit options (such as an environment for feature flags).
    pub fn load(source: Source, options: &LoadOptions<'_>) -> Result<Policy, LoadError> {
        policy::load(&source, options).map_err(|diagnostics| LoadError {
            source,
            diagnostics,
        })
    }

    /// Decides which backend serves `request`.
    pub fn decide(&self, request: &Request, state: &State) -> Decision<'_> {
        decide::decide(self, request, state)
    }

    /// Decides into `out`, reusing its buffer, so that repeated decisions allocate nothing.
    pub fn decide_into<'p>(&'p self, request: &Request, state: &State, out: &mut Decision<'p>) {
        decide::decide_reusing(self, request, state, out)
    }

    /// Decides and records everything that led to the decision into `out`, reusing its
    /// buffers; [`explain::render`] turns the record into an [`Explanation`].
    pub fn trace_into<'a>(&'a self, request: &'a Request, state: &'a State, out: &mut Trace<'a>) {
        explain::trace_into(self, request, state, out)
    }

    /// Decides and explains why.
    pub fn explain(&self, request: &Request, state: &State) -> Explanation {
        explain::explain(self, request, state)
    }
}
