//! Frame signals measured by `ffmpeg`: black frames, frozen runs and a temporal flicker score,
//! all from ONE decode of the video.
//!
//! **Why ffmpeg, and why one run.** Decoding H.264/AV1/VP9 is ffmpeg's job, and Debian ships it;
//! genroute links no codec. One filter chain measures all three signals in one decode:
//!
//! ```text
//! blackdetect=d=0:pix_th=0.10,freezedetect=n=-60dB:d=0.5,
//! tblend=all_mode=difference,signalstats,metadata=mode=print:key=lavfi.signalstats.YAVG
//! ```
//!
//! `blackdetect` and `freezedetect` pass the frames through untouched and log their runs;
//! `tblend` then turns each pair of consecutive frames into their absolute difference, whose
//! mean luma (`signalstats` YAVG, 0..255) `metadata` prints per frame. The flicker score is the
//! mean of those, over 255: 0 for a still clip, near 1 for frames that invert each other. It
//! rises with motion as much as with flicker, which is why `max_flicker` has no default.
//!
//! **Why parsing is pure.** What ffmpeg prints is parsed by [`parse`], a function of the text and
//! the clip's duration, unit-tested on captured output; the process itself (`genroute_exec::output::frames::measure`) runs
//! under tokio with a timeout and `kill_on_drop`, so a stuck decode never holds an async worker
//! or outlives its check.

use serde::{Deserialize, Serialize};

/// The filter chain of the single ffmpeg run (see the module docs).
pub const FILTERS: &str = "blackdetect=d=0:pix_th=0.10,freezedetect=n=-60dB:d=0.5,\
tblend=all_mode=difference,signalstats,metadata=mode=print:key=lavfi.signalstats.YAVG";

/// What the frames measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    /// Share of the clip's duration in black runs, 0 to 1.
    pub black_fraction: f64,
    /// Share of the clip's duration in frozen runs (at least 0.5 s of no change), 0 to 1.
    pub frozen_fraction: f64,
    /// Mean absolute difference of consecutive frames' luma, over 255 (0 still, 1 inverting).
    pub flicker: f64,
    /// Frames ffmpeg decoded.
    pub frames_decoded: u64,
}

/// The frame checks: measured, or why not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Frames {
    /// ffmpeg ran and measured.
    Measured(Signals),
    /// Not measured.
    Skipped {
        /// Why (no ffmpeg, a timeout, the container check failed, …).
        reason: String,
    },
}

impl Frames {
    /// Skipped, because `reason`.
    pub fn skipped(reason: impl Into<String>) -> Frames {
        Frames::Skipped {
            reason: reason.into(),
        }
    }
}

/// Parses the log of the ffmpeg run (its stderr) into signals. `duration_s` is the clip's
/// duration; when it is 0, the span of the frames' timestamps is used. `None` when no frame
/// was decoded.
///
/// A black run that lasts to the last frame, and a frozen run that never ends (freezedetect
/// prints no `freeze_end` at the end of the file), count to the end of the clip.
pub fn parse(log: &str, duration_s: f64) -> Option<Signals> {
    let mut diffs = 0u64;
    let mut diff_sum = 0.0f64;
    let mut last_pts = 0.0f64;
    let mut black: Vec<(f64, f64)> = Vec::new();
    let mut freeze_start: Option<f64> = None;
    let mut frozen: Vec<(f64, f64)> = Vec::new();
    for line in log.lines() {
        if let Some(v) = value_after(line, "lavfi.signalstats.YAVG=") {
            diffs += 1;
            diff_sum += v;
        } else if let Some(v) = value_after(line, "pts_time:") {
            last_pts = last_pts.max(v);
        } else if let Some(start) = value_after(line, "black_start:") {
            let end = value_after(line, "black_end:").unwrap_or(start);
            black.push((start, end));
        } else if let Some(v) = value_after(line, "lavfi.freezedetect.freeze_start:") {
            freeze_start = Some(v);
        } else if let Some(v) = value_after(line, "lavfi.freezedetect.freeze_end:") {
            if let Some(s) = freeze_start.take() {
                frozen.push((s, v));
            }
        }
    }
    if diffs == 0 && black.is_empty() && freeze_start.is_none() {
        return None;
    }
    let frames_decoded = if diffs > 0 { diffs + 1 } else { 1 };
    // One frame's length, to reach the end of the clip from the last frame's timestamp.
    let frame = if diffs > 0 {
        last_pts / diffs as f64
    } else {
        0.0
    };
    let span = if duration_s > 0.0 {
        duration_s
    } else {
        last_pts + frame
    };
    if let Some(s) = freeze_start {
        frozen.push((s, span));
    }
    let to_end = |(s, e): (f64, f64)| {
        if e + frame * 1.5 >= last_pts + frame && last_pts > 0.0 {
            (s, span)
        } else {
            (s, e)
        }
    };
    let share = |runs: &[(f64, f64)]| -> f64 {
        if span <= 0.0 {
            return 0.0;
        }
        let total: f64 = runs.iter().map(|(s, e)| (e.min(span) - s).max(0.0)).sum();
        // `+ 0.0` turns a `-0.0` into `0.0`.
        (total / span).clamp(0.0, 1.0) + 0.0
    };
    let black: Vec<_> = black.into_iter().map(to_end).collect();
    Some(Signals {
        black_fraction: share(&black),
        frozen_fraction: share(&frozen),
        flicker: if diffs > 0 {
            (diff_sum / diffs as f64 / 255.0).clamp(0.0, 1.0)
        } else {
            0.0
        },
        frames_decoded,
    })
}

