//! Experiments and measured figures in `genroute simulate`: the same pure rules as the
//! service ([`genroute_core::experiment::verdict`], [`genroute_core::measure::summarize`]) applied to the
//! simulated outcomes, so an author sees at which request of a month an experiment would
//! have rolled back.
//!
//! The service reads measured figures from a cache a second old; the simulation recomputes
//! them every [`MEASURE_EVERY`] requests, which plays the same part.

use std::collections::VecDeque;

use serde::Serialize;

use genroute_core::experiment::{verdict, ArmFigures, ArmSample, Rollback};
use genroute_core::measure::{summarize, Measured, Sample, WINDOW};
use genroute_core::policy::Policy;

/// Requests between two recomputations of the measured figures.
pub const MEASURE_EVERY: u64 = 50;

/// Points per arm in a report's series (at most).
const POINTS: u64 = 400;

/// One experiment's month.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentReport {
    /// Its name.
    pub name: String,
    /// The split rule.
    pub rule: String,
    /// The primary arm.
    pub primary: String,
    /// `pass_rate`, `latency` or `cost_per_video`.
    pub metric: &'static str,
    /// The request (1-based, in workload order) after which it rolled back.
    pub rolled_back_at_request: Option<u64>,
    /// The day of the month it rolled back.
    pub rolled_back_day: Option<u32>,
    /// Why.
    pub reason: Option<String>,
    /// Every arm, the primary first.
    pub arms: Vec<ArmReport>,
}

/// One arm's month.
#[derive(Debug, Clone, Serialize)]
pub struct ArmReport {
    /// Backend.
    pub backend: String,
    /// Its sums over the month.
    pub figures: ArmFigures,
    /// The metric over them.
    pub value: Option<f64>,
    /// Its sums when the experiment rolled back.
    pub at_rollback: Option<ArmFigures>,
    /// (request number, the metric so far), for the report's chart.
    pub series: Vec<(u64, f64)>,
}

struct Tracked {
    /// Per arm of the split, by arm index.
    figures: Vec<ArmFigures>,
    series: Vec<Vec<(u64, f64)>>,
    rollback: Option<(u64, u32, Rollback, Vec<ArmFigures>)>,
}

/// What the replay keeps beside the ledger: samples per backend and experiment figures.
pub(super) struct Tracker {
    samples: Vec<VecDeque<Sample>>,
    measured: Vec<Measured>,
    experiments: Vec<Tracked>,
    every: u64,
}

impl Tracker {
    pub(super) fn new(policy: &Policy, requests: u64) -> Tracker {
        let arms = |e: &genroute_core::experiment::Experiment| {
            policy.rules[e.rule as usize]
                .split
                .as_ref()
                .map_or(0, |s| s.arms.len())
        };
        Tracker {
            samples: vec![VecDeque::new(); policy.backends.len()],
            measured: vec![Measured::default(); policy.backends.len()],
            experiments: policy
                .experiments
                .iter()
                .map(|e| Tracked {
                    figures: vec![ArmFigures::default(); arms(e)],
                    series: vec![Vec::new(); arms(e)],
                    rollback: None,
                })
                .collect(),
            every: (requests / POINTS).max(1),
        }
    }

    /// The measured figures, recomputed every [`MEASURE_EVERY`] requests.
    pub(super) fn measured(&mut self, n: u64) -> &[Measured] {
        if n.is_multiple_of(MEASURE_EVERY) {
            for (m, s) in self.measured.iter_mut().zip(self.samples.iter_mut()) {
                *m = summarize(s.make_contiguous());
            }
        }
        &self.measured
    }

    /// Per experiment: whether it has rolled back.
    pub(super) fn rolled_back(&self) -> Vec<bool> {
        self.experiments
            .iter()
            .map(|t| t.rollback.is_some())
            .collect()
    }

    /// A delivered video of `backend`.
    pub(super) fn delivered(&mut self, backend: usize, sample: Sample) {
        let list = &mut self.samples[backend];
        list.push_front(sample);
        list.truncate(WINDOW);
    }

    /// An ended attempt on arm `arm` of experiment `e`, after request `n` (1-based).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn arm_sample(
        &mut self,
        policy: &Policy,
        e: usize,
        arm: usize,
        sample: &ArmSample,
        n: u64,
        day: u32,
        at_ms: i64,
    ) {
        let (Some(exp), Some(t)) = (policy.experiments.get(e), self.experiments.get_mut(e)) else {
            return;
        };
        let Some(split) = policy.rules[exp.rule as usize].split.as_ref() else {
            return;
        };
        t.figures[arm].add(sample);
        if n.is_multiple_of(self.every) || t.figures[arm].samples == 1 {
            if let Some(v) = t.figures[arm].value(exp.metric) {
                t.series[arm].push((n, v));
            }
        }
        if t.rollback.is_some() {
            return;
        }
        let backend = split.arms[arm].backend;
        if !exp.arms.contains(&backend) {
            return;
        }
        let Some(p) = split.arms.iter().position(|a| a.backend == exp.primary) else {
            return;
        };
        let name = |b: u16| policy.backends[b as usize].name.as_str();
        if let Some(r) = verdict(
            exp,
            name(exp.primary),
            &t.figures[p],
            name(backend),
            &t.figures[arm],
            at_ms,
        ) {
            t.rollback = Some((n, day, r, t.figures.clone()));
        }
    }

    pub(super) fn report(self, policy: &Policy) -> Vec<ExperimentReport> {
        policy
            .experiments
            .iter()
            .zip(self.experiments)
            .filter_map(|(e, t)| {
                let split = policy.rules[e.rule as usize].split.as_ref()?;
                let mut order: Vec<usize> = (0..split.arms.len()).collect();
                order.sort_by_key(|&i| split.arms[i].backend != e.primary);
                let arms = order
                    .iter()
                    .map(|&i| ArmReport {
                        backend: policy.backends[split.arms[i].backend as usize].name.clone(),
                        figures: t.figures[i],
                        value: t.figures[i].value(e.metric),
                        at_rollback: t.rollback.as_ref().map(|r| r.3[i]),
                        series: t.series[i].clone(),
                    })
                    .collect();
                Some(ExperimentReport {
                    name: e.name.clone(),
                    rule: policy.rules[e.rule as usize].name.clone(),
                    primary: policy.backends[e.primary as usize].name.clone(),
                    metric: e.metric.name(),
                    rolled_back_at_request: t.rollback.as_ref().map(|r| r.0),
                    rolled_back_day: t.rollback.as_ref().map(|r| r.1),
                    reason: t.rollback.map(|r| r.2.reason),
                    arms,
                })
            })
            .collect()
    }
}
