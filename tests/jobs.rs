//! Jobs that outlive their replica, end to end: real `genroute serve` processes on a real
//! redis-server (and on one SQLite file), a stub `/v1/videos` backend whose jobs take seconds
//! and which counts create calls, and a webhook receiver that checks signatures on its own.
//! The owner is killed with SIGKILL mid-job; another replica (or the restarted one) resumes
//! polling the recorded handle: one create at the provider, one commit in the ledger, one
//! signed end state at the receiver.

#[path = "common/redis_server.rs"]
mod redis_server;
#[path = "common/scratch.rs"]
mod scratch;
#[path = "common/serve.rs"]
mod serve;
#[path = "common/videos_stub.rs"]
mod videos_stub;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use genroute::store::{EntryState, Month, Store};
use genroute::Fixed;
use serde_json::{json, Value};
use serve::{get, post, replica_env, Replica};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn policy(dir: &std::path::Path, stub: &str) -> std::path::PathBuf {
    let path = dir.join("policy.yaml");
    std::fs::write(
        &path,
        format!(
            r#"
budget: {{monthly_budget_usd: 100.00, cost_threshold_usd: 90.00}}
backends:
  selfhosted:
    priority: 1
    type: self_hosted
    cost: {{per_video_usd: 0.10}}
    models: [CogVideoX-5b]
    quality: {{score: 0.9}}
    performance: {{avg_generation_time_seconds: 4, max_generation_time_seconds: 60}}
    api: {{protocol: openai, base_url: "{stub}", poll_interval_seconds: 0.2}}
    selection_criteria: {{budget_available: true}}
"#
        ),
    )
    .unwrap();
    path
}

fn start(policy: &std::path::Path, store: &str, data: &std::path::Path, extra: &[&str]) -> Replica {
    let mut args = vec!["--webhook-allow", "127.0.0.1", "--state-ttl-ms", "0"];
    if !extra.contains(&"--job-lease") {
        args.extend(["--job-lease", "2s"]);
    }
    args.extend_from_slice(extra);
    replica_env(
        policy,
        store,
        data,
        &args,
        &[("GENROUTE_WEBHOOK_SECRET", SECRET)],
    )
}

async fn job(client: &reqwest::Client, base: &str, id: &str) -> Value {
    get(
        client,
        &format!("{base}/v1/jobs/{id}"),
        Duration::from_secs(5),
    )
    .await
    .map(|(s, v)| {
        assert_eq!(s, 200, "{v}");
        v
    })
    .unwrap_or(Value::Null)
}

/// Polls job `id` on `base` until `done` holds, or panics after `limit`.
async fn until(
    client: &reqwest::Client,
    base: &str,
    id: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let v = job(client, base, id).await;
        if done(&v) {
            return v;
        }
        assert!(started.elapsed() < limit, "job {id} never got there: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn submit(client: &reqwest::Client, base: &str, body: Value) -> String {
    let (status, v) = post(
        client,
        &format!("{base}/v1/jobs"),
        body,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{v}");
    v["id"].as_str().unwrap().to_string()
}

fn ended(v: &Value) -> bool {
    !matches!(v["status"].as_str(), Some("queued" | "running") | None)
}

/// The ledger settled the job's cost exactly once, as committed spend.
async fn committed_once(store: &dyn Store, job_id: &str) {
    let now = chrono::Utc::now();
    let t = store.totals(Month::of(now), now).await.unwrap();
    assert_eq!(t.committed, "0.10".parse::<Fixed>().unwrap(), "{t:?}");
    assert_eq!(
        (t.reserved, t.in_doubt),
        (Fixed::ZERO, Fixed::ZERO),
        "{t:?}"
    );
    let entries: Vec<_> = store
        .entries(Some(Month::of(now)), now)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.request_id == job_id)
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].state, EntryState::Committed);
}

/// The receiver got the end state, signed, under one webhook-id.
async fn webhook_delivered(receiver: &videos_stub::Receiver, job_id: &str, tries: usize) {
    let started = Instant::now();
    loop {
        if receiver.got.lock().unwrap().len() >= tries {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no webhook arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), tries, "one delivery per try, no more");
    let ids: std::collections::BTreeSet<&String> =
        got.iter().map(|(h, _)| &h["webhook-id"]).collect();
    assert_eq!(
        ids.len(),
        1,
        "every try carries the same webhook-id: {ids:?}"
    );
    for (headers, body) in &got {
        assert!(
            videos_stub::signature_is_valid(SECRET, headers, body),
            "bad signature: {headers:?}"
        );
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            (v["id"].as_str(), v["status"].as_str()),
            (Some(job_id), Some("succeeded")),
            "{v}"
        );
        assert!(
            v.get("owner").is_none(),
            "the record sent out does not name its owner"
        );
    }
}

