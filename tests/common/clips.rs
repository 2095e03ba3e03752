//! Real media files made by ffmpeg from its `lavfi` test sources (`testsrc2`, `color`,
//! `sine`), for the tests that check or serve actual MP4s.
//!
//! One helper so that every test makes its clips with the same flags: quiet, overwriting, and
//! H.264 in yuv420p (what every decoder and the output checks read).

use std::path::{Path, PathBuf};

/// The ffmpeg on the PATH: the tests that include this module need it.
pub fn ffmpeg() -> PathBuf {
    genroute::output::frames::find_ffmpeg().expect(
        "ffmpeg is not on the PATH: these tests make their MP4s with it (apt-get install ffmpeg)",
    )
}

/// Makes `name` in `dir` from the lavfi `source`, with these output arguments (codecs,
/// duration).
pub fn lavfi(dir: &Path, name: &str, source: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let status = std::process::Command::new(ffmpeg())
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            source,
        ])
        .args(args)
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(
        status.success(),
        "ffmpeg could not make {name} from {source}"
    );
    out
}

/// An H.264 MP4 `name` in `dir` from the lavfi video `source`, with extra output arguments
/// (`-t SECONDS`, ...).
pub fn clip(dir: &Path, name: &str, source: &str, extra: &[&str]) -> PathBuf {
    let mut args = vec!["-c:v", "libx264", "-pix_fmt", "yuv420p"];
    args.extend_from_slice(extra);
    lavfi(dir, name, source, &args)
}
