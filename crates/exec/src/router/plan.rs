//! Planning: from a decision to the chain of steps a walk follows, for a decision of the
//! policy, for an explicit target, and for a dry run that only lists them.
//!
//! **Why apart from the walk.** A plan is all a durable job needs to be written before anything
//! is called (its steps are stored with it and a takeover walks them as they were planned, even
//! across a policy reload); the walk then only follows steps.

use tracing::info_span;

use super::{Generation, Router};
use genroute_core::decide::{decide, Decision};
use genroute_core::num::Fixed;
use genroute_core::request::Request;
use genroute_store::job::{Attempt, NotCalled, Step};
use genroute_store::StoreError;

/// Why an explicit target could not be planned.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PlanError {
    /// The store failed (the decision needs its figures).
    #[error(transparent)]
    Store(StoreError),
    /// No backend or model has that name.
    #[error("{0}")]
    UnknownTarget(String),
    /// The target exists but is not eligible (why is in the message).
    #[error("{0}")]
    Ineligible(String),
}

impl Router {
    /// Decides, and lists what would be called, without calling or spending anything.
    pub async fn dry_run(&self, request: &Request) -> Result<Generation, StoreError> {
        let (state, _) = self.state_for(request, 0).await?;
        let decision = self.policy.decide(request, &state);
        let attempts = self
            .chain(&decision)
            .map(|(b, model, cost)| Attempt {
                backend: self.policy.backends[b as usize].name.clone(),
                model,
                outcome: NotCalled::DryRun.as_str().into(),
                latency_ms: 0,
                simulated_seconds: None,
                cost_usd: cost,
                message: match &self.adapters[b as usize] {
                    Ok(a) if a.is_remote() => Some("would call the backend's API".into()),
                    Ok(_) => Some("would run the simulator".into()),
                    Err(e) => Some(e.to_string()),
                },
                in_doubt: false,
                check: None,
                kept_video: None,
            })
            .collect();
        Ok(Generation {
            request_id: uuid::Uuid::new_v4().to_string(),
            backend: decision
                .backend
                .map(|b| self.policy.backends[b as usize].name.clone()),
            model: decision.model.map(str::to_string),
            video: None,
            cost_usd: Fixed::ZERO,
            quality: None,
            attempts,
            error: decision
                .backend
                .is_none()
                .then(|| "no backend is eligible for this request".to_string()),
            dry_run: true,
        })
    }

    /// The chain to walk: (backend, model, expected cost).
    fn chain<'a>(
        &'a self,
        d: &'a Decision<'_>,
    ) -> impl Iterator<Item = (u16, Option<String>, Fixed)> + 'a {
        let first = d.backend.map(|b| (b, d.model.map(str::to_string), d.cost));
        let rest = d.fallbacks.iter().map(|&b| {
            let backend = &self.policy.backends[b as usize];
            (
                b,
                backend.default_model().map(str::to_string),
                backend.cost_of(None),
            )
        });
        first.into_iter().chain(rest)
    }

    /// Decides, and plans the chain to walk. `None` steps when nothing is eligible.
    pub async fn plan(&self, request: &Request, request_id: &str) -> Result<Vec<Step>, StoreError> {
        let (state, _) = self.state_for(request, 0).await?;
        let keyed;
        let request = if request.id.is_none() && self.policy.rules.iter().any(|r| r.split.is_some())
        {
            // A split hashes the request id when its key field is unset.
            keyed = Request {
                id: Some(request_id.to_string()),
                ..request.clone()
            };
            &keyed
        } else {
            request
        };
        let decision = info_span!("decide", request_id = %request_id)
            .in_scope(|| decide(&self.policy, request, &state));
        let experiment = self.experiment_of(&decision);
        Ok(self
            .chain(&decision)
            .enumerate()
            .map(|(i, (b, model, cost))| Step {
                backend: self.policy.backends[b as usize].name.clone(),
                model,
                cost,
                experiment: if i == 0 { experiment.clone() } else { None },
            })
            .collect())
    }

    /// Plans for an explicit target, as a rule's target would be decided: `target` names a
    /// backend, or a model one of the backends lists (the first, in preference order).
    pub async fn plan_target(
        &self,
        request: &Request,
        target: &str,
    ) -> Result<Vec<Step>, PlanError> {
        let policy = &self.policy;
        let by_name = policy.backend_index(target).map(|b| (b, None));
        let by_model = || {
            policy.preference_order().iter().copied().find_map(|b| {
                let backend = &policy.backends[b as usize];
                backend
                    .models
                    .iter()
                    .find(|m| m.id == target)
                    .map(|m| (b, Some(m.id.as_str())))
            })
        };
        let Some((b, model)) = by_name.or_else(by_model) else {
            return Err(PlanError::UnknownTarget(format!(
                "`{target}` is neither a backend nor a model of this policy; leave `model` out (or give `genroute`) to let the policy decide"
            )));
        };
        let (state, _) = self.state_for(request, 0).await.map_err(PlanError::Store)?;
        match genroute_core::decide::decide_target(policy, request, &state, b, model) {
            Ok(d) => Ok(self
                .chain(&d)
                .map(|(b, model, cost)| Step {
                    backend: policy.backends[b as usize].name.clone(),
                    model,
                    cost,
                    experiment: None,
                })
                .collect()),
            Err(why) => {
                let backend = &policy.backends[b as usize];
                let cost = backend.cost_of(model);
                let reasons = genroute_core::explain::reasons(
                    backend,
                    why,
                    cost,
                    policy,
                    &state,
                    Some(request.priority),
                );
                Err(PlanError::Ineligible(format!(
                    "`{target}` cannot serve this request now: {}",
                    reasons.join("; ")
                )))
            }
        }
    }
}
