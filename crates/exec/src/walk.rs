//! The walk along a decision's chain, one attempt after another, reporting each step that
//! matters to a [`Progress`], and able to start from the middle: the attempt a dead replica
//! left in progress, at its recorded [`Phase`].
//!
//! **Why one walk for jobs and plain calls.** `genroute generate` and a durable job do the same
//! thing: permit, reserve, mark sent, create, follow the handle, record the outcome, fall
//! back. The job adds only persistence between the steps, so it is a [`Progress`] here (the
//! plain call's is [`NoProgress`]), and a resumed job is a walk whose [`Position`] has an
//! attempt in progress. What the walk does at each phase of a resumed attempt:
//! - `Reserved` (the create call was never sent): release the reservation and redo the step;
//! - `Sent` (sent, but the answer was never recorded): the job may exist and be billed: keep
//!   the reservation in doubt and stop, never submitting it again;
//! - `Created` (the provider's handle is recorded): resume polling it.
//!
//! A [`Progress`] that answers `false` (the job's owner changed: another replica took it over)
//! stops the walk at once, leaving the ledger to that replica.

use std::time::Duration;

use tracing::{info_span, Instrument};

use super::{Attempt, Generation, Router, BAD_OUTPUT, LEDGER_ERROR};
use crate::adapter::{Adapter, Cancel, FailureClass, JobSpec, Outcome, Success, Video};
use crate::output::{self, container, Check, Expect, FrameRun, Frames};
use genroute_core::breaker::BreakerState;
use genroute_core::breaker::{Breaker, BreakerChange};
use genroute_core::num::Fixed;
use genroute_core::policy::FrameChecks;
use genroute_core::request::Request;
use genroute_store::job::{Current, Phase, Step};
use genroute_store::{millis, LedgerError, NewReservation};

/// Where a walk starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Position {
    /// The next step to try, when no attempt is in progress.
    pub next_step: usize,
    /// The attempt in progress.
    pub current: Option<Current>,
    /// The attempts that ended.
    pub attempts: Vec<Attempt>,
}

/// What the walk reports as it goes; `false` stops it (the job is no longer ours).
#[async_trait::async_trait]
pub trait Progress: Send {
    /// An attempt's phase changed (reserved, sent, created).
    async fn current(&mut self, current: &Current) -> bool;
    /// An attempt ended; the next step to try is `next_step`.
    async fn ended(&mut self, attempt: &Attempt, next_step: usize) -> bool;
}

/// The progress of a call nobody records.
#[derive(Debug, Default)]
pub struct NoProgress;

#[async_trait::async_trait]
impl Progress for NoProgress {
    async fn current(&mut self, _: &Current) -> bool {
        true
    }
    async fn ended(&mut self, _: &Attempt, _: usize) -> bool {
        true
    }
}

/// How a walk ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Walked {
    /// The chain was walked (with or without a video).
    Done(Generation),
    /// A resumed attempt's create call had been sent and its answer never recorded: the job
    /// may exist at the provider. Its money stays counted; it is not submitted again.
    InDoubt(Generation),
    /// The progress said stop: another replica holds the job now.
    Lost,
}

fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An attempt record with nothing filled in yet.
fn blank(backend: &str, model: Option<String>) -> Attempt {
    Attempt {
        backend: backend.to_string(),
        model,
        outcome: String::new(),
        latency_ms: 0,
        simulated_seconds: None,
        cost_usd: Fixed::ZERO,
        message: None,
        in_doubt: false,
        check: None,
        kept_video: None,
    }
}

fn skipped(mut a: Attempt, outcome: &str, message: String) -> Attempt {
    a.outcome = outcome.to_string();
    a.message = Some(message);
    a
}

/// Returns the first video a quality retry kept, when there is one: every retry after it
/// was poor too, or failed. Its backend and model are the attempt's.
fn keep_first(out: &mut Generation) -> bool {
    let Some(a) = out.attempts.iter().find(|a| a.kept_video.is_some()) else {
        return false;
    };
    out.backend = Some(a.backend.clone());
    out.model = a.model.clone();
    out.video = a.kept_video.clone();
    out.error = None;
    true
}

