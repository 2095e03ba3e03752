//! The `ffmpeg` run behind the frame checks: found on the `PATH`, run under tokio with a timeout
//! and `kill_on_drop`. What it prints is parsed by the core ([`parse`], re-exported here).

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use genroute_core::output::frames::*;

/// Finds `ffmpeg` on the `PATH`.
pub fn find_ffmpeg() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("ffmpeg"))
        .find(|p| p.is_file())
}

/// Measures the frames of the video at `path` with the ffmpeg at `ffmpeg`, within `timeout`.
/// `duration_s` is the clip's duration from its container (the fractions are of it).
pub async fn measure(ffmpeg: &Path, path: &Path, duration_s: f64, timeout: Duration) -> Frames {
    let child = tokio::process::Command::new(ffmpeg)
        .args(["-hide_banner", "-nostats", "-nostdin", "-v", "info", "-i"])
        .arg(path)
        .args(["-an", "-vf", FILTERS, "-f", "null", "-"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => return Frames::skipped(format!("ffmpeg did not start: {e}")),
    };
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Frames::skipped(format!("ffmpeg failed: {e}")),
        // Dropping the future drops the child, which kills it (`kill_on_drop`).
        Err(_) => {
            return Frames::skipped(format!(
                "ffmpeg did not finish within {} s",
                timeout.as_secs_f64()
            ))
        }
    };
    let log = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let last = log
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Frames::skipped(format!(
            "ffmpeg could not decode the video ({}): {}",
            out.status,
            last.trim()
        ));
    }
    match parse(&log, duration_s) {
        Some(s) => Frames::Measured(s),
        None => Frames::skipped("ffmpeg decoded no frames"),
    }
}
