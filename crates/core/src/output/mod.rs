//! Output checks: every delivered video is looked at before it counts as a success.
//!
//! **Why.** A backend that returns a broken file (cut short by a dropped download, two seconds
//! for an eight-second request, square for a 16:9 request, black from start to end) used to
//! count as a success: its money spent, its breaker pleased, the caller handed garbage. A
//! check costs well under a millisecond for the container and about one decode for the
//! frames; a bad video costs a user. So a failed check is an outcome of its own,
//! `bad_output`: the money follows the provider (it finished the job, so the reservation is
//! spent), the breaker counts a failure, and the request falls back like after any failure.
//!
//! **Two layers.**
//! - [`container`]: the ISO-BMFF facts (container, duration, frame count and rate, size,
//!   codec), and truncation, from the `moov` box parsed by Mozilla's `mp4parse`. Always runs.
//! - [`frames`]: black, frozen and flicker signals measured by one `ffmpeg` run, where ffmpeg
//!   is on the `PATH` (`execution.output_checks.frames: auto`). Without it, the check says the
//!   frame checks were skipped and why; the container checks still decide.
//!
//! **Pure judging.** [`judge`] is a function of the facts, the signals, what was asked
//! ([`Expect`]) and the thresholds ([`Limits`]); IO lives only where a file is read
//! (`genroute_exec::output::check_file`, off the async workers) and where ffmpeg runs, both in
//! the execution crate: this module is the records and the judging, with no IO of its own.
//!
//! **Defaults.** A duration passes within ±max(1 s, 20 %) of the request (a backend asked for
//! 8 s that delivers 7.2 s or 9.5 s is fine; 2 s is not); the aspect ratio within 2 % (so
//! 1280x720, 1920x1080 and 854x480 all read as 16:9). A clip black or frozen for more than
//! 90 % of its duration fails; flicker has no default threshold, because motion raises it as
//! much as flicker does.

pub mod container;
pub mod frames;

use serde::{Deserialize, Serialize};

pub use frames::{Frames, Signals};

/// What the request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Expect {
    /// Seconds of video.
    pub duration_s: f64,
    /// Aspect ratio as (width, height), e.g. (16, 9); `None` when unknown (not checked).
    pub aspect: Option<(u32, u32)>,
}

impl Expect {
    /// From a duration and an aspect ratio written `W:H` (anything else leaves the aspect
    /// unchecked).
    pub fn new(duration_s: f64, aspect: &str) -> Expect {
        Expect {
            duration_s,
            aspect: parse_aspect(aspect),
        }
    }
}

/// `W:H` as numbers, both positive.
pub fn parse_aspect(s: &str) -> Option<(u32, u32)> {
    let (w, h) = s.split_once(':')?;
    let (w, h): (u32, u32) = (w.trim().parse().ok()?, h.trim().parse().ok()?);
    (w > 0 && h > 0).then_some((w, h))
}

/// The thresholds of a check (`execution.output_checks` in the policy).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// A duration passes within ±max(1 s, this share of the asked duration). Default 0.2.
    pub duration_tolerance: f64,
    /// The aspect ratio passes when it is within this share of the asked one. Default 0.02.
    pub aspect_tolerance: f64,
    /// Fails when more than this share of the clip is black. Default 0.9.
    pub max_black_fraction: Option<f64>,
    /// Fails when more than this share of the clip is frozen. Default 0.9.
    pub max_frozen_fraction: Option<f64>,
    /// Fails when the flicker score is above this. Default none.
    pub max_flicker: Option<f64>,
    /// When true, a check whose frames could not be measured fails (`frames: required`).
    pub frames_required: bool,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            duration_tolerance: 0.2,
            aspect_tolerance: 0.02,
            max_black_fraction: Some(0.9),
            max_frozen_fraction: Some(0.9),
            max_flicker: None,
            frames_required: false,
        }
    }
}

impl Limits {
    /// The largest accepted difference, in seconds, from an asked duration.
    pub fn duration_slack(&self, asked_s: f64) -> f64 {
        (asked_s * self.duration_tolerance).max(1.0)
    }
}

