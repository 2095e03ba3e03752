//! The job runner of one replica: submits jobs, drives the ones it owns along their chain,
//! keeps their leases, takes over jobs whose owner stopped renewing, cancels, delivers
//! webhooks, and gives its jobs up on shutdown.
//!
//! Each job it drives is a task that walks the job's chain ([`crate::walk`]) with a
//! [`Recorder`] as its progress: every step that matters is written to the store before the
//! walk goes on, and a write refused because another replica holds the job now stops the task
//! at once (it settles nothing: the new owner does). A write that fails because the store is
//! down stops the task before a create call (a create whose sending was not recorded could
//! not be resumed), and is tolerated after one (the job is followed to its end, and written
//! again then).
//!
//! Background tasks: leases are renewed every third of the lease; expired leases are claimed
//! every [`Options::scan_every`]; ended jobs older than [`Options::retention`] are removed
//! once an hour.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::webhook;
use super::{in_flight_set, DeliveryState, Job, JobState, Outcome, Webhook};
use crate::adapter::Cancel;
use crate::{
    Attempt, Current, Generation, Phase, Position, Progress, Router, Walked, LEDGER_ERROR,
};
use genroute_core::num::Fixed;
use genroute_core::request::Request;
use genroute_store::{LedgerError, Store};

/// How the runner works.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long a replica holds a job without renewing (default 5 s).
    pub lease: Duration,
    /// How often expired leases are looked for (default 1 s).
    pub scan_every: Duration,
    /// How long ended jobs are kept (default 7 days).
    pub retention: Duration,
    /// Webhook delivery.
    pub webhooks: webhook::Config,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            lease: Duration::from_secs(5),
            scan_every: Duration::from_secs(1),
            retention: Duration::from_secs(7 * 24 * 3600),
            webhooks: webhook::Config::default(),
        }
    }
}

/// A job to submit.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The request.
    pub request: Request,
    /// Where its end state goes.
    pub webhook: Option<String>,
    /// An explicit target (a backend or a model), decided as a rule's target would be.
    pub target: Option<String>,
    /// What a front door was asked, kept with the job.
    pub api: Option<serde_json::Value>,
}

/// Why a job could not be submitted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The explicit target names no backend or model.
    #[error("{0}")]
    UnknownTarget(String),
    /// The replica is shutting down.
    #[error("this replica is shutting down and takes no new jobs; retry on another")]
    ShuttingDown,
    /// The webhook URL was refused.
    #[error("{0}")]
    Webhook(#[from] webhook::Refused),
    /// The caller's key has as many jobs in flight as its limit allows.
    #[error("API key `{key}` has {limit} jobs in flight, its limit (`limits.jobs_in_flight`); wait for one to end")]
    TooManyJobs {
        /// The key's id.
        key: String,
        /// Its limit.
        limit: u32,
        /// Milliseconds until the oldest place would lapse (a hint for `Retry-After`).
        retry_after_ms: i64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] LedgerError),
}

/// A job's request, as the policy reads it, with its caller's tenancy.
fn request_of(
    policy: &genroute_core::Policy,
    job: &Job,
) -> Result<Request, genroute_core::RequestError> {
    let mut request = Request::from_json(policy, &job.request.to_string())?;
    if let Some(t) = &job.tenancy {
        request.set_tenancy(policy, Arc::new(t.clone()))?;
    }
    Ok(request)
}

/// What a cancel did.
#[derive(Debug, Clone, PartialEq)]
pub enum Cancelled {
    /// Cancelled; `money` says what happened to the attempt in progress.
    Done {
        /// The job as it now is.
        job: Box<Job>,
        /// `released` (nothing was or can be billed) or `in_doubt` (kept counted).
        money: &'static str,
    },
    /// It had ended already.
    AlreadyEnded(Box<Job>),
    /// No such job.
    NotFound,
}

