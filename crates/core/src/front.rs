//! The crate's front door: [`Policy::from_yaml`], [`Policy::load`], [`Policy::decide`] and
//! [`Policy::explain`], so that a user loads and asks with no module path, and the error a
//! failed load returns ([`LoadError`]).
//!
//! **Why its own module.** These methods call the loader, the decision and the explanation,
//! which all read the policy: written in `policy` they would make it depend on what depends on
//! it. Here they sit above all three.

use crate::decide::{self, Decision};
use crate::diag::{Diagnostic, Source};
use crate::explain::{self, Explanation, Trace};
use crate::policy::{self, LoadOptions, Policy};
use crate::request::Request;
use crate::state::State;

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
