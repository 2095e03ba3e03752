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

mod retry;
mod split;

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

    /// Declared fields of `section` (`request_fields` or `tenant_fields`); their enum types
    /// join `enums`. Tenant fields come after the built-in `team`, `org` and `key`.
    fn fields(
        &mut self,
        section: &str,
        raw: &BTreeMap<String, RawField>,
        enums: &mut Vec<EnumDef>,
    ) -> Vec<FieldDef> {
        let tenant = section == "tenant_fields";
        let mut fields: Vec<FieldDef> = if tenant {
            crate::check::scope::TENANT_BUILTINS
                .iter()
                .map(|name| FieldDef {
                    name: name.to_string(),
                    ty: Type::Str,
                    default: None,
                })
                .collect()
        } else {
            Vec::new()
        };
        let reserved: &[&str] = if tenant {
            crate::check::scope::TENANT_BUILTINS
        } else {
            &[
                "prompt",
                "negative_prompt",
                "priority",
                "duration",
                "aspect_ratio",
                "quality_threshold",
                "style",
            ]
        };
        let what = if tenant { "tenant" } else { "request" };
        for (name, f) in raw {
            let path = [key(section), key(name)];
            if reserved.contains(&name.as_str()) {
                self.error_at(
                    &path,
                    "reserved-field",
                    format!("`{name}` is a built-in {what} field"),
                    "already defined",
                    "choose another name for your own field",
                );
                continue;
            }
            if !is_identifier(name) {
                self.error_at(
                    &path,
                    "invalid-name",
                    format!("`{name}` is not a valid field name"),
                    "invalid name",
                    "use letters, digits and `_`, starting with a letter",
                );
                continue;
            }
            let ty = match f.kind.as_str() {
                "string" => Type::Str,
                "number" => Type::Num,
                "bool" | "boolean" => Type::Bool,
                "money" => Type::Money,
                "enum" if f.values.is_empty() => {
                    self.error_at(
                        &path,
                        "empty-enum",
                        format!("enum field `{name}` has no values"),
                        "no values",
                        "add `values: [a, b]`",
                    );
                    continue;
                }
                "enum" => {
                    enums.push(EnumDef {
                        name: name.clone(),
                        values: f.values.clone(),
                    });
                    Type::Enum(EnumId((enums.len() - 1) as u16))
                }
                other => {
                    let kinds = ["string", "number", "bool", "money", "enum"];
                    let help = match did_you_mean(other, kinds) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("use one of {}", ticks(&kinds)),
                    };
                    let p = [key(section), key(name), key("type")];
                    self.error_at(
                        &p,
                        "unknown-type",
                        format!("unknown field type `{other}`"),
                        "not a type",
                        &help,
                    );
                    continue;
                }
            };
            let mut def = FieldDef {
                name: name.clone(),
                ty,
                default: None,
            };
            if let Some(v) = &f.default {
                match crate::input::field_value(enums, &def, v.clone()) {
                    Ok(value) => def.default = Some(value),
                    Err(e) => {
                        let p = [key(section), key(name), key("default")];
                        self.error_at(
                            &p,
                            "invalid-value",
                            format!("default of `{name}`: {}", e.message),
                            "invalid default",
                            "give a value of the field's type",
                        );
                    }
                }
            }
            fields.push(def);
        }
        fields
    }

    fn backends(
        &mut self,
        raw: &BTreeMap<String, RawBackend>,
        policy: &RawPolicy,
        options: &LoadOptions<'_>,
    ) -> Vec<Backend> {
        if raw.is_empty() {
            self.error_at(
                &[key("backends")],
                "no-backends",
                "the policy has no backends".into(),
                "empty",
                "declare at least one backend",
            );
        }
        if raw.len() > u16::MAX as usize {
            self.error_at(
                &[key("backends")],
                "too-many-backends",
                "too many backends".into(),
                "here",
                "keep it under 65535",
            );
            return Vec::new();
        }
        let prefix = prefix(policy);
        raw.iter()
            .map(|(name, b)| self.backend(name, b, &prefix, options))
            .collect()
    }

    fn backend(
        &mut self,
        name: &str,
        b: &RawBackend,
        prefix: &str,
        options: &LoadOptions<'_>,
    ) -> Backend {
        let path = |k: &str| [key("backends"), key(name), key(k)];
        let cost = self.cost(name, &b.cost);
        let models: Vec<Model> = b
            .models
            .iter()
            .map(|m| match m {
                RawModel::Id(id) => Model {
                    id: id.clone(),
                    cost_variant: None,
                },
                RawModel::Tied { id, cost } => Model {
                    id: id.clone(),
                    cost_variant: cost.clone(),
                },
            })
            .collect();
        if let Cost::PerVariant(variants) = &cost {
            for (i, m) in models.iter().enumerate() {
                let Some(v) = &m.cost_variant else { continue };
                if !variants.iter().any(|(k, _)| k == v) {
                    let names: Vec<&str> = variants.iter().map(|(k, _)| k.as_str()).collect();
                    let help = match did_you_mean(v, names.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("cost variants are {}", ticks(&names)),
                    };
                    let p = [
                        key("backends"),
                        key(name),
                        key("models"),
                        Seg::Index(i),
                        key("cost"),
                    ];
                    self.error_at(
                        &p,
                        "unknown-cost-variant",
                        format!(
                            "model `{}` names cost variant `{v}`, which `cost` does not list",
                            m.id
                        ),
                        "unknown variant",
                        &help,
                    );
                }
            }
        }
        for (k, v) in [
            ("score", Some(b.quality.score)),
            ("temporal_coherence", b.quality.temporal_coherence),
            ("prompt_adherence", b.quality.prompt_adherence),
        ] {
            if let Some(v) = v {
                if v < Fixed::ZERO || v > Fixed::ONE {
                    let p = [key("backends"), key(name), key("quality"), key(k)];
                    self.error_at(
                        &p,
                        "out-of-range",
                        format!("quality `{k}` is {v}; it must be between 0 and 1"),
                        "out of range",
                        "quality figures are fractions, e.g. 0.85",
                    );
                }
            }
        }
        for (k, v) in [
            (
                "avg_generation_time_seconds",
                b.performance.avg_generation_time_seconds,
            ),
            (
                "max_generation_time_seconds",
                b.performance.max_generation_time_seconds,
            ),
        ] {
            if v <= Fixed::ZERO {
                let p = [key("backends"), key(name), key("performance"), key(k)];
                self.error_at(
                    &p,
                    "out-of-range",
                    format!("`{k}` is {v}; it must be positive"),
                    "not positive",
                    "give the time in seconds, e.g. 45",
                );
            }
        }
        if b.priority.is_negative() {
            self.error_at(
                &path("priority"),
                "out-of-range",
                format!("priority is {}; it must not be negative", b.priority),
                "negative",
                "1 is the most preferred",
            );
        }
        let (enabled, enabled_by) = self.feature_flag(name, b.enabled, prefix, options);
        let protocol = b.api.as_ref().and_then(|a| a.protocol.as_deref());
        if let Some(p) = protocol {
            if super::Protocol::parse(p).is_none() {
                let help = match did_you_mean(p, super::Protocol::NAMES) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("use one of {}", ticks(&super::Protocol::NAMES)),
                };
                let path = [key("backends"), key(name), key("api"), key("protocol")];
                self.error_at(
                    &path,
                    "unknown-protocol",
                    format!("unknown protocol `{p}`"),
                    "not a protocol",
                    &help,
                );
            }
        }
        let (dialect, parameters) = self.videos_api(name, b.api.as_ref());
        let simulation = self.simulation(name, b);
        let key_missing = b
            .api
            .as_ref()
            .and_then(|a| a.key_env.as_ref())
            .filter(|var| (options.env)(var).is_none_or(|v| v.trim().is_empty()))
            .cloned();
        Backend {
            name: name.to_string(),
            enabled,
            enabled_by,
            priority: b.priority,
            kind: b.kind.clone(),
            cost,
            quality: b.quality.score,
            temporal_coherence: b.quality.temporal_coherence,
            prompt_adherence: b.quality.prompt_adherence,
            avg_latency: b.performance.avg_generation_time_seconds,
            max_latency: b.performance.max_generation_time_seconds,
            api: b.api.as_ref().map(|a| Api {
                dialect,
                parameters,
                ..api(a)
            }),
            criteria: criteria(&b.selection_criteria),
            models,
            breaker: breaker(b.circuit_breaker.as_ref()),
            simulation,
            key_missing,
            allow: self.allow_list(&b.allow, &[key("backends"), key(name), key("allow")]),
            default_cost: Fixed::ZERO,
        }
    }

    /// `api.dialect` and `api.parameters`: only for the `videos` protocol, a known dialect,
    /// and fields that dialect knows, of their type.
    fn videos_api(
        &mut self,
        name: &str,
        a: Option<&RawApi>,
    ) -> (super::api::Dialect, Vec<(String, super::api::Param)>) {
        use super::api::{check_parameters, Dialect};
        let Some(a) = a else {
            return (Dialect::default(), Vec::new());
        };
        let path = |k: &str| vec![key("backends"), key(name), key("api"), key(k)];
        let videos =
            a.protocol.as_deref().and_then(super::Protocol::parse) == Some(super::Protocol::Videos);
        let mut dialect = Dialect::default();
        let mut unknown = false;
        if let Some(d) = &a.dialect {
            match Dialect::parse(d) {
                Some(parsed) => dialect = parsed,
                None => {
                    unknown = true;
                    let near = did_you_mean(d, Dialect::NAMES).or_else(|| {
                        Dialect::NAMES
                            .into_iter()
                            .find(|n| n.starts_with(d.as_str()))
                    });
                    let help = match near {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("use one of {}", ticks(&Dialect::NAMES)),
                    };
                    self.error_at(
                        &path("dialect"),
                        "unknown-dialect",
                        format!("unknown dialect `{d}`"),
                        "not a dialect",
                        &help,
                    );
                }
            }
        }
        for (k, given) in [
            ("dialect", a.dialect.is_some()),
            ("parameters", !a.parameters.is_empty()),
        ] {
            if given && !videos && a.protocol.is_some() {
                self.error_at(
                    &path(k),
                    "not-for-protocol",
                    format!("`api.{k}` applies to the `videos` protocol only"),
                    "not used by this protocol",
                    "remove it, or set `protocol: videos`",
                );
            }
        }
        if unknown {
            // The fields depend on the dialect: checking them against another would mislead.
            return (dialect, Vec::new());
        }
        let (params, problems) = check_parameters(dialect, &a.parameters);
        for p in problems {
            let mut at = path("parameters");
            at.push(key(&p.name));
            if p.at_key {
                let mut d = Diagnostic::error(p.code, p.message).help(&p.help);
                if let Some(n) = self.tree.as_ref().and_then(|t| t.key_at(&at)) {
                    d = d.at(n.range.clone(), p.label);
                }
                self.diags.push(d);
            } else {
                self.error_at(&at, p.code, p.message, p.label, &p.help);
            }
        }
        (dialect, params)
    }

    fn simulation(&mut self, name: &str, b: &RawBackend) -> Option<super::Simulation> {
        use super::SimulatedFailure as F;
        let path = |k: &str| [key("backends"), key(name), key("simulation"), key(k)];
        // A real backend may carry a `simulation:` block too: `genroute simulate` uses it.
        if b.kind != "simulated" && b.simulation.is_none() {
            return None;
        }
        let raw = b.simulation.as_ref();
        let rate = raw.and_then(|s| s.failure_rate).unwrap_or(Fixed::ZERO);
        if rate < Fixed::ZERO || rate > Fixed::ONE {
            self.error_at(
                &path("failure_rate"),
                "out-of-range",
                format!("failure_rate is {rate}; it must be between 0 and 1"),
                "out of range",
                "e.g. 0.05 for one call in twenty",
            );
        }
        let class = match raw
            .and_then(|s| s.failure_class.as_deref())
            .unwrap_or("retryable")
        {
            "retryable" => F::Retryable,
            "terminal" => F::Terminal,
            "content_rejected" => F::ContentRejected,
            "no_video" => F::NoVideo,
            other => {
                let names = ["retryable", "terminal", "content_rejected", "no_video"];
                let help = match did_you_mean(other, names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("use one of {}", ticks(&names)),
                };
                self.error_at(
                    &path("failure_class"),
                    "unknown-failure-class",
                    format!("unknown failure class `{other}`"),
                    "unknown",
                    &help,
                );
                F::Retryable
            }
        };
        let avg = b.performance.avg_generation_time_seconds;
        let stddev = raw
            .and_then(|s| s.latency_stddev_seconds)
            .unwrap_or_else(|| {
                avg.checked_div(Fixed::from_micros(5_000_000))
                    .unwrap_or(Fixed::ZERO)
            });
        let scale = raw.and_then(|s| s.time_scale).unwrap_or(Fixed::ZERO);
        let pass_rate = raw.and_then(|s| s.pass_rate).unwrap_or(Fixed::ONE);
        if pass_rate < Fixed::ZERO || pass_rate > Fixed::ONE {
            self.error_at(
                &path("pass_rate"),
                "out-of-range",
                format!("pass_rate is {pass_rate}; it must be between 0 and 1"),
                "out of range",
                "the share of delivered videos that pass the output checks, e.g. 0.95",
            );
        }
        if stddev.is_negative() || scale.is_negative() {
            self.error_at(
                &[key("backends"), key(name), key("simulation")],
                "out-of-range",
                "simulation figures must not be negative".into(),
                "negative",
                "use 0 or more",
            );
        }
        Some(super::Simulation {
            failure_rate: rate,
            failure_class: class,
            latency_stddev: stddev,
            time_scale: scale,
            seed: raw.and_then(|s| s.seed).unwrap_or(0),
            pass_rate,
        })
    }

    /// `per_video_usd: 0.05`, or `{variant: {per_video_usd: 0.10}, ...}`.
    fn cost(&mut self, backend: &str, map: &serde_yaml::Mapping) -> Cost {
        let base = [key("backends"), key(backend), key("cost")];
        let mut flat = None;
        let mut variants = Vec::new();
        let mut unknown = false;
        for (k, v) in map {
            let Some(k) = k.as_str() else {
                self.error_at(
                    &base,
                    "invalid-value",
                    "cost keys must be strings".into(),
                    "here",
                    "write `per_video_usd: 0.05`",
                );
                continue;
            };
            let mut p = base.to_vec();
            p.push(key(k));
            if k.starts_with("x-") {
                continue;
            }
            if k == "per_video_usd" {
                flat = self.money(&p, v);
                continue;
            }
            let inner = v.as_mapping().and_then(|m| m.get("per_video_usd"));
            match inner {
                Some(inner) => {
                    p.push(key("per_video_usd"));
                    if let Some(c) = self.money(&p, inner) {
                        variants.push((k.to_string(), c));
                    }
                }
                None => {
                    unknown = true;
                    let help = match did_you_mean(k, ["per_video_usd"]) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("a variant is written `{k}: {{per_video_usd: 0.10}}`"),
                    };
                    let d = Diagnostic::error("unknown-key", format!("`{k}` under `cost` is neither `per_video_usd` nor a model variant with a `per_video_usd`")).help(help);
                    let range = self
                        .tree
                        .as_ref()
                        .and_then(|t| t.key_at(&p))
                        .map(|n| n.range.clone());
                    self.diags.push(match range {
                        Some(r) => d.at(r, "not a cost"),
                        None => d,
                    });
                }
            }
        }
        match (flat, variants.is_empty()) {
            (Some(c), true) => Cost::Flat(c),
            (None, false) => Cost::PerVariant(variants),
            (Some(c), false) => {
                self.error_at(
                    &base,
                    "ambiguous-cost",
                    "`cost` has both `per_video_usd` and model variants".into(),
                    "ambiguous",
                    "use either one flat price or one price per variant",
                );
                Cost::Flat(c)
            }
            (None, true) => {
                if unknown {
                    return Cost::Flat(Fixed::ZERO);
                }
                self.error_at(
                    &base,
                    "missing-key",
                    "`cost` has no price".into(),
                    "no price",
                    "write `per_video_usd: 0.05`",
                );
                Cost::Flat(Fixed::ZERO)
            }
        }
    }

    fn money(&mut self, path: &[Seg], v: &serde_yaml::Value) -> Option<Fixed> {
        let parsed: Result<Fixed, String> = match v {
            serde_yaml::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Fixed::from_int(i).ok_or_else(|| format!("`{i}` is too large")),
                (None, Some(f)) => Fixed::from_f64_exact(f).map_err(|e| e.to_string()),
                _ => Err(format!("`{n}` is not a price")),
            },
            serde_yaml::Value::String(s) => {
                s.parse().map_err(|e: crate::num::NumError| e.to_string())
            }
            _ => Err("a price must be a number".into()),
        };
        match parsed {
            Ok(c) if c.is_negative() => {
                self.error_at(
                    path,
                    "out-of-range",
                    format!("price {c} is negative"),
                    "negative",
                    "prices are in USD and at least 0",
                );
                None
            }
            Ok(c) => Some(c),
            Err(msg) => {
                self.error_at(
                    path,
                    "invalid-value",
                    msg,
                    "not a price",
                    "write the price in USD with at most 6 decimals, e.g. 0.05",
                );
                None
            }
        }
    }

    fn feature_flag(
        &mut self,
        name: &str,
        enabled: bool,
        prefix: &str,
        options: &LoadOptions<'_>,
    ) -> (bool, Option<String>) {
        let var = flag_variable(prefix, name);
        let Some(value) = (options.env)(&var) else {
            return (enabled, None);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => (true, Some(var)),
            "0" | "false" | "no" | "off" => (false, Some(var)),
            _ => {
                self.diags.push(
                    Diagnostic::error(
                        "invalid-env",
                        format!(
                            "environment variable `{var}` is `{}`; expected true or false",
                            value.escape_debug()
                        ),
                    )
                    .help(format!("set `{var}=true` or `{var}=false`, or unset it")),
                );
                (enabled, None)
            }
        }
    }

    fn rules(&mut self, raw: &[RawRule], backends: &[Backend], scope: Scope<'_>) -> Vec<Rule> {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let by_name: BTreeMap<&str, usize> = backends
            .iter()
            .enumerate()
            .map(|(i, b)| (b.name.as_str(), i))
            .collect();
        let mut rules = Vec::new();
        for (i, r) in raw.iter().enumerate() {
            let path = |k: &str| [key("selection_rules"), Seg::Index(i), key(k)];
            if let Some(first) = seen.insert(&r.name, i) {
                let line = self
                    .range_of(&[key("selection_rules"), Seg::Index(first), key("name")])
                    .map(|r| self.source.line_col(r.start).0);
                let help = match line {
                    Some(l) => format!(
                        "the first rule named `{}` is at line {l}; rule names must be unique",
                        r.name
                    ),
                    None => "rule names must be unique".to_string(),
                };
                self.error_at(
                    &path("name"),
                    "duplicate-rule",
                    format!("duplicate rule name `{}`", r.name),
                    "used before",
                    &help,
                );
            }
            if r.action != "select_backend" {
                let help = match did_you_mean(&r.action, ["select_backend"]) {
                    Some(_) => "did you mean `select_backend`?".to_string(),
                    None => "the only action is `select_backend`".to_string(),
                };
                self.error_at(
                    &path("action"),
                    "unknown-action",
                    format!("unknown action `{}`", r.action),
                    "not an action",
                    &help,
                );
            }
            let target_name = match (&r.backend, r.split.is_empty()) {
                (Some(b), true) => b.as_str(),
                (None, false) => {
                    let split = self.split(i, r, backends, &by_name, scope.fields);
                    let Some(split) = split else {
                        self.condition(i, r, &scope);
                        continue;
                    };
                    let first = &split.arms[0];
                    let Some(condition) = self.condition(i, r, &scope) else {
                        continue;
                    };
                    let (line, column) = self
                        .range_of(&path("condition"))
                        .map_or((0, 0), |rg| self.source.line_col(rg.start));
                    rules.push(Rule {
                        name: r.name.clone(),
                        condition_text: r.condition.clone(),
                        program: crate::eval::Program::compile(&condition),
                        condition,
                        backend: first.backend,
                        model: first.model.clone(),
                        cost: first.cost,
                        split: Some(Box::new(split)),
                        line,
                        column,
                        allow: self.allow_list(
                            &r.allow,
                            &[key("selection_rules"), Seg::Index(i), key("allow")],
                        ),
                    });
                    continue;
                }
                (Some(_), false) => {
                    self.error_at(
                        &path("split"),
                        "backend-and-split",
                        format!("rule `{}` has both `backend` and `split`", r.name),
                        "here",
                        "a rule targets one `backend`, or several with weights under `split`; keep one",
                    );
                    self.condition(i, r, &scope);
                    continue;
                }
                (None, true) => {
                    self.error_at(
                        &[key("selection_rules"), Seg::Index(i)],
                        "missing-target",
                        format!("rule `{}` has no `backend`", r.name),
                        "this rule",
                        "add `backend: <name>`, or `split:` with `{backend, weight}` arms",
                    );
                    self.condition(i, r, &scope);
                    continue;
                }
            };
            let Some(target) = by_name.get(target_name).copied() else {
                let help = match did_you_mean(target_name, backends.iter().map(|b| b.name.as_str()))
                {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "backends are {}",
                        ticks(&backends.iter().map(|b| b.name.as_str()).collect::<Vec<_>>())
                    ),
                };
                self.error_at(
                    &path("backend"),
                    "unknown-backend",
                    format!(
                        "rule `{}` targets unknown backend `{}`",
                        r.name, target_name
                    ),
                    "no such backend",
                    &help,
                );
                self.condition(i, r, &scope);
                continue;
            };
            let backend = &backends[target];
            if let Some(m) = &r.model_preference {
                self.check_model(backend, m, &path("model_preference"));
            }
            let cost = backend.cost_of(r.model_preference.as_deref());
            let scope = Scope {
                target: Some(Target {
                    backend: target as u16,
                    cost,
                }),
                ..scope
            };
            let Some(condition) = self.condition(i, r, &scope) else {
                continue;
            };
            let (line, column) = self
                .range_of(&path("condition"))
                .map_or((0, 0), |rg| self.source.line_col(rg.start));
            rules.push(Rule {
                name: r.name.clone(),
                condition_text: r.condition.clone(),
                program: crate::eval::Program::compile(&condition),
                condition,
                backend: target as u16,
                model: r.model_preference.clone(),
                cost,
                split: None,
                line,
                column,
                allow: self.allow_list(
                    &r.allow,
                    &[key("selection_rules"), Seg::Index(i), key("allow")],
                ),
            });
        }
        rules
    }

    /// Validates `allow:` lint names.
    fn allow_list(&mut self, names: &[String], path: &[Seg]) -> Vec<String> {
        let known: Vec<&str> = crate::policy::lint::LINTS.iter().map(|(n, _)| *n).collect();
        for (i, name) in names.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                let help = match did_you_mean(name, known.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("lints are {}", ticks(&known)),
                };
                let mut p = path.to_vec();
                p.push(Seg::Index(i));
                self.error_at(
                    &p,
                    "unknown-lint",
                    format!("unknown lint `{name}`"),
                    "not a lint",
                    &help,
                );
            }
        }
        names.to_vec()
    }

    /// Parses and checks one rule's condition, mapping its diagnostics into the file.
    fn condition(
        &mut self,
        i: usize,
        r: &RawRule,
        scope: &Scope<'_>,
    ) -> Option<crate::expr::CExpr> {
        let path = [key("selection_rules"), Seg::Index(i), key("condition")];
        let text = self.source.text.as_str();
        let map = self
            .tree
            .as_ref()
            .and_then(|t| t.get(&path))
            .map(|n| OffsetMap::new(text, n, &r.condition));
        let locate = |d: Diagnostic, span: crate::lang::ast::Span, label: &str| match &map {
            Some(m) => d.at(m.range(text, span.start as usize, span.end as usize), label),
            None => d,
        };
        let tree = match parse_condition(&r.condition) {
            Ok(t) => t,
            Err(e) => {
                let d = Diagnostic::error(
                    "syntax",
                    format!("syntax error in rule `{}`: {}", r.name, e.message),
                )
                .help(e.help.clone());
                self.diags.push(locate(d, e.span, "here"));
                return None;
            }
        };
        match check_condition(&tree, scope) {
            Ok(c) => Some(c),
            Err(errors) => {
                for e in errors {
                    let d = Diagnostic::error(e.code, e.message).help(e.help);
                    self.diags.push(locate(d, e.span, &e.label));
                }
                None
            }
        }
    }

    fn budget(&mut self, b: &RawBudget, backends: &[super::Backend]) -> Budget {
        let mut amounts: Vec<(Vec<Seg>, &str, Fixed)> = vec![
            (
                vec![key("budget")],
                "monthly_budget_usd",
                b.monthly_budget_usd,
            ),
            (
                vec![key("budget")],
                "cost_threshold_usd",
                b.cost_threshold_usd,
            ),
        ];
        amounts.extend(
            b.daily_budget_usd
                .map(|v| (vec![key("budget")], "daily_budget_usd", v)),
        );
        let mut caps = Vec::new();
        for (name, cap) in &b.backends {
            let at = vec![key("budget"), key("backends"), key(name)];
            let Some(i) = backends.iter().position(|x| &x.name == name) else {
                let help = match did_you_mean(name, backends.iter().map(|b| b.name.as_str())) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "name a backend of this policy".to_string(),
                };
                self.error_at(
                    &at,
                    "unknown-backend",
                    format!("budget cap for unknown backend `{name}`"),
                    "no such backend",
                    &help,
                );
                continue;
            };
            if cap.monthly_usd.is_none() && cap.daily_usd.is_none() {
                self.error_at(
                    &at,
                    "empty-cap",
                    format!("the cap on `{name}` sets no amount"),
                    "empty",
                    "give `monthly_usd`, `daily_usd` or both",
                );
            }
            amounts.extend(cap.monthly_usd.map(|v| (at.clone(), "monthly_usd", v)));
            amounts.extend(cap.daily_usd.map(|v| (at.clone(), "daily_usd", v)));
            caps.push(super::Cap {
                backend: i as u16,
                monthly: cap.monthly_usd,
                daily: cap.daily_usd,
            });
        }
        for (at, k, v) in amounts {
            if v.is_negative() {
                let mut path = at.clone();
                path.push(key(k));
                self.error_at(
                    &path,
                    "out-of-range",
                    format!("`{k}` is {v}; it must not be negative"),
                    "negative",
                    "amounts are in USD",
                );
            }
        }
        Budget {
            monthly: b.monthly_budget_usd,
            threshold: b.cost_threshold_usd,
            daily: b.daily_budget_usd,
            caps,
        }
    }

    fn execution(&mut self, e: Option<&super::raw::RawExecution>) -> super::Execution {
        let mut out = super::Execution::default();
        match e.and_then(|e| e.on_content_rejected.as_deref()) {
            None | Some("stop") => {}
            Some("fallback") => out.fallback_on_content_rejected = true,
            Some(other) => {
                let p = [key("execution"), key("on_content_rejected")];
                self.error_at(&p, "invalid-value", format!("`{other}` is not `stop` or `fallback`"), "unknown", "`stop` ends the request on a moderation refusal; `fallback` tries the next backend");
            }
        }
        if let Some(c) = e.and_then(|e| e.output_checks.as_ref()) {
            out.output_checks = self.output_checks(c);
        }
        out
    }

    fn output_checks(&mut self, c: &super::raw::RawOutputChecks) -> super::OutputChecks {
        use super::FrameChecks;
        let mut out = super::OutputChecks::default();
        let path = |k: &str| [key("execution"), key("output_checks"), key(k)];
        let share = |this: &mut Self, k: &str, v: Fixed, help: &str| -> Fixed {
            if v < Fixed::ZERO || v > Fixed::ONE {
                this.error_at(
                    &path(k),
                    "out-of-range",
                    format!("{k} is {v}; it must be between 0 and 1"),
                    "out of range",
                    help,
                );
            }
            v
        };
        if let Some(v) = c.enabled {
            out.enabled = v;
        }
        if let Some(v) = c.duration_tolerance {
            out.duration_tolerance = share(
                self,
                "duration_tolerance",
                v,
                "a share of the asked duration, e.g. 0.2 for ±20 % (never under 1 s)",
            );
        }
        if let Some(v) = c.aspect_tolerance {
            out.aspect_tolerance = share(
                self,
                "aspect_tolerance",
                v,
                "a share of the asked ratio, e.g. 0.02 for 2 %",
            );
        }
        if let Some(v) = c.max_black_fraction {
            out.max_black_fraction = v.map(|v| {
                share(
                    self,
                    "max_black_fraction",
                    v,
                    "a share of the clip's duration, e.g. 0.9; `null` for no limit",
                )
            });
        }
        if let Some(v) = c.max_frozen_fraction {
            out.max_frozen_fraction = v.map(|v| {
                share(
                    self,
                    "max_frozen_fraction",
                    v,
                    "a share of the clip's duration, e.g. 0.9; `null` for no limit",
                )
            });
        }
        if let Some(v) = c.max_flicker {
            out.max_flicker = Some(share(
                self,
                "max_flicker",
                v,
                "a score from 0 (still) to 1 (frames that invert each other)",
            ));
        }
        match c.frames.as_deref() {
            None | Some("auto") => {}
            Some("off") => out.frames = FrameChecks::Off,
            Some("required") => out.frames = FrameChecks::Required,
            Some(other) => {
                self.error_at(&path("frames"), "invalid-value", format!("`{other}` is not `auto`, `off` or `required`"), "unknown", "`auto` measures the frames where ffmpeg is on the PATH; `off` never; `required` fails a video whose frames could not be measured");
            }
        }
        if let Some(v) = c.frame_timeout_seconds {
            if v <= Fixed::ZERO {
                self.error_at(
                    &path("frame_timeout_seconds"),
                    "out-of-range",
                    format!("frame_timeout_seconds is {v}; it must be above 0"),
                    "out of range",
                    "seconds the ffmpeg run may take, e.g. 60",
                );
            } else {
                out.frame_timeout = v;
            }
        }
        out
    }

    fn defaults(&mut self, d: Option<&RawDefaults>, enums: &[EnumDef]) -> Defaults {
        let mut out = Defaults {
            quality_threshold: Fixed::from_micros(800_000),
            duration: Fixed::from_micros(5_000_000),
            aspect_ratio: 0,
            priority: 1,
        };
        let Some(d) = d else { return out };
        if let Some(q) = d.quality_threshold {
            out.quality_threshold = q;
        }
        if let Some(s) = d.duration {
            out.duration = s;
        }
        let mut pick = |k: &str, id: EnumId, v: &Option<String>| -> Option<u16> {
            let v = v.as_ref()?;
            let values = &enums[id.0 as usize].values;
            match values.iter().position(|x| x == v) {
                Some(i) => Some(i as u16),
                None => {
                    let help = match did_you_mean(v, values.iter().map(String::as_str)) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!(
                            "use one of {}",
                            ticks(&values.iter().map(String::as_str).collect::<Vec<_>>())
                        ),
                    };
                    self.error_at(
                        &[key("defaults"), key(k)],
                        "unknown-enum-value",
                        format!("`{v}` is not a value of `{k}`"),
                        "unknown value",
                        &help,
                    );
                    None
                }
            }
        };
        if let Some(i) = pick("aspect_ratio", EnumId::ASPECT_RATIO, &d.aspect_ratio) {
            out.aspect_ratio = i;
        }
        if let Some(i) = pick("priority", EnumId::PRIORITY, &d.priority) {
            out.priority = i;
        }
        out
    }
}