/// Where the current router comes from (the server swaps it on a policy reload).
pub type RouterSource = Arc<dyn Fn() -> Arc<Router> + Send + Sync>;

/// Called once for every job this replica ends (for metrics).
pub type OnEnd = Arc<dyn Fn(&Job) + Send + Sync>;

/// The runner.
pub struct Runner {
    me: String,
    store: Arc<dyn Store>,
    router: RouterSource,
    opts: Options,
    running: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    /// One notice per job that someone waits for, fired when it ends here.
    waiters: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
    accepting: AtomicBool,
    on_end: Option<OnEnd>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The HTTP status `/v1/generate` answers for a walked generation.
pub fn http_status(g: &Generation) -> u16 {
    if g.video.is_some() {
        200
    } else if g.attempts.last().is_some_and(|a| a.outcome == LEDGER_ERROR) || g.attempts.is_empty()
    {
        503
    } else {
        502
    }
}

impl Runner {
    /// A runner for this replica (`me` names it in leases and logs).
    pub fn new(
        me: String,
        store: Arc<dyn Store>,
        router: RouterSource,
        opts: Options,
        on_end: Option<OnEnd>,
    ) -> Arc<Runner> {
        Arc::new(Runner {
            me,
            store,
            router,
            opts,
            running: Mutex::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
            accepting: AtomicBool::new(true),
            on_end,
        })
    }

    fn ended(&self, job: &Job) {
        if let Some(f) = &self.on_end {
            f(job);
        }
        self.wake(&job.id);
        if let Some(t) = job
            .tenancy
            .as_ref()
            .filter(|t| t.limits.jobs_in_flight.is_some())
        {
            let (store, set, id) = (self.store.clone(), in_flight_set(&t.key), job.id.clone());
            tokio::spawn(async move {
                if let Err(e) = store.drop_slot(&set, &id).await {
                    tracing::warn!(job = %id, "a job's place among its key's jobs in flight stays until it lapses: {e}");
                }
            });
        }
    }

    /// Wakes whoever waits for job `id`.
    fn wake(&self, id: &str) {
        let waiter = self
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        if let Some(n) = waiter {
            n.notify_waiters();
        }
    }

    /// This replica's name.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The webhook settings.
    pub fn webhooks(&self) -> &webhook::Config {
        &self.opts.webhooks
    }

