//! What an ended job's record says (its state, attempts, cost and the answer a client gets),
//! and how clients see a job.
//!
//! **Why one place.** A job ends by its walk, by a request the policy no longer accepts, by
//! nothing being eligible, or by a cancel; each writes the same outcome, and the service, the
//! CLI and the webhooks all show the job the same way ([`public`]).

use serde_json::json;

use super::wall_ms;
use crate::jobs::{Job, JobState, Outcome};
use crate::router::{not_eligible, Generation};
use genroute_core::num::Fixed;
use genroute_store::job::{Attempt, NotCalled};

/// The HTTP status `/v1/generate` answers for a walked generation.
pub fn http_status(g: &Generation) -> u16 {
    if g.video.is_some() {
        200
    } else if g.attempts.is_empty()
        || g.attempts.last().and_then(Attempt::not_called) == Some(NotCalled::StoreError)
    {
        503
    } else {
        502
    }
}

/// A generation rebuilt from a job's record.
pub(super) fn generation(job: &Job) -> Generation {
    let mut g = not_eligible(&job.id);
    g.error = job.error.clone();
    g.attempts = job.attempts.clone();
    g.cost_usd = job
        .attempts
        .iter()
        .fold(Fixed::ZERO, |t, a| t.checked_add(a.cost_usd).unwrap_or(t));
    g
}

pub(super) fn outcome_of(g: &Generation, status: u16) -> Outcome {
    Outcome {
        backend: g.backend.clone(),
        model: g.model.clone(),
        video: g.video.clone(),
        quality: g.quality,
        http_status: status,
        body: serde_json::to_value(g).unwrap_or_default(),
    }
}

/// Marks a job ended with a walked generation.
pub(super) fn end(job: &mut Job, g: &Generation, state: JobState) {
    let now = wall_ms();
    job.state = state;
    job.current = None;
    job.attempts = g.attempts.clone();
    job.cost_usd = g.cost_usd;
    job.error = g.error.clone();
    job.outcome = Some(outcome_of(g, http_status(g)));
    job.finished_ms = Some(now);
    job.updated_ms = now;
    if let Some(w) = job.webhook.as_mut() {
        w.next_at_ms = now;
    }
}

/// A job as clients see it (`GET /v1/jobs/{id}`, webhooks): everything but who holds it.
pub fn public(job: &Job) -> serde_json::Value {
    let mut v = serde_json::to_value(job).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        map.remove("owner");
        map.remove("lease_until_ms");
        map.insert("status".into(), json!(job.state.as_str()));
        if let Some(o) = &job.outcome {
            map.insert("http_status".into(), json!(o.http_status));
            map.insert("result".into(), o.body.clone());
        }
    }
    v
}