/// The container facts of a video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// `mp4`, `mov` or `m4v` (from the `ftyp` brand).
    pub container: String,
    /// Seconds, from the video track's media header.
    pub duration_s: f64,
    /// The video track's sample count.
    pub frames: u64,
    /// Frames per second (frames over duration).
    pub fps: f64,
    /// Coded width in pixels.
    pub width: u32,
    /// Coded height in pixels.
    pub height: u32,
    /// `h264`, `mpeg4`, `av1`, `vp9`, … (`unknown` otherwise).
    pub codec: String,
    /// Size of the file in bytes.
    pub bytes: u64,
}

/// Why a video is bad. The `Display` text is what the attempt, explain and the ledger show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BadOutput {
    /// Not an ISO-BMFF file, or one whose index does not parse.
    #[error("not a video: {detail}")]
    NotAVideo {
        /// What is wrong.
        detail: String,
    },
    /// An ISO-BMFF file without a video track.
    #[error("no video track (the file has {tracks} other track(s))")]
    NoVideoTrack {
        /// Tracks it does have.
        tracks: usize,
    },
    /// The file ends before its data does.
    #[error("truncated: {what} ends at byte {ends_at} of a file of {size} bytes")]
    Truncated {
        /// `the video track`, or the box that runs past the end.
        what: String,
        /// Where its data ends.
        ends_at: u64,
        /// The file's size.
        size: u64,
    },
    /// The duration is off.
    #[error("duration {actual_s:.1} s, asked for {} s", short(*asked_s))]
    Duration {
        /// Delivered.
        actual_s: f64,
        /// Asked.
        asked_s: f64,
    },
    /// The aspect ratio is off.
    #[error("aspect ratio {} ({width}x{height}), asked for {}:{}", ratio(*width, *height), asked.0, asked.1)]
    Aspect {
        /// Delivered width.
        width: u32,
        /// Delivered height.
        height: u32,
        /// Asked (w, h).
        asked: (u32, u32),
    },
    /// Too much of the clip is black.
    #[error("black for {} % of the clip", percent(*fraction))]
    Black {
        /// Share of the duration.
        fraction: f64,
    },
    /// Too much of the clip is frozen.
    #[error("frozen for {} % of the clip", percent(*fraction))]
    Frozen {
        /// Share of the duration.
        fraction: f64,
    },
    /// The clip flickers more than allowed.
    #[error("flicker score {score:.3}, above the limit of {max}")]
    Flicker {
        /// Measured.
        score: f64,
        /// The limit.
        max: f64,
    },
    /// `frames: required`, and the frames could not be measured.
    #[error("the frame checks are required but were skipped: {reason}")]
    FramesSkipped {
        /// Why they were skipped.
        reason: String,
    },
}

fn short(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.1}")
    }
}

fn percent(f: f64) -> String {
    format!("{}", (f * 100.0).round() as i64)
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// `16:9` for 1280x720; `1.78:1` when the reduced ratio has large terms (1366x768).
fn ratio(w: u32, h: u32) -> String {
    let g = gcd(w, h).max(1);
    let (a, b) = (w / g, h / g);
    if a <= 32 && b <= 32 {
        format!("{a}:{b}")
    } else if h > 0 {
        format!("{:.2}:1", f64::from(w) / f64::from(h))
    } else {
        format!("{w}:{h}")
    }
}

/// The verdict of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check that ran passed.
    Passed,
    /// A check failed: the attempt's outcome is `bad_output`.
    BadOutput,
    /// The video was not checked (not downloaded, simulated, checks off).
    NotChecked,
}

/// The record of one check: facts, frame signals (or why not), and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// The verdict.
    pub verdict: Verdict,
    /// The failures joined with `; `, or why the video was not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Every check that failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<BadOutput>,
    /// The container facts, when the container could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<Facts>,
    /// The frame signals, or why they were skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<Frames>,
}

impl Check {
    /// A video that was not checked, because `reason`.
    pub fn not_checked(reason: impl Into<String>) -> Check {
        Check {
            verdict: Verdict::NotChecked,
            reason: Some(reason.into()),
            failures: Vec::new(),
            facts: None,
            frames: None,
        }
    }

    /// True unless a check failed.
    pub fn passed(&self) -> bool {
        self.verdict != Verdict::BadOutput
    }

