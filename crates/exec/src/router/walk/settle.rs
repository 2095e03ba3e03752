//! After the provider answers: the delivered video saved and checked, and the outcome
//! recorded in the ledger (commit, release, or keep in doubt) and in the backend's breaker.
//!
//! **Why the store's failures are only noted here.** The call has happened: a video that was
//! produced is returned even if its commit could not be written (its reservation, marked
//! sent, keeps counting and becomes in doubt at its expiry), so neither a paid video nor a
//! counted cent is lost; the attempt's message says what the ledger missed.

use std::time::Duration;

use super::{wall_ms, Ended};
use crate::adapter::{FailureClass, Outcome, Video};
use crate::output::{self, container, Check, Expect, FrameRun, Frames};
use crate::router::{Router, BAD_OUTPUT};
use genroute_core::breaker::{Breaker, BreakerChange};
use genroute_core::policy::FrameChecks;
use genroute_store::job::{Attempt, Current};
use genroute_store::{millis, StoreError};

/// What a backend's video is checked against: what genroute asked the server for. The
/// request's duration and aspect ratio, unless the backend's `api.parameters` fix them
/// (`size: 720x480`; `seconds`, or `num_frames` with `fps`): a server told to render 49 frames
/// at 8 fps is right to deliver 6.1 s for a 5 s request.
pub(super) fn expect_of(
    backend: &genroute_core::policy::Backend,
    duration_s: f64,
    aspect: &str,
) -> Expect {
    use genroute_core::policy::api::{parse_size, Param};
    let mut expect = Expect::new(duration_s, aspect);
    let Some(api) = &backend.api else {
        return expect;
    };
    let param = |name: &str| {
        api.parameters
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    };
    let number = |name: &str| match param(name) {
        Some(Param::Int(n)) => Some(*n as f64),
        Some(Param::Number(x)) => Some(x.to_f64()),
        _ => None,
    };
    if let Some(Param::Text(size)) = param("size") {
        if let Some((w, h)) = parse_size(size) {
            expect.aspect = Some((w, h));
        }
    }
    if let Some(seconds) = number("seconds") {
        expect.duration_s = seconds;
    } else if let (Some(frames), Some(fps)) = (number("num_frames"), number("fps")) {
        if fps > 0.0 {
            expect.duration_s = frames / fps;
        }
    }
    expect
}

impl Router {
    /// Saves and checks a delivered video (see [`crate::output`]): the container of bytes in
    /// memory first (a file that is not a video is not saved), then the frames of the saved
    /// file. A URI that genroute does not download is recorded as not checked.
    async fn deliver(
        &self,
        request_id: &str,
        video: &Video,
        expect: &Expect,
    ) -> (Result<String, String>, Check) {
        let checks = self.policy.execution.output_checks;
        let (data, mime) = match video {
            Video::Uri(u) if u.starts_with("sim://") => {
                return (
                    Ok(u.clone()),
                    Check::not_checked("simulated: the backend produced no file"),
                )
            }
            Video::Uri(u) => {
                return (
                    Ok(u.clone()),
                    Check::not_checked("the video was not downloaded"),
                )
            }
            Video::Bytes { data, mime } => (data.clone(), mime.clone()),
        };
        // A file write can stall (a slow or full disk), and the container check reads the
        // file's index: both off the async workers.
        let sink = self.sink.clone();
        let rid = request_id.to_string();
        let enabled = checks.enabled;
        let ran = tokio::task::spawn_blocking(move || {
            let facts = enabled.then(|| container::inspect_bytes(&data));
            if let Some(Err(_)) = &facts {
                return (
                    Err("the video failed its container check".to_string()),
                    facts,
                );
            }
            (sink.store(&rid, &data, &mime), facts)
        })
        .await;
        let (saved, facts) =
            ran.unwrap_or_else(|e| (Err(format!("the save task failed: {e}")), None));
        let Some(facts) = facts else {
            return (
                saved,
                Check::not_checked("output checks are off (`execution.output_checks.enabled`)"),
            );
        };
        let limits = checks.limits();
        let Ok(path) = &saved else {
            return (
                saved.clone(),
                output::judge(
                    facts,
                    Some(Frames::skipped("the video was not saved to a file")),
                    expect,
                    &limits,
                ),
            );
        };
        let run = FrameRun {
            ffmpeg: match checks.frames {
                FrameChecks::Off => None,
                _ => self.ffmpeg.as_deref(),
            },
            skipped: match checks.frames {
                FrameChecks::Off => "`execution.output_checks.frames` is `off`",
                _ => "ffmpeg is not on the PATH",
            },
            timeout: Duration::from_micros(checks.frame_timeout.micros().max(1) as u64),
        };
        let check =
            output::check_frames(facts, std::path::Path::new(path), expect, &limits, run).await;
        (saved, check)
    }