/// What a backend's video is checked against: what genroute asked the server for. The
/// request's duration and aspect ratio, unless the backend's `api.parameters` fix them
/// (`size: 720x480`; `seconds`, or `num_frames` with `fps`): a server told to render 49 frames
/// at 8 fps is right to deliver 6.1 s for a 5 s request.
fn expect_of(backend: &genroute_core::policy::Backend, duration_s: f64, aspect: &str) -> Expect {
    use genroute_core::policy::api::{parse_size, Param};
    let mut expect = Expect::new(duration_s, aspect);
    let Some(api) = &backend.api else {
        return expect;
    };
    let param = |name: &str| {
        api.parameters
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    };
    let number = |name: &str| match param(name) {
        Some(Param::Int(n)) => Some(*n as f64),
        Some(Param::Number(x)) => Some(x.to_f64()),
        _ => None,
    };
    if let Some(Param::Text(size)) = param("size") {
        if let Some((w, h)) = parse_size(size) {
            expect.aspect = Some((w, h));
        }
    }
    if let Some(seconds) = number("seconds") {
        expect.duration_s = seconds;
    } else if let (Some(frames), Some(fps)) = (number("num_frames"), number("fps")) {
        if fps > 0.0 {
            expect.duration_s = frames / fps;
        }
    }
    expect
}

/// What one attempt came to.
struct Ended {
    attempt: Attempt,
    video: Option<(Success, String)>,
}

