//! Policy text → validated [`Policy`], with every problem reported at once.
//!
//! Unknown keys are errors, not warnings: a misspelled `enabeld: false` that is silently
//! ignored would route real money. Keys starting with `x-` are reserved for the author's own
//! annotations and are ignored.

use std::collections::BTreeMap;

use serde_aux::serde_introspection::serde_introspect;

use super::raw::{
    RawApi, RawBackend, RawBudget, RawCriteria, RawDefaults, RawField, RawModel, RawPerformance,
    RawPolicy, RawQuality, RawRule,
};
use super::yaml::{self, Node, NodeKind, OffsetMap, Seg};
use super::{Api, Backend, Budget, Cost, Criteria, Defaults, Model, Policy, Rule};
use crate::check::check_condition;
use crate::check::scope::{
    builtin_enums, did_you_mean, BackendFacts, EnumDef, FieldDef, Lookup, Scope, Target,
};
use crate::diag::{Diagnostic, Source};
use crate::expr::{EnumId, Type};
use crate::lang::parse::parse_condition;
use crate::num::Fixed;

mod backends;
mod budget;
mod cost;
mod fields;
mod retry;
mod rules;
mod sources;
mod split;

use super::read::{deserialize_yaml, is_identifier, ticks, unknown_key};

/// The largest policy file accepted, in bytes.
pub const MAX_POLICY_BYTES: usize = 4 * 1024 * 1024;
/// The deepest nesting of YAML mappings and sequences accepted (the top-level mapping is
/// level 1; aliases count as if expanded). Checked while the located tree is built, before
/// serde_yaml reads the file, so loading stays linear in the file's size.
pub use super::yaml::MAX_NESTING as MAX_YAML_NESTING;

/// What the loader takes from the outside world.
pub struct LoadOptions<'a> {
    /// Reads an environment variable (for backend feature flags). The core does no IO of its
    /// own; the CLI passes `std::env::var`, tests pass a map.
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Default for LoadOptions<'_> {
    fn default() -> Self {
        LoadOptions { env: &|_| None }
    }
}

/// Loads and checks a policy. On failure, returns every error found, located in `source`.
pub fn load(source: &Source, options: &LoadOptions<'_>) -> Result<Policy, Vec<Diagnostic>> {
    let mut cx = Loader {
        source,
        tree: None,
        diags: Vec::new(),
    };
    let policy = cx.run(options);
    let mut diags: Vec<Diagnostic> = cx.diags.into_iter().map(|d| source.locate(d)).collect();
    diags.sort_by_key(|d| d.range.as_ref().map_or(usize::MAX, |r| r.start));
    match policy {
        Some(mut p) if diags.is_empty() => {
            let at = Locator {
                source,
                tree: cx.tree.as_ref(),
                rules: &p.rules,
            };
            let mut warnings: Vec<Diagnostic> = crate::policy::lint::lint(&p, &at)
                .into_iter()
                .map(|d| source.locate(d))
                .collect();
            warnings.sort_by_key(|d| d.range.as_ref().map_or(usize::MAX, |r| r.start));
            p.warnings = warnings;
            Ok(p)
        }
        _ => Err(diags),
    }
}

/// Finds lint positions in the file.
struct Locator<'a> {
    source: &'a Source,
    tree: Option<&'a Node>,
    rules: &'a [Rule],
}

impl Locator<'_> {
    fn rule_node(&self, rule: usize) -> Option<&Node> {
        let name = &self.rules.get(rule)?.name;
        let NodeKind::Seq(items) = &self.tree?.get(&[key("selection_rules")])?.kind else {
            return None;
        };
        let named = |n: &&Node| n.get(&[key("name")]).and_then(Node::scalar) == Some(name.as_str());
        // A policy that loads has one rule per entry, in file order, so the entry at the same
        // index is the one; the search is for safety, and keeps locating every rule linear.
        let item = items
            .get(rule)
            .filter(named)
            .or_else(|| items.iter().find(named))?;
        item.get(&[key("condition")])
    }
}

