//! Experiments in the running router (issue 14 §3): each arm's attempts are recorded in a real
//! SQLite ledger store, the rollback rule rolls the experiment back once, its arm's keys go to
//! the primary, and an operator's resume starts it afresh.

#[path = "common/scratch.rs"]
mod scratch;

use std::sync::Arc;
use std::time::Duration;

use genroute::exec::{DirSink, Router, SystemClock};
use genroute::store::sqlite::SqliteStore;
use genroute::{Policy, RequestBuilder};

/// The split fixture with PixVerse failing every call and a small minimum sample.
fn policy() -> Policy {
    let text = include_str!("fixtures/split.yaml")
        .replace(
            "simulation: {pass_rate: 0.70, seed: 7}",
            "simulation: {failure_rate: 1, seed: 7}",
        )
        .replace("min_samples: 30", "min_samples: 5");
    Policy::from_yaml("split.yaml", &text).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn an_experiment_rolls_back_in_the_store_and_an_operator_resumes_it() {
    let policy = Arc::new(policy());
    let store = Arc::new(
        SqliteStore::open(
            &scratch::scratch().join("ledger.sqlite3"),
            Duration::from_secs(5),
        )
        .unwrap(),
    );
    let router = Router::new(
        policy.clone(),
        store,
        &|_| None,
        Arc::new(SystemClock),
        Arc::new(DirSink(scratch::scratch())),
    );
    let request = |user: &str| {
        RequestBuilder::new("a kite over a beach")
            .set("priority", "balanced")
            .set("quality_threshold", 0.5)
            .set("user", user)
            .build(&policy)
            .unwrap()
    };
    let before = router.experiments().await.unwrap();
    assert_eq!(before[0].status, "running");
    let mut pixverse_first = 0;
    for u in 0..150 {
        let g = router.generate(&request(&format!("u{u}"))).await.unwrap();
        if g.attempts[0].backend == "pixverse" {
            pixverse_first += 1;
            // Its call failed; Veo served the request as the fallback.
            assert_eq!(g.attempts[0].outcome, "retryable", "{g:?}");
        }
        assert!(g.video.is_some(), "{g:?}");
    }
    assert!(pixverse_first >= 5, "{pixverse_first}");
    let after = router.experiments().await.unwrap();
    let e = &after[0];
    assert_eq!(e.status, "rolled_back", "{e:?}");
    let rollback = e.rollback.as_ref().unwrap();
    assert_eq!(rollback.arm, "pixverse");
    assert!(
        rollback.reason.contains("under 90 %"),
        "{}",
        rollback.reason
    );
    let pix = e.arms.iter().find(|a| a.backend == "pixverse").unwrap();
    assert_eq!(pix.figures.passes, 0);
    assert!(pix.figures.samples >= 5);

    // PixVerse's breaker opened on its failures; close it, so that only the rollback keeps
    // its keys away. Once the state cache reads the mark, every key goes to the primary.
    router.reset_breaker("pixverse").await.unwrap();
    router.cache().invalidate();
    for u in 0..200 {
        let steps = router.plan(&request(&format!("v{u}")), "id").await.unwrap();
        assert_eq!(steps[0].backend, "veo", "v{u}");
    }
    let why = router.explain(&request("bob")).await.unwrap().0;
    let split = &serde_json::to_value(&why).unwrap()["rules"][0]["split"];
    assert_eq!(split["experiment"]["status"], "rolled_back", "{split}");

    // Resumed by hand: running again, figures afresh, and the arm draws again.
    assert!(router.resume_experiment("pixverse_trial").await.unwrap());
    assert!(!router.resume_experiment("no_such").await.unwrap());
    let resumed = router.experiments().await.unwrap();
    assert_eq!(resumed[0].status, "running");
    assert!(resumed[0].arms.iter().all(|a| a.figures.samples == 0));
    let mut drawn = 0;
    for u in 0..200 {
        let steps = router.plan(&request(&format!("v{u}")), "id").await.unwrap();
        drawn += usize::from(steps[0].backend == "pixverse");
    }
    assert!(drawn > 10, "{drawn}");
}