    /// One line for people: `checked: mp4 h264 1280x720, 8.0 s, 192 frames at 24 fps; black
    /// 0 %, frozen 0 %, flicker 0.012`, `not checked: …`, or the failures.
    pub fn summary(&self) -> String {
        let facts = self.facts.as_ref().map(|f| {
            format!(
                "{} {} {}x{}, {:.1} s, {} frames at {} fps",
                f.container,
                f.codec,
                f.width,
                f.height,
                f.duration_s,
                f.frames,
                short(f.fps)
            )
        });
        let frames = match &self.frames {
            Some(Frames::Measured(s)) => Some(format!(
                "black {} %, frozen {} %, flicker {:.3}",
                percent(s.black_fraction),
                percent(s.frozen_fraction),
                s.flicker
            )),
            Some(Frames::Skipped { reason }) => Some(format!("frame checks skipped: {reason}")),
            None => None,
        };
        let what = [facts, frames].into_iter().flatten().collect::<Vec<_>>();
        match self.verdict {
            Verdict::NotChecked => format!(
                "not checked: {}",
                self.reason.as_deref().unwrap_or("no reason given")
            ),
            Verdict::Passed => format!("checked: {}", what.join("; ")),
            Verdict::BadOutput => format!(
                "bad output: {}{}",
                self.reason.as_deref().unwrap_or(""),
                if what.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", what.join("; "))
                }
            ),
        }
    }
}

