//! Load generator for `scripts/bench-server`.
//!
//! `wrk` measures throughput with a fixed number of connections, each sending one request after
//! another. Video jobs are the other shape: each request is held for seconds, and what matters
//! is how many a replica holds at once. `inflight` opens one connection per request and keeps
//! all of them waiting together, while a separate connection probes `/healthz` at a fixed
//! period and the server's resident memory is sampled from `/proc`. `burst` sends N requests at
//! once and reports when each was answered (for the "store paused" run).
//!
//! Output is one JSON object on stdout; the script turns it into a table.

use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde_json::json;

mod takeover;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Hold N generate requests in flight at once; probe /healthz; sample the server's RSS.
    Inflight {
        /// Base URL of the server.
        #[arg(long)]
        url: String,
        /// Requests to hold in flight.
        #[arg(long, default_value_t = 10_000)]
        requests: usize,
        /// Seconds over which the requests are opened (a ramp, so that connecting does not
        /// measure the kernel's accept queue).
        #[arg(long, default_value_t = 3.0)]
        ramp: f64,
        /// Period of the /healthz probe, in milliseconds.
        #[arg(long, default_value_t = 10)]
        probe_ms: u64,
        /// The server's pid, for its resident memory.
        #[arg(long)]
        pid: Option<u32>,
        /// The JSON body.
        #[arg(long)]
        body: String,
    },
    /// Kill a job's owner mid-job and time until another replica polls it again.
    Takeover {
        /// The genroute binary.
        #[arg(long)]
        bin: String,
        /// A Redis URL the replicas share.
        #[arg(long)]
        redis: String,
        /// How many takeovers to time.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Send N requests at once and time each answer; probe /healthz meanwhile.
    Burst {
        /// Base URL of the server.
        #[arg(long)]
        url: String,
        /// Requests sent at once.
        #[arg(long, default_value_t = 100)]
        requests: usize,
        /// Path to POST.
        #[arg(long, default_value = "/v1/generate")]
        path: String,
        /// The JSON body.
        #[arg(long)]
        body: String,
        /// How long to probe /healthz, in seconds (at least until the burst is answered).
        #[arg(long, default_value_t = 5.0)]
        probe_secs: f64,
        /// Period of the /healthz probe, in milliseconds.
        #[arg(long, default_value_t = 10)]
        probe_ms: u64,
    },
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Some(sorted[i.min(sorted.len() - 1)])
}

fn summary(mut ms: Vec<f64>) -> serde_json::Value {
    ms.sort_by(|a, b| a.total_cmp(b));
    json!({
        "count": ms.len(),
        "p50_ms": percentile(&ms, 0.50),
        "p99_ms": percentile(&ms, 0.99),
        "max_ms": ms.last(),
    })
}

fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Runs [`probe_loop`] on a thread and runtime of its own, so that the probe is never queued
/// behind the thousands of request tasks of this process: it measures the server.
fn probe(
    url: String,
    every: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<(Vec<f64>, usize)> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("probe runtime");
        let _ = tx.send(rt.block_on(probe_loop(url, every, stop)));
    });
    tokio::spawn(async move { rx.await.expect("probe thread") })
}

/// Probes `/healthz` every `every` until `stop` fires; returns the latencies in ms and the
/// number of probes that failed or timed out.
async fn probe_loop(
    url: String,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> (Vec<f64>, usize) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .expect("client");
    let (mut ms, mut failed) = (Vec::new(), 0);
    let begun = Instant::now();
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return (ms, failed),
        }
        let t = Instant::now();
        match client
            .get(format!("{url}/healthz"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                let took = t.elapsed().as_secs_f64() * 1000.0;
                if took > 5.0 && std::env::var_os("LOAD_SLOW").is_some() {
                    eprintln!(
                        "slow healthz at {:.2}s: {took:.1} ms",
                        begun.elapsed().as_secs_f64()
                    );
                }
                ms.push(took)
            }
            _ => failed += 1,
        }
    }
}

#[tokio::main]
async fn main() {
    match Cli::parse().mode {
        Mode::Inflight {
            url,
            requests,
            ramp,
            probe_ms,
            pid,
            body,
        } => inflight(url, requests, ramp, probe_ms, pid, body).await,
        Mode::Burst {
            url,
            requests,
            path,
            body,
            probe_secs,
            probe_ms,
        } => burst(url, requests, path, body, probe_secs, probe_ms).await,
        Mode::Takeover { bin, redis, rounds } => takeover::run(bin, redis, rounds).await,
    }
}