/// The number after `key` on a line, up to the next space.
fn value_after(line: &str, key: &str) -> Option<f64> {
    let at = line.find(key)? + key.len();
    line[at..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yavg(n: usize, v: f64, fps: f64) -> String {
        (1..=n)
            .map(|i| {
                format!(
                    "[Parsed_metadata_4 @ 0x5] frame:{}    pts:{}     pts_time:{}\n[Parsed_metadata_4 @ 0x5] lavfi.signalstats.YAVG={v}\n",
                    i - 1,
                    i * 512,
                    i as f64 / fps
                )
            })
            .collect()
    }

    /// As ffmpeg 5.1 prints it for `color=black`, 3 s at 24 fps.
    #[test]
    fn an_all_black_clip() {
        let mut log = yavg(71, 0.0, 24.0);
        log.push_str("[freezedetect @ 0x5559dfe7f0c0] lavfi.freezedetect.freeze_start: 0\n");
        log.push_str(
            "frame=   71 fps=0.0 q=-0.0 Lsize=N/A time=00:00:03.00 bitrate=N/A speed=8.74x\n",
        );
        log.push_str("[blackdetect @ 0x5559dfe7e100] black_start:0 black_end:2.95833 black_duration:2.95833\n");
        let s = parse(&log, 3.0).unwrap();
        assert_eq!(s.black_fraction, 1.0);
        assert_eq!(s.frozen_fraction, 1.0);
        assert_eq!(s.flicker, 0.0);
        assert_eq!(s.frames_decoded, 72);
    }

    /// `testsrc2` for 1 s, then its last frame cloned for 7 s.
    #[test]
    fn a_frozen_clip() {
        let mut log = yavg(191, 2.5, 24.0);
        log.push_str("[freezedetect @ 0x56180488c340] lavfi.freezedetect.freeze_start: 0.958333\n");
        let s = parse(&log, 8.0).unwrap();
        assert!((s.frozen_fraction - 0.88).abs() < 0.01, "{s:?}");
        assert_eq!(s.black_fraction, 0.0);
        assert!((s.flicker - 2.5 / 255.0).abs() < 1e-9);
    }

    #[test]
    fn runs_that_end_and_a_short_black_run() {
        let mut log = yavg(239, 10.0, 24.0);
        log.push_str("[freezedetect @ 0x1] lavfi.freezedetect.freeze_start: 2\n");
        log.push_str("[freezedetect @ 0x1] lavfi.freezedetect.freeze_duration: 2\n");
        log.push_str("[freezedetect @ 0x1] lavfi.freezedetect.freeze_end: 4\n");
        log.push_str("[blackdetect @ 0x2] black_start:0 black_end:1 black_duration:1\n");
        let s = parse(&log, 10.0).unwrap();
        assert!((s.frozen_fraction - 0.2).abs() < 1e-9, "{s:?}");
        assert!((s.black_fraction - 0.1).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn no_frames_is_none() {
        assert_eq!(parse("Output #0, null, to 'pipe:':\n", 8.0), None);
    }
}