    fn lease_until(&self) -> i64 {
        wall_ms() + self.opts.lease.as_millis() as i64
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, tokio::task::AbortHandle>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Jobs this replica drives now.
    pub fn in_flight(&self) -> usize {
        self.running().len()
    }

    /// Starts the background tasks (renewal, takeover, retention) on the current runtime.
    pub fn start(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        let every = self.opts.lease / 3;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(50)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { return };
                me.renew().await;
            }
        });
        let me = Arc::downgrade(self);
        let every = self.opts.scan_every;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(50)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut since_purge = Duration::ZERO;
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { return };
                me.take_over().await;
                since_purge += every;
                if since_purge >= Duration::from_secs(3600) {
                    since_purge = Duration::ZERO;
                    let before = wall_ms() - me.opts.retention.as_millis() as i64;
                    match me.store.purge_jobs(before).await {
                        Ok(n) if n > 0 => {
                            tracing::info!(jobs = n, "removed ended jobs past their retention")
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!("could not remove old jobs: {e}"),
                    }
                }
            }
        });
    }

    /// Renews the leases of the jobs this replica drives; stops the ones it lost.
    async fn renew(&self) {
        let ids: Vec<String> = self.running().keys().cloned().collect();
        if ids.is_empty() {
            return;
        }
        match self
            .store
            .renew_jobs(&self.me, &ids, self.lease_until())
            .await
        {
            Ok(lost) => {
                for id in lost {
                    tracing::warn!(job = %id, "another replica holds this job now; it stops here");
                    if let Some(task) = self.running().remove(&id) {
                        task.abort();
                    }
                }
            }
            Err(e) => tracing::warn!("could not renew job leases: {e}"),
        }
    }

    /// Claims jobs whose owner stopped renewing, and resumes them.
    async fn take_over(self: &Arc<Self>) {
        if !self.accepting.load(Ordering::SeqCst) {
            return;
        }
        let now = wall_ms();
        match self
            .store
            .claim_jobs(&self.me, now, self.lease_until(), 16)
            .await
        {
            Ok(jobs) => {
                for job in jobs {
                    tracing::info!(job = %job.id, state = job.state.as_str(), "taking over a job whose owner stopped");
                    self.spawn(job);
                }
            }
            Err(e) => tracing::debug!("could not look for jobs to take over: {e}"),
        }
    }

    /// Accepts a job: plans it, writes it, and starts it.
    pub async fn submit(self: &Arc<Self>, new: NewJob) -> Result<Job, SubmitError> {
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(SubmitError::ShuttingDown);
        }
        if let Some(url) = &new.webhook {
            self.opts.webhooks.check(url)?;
        }
        let router = (self.router)();
        let id = uuid::Uuid::new_v4().to_string();
        let (steps, refused) = match new.target.as_deref().filter(|t| *t != "genroute") {
            None => (router.plan(&new.request, &id).await?, None),
            Some(target) => match router.plan_target(&new.request, target).await {
                Ok(steps) => (steps, None),
                Err(crate::PlanError::Store(e)) => return Err(e.into()),
                Err(crate::PlanError::UnknownTarget(m)) => {
                    return Err(SubmitError::UnknownTarget(m))
                }
                Err(crate::PlanError::Ineligible(m)) => (Vec::new(), Some(m)),
            },
        };
        let webhook = new.webhook;
        let now = wall_ms();
        let tenancy = new.request.tenancy.as_deref().cloned();
        if let Some((t, limit)) = tenancy
            .as_ref()
            .and_then(|t| Some((t, t.limits.jobs_in_flight?)))
        {
            // A place until the longest the job can take (each step's deadline twice, as a
            // reservation's expiry), so that a job whose replicas all died frees it.
            let policy = router.policy();
            let longest: i64 = steps
                .iter()
                .filter_map(|s| policy.backend(policy.backend_index(&s.backend)?))
                .map(|b| b.max_latency.micros() / 1000 * 2 + 60_000)
                .sum();
            if let Some(at) = self
                .store
                .take_slot(
                    &in_flight_set(&t.key),
                    &id,
                    limit,
                    now + longest.max(60_000),
                    now,
                )
                .await?
            {
                return Err(SubmitError::TooManyJobs {
                    key: t.key.clone(),
                    limit,
                    retry_after_ms: (at - now).max(0),
                });
            }
        }
        let mut job = Job {
            id: id.clone(),
            state: JobState::Queued,
            created_ms: now,
            updated_ms: now,
            finished_ms: None,
            request: new.request.to_json(router.policy()),
            steps,
            next_step: 0,
            attempts: Vec::new(),
            current: None,
            cost_usd: Fixed::ZERO,
            outcome: None,
            error: None,
            webhook: webhook.map(|url| Webhook {
                url,
                id: format!("msg_{}", id.replace('-', "")),
                state: DeliveryState::Pending,
                attempts: 0,
                next_at_ms: 0,
                last_error: None,
            }),
            api: new.api,
            tenancy,
            owner: Some(self.me.clone()),
            lease_until_ms: self.lease_until(),
        };
        if job.steps.is_empty() {
            let mut g = crate::not_eligible(&id);
            if refused.is_some() {
                g.error = refused;
            }
            end(&mut job, &g, JobState::Failed);
        }
        if let Err(e) = self.store.create_job(&job).await {
            self.ended(&job);
            return Err(e.into());
        }
        if job.state.is_final() {
            self.ended(&job);
        }
        self.spawn(job.clone());
        Ok(job)
    }

    /// Drives `job` (owned by this replica) in a task of its own.
    fn spawn(self: &Arc<Self>, job: Job) {
        let id = job.id.clone();
        let me = self.clone();
        let mut running = self.running();
        if running.contains_key(&id) {
            return;
        }
        let task = tokio::spawn(async move {
            let id = job.id.clone();
            me.drive(job).await;
            me.running().remove(&id);
            me.wake(&id);
        });
        running.insert(id, task.abort_handle());
    }

    /// Walks a job to its end (or resumes it), then delivers its webhook.
    async fn drive(self: &Arc<Self>, mut job: Job) {
        if !job.state.is_final() {
            let router = (self.router)();
            let request = match request_of(router.policy(), &job) {
                Ok(r) => r,
                Err(e) => {
                    let mut g = crate::not_eligible(&job.id);
                    g.error = Some(format!("the request no longer fits the policy: {e}"));
                    end(&mut job, &g, JobState::Failed);
                    if !self.save_final(&mut job).await {
                        return;
                    }
                    self.ended(&job);
                    return self.deliver(job).await;
                }
            };
            let at = Position {
                next_step: job.next_step,
                current: job.current.clone(),
                attempts: job.attempts.clone(),
            };
            let steps = job.steps.clone();
            let id = job.id.clone();
            let mut recorder = Recorder { runner: self, job };
            let walked = router.walk(&request, &id, &steps, at, &mut recorder).await;
            job = recorder.job;
            match walked {
                Walked::Lost => return,
                Walked::Done(g) => {
                    let state = if g.video.is_some() {
                        JobState::Succeeded
                    } else {
                        JobState::Failed
                    };
                    end(&mut job, &g, state);
                }
                Walked::InDoubt(g) => end(&mut job, &g, JobState::InDoubt),
            }
            if !self.save_final(&mut job).await {
                return;
            }
            self.ended(&job);
        }
        self.deliver(job).await;
    }

    /// Writes an ended job, retrying while the store is down (for as long as this replica
    /// holds the job). False when the job is no longer ours.
    async fn save_final(&self, job: &mut Job) -> bool {
        let mut delay = Duration::from_millis(200);
        loop {
            job.lease_until_ms = self.lease_until();
            match self.store.save_job(job).await {
                Ok(saved) => return saved,
                Err(e) => {
                    tracing::warn!(job = %job.id, "could not write the job's end; retrying: {e}");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Delivers an ended job's webhook, retrying as [`webhook`] says.
    async fn deliver(&self, mut job: Job) {
        while job
            .webhook
            .as_ref()
            .is_some_and(|w| w.state == DeliveryState::Pending)
        {
            let due = job.webhook.as_ref().map_or(0, |w| w.next_at_ms);
            let wait = due - wall_ms();
            if wait > 0 {
                tokio::time::sleep(Duration::from_millis(wait as u64)).await;
            }
            let (Some(hook), Ok(body)) = (job.webhook.clone(), serde_json::to_vec(&public(&job)))
            else {
                return;
            };
            let result = self.opts.webhooks.deliver(&hook, &body).await;
            if let Err(e) = &result {
                tracing::warn!(job = %job.id, "webhook delivery failed: {e}");
            }
            webhook::record(&mut job, result, wall_ms(), self.opts.webhooks.window);
            if !self.save_final(&mut job).await {
                return;
            }
        }
    }

    /// Waits until job `id` has ended (whichever replica drives it), for at most `limit`.
    /// A job driven here wakes its waiter when it ends; one driven elsewhere is read again
    /// at growing intervals (from a second, to thirty).
    pub async fn wait(&self, id: &str, limit: Duration) -> Result<Option<Job>, LedgerError> {
        let result = self.wait_inner(id, limit).await;
        // The last waiter of a job that ended elsewhere takes its notice away.
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        if waiters.get(id).is_some_and(|n| Arc::strong_count(n) == 1) {
            waiters.remove(id);
        }
        result
    }

    async fn wait_inner(&self, id: &str, limit: Duration) -> Result<Option<Job>, LedgerError> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut every = Duration::from_secs(1);
        loop {
            let notice = self
                .waiters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(id.to_string())
                .or_default()
                .clone();
            let woken = notice.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let job = self.store.job(id).await?;
            match &job {
                Some(j) if j.state.is_final() => return Ok(job),
                None => return Ok(None),
                _ => {}
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(job);
            }
            let here = self.running().contains_key(id);
            let nap = if here { Duration::from_secs(30) } else { every };
            let _ = tokio::time::timeout(nap.min(deadline - now), woken).await;
            if !here {
                every = (every * 2).min(Duration::from_secs(30));
            }
        }
    }

    /// Cancels job `id`, wherever it runs: takes it, stops it at the provider where the
    /// protocol allows, and settles its reservation by the provider's answer.
    pub async fn cancel(self: &Arc<Self>, id: &str) -> Result<Cancelled, LedgerError> {
        let Some(mut job) = self
            .store
            .take_job(id, &self.me, self.lease_until())
            .await?
        else {
            return Ok(Cancelled::NotFound);
        };
        if let Some(task) = self.running().remove(id) {
            task.abort();
        }
        if job.state.is_final() {
            return Ok(Cancelled::AlreadyEnded(Box::new(job)));
        }
        let router = (self.router)();
        let now = router.now();
        let mut money = "released";
        if let Some(c) = job.current.take() {
            let verdict = match c.phase {
                Phase::Reserved => Cancel::NothingProduced,
                Phase::Sent => Cancel::Failed("the create call's answer was never recorded".into()),
                Phase::Created => match (
                    router.adapter_of(&c.backend),
                    &c.handle,
                    request_of(router.policy(), &job),
                ) {
                    (Some(a), Some(h), Ok(req)) => {
                        let spec = router.job_spec_for(&req, &job.id, &c);
                        a.cancel(h, &spec).await
                    }
                    _ => Cancel::Failed("the backend is no longer configured".into()),
                },
            };
            let (recorded, note) = match &verdict {
                Cancel::NothingProduced => (self.store.release(&c.reservation, "cancelled", now).await, "cancelled before the provider started it: nothing was billed".to_string()),
                Cancel::MaybeProduced => (self.store.keep_in_doubt(&c.reservation, "cancelled", now).await, "cancelled at the provider after it started: it may be billed, so the money is kept in doubt".to_string()),
                Cancel::Unsupported => (self.store.keep_in_doubt(&c.reservation, "cancelled", now).await, "the provider has no cancel: the job may run on and be billed, so the money is kept in doubt".to_string()),
                Cancel::Failed(e) => (self.store.keep_in_doubt(&c.reservation, "cancelled", now).await, format!("the cancel at the provider failed ({e}): the money is kept in doubt")),
            };
            let in_doubt = !matches!(verdict, Cancel::NothingProduced);
            if in_doubt {
                money = "in_doubt";
            }
            if let Err(e) = &recorded {
                tracing::warn!(job = %id, "the ledger did not record the cancelled attempt (another replica may have settled it): {e}");
            }
            job.attempts.push(Attempt {
                backend: c.backend.clone(),
                model: c.model.clone(),
                outcome: "cancelled".into(),
                latency_ms: (wall_ms() - c.started_ms).max(0) as u64,
                simulated_seconds: None,
                cost_usd: if in_doubt { c.cost } else { Fixed::ZERO },
                message: Some(note),
                in_doubt,
                check: None,
                kept_video: None,
            });
        }
        let mut g = generation(&job);
        g.error = Some("cancelled by the client".into());
        end(&mut job, &g, JobState::Cancelled);
        job.outcome = Some(Outcome {
            http_status: 409,
            ..job.outcome.take().unwrap_or_else(|| outcome_of(&g, 409))
        });
        if !self.save_final(&mut job).await {
            return Ok(Cancelled::NotFound);
        }
        self.ended(&job);
        if job.is_active() {
            let (copy, me) = (job.clone(), self.clone());
            tokio::spawn(async move { me.deliver(copy).await });
        }
        Ok(Cancelled::Done {
            job: Box::new(job),
            money,
        })
    }

    /// Stops taking new jobs (and taking over others'); jobs in flight go on.
    pub fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::SeqCst);
    }

    /// Waits up to `grace` for the jobs in flight, then gives up the leases of those still
    /// running, so that another replica resumes them at once instead of after the lease.
    pub async fn shut_down(&self, grace: Duration) {
        self.stop_accepting();
        let deadline = tokio::time::Instant::now() + grace;
        while self.in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let left: Vec<(String, tokio::task::AbortHandle)> = self.running().drain().collect();
        for (_, task) in &left {
            task.abort();
        }
        let ids: Vec<String> = left.into_iter().map(|(id, _)| id).collect();
        if ids.is_empty() {
            return;
        }
        match self.store.renew_jobs(&self.me, &ids, 0).await {
            Ok(_) => tracing::info!(
                jobs = ids.len(),
                "gave up the leases of jobs still running; another replica resumes them"
            ),
            Err(e) => tracing::warn!("could not give up job leases (they lapse on their own): {e}"),
        }
    }
}