/// Judges a video from its container facts (or why they could not be read) and its frame
/// signals. Pure.
pub fn judge(
    facts: Result<Facts, BadOutput>,
    frames: Option<Frames>,
    expect: &Expect,
    limits: &Limits,
) -> Check {
    let facts = match facts {
        Ok(f) => f,
        Err(bad) => {
            return Check {
                verdict: Verdict::BadOutput,
                reason: Some(bad.to_string()),
                failures: vec![bad],
                facts: None,
                frames,
            }
        }
    };
    let mut failures = Vec::new();
    if expect.duration_s > 0.0
        && (facts.duration_s - expect.duration_s).abs() > limits.duration_slack(expect.duration_s)
    {
        failures.push(BadOutput::Duration {
            actual_s: facts.duration_s,
            asked_s: expect.duration_s,
        });
    }
    if let Some((aw, ah)) = expect.aspect {
        let asked = f64::from(aw) / f64::from(ah);
        let ok = facts.height > 0
            && ((f64::from(facts.width) / f64::from(facts.height)) / asked - 1.0).abs()
                <= limits.aspect_tolerance;
        if !ok {
            failures.push(BadOutput::Aspect {
                width: facts.width,
                height: facts.height,
                asked: (aw, ah),
            });
        }
    }
    match &frames {
        Some(Frames::Measured(s)) => {
            if matches!(limits.max_black_fraction, Some(m) if s.black_fraction > m) {
                failures.push(BadOutput::Black {
                    fraction: s.black_fraction,
                });
            }
            if matches!(limits.max_frozen_fraction, Some(m) if s.frozen_fraction > m) {
                failures.push(BadOutput::Frozen {
                    fraction: s.frozen_fraction,
                });
            }
            if let Some(max) = limits.max_flicker.filter(|m| s.flicker > *m) {
                failures.push(BadOutput::Flicker {
                    score: s.flicker,
                    max,
                });
            }
        }
        Some(Frames::Skipped { reason }) if limits.frames_required => {
            failures.push(BadOutput::FramesSkipped {
                reason: reason.clone(),
            });
        }
        None if limits.frames_required => failures.push(BadOutput::FramesSkipped {
            reason: "they were not run".into(),
        }),
        _ => {}
    }
    let reason = (!failures.is_empty()).then(|| {
        failures
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    });
    Check {
        verdict: if failures.is_empty() {
            Verdict::Passed
        } else {
            Verdict::BadOutput
        },
        reason,
        failures,
        facts: Some(facts),
        frames,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(duration_s: f64, width: u32, height: u32) -> Facts {
        Facts {
            container: "mp4".into(),
            duration_s,
            frames: (duration_s * 24.0) as u64,
            fps: 24.0,
            width,
            height,
            codec: "h264".into(),
            bytes: 100_000,
        }
    }

    fn signals(black: f64, frozen: f64) -> Option<Frames> {
        Some(Frames::Measured(Signals {
            black_fraction: black,
            frozen_fraction: frozen,
            flicker: 0.05,
            frames_decoded: 192,
        }))
    }

    const WIDE: Expect = Expect {
        duration_s: 8.0,
        aspect: Some((16, 9)),
    };

    #[test]
    fn a_good_clip_passes() {
        let c = judge(
            Ok(facts(8.0, 1280, 720)),
            signals(0.0, 0.1),
            &WIDE,
            &Limits::default(),
        );
        assert_eq!(c.verdict, Verdict::Passed, "{c:?}");
        assert_eq!(c.reason, None);
        // 854x480 is 16:9 within 2 %.
        let c = judge(Ok(facts(8.0, 854, 480)), None, &WIDE, &Limits::default());
        assert!(c.passed());
    }

    #[test]
    fn the_tolerances() {
        let l = Limits::default();
        assert_eq!(l.duration_slack(8.0), 1.6);
        assert_eq!(l.duration_slack(4.0), 1.0);
        for (d, ok) in [
            (6.5, true),
            (9.5, true),
            (6.3, false),
            (9.7, false),
            (2.0, false),
        ] {
            let c = judge(Ok(facts(d, 1280, 720)), None, &WIDE, &l);
            assert_eq!(c.passed(), ok, "{d}: {c:?}");
        }
    }

    #[test]
    fn reasons_read_like_sentences() {
        let l = Limits::default();
        let c = judge(Ok(facts(2.0, 1280, 720)), None, &WIDE, &l);
        assert_eq!(c.reason.as_deref(), Some("duration 2.0 s, asked for 8 s"));
        let c = judge(Ok(facts(8.0, 480, 480)), None, &WIDE, &l);
        assert_eq!(
            c.reason.as_deref(),
            Some("aspect ratio 1:1 (480x480), asked for 16:9")
        );
        let c = judge(
            Ok(facts(8.0, 1366, 768)),
            None,
            &Expect::new(8.0, "1:1"),
            &l,
        );
        assert_eq!(
            c.reason.as_deref(),
            Some("aspect ratio 1.78:1 (1366x768), asked for 1:1")
        );
        let c = judge(Ok(facts(8.0, 1280, 720)), signals(1.0, 1.0), &WIDE, &l);
        assert_eq!(
            c.reason.as_deref(),
            Some("black for 100 % of the clip; frozen for 100 % of the clip")
        );
        let c = judge(
            Ok(facts(8.0, 1280, 720)),
            signals(0.0, 0.88),
            &WIDE,
            &Limits {
                max_frozen_fraction: Some(0.5),
                ..l
            },
        );
        assert_eq!(c.reason.as_deref(), Some("frozen for 88 % of the clip"));
        let bad = BadOutput::Truncated {
            what: "the video track".into(),
            ends_at: 1000,
            size: 600,
        };
        let c = judge(Err(bad), None, &WIDE, &l);
        assert_eq!(
            c.reason.as_deref(),
            Some("truncated: the video track ends at byte 1000 of a file of 600 bytes")
        );
        assert_eq!(c.verdict, Verdict::BadOutput);
    }

    #[test]
    fn frames_required_fails_a_skipped_measure() {
        let l = Limits {
            frames_required: true,
            ..Limits::default()
        };
        let c = judge(
            Ok(facts(8.0, 1280, 720)),
            Some(Frames::skipped("ffmpeg is not on the PATH")),
            &WIDE,
            &l,
        );
        assert_eq!(
            c.reason.as_deref(),
            Some("the frame checks are required but were skipped: ffmpeg is not on the PATH")
        );
        let c = judge(
            Ok(facts(8.0, 1280, 720)),
            Some(Frames::skipped("ffmpeg is not on the PATH")),
            &WIDE,
            &Limits::default(),
        );
        assert!(c.passed());
    }

    #[test]
    fn it_serialises() {
        let c = judge(
            Ok(facts(2.0, 1280, 720)),
            signals(0.0, 0.0),
            &WIDE,
            &Limits::default(),
        );
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["verdict"], "bad_output");
        assert_eq!(v["failures"][0]["kind"], "duration");
        assert_eq!(v["frames"]["status"], "measured");
        assert_eq!(v["facts"]["width"], 1280);
        let back: Check = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
        assert_eq!(
            c.summary(),
            "bad output: duration 2.0 s, asked for 8 s (mp4 h264 1280x720, 2.0 s, 48 frames at 24 fps; black 0 %, frozen 0 %, flicker 0.050)"
        );
        assert_eq!(
            Check::not_checked("the video was not downloaded").summary(),
            "not checked: the video was not downloaded"
        );
        assert_eq!(parse_aspect("16:9"), Some((16, 9)));
        assert_eq!(parse_aspect("wide"), None);
    }
}
