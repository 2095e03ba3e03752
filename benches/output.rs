//! The cost of checking a delivered video's container (issue 14: under 1 ms for 10 MB).
//!
//! A 10 MB MP4 (8 s of `testsrc2` at 1280x720 and about 12 Mbit/s (10 to 11 MB), its `moov` last, as ffmpeg
//! writes it by default) is made with ffmpeg in a temporary directory, then checked:
//! - `container_file_10mb`: from the file, as [`genroute::output::check_file`] does it (open,
//!   box headers, seek past the `mdat`, read and parse the `moov`, the sample-table walk);
//! - `container_bytes_10mb`: the same on bytes in memory, as the executor checks a download;
//! - `judge`: the verdict from the facts.
//!
//! Each answer is asserted before it is timed. Without ffmpeg on the PATH the bench says so
//! and measures nothing.

use std::hint::black_box;
use std::io::BufReader;

use criterion::{criterion_group, criterion_main, Criterion};
use genroute::output::{container, judge, Expect, Limits, Verdict};

// The tests' clip helper: every MP4 the project makes for itself comes from one place.
#[path = "../tests/common/clips.rs"]
mod clips;

fn make_clip(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    genroute::output::frames::find_ffmpeg()?;
    let rate = [
        "-b:v", "12M", "-minrate", "12M", "-maxrate", "12M", "-bufsize", "2M",
    ];
    let mut extra = vec!["-t", "8", "-preset", "ultrafast"];
    extra.extend_from_slice(&rate);
    Some(clips::clip(
        dir,
        "ten-mb.mp4",
        "testsrc2=size=1280x720:rate=24",
        &extra,
    ))
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = make_clip(dir.path()) else {
        eprintln!("ffmpeg is not on the PATH (apt-get install ffmpeg): nothing to measure");
        return;
    };
    let bytes = std::fs::read(&path).unwrap();
    eprintln!("clip: {} bytes", bytes.len());
    assert!(bytes.len() > 9_000_000, "the clip is {} bytes", bytes.len());
    let from_file = || {
        let f = std::fs::File::open(&path).unwrap();
        let size = f.metadata().unwrap().len();
        container::inspect(&mut BufReader::with_capacity(64 << 10, f), size)
    };
    let facts = from_file().unwrap();
    assert_eq!((facts.width, facts.height, facts.frames), (1280, 720, 192));
    assert_eq!(container::inspect_bytes(&bytes).unwrap(), facts);
    let expect = Expect::new(8.0, "16:9");
    assert_eq!(
        judge(Ok(facts.clone()), None, &expect, &Limits::default()).verdict,
        Verdict::Passed
    );

    let mut g = c.benchmark_group("output");
    g.bench_function("container_file_10mb", |b| b.iter(|| black_box(from_file())));
    g.bench_function("container_bytes_10mb", |b| {
        b.iter(|| black_box(container::inspect_bytes(black_box(&bytes))))
    });
    g.bench_function("judge", |b| {
        b.iter(|| {
            black_box(judge(
                Ok(black_box(facts.clone())),
                None,
                &expect,
                &Limits::default(),
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