/// Reads `text` into `T` with serde_yaml, collecting the path of every key serde ignored (the
/// caller reports those that are not `x-` notes with [`unknown_key`]). On failure, the one
/// diagnostic serde_yaml's error gives, classified by code and located; its help for a wrong
/// value points at `reference` (e.g. "the policy reference in README.md"). Shared by every
/// YAML file genroute loads (policies, tenants).
pub(crate) fn deserialize_yaml<T: serde::de::DeserializeOwned>(
    text: &str,
    reference: &str,
) -> Result<(T, Vec<Vec<Seg>>), Box<Diagnostic>> {
    let mut unknown: Vec<Vec<Seg>> = Vec::new();
    let de = serde_yaml::Deserializer::from_str(text);
    let result: Result<T, _> = serde_ignored::deserialize(de, |path| {
        unknown.push(segments(&path));
    });
    match result {
        Ok(raw) => Ok((raw, unknown)),
        Err(e) => {
            let message = e.to_string();
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_string();
            const SYNTAX: &[&str] = &[
                "found",
                "did not find",
                "while parsing",
                "while scanning",
                "not allowed in this context",
                "end of stream",
                "control character",
                "invalid indentation",
            ];
            let (code, help) = if message.contains("recursion limit exceeded") {
                // serde_yaml's own bound (128 levels). The located tree stops at
                // MAX_YAML_NESTING first whenever saphyr reads the file; this is for text
                // saphyr rejects and libyaml does not.
                (
                    "too-deep",
                    format!(
                        "mappings and sequences may nest at most {MAX_YAML_NESTING} levels deep; flatten the structure"
                    ),
                )
            } else if message.contains("missing field") {
                (
                    "missing-key",
                    "add the key; README.md lists what each section needs".into(),
                )
            } else if message.contains("duplicate") {
                (
                    "duplicate-key",
                    "each key may appear once in a mapping".into(),
                )
            } else if SYNTAX.iter().any(|s| message.contains(s)) {
                (
                    "yaml-syntax",
                    "check indentation, quotes, brackets and colons around this place".into(),
                )
            } else {
                (
                    "invalid-value",
                    format!("check the value's type against {reference}"),
                )
            };
            let mut d = Diagnostic::error(code, first_lower(&message)).help(help);
            if let Some(loc) = e.location() {
                let start = loc.index().min(text.len());
                let end = next_boundary(text, start);
                d = d.at(start..end, "here");
            }
            Err(Box::new(d))
        }
    }
}

