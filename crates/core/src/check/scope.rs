//! The names a condition can read, and what each one resolves to.
//!
//! This table is the single source of truth for the language's vocabulary: the checker
//! resolves names through it, "did you mean" draws its candidates from it, and
//! `genroute names` prints it for policy authors.

use std::collections::HashMap;

use crate::expr::{EnumId, Slot, Type};
use crate::num::Fixed;

/// An enum type: its name and its values, whose indices are the runtime representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumDef {
    /// The type's name, e.g. `priority`.
    pub name: String,
    /// The allowed values, in declaration order.
    pub values: Vec<String>,
}

/// A request field that the policy declares.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    /// The field's name in the request JSON and in conditions.
    pub name: String,
    /// Its type.
    pub ty: Type,
    /// The value used when a request leaves the field out.
    pub default: Option<crate::eval::FieldValue>,
}

/// What a condition may know about a backend: its static figures, fixed at load time.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendFacts {
    /// Backend name.
    pub name: String,
    /// Cost of the model that runs when nothing else is said (see [`crate::Policy`]).
    pub cost: Fixed,
    /// `quality.score`
    pub quality: Fixed,
    /// `quality.temporal_coherence`
    pub temporal_coherence: Option<Fixed>,
    /// `quality.prompt_adherence`
    pub prompt_adherence: Option<Fixed>,
    /// `performance.avg_generation_time_seconds`
    pub latency: Fixed,
    /// `performance.max_generation_time_seconds`
    pub max_latency: Fixed,
    /// `priority`
    pub priority: Fixed,
}

/// The backend a rule targets, with the cost of the model it would run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// Index into the policy's backends.
    pub backend: u16,
    /// Cost of the rule's model on that backend.
    pub cost: Fixed,
}

/// Everything the checker needs to resolve names in one condition.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// All enum types, built-in ones first (see [`EnumId`]).
    pub enums: &'a [EnumDef],
    /// Declared request fields.
    pub fields: &'a [FieldDef],
    /// Tenant values: [`TENANT_BUILTINS`], then the declared `tenant_fields`.
    pub tenant: &'a [FieldDef],
    /// All backends.
    pub backends: &'a [BackendFacts],
    /// The rule's target, which backend-scoped names refer to.
    pub target: Option<Target>,
    /// Indexes of the names above, for a policy's many conditions; without one, names are
    /// looked up one by one.
    pub lookup: Option<&'a Lookup<'a>>,
    /// Whether `video.*` (the delivered video's figures) resolves: only in
    /// `execution.quality_retry.when`.
    pub video: bool,
}

/// Declared fields, enum values and backends by name, built once per policy so that
/// checking every condition stays linear in the policy's size however many it declares.
#[derive(Debug, Clone, Default)]
pub struct Lookup<'a> {
    fields: HashMap<&'a str, u16>,
    /// Per enum type, each value's index (the first, should a value repeat).
    values: Vec<HashMap<&'a str, u16>>,
    backends: HashMap<&'a str, u16>,
}

impl<'a> Lookup<'a> {
    /// The indexes for these names.
    pub fn new(
        enums: &'a [EnumDef],
        fields: &'a [FieldDef],
        backends: &'a [BackendFacts],
    ) -> Lookup<'a> {
        fn first<'a>(names: impl Iterator<Item = &'a str>) -> HashMap<&'a str, u16> {
            let mut map = HashMap::new();
            for (i, name) in names.enumerate() {
                map.entry(name).or_insert(i as u16);
            }
            map
        }
        Lookup {
            fields: first(fields.iter().map(|f| f.name.as_str())),
            values: enums
                .iter()
                .map(|e| first(e.values.iter().map(String::as_str)))
                .collect(),
            backends: first(backends.iter().map(|b| b.name.as_str())),
        }
    }
}

pub use super::names::{NameDoc, BUILTIN_NAMES, TENANT_BUILTINS};

/// `budget.<org|team|key>.<remaining|spend|budget>`.
fn level(name: &str) -> Option<(Slot, Type)> {
    use crate::levels::LevelKind;
    let (kind, prop) = name.split_once('.')?;
    let kind = match kind {
        "org" => LevelKind::Org,
        "team" => LevelKind::Team,
        "key" => LevelKind::Key,
        _ => return None,
    };
    let prop = crate::expr::LevelProp::parse(prop)?;
    Some((Slot::Level(kind, prop), Type::Money))
}

/// Why a name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// No such name.
    Unknown,
    /// The name exists but has no value here; the string says why.
    Unavailable(String),
}

