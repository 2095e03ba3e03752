//! Lints: policies that load but are probably wrong. `genroute check` prints them as
//! warnings (errors with `--deny-warnings`). Each has a stable name, and a rule or backend can
//! silence one with `allow: [name]`.
//!
//! The analysis is deliberately simple and sound: it only looks at the top-level conjunction
//! of a condition (`a AND b AND c`), at comparisons of one name with literals. When it warns,
//! the warning is true; it does not try to find every problem.

use std::collections::HashMap;

use crate::diag::{Diagnostic, Severity};
use crate::expr::{CExpr, CKind, Cmp, Lit, Slot, Type};
use crate::lang::ast::Span;
use crate::num::Fixed;
use crate::policy::Policy;

/// Every lint, by stable name.
pub const LINTS: &[(&str, &str)] = &[
    (
        "unreachable-rule",
        "a rule whose condition can never be true",
    ),
    (
        "shadowed-rule",
        "a rule that an earlier rule with the same target always pre-empts",
    ),
    ("disabled-target", "a rule whose target backend is disabled"),
    (
        "unselectable-backend",
        "a backend that no request could ever select",
    ),
    (
        "unused-fallback-failures",
        "`fallback_failures` on a backend that is never in a fallback chain",
    ),
    (
        "money-precision",
        "money compared with a literal finer than a cent",
    ),
    (
        "zero-weight",
        "an arm of a split with weight 0, which is never drawn",
    ),
    (
        "no-data-source",
        "a measured figure that nothing measures (output checks or frame checks off)",
    ),
];

/// Where lints point: the file range of a span in a rule's condition, of a rule's name, of a
/// backend's key.
pub trait Locate {
    /// A span inside rule `rule`'s condition.
    fn condition(&self, rule: usize, span: Span) -> Option<std::ops::Range<usize>>;
    /// The whole condition of rule `rule`.
    fn rule(&self, rule: usize) -> Option<std::ops::Range<usize>>;
    /// The key of backend `name`.
    fn backend(&self, name: &str) -> Option<std::ops::Range<usize>>;
}

fn warning(
    code: &'static str,
    message: String,
    help: String,
    at: Option<std::ops::Range<usize>>,
    label: &str,
) -> Diagnostic {
    let mut d = Diagnostic::error(code, message).help(help);
    d.severity = Severity::Warning;
    match at {
        Some(r) => d.at(r, label),
        None => d,
    }
}

fn allow_help(code: &str, whose: &str) -> String {
    format!("if this is intended, add `allow: [{code}]` to the {whose}")
}

