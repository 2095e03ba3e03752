//! What the walk records after each attempt, beside the ledger and the breaker: the
//! backend's measured sample, and the experiment arm's figures with its rollback rule.
//!
//! **Why it never fails a request.** These are figures, not money: the ledger entry of the
//! attempt is already written when they are recorded. A store that refuses them costs the
//! routing some history (logged), never the caller's video.

use super::{Router, BAD_OUTPUT};
use genroute_core::decide::Decision;
use genroute_core::experiment::{arm_key, mark_key, verdict, ArmFigures, ArmSample};
use genroute_core::measure::{sample_key, Sample, VideoFigures, WINDOW};
use genroute_core::request::Request;
use genroute_store::job::{Attempt, Step};
use genroute_store::millis;

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
        // An attempt that never reached the backend is not a sample of it.
        if attempt.not_called().is_some() {
            return;
        }
        let bad = attempt.outcome == BAD_OUTPUT;
        let now = self.clock.now();
        if delivered || bad {
            let video = video_figures(attempt);
            let sample = Sample {
                at_ms: millis(now),
                passed: !bad,
                checked: video.checked,
                latency_ms: attempt.latency_ms,
                flicker: video.flicker.map(genroute_core::num::Fixed::to_f64),
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
pub fn figures(c: &genroute_store::Counters) -> ArmFigures {
    let mut f = ArmFigures::default();
    for (k, v) in c {
        f.set(k, *v);
    }
    f
}

/// The figures of an attempt's delivered video, from its check (`video.*`).
pub fn video_figures(attempt: &Attempt) -> VideoFigures {
    use crate::output::{Frames, Verdict};
    let num = |v: f64| genroute_core::num::Fixed::from_f64_rounded(v).ok();
    let mut v = VideoFigures {
        passed: attempt.check.as_ref().is_none_or(|c| c.passed()),
        checked: attempt
            .check
            .as_ref()
            .is_some_and(|c| c.verdict != Verdict::NotChecked),
        latency: num(attempt.latency_ms as f64 / 1000.0),
        ..VideoFigures::default()
    };
    if let Some(c) = &attempt.check {
        if let Some(f) = &c.facts {
            v.duration = num(f.duration_s);
            v.width = num(f64::from(f.width));
            v.height = num(f64::from(f.height));
            v.fps = num(f.fps);
        }
        if let Some(Frames::Measured(s)) = &c.frames {
            v.flicker = Some(genroute_core::measure::fraction(s.flicker));
            v.black_fraction = Some(genroute_core::measure::fraction(s.black_fraction));
            v.frozen_fraction = Some(genroute_core::measure::fraction(s.frozen_fraction));
        }
    }
    v
}

impl Router {
    /// Whether `execution.quality_retry.when` holds for an attempt's delivered video: the
    /// reason to retry it, or `None`. A condition that fails (a figure not measured) does not
    /// hold, as for a rule.
    pub(super) async fn poor(&self, request: &Request, attempt: &Attempt) -> Option<String> {
        let qr = self.policy.quality_retry.as_ref()?;
        let video = video_figures(attempt);
        let state = match self.state(0).await {
            Ok((s, _)) => s,
            Err(_) => genroute_core::state::State::new(&self.policy, self.clock.now()),
        };
        let mut ctx = genroute_core::decide::context(&self.policy, request, &state);
        ctx.video = Some(&video);
        match qr.program.run(&ctx) {
            Ok(true) => Some(format!(
                "`{}` holds for this video ({})",
                qr.when_text,
                attempt
                    .check
                    .as_ref()
                    .map_or("not checked".to_string(), |c| c.summary())
            )),
            _ => None,
        }
    }
}