impl Router {
    /// Walks `steps` from `at`, reporting to `progress`.
    pub async fn walk(
        &self,
        request: &Request,
        request_id: &str,
        steps: &[Step],
        at: Position,
        progress: &mut dyn Progress,
    ) -> Walked {
        let mut out = Generation {
            request_id: request_id.to_string(),
            backend: None,
            model: None,
            video: None,
            cost_usd: Fixed::ZERO,
            quality: None,
            attempts: Vec::new(),
            error: None,
            dry_run: false,
        };
        for a in at.attempts {
            out.cost_usd = out.cost_usd.checked_add(a.cost_usd).unwrap_or(out.cost_usd);
            out.attempts.push(a);
        }
        let mut next = at.next_step;
        let mut resumed = at.current;
        while next < steps.len() || resumed.is_some() {
            let (ended, step_index) = match resumed.take() {
                Some(c) => match c.phase {
                    Phase::Reserved => {
                        // Never sent: nothing can have been charged. Redo the step.
                        if let Err(e) = self
                            .store
                            .release(&c.reservation, "not_sent", self.clock.now())
                            .await
                        {
                            tracing::warn!(reservation = %c.reservation, "could not release a reservation that was never sent (it expires on its own): {e}");
                        }
                        next = c.step;
                        continue;
                    }
                    Phase::Sent => {
                        let note = "create_unrecorded";
                        let mut a = blank(&c.backend, c.model.clone());
                        a.outcome = FailureClass::Retryable.as_str().into();
                        a.in_doubt = true;
                        a.cost_usd = c.cost;
                        a.message = Some(
                            "the replica that sent the create call stopped before it recorded the provider's answer; the job may exist, so it is not submitted again".into(),
                        );
                        let recorded = self
                            .store
                            .keep_in_doubt(&c.reservation, note, self.clock.now())
                            .await;
                        let a = self.noted(a, &c.reservation, recorded);
                        out.cost_usd = out.cost_usd.checked_add(a.cost_usd).unwrap_or(out.cost_usd);
                        if !progress.ended(&a, steps.len()).await {
                            return Walked::Lost;
                        }
                        out.attempts.push(a);
                        out.error = Some("the job may exist at the provider, but its answer was lost with the replica that sent it: it is in doubt".into());
                        return Walked::InDoubt(out);
                    }
                    Phase::Created => match steps.get(c.step) {
                        Some(step) => (
                            Box::pin(self.follow(request, request_id, step, &c)).await,
                            c.step,
                        ),
                        None => {
                            tracing::error!(
                                step = c.step,
                                "a job's attempt names a step it does not have"
                            );
                            return Walked::Lost;
                        }
                    },
                },
                None => {
                    let i = next;
                    // Boxed, here and below: a walk in flight holds only the future of the
                    // step it is in (10,000 jobs in flight each hold one).
                    (
                        Box::pin(self.attempt(
                            request,
                            request_id,
                            &steps[i],
                            i,
                            out.attempts.len() as u32 + 1,
                            progress,
                        ))
                        .await,
                        i,
                    )
                }
            };
            let Some(ended) = ended else {
                return Walked::Lost;
            };
            next = step_index + 1;
            let mut attempt = ended.attempt;
            self.record(&steps[step_index], &attempt, ended.video.is_some())
                .await;
            out.cost_usd = out
                .cost_usd
                .checked_add(attempt.cost_usd)
                .unwrap_or(out.cost_usd);
            let rejected = attempt.outcome == FailureClass::ContentRejected.as_str();
            let store_failed = attempt.outcome == LEDGER_ERROR;
            // Quality retry: a delivered video that `when` judges poor is kept (the first
            // one) and the request goes on down its chain, while retries are left.
            // `when` is judged once per video: to retry it while retries and steps are left,
            // or, after a kept one, to tell whether this last video is poor too.
            let kept = out
                .attempts
                .iter()
                .filter(|a| a.kept_video.is_some())
                .count();
            let can_retry = next < steps.len()
                && self
                    .policy
                    .quality_retry
                    .as_ref()
                    .is_some_and(|q| kept < q.max_retries as usize);
            let poor = match &ended.video {
                Some(_) if can_retry || kept > 0 => self.poor(request, &attempt).await,
                _ => None,
            };
            let retry = can_retry && poor.is_some();
            if let (true, Some(why), Some((_, video))) = (retry, &poor, &ended.video) {
                attempt.message = Some(format!("retried for quality: {why}"));
                attempt.kept_video = Some(video.clone());
            }
            let stop = (ended.video.is_some() && !retry)
                || store_failed
                || (rejected && !self.policy.execution.fallback_on_content_rejected);
            if !progress
                .ended(&attempt, if stop { steps.len() } else { next })
                .await
            {
                return Walked::Lost;
            }
            out.attempts.push(attempt);
            if retry {
                continue;
            }
            if let Some((s, video)) = ended.video {
                // The last retry's video, unless it is poor too: then the first one kept.
                if poor.is_some() && keep_first(&mut out) {
                    return Walked::Done(out);
                }
                out.backend = Some(steps[step_index].backend.clone());
                out.model = s.model.clone();
                out.video = Some(video);
                out.quality = s.quality;
                return Walked::Done(out);
            }
            if store_failed {
                out.error = Some(
                    "the ledger store is unavailable, so the walk stopped before calling the backend (fail closed); nothing was spent on it".into(),
                );
                return Walked::Done(out);
            }
            if stop {
                out.error = Some(
                    "the prompt was refused by moderation; execution.on_content_rejected is `stop`"
                        .into(),
                );
                return Walked::Done(out);
            }
        }
        if keep_first(&mut out) {
            return Walked::Done(out);
        }
        out.error = Some("every backend in the chain failed or was unavailable".into());
        Walked::Done(out)
    }

    /// The adapter of a backend, by name.
    pub fn adapter_of(&self, backend: &str) -> Option<&Adapter> {
        let b = self.policy.backend_index(backend)?;
        self.adapters.get(b as usize)?.as_ref().ok()
    }

    /// The adapter's view of an attempt in progress (for a cancel).
    pub fn job_spec_for(&self, request: &Request, request_id: &str, c: &Current) -> JobSpec {
        let step = Step {
            backend: c.backend.clone(),
            model: c.model.clone(),
            cost: c.cost,
            experiment: None,
        };
        let b = self.policy.backend_index(&c.backend).unwrap_or(0);
        self.job_spec(request, request_id, &step, c.attempt, b)
    }