/// Runs every lint.
pub fn lint(policy: &Policy, at: &dyn Locate) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let shadowed = shadowing(policy);
    for (i, rule) in policy.rules.iter().enumerate() {
        let allowed = |code: &str| rule.allow.iter().any(|a| a == code);
        if !allowed("unreachable-rule") {
            if let Some((why, span)) = contradiction(&rule.condition) {
                out.push(warning(
                    "unreachable-rule",
                    format!("rule `{}` can never match: {why}", rule.name),
                    format!(
                        "fix the condition or remove the rule; {}",
                        allow_help("unreachable-rule", "rule")
                    ),
                    at.condition(i, span),
                    "never true",
                ));
            }
        }
        if !allowed("shadowed-rule") {
            if let Some(earlier) = shadowed[i] {
                out.push(warning(
                    "shadowed-rule",
                    format!(
                        "rule `{}` never decides: whenever it matches, the earlier rule `{}` matches too, with the same target and model, and decides first",
                        rule.name, policy.rules[earlier].name
                    ),
                    format!("reorder or merge the rules; {}", allow_help("shadowed-rule", "rule")),
                    at.rule(i),
                    "shadowed",
                ));
            }
        }
        if let Some(split) = &rule.split {
            if !allowed("zero-weight") {
                for a in split.arms.iter().filter(|a| a.weight <= Fixed::ZERO) {
                    out.push(warning(
                        "zero-weight",
                        format!(
                            "rule `{}` gives `{}` weight 0 in its split, so it is never drawn",
                            rule.name, policy.backends[a.backend as usize].name
                        ),
                        format!(
                            "give it a positive weight or remove the arm; {}",
                            allow_help("zero-weight", "rule")
                        ),
                        at.rule(i),
                        "never drawn",
                    ));
                }
            }
            let all_off = split
                .arms
                .iter()
                .all(|a| !policy.backends[a.backend as usize].enabled);
            if all_off && !allowed("disabled-target") {
                out.push(warning(
                    "disabled-target",
                    format!(
                        "every arm of rule `{}`'s split is disabled, so the rule can never decide",
                        rule.name
                    ),
                    allow_help("disabled-target", "rule"),
                    at.rule(i),
                    "disabled targets",
                ));
            }
        }
        let target = &policy.backends[rule.backend as usize];
        if rule.split.is_none() && !allowed("disabled-target") && !target.enabled {
            let how = target
                .enabled_by
                .as_deref()
                .map_or("`enabled: false`".to_string(), |v| {
                    format!("environment variable {v}")
                });
            out.push(warning(
                "disabled-target",
                format!("rule `{}` targets `{}`, which is disabled ({how}), so the rule can never decide", rule.name, target.name),
                allow_help("disabled-target", "rule"),
                at.rule(i),
                "disabled target",
            ));
        }
        if !allowed("money-precision") {
            for (lit, span) in fine_money(&rule.condition) {
                out.push(warning(
                    "money-precision",
                    format!("rule `{}` compares money with `{lit}`, which is finer than a cent", rule.name),
                    format!(
                        "prices and budgets here are whole cents, so `{lit}` behaves like a nearby cent value and reads like a typo; {}",
                        allow_help("money-precision", "rule")
                    ),
                    at.condition(i, span),
                    "suspicious precision",
                ));
            }
        }
    }
    out.extend(no_data_source(policy, at));
    let mut targeted = vec![false; policy.backends.len()];
    for r in &policy.rules {
        if let Some(t) = targeted.get_mut(r.backend as usize) {
            *t = true;
        }
        for a in r.split.iter().flat_map(|s| s.arms.iter()) {
            if let Some(t) = targeted.get_mut(a.backend as usize) {
                *t = true;
            }
        }
    }
    for (index, b) in policy.backends.iter().enumerate() {
        let allowed = |code: &str| b.allow.iter().any(|a| a == code);
        let targeted = targeted[index];
        let no_flags = [
            b.criteria.priority_high,
            b.criteria.priority_balanced,
            b.criteria.priority_speed,
        ]
        .iter()
        .all(|f| *f == Some(false));
        let never_fits = b.criteria.budget_available && b.cost_of(None) > policy.budget.monthly;
        let why = if !b.enabled {
            Some("it is disabled".to_string())
        } else if no_flags && !targeted {
            Some("its priority flags refuse every priority and no rule targets it".to_string())
        } else if never_fits && !targeted {
            Some(format!(
                "its cost {} is more than the whole monthly budget {}",
                b.cost_of(None),
                policy.budget.monthly
            ))
        } else {
            None
        };
        if let Some(why) = &why {
            if !allowed("unselectable-backend") {
                out.push(warning(
                    "unselectable-backend",
                    format!("backend `{}` can never be selected: {why}", b.name),
                    allow_help("unselectable-backend", "backend"),
                    at.backend(&b.name),
                    "never selected",
                ));
            }
        }
        let never_in_chain = !b.enabled || no_flags || never_fits;
        if b.criteria.fallback_failures > 0
            && never_in_chain
            && !allowed("unused-fallback-failures")
        {
            out.push(warning(
                "unused-fallback-failures",
                format!(
                    "backend `{}` sets `fallback_failures: {}`, but it never stands in a fallback chain (chains hold only enabled backends whose priority flags accept the request and whose cost can fit)",
                    b.name, b.criteria.fallback_failures
                ),
                allow_help("unused-fallback-failures", "backend"),
                at.backend(&b.name),
                "never in a chain",
            ));
        }
    }
    out
}

