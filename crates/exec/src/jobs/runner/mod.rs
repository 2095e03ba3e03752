//! The job runner of one replica: submits jobs, drives the ones it owns along their chain,
//! keeps their leases, takes over jobs whose owner stopped renewing, cancels, delivers
//! webhooks, and gives its jobs up on shutdown.
//!
//! Each job it drives is a task that walks the job's chain ([`crate::walk`]) with a
//! `Recorder` as its progress: every step that matters is written to the store before the
//! walk goes on, and a write refused because another replica holds the job now stops the task
//! at once (it settles nothing: the new owner does). A write that fails because the store is
//! down stops the task before a create call (a create whose sending was not recorded could
//! not be resumed), and is tolerated after one (the job is followed to its end, and written
//! again then).
//!
//! Background tasks: leases are renewed every third of the lease; expired leases are claimed
//! every [`Options::scan_every`]; ended jobs older than [`Options::retention`] are removed
//! once an hour.
//!
//! The runner is in five files: this one, the runner and the life of the jobs it drives
//! (the background tasks, a job's task, its end and webhook, waiting for it); `submit`,
//! accepting a job; `cancel`, cancelling one wherever it runs; `progress`, the
//! [`Progress`](crate::walk::Progress) that writes a job's steps; `outcome`, what an ended
//! job's record says and how clients see it.

mod cancel;
mod outcome;
mod progress;
mod submit;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::webhook;
use super::{in_flight_set, DeliveryState, Job, JobState};
use crate::router::walk::{Position, Walked};
use crate::router::{not_eligible, Router};
pub use cancel::Cancelled;
use genroute_core::request::Request;
use genroute_store::{Store, StoreError};
use outcome::end;
pub use outcome::{http_status, public};
use progress::Recorder;
pub use submit::{NewJob, SubmitError};

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
                    let mut g = not_eligible(&job.id);
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
    pub async fn wait(&self, id: &str, limit: Duration) -> Result<Option<Job>, StoreError> {
        let result = self.wait_inner(id, limit).await;
        // The last waiter of a job that ended elsewhere takes its notice away.
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        if waiters.get(id).is_some_and(|n| Arc::strong_count(n) == 1) {
            waiters.remove(id);
        }
        result
    }

    async fn wait_inner(&self, id: &str, limit: Duration) -> Result<Option<Job>, StoreError> {
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