async fn inflight(
    url: String,
    requests: usize,
    ramp: f64,
    probe_ms: u64,
    pid: Option<u32>,
    body: String,
) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let prober = probe(
        url.clone(),
        Duration::from_millis(probe_ms),
        stop_rx.clone(),
    );
    let sampler = tokio::spawn({
        let mut stop = stop_rx.clone();
        async move {
            let mut peak: f64 = 0.0;
            loop {
                if let Some(mb) = pid.and_then(rss_mb) {
                    peak = peak.max(mb);
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = stop.changed() => return peak,
                }
            }
        }
    });
    // One connection per request: nothing is shared, so every request is in flight at once.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let started = Instant::now();
    let in_flight = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let peak_in_flight = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..requests)
        .map(|i| {
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            let (now, peak) = (in_flight.clone(), peak_in_flight.clone());
            let at = Duration::from_secs_f64(ramp * i as f64 / requests.max(1) as f64);
            tokio::spawn(async move {
                tokio::time::sleep_until(tokio::time::Instant::from_std(started + at)).await;
                let t = Instant::now();
                let n = now.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                peak.fetch_max(n, std::sync::atomic::Ordering::SeqCst);
                let resp = client
                    .post(format!("{url}/v1/generate"))
                    .header("content-type", "application/json")
                    .body(body)
                    .timeout(Duration::from_secs(300))
                    .send()
                    .await;
                let out = match resp {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let v: serde_json::Value = r.json().await.unwrap_or_default();
                        let cost = v["cost_usd"].as_f64().unwrap_or(0.0);
                        let video = v["video"].is_string();
                        (status, video, cost)
                    }
                    Err(_) => (0, false, 0.0),
                };
                now.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                (out, t.elapsed().as_secs_f64() * 1000.0)
            })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let (mut ok, mut cost_micros, mut latencies) = (0usize, 0i64, Vec::new());
    for t in tasks {
        let ((status, video, cost), ms) = t.await.expect("task");
        *statuses.entry(status).or_default() += 1;
        if status == 200 && video {
            ok += 1;
        }
        cost_micros += (cost * 1e6).round() as i64;
        latencies.push(ms);
    }
    let wall = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    let (healthz, healthz_failed) = prober.await.expect("prober");
    let peak_rss = sampler.await.expect("sampler");
    let out = json!({
        "requests": requests,
        "ramp_s": ramp,
        "succeeded": ok,
        "statuses": statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "cost_told_usd": cost_micros as f64 / 1e6,
        "peak_in_flight": peak_in_flight.load(std::sync::atomic::Ordering::SeqCst),
        "generate": summary(latencies),
        "healthz": summary(healthz),
        "healthz_failed": healthz_failed,
        "peak_rss_mb": (peak_rss * 10.0).round() / 10.0,
        "wall_s": (wall * 100.0).round() / 100.0,
    });
    println!("{out}");
}

async fn burst(
    url: String,
    requests: usize,
    path: String,
    body: String,
    probe_secs: f64,
    probe_ms: u64,
) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let prober = probe(url.clone(), Duration::from_millis(probe_ms), stop_rx);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let started = Instant::now();
    let tasks: Vec<_> = (0..requests)
        .map(|_| {
            let (client, url, path, body) =
                (client.clone(), url.clone(), path.clone(), body.clone());
            tokio::spawn(async move {
                let t = Instant::now();
                let status = match client
                    .post(format!("{url}{path}"))
                    .header("content-type", "application/json")
                    .body(body)
                    .timeout(Duration::from_secs(60))
                    .send()
                    .await
                {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                (status, t.elapsed().as_secs_f64() * 1000.0)
            })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut answered = Vec::new();
    for t in tasks {
        let (status, ms) = t.await.expect("task");
        *statuses.entry(status).or_default() += 1;
        answered.push(ms);
    }
    let left = Duration::from_secs_f64(probe_secs).saturating_sub(started.elapsed());
    tokio::time::sleep(left).await;
    let _ = stop_tx.send(true);
    let (healthz, healthz_failed) = prober.await.expect("prober");
    let out = json!({
        "requests": requests,
        "statuses": statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "answered": summary(answered),
        "healthz": summary(healthz),
        "healthz_failed": healthz_failed,
    });
    println!("{out}");
}