/// Figures that the policy reads but nothing measures: a pass rate with the output checks
/// off, a flicker or black or frozen share with the frame checks off.
fn no_data_source(policy: &Policy, at: &dyn Locate) -> Vec<Diagnostic> {
    use crate::measure::{MeasuredProp as M, VideoProp as V};
    use crate::policy::FrameChecks;
    let checks = policy.execution.output_checks;
    let frames = checks.enabled && checks.frames != FrameChecks::Off;
    let why = |what: &str| -> Option<String> {
        match what {
            "pass_rate" if !checks.enabled => Some("`execution.output_checks.enabled` is false, so no video is checked".into()),
            "flicker" | "black_fraction" | "frozen_fraction" if !frames => Some("the frame checks are off (`execution.output_checks`), so no video's frames are measured".into()),
            _ => None,
        }
    };
    let reads = |e: &CExpr| {
        let mut names = Vec::new();
        walk(e, &mut |x| {
            if let CKind::Read(slot) = &x.kind {
                match slot {
                    Slot::Measured(_, M::PassRate) => names.push(("pass_rate", x.span)),
                    Slot::Measured(_, M::Flicker) | Slot::Video(V::Flicker) => {
                        names.push(("flicker", x.span))
                    }
                    Slot::Video(V::BlackFraction) => names.push(("black_fraction", x.span)),
                    Slot::Video(V::FrozenFraction) => names.push(("frozen_fraction", x.span)),
                    _ => {}
                }
            }
        });
        names
    };
    let mut out = Vec::new();
    for (i, rule) in policy.rules.iter().enumerate() {
        if rule.allow.iter().any(|a| a == "no-data-source") {
            continue;
        }
        for (name, span) in reads(&rule.condition) {
            if let Some(why) = why(name) {
                out.push(warning(
                    "no-data-source",
                    format!("rule `{}` reads a measured `{name}`, but {why}", rule.name),
                    format!(
                        "turn the checks on, or drop the clause; {}",
                        allow_help("no-data-source", "rule")
                    ),
                    at.condition(i, span),
                    "never measured",
                ));
            }
        }
        if let Some(d) = rule.split.as_ref().and_then(|s| s.dynamic) {
            if let Some(why) = why(d.by.name()) {
                out.push(warning(
                    "no-data-source",
                    format!("rule `{}` moves its split's weights by `{}`, but {why}: they stay as written", rule.name, d.by.name()),
                    allow_help("no-data-source", "rule"),
                    at.rule(i),
                    "never measured",
                ));
            }
        }
    }
    for e in &policy.experiments {
        if e.metric == crate::experiment::Metric::PassRate && !checks.enabled {
            out.push(warning(
                "no-data-source",
                format!("experiment `{}` compares pass rates, but `execution.output_checks.enabled` is false: only failed calls count against an arm", e.name),
                "turn the output checks on, or compare `latency` or `cost_per_video`".into(),
                at.rule(e.rule as usize),
                "never measured",
            ));
        }
    }
    if let Some(q) = &policy.quality_retry {
        for (name, _) in reads(&q.when) {
            if let Some(why) = why(name) {
                out.push(warning(
                    "no-data-source",
                    format!("`execution.quality_retry.when` reads `video.{name}`, but {why}: it never holds"),
                    "turn the frame checks on, or use another figure".into(),
                    None,
                    "never measured",
                ));
            }
        }
    }
    out
}

/// The top-level conjuncts of a condition.
fn conjuncts(e: &CExpr) -> Vec<&CExpr> {
    match &e.kind {
        CKind::And(items) => items.iter().collect(),
        _ => vec![e],
    }
}

/// What one conjunct says about one name.
enum Fact {
    /// The enum slot's value is one of these (bit set).
    OneOf(Slot, u64),
    /// The numeric slot lies within a bound.
    Bound(Slot, Cmp, Fixed),
}

