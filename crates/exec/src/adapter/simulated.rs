//! A simulated backend (`type: simulated`): for dry runs, demos, tests and the built-in demo
//! policy.
//!
//! Each call draws its outcome from a generator seeded by the policy's `simulation.seed`, the
//! backend's name, the request id and the attempt number, so the same request meets the same
//! fate every time, whatever else runs concurrently. Latency is normal around the backend's
//! `avg_generation_time_seconds` with `latency_stddev_seconds`, clipped to between a tenth of
//! the average and `max_generation_time_seconds`. The call sleeps the latency multiplied by
//! `time_scale` (0 by default: no waiting), and reports the simulated latency.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use super::{Cancel, Failure, FailureClass, Handle, JobSpec, Outcome, Success, Video};
use genroute_core::num::Fixed;
use genroute_core::policy::{Backend, SimulatedFailure, Simulation};

/// The clip a simulated backend "renders": a real 1-second MP4 (64×64, 8 frames per second),
/// so that a client can download and play what the demo produced.
pub const CLIP: &[u8] = include_bytes!("simulated.mp4");

/// A simulated backend.
#[derive(Debug, Clone)]
pub struct Simulated {
    name: String,
    sim: Simulation,
    quality: Fixed,
    avg: f64,
    max: f64,
    default_model: Option<String>,
}

/// What one simulated call does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draw {
    /// Simulated seconds.
    pub latency: f64,
    /// `None` on success.
    pub failure: Option<FailureClass>,
    /// On success: whether the video passes its output checks (`simulation.pass_rate`).
    pub passes: bool,
}

impl Simulated {
    /// From a backend's configuration.
    pub fn new(backend: &Backend) -> Simulated {
        let sim = backend.simulation.unwrap_or(Simulation {
            failure_rate: Fixed::ZERO,
            failure_class: SimulatedFailure::Retryable,
            latency_stddev: Fixed::ZERO,
            time_scale: Fixed::ZERO,
            seed: 0,
            pass_rate: Fixed::ONE,
        });
        Simulated {
            name: backend.name.clone(),
            sim,
            quality: backend.quality,
            avg: backend.avg_latency.to_f64(),
            max: backend.max_latency.to_f64(),
            default_model: backend.default_model().map(str::to_string),
        }
    }

    /// The same backend with its seed mixed with `seed` (for `genroute simulate --seed`).
    pub fn with_seed(backend: &Backend, seed: u64) -> Simulated {
        let mut s = Simulated::new(backend);
        s.sim.seed ^= seed;
        s
    }

    /// The outcome of a call, without performing it. Pure and deterministic.
    pub fn draw(&self, request_id: &str, attempt: u32) -> Draw {
        let key = format!(
            "{}\u{0}{}\u{0}{}\u{0}{}",
            self.sim.seed, self.name, request_id, attempt
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(fnv1a(key.as_bytes()));
        let stddev = self.sim.latency_stddev.to_f64().max(0.0);
        let latency = match Normal::new(self.avg, stddev) {
            Ok(n) => n.sample(&mut rng),
            Err(_) => self.avg,
        };
        let latency = latency.clamp(self.avg / 10.0, self.max.max(self.avg / 10.0));
        let fails = rng.random_range(0..1_000_000) < self.sim.failure_rate.micros();
        let failure = fails.then_some(match self.sim.failure_class {
            SimulatedFailure::Retryable => FailureClass::Retryable,
            SimulatedFailure::Terminal => FailureClass::Terminal,
            SimulatedFailure::ContentRejected => FailureClass::ContentRejected,
            SimulatedFailure::NoVideo => FailureClass::NoVideo,
        });
        // Drawn last, so that adding it changed no earlier outcome of a seed.
        let passes = rng.random_range(0..1_000_000) < self.sim.pass_rate.micros();
        Draw {
            latency,
            failure,
            passes,
        }
    }

    /// "Creates" the job: the handle records when it started (wall-clock ms), so that a
    /// replica that resumes it waits only for what is left of its latency.
    pub async fn create(&self, _job: &JobSpec) -> Result<Handle, Failure> {
        Ok(Handle {
            id: format!("sim:{}", chrono::Utc::now().timestamp_millis()),
        })
    }

    /// How long is left of a job started as `handle` says.
    fn remaining(&self, handle: &Handle, job: &JobSpec) -> Duration {
        let draw = self.draw(&job.request_id, job.attempt);
        let wait_ms = (draw.latency * self.sim.time_scale.to_f64() * 1000.0).max(0.0) as i64;
        let started: i64 = handle
            .id
            .strip_prefix("sim:")
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
        let left = started + wait_ms - chrono::Utc::now().timestamp_millis();
        Duration::from_millis(left.max(0) as u64)
    }

    /// Waits out the job's simulated latency, then gives its drawn outcome.
    pub async fn resume(&self, handle: &Handle, job: &JobSpec) -> Outcome {
        let draw = self.draw(&job.request_id, job.attempt);
        let wait = self.remaining(handle, job);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        if let Some(class) = draw.failure {
            return Err(Failure::new(
                class,
                format!("simulated {} failure", class.as_str()),
            ));
        }
        let micros = (draw.latency * 1_000_000.0).round() as i64;
        Ok(Success {
            video: Video::Uri(format!(
                "sim://{}/{}-{}.mp4",
                self.name, job.request_id, job.attempt
            )),
            model: job.model.clone().or_else(|| self.default_model.clone()),
            quality: Some(self.quality),
            simulated_seconds: Some(Fixed::from_micros(micros)),
        })
    }
}

impl Simulated {
    /// A simulated job can always be cancelled; nothing was produced if it had not finished.
    pub fn cancel(&self, handle: &Handle, job: &JobSpec) -> Cancel {
        if self.remaining(handle, job).is_zero() {
            Cancel::MaybeProduced
        } else {
            Cancel::NothingProduced
        }
    }
}

/// FNV-1a, 64-bit: a stable hash, so a seed means the same thing in every build.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
