//! Prometheus metrics, with the seed report's names (§6.3) under a configurable prefix
//! (default `videogen`).
//!
//! Besides the exported series, this keeps a short in-process window of recent outcomes per
//! backend for `GET /v1/backends` (success rate and latency of the last 100 calls).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts,
    Registry, TextEncoder,
};

use genroute_core::breaker::BreakerState;
use genroute_core::num::Fixed;
use genroute_core::policy::Policy;
use genroute_exec::jobs::Job;
use genroute_exec::Generation;

/// The generation an ended job's record holds (its outcome's body): what the metrics record,
/// and what `/v1/generate` answers.
pub(crate) fn generation_of(job: &Job) -> Option<Generation> {
    job.outcome
        .as_ref()
        .and_then(|o| serde_json::from_value(o.body.clone()).ok())
}

/// How many recent calls per backend `/v1/backends` summarises.
pub const WINDOW: usize = 100;

/// All metrics of one server.
pub struct Metrics {
    registry: Registry,
    monthly_spend: Gauge,
    utilization: Gauge,
    cost_per_video: HistogramVec,
    latency: HistogramVec,
    success_rate: GaugeVec,
    breaker_state: GaugeVec,
    quality: HistogramVec,
    requests: IntCounterVec,
    attempts: IntCounterVec,
    fallbacks: IntCounterVec,
    reload_failures: IntCounter,
    reloads: IntCounter,
    policy_ok: Gauge,
    store_up: Gauge,
    store_latency: Gauge,
    measured_pass_rate: GaugeVec,
    measured_latency: GaugeVec,
    experiment_rolled_back: GaugeVec,
    team_requests: IntCounterVec,
    team_cost: prometheus::CounterVec,
    auth_refused: IntCounterVec,
    rate_limited: IntCounterVec,
    recent: Mutex<HashMap<String, VecDeque<(bool, u64)>>>,
}

/// Recent figures for one backend.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Recent {
    /// Calls in the window.
    pub calls: usize,
    /// Share that succeeded, 0 to 1 (`null` with no calls).
    pub success_rate: Option<f64>,
    /// Mean wall-clock latency in milliseconds.
    pub mean_latency_ms: Option<f64>,
}

fn buckets(v: &[f64]) -> Vec<f64> {
    v.to_vec()
}