fn fact(e: &CExpr) -> Option<Fact> {
    let slot = |x: &CExpr| match x.kind {
        CKind::Read(s) => Some(s),
        _ => None,
    };
    match &e.kind {
        CKind::Cmp(op, a, b) => {
            let (s, lit, op) = match (slot(a), &b.kind, slot(b), &a.kind) {
                (Some(s), CKind::Lit(l), _, _) => (s, l, *op),
                (_, _, Some(s), CKind::Lit(l)) => (s, l, op.flipped()),
                _ => return None,
            };
            match (lit, op) {
                (Lit::Enum(v), Cmp::Eq) => Some(Fact::OneOf(s, 1u64 << (*v).min(63))),
                (Lit::Enum(v), Cmp::Ne) => Some(Fact::OneOf(s, !(1u64 << (*v).min(63)))),
                (Lit::Num(n), op) => Some(Fact::Bound(s, op, *n)),
                _ => None,
            }
        }
        CKind::In(a, items) if matches!(a.ty, Type::Enum(_)) => {
            let s = slot(a)?;
            let mask = items.iter().fold(0u64, |m, l| match l {
                Lit::Enum(v) => m | 1u64 << (*v).min(63),
                _ => m,
            });
            Some(Fact::OneOf(s, mask))
        }
        _ => None,
    }
}

/// A bound and whether it is strict.
type Bound = Option<(Fixed, bool)>;
/// Lower bound, upper bound, and the span of the clauses that set them.
type Interval = (Bound, Bound, Span);

/// A reason the conjunction can never hold, with the span to point at.
fn contradiction(e: &CExpr) -> Option<(String, Span)> {
    if let CKind::Lit(Lit::Bool(false)) = e.kind {
        return Some(("the condition is always false".into(), e.span));
    }
    let parts = conjuncts(e);
    if let Some(p) = parts
        .iter()
        .find(|p| matches!(p.kind, CKind::Lit(Lit::Bool(false))))
    {
        return Some(("one of its clauses is always false".into(), p.span));
    }
    // Enum sets and numeric intervals, per slot.
    let mut sets: HashMap<String, (u64, Span)> = HashMap::new();
    let mut bounds: HashMap<String, Interval> = HashMap::new();
    for p in &parts {
        match fact(p) {
            Some(Fact::OneOf(s, mask)) => {
                let entry = sets.entry(format!("{s:?}")).or_insert((u64::MAX, p.span));
                entry.0 &= mask;
                entry.1 = entry.1.to(p.span);
                if entry.0 == 0 {
                    return Some((
                        "its clauses on the same name allow no value at all".into(),
                        entry.1,
                    ));
                }
            }
            Some(Fact::Bound(s, op, n)) => {
                let entry = bounds
                    .entry(format!("{s:?}"))
                    .or_insert((None, None, p.span));
                entry.2 = entry.2.to(p.span);
                let lower = |e: &mut Bound, v: Fixed, strict: bool| {
                    if e.is_none_or(|(w, ws)| v > w || (v == w && strict && !ws)) {
                        *e = Some((v, strict));
                    }
                };
                let upper = |e: &mut Bound, v: Fixed, strict: bool| {
                    if e.is_none_or(|(w, ws)| v < w || (v == w && strict && !ws)) {
                        *e = Some((v, strict));
                    }
                };
                match op {
                    Cmp::Gt => lower(&mut entry.0, n, true),
                    Cmp::Ge => lower(&mut entry.0, n, false),
                    Cmp::Lt => upper(&mut entry.1, n, true),
                    Cmp::Le => upper(&mut entry.1, n, false),
                    Cmp::Eq => {
                        lower(&mut entry.0, n, false);
                        upper(&mut entry.1, n, false);
                    }
                    Cmp::Ne => {}
                }
                if let (Some((lo, ls)), Some((hi, hs))) = (entry.0, entry.1) {
                    if lo > hi || (lo == hi && (ls || hs)) {
                        return Some((
                            "its bounds on the same number leave no value between them".into(),
                            entry.2,
                        ));
                    }
                }
            }
            None => {}
        }
    }
    None
}

/// How many earlier rules [`shadowing`] compares one rule with, at most.
const MAX_SHADOW_CANDIDATES: usize = 1024;

