//! One handle for a single Redis or a Redis Cluster, both multiplexed and reconnecting on
//! their own, so the store's code does not care which it talks to.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::ledger::LedgerError;

/// A cheap-to-clone connection: clones share the one multiplexed socket (per node).
#[derive(Clone)]
pub enum Conn {
    /// One Redis (or Valkey).
    Single(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

/// `url` with any password replaced, for messages.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

fn bad_url(url: &str, e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Store(format!(
        "`{}` is not a Redis URL ({e}); give redis://HOST:PORT/DB or redis-cluster://HOST:PORT[,HOST:PORT...]",
        redact(url)
    ))
}

impl Conn {
    /// Connects (see [`super::RedisStore::open`] for the URL forms).
    pub async fn open(url: &str, timeout: Duration) -> Result<Conn, LedgerError> {
        let unreachable = |e: redis::RedisError| {
            LedgerError::Store(format!("cannot reach Redis at `{}`: {e}", redact(url)))
        };
        if let Some(rest) = url.strip_prefix("redis-cluster://") {
            let (auth, hosts) = match rest.rsplit_once('@') {
                Some((auth, hosts)) => (format!("{auth}@"), hosts),
                None => (String::new(), rest),
            };
            let nodes: Vec<String> = hosts
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(|h| format!("redis://{auth}{h}"))
                .collect();
            if nodes.is_empty() {
                return Err(bad_url(url, "no HOST:PORT after redis-cluster://"));
            }
            let client = redis::cluster::ClusterClient::builder(nodes)
                .connection_timeout(timeout)
                .response_timeout(timeout)
                .retries(1)
                .build()
                .map_err(|e| bad_url(url, e))?;
            let conn = client.get_async_connection().await.map_err(unreachable)?;
            return Ok(Conn::Cluster(conn));
        }
        let client = redis::Client::open(url).map_err(|e| bad_url(url, e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unreachable)?;
        Ok(Conn::Single(conn))
    }

    /// `redis` or `redis-cluster`.
    pub fn kind(&self) -> &'static str {
        match self {
            Conn::Single(_) => "redis",
            Conn::Cluster(_) => "redis-cluster",
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}