impl Metrics {
    /// Creates the metrics with names `<prefix>_…`.
    pub fn new(prefix: &str) -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let name = |n: &str| format!("{prefix}_{n}");
        let monthly_spend = Gauge::with_opts(Opts::new(
            name("monthly_spend_usd"),
            "Spend this month (committed + in doubt), USD",
        ))?;
        let utilization = Gauge::with_opts(Opts::new(
            name("budget_utilization_percent"),
            "Monthly spend as a share of the budget, 0-100",
        ))?;
        let cost_per_video = HistogramVec::new(
            HistogramOpts::new(
                name("cost_per_video_usd"),
                "Cost of each generated video, USD",
            )
            .buckets(buckets(&[
                0.01, 0.02, 0.03, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0,
            ])),
            &["backend"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                name("generation_latency_seconds"),
                "Wall-clock time of each backend call",
            )
            .buckets(buckets(&[
                0.005, 0.05, 0.25, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0,
            ])),
            &["backend"],
        )?;
        let success_rate = GaugeVec::new(
            Opts::new(
                name("backend_success_rate"),
                "Share of the last 100 calls that succeeded, 0-1",
            ),
            &["backend"],
        )?;
        let breaker_state = GaugeVec::new(
            Opts::new(
                name("circuit_breaker_state"),
                "0 closed, 1 half-open, 2 open",
            ),
            &["backend"],
        )?;
        let quality = HistogramVec::new(
            HistogramOpts::new(
                name("quality_score"),
                "Quality score of each generated video",
            )
            .buckets(buckets(&[0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0])),
            &["backend"],
        )?;
        let requests = IntCounterVec::new(
            Opts::new(
                name("requests_total"),
                "Generation requests, by serving backend and priority",
            ),
            &["backend", "priority"],
        )?;
        let attempts = IntCounterVec::new(
            Opts::new(
                name("attempts_total"),
                "Attempts on a backend, by outcome (success, bad_output, retryable, over_budget, ...)",
            ),
            &["backend", "outcome"],
        )?;
        let fallbacks = IntCounterVec::new(
            Opts::new(
                name("fallback_count"),
                "Moves from a failed backend to the next",
            ),
            &["from", "to"],
        )?;
        let reload_failures = IntCounter::with_opts(Opts::new(
            name("policy_reload_failures_total"),
            "Policy reloads refused because the new file was invalid",
        ))?;
        let reloads = IntCounter::with_opts(Opts::new(
            name("policy_reloads_total"),
            "Policy reloads that replaced the policy",
        ))?;
        let policy_ok = Gauge::with_opts(Opts::new(
            name("policy_reload_ok"),
            "1 if the last policy reload succeeded, 0 if it failed",
        ))?;
        policy_ok.set(1.0);
        let store_up = Gauge::with_opts(Opts::new(
            name("ledger_store_up"),
            "1 if the store's last call succeeded and calls are not failing fast, else 0",
        ))?;
        let store_latency = Gauge::with_opts(Opts::new(
            name("ledger_store_latency_seconds"),
            "Time of the store's last call that reached it",
        ))?;
        let measured_pass_rate = GaugeVec::new(
            Opts::new(
                name("measured_pass_rate"),
                "Share of the backend's recent checked videos that passed the output checks, 0-1",
            ),
            &["backend"],
        )?;
        let measured_latency = GaugeVec::new(
            Opts::new(
                name("measured_latency_p50_seconds"),
                "Median measured seconds from create call to downloaded video, recent videos",
            ),
            &["backend"],
        )?;
        let experiment_rolled_back = GaugeVec::new(
            Opts::new(
                name("experiment_rolled_back"),
                "1 once the experiment's rollback rule held (its arms draw nothing), else 0",
            ),
            &["experiment"],
        )?;
        // Team labels come from the tenants file (one series per team it names, `other`
        // for a team it no longer names): never a key's id or secret.
        let team_requests = IntCounterVec::new(
            Opts::new(
                name("team_requests_total"),
                "Generation requests by the caller's team, by outcome (success, failure)",
            ),
            &["team", "outcome"],
        )?;
        let team_cost = prometheus::CounterVec::new(
            Opts::new(
                name("team_cost_usd_total"),
                "Money committed or kept in doubt for the team's generations, USD (this replica's)",
            ),
            &["team"],
        )?;
        let auth_refused = IntCounterVec::new(
            Opts::new(
                name("auth_refused_total"),
                "Requests refused for their API key: missing_key, malformed_key, unknown_key, revoked_key, missing_scope",
            ),
            &["reason"],
        )?;
        let rate_limited = IntCounterVec::new(
            Opts::new(
                name("rate_limited_total"),
                "Requests refused with 429 for their key's requests_per_minute, by team",
            ),
            &["team"],
        )?;
        for c in [
            Box::new(team_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(team_cost.clone()),
            Box::new(auth_refused.clone()),
            Box::new(rate_limited.clone()),
            Box::new(measured_pass_rate.clone()),
            Box::new(measured_latency.clone()),
            Box::new(experiment_rolled_back.clone()),
            Box::new(monthly_spend.clone()),
            Box::new(utilization.clone()),
            Box::new(cost_per_video.clone()),
            Box::new(latency.clone()),
            Box::new(success_rate.clone()),
            Box::new(breaker_state.clone()),
            Box::new(quality.clone()),
            Box::new(requests.clone()),
            Box::new(attempts.clone()),
            Box::new(fallbacks.clone()),
            Box::new(reload_failures.clone()),
            Box::new(reloads.clone()),
            Box::new(policy_ok.clone()),
            Box::new(store_up.clone()),
            Box::new(store_latency.clone()),
        ] {
            registry.register(c)?;
        }
        Ok(Metrics {
            registry,
            monthly_spend,
            utilization,
            cost_per_video,
            latency,
            success_rate,
            breaker_state,
            quality,
            requests,
            attempts,
            fallbacks,
            reload_failures,
            reloads,
            policy_ok,
            store_up,
            store_latency,
            measured_pass_rate,
            measured_latency,
            experiment_rolled_back,
            team_requests,
            team_cost,
            auth_refused,
            rate_limited,
            recent: Mutex::new(HashMap::new()),
        })
    }

    /// Records a finished generation of `team` (a label from the tenants file).
    pub fn team(&self, team: &str, g: &Generation) {
        let outcome = if g.video.is_some() {
            "success"
        } else {
            "failure"
        };
        self.team_requests.with_label_values(&[team, outcome]).inc();
        self.team_cost
            .with_label_values(&[team])
            .inc_by(g.cost_usd.to_f64().max(0.0));
    }

    /// Counts a request refused for its key (`reason`: an [`genroute_core::tenant::AuthError`] code
    /// or `missing_scope`).
    pub fn auth_refused(&self, reason: &str) {
        self.auth_refused.with_label_values(&[reason]).inc();
    }

    /// Counts a request refused for its key's rate limit.
    pub fn rate_limited(&self, team: &str) {
        self.rate_limited.with_label_values(&[team]).inc();
    }

