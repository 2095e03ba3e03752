//! Output checks (issue 14 §1) on real MP4 files made here by ffmpeg's test sources: good clips
//! pass with their facts, broken ones give `bad_output` with the right reason, and through the
//! router a bad video is paid for, counted against its backend, and fallen back from.

#[path = "common/clips.rs"]
mod clips;
mod common;
#[path = "common/scratch.rs"]
mod scratch;
#[path = "common/videos_stub.rs"]
mod videos_stub;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use genroute::exec::{DirSink, ManualClock, Router};
use genroute::output::{self, container, BadOutput, Check, Expect, Frames, Limits, Verdict};
use genroute::store::memory::MemoryStore;
use genroute::store::{EntryState, Store};
use genroute::{Policy, RequestBuilder};

fn good(dir: &Path) -> PathBuf {
    clips::clip(
        dir,
        "good.mp4",
        "testsrc2=size=320x180:rate=24",
        &["-t", "8"],
    )
}

const WIDE: Expect = Expect {
    duration_s: 8.0,
    aspect: Some((16, 9)),
};

async fn check(path: &Path) -> Check {
    let ff = clips::ffmpeg();
    output::check_file(
        path,
        &WIDE,
        &Limits::default(),
        Some(&ff),
        Duration::from_secs(120),
    )
    .await
}

fn truncate(path: &Path, keep: f64) -> PathBuf {
    let data = std::fs::read(path).unwrap();
    let cut = path.with_extension("cut.mp4");
    std::fs::write(&cut, &data[..(data.len() as f64 * keep) as usize]).unwrap();
    cut
}

#[tokio::test]
async fn a_good_clip_passes_with_its_facts() {
    let dir = scratch::scratch();
    let c = check(&good(&dir)).await;
    assert_eq!(c.verdict, Verdict::Passed, "{c:?}");
    let f = c.facts.as_ref().unwrap();
    assert_eq!(f.container, "mp4");
    assert_eq!(f.codec, "h264");
    assert_eq!((f.width, f.height), (320, 180));
    assert_eq!(f.frames, 192);
    assert!((f.duration_s - 8.0).abs() < 0.01, "{f:?}");
    assert!((f.fps - 24.0).abs() < 0.01, "{f:?}");
    assert_eq!(
        f.bytes,
        std::fs::metadata(dir.join("good.mp4")).unwrap().len()
    );
    let Some(Frames::Measured(s)) = &c.frames else {
        panic!("frames not measured: {c:?}")
    };
    assert_eq!(s.frames_decoded, 192);
    assert!(s.black_fraction < 0.1 && s.frozen_fraction < 0.1, "{s:?}");
    assert!(s.flicker > 0.0 && s.flicker < 0.5, "{s:?}");
}

#[tokio::test]
async fn truncated_files_are_caught_with_moov_first_and_last() {
    let dir = scratch::scratch();
    let last = good(&dir);
    let first = clips::clip(
        &dir,
        "faststart.mp4",
        "testsrc2=size=320x180:rate=24",
        &["-t", "8", "-movflags", "+faststart"],
    );
    for (name, file) in [("moov first", first), ("moov last", last)] {
        let cut = truncate(&file, 0.6);
        let size = std::fs::metadata(&cut).unwrap().len();
        let c = check(&cut).await;
        assert_eq!(c.verdict, Verdict::BadOutput, "{name}: {c:?}");
        let reason = c.reason.clone().unwrap();
        assert!(
            reason.starts_with("truncated: ")
                && reason.ends_with(&format!("of a file of {size} bytes")),
            "{name}: {reason}"
        );
        if name == "moov first" {
            assert!(reason.contains("the video track ends at byte"), "{reason}");
        } else {
            assert!(reason.contains("box `mdat` ends at byte"), "{reason}");
        }
        assert!(matches!(c.failures[0], BadOutput::Truncated { .. }));
        assert_eq!(
            c.frames,
            Some(Frames::skipped("the container check failed"))
        );
    }
}

#[tokio::test]
async fn random_bytes_are_not_a_video() {
    let dir = scratch::scratch();
    let path = dir.join("noise.mp4");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..100_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&path, &bytes).unwrap();
    let c = check(&path).await;
    assert_eq!(c.verdict, Verdict::BadOutput);
    assert!(
        c.reason.as_deref().unwrap().starts_with("not a video: "),
        "{c:?}"
    );
}

#[tokio::test]
async fn no_video_track_is_bad_output() {
    let dir = scratch::scratch();
    let out = clips::lavfi(&dir, "tone.mp4", "sine=duration=2", &["-c:a", "aac"]);
    let c = check(&out).await;
    assert_eq!(c.verdict, Verdict::BadOutput);
    assert_eq!(
        c.reason.as_deref(),
        Some("no video track (the file has 1 other track(s))")
    );
}