impl Scope<'_> {
    /// Resolves a name to where its value lives and its type.
    pub fn resolve(&self, name: &str) -> Result<(Slot, Type), Unresolved> {
        if let Some(rest) = name.strip_prefix("backends.") {
            let (backend, prop) = rest.split_once('.').ok_or(Unresolved::Unknown)?;
            let index = match self.lookup {
                Some(l) => l.backends.get(backend).map(|&i| i as usize),
                None => self.backends.iter().position(|b| b.name == backend),
            }
            .ok_or(Unresolved::Unknown)?;
            let facts = &self.backends[index];
            return self.backend_prop(index as u16, facts.cost, prop);
        }
        let (prefix, rest) = match name.split_once('.') {
            Some((p, r)) => (Some(p), r),
            None => (None, name),
        };
        let found = match prefix {
            None => self
                .request(rest)
                .or_else(|| self.budget(rest))
                .or_else(|| attempt(rest))
                .or_else(|| time(rest)),
            Some("request") => self.request(rest),
            Some("budget") if rest == "available" => Some((Slot::BudgetLeft, Type::Bool)),
            Some("budget") => self.budget(rest).or_else(|| level(rest)),
            Some("tenant") => self.tenant_field(rest),
            Some("attempt") => attempt(rest),
            Some("time") => time(rest),
            Some("backend") => return self.target_prop(rest, false),
            Some("video") => return self.video(rest),
            Some(_) => None,
        };
        match found {
            Some(r) => Ok(r),
            None if prefix.is_none() => self.target_prop(rest, true),
            None => Err(Unresolved::Unknown),
        }
    }

    fn request(&self, name: &str) -> Option<(Slot, Type)> {
        Some(match name {
            "priority" => (Slot::Priority, Type::Enum(EnumId::PRIORITY)),
            "duration" => (Slot::Duration, Type::Num),
            "aspect_ratio" => (Slot::AspectRatio, Type::Enum(EnumId::ASPECT_RATIO)),
            "quality_threshold" => (Slot::QualityThreshold, Type::Num),
            "style" => (Slot::Style, Type::Str),
            _ => {
                let i = match self.lookup {
                    Some(l) => l.fields.get(name).map(|&i| i as usize),
                    None => self.fields.iter().position(|f| f.name == name),
                }?;
                (Slot::Field(i as u16), self.fields[i].ty)
            }
        })
    }

    fn tenant_field(&self, name: &str) -> Option<(Slot, Type)> {
        let i = self.tenant.iter().position(|f| f.name == name)?;
        Some((Slot::Tenant(i as u16), self.tenant[i].ty))
    }

    fn budget(&self, name: &str) -> Option<(Slot, Type)> {
        Some(match name {
            "monthly_spend" => (Slot::MonthlySpend, Type::Money),
            "monthly_budget" => (Slot::MonthlyBudget, Type::Money),
            "budget_remaining" => (Slot::BudgetRemaining, Type::Money),
            "cost_threshold" => (Slot::CostThreshold, Type::Money),
            _ => return None,
        })
    }

    fn target_prop(&self, prop: &str, bare: bool) -> Result<(Slot, Type), Unresolved> {
        const BARE: &[&str] = &["cost", "quality", "latency", "breaker", "budget_available"];
        if bare && !BARE.contains(&prop) {
            return Err(Unresolved::Unknown);
        }
        let target = self.target.ok_or_else(|| {
            Unresolved::Unavailable(format!(
                "`{prop}` refers to the rule's target backend, and this condition has none (a rule with a `split` has several: name one, as in `backends.<name>.{prop}`)"
            ))
        })?;
        self.backend_prop(target.backend, target.cost, prop)
    }

    fn backend_prop(
        &self,
        index: u16,
        cost: Fixed,
        prop: &str,
    ) -> Result<(Slot, Type), Unresolved> {
        let facts = self
            .backends
            .get(index as usize)
            .ok_or(Unresolved::Unknown)?;
        let missing = |key: &str| {
            Unresolved::Unavailable(format!(
                "backend `{}` does not declare `quality.{key}`",
                facts.name
            ))
        };
        let fixed = |v: Fixed| Ok((Slot::Static(v), Type::Num));
        match prop {
            "cost" => Ok((Slot::Static(cost), Type::Money)),
            "quality" => fixed(facts.quality),
            "temporal_coherence" => fixed(facts.temporal_coherence.ok_or_else(|| missing(prop))?),
            "prompt_adherence" => fixed(facts.prompt_adherence.ok_or_else(|| missing(prop))?),
            "latency" => fixed(facts.latency),
            "max_latency" => fixed(facts.max_latency),
            "priority" => fixed(facts.priority),
            "breaker" => Ok((Slot::Breaker(index), Type::Enum(EnumId::BREAKER))),
            "budget_available" => Ok((Slot::CostFits(index, cost), Type::Bool)),
            _ => match prop
                .strip_prefix("measured.")
                .and_then(crate::measure::MeasuredProp::parse)
            {
                Some(m) => Ok((Slot::Measured(index, m), Type::Num)),
                None => Err(Unresolved::Unknown),
            },
        }
    }

    fn video(&self, prop: &str) -> Result<(Slot, Type), Unresolved> {
        let p = crate::measure::VideoProp::parse(prop).ok_or(Unresolved::Unknown)?;
        if !self.video {
            return Err(Unresolved::Unavailable(format!(
                "`video.{prop}` is a figure of a delivered video; only `execution.quality_retry.when` can read it"
            )));
        }
        let ty = if p.is_bool() { Type::Bool } else { Type::Num };
        Ok((Slot::Video(p), ty))
    }

    /// Every name that resolves in this scope, for "did you mean".
    pub fn candidates(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for d in BUILTIN_NAMES {
            out.push(d.name.to_string());
            out.extend(d.alias.map(str::to_string));
        }
        for f in self.fields {
            out.push(f.name.clone());
            out.push(format!("request.{}", f.name));
        }
        out.extend(self.tenant.iter().map(|f| format!("tenant.{}", f.name)));
        for kind in ["org", "team", "key"] {
            for prop in ["remaining", "spend", "budget"] {
                out.push(format!("budget.{kind}.{prop}"));
            }
        }
        const PROPS: &[&str] = &[
            "cost",
            "quality",
            "temporal_coherence",
            "prompt_adherence",
            "latency",
            "max_latency",
            "priority",
            "breaker",
            "budget_available",
        ];
        let measured = crate::measure::MeasuredProp::ALL.map(|(_, n, _)| n);
        for b in self.backends {
            out.extend(PROPS.iter().map(|p| format!("backends.{}.{p}", b.name)));
            out.extend(
                measured
                    .iter()
                    .map(|p| format!("backends.{}.measured.{p}", b.name)),
            );
        }
        out.extend(measured.iter().map(|p| format!("backend.measured.{p}")));
        if self.video {
            out.extend(
                crate::measure::VideoProp::ALL
                    .iter()
                    .map(|(_, n, _, _)| format!("video.{n}")),
            );
        }
        out
    }

    /// The definition of an enum type.
    pub fn enum_def(&self, id: EnumId) -> Option<&EnumDef> {
        self.enums.get(id.0 as usize)
    }

    /// The index of `value` among the values of enum `id`.
    pub fn enum_value(&self, id: EnumId, value: &str) -> Option<u16> {
        match self.lookup.and_then(|l| l.values.get(id.0 as usize)) {
            Some(values) => values.get(value).copied(),
            None => self
                .enum_def(id)?
                .values
                .iter()
                .position(|v| v == value)
                .map(|i| i as u16),
        }
    }

    /// A type's name as the docs write it.
    pub fn type_name(&self, ty: Type) -> String {
        match ty {
            Type::Bool => "a boolean".into(),
            Type::Num => "a number".into(),
            Type::Money => "money".into(),
            Type::Str => "a string".into(),
            Type::Enum(id) => match self.enum_def(id) {
                Some(d) => format!("enum `{}`", d.name),
                None => "an enum".into(),
            },
        }
    }
}

fn attempt(name: &str) -> Option<(Slot, Type)> {
    (name == "failures").then_some((Slot::Failures, Type::Num))
}

fn time(name: &str) -> Option<(Slot, Type)> {
    Some(match name {
        "month_progress" => (Slot::MonthProgress, Type::Num),
        "day_of_month" => (Slot::DayOfMonth, Type::Num),
        "hour" => (Slot::Hour, Type::Num),
        _ => return None,
    })
}

/// The built-in enum types, in [`EnumId`] order.
pub fn builtin_enums() -> Vec<EnumDef> {
    let def = |name: &str, values: &[&str]| EnumDef {
        name: name.to_string(),
        values: values.iter().map(|v| v.to_string()).collect(),
    };
    vec![
        def("priority", &["quality", "balanced", "speed"]),
        def(
            "aspect_ratio",
            &["16:9", "9:16", "1:1", "4:3", "3:4", "21:9"],
        ),
        def("breaker", &["closed", "open", "half_open"]),
    ]
}

/// The closest candidate to `word`, if any is close enough to be a plausible typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}
