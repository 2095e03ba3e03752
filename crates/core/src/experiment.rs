//! A/B experiments on a split: each arm's figures, and the rule that rolls an arm back.
//!
//! **What is compared.** An experiment names a split rule, its primary arm (the backend the
//! traffic goes home to) and a metric. Every request the split draws onto an arm is one
//! sample of that arm when its attempt there ends: a pass when it delivered a video that
//! passed its output checks, a failure otherwise (a failed call, a `bad_output`). The
//! figures are sums (samples, passes, delivered videos, their latency and cost), so that
//! replicas add to them atomically in the store and no order matters.
//!
//! **When it rolls back.** Once both the primary and an experimental arm have `min_samples`
//! samples, the arm's metric relative to the primary's (arm ÷ primary where higher is better,
//! primary ÷ arm for latency and cost, where lower is) is compared with `rollback_below`
//! (0.9: "under 90 % of the primary's"). The first sample after which that holds rolls the
//! experiment back: its experimental arms' weights go to zero, so their keys go to the primary
//! (and only theirs: see [`crate::split`]). The rollback is recorded with its time, reason and
//! figures; an operator resumes the experiment by hand, which starts its figures afresh.
//! [`verdict`] is pure so that `simulate` and the service take the same decision at the same
//! sample.

use serde::{Deserialize, Serialize};

use crate::num::Fixed;

/// The store key of an experiment's rollback mark.
pub fn mark_key(experiment: &str) -> String {
    format!("experiment:{experiment}")
}

/// The store key of an experiment arm's counters.
pub fn arm_key(experiment: &str, backend: &str) -> String {
    format!("experiment:{experiment}:{backend}")
}

/// What an experiment compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Passes ÷ samples (higher is better).
    PassRate,
    /// Mean seconds per delivered video (lower is better).
    Latency,
    /// Spend ÷ delivered videos (lower is better).
    CostPerVideo,
}

impl Metric {
    /// Names as written in the policy.
    pub const NAMES: [&'static str; 3] = ["pass_rate", "latency", "cost_per_video"];

    /// By name.
    pub fn parse(s: &str) -> Option<Metric> {
        Some(match s {
            "pass_rate" => Metric::PassRate,
            "latency" => Metric::Latency,
            "cost_per_video" => Metric::CostPerVideo,
            _ => return None,
        })
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::PassRate => "pass_rate",
            Metric::Latency => "latency",
            Metric::CostPerVideo => "cost_per_video",
        }
    }

    fn higher_is_better(self) -> bool {
        matches!(self, Metric::PassRate)
    }
}

/// An experiment, as loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Experiment {
    /// Its name.
    pub name: String,
    /// The split rule it runs on, by index.
    pub rule: u16,
    /// The primary arm's backend.
    pub primary: u16,
    /// The experimental arms' backends.
    pub arms: Vec<u16>,
    /// What is compared.
    pub metric: Metric,
    /// Samples each side needs before the rule is tested.
    pub min_samples: u64,
    /// The ratio under which the experiment rolls back (0.9: under 90 % of the primary's).
    pub rollback_below: Fixed,
}

/// One arm's sums since the experiment started (or was resumed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmFigures {
    /// Attempts that ended.
    pub samples: u64,
    /// Delivered videos that passed their checks.
    pub passes: u64,
    /// Delivered videos (passed or not).
    pub delivered: u64,
    /// Their latency, summed, milliseconds.
    pub latency_ms: u64,
    /// Spend on the arm, micro-dollars.
    pub cost_micros: i64,
}

/// One ended attempt on an arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArmSample {
    /// A video was delivered.
    pub delivered: bool,
    /// It passed its checks.
    pub passed: bool,
    /// Latency of the attempt, milliseconds.
    pub latency_ms: u64,
    /// What it spent.
    pub cost: Fixed,
}

impl ArmFigures {
    /// The counters a sample adds, as (field, increment): what the store adds atomically.
    pub fn increments(s: &ArmSample) -> [(&'static str, i64); 5] {
        [
            ("samples", 1),
            ("passes", i64::from(s.passed && s.delivered)),
            ("delivered", i64::from(s.delivered)),
            (
                "latency_ms",
                if s.delivered {
                    i64::try_from(s.latency_ms).unwrap_or(i64::MAX)
                } else {
                    0
                },
            ),
            ("cost_micros", s.cost.micros()),
        ]
    }

    /// Adds a sample (what the store's increments do, for the in-process simulation).
    pub fn add(&mut self, s: &ArmSample) {
        for (field, by) in Self::increments(s) {
            self.set(field, self.get(field).saturating_add(by));
        }
    }

    /// A counter by name.
    pub fn get(&self, field: &str) -> i64 {
        match field {
            "samples" => self.samples as i64,
            "passes" => self.passes as i64,
            "delivered" => self.delivered as i64,
            "latency_ms" => self.latency_ms as i64,
            "cost_micros" => self.cost_micros,
            _ => 0,
        }
    }

    /// Sets a counter by name (negative counts read as zero).
    pub fn set(&mut self, field: &str, v: i64) {
        let u = u64::try_from(v).unwrap_or(0);
        match field {
            "samples" => self.samples = u,
            "passes" => self.passes = u,
            "delivered" => self.delivered = u,
            "latency_ms" => self.latency_ms = u,
            "cost_micros" => self.cost_micros = v,
            _ => {}
        }
    }

    /// The metric's value, when there is data for it.
    pub fn value(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::PassRate => {
                (self.samples > 0).then(|| self.passes as f64 / self.samples as f64)
            }
            Metric::Latency => (self.delivered > 0)
                .then(|| self.latency_ms as f64 / 1000.0 / self.delivered as f64),
            Metric::CostPerVideo => {
                (self.delivered > 0).then(|| self.cost_micros as f64 / 1e6 / self.delivered as f64)
            }
        }
    }
}