/// The diagnostic for the unknown key at `path` (none for an `x-` note), with a did-you-mean
/// among `known`, the keys accepted there, located at the key in `tree`.
pub(crate) fn unknown_key(path: &[Seg], known: &[&str], tree: Option<&Node>) -> Option<Diagnostic> {
    let Some(Seg::Key(name)) = path.last() else {
        return None;
    };
    if name.starts_with("x-") {
        return None;
    }
    let mut d = Diagnostic::error("unknown-key", format!("unknown key `{name}`"));
    d = match did_you_mean(name, known.iter().copied()) {
        Some(s) => d.help(format!("did you mean `{s}`?")),
        None if known.is_empty() => {
            d.help("remove it, or prefix it with `x-` to keep it as a note")
        }
        None => d.help(format!(
            "expected one of {}; prefix a key with `x-` to keep it as a note",
            ticks(known)
        )),
    };
    if let Some(n) = tree.and_then(|t| t.key_at(path)) {
        d = d.at(n.range.clone(), "not a known key");
    }
    Some(d)
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

fn api(a: &RawApi) -> Api {
    Api {
        protocol: a.protocol.as_deref().and_then(super::Protocol::parse),
        base_url: a.base_url.clone(),
        model: a.model.clone(),
        project: a.project.clone(),
        location: a.location.clone(),
        request_timeout: a
            .request_timeout_seconds
            .unwrap_or(Fixed::from_micros(30_000_000)),
        poll_interval: a
            .poll_interval_seconds
            .unwrap_or(Fixed::from_micros(2_000_000)),
        endpoints: a
            .endpoints
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        auth_type: a.auth_type.clone(),
        key_env: a.key_env.clone(),
        dialect: super::api::Dialect::default(),
        parameters: Vec::new(),
    }
}

fn breaker(b: Option<&super::raw::RawBreaker>) -> crate::breaker::BreakerConfig {
    let d = crate::breaker::BreakerConfig::default();
    let Some(b) = b else { return d };
    crate::breaker::BreakerConfig {
        failure_threshold: b.failure_threshold.unwrap_or(d.failure_threshold).max(1),
        timeout_ms: b
            .timeout_seconds
            .map_or(d.timeout_ms, |t| t.micros() / 1000),
        half_open_requests: b.half_open_requests.unwrap_or(d.half_open_requests).max(1),
    }
}

fn criteria(c: &RawCriteria) -> Criteria {
    Criteria {
        priority_high: c.priority_high,
        priority_balanced: c.priority_balanced,
        priority_speed: c.priority_speed,
        budget_available: c.budget_available.unwrap_or(false),
        fallback_failures: c.fallback_failures.unwrap_or(0),
    }
}

fn segments(path: &serde_ignored::Path<'_>) -> Vec<Seg> {
    use serde_ignored::Path;
    let mut out = Vec::new();
    let mut p = path;
    loop {
        match p {
            Path::Root => break,
            Path::Seq { parent, index } => {
                out.push(Seg::Index(*index));
                p = parent;
            }
            Path::Map { parent, key } => {
                out.push(Seg::Key(key.clone()));
                p = parent;
            }
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => p = parent,
        }
    }
    out.reverse();
    out
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

pub(crate) fn ticks(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn first_lower(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn next_boundary(text: &str, at: usize) -> usize {
    let mut end = (at + 1).min(text.len());
    while end < text.len() && !text.is_char_boundary(end) {
        end += 1;
    }
    end
}

pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