#[tokio::test]
async fn a_short_clip_a_square_clip_a_black_clip_and_a_frozen_clip_fail() {
    let dir = scratch::scratch();
    let cases = [
        (
            clips::clip(&dir, "short.mp4", "testsrc2=size=320x180:rate=24", &["-t", "2"]),
            "duration 2.0 s, asked for 8 s",
        ),
        (
            clips::clip(&dir, "square.mp4", "testsrc2=size=240x240:rate=24", &["-t", "8"]),
            "aspect ratio 1:1 (240x240), asked for 16:9",
        ),
        (
            clips::clip(&dir, "black.mp4", "color=black:size=320x180:rate=24", &["-t", "8"]),
            "black for 100 % of the clip",
        ),
        (
            clips::clip(
                &dir,
                "frozen.mp4",
                "testsrc2=size=320x180:rate=24,trim=duration=0.5,tpad=stop_mode=clone:stop_duration=7.5",
                &[],
            ),
            "frozen for 9",
        ),
    ];
    for (path, want) in cases {
        let c = check(&path).await;
        assert_eq!(c.verdict, Verdict::BadOutput, "{c:?}");
        let reason = c.reason.unwrap();
        // The all-black clip is frozen too; its first reason is the black one.
        assert!(
            reason.starts_with(want),
            "{} gave {reason:?}",
            path.display()
        );
    }
}

#[tokio::test]
async fn without_ffmpeg_the_frame_checks_are_skipped() {
    let dir = scratch::scratch();
    let black = clips::clip(
        &dir,
        "black.mp4",
        "color=black:size=320x180:rate=24",
        &["-t", "8"],
    );
    let c = output::check_file(
        &black,
        &WIDE,
        &Limits::default(),
        None,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(c.verdict, Verdict::Passed, "{c:?}");
    assert_eq!(c.frames, Some(Frames::skipped("ffmpeg is not on the PATH")));
    // The container facts of bytes in memory are the file's.
    let bytes = std::fs::read(&black).unwrap();
    assert_eq!(container::inspect_bytes(&bytes).unwrap(), c.facts.unwrap());
}

/// Two `/v1/videos` backends: the first serves `bad`, the second `good`.
fn policy(first: &str, second: &str) -> Policy {
    let backend = |name: &str, priority: u32, url: &str| {
        format!(
            r#"
  {name}:
    priority: {priority}
    type: self_hosted
    cost: {{per_video_usd: 0.02}}
    quality: {{score: 0.8}}
    performance: {{avg_generation_time_seconds: 1, max_generation_time_seconds: 60}}
    api: {{protocol: videos, base_url: "{url}", poll_interval_seconds: 0.1}}"#
        )
    };
    let yaml = format!(
        r#"
budget: {{monthly_budget_usd: 10.00, cost_threshold_usd: 9.00}}
backends:{}{}
selection_rules:
  - name: first
    condition: "true"
    backend: first
"#,
        backend("first", 1, first),
        backend("second", 2, second)
    );
    Policy::load(
        genroute::Source::new("output.yaml", &yaml),
        &genroute::LoadOptions { env: &|_| None },
    )
    .unwrap_or_else(|e| panic!("{e:?}"))
}

#[tokio::test]
async fn a_bad_video_is_paid_for_and_falls_back_to_the_next_backend() {
    let dir = scratch::scratch();
    let short = clips::clip(
        &dir,
        "short.mp4",
        "testsrc2=size=320x180:rate=24",
        &["-t", "2"],
    );
    let good = good(&dir);
    let (url1, stub1) = videos_stub::start(Duration::from_millis(300));
    let (url2, stub2) = videos_stub::start(Duration::from_millis(300));
    *stub1.content.lock().unwrap() = Some(std::fs::read(&short).unwrap());
    *stub2.content.lock().unwrap() = Some(std::fs::read(&good).unwrap());
    let policy = Arc::new(policy(&url1, &url2));
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 10, 12, 0, 0)
            .unwrap(),
    ));
    let videos = scratch::scratch();
    let router = Router::new(
        policy.clone(),
        store.clone(),
        &|_| None,
        clock.clone(),
        Arc::new(DirSink(videos.clone())),
    );
    let request = RequestBuilder::new("a paper boat on a river")
        .set("duration", 8)
        .build(&policy)
        .unwrap();
    let g = router.generate(&request).await.unwrap();
    let story: Vec<(&str, &str)> = g
        .attempts
        .iter()
        .map(|a| (a.backend.as_str(), a.outcome.as_str()))
        .collect();
    assert_eq!(
        story,
        [("first", "bad_output"), ("second", "success")],
        "{g:?}"
    );
    assert_eq!(
        g.attempts[0].message.as_deref(),
        Some("duration 2.0 s, asked for 8 s")
    );
    let bad = g.attempts[0].check.as_ref().unwrap();
    assert_eq!(bad.verdict, Verdict::BadOutput);
    let passed = g.attempts[1].check.as_ref().unwrap();
    assert_eq!(passed.verdict, Verdict::Passed);
    assert_eq!(passed.facts.as_ref().unwrap().frames, 192);
    assert_eq!(g.backend.as_deref(), Some("second"));
    let saved = g.video.as_deref().unwrap();
    assert_eq!(std::fs::read(saved).unwrap(), std::fs::read(&good).unwrap());
    // Both jobs were paid for: the bad video's money is spent, with its reason in the ledger.
    assert_eq!(g.cost_usd.to_string(), "0.04");
    let now = genroute::exec::Clock::now(&*clock);
    let entries = store.entries(None, now).await.unwrap();
    let notes: Vec<(&str, EntryState, Option<&str>)> = entries
        .iter()
        .map(|e| (e.backend.as_str(), e.state, e.note.as_deref()))
        .collect();
    assert_eq!(
        notes,
        [
            ("first", EntryState::Committed, Some("bad_output")),
            ("second", EntryState::Committed, None)
        ]
    );
    // The breaker counted a failure for the first backend.
    let breakers = store
        .breakers(&["first".into(), "second".into()])
        .await
        .unwrap();
    assert_eq!(breakers[0].failures, 1, "{breakers:?}");
    assert_eq!(breakers[1].failures, 0, "{breakers:?}");
    // The attempts serialise with the check, as `generate --format json` and the server show.
    let v = serde_json::to_value(&g).unwrap();
    assert_eq!(v["attempts"][0]["outcome"], "bad_output");
    assert_eq!(v["attempts"][0]["check"]["failures"][0]["kind"], "duration");
    assert_eq!(v["attempts"][1]["check"]["facts"]["width"], 320);
    drop((stub1, stub2));
}