    /// Records an attempt's outcome in the ledger and its breaker; saves and checks its video.
    pub(super) async fn settle(
        &self,
        b: u16,
        request_id: &str,
        mut attempt: Attempt,
        c: &Current,
        outcome: Outcome,
        expect: &Expect,
    ) -> Ended {
        attempt.latency_ms = (wall_ms() - c.started_ms).max(0) as u64;
        let done = self.clock.now();
        let id = &c.reservation;
        let (recorded, change, video) = match outcome {
            Ok(success) => {
                let (saved, check) = self.deliver(request_id, &success.video, expect).await;
                attempt.cost_usd = c.cost;
                attempt.simulated_seconds = success.simulated_seconds;
                attempt.model = success.model.clone().or(attempt.model);
                if !check.passed() {
                    // The provider finished the job: the money is spent, the backend failed.
                    let recorded = self.store.commit_noted(id, BAD_OUTPUT, done).await;
                    attempt.outcome = BAD_OUTPUT.into();
                    attempt.message = check.reason.clone();
                    attempt.check = Some(check);
                    if let Ok(path) = &saved {
                        // A video that failed its checks is not kept.
                        let _ = tokio::fs::remove_file(path).await;
                    }
                    (recorded, BreakerChange::Failure, None)
                } else {
                    let recorded = self.store.commit(id, done).await;
                    attempt.outcome = "success".into();
                    attempt.check = Some(check);
                    let video = match saved {
                        Ok(v) => Some((success, v)),
                        Err(message) => {
                            // Paid for, but lost locally: keep the spend, report the failure.
                            attempt.message = Some(format!(
                                "the video was generated but could not be saved: {message}"
                            ));
                            None
                        }
                    };
                    (recorded, BreakerChange::Success, video)
                }
            }
            Err(f) => {
                let recorded = if f.in_doubt {
                    attempt.cost_usd = c.cost;
                    self.store.keep_in_doubt(id, f.class.as_str(), done).await
                } else {
                    self.store.release(id, f.class.as_str(), done).await
                };
                attempt.outcome = f.class.as_str().to_string();
                attempt.message = Some(f.message);
                attempt.in_doubt = f.in_doubt;
                // A refusal says nothing about the backend's health: hand the probe back.
                let change = if f.class == FailureClass::ContentRejected {
                    BreakerChange::Neutral
                } else {
                    BreakerChange::Failure
                };
                (recorded, change, None)
            }
        };
        if recorded.is_ok() {
            self.record_breaker(b, change).await;
        }
        Ended {
            attempt: self.noted(attempt, id, recorded),
            video,
        }
    }

    /// Applies a change to backend `b`'s breaker. A change that leaves the breaker as the
    /// state cache last saw it within its TTL (a call admitted, or a success, while closed; a
    /// call refused while open) needs no store round trip: deciding already trusts figures
    /// that old, and nothing is spent on them. Any change that changes something goes to the
    /// store, atomically.
    pub(super) async fn breaker(
        &self,
        b: u16,
        change: BreakerChange,
        now_ms: i64,
    ) -> Result<(Breaker, bool), StoreError> {
        let backend = &self.policy.backends[b as usize];
        if let Some(known) = self
            .cache
            .fresh()
            .and_then(|s| s.breakers.get(b as usize).copied())
        {
            let mut next = known;
            let admitted = next.apply(change, now_ms, &backend.breaker);
            if next == known {
                return Ok((next, admitted));
            }
        }
        self.store
            .update_breaker(&backend.name, change, now_ms, backend.breaker)
            .await
    }

    /// Reports a call's verdict to its backend's breaker; a store failure here is logged (the
    /// breaker only misses one data point).
    pub(super) async fn record_breaker(&self, b: u16, change: BreakerChange) {
        let at = millis(self.clock.now());
        if let Err(e) = self.breaker(b, change, at).await {
            let name = &self.policy.backends[b as usize].name;
            tracing::warn!(backend = %name, "could not record a call's outcome in its breaker: {e}");
        }
    }

    /// Adds to an attempt's message when the ledger could not record its outcome. The money
    /// is still counted: the reservation was marked sent, so it becomes in doubt at expiry.
    pub(super) fn noted(
        &self,
        mut attempt: Attempt,
        id: &str,
        recorded: Result<(), StoreError>,
    ) -> Attempt {
        if let Err(e) = recorded {
            tracing::error!(reservation = %id, "the ledger did not record a call's outcome: {e}");
            let note = format!(
                "the ledger did not record this outcome ({e}); reservation `{id}` keeps counting and becomes in doubt at its expiry"
            );
            attempt.message = Some(match attempt.message.take() {
                Some(m) => format!("{m}; {note}"),
                None => note,
            });
        }
        attempt
    }
}
