#![allow(dead_code)]
//! `genroute serve` as a real process on a free loopback port, for replica and fault tests.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Replica {
    pub url: String,
    pub child: Child,
}

impl Replica {
    /// Sends SIGTERM (a graceful stop).
    pub fn terminate(&self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `genroute serve --policy P --store S --data-dir D EXTRA...` and waits until it
/// listens.
pub fn replica(policy: &Path, store: &str, data: &Path, extra: &[&str]) -> Replica {
    replica_env(policy, store, data, extra, &[])
}

/// [`replica`] with extra environment variables.
pub fn replica_env(
    policy: &Path,
    store: &str,
    data: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Replica {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_genroute"))
        .args([
            "serve",
            "--policy",
            policy.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--store",
            store,
        ])
        .arg("--data-dir")
        .arg(data)
        .args(extra)
        .env("GENROUTE_ADMIN_TOKEN", "t0ken")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("GENROUTE_TEST_LOGS").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "replica did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Replica { url, child }
}

/// POSTs JSON; returns the status and the body (`null` when the answer is not JSON), or
/// `None` if no answer came within `timeout`.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    body: serde_json::Value,
    timeout: Duration,
) -> Option<(u16, serde_json::Value)> {
    let resp = client
        .post(url)
        .json(&body)
        .timeout(timeout)
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    let v = resp.json().await.unwrap_or(serde_json::Value::Null);
    Some((status, v))
}

/// GETs; as [`post`].
pub async fn get(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Option<(u16, serde_json::Value)> {
    let resp = client.get(url).timeout(timeout).send().await.ok()?;
    let status = resp.status().as_u16();
    let v = resp.json().await.unwrap_or(serde_json::Value::Null);
    Some((status, v))
}

/// Polls `url` until `ok` holds for its answer, or panics after `limit`.
pub async fn eventually(
    client: &reqwest::Client,
    url: &str,
    limit: Duration,
    ok: impl Fn(u16, &serde_json::Value) -> bool,
) -> serde_json::Value {
    let started = Instant::now();
    loop {
        if let Some((status, v)) = get(client, url, Duration::from_secs(5)).await {
            if ok(status, &v) {
                return v;
            }
            assert!(
                started.elapsed() < limit,
                "{url} never reached the expected state; last answer {status}: {v}"
            );
        }
        assert!(started.elapsed() < limit, "{url} never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