const SIM: &str = r#"
budget: {monthly_budget_usd: 10.00, cost_threshold_usd: 9.00}
backends:
  sim:
    priority: 1
    type: simulated
    cost: {per_video_usd: 0.02}
    quality: {score: 0.8}
    performance: {avg_generation_time_seconds: 1, max_generation_time_seconds: 60}
"#;

#[test]
fn the_policy_knobs_load_with_defaults_and_located_errors() {
    let p = common::policy(SIM);
    let c = p.execution.output_checks;
    assert!(c.enabled);
    assert_eq!(c.limits(), Limits::default());
    let p = common::policy(&format!(
        "{SIM}execution:\n  output_checks:\n    duration_tolerance: 0.5\n    max_black_fraction: null\n    max_flicker: 0.3\n    frames: required\n    frame_timeout_seconds: 5\n"
    ));
    let l = p.execution.output_checks.limits();
    assert_eq!(l.duration_tolerance, 0.5);
    assert_eq!(l.max_black_fraction, None);
    assert_eq!(l.max_frozen_fraction, Some(0.9));
    assert_eq!(l.max_flicker, Some(0.3));
    assert!(l.frames_required);
    assert_eq!(p.execution.output_checks.frame_timeout.to_string(), "5");
    let d = common::diagnostics(
        "bad.yaml",
        &format!("{SIM}execution:\n  output_checks:\n    frames: sometimes\n    max_frozen_fraction: 2\n    frame_timeout_seconds: 0\n    enabeld: false\n"),
    );
    for want in [
        "`sometimes` is not `auto`, `off` or `required`",
        "max_frozen_fraction is 2; it must be between 0 and 1",
        "frame_timeout_seconds is 0; it must be above 0",
        "bad.yaml:13:",
        "`enabled`",
    ] {
        assert!(d.contains(want), "{want:?} missing from:\n{d}");
    }
}

#[tokio::test]
async fn a_simulated_backend_is_not_checked_and_still_succeeds() {
    let p = Arc::new(common::policy(SIM));
    let router = Router::new(
        p.clone(),
        Arc::new(MemoryStore::new()),
        &|_| None,
        Arc::new(genroute::exec::SystemClock),
        Arc::new(DirSink(scratch::scratch())),
    );
    let g = router
        .generate(&RequestBuilder::new("a kite").build(&p).unwrap())
        .await
        .unwrap();
    assert_eq!(g.attempts[0].outcome, "success");
    let c = g.attempts[0].check.as_ref().unwrap();
    assert_eq!(c.verdict, Verdict::NotChecked);
    assert_eq!(
        c.reason.as_deref(),
        Some("simulated: the backend produced no file")
    );
}
