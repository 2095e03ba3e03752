//! Measured figures: what a backend's delivered videos and live calls actually showed, as
//! opposed to the figures its author typed into the policy.
//!
//! **Why a rolling window of samples.** A backend that degrades should lose traffic within
//! minutes, and one that recovers should win it back; a lifetime average would do neither.
//! Each delivered video (checked or not) is one [`Sample`]; the store keeps the last
//! [`WINDOW`] of each backend, shared by every replica, and [`summarize`] turns them into the
//! [`Measured`] figures that conditions read as `backend.measured.*`. Medians and pass rates
//! over a bounded list are exact and order-free, which running averages in a shared store
//! are not.
//!
//! A figure with no data is unset, not zero: a condition that reads it fails like a read of
//! an unset request field (the rule does not match, and explain says why), so a backend with
//! no history is never mistaken for a perfect or a broken one. `samples` is always set.
//! The pure arithmetic lives here; recording and reading are the store's
//! (`genroute_store::Store::push_sample`).

use serde::{Deserialize, Serialize};

use crate::num::Fixed;

/// How many recent samples per backend the figures cover.
pub const WINDOW: usize = 200;

/// The store key of a backend's sample list.
pub fn sample_key(backend: &str) -> String {
    format!("backend:{backend}")
}

/// The figures of stored samples (JSON of [`Sample`]; one that does not parse is skipped).
pub fn summarize_stored(stored: &[String]) -> Measured {
    let samples: Vec<Sample> = stored
        .iter()
        .filter_map(|s| serde_json::from_str(s).ok())
        .collect();
    summarize(&samples)
}

/// One delivered video, as the walk recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When it was delivered, ms since the epoch.
    pub at_ms: i64,
    /// Whether it passed its output checks (an unchecked video counts as passed).
    pub passed: bool,
    /// Whether its file was checked at all.
    #[serde(default)]
    pub checked: bool,
    /// From the create call to the downloaded file, milliseconds.
    pub latency_ms: u64,
    /// Its measured flicker, 0 to 1, when its frames were measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flicker: Option<f64>,
}

/// A backend's figures over its recent samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measured {
    /// Samples in the window.
    pub samples: u32,
    /// Share of checked videos that passed, 0 to 1; unset with no checked video.
    pub pass_rate: Option<Fixed>,
    /// Median latency, seconds.
    pub latency_p50: Option<Fixed>,
    /// 95th percentile latency, seconds.
    pub latency_p95: Option<Fixed>,
    /// Mean flicker of the videos whose frames were measured.
    pub flicker: Option<Fixed>,
}

/// A measured figure a condition can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeasuredProp {
    /// `samples`
    Samples,
    /// `pass_rate`
    PassRate,
    /// `latency_p50`
    LatencyP50,
    /// `latency_p95`
    LatencyP95,
    /// `flicker`
    Flicker,
}

impl MeasuredProp {
    /// Every figure with its name and meaning, for `genroute names` and the checker.
    pub const ALL: [(MeasuredProp, &'static str, &'static str); 5] = [
        (
            MeasuredProp::Samples,
            "samples",
            "delivered videos in the rolling window (0 with no history)",
        ),
        (
            MeasuredProp::PassRate,
            "pass_rate",
            "share of its checked videos that passed the output checks, 0 to 1",
        ),
        (
            MeasuredProp::LatencyP50,
            "latency_p50",
            "median seconds from create call to downloaded video",
        ),
        (
            MeasuredProp::LatencyP95,
            "latency_p95",
            "95th percentile of the same, seconds",
        ),
        (
            MeasuredProp::Flicker,
            "flicker",
            "mean flicker of its measured videos, 0 to 1",
        ),
    ];

    /// By name.
    pub fn parse(name: &str) -> Option<MeasuredProp> {
        Self::ALL
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(p, _, _)| *p)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(p, _, _)| *p == self)
            .map_or("", |(_, n, _)| n)
    }
}

impl Measured {
    /// One figure; `None` when there is no data for it.
    pub fn get(&self, prop: MeasuredProp) -> Option<Fixed> {
        match prop {
            MeasuredProp::Samples => Fixed::from_int(i64::from(self.samples)),
            MeasuredProp::PassRate => self.pass_rate,
            MeasuredProp::LatencyP50 => self.latency_p50,
            MeasuredProp::LatencyP95 => self.latency_p95,
            MeasuredProp::Flicker => self.flicker,
        }
    }
}