    /// Records an ended job (once, by the replica that ended it): its generation, by priority
    /// (the request's, else the policy's default), and by `team` when it has one.
    pub fn record_job(&self, policy: &Policy, job: &Job, team: Option<String>) {
        let Some(g) = generation_of(job) else { return };
        if let Some(team) = team {
            self.team(&team, &g);
        }
        let priority = job
            .request
            .get("priority")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| {
                policy
                    .enum_values(genroute_core::check::expr::EnumId::PRIORITY)
                    .get(policy.defaults.priority as usize)
                    .cloned()
                    .unwrap_or_default()
            });
        self.record(&g, &priority);
    }

    /// Records a finished generation.
    pub fn record(&self, g: &Generation, priority: &str) {
        let served = g.backend.as_deref().unwrap_or("none");
        self.requests.with_label_values(&[served, priority]).inc();
        let called: Vec<_> = g
            .attempts
            .iter()
            .filter(|a| a.latency_ms > 0 || a.outcome == "success")
            .collect();
        for a in &g.attempts {
            self.attempts
                .with_label_values(&[a.backend.as_str(), a.outcome.as_str()])
                .inc();
        }
        for pair in g.attempts.windows(2) {
            self.fallbacks
                .with_label_values(&[pair[0].backend.as_str(), pair[1].backend.as_str()])
                .inc();
        }
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        for a in called {
            let ok = a.outcome == "success";
            self.latency
                .with_label_values(&[a.backend.as_str()])
                .observe(a.latency_ms as f64 / 1000.0);
            let window = recent.entry(a.backend.clone()).or_default();
            window.push_back((ok, a.latency_ms));
            if window.len() > WINDOW {
                window.pop_front();
            }
            let rate = window.iter().filter(|(ok, _)| *ok).count() as f64 / window.len() as f64;
            self.success_rate
                .with_label_values(&[a.backend.as_str()])
                .set(rate);
            if ok {
                self.cost_per_video
                    .with_label_values(&[a.backend.as_str()])
                    .observe(a.cost_usd.to_f64());
            }
        }
        if let (Some(b), Some(q)) = (&g.backend, g.quality) {
            self.quality
                .with_label_values(&[b.as_str()])
                .observe(q.to_f64());
        }
    }

    /// Recent success rate and latency of a backend.
    pub fn recent(&self, backend: &str) -> Recent {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        match recent.get(backend) {
            Some(w) if !w.is_empty() => Recent {
                calls: w.len(),
                success_rate: Some(w.iter().filter(|(ok, _)| *ok).count() as f64 / w.len() as f64),
                mean_latency_ms: Some(
                    w.iter().map(|(_, l)| *l as f64).sum::<f64>() / w.len() as f64,
                ),
            },
            _ => Recent {
                calls: 0,
                success_rate: None,
                mean_latency_ms: None,
            },
        }
    }

    /// Updates the budget gauges.
    pub fn budget(&self, spent: Fixed, budget: Fixed) {
        self.monthly_spend.set(spent.to_f64());
        let pct = if budget > Fixed::ZERO {
            spent.to_f64() / budget.to_f64() * 100.0
        } else {
            0.0
        };
        self.utilization.set(pct);
    }

    /// Updates a breaker gauge.
    pub fn breaker(&self, backend: &str, state: BreakerState) {
        let v = match state {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        };
        self.breaker_state.with_label_values(&[backend]).set(v);
    }

    /// Updates a backend's measured gauges (a figure with no data leaves its gauge out).
    pub fn measured(&self, backend: &str, m: &genroute_core::measure::Measured) {
        if let Some(p) = m.pass_rate {
            self.measured_pass_rate
                .with_label_values(&[backend])
                .set(p.to_f64());
        }
        if let Some(l) = m.latency_p50 {
            self.measured_latency
                .with_label_values(&[backend])
                .set(l.to_f64());
        }
    }

    /// Updates an experiment's gauge.
    pub fn experiment(&self, name: &str, rolled_back: bool) {
        self.experiment_rolled_back
            .with_label_values(&[name])
            .set(if rolled_back { 1.0 } else { 0.0 });
    }

    /// Updates the store's gauges.
    pub fn store(&self, h: &genroute_store::guard::Health) {
        self.store_up.set(if h.ok { 1.0 } else { 0.0 });
        if let Some(ms) = h.latency_ms {
            self.store_latency.set(ms / 1000.0);
        }
    }

    /// Records a reload attempt.
    pub fn reload(&self, ok: bool) {
        self.policy_ok.set(if ok { 1.0 } else { 0.0 });
        if ok {
            self.reloads.inc();
        } else {
            self.reload_failures.inc();
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