    /// The clock's now.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The adapter's view of a step.
    fn job_spec(
        &self,
        request: &Request,
        request_id: &str,
        step: &Step,
        attempt: u32,
        b: u16,
    ) -> JobSpec {
        let backend = &self.policy.backends[b as usize];
        JobSpec {
            request_id: request_id.to_string(),
            attempt,
            prompt: request.prompt.clone(),
            negative_prompt: request.negative_prompt.clone(),
            duration_seconds: (request.duration.micros() / 1_000_000).clamp(1, 600) as u32,
            aspect_ratio: self
                .policy
                .enum_values(genroute_core::check::expr::EnumId::ASPECT_RATIO)
                .get(request.aspect_ratio as usize)
                .cloned()
                .unwrap_or_else(|| "16:9".into()),
            model: step.model.clone(),
            deadline: Duration::from_micros(backend.max_latency.micros().max(1) as u64),
        }
    }

    /// The backend of a step in the current policy, with its adapter.
    fn resolve(&self, step: &Step) -> Result<(u16, &Adapter), String> {
        let b = self
            .policy
            .backend_index(&step.backend)
            .ok_or_else(|| format!("backend `{}` is no longer in the policy", step.backend))?;
        match &self.adapters[b as usize] {
            Ok(a) => Ok((b, a)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// One attempt from the start: permit, reservation, sent mark, create, follow. `None`
    /// when the progress said stop.
    async fn attempt(
        &self,
        request: &Request,
        request_id: &str,
        step: &Step,
        index: usize,
        number: u32,
        progress: &mut dyn Progress,
    ) -> Option<Ended> {
        let span = info_span!("attempt", backend = %step.backend, cost_usd = step.cost.to_f64(), attempt = number,
                              outcome = tracing::field::Empty, latency_ms = tracing::field::Empty,
                              latency_seconds = tracing::field::Empty, quality_score = tracing::field::Empty);
        let ended = self
            .attempt_inner(request, request_id, step, index, number, progress)
            .instrument(span.clone())
            .await?;
        span.record("outcome", tracing::field::display(&ended.attempt.outcome));
        span.record("latency_ms", ended.attempt.latency_ms);
        span.record("latency_seconds", ended.attempt.latency_ms as f64 / 1000.0);
        if let Some(q) = ended.video.as_ref().and_then(|(s, _)| s.quality) {
            span.record("quality_score", q.to_f64());
        }
        Some(ended)
    }

    async fn attempt_inner(
        &self,
        request: &Request,
        request_id: &str,
        step: &Step,
        index: usize,
        number: u32,
        progress: &mut dyn Progress,
    ) -> Option<Ended> {
        let attempt = blank(&step.backend, step.model.clone());
        let done = |attempt| {
            Some(Ended {
                attempt,
                video: None,
            })
        };
        let (b, adapter) = match self.resolve(step) {
            Ok(x) => x,
            Err(e) => return done(skipped(attempt, "not_configured", e)),
        };
        let backend = &self.policy.backends[b as usize];
        let cfg = backend.breaker;
        let now = self.clock.now();
        let (breaker, admitted) = match self.breaker(b, BreakerChange::Acquire, millis(now)).await {
            Ok(r) => r,
            Err(e) => return done(skipped(attempt, LEDGER_ERROR, e.to_string())),
        };
        if !admitted {
            let why = if breaker.state_at(millis(now), &cfg) == BreakerState::Open {
                "circuit breaker is open"
            } else {
                "circuit breaker refused the call (half-open probes taken)"
            };
            return done(skipped(attempt, "breaker_open", why.into()));
        }
        // From here on the permit is ours: every path hands it back or reports an outcome,
        // except after a store failure. Then the attempt asks nothing more of the store, so
        // that a stalled store costs one deadline, not one per call: what it leaves open
        // settles by itself (an unsent reservation is released at its expiry, a half-open
        // probe slot is reclaimed after the breaker's timeout).
        let budgets = self.budgets(request);
        let reservation = NewReservation {
            request_id: request_id.to_string(),
            backend: step.backend.clone(),
            model: step.model.clone(),
            amount: step.cost,
            ttl_ms: backend.max_latency.micros() / 1000 * 2 + 60_000,
            levels: super::levels::limits(&budgets, &step.backend, now),
            payer: match &request.tenancy {
                Some(t) => genroute_store::Payer {
                    key: Some(t.key.clone()),
                    team: Some(t.team.clone()),
                },
                None => Default::default(),
            },
        };
        let id = match self
            .store
            .reserve(&reservation, self.policy.budget.monthly, now)
            .await
        {
            Ok(id) => id,
            Err(e @ LedgerError::OverBudget { .. }) => {
                self.record_breaker(b, BreakerChange::Neutral).await;
                let why = super::levels::refusal(&e, &budgets, &step.backend, now);
                return done(skipped(attempt, "over_budget", why));
            }
            Err(e) => return done(skipped(attempt, LEDGER_ERROR, e.to_string())),
        };
        let mut current = Current {
            step: index,
            attempt: number,
            backend: step.backend.clone(),
            model: step.model.clone(),
            reservation: id.clone(),
            cost: step.cost,
            phase: Phase::Reserved,
            handle: None,
            started_ms: wall_ms(),
        };
        if !progress.current(&current).await {
            return None;
        }
        // The create call may be billed from the moment it is sent: say so first.
        if let Err(e) = self.store.mark_sent(&id, self.clock.now()).await {
            tracing::warn!(reservation = %id, "a reservation whose call was never sent stays open until its expiry releases it: {e}");
            return done(skipped(attempt, LEDGER_ERROR, e.to_string()));
        }
        current.phase = Phase::Sent;
        current.started_ms = wall_ms();
        if !progress.current(&current).await {
            return None;
        }
        let job = self.job_spec(request, request_id, step, number, b);
        let created = adapter.create(&job, job.deadline).await;
        match created {
            Ok(handle) => {
                current.phase = Phase::Created;
                current.handle = Some(handle);
                if !progress.current(&current).await {
                    return None;
                }
                Box::pin(self.follow(request, request_id, step, &current)).await
            }
            Err(f) => {
                let expect = Expect::new(0.0, "");
                Some(
                    self.settle(b, request_id, attempt, &current, Err(f), &expect)
                        .await,
                )
            }
        }
    }

    /// Follows a created attempt's handle to its outcome, within what is left of its
    /// deadline, and settles it.
    async fn follow(
        &self,
        request: &Request,
        request_id: &str,
        step: &Step,
        c: &Current,
    ) -> Option<Ended> {
        let attempt = blank(&c.backend, c.model.clone());
        let (b, adapter) = match self.resolve(step) {
            Ok(x) => x,
            Err(e) => {
                // The backend left the policy while its job ran: it may still be billed.
                let mut a = skipped(
                    attempt,
                    FailureClass::Retryable.as_str(),
                    format!("{e}; its job may exist at the provider"),
                );
                a.in_doubt = true;
                a.cost_usd = c.cost;
                let recorded = self
                    .store
                    .keep_in_doubt(&c.reservation, "backend_removed", self.clock.now())
                    .await;
                return Some(Ended {
                    attempt: self.noted(a, &c.reservation, recorded),
                    video: None,
                });
            }
        };
        let job = self.job_spec(request, request_id, step, c.attempt, b);
        let elapsed = Duration::from_millis((wall_ms() - c.started_ms).max(0) as u64);
        let left = job.deadline.saturating_sub(elapsed);
        let Some(handle) = &c.handle else {
            return None;
        };
        let mut outcome = adapter.resume(handle, &job, left).await;
        if let Err(f) = &mut outcome {
            if f.deadline {
                // Given up: stop the job at the provider too, so that a self-hosted GPU does
                // not work on for a result nobody reads; the money follows its answer.
                match adapter.cancel(handle, &job).await {
                    Cancel::NothingProduced => {
                        f.in_doubt = false;
                        f.message
                            .push_str("; cancelled at the provider before it started");
                    }
                    Cancel::MaybeProduced => f.message.push_str("; cancelled at the provider"),
                    Cancel::Unsupported => {}
                    Cancel::Failed(e) => f
                        .message
                        .push_str(&format!("; the cancel at the provider failed: {e}")),
                }
            }
        }
        let expect = expect_of(
            &self.policy.backends[b as usize],
            request.duration.to_f64(),
            &job.aspect_ratio,
        );
        Some(Box::pin(self.settle(b, request_id, attempt, c, outcome, &expect)).await)
    }

    /// Saves and checks a delivered video (see [`crate::output`]): the container of bytes in
    /// memory first (a file that is not a video is not saved), then the frames of the saved
    /// file. A URI that genroute does not download is recorded as not checked.
    async fn deliver(
        &self,
        request_id: &str,
        video: &Video,
        expect: &Expect,
    ) -> (Result<String, String>, Check) {
        let checks = self.policy.execution.output_checks;
        let (data, mime) = match video {
            Video::Uri(u) if u.starts_with("sim://") => {
                return (
                    Ok(u.clone()),
                    Check::not_checked("simulated: the backend produced no file"),
                )
            }
            Video::Uri(u) => {
                return (
                    Ok(u.clone()),
                    Check::not_checked("the video was not downloaded"),
                )
            }
            Video::Bytes { data, mime } => (data.clone(), mime.clone()),
        };
        // A file write can stall (a slow or full disk), and the container check reads the
        // file's index: both off the async workers.
        let sink = self.sink.clone();
        let rid = request_id.to_string();
        let enabled = checks.enabled;
        let ran = tokio::task::spawn_blocking(move || {
            let facts = enabled.then(|| container::inspect_bytes(&data));
            if let Some(Err(_)) = &facts {
                return (
                    Err("the video failed its container check".to_string()),
                    facts,
                );
            }
            (sink.store(&rid, &data, &mime), facts)
        })
        .await;
        let (saved, facts) =
            ran.unwrap_or_else(|e| (Err(format!("the save task failed: {e}")), None));
        let Some(facts) = facts else {
            return (
                saved,
                Check::not_checked("output checks are off (`execution.output_checks.enabled`)"),
            );
        };
        let limits = checks.limits();
        let Ok(path) = &saved else {
            return (
                saved.clone(),
                output::judge(
                    facts,
                    Some(Frames::skipped("the video was not saved to a file")),
                    expect,
                    &limits,
                ),
            );
        };
        let run = FrameRun {
            ffmpeg: match checks.frames {
                FrameChecks::Off => None,
                _ => self.ffmpeg.as_deref(),
            },
            skipped: match checks.frames {
                FrameChecks::Off => "`execution.output_checks.frames` is `off`",
                _ => "ffmpeg is not on the PATH",
            },
            timeout: Duration::from_micros(checks.frame_timeout.micros().max(1) as u64),
        };
        let check =
            output::check_frames(facts, std::path::Path::new(path), expect, &limits, run).await;
        (saved, check)
    }

    /// Records an attempt's outcome in the ledger and its breaker; saves and checks its video.
    async fn settle(
        &self,
        b: u16,
        request_id: &str,
        mut attempt: Attempt,
        c: &Current,
        outcome: Outcome,
        expect: &Expect,
    ) -> Ended {
        attempt.latency_ms = (wall_ms() - c.started_ms).max(0) as u64;
        let done = self.clock.now();
        let id = &c.reservation;
        let (recorded, change, video) = match outcome {
            Ok(success) => {
                let (saved, check) = self.deliver(request_id, &success.video, expect).await;
                attempt.cost_usd = c.cost;
                attempt.simulated_seconds = success.simulated_seconds;
                attempt.model = success.model.clone().or(attempt.model);
                if !check.passed() {
                    // The provider finished the job: the money is spent, the backend failed.
                    let recorded = self.store.commit_noted(id, BAD_OUTPUT, done).await;
                    attempt.outcome = BAD_OUTPUT.into();
                    attempt.message = check.reason.clone();
                    attempt.check = Some(check);
                    if let Ok(path) = &saved {
                        // A video that failed its checks is not kept.
                        let _ = tokio::fs::remove_file(path).await;
                    }
                    (recorded, BreakerChange::Failure, None)
                } else {
                    let recorded = self.store.commit(id, done).await;
                    attempt.outcome = "success".into();
                    attempt.check = Some(check);
                    let video = match saved {
                        Ok(v) => Some((success, v)),
                        Err(message) => {
                            // Paid for, but lost locally: keep the spend, report the failure.
                            attempt.message = Some(format!(
                                "the video was generated but could not be saved: {message}"
                            ));
                            None
                        }
                    };
                    (recorded, BreakerChange::Success, video)
                }
            }
            Err(f) => {
                let recorded = if f.in_doubt {
                    attempt.cost_usd = c.cost;
                    self.store.keep_in_doubt(id, f.class.as_str(), done).await
                } else {
                    self.store.release(id, f.class.as_str(), done).await
                };
                attempt.outcome = f.class.as_str().to_string();
                attempt.message = Some(f.message);
                attempt.in_doubt = f.in_doubt;
                // A refusal says nothing about the backend's health: hand the probe back.
                let change = if f.class == FailureClass::ContentRejected {
                    BreakerChange::Neutral
                } else {
                    BreakerChange::Failure
                };
                (recorded, change, None)
            }
        };
        if recorded.is_ok() {
            self.record_breaker(b, change).await;
        }
        Ended {
            attempt: self.noted(attempt, id, recorded),
            video,
        }
    }

    /// Applies a change to backend `b`'s breaker. A change that leaves the breaker as the
    /// state cache last saw it within its TTL (a call admitted, or a success, while closed; a
    /// call refused while open) needs no store round trip: deciding already trusts figures
    /// that old, and nothing is spent on them. Any change that changes something goes to the
    /// store, atomically.
    async fn breaker(
        &self,
        b: u16,
        change: BreakerChange,
        now_ms: i64,
    ) -> Result<(Breaker, bool), LedgerError> {
        let backend = &self.policy.backends[b as usize];
        if let Some(known) = self
            .cache
            .fresh()
            .and_then(|s| s.breakers.get(b as usize).copied())
        {
            let mut next = known;
            let admitted = next.apply(change, now_ms, &backend.breaker);
            if next == known {
                return Ok((next, admitted));
            }
        }
        self.store
            .update_breaker(&backend.name, change, now_ms, backend.breaker)
            .await
    }

    /// Reports a call's verdict to its backend's breaker; a store failure here is logged (the
    /// breaker only misses one data point).
    async fn record_breaker(&self, b: u16, change: BreakerChange) {
        let at = millis(self.clock.now());
        if let Err(e) = self.breaker(b, change, at).await {
            let name = &self.policy.backends[b as usize].name;
            tracing::warn!(backend = %name, "could not record a call's outcome in its breaker: {e}");
        }
    }

    /// Adds to an attempt's message when the ledger could not record its outcome. The money
    /// is still counted: the reservation was marked sent, so it becomes in doubt at expiry.
    fn noted(&self, mut attempt: Attempt, id: &str, recorded: Result<(), LedgerError>) -> Attempt {
        if let Err(e) = recorded {
            tracing::error!(reservation = %id, "the ledger did not record a call's outcome: {e}");
            let note = format!(
                "the ledger did not record this outcome ({e}); reservation `{id}` keeps counting and becomes in doubt at its expiry"
            );
            attempt.message = Some(match attempt.message.take() {
                Some(m) => format!("{m}; {note}"),
                None => note,
            });
        }
        attempt
    }
}