async fn taken_over_after_kill(
    store_url: String,
    store: Box<dyn Store>,
    two_replicas: bool,
    fail_first: u32,
) {
    let dir = scratch::scratch();
    let (stub_url, stub) = videos_stub::start(Duration::from_secs(4));
    let (hook, receiver) = videos_stub::receiver();
    receiver.fail_first.store(fail_first, Ordering::SeqCst);
    let policy = policy(&dir, &stub_url);
    let mut a = start(&policy, &store_url, &dir.join("a"), &[]);
    let b = two_replicas.then(|| start(&policy, &store_url, &dir.join("b"), &[]));
    let client = reqwest::Client::new();
    let id = submit(
        &client,
        &a.url,
        json!({"prompt": "a lighthouse at night", "webhook_url": hook}),
    )
    .await;
    let other = b.as_ref().map_or(a.url.clone(), |b| b.url.clone());
    // Any replica answers for any job; wait until the provider's handle is recorded.
    let v = until(&client, &other, &id, Duration::from_secs(10), |v| {
        v["current"]["phase"] == "created"
    })
    .await;
    assert!(v["current"]["handle"]["id"].as_str().is_some(), "{v}");
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let _restarted;
    let survivor = match &b {
        Some(b) => b.url.clone(),
        None => {
            _restarted = start(&policy, &store_url, &dir.join("a"), &[]);
            _restarted.url.clone()
        }
    };
    let v = until(&client, &survivor, &id, Duration::from_secs(30), ended).await;
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(v["result"]["backend"], "selfhosted");
    assert_eq!(
        stub.creates.load(Ordering::SeqCst),
        1,
        "the job was created once, never again"
    );
    committed_once(&*store, &id).await;
    webhook_delivered(&receiver, &id, fail_first as usize + 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_outlives_its_replica_on_redis() {
    let redis = redis_server::start();
    let store = genroute::store::redis::RedisStore::open(&redis.url(), Duration::from_secs(5))
        .await
        .unwrap();
    taken_over_after_kill(redis.url(), Box::new(store), true, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_outlives_its_process_on_one_sqlite_file_and_its_webhook_is_retried() {
    let dir = scratch::scratch();
    let path = dir.join("ledger.sqlite3");
    let url = format!("sqlite:{}", path.display());
    // The store file is made by the first replica; open it for reading once it exists.
    std::fs::create_dir_all(&dir).unwrap();
    let store = genroute::store::sqlite::SqliteStore::open(&path, Duration::from_secs(5)).unwrap();
    taken_over_after_kill(url, Box::new(store), true, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_replica_resumes_its_own_job() {
    let dir = scratch::scratch();
    let path = dir.join("ledger.sqlite3");
    let url = format!("sqlite:{}", path.display());
    let store = genroute::store::sqlite::SqliteStore::open(&path, Duration::from_secs(5)).unwrap();
    taken_over_after_kill(url, Box::new(store), false, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_releases_a_job_the_provider_had_not_started_and_keeps_a_running_one_in_doubt() {
    let dir = scratch::scratch();
    let (stub_url, stub) = videos_stub::start(Duration::from_secs(20));
    *stub.queued_for.lock().unwrap() = Duration::from_secs(10);
    let policy = policy(&dir, &stub_url);
    let store_url = format!("sqlite:{}", dir.join("ledger.sqlite3").display());
    let r = start(&policy, &store_url, &dir.join("a"), &[]);
    let client = reqwest::Client::new();

    // Queued at the provider: the cancel is confirmed, nothing was produced, the money goes back.
    let queued = submit(&client, &r.url, json!({"prompt": "a queue"})).await;
    until(&client, &r.url, &queued, Duration::from_secs(10), |v| {
        v["current"]["phase"] == "created"
    })
    .await;
    let resp = client
        .delete(format!("{}/v1/jobs/{queued}", r.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        (v["cancelled"].as_bool(), v["money"].as_str()),
        (Some(true), Some("released")),
        "{v}"
    );
    assert_eq!(v["job"]["status"], "cancelled");
    assert_eq!(
        stub.deletes.load(Ordering::SeqCst),
        1,
        "the provider saw the DELETE"
    );

    // Running at the provider: cancelled there too, but it may be billed: kept in doubt.
    *stub.queued_for.lock().unwrap() = Duration::from_millis(100);
    let running = submit(&client, &r.url, json!({"prompt": "a runner"})).await;
    until(&client, &r.url, &running, Duration::from_secs(10), |v| {
        v["current"]["phase"] == "created"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let resp = client
        .delete(format!("{}/v1/jobs/{running}", r.url))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["money"], "in_doubt", "{v}");
    assert_eq!(stub.deletes.load(Ordering::SeqCst), 2);
    // An ended job cannot be cancelled again.
    let resp = client
        .delete(format!("{}/v1/jobs/{running}", r.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let resp = client
        .delete(format!("{}/v1/jobs/nope", r.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    // The command line reads the same records.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_genroute"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = cli(&["jobs", "list", "--store", &store_url]);
    assert!(
        listed.contains(&queued) && listed.contains(&running) && listed.contains("2 jobs"),
        "{listed}"
    );
    let shown = cli(&[
        "jobs", "show", &queued, "--store", &store_url, "--format", "json",
    ]);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["status"], "cancelled", "{shown}");

    let (_, budget) = get(
        &client,
        &format!("{}/v1/budget", r.url),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let usd = |k: &str| budget[k].to_string().parse::<Fixed>().unwrap();
    assert_eq!(usd("in_doubt_usd"), "0.10".parse().unwrap(), "{budget}");
    assert_eq!(usd("committed_usd"), Fixed::ZERO, "{budget}");
    assert_eq!(usd("reserved_usd"), Fixed::ZERO, "{budget}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_create_whose_answer_died_with_its_replica_is_in_doubt_and_never_sent_again() {
    let redis = redis_server::start();
    let dir = scratch::scratch();
    let (stub_url, stub) = videos_stub::start(Duration::from_secs(2));
    *stub.create_delay.lock().unwrap() = Duration::from_secs(3);
    let policy = policy(&dir, &stub_url);
    let mut a = start(&policy, &redis.url(), &dir.join("a"), &[]);
    let b = start(&policy, &redis.url(), &dir.join("b"), &[]);
    let client = reqwest::Client::new();
    let id = submit(&client, &a.url, json!({"prompt": "a slow create"})).await;
    until(&client, &b.url, &id, Duration::from_secs(10), |v| {
        v["current"]["phase"] == "sent"
    })
    .await;
    // Killed while the provider holds the create (its answer is 3 s away): the mark `sent`
    // is written before the call goes out, so wait for the stub to have it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while stub.creates.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the create never reached the provider"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let v = until(&client, &b.url, &id, Duration::from_secs(30), ended).await;
    assert_eq!(v["status"], "in_doubt", "{v}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        stub.creates.load(Ordering::SeqCst),
        1,
        "never submitted again"
    );
    let store = genroute::store::redis::RedisStore::open(&redis.url(), Duration::from_secs(5))
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let t = store.totals(Month::of(now), now).await.unwrap();
    assert_eq!(
        t.in_doubt,
        "0.10".parse::<Fixed>().unwrap(),
        "the money stays counted: {t:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_gives_a_running_job_to_another_replica_before_its_lease_would_lapse() {
    let redis = redis_server::start();
    let dir = scratch::scratch();
    let (stub_url, stub) = videos_stub::start(Duration::from_secs(6));
    let policy = policy(&dir, &stub_url);
    let long_lease = ["--job-lease", "20s", "--shutdown-grace", "1s"];
    let a = start(&policy, &redis.url(), &dir.join("a"), &long_lease);
    let b = start(&policy, &redis.url(), &dir.join("b"), &long_lease);
    let client = reqwest::Client::new();
    let id = submit(&client, &a.url, json!({"prompt": "a graceful handover"})).await;
    until(&client, &b.url, &id, Duration::from_secs(10), |v| {
        v["current"]["phase"] == "created"
    })
    .await;
    let stopped = Instant::now();
    a.terminate();
    let v = until(&client, &b.url, &id, Duration::from_secs(30), ended).await;
    assert_eq!(v["status"], "succeeded", "{v}");
    assert!(
        stopped.elapsed() < Duration::from_secs(15),
        "the job was resumed only after its 20 s lease lapsed: the lease was not given up"
    );
    assert_eq!(stub.creates.load(Ordering::SeqCst), 1);
    // New jobs are refused by the stopping replica while it drains (or it is gone already).
    let refused = post(
        &client,
        &format!("{}/v1/jobs", a.url),
        json!({"prompt": "late"}),
        Duration::from_secs(2),
    )
    .await;
    assert!(
        refused.as_ref().is_none_or(|(s, _)| *s == 503),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_go_only_where_the_operator_allowed() {
    let dir = scratch::scratch();
    let (stub_url, _stub) = videos_stub::start(Duration::from_secs(1));
    let policy = policy(&dir, &stub_url);
    let store_url = format!("sqlite:{}", dir.join("ledger.sqlite3").display());
    let r = start(&policy, &store_url, &dir.join("a"), &[]);
    let client = reqwest::Client::new();
    for url in [
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:9/hook",
        "file:///etc/passwd",
        "http://user:pw@127.0.0.1/hook",
    ] {
        let (status, v) = post(
            &client,
            &format!("{}/v1/jobs", r.url),
            json!({"prompt": "x", "webhook_url": url}),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(
            (status, v["error"]["field"].as_str()),
            (403, Some("webhook_url")),
            "{url}: {v}"
        );
    }
    // Without a signing secret the server takes no webhooks at all.
    let plain = serve::replica(
        &policy,
        &store_url,
        &dir.join("b"),
        &["--webhook-allow", "127.0.0.1"],
    );
    let (status, v) = post(
        &client,
        &format!("{}/v1/jobs", plain.url),
        json!({"prompt": "x", "webhook_url": "http://127.0.0.1:9/hook"}),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(status, 403, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("GENROUTE_WEBHOOK_SECRET"),
        "{v}"
    );
}