/// For each rule, the earliest earlier rule that always pre-empts it, if any: one with the
/// same target and model whose top-level conjuncts (`true` aside) are all among this rule's.
///
/// Each condition's conjuncts are printed once and numbered. An earlier rule is filed under
/// its rarest conjunct (or, with none, as pre-empting everything after it), so a rule is only
/// compared with the earlier rules filed under one of its own conjuncts, and with at most
/// [`MAX_SHADOW_CANDIDATES`] of them: the lint stays sound, and linear in the policy's size
/// even when thousands of rules share a target.
fn shadowing(policy: &Policy) -> Vec<Option<usize>> {
    let mut ids: HashMap<String, usize> = HashMap::new();
    let sets: Vec<Vec<usize>> = policy
        .rules
        .iter()
        .map(|r| {
            let mut set: Vec<usize> = conjunct_texts(&r.condition, &r.condition_text)
                .into_iter()
                .filter(|c| c != "true")
                .map(|c| {
                    let next = ids.len();
                    *ids.entry(c).or_insert(next)
                })
                .collect();
            set.sort_unstable();
            set.dedup();
            set
        })
        .collect();
    let mut frequency = vec![0usize; ids.len()];
    for set in &sets {
        for &c in set {
            frequency[c] += 1;
        }
    }
    #[derive(Default)]
    struct Group {
        /// The first rule with no conjunct but `true`: it pre-empts every later one.
        always: Option<usize>,
        /// Earlier rules by their rarest conjunct, in file order.
        filed: HashMap<usize, Vec<usize>>,
    }
    let mut groups: HashMap<(u16, Option<&str>), Group> = HashMap::new();
    let mut out = Vec::with_capacity(sets.len());
    for (i, (rule, set)) in policy.rules.iter().zip(&sets).enumerate() {
        // A split rule draws between targets: it neither shadows nor is shadowed by
        // another (its own name keeps it in a group of one).
        let key = match &rule.split {
            Some(_) => (u16::MAX, Some(rule.name.as_str())),
            None => (rule.backend, rule.model.as_deref()),
        };
        let group = groups.entry(key).or_default();
        let mut best = group.always;
        let mut budget = MAX_SHADOW_CANDIDATES;
        'conjuncts: for c in set {
            for &j in group.filed.get(c).map_or(&[][..], Vec::as_slice) {
                if best.is_some_and(|b| j >= b) {
                    break;
                }
                if budget == 0 {
                    break 'conjuncts;
                }
                budget -= 1;
                if sets[j].iter().all(|x| set.binary_search(x).is_ok()) {
                    best = Some(j);
                    break;
                }
            }
        }
        out.push(best);
        match set.iter().min_by_key(|&&c| (frequency[c], c)) {
            Some(&rarest) => group.filed.entry(rarest).or_default().push(i),
            None => {
                group.always.get_or_insert(i);
            }
        }
    }
    out
}

fn conjunct_texts(e: &CExpr, text: &str) -> Vec<String> {
    conjuncts(e)
        .iter()
        .map(|c| match c.kind {
            CKind::Lit(Lit::Bool(true)) => "true".to_string(),
            _ => crate::lang::parse::parse_condition(text.get(c.span.range()).unwrap_or(""))
                .map(|t| t.to_string())
                .unwrap_or_default(),
        })
        .collect()
}

/// Comparisons of a money expression with a literal that has more than two decimals.
fn fine_money(e: &CExpr) -> Vec<(Fixed, Span)> {
    let mut out = Vec::new();
    walk(e, &mut |n| {
        if let CKind::Cmp(_, a, b) = &n.kind {
            for (x, y) in [(a, b), (b, a)] {
                if let (Type::Money, CKind::Lit(Lit::Num(v))) = (x.ty, &y.kind) {
                    if v.scale() > 2 {
                        out.push((*v, y.span));
                    }
                }
            }
        }
    });
    out
}

fn walk<'a>(e: &'a CExpr, f: &mut impl FnMut(&'a CExpr)) {
    f(e);
    match &e.kind {
        CKind::Not(a) | CKind::Neg(a) | CKind::In(a, _) => walk(a, f),
        CKind::And(v) | CKind::Or(v) => v.iter().for_each(|x| walk(x, f)),
        CKind::Arith(_, a, b) | CKind::Cmp(_, a, b) => {
            walk(a, f);
            walk(b, f);
        }
        _ => {}
    }
}
