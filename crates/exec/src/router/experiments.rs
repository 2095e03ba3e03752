//! The experiments as an operator sees them: each arm's figures and weight, and whether the
//! rollback rule held (when and why), read from the store that every replica writes. One
//! view serves `GET /v1/experiments` and `genroute experiments show`.

use serde::Serialize;

use super::record::figures;
use super::Router;
use genroute_core::experiment::{arm_key, mark_key, ArmFigures, Rollback};
use genroute_core::num::Fixed;
use genroute_store::StoreError;

/// One experiment.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentView {
    /// Its name.
    pub name: String,
    /// The split rule it runs on.
    pub rule: String,
    /// The arm traffic goes home to.
    pub primary: String,
    /// `pass_rate`, `latency` or `cost_per_video`.
    pub metric: &'static str,
    /// Samples each side needs before the rule is tested.
    pub min_samples: u64,
    /// The ratio under which it rolls back.
    pub rollback_below: Fixed,
    /// `running` or `rolled_back`.
    pub status: &'static str,
    /// When and why it rolled back.
    pub rollback: Option<Rollback>,
    /// Every arm of the split, the primary first.
    pub arms: Vec<ArmView>,
}

/// One arm.
#[derive(Debug, Clone, Serialize)]
pub struct ArmView {
    /// Backend.
    pub backend: String,
    /// Weight as written.
    pub weight: Fixed,
    /// Whether it is compared with the primary (false for the primary itself and for arms
    /// the experiment leaves out).
    pub experimental: bool,
    /// Its sums since the experiment started or was resumed.
    pub figures: ArmFigures,
    /// The metric's value over them, when there is data.
    pub value: Option<f64>,
}

impl Router {
    /// Every experiment of the policy, with its figures from the store.
    pub async fn experiments(&self) -> Result<Vec<ExperimentView>, StoreError> {
        let policy = &self.policy;
        let marks: Vec<String> = policy
            .experiments
            .iter()
            .map(|e| mark_key(&e.name))
            .collect();
        let rollbacks = self.store.marks(&marks).await?;
        let mut out = Vec::new();
        for (e, mark) in policy.experiments.iter().zip(rollbacks) {
            let rule = &policy.rules[e.rule as usize];
            let Some(split) = &rule.split else {
                continue;
            };
            let primary = &policy.backends[e.primary as usize].name;
            let mut arms: Vec<&genroute_core::split::Arm> = split.arms.iter().collect();
            arms.sort_by_key(|a| a.backend != e.primary);
            let keys: Vec<String> = arms
                .iter()
                .map(|a| arm_key(&e.name, &policy.backends[a.backend as usize].name))
                .collect();
            let counters = self.store.counters(&keys).await?;
            let rollback: Option<Rollback> = mark.and_then(|j| serde_json::from_str(&j).ok());
            out.push(ExperimentView {
                name: e.name.clone(),
                rule: rule.name.clone(),
                primary: primary.clone(),
                metric: e.metric.name(),
                min_samples: e.min_samples,
                rollback_below: e.rollback_below,
                status: if rollback.is_some() {
                    "rolled_back"
                } else {
                    "running"
                },
                rollback,
                arms: arms
                    .iter()
                    .zip(&counters)
                    .map(|(a, c)| {
                        let f = figures(c);
                        ArmView {
                            backend: policy.backends[a.backend as usize].name.clone(),
                            weight: a.weight,
                            experimental: e.arms.contains(&a.backend),
                            value: f.value(e.metric),
                            figures: f,
                        }
                    })
                    .collect(),
            });
        }
        Ok(out)
    }

    /// Resumes an experiment by hand: its rollback is removed and its figures start afresh
    /// (so that the old samples cannot roll it back again at once). `Ok(false)` for an
    /// experiment the policy does not have.
    pub async fn resume_experiment(&self, name: &str) -> Result<bool, StoreError> {
        let Some(e) = self.policy.experiments.iter().find(|e| e.name == name) else {
            return Ok(false);
        };
        let Some(split) = &self.policy.rules[e.rule as usize].split else {
            return Ok(false);
        };
        let keys: Vec<String> = split
            .arms
            .iter()
            .map(|a| arm_key(name, &self.policy.backends[a.backend as usize].name))
            .collect();
        self.store.clear_mark(&mark_key(name), &keys).await?;
        self.cache().invalidate();
        Ok(true)
    }
}