impl crate::policy::lint::Locate for Locator<'_> {
    fn condition(&self, rule: usize, span: crate::lang::ast::Span) -> Option<yaml::Range> {
        let node = self.rule_node(rule)?;
        let text = self.source.text.as_str();
        let map = OffsetMap::new(text, node, node.scalar()?);
        Some(map.range(text, span.start as usize, span.end as usize))
    }

    fn rule(&self, rule: usize) -> Option<yaml::Range> {
        self.rule_node(rule).map(|n| n.range.clone())
    }

    fn backend(&self, name: &str) -> Option<yaml::Range> {
        self.tree?
            .key_at(&[key("backends"), key(name)])
            .map(|n| n.range.clone())
    }
}

struct Loader<'s> {
    source: &'s Source,
    tree: Option<Node>,
    diags: Vec<Diagnostic>,
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

impl Loader<'_> {
    fn run(&mut self, options: &LoadOptions<'_>) -> Option<Policy> {
        let text = self.source.text.as_str();
        if text.len() > MAX_POLICY_BYTES {
            self.diags.push(
                Diagnostic::error(
                    "too-large",
                    format!(
                        "policy file is {} bytes; the limit is {MAX_POLICY_BYTES}",
                        text.len()
                    ),
                )
                .help("split the policy or remove unused sections"),
            );
            return None;
        }
        // The located tree first: it bounds nesting, which serde_yaml's scanner would
        // take quadratic time over.
        self.tree = match yaml::parse_for_loading(text) {
            Ok(tree) => tree,
            Err(d) => {
                self.diags.push(*d);
                return None;
            }
        };
        if let Some(tree) = &self.tree {
            let before = self.diags.len();
            yaml::duplicate_keys(tree, &mut self.diags, self.source);
            if self.diags.len() > before {
                return None;
            }
        }
        let raw = self.deserialize()?;
        let mut enums = builtin_enums();
        let fields = self.fields("request_fields", &raw.request_fields, &mut enums);
        let tenant_fields = self.fields("tenant_fields", &raw.tenant_fields, &mut enums);
        let mut backends = self.backends(&raw.backends, &raw, options);
        for b in &mut backends {
            b.default_cost = b.cost_of(None);
        }
        let facts: Vec<BackendFacts> = backends.iter().map(facts_of).collect();
        let lookup = Lookup::new(&enums, &fields, &facts);
        let scope = Scope {
            enums: &enums,
            fields: &fields,
            tenant: &tenant_fields,
            backends: &facts,
            target: None,
            lookup: Some(&lookup),
            video: false,
        };
        let mut rules = self.rules(&raw.selection_rules, &backends, scope);
        let experiments = self.experiments(
            &raw.experiments,
            &mut rules,
            &backends,
            &raw.selection_rules,
        );
        let budget = self.budget(&raw.budget, &backends);
        let defaults = self.defaults(raw.defaults.as_ref(), &enums);
        let execution = self.execution(raw.execution.as_ref());
        let quality_retry = self.quality_retry(
            raw.execution
                .as_ref()
                .and_then(|e| e.quality_retry.as_ref()),
            scope,
        );
        let mut by_priority: Vec<u16> = (0..backends.len() as u16).collect();
        by_priority.sort_by(|a, b| {
            let (x, y) = (&backends[*a as usize], &backends[*b as usize]);
            x.priority
                .cmp(&y.priority)
                .then_with(|| x.name.cmp(&y.name))
        });
        Some(Policy {
            source_name: self.source.name.clone(),
            backends,
            rules,
            budget,
            defaults,
            enums,
            fields,
            tenant_fields,
            feature_flag_prefix: prefix(&raw),
            execution,
            experiments,
            quality_retry,
            warnings: Vec::new(),
            by_priority,
            native_ready: std::sync::OnceLock::new(),
        })
    }

    fn deserialize(&mut self) -> Option<RawPolicy> {
        let text = self.source.text.as_str();
        match deserialize_yaml::<RawPolicy>(text, "the policy reference in README.md") {
            Ok((raw, unknown)) => {
                for path in unknown {
                    self.unknown_key(&path);
                }
                Some(raw)
            }
            Err(d) => {
                self.diags.push(*d);
                None
            }
        }
    }

    fn unknown_key(&mut self, path: &[Seg]) {
        if let Some(d) = unknown_key(path, known_keys(path), self.tree.as_ref()) {
            self.diags.push(d);
        }
    }

    fn range_of(&self, path: &[Seg]) -> Option<yaml::Range> {
        self.tree.as_ref()?.get(path).map(|n| n.range.clone())
    }

    fn error_at(
        &mut self,
        path: &[Seg],
        code: &'static str,
        message: String,
        label: &str,
        help: &str,
    ) {
        let mut d = Diagnostic::error(code, message).help(help);
        if let Some(r) = self.range_of(path) {
            d = d.at(r, label);
        }
        self.diags.push(d);
    }
}

