//! What the walk records after each attempt, beside the ledger and the breaker: the
//! backend's measured sample, and the experiment arm's figures with its rollback rule.
//!
//! **Why it never fails a request.** These are figures, not money: the ledger entry of the
//! attempt is already written when they are recorded. A store that refuses them costs the
//! routing some history (logged), never the caller's video.

use super::walk::Step;
use super::{Attempt, Router};
use crate::decide::Decision;
use crate::experiment::{arm_key, mark_key, verdict, ArmFigures, ArmSample};
use crate::ledger::millis;
use crate::measure::{sample_key, Sample, WINDOW};

/// Outcomes of attempts that never reached the backend: not a sample of it.
const NOT_CALLED: [&str; 5] = [
    "not_configured",
    "breaker_open",
    "over_budget",
    super::LEDGER_ERROR,
    "not_called",
];

/// The outcome of a delivered video that failed its output checks.
pub const BAD_OUTPUT: &str = "bad_output";

impl Router {
    /// The experiment whose split drew the decision's first step, if any.
    pub(super) fn experiment_of(&self, d: &Decision<'_>) -> Option<String> {
        let rule = self.policy.rules.get(d.rule? as usize)?;
        let (e, _) = rule.split.as_ref()?.experiment?;
        d.arm?;
        self.policy
            .experiments
            .get(e as usize)
            .map(|x| x.name.clone())
    }

    /// Records an ended attempt's figures (see the module docs).
    pub(super) async fn record(&self, step: &Step, attempt: &Attempt, delivered: bool) {
        if NOT_CALLED.contains(&attempt.outcome.as_str()) {
            return;
        }
        let bad = attempt.outcome == BAD_OUTPUT;
        let now = self.clock.now();
        if delivered || bad {
            let sample = Sample {
                at_ms: millis(now),
                passed: !bad,
                checked: bad,
                latency_ms: attempt.latency_ms,
                flicker: None,
            };
            if let Ok(json) = serde_json::to_string(&sample) {
                if let Err(e) = self
                    .store
                    .push_sample(&sample_key(&step.backend), &json, WINDOW)
                    .await
                {
                    tracing::warn!(backend = %step.backend, "could not record a measured sample: {e}");
                }
            }
        }
        let Some(name) = &step.experiment else {
            return;
        };
        let Some(exp) = self.policy.experiments.iter().find(|e| &e.name == name) else {
            return;
        };
        let arm = ArmSample {
            delivered: delivered || bad,
            passed: delivered && !bad,
            latency_ms: attempt.latency_ms,
            cost: attempt.cost_usd,
        };
        let key = arm_key(name, &step.backend);
        let mine = match self
            .store
            .add_counters(&key, &ArmFigures::increments(&arm))
            .await
        {
            Ok(c) => figures(&c),
            Err(e) => {
                tracing::warn!(experiment = %name, "could not record an experiment sample: {e}");
                return;
            }
        };
        let primary = &self.policy.backends[exp.primary as usize].name;
        if *primary == step.backend {
            return;
        }
        let theirs = match self.store.counters(&[arm_key(name, primary)]).await {
            Ok(c) => c.first().map(figures).unwrap_or_default(),
            Err(e) => {
                tracing::warn!(experiment = %name, "could not read the primary arm's figures: {e}");
                return;
            }
        };
        let Some(rollback) = verdict(exp, primary, &theirs, &step.backend, &mine, millis(now))
        else {
            return;
        };
        let Ok(json) = serde_json::to_string(&rollback) else {
            return;
        };
        match self.store.put_mark(&mark_key(name), &json).await {
            Ok(true) => {
                tracing::warn!(experiment = %name, arm = %step.backend, reason = %rollback.reason, "experiment rolled back");
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(experiment = %name, "could not record the rollback: {e}");
            }
        }
    }
}

/// An arm's figures from its stored counters.
pub fn figures(c: &crate::ledger::Counters) -> ArmFigures {
    let mut f = ArmFigures::default();
    for (k, v) in c {
        f.set(k, *v);
    }
    f
}