/// Why an experiment rolled back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollback {
    /// The arm that fell under the rule.
    pub arm: String,
    /// The sentence explain and `/v1/experiments` show.
    pub reason: String,
    /// The primary's metric then.
    pub primary_value: f64,
    /// The arm's metric then.
    pub arm_value: f64,
    /// When, ms since the epoch.
    pub at_ms: i64,
}

/// Whether `arm`'s figures against the primary's roll the experiment back now.
pub fn verdict(
    e: &Experiment,
    primary_name: &str,
    primary: &ArmFigures,
    arm_name: &str,
    arm: &ArmFigures,
    at_ms: i64,
) -> Option<Rollback> {
    if primary.samples < e.min_samples || arm.samples < e.min_samples {
        return None;
    }
    let (p, a) = (primary.value(e.metric)?, arm.value(e.metric)?);
    let ratio = if e.metric.higher_is_better() {
        if p <= 0.0 {
            return None;
        }
        a / p
    } else if a <= 0.0 {
        return None;
    } else {
        p / a
    };
    let limit = e.rollback_below.to_f64();
    if ratio >= limit {
        return None;
    }
    let pct = limit * 100.0;
    let what = match e.metric {
        Metric::PassRate => "pass rate",
        Metric::Latency => "latency",
        Metric::CostPerVideo => "cost per video",
    };
    let show = |v: f64| match e.metric {
        Metric::PassRate => format!("{v:.3}"),
        Metric::Latency => format!("{v:.1} s"),
        Metric::CostPerVideo => format!("${v:.4}"),
    };
    let reason = if e.metric.higher_is_better() {
        format!(
            "{what} of `{arm_name}` {} is under {pct:.0} % of `{primary_name}`'s {} (after {} and {} samples)",
            show(a), show(p), arm.samples, primary.samples
        )
    } else {
        format!(
            "{what} of `{arm_name}` {} is worse than `{primary_name}`'s {} by more than the {pct:.0} % rule allows (after {} and {} samples)",
            show(a), show(p), arm.samples, primary.samples
        )
    };
    Some(Rollback {
        arm: arm_name.to_string(),
        reason,
        primary_value: p,
        arm_value: a,
        at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(metric: Metric) -> Experiment {
        Experiment {
            name: "trial".into(),
            rule: 0,
            primary: 0,
            arms: vec![1],
            metric,
            min_samples: 10,
            rollback_below: "0.9".parse().unwrap(),
        }
    }

    fn figures(samples: u64, passes: u64, latency_s: u64) -> ArmFigures {
        ArmFigures {
            samples,
            passes,
            delivered: samples,
            latency_ms: latency_s * 1000 * samples,
            cost_micros: 50_000 * samples as i64,
        }
    }

    #[test]
    fn no_verdict_before_the_minimum_sample() {
        let e = exp(Metric::PassRate);
        assert_eq!(
            verdict(&e, "veo", &figures(10, 10, 1), "pix", &figures(9, 0, 1), 0),
            None
        );
    }

    #[test]
    fn pass_rate_under_ninety_percent_of_the_primary_rolls_back() {
        let e = exp(Metric::PassRate);
        let r = verdict(&e, "veo", &figures(20, 20, 1), "pix", &figures(10, 8, 1), 5).unwrap();
        assert_eq!(r.arm, "pix");
        assert!(
            r.reason.contains("0.800 is under 90 % of `veo`'s 1.000"),
            "{}",
            r.reason
        );
        // 9 of 10 is exactly 90 %: not under.
        assert_eq!(
            verdict(&e, "veo", &figures(20, 20, 1), "pix", &figures(10, 9, 1), 5),
            None
        );
    }

    #[test]
    fn latency_compares_inversely() {
        let e = exp(Metric::Latency);
        assert!(verdict(
            &e,
            "veo",
            &figures(10, 10, 60),
            "pix",
            &figures(10, 10, 70),
            0
        )
        .is_some());
        assert!(verdict(
            &e,
            "veo",
            &figures(10, 10, 60),
            "pix",
            &figures(10, 10, 30),
            0
        )
        .is_none());
    }
}