/// The figures of `samples` (any order; at most [`WINDOW`] are expected).
pub fn summarize(samples: &[Sample]) -> Measured {
    if samples.is_empty() {
        return Measured::default();
    }
    let checked: Vec<&Sample> = samples.iter().filter(|s| s.checked).collect();
    let pass_rate = (!checked.is_empty()).then(|| {
        let passed = checked.iter().filter(|s| s.passed).count() as i64;
        Fixed::from_micros(passed * 1_000_000 / checked.len() as i64)
    });
    let mut latencies: Vec<u64> = samples.iter().map(|s| s.latency_ms).collect();
    latencies.sort_unstable();
    let flickers: Vec<f64> = samples.iter().filter_map(|s| s.flicker).collect();
    let flicker = (!flickers.is_empty())
        .then(|| fraction(flickers.iter().sum::<f64>() / flickers.len() as f64));
    Measured {
        samples: samples.len() as u32,
        pass_rate,
        latency_p50: Some(seconds(percentile(&latencies, 50))),
        latency_p95: Some(seconds(percentile(&latencies, 95))),
        flicker,
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn seconds(ms: u64) -> Fixed {
    Fixed::from_micros(
        i64::try_from(ms)
            .unwrap_or(i64::MAX / 1_000)
            .saturating_mul(1_000),
    )
}

/// A 0-to-1 figure as a [`Fixed`] (six decimals), clamped.
pub fn fraction(x: f64) -> Fixed {
    let x = if x.is_finite() {
        x.clamp(0.0, 1.0)
    } else {
        0.0
    };
    Fixed::from_micros((x * 1_000_000.0).round() as i64)
}

/// What a delivered video's checks measured: what `execution.quality_retry.when` reads as
/// `video.*`. A figure that was not measured (no ffmpeg, a video that was not downloaded) is
/// unset, and reading it fails the condition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoFigures {
    /// Whether it passed its output checks (true when it was not checked).
    pub passed: bool,
    /// Whether its file was checked.
    pub checked: bool,
    /// Seconds, from its container.
    pub duration: Option<Fixed>,
    /// Pixels.
    pub width: Option<Fixed>,
    /// Pixels.
    pub height: Option<Fixed>,
    /// Frames per second.
    pub fps: Option<Fixed>,
    /// Mean absolute difference between consecutive frames, 0 to 1.
    pub flicker: Option<Fixed>,
    /// Share of the clip that is black, 0 to 1.
    pub black_fraction: Option<Fixed>,
    /// Share of the clip that is frozen, 0 to 1.
    pub frozen_fraction: Option<Fixed>,
    /// Seconds from the create call to the downloaded file.
    pub latency: Option<Fixed>,
}

/// A figure of the delivered video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoProp {
    /// `passed` (bool)
    Passed,
    /// `checked` (bool)
    Checked,
    /// `duration`
    Duration,
    /// `width`
    Width,
    /// `height`
    Height,
    /// `fps`
    Fps,
    /// `flicker`
    Flicker,
    /// `black_fraction`
    BlackFraction,
    /// `frozen_fraction`
    FrozenFraction,
    /// `latency`
    Latency,
}

impl VideoProp {
    /// Every figure with its name, whether it is a boolean, and its meaning.
    pub const ALL: [(VideoProp, &'static str, bool, &'static str); 10] = [
        (
            VideoProp::Passed,
            "passed",
            true,
            "the video passed its output checks",
        ),
        (
            VideoProp::Checked,
            "checked",
            true,
            "the video's file was checked",
        ),
        (
            VideoProp::Duration,
            "duration",
            false,
            "seconds, from its container",
        ),
        (VideoProp::Width, "width", false, "pixels"),
        (VideoProp::Height, "height", false, "pixels"),
        (VideoProp::Fps, "fps", false, "frames per second"),
        (
            VideoProp::Flicker,
            "flicker",
            false,
            "mean absolute difference of consecutive frames, 0 to 1 (needs ffmpeg)",
        ),
        (
            VideoProp::BlackFraction,
            "black_fraction",
            false,
            "share of the clip that is black, 0 to 1 (needs ffmpeg)",
        ),
        (
            VideoProp::FrozenFraction,
            "frozen_fraction",
            false,
            "share of the clip that is frozen, 0 to 1 (needs ffmpeg)",
        ),
        (
            VideoProp::Latency,
            "latency",
            false,
            "seconds from the create call to the downloaded file",
        ),
    ];

    /// By name.
    pub fn parse(name: &str) -> Option<VideoProp> {
        Self::ALL.iter().find(|x| x.1 == name).map(|x| x.0)
    }

    /// Whether it reads as a boolean.
    pub fn is_bool(self) -> bool {
        matches!(self, VideoProp::Passed | VideoProp::Checked)
    }
}

impl VideoFigures {
    /// A numeric figure; `None` when it was not measured.
    pub fn num(&self, p: VideoProp) -> Option<Fixed> {
        match p {
            VideoProp::Passed | VideoProp::Checked => None,
            VideoProp::Duration => self.duration,
            VideoProp::Width => self.width,
            VideoProp::Height => self.height,
            VideoProp::Fps => self.fps,
            VideoProp::Flicker => self.flicker,
            VideoProp::BlackFraction => self.black_fraction,
            VideoProp::FrozenFraction => self.frozen_fraction,
            VideoProp::Latency => self.latency,
        }
    }

    /// A boolean figure.
    pub fn flag(&self, p: VideoProp) -> Option<bool> {
        match p {
            VideoProp::Passed => Some(self.passed),
            VideoProp::Checked => Some(self.checked),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(passed: bool, checked: bool, latency_ms: u64) -> Sample {
        Sample {
            at_ms: 0,
            passed,
            checked,
            latency_ms,
            flicker: None,
        }
    }

    #[test]
    fn no_samples_leave_every_figure_but_samples_unset() {
        let m = summarize(&[]);
        assert_eq!(m.get(MeasuredProp::Samples), Some(Fixed::ZERO));
        for (p, _, _) in MeasuredProp::ALL.iter().skip(1) {
            assert_eq!(m.get(*p), None, "{p:?}");
        }
    }

    #[test]
    fn pass_rate_counts_only_checked_videos_and_percentiles_are_nearest_rank() {
        let mut all: Vec<Sample> = (1..=10).map(|i| s(i % 5 != 0, true, i * 1000)).collect();
        all.push(s(true, false, 100_000));
        let m = summarize(&all);
        assert_eq!(m.samples, 11);
        assert_eq!(m.pass_rate, Some("0.8".parse().unwrap()));
        assert_eq!(m.latency_p50, Some("6".parse().unwrap()));
        assert_eq!(m.latency_p95, Some("100".parse().unwrap()));
        assert_eq!(m.flicker, None);
    }

    #[test]
    fn unchecked_videos_alone_give_no_pass_rate() {
        let m = summarize(&[s(true, false, 5)]);
        assert_eq!(m.pass_rate, None);
        assert_eq!(m.latency_p50, Some("0.005".parse().unwrap()));
    }
}
