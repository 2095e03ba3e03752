//! `genroute simulate`: replays a month of requests through the real decision engine, real
//! circuit breakers and an exact in-memory budget, with each backend's outcome drawn from its
//! configured latency, failure rate and quality (its `simulation:` block, for any backend
//! type; without one, calls never fail and take the average latency).
//!
//! Time is simulated: requests carry their own timestamps, breakers see those timestamps, and
//! nothing sleeps, so a million requests take seconds. Requests are replayed one after
//! another; overlapping calls are not modelled.

mod experiments;
pub mod html;

pub use experiments::{ArmReport, ExperimentReport};

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, Utc};
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::adapter::simulated::Simulated;
use genroute_core::breaker::Breaker;
use genroute_core::breaker::BreakerState;
use genroute_core::decide::decide;
use genroute_core::num::Fixed;
use genroute_core::policy::Policy;
use genroute_core::request::Request;
use genroute_core::state::{month_start, State};
use genroute_store::{admits, Month};

/// One request of a workload.
#[derive(Debug, Clone)]
pub struct Item {
    /// When it arrives.
    pub at: DateTime<Utc>,
    /// The request.
    pub request: Request,
}

/// Per-backend figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BackendStats {
    /// Calls made to it.
    pub requests: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Videos it produced.
    pub successes: u64,
    /// Times it served as a fallback (after another backend failed or was skipped).
    pub fallbacks: u64,
    /// Delivered videos that failed their output checks (`simulation.pass_rate`): spent,
    /// counted as failures, fallen back from.
    pub bad_outputs: u64,
    /// Money spent on it.
    pub spend_usd: Fixed,
    /// Mean quality of its videos.
    pub avg_quality: Option<f64>,
    /// Median simulated latency, seconds.
    pub p50_latency_s: Option<f64>,
    /// 95th percentile simulated latency, seconds.
    pub p95_latency_s: Option<f64>,
    #[serde(skip)]
    latencies: Vec<f32>,
    #[serde(skip)]
    quality_sum: f64,
}

/// How often requests moved from one backend of their chain to the next one: `from` failed
/// (or was skipped: its breaker open, or the budget could not admit its cost) and `to` was
/// called next. Summed over `from`, the counts of a `to` are its [`BackendStats::fallbacks`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    /// The backend that failed or was skipped.
    pub from: String,
    /// The backend called after it.
    pub to: String,
    /// Requests that moved.
    pub count: u64,
}

/// The result of a simulation.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Month simulated.
    pub month: String,
    /// Requests replayed.
    pub requests: u64,
    /// Requests that got a video.
    pub served: u64,
    /// Requests no backend could serve.
    pub unserved: u64,
    /// Total spend.
    pub total_usd: Fixed,
    /// The monthly budget.
    pub budget_usd: Fixed,
    /// The day of the month the cost threshold was crossed, if it was.
    pub threshold_crossed_day: Option<u32>,
    /// Per backend, by name.
    pub backends: BTreeMap<String, BackendStats>,
    /// Cumulative spend at the end of each day.
    pub daily_spend: Vec<Fixed>,
    /// Each experiment's month: its arms' figures and when it rolled back.
    pub experiments: Vec<ExperimentReport>,
    /// Moves between backends, most frequent first (then by name).
    pub fallbacks: Vec<Transition>,
}