fn prefix(raw: &RawPolicy) -> String {
    raw.feature_flag_prefix
        .clone()
        .unwrap_or_else(|| "GENROUTE".to_string())
}

/// `<PREFIX>_BACKEND_<NAME>_ENABLED`, with the name upper-cased and every character other than
/// a letter or digit turned into `_`.
pub fn flag_variable(prefix: &str, backend: &str) -> String {
    let name: String = backend
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}_BACKEND_{name}_ENABLED")
}

pub(crate) fn facts_of(b: &Backend) -> BackendFacts {
    BackendFacts {
        name: b.name.clone(),
        cost: b.cost_of(None),
        quality: b.quality,
        temporal_coherence: b.temporal_coherence,
        prompt_adherence: b.prompt_adherence,
        latency: b.avg_latency,
        max_latency: b.max_latency,
        priority: b.priority,
    }
}

/// The keys serde accepts at the mapping that holds `path`'s last key, straight from the
/// serde types (so suggestions cannot drift from what loads).
fn known_keys(path: &[Seg]) -> &'static [&'static str] {
    match yaml::parent_shape(path).as_slice() {
        [] => serde_introspect::<RawPolicy>(),
        ["defaults"] => serde_introspect::<RawDefaults>(),
        ["budget"] => serde_introspect::<RawBudget>(),
        ["request_fields" | "tenant_fields", _] => serde_introspect::<RawField>(),
        ["budget", "backends", _] => serde_introspect::<super::raw::RawCap>(),
        ["selection_rules", "#"] => serde_introspect::<RawRule>(),
        ["selection_rules", "#", "split", "#"] => serde_introspect::<super::raw::RawArm>(),
        ["selection_rules", "#", "dynamic_weights"] => serde_introspect::<super::raw::RawDynamic>(),
        ["experiments", _] => serde_introspect::<super::raw::RawExperiment>(),
        ["backends", _] => serde_introspect::<RawBackend>(),
        ["backends", _, "quality"] => serde_introspect::<RawQuality>(),
        ["backends", _, "performance"] => serde_introspect::<RawPerformance>(),
        ["backends", _, "api"] => serde_introspect::<RawApi>(),
        ["backends", _, "selection_criteria"] => serde_introspect::<RawCriteria>(),
        ["backends", _, "circuit_breaker"] => serde_introspect::<super::raw::RawBreaker>(),
        ["backends", _, "simulation"] => serde_introspect::<super::raw::RawSimulation>(),
        ["execution"] => serde_introspect::<super::raw::RawExecution>(),
        ["execution", "quality_retry"] => serde_introspect::<super::raw::RawQualityRetry>(),
        ["execution", "output_checks"] => serde_introspect::<super::raw::RawOutputChecks>(),
        _ => &[],
    }
}
