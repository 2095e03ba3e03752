#![allow(dead_code)]
//! A real three-master Redis Cluster on loopback, started once per test binary:
//! `redis-server --cluster-enabled yes` three times, then `redis-cli --cluster create`. Each
//! caller gets its own key prefix, so tests share the cluster without sharing keys.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::redis_server::{start_with, RedisServer};

pub struct Cluster {
    pub nodes: Vec<RedisServer>,
}

impl Cluster {
    /// `redis-cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`.
    pub fn base_url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis-cluster://{}", hosts.join(","))
    }
}

/// Starts a new cluster (most tests share [`shared`] instead).
pub fn start() -> Cluster {
    let nodes: Vec<RedisServer> = (0..3)
        .map(|_| {
            start_with(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "5000",
                "--save",
                "",
                "--appendonly",
                "no",
                "--databases",
                "1",
            ])
        })
        .collect();
    let hosts: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let out = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&hosts)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli is not installed: `apt-get install -y redis-tools`");
    assert!(
        out.status.success(),
        "redis-cli --cluster create failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let started = Instant::now();
    for n in &nodes {
        loop {
            let mut c = redis::Client::open(n.url().as_str())
                .unwrap()
                .get_connection()
                .unwrap();
            let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut c).unwrap();
            if info.contains("cluster_state:ok") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the cluster did not become ready: {info}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Cluster { nodes }
}

/// The cluster shared by this test binary.
pub fn shared() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(start)
}

/// A store URL on the shared cluster with a key prefix of its own.
pub fn url() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}?prefix=t{}-{}",
        shared().base_url(),
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}