/// Replays `items` (in time order) through `policy`.
pub fn simulate(
    policy: &Policy,
    items: &[Item],
    seed: u64,
    month: Month,
    progress: &dyn Fn(u64),
) -> Report {
    let sims: Vec<Simulated> = policy
        .backends
        .iter()
        .map(|b| Simulated::with_seed(b, seed))
        .collect();
    let mut breakers = vec![Breaker::default(); policy.backends.len()];
    let mut stats: Vec<BackendStats> = vec![BackendStats::default(); policy.backends.len()];
    let start = month_start(month.year, month.month);
    let days = days_in(month);
    let mut daily = vec![Fixed::ZERO; days as usize];
    let mut moves: BTreeMap<(u16, u16), u64> = BTreeMap::new();
    let (mut spend, mut served, mut crossed) = (Fixed::ZERO, 0u64, None);
    let mut tracker = experiments::Tracker::new(policy, items.len() as u64);
    let splits = policy.rules.iter().any(|r| r.split.is_some());
    for (n, item) in items.iter().enumerate() {
        if n % 65_536 == 0 {
            progress(n as u64);
        }
        let now = item.at;
        let now_ms = now.timestamp_millis();
        let mut state = State::new(policy, now).with_spend(spend);
        for (i, b) in breakers.iter().enumerate() {
            state.breakers[i] = b.state_at(now_ms, &policy.backends[i].breaker);
        }
        state.measured = tracker.measured(n as u64).to_vec();
        state.rolled_back = tracker.rolled_back();
        let keyed;
        let request = if splits && item.request.id.is_none() {
            // A split hashes the request id: the workload position stands for it.
            keyed = Request {
                id: Some(format!("sim-{n}")),
                ..item.request.clone()
            };
            &keyed
        } else {
            &item.request
        };
        let d = decide(policy, request, &state);
        let day_of_month = now.day();
        // The experiment whose split drew the first step, and the drawn arm.
        let drawn = d.rule.zip(d.arm).and_then(|(r, a)| {
            let split = policy.rules[r as usize].split.as_ref()?;
            split.experiment.map(|(e, _)| (e as usize, a as usize))
        });
        let chain = d
            .backend
            .map(|b| (b, d.model.map(str::to_string), d.cost))
            .into_iter()
            .chain(d.fallbacks.iter().map(|&b| {
                let backend = &policy.backends[b as usize];
                (
                    b,
                    backend.default_model().map(str::to_string),
                    backend.cost_of(None),
                )
            }));
        let mut got = false;
        // The chain element before this one: the backend whose failure or skip moved the
        // request here.
        let mut previous: Option<u16> = None;
        for (position, (b, _model, cost)) in chain.enumerate() {
            let i = b as usize;
            let from = previous.replace(b);
            let cfg = policy.backends[i].breaker;
            if breakers[i].state_at(now_ms, &cfg) == BreakerState::Open
                || admits(spend, cost, policy.budget.monthly).is_err()
            {
                continue;
            }
            if breakers[i].try_acquire(now_ms, &cfg).is_err() {
                continue;
            }
            let draw = sims[i].draw(&n.to_string(), position as u32 + 1);
            let s = &mut stats[i];
            s.requests += 1;
            if position > 0 {
                s.fallbacks += 1;
            }
            if let Some(from) = from {
                *moves.entry((from, b)).or_default() += 1;
            }
            s.latencies.push(draw.latency as f32);
            let latency_ms = (draw.latency * 1000.0) as u64;
            if position == 0 {
                if let Some((e, arm)) = drawn {
                    let sample = genroute_core::experiment::ArmSample {
                        delivered: draw.failure.is_none(),
                        passed: draw.failure.is_none() && draw.passes,
                        latency_ms,
                        cost: if draw.failure.is_none() {
                            cost
                        } else {
                            Fixed::ZERO
                        },
                    };
                    tracker.arm_sample(policy, e, arm, &sample, n as u64 + 1, day_of_month, now_ms);
                }
            }
            if draw.failure.is_none() {
                tracker.delivered(
                    i,
                    genroute_core::measure::Sample {
                        at_ms: now_ms,
                        passed: draw.passes,
                        checked: true,
                        latency_ms,
                        flicker: None,
                    },
                );
            }
            match draw.failure {
                // A bad video: the provider finished the job, so it is spent; it counts as a
                // failure and the request falls back.
                None if !draw.passes => {
                    breakers[i].on_failure(now_ms, &cfg);
                    spend = spend.checked_add(cost).unwrap_or(spend);
                    s.spend_usd = s.spend_usd.checked_add(cost).unwrap_or(s.spend_usd);
                    s.failures += 1;
                    s.bad_outputs += 1;
                }
                None => {
                    breakers[i].on_success(now_ms, &cfg);
                    spend = spend.checked_add(cost).unwrap_or(spend);
                    s.spend_usd = s.spend_usd.checked_add(cost).unwrap_or(s.spend_usd);
                    s.successes += 1;
                    s.quality_sum += policy.backends[i].quality.to_f64();
                    got = true;
                    break;
                }
                Some(crate::adapter::FailureClass::ContentRejected) => {
                    breakers[i].on_neutral();
                    s.failures += 1;
                    if !policy.execution.fallback_on_content_rejected {
                        break;
                    }
                }
                Some(_) => {
                    breakers[i].on_failure(now_ms, &cfg);
                    s.failures += 1;
                }
            }
        }
        served += u64::from(got);
        let day = (now - start).num_days().clamp(0, i64::from(days) - 1) as usize;
        daily[day] = spend;
        if crossed.is_none()
            && spend >= policy.budget.threshold
            && policy.budget.threshold > Fixed::ZERO
        {
            crossed = Some(now.day());
        }
    }
    progress(items.len() as u64);
    for i in 1..daily.len() {
        if daily[i] < daily[i - 1] {
            daily[i] = daily[i - 1];
        }
    }
    let backends = policy
        .backends
        .iter()
        .zip(stats)
        .map(|(b, mut s)| {
            s.latencies.sort_by(|a, b| a.total_cmp(b));
            let pct = |p: f64| {
                s.latencies
                    .get(((s.latencies.len() as f64 - 1.0) * p).round() as usize)
                    .map(|v| *v as f64)
            };
            s.p50_latency_s = pct(0.5);
            s.p95_latency_s = pct(0.95);
            s.avg_quality = (s.successes > 0).then(|| s.quality_sum / s.successes as f64);
            (b.name.clone(), s)
        })
        .collect();
    let name = |b: u16| policy.backends[b as usize].name.clone();
    let mut fallbacks: Vec<Transition> = moves
        .into_iter()
        .map(|((from, to), count)| Transition {
            from: name(from),
            to: name(to),
            count,
        })
        .collect();
    fallbacks.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| (&a.from, &a.to).cmp(&(&b.from, &b.to)))
    });
    Report {
        month: month.to_string(),
        requests: items.len() as u64,
        served,
        unserved: items.len() as u64 - served,
        total_usd: spend,
        budget_usd: policy.budget.monthly,
        threshold_crossed_day: crossed,
        backends,
        daily_spend: daily,
        experiments: tracker.report(policy),
        fallbacks,
    }
}

