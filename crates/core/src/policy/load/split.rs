//! Loading the parts of a policy that draw between backends: a rule's `split` (with its
//! `split_key` and `dynamic_weights`) and the `experiments` run on splits.

use std::collections::BTreeMap;

use super::{did_you_mean, key, ticks, Loader};
use crate::check::scope::FieldDef;
use crate::experiment::{Experiment, Metric};
use crate::measure::MeasuredProp;
use crate::num::Fixed;
use crate::policy::raw::{RawExperiment, RawRule};
use crate::policy::yaml::Seg;
use crate::policy::{Backend, Rule};
use crate::split::{Arm, Dynamic, Split, SplitKey};

impl Loader<'_> {
    /// Checks that `backend` runs model `m`, reporting at `path`.
    pub(super) fn check_model(&mut self, backend: &Backend, m: &str, path: &[Seg]) {
        if !backend.models.is_empty() && !backend.models.iter().any(|x| x.id == m) {
            let ids: Vec<&str> = backend.models.iter().map(|x| x.id.as_str()).collect();
            let help = match did_you_mean(m, ids.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("`{}` runs {}", backend.name, ticks(&ids)),
            };
            self.error_at(
                path,
                "unknown-model",
                format!("backend `{}` has no model `{m}`", backend.name),
                "unknown model",
                &help,
            );
        }
    }

    /// Resolves rule `i`'s `split`; `None` when it has errors (all reported).
    pub(super) fn split(
        &mut self,
        i: usize,
        r: &RawRule,
        backends: &[Backend],
        by_name: &BTreeMap<&str, usize>,
        fields: &[FieldDef],
    ) -> Option<Split> {
        let base = [key("selection_rules"), Seg::Index(i)];
        let at = |tail: &[Seg]| {
            let mut p = base.to_vec();
            p.extend_from_slice(tail);
            p
        };
        let mut ok = true;
        let mut arms: Vec<Arm> = Vec::new();
        for (j, a) in r.split.iter().enumerate() {
            let arm = |k: &str| at(&[key("split"), Seg::Index(j), key(k)]);
            let Some(&b) = by_name.get(a.backend.as_str()) else {
                let names: Vec<&str> = backends.iter().map(|b| b.name.as_str()).collect();
                let help = match did_you_mean(&a.backend, names.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("backends are {}", ticks(&names)),
                };
                self.error_at(
                    &arm("backend"),
                    "unknown-backend",
                    format!(
                        "rule `{}` splits to unknown backend `{}`",
                        r.name, a.backend
                    ),
                    "no such backend",
                    &help,
                );
                ok = false;
                continue;
            };
            if arms.iter().any(|x| x.backend as usize == b) {
                self.error_at(
                    &arm("backend"),
                    "duplicate-arm",
                    format!(
                        "rule `{}` lists backend `{}` twice in its split",
                        r.name, a.backend
                    ),
                    "again",
                    "give each backend one arm, with the sum of the weights",
                );
                ok = false;
            }
            if a.weight.is_negative() {
                self.error_at(
                    &arm("weight"),
                    "out-of-range",
                    format!("weight {} is negative", a.weight),
                    "negative",
                    "weights are shares relative to the other arms: 0 or more (0 pauses the arm)",
                );
                ok = false;
            }
            let backend = &backends[b];
            if let Some(m) = &a.model_preference {
                self.check_model(backend, m, &arm("model_preference"));
            }
            arms.push(Arm {
                backend: b as u16,
                weight: a.weight,
                model: a.model_preference.clone(),
                cost: backend.cost_of(a.model_preference.as_deref()),
            });
        }
        if ok && arms.iter().all(|a| a.weight <= Fixed::ZERO) {
            self.error_at(
                &at(&[key("split")]),
                "out-of-range",
                format!("every arm of rule `{}` has weight 0", r.name),
                "no arm can be drawn",
                "give at least one arm a positive weight",
            );
            ok = false;
        }
        if r.model_preference.is_some() {
            self.error_at(
                &at(&[key("model_preference")]),
                "model-on-split",
                format!(
                    "rule `{}` has a split; `model_preference` belongs to its arms",
                    r.name
                ),
                "here",
                "write `model_preference` on each arm of `split` instead",
            );
            ok = false;
        }
        let key_of = match &r.split_key {
            None => SplitKey::RequestId,
            Some(name) => match fields.iter().position(|f| &f.name == name) {
                Some(f) => SplitKey::Field(f as u16),
                None => {
                    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                    let help = match did_you_mean(name, names.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if names.is_empty() => format!(
                            "declare it under `request_fields:` (e.g. `{name}: {{type: string}}`), or leave `split_key` out to hash the request id"
                        ),
                        None => format!("declared fields are {}", ticks(&names)),
                    };
                    self.error_at(
                        &at(&[key("split_key")]),
                        "unknown-field",
                        format!(
                            "`split_key` names `{name}`, which is not a declared request field"
                        ),
                        "not declared",
                        &help,
                    );
                    ok = false;
                    SplitKey::RequestId
                }
            },
        };
        let dynamic = r.dynamic_weights.as_ref().and_then(|d| {
            let by = MeasuredProp::parse(&d.by).filter(|p| *p != MeasuredProp::Samples);
            let Some(by) = by else {
                let names: Vec<&str> = MeasuredProp::ALL
                    .iter()
                    .skip(1)
                    .map(|(_, n, _)| *n)
                    .collect();
                self.error_at(
                    &at(&[key("dynamic_weights"), key("by")]),
                    "invalid-value",
                    format!("`{}` is not a measured figure", d.by),
                    "unknown",
                    &format!("weights can move by {}", ticks(&names)),
                );
                ok = false;
                return None;
            };
            let floor = d.floor.unwrap_or(Fixed::ONE);
            let ceiling = d
                .ceiling
                .unwrap_or(Fixed::from_int(1000).unwrap_or(Fixed::ONE));
            if floor.is_negative() || ceiling < floor {
                self.error_at(
                    &at(&[key("dynamic_weights")]),
                    "out-of-range",
                    format!("floor {floor} and ceiling {ceiling} do not bound a weight"),
                    "here",
                    "0 <= floor <= ceiling",
                );
                ok = false;
            }
            Some(Dynamic {
                by,
                inverse: by != MeasuredProp::PassRate,
                floor,
                ceiling,
                min_samples: d.min_samples.unwrap_or(20),
            })
        });
        (ok && !arms.is_empty()).then(|| Split {
            arms,
            key: key_of,
            dynamic,
            experiment: None,
            salt: xxhash_rust::xxh3::xxh3_64(r.name.as_bytes()),
        })
    }

    /// Resolves `experiments:`, tying each to its split rule.
    pub(super) fn experiments(
        &mut self,
        raw: &BTreeMap<String, RawExperiment>,
        rules: &mut [Rule],
        backends: &[Backend],
        raw_rules: &[RawRule],
    ) -> Vec<Experiment> {
        let mut out: Vec<Experiment> = Vec::new();
        for (name, e) in raw {
            let at = |k: &str| vec![key("experiments"), key(name), key(k)];
            let Some(ri) = rules.iter().position(|r| r.name == e.rule) else {
                // A rule that failed to load was reported already.
                if !raw_rules.iter().any(|r| r.name == e.rule) {
                    let names: Vec<&str> = raw_rules
                        .iter()
                        .filter(|r| !r.split.is_empty())
                        .map(|r| r.name.as_str())
                        .collect();
                    let help = match did_you_mean(&e.rule, names.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if names.is_empty() => {
                            "no rule has a `split`; an experiment runs on a rule's split".into()
                        }
                        None => format!("rules with a split are {}", ticks(&names)),
                    };
                    self.error_at(
                        &at("rule"),
                        "unknown-rule",
                        format!("experiment `{name}` names unknown rule `{}`", e.rule),
                        "no such rule",
                        &help,
                    );
                }
                continue;
            };
            let Some(split) = rules[ri].split.as_deref_mut() else {
                self.error_at(
                    &at("rule"),
                    "not-a-split",
                    format!(
                        "experiment `{name}` runs on rule `{}`, which has no `split`",
                        e.rule
                    ),
                    "one backend only",
                    "give the rule a `split:` of the arms to compare",
                );
                continue;
            };
            let arm_names: Vec<&str> = split
                .arms
                .iter()
                .map(|a| backends[a.backend as usize].name.as_str())
                .collect();
            let find = |n: &str| arm_names.iter().position(|x| *x == n);
            let Some(primary) = find(&e.primary) else {
                self.error_at(
                    &at("primary"),
                    "arm-not-in-rule",
                    format!(
                        "experiment `{name}`: `{}` is not an arm of rule `{}`",
                        e.primary, e.rule
                    ),
                    "not an arm",
                    &format!("its arms are {}", ticks(&arm_names)),
                );
                continue;
            };
            let mut arms: Vec<u16> = Vec::new();
            let mut ok = true;
            for (j, a) in e.arms.iter().enumerate() {
                match find(a) {
                    Some(k) if k != primary => arms.push(split.arms[k].backend),
                    Some(_) => {
                        self.error_at(
                            &[key("experiments"), key(name), key("arms"), Seg::Index(j)],
                            "arm-not-in-rule",
                            format!("experiment `{name}`: `{a}` is its primary, not an experimental arm"),
                            "the primary",
                            "list only the arms compared with the primary",
                        );
                        ok = false;
                    }
                    None => {
                        self.error_at(
                            &[key("experiments"), key(name), key("arms"), Seg::Index(j)],
                            "arm-not-in-rule",
                            format!(
                                "experiment `{name}`: `{a}` is not an arm of rule `{}`",
                                e.rule
                            ),
                            "not an arm",
                            &format!("its arms are {}", ticks(&arm_names)),
                        );
                        ok = false;
                    }
                }
            }
            if e.arms.is_empty() {
                arms = split
                    .arms
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| *k != primary)
                    .map(|(_, a)| a.backend)
                    .collect();
            }
            let metric = match e.metric.as_deref() {
                None => Metric::PassRate,
                Some(m) => match Metric::parse(m) {
                    Some(x) => x,
                    None => {
                        self.error_at(
                            &at("metric"),
                            "invalid-value",
                            format!("`{m}` is not a metric an experiment can compare"),
                            "unknown",
                            &format!("metrics are {}", ticks(&Metric::NAMES)),
                        );
                        ok = false;
                        Metric::PassRate
                    }
                },
            };
            let rollback_below = e.rollback_below.unwrap_or(Fixed::from_micros(900_000));
            if rollback_below <= Fixed::ZERO || rollback_below > Fixed::ONE {
                self.error_at(
                    &at("rollback_below"),
                    "out-of-range",
                    format!(
                        "`rollback_below` is {rollback_below}; it must be above 0 and at most 1"
                    ),
                    "out of range",
                    "0.9 rolls back when an arm falls under 90 % of the primary's figure",
                );
                ok = false;
            }
            if let Some(other) = split.experiment {
                let first = out
                    .get(other.0 as usize)
                    .map_or("another", |x| x.name.as_str());
                self.error_at(
                    &at("rule"),
                    "duplicate-experiment",
                    format!("rule `{}` already runs experiment `{first}`", e.rule),
                    "taken",
                    "one experiment per split rule",
                );
                ok = false;
            }
            if !ok || arms.is_empty() {
                continue;
            }
            split.experiment = Some((out.len() as u16, primary as u16));
            out.push(Experiment {
                name: name.clone(),
                rule: ri as u16,
                primary: split.arms[primary].backend,
                arms,
                metric,
                min_samples: e.min_samples.unwrap_or(100).max(1),
                rollback_below,
            });
        }
        out
    }
}
