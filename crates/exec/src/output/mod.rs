//! Output checks where they touch files and processes: the container of a downloaded video is
//! read on a blocking thread, and its frames are measured by an `ffmpeg` child process under a
//! timeout. The records and the judging are the core's ([`genroute_core::output`], re-exported
//! here), so that what a check decides is a pure function and the store can keep its record.

pub mod frames;

use std::path::Path;
use std::time::Duration;

pub use genroute_core::output::*;

/// Where and how long the frame checks may run.
#[derive(Debug, Clone, Copy)]
pub struct FrameRun<'a> {
    /// The ffmpeg binary, or `None` when the frame checks do not run.
    pub ffmpeg: Option<&'a Path>,
    /// Why they do not run, when `ffmpeg` is `None`.
    pub skipped: &'static str,
    /// Bound of the ffmpeg run.
    pub timeout: Duration,
}

/// Checks the video file at `path`: its container (read on a blocking thread, off the async
/// workers), then its frames with `ffmpeg` when given one, within `timeout`.
pub async fn check_file(
    path: &Path,
    expect: &Expect,
    limits: &Limits,
    ffmpeg: Option<&Path>,
    timeout: Duration,
) -> Check {
    let owned = path.to_path_buf();
    let facts = tokio::task::spawn_blocking(move || -> Result<Facts, BadOutput> {
        let mut f = std::fs::File::open(&owned).map_err(|e| BadOutput::NotAVideo {
            detail: format!("cannot open `{}`: {e}", owned.display()),
        })?;
        let size = f
            .metadata()
            .map_err(|e| BadOutput::NotAVideo {
                detail: format!("cannot read `{}`: {e}", owned.display()),
            })?
            .len();
        genroute_core::output::container::inspect(
            &mut std::io::BufReader::with_capacity(64 << 10, &mut f),
            size,
        )
    })
    .await
    .unwrap_or_else(|e| {
        Err(BadOutput::NotAVideo {
            detail: format!("the check task failed: {e}"),
        })
    });
    let run = FrameRun {
        ffmpeg,
        skipped: "ffmpeg is not on the PATH",
        timeout,
    };
    check_frames(facts, path, expect, limits, run).await
}

/// Judges container facts already read, measuring the frames of the file at `path` first when
/// the container passed and `run` has an ffmpeg.
pub async fn check_frames(
    facts: Result<Facts, BadOutput>,
    path: &Path,
    expect: &Expect,
    limits: &Limits,
    run: FrameRun<'_>,
) -> Check {
    let frames = match (&facts, run.ffmpeg) {
        (Err(_), _) => Frames::skipped("the container check failed"),
        (Ok(_), None) => Frames::skipped(run.skipped),
        (Ok(f), Some(ffmpeg)) => frames::measure(ffmpeg, path, f.duration_s, run.timeout).await,
    };
    judge(facts, Some(frames), expect, limits)
}