/// A generation rebuilt from a job's record.
fn generation(job: &Job) -> Generation {
    let mut g = crate::not_eligible(&job.id);
    g.error = job.error.clone();
    g.attempts = job.attempts.clone();
    g.cost_usd = job
        .attempts
        .iter()
        .fold(Fixed::ZERO, |t, a| t.checked_add(a.cost_usd).unwrap_or(t));
    g
}

fn outcome_of(g: &Generation, status: u16) -> Outcome {
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
fn end(job: &mut Job, g: &Generation, state: JobState) {
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

/// The progress of a job: every step written to the store before the walk goes on.
struct Recorder<'a> {
    runner: &'a Runner,
    job: Job,
}

impl Recorder<'_> {
    /// Writes the job. `Some(true)` written, `Some(false)` another replica holds it, `None`
    /// the store failed.
    async fn save(&mut self) -> Option<bool> {
        self.job.updated_ms = wall_ms();
        self.job.lease_until_ms = self.runner.lease_until();
        match self.runner.store.save_job(&self.job).await {
            Ok(saved) => Some(saved),
            Err(e) => {
                tracing::warn!(job = %self.job.id, "could not write the job's progress: {e}");
                None
            }
        }
    }
}

#[async_trait::async_trait]
impl Progress for Recorder<'_> {
    async fn current(&mut self, current: &Current) -> bool {
        self.job.state = JobState::Running;
        self.job.current = Some(current.clone());
        if current.phase == Phase::Reserved {
            // Not written: if this replica dies before the sent mark, the reservation was never
            // sent and is released at its expiry, and the record still says the step is to do.
            return true;
        }
        match self.save().await {
            Some(saved) => saved,
            // Before a create call, an unrecorded step could not be resumed: stop, and let
            // the lease lapse (the job is then resumed from what was written). After it, go
            // on: the handle is known here and the end is written again later.
            None => current.phase == Phase::Created,
        }
    }

    async fn ended(&mut self, attempt: &Attempt, next_step: usize) -> bool {
        self.job.current = None;
        self.job.attempts.push(attempt.clone());
        self.job.next_step = next_step;
        self.job.cost_usd = self
            .job
            .cost_usd
            .checked_add(attempt.cost_usd)
            .unwrap_or(self.job.cost_usd);
        if next_step >= self.job.steps.len() {
            // The walk ends here, and the job's end is written next. Were this replica to die
            // in between, the record still names the handle: the next owner follows it to the
            // same end, and the ledger refuses to settle it twice.
            return true;
        }
        self.save().await.unwrap_or(true)
    }
}