/// Days in a month.
pub fn days_in(month: Month) -> u32 {
    let start = month_start(month.year, month.month);
    let (y, m) = if month.month == 12 {
        (month.year + 1, 1)
    } else {
        (month.year, month.month + 1)
    };
    (month_start(y, m) - start).num_days() as u32
}

/// A workload from a mix: `count` requests with priorities in the given shares, spread
/// evenly over the month with a seeded jitter.
pub fn generate(
    policy: &Policy,
    count: u64,
    mix: &[(String, f64)],
    month: Month,
    seed: u64,
) -> Result<Vec<Item>, String> {
    let total: f64 = mix.iter().map(|(_, w)| w).sum();
    if total <= 0.0 {
        return Err("the mix has no positive share".into());
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let start = month_start(month.year, month.month);
    let span = Duration::days(i64::from(days_in(month))).num_seconds() as f64;
    let mut items = Vec::with_capacity(count as usize);
    let mut quotas: Vec<u64> = mix
        .iter()
        .map(|(_, w)| (w / total * count as f64).round() as u64)
        .collect();
    let mut order: Vec<usize> = Vec::with_capacity(count as usize);
    for (k, q) in quotas.iter_mut().enumerate() {
        order.extend(std::iter::repeat_n(k, *q as usize));
    }
    order.truncate(count as usize);
    while (order.len() as u64) < count {
        order.push(0);
    }
    for i in (1..order.len()).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    for (n, k) in order.into_iter().enumerate() {
        let slot = (n as f64 + rng.random_range(0.0..1.0)) / count as f64;
        let at = start + Duration::seconds((slot * span) as i64);
        let mut body = serde_json::Map::new();
        body.insert("priority".into(), mix[k].0.clone().into());
        let request = Request::from_map(policy, body).map_err(|e| e.to_string())?;
        items.push(Item { at, request });
    }
    Ok(items)
}

/// Savings of `report` against `baseline`: the amount and the percentage of the baseline.
pub fn savings(baseline: &Report, report: &Report) -> (Fixed, f64) {
    let saved = baseline
        .total_usd
        .checked_sub(report.total_usd)
        .unwrap_or(Fixed::ZERO);
    let pct = if baseline.total_usd > Fixed::ZERO {
        saved.to_f64() / baseline.total_usd.to_f64() * 100.0
    } else {
        0.0
    };
    (saved, pct)
}

/// The text report.
pub fn text(report: &Report, baseline: Option<&Report>) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "month {}: {} requests, {} served, {} unserved",
        report.month, report.requests, report.served, report.unserved
    );
    let _ = writeln!(
        o,
        "{:<12} {:>8} {:>8} {:>9} {:>8} {:>12} {:>8} {:>8} {:>8}",
        "backend", "calls", "failures", "fallbacks", "videos", "spend", "quality", "p50 s", "p95 s"
    );
    for (name, s) in &report.backends {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.2}"));
        let _ = writeln!(
            o,
            "{name:<12} {:>8} {:>8} {:>9} {:>8} {:>12} {:>8} {:>8} {:>8}",
            s.requests,
            s.failures,
            s.fallbacks,
            s.successes,
            s.spend_usd.to_string(),
            f(s.avg_quality),
            f(s.p50_latency_s),
            f(s.p95_latency_s)
        );
    }
    let _ = writeln!(
        o,
        "total {} of a {} budget",
        report.total_usd, report.budget_usd
    );
    match report.threshold_crossed_day {
        Some(d) => {
            let _ = writeln!(o, "cost threshold crossed on day {d}");
        }
        None => {
            let _ = writeln!(o, "cost threshold not crossed");
        }
    }
    if let Some(b) = baseline {
        let (saved, pct) = savings(b, report);
        let _ = writeln!(o, "baseline {}: savings {saved} ({pct:.1}%)", b.total_usd);
    }
    for e in &report.experiments {
        match (e.rolled_back_at_request, &e.reason) {
            (Some(at), Some(why)) => {
                let day = e.rolled_back_day.unwrap_or(0);
                let _ = writeln!(
                    o,
                    "experiment {}: rolled back after request {at} (day {day}): {why}",
                    e.name
                );
            }
            _ => {
                let _ = writeln!(o, "experiment {}: not rolled back", e.name);
            }
        }
        for a in &e.arms {
            let v = a.value.map_or("-".to_string(), |x| format!("{x:.3}"));
            let _ = writeln!(
                o,
                "  {:<12} samples {:>7} passes {:>7} {} {v}",
                a.backend, a.figures.samples, a.figures.passes, e.metric
            );
        }
    }
    o
}
