//! One handle for a single Redis or a Redis Cluster, both multiplexed and reconnecting on
//! their own, so the store's code does not care which it talks to.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::error::StoreError;

/// A cheap-to-clone connection: clones share the one multiplexed socket (per node).
#[derive(Clone)]
pub struct Conn {
    inner: Inner,
    retry: bool,
}

#[derive(Clone)]
enum Inner {
    /// One Redis (or Valkey).
    Single(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

/// Whether an error says the connection was lost (and the client reconnects), as opposed to
/// a timeout or an answer from Redis.
fn dropped(e: &redis::RedisError) -> bool {
    (e.is_connection_dropped() || e.is_connection_refusal() || e.is_io_error()) && !e.is_timeout()
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

fn bad_url(url: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Store(format!(
        "`{}` is not a Redis URL ({e}); give redis://HOST:PORT/DB or redis-cluster://HOST:PORT[,HOST:PORT...]",
        redact(url)
    ))
}

impl Conn {
    /// Connects (see [`super::RedisStore::open`] for the URL forms).
    pub async fn open(url: &str, timeout: Duration) -> Result<Conn, StoreError> {
        let unreachable = |e: redis::RedisError| {
            StoreError::Store(format!("cannot reach Redis at `{}`: {e}", redact(url)))
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
            return Ok(Conn {
                inner: Inner::Cluster(conn),
                retry: false,
            });
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
        Ok(Conn {
            inner: Inner::Single(conn),
            retry: false,
        })
    }

    /// The same connection, but a command that meets a lost connection (Redis restarted, a
    /// failover) is sent once more, on the connection the client re-establishes. Only for
    /// commands that are safe to repeat: reads, and writes whose repetition can only count
    /// more (a second reservation that is never used is released at its expiry), never less.
    pub fn retrying(&self) -> Conn {
        Conn {
            inner: self.inner.clone(),
            retry: true,
        }
    }

    /// `redis` or `redis-cluster`.
    pub fn kind(&self) -> &'static str {
        match self.inner {
            Inner::Single(_) => "redis",
            Inner::Cluster(_) => "redis-cluster",
        }
    }
}

impl Inner {
    async fn command(&mut self, cmd: &Cmd) -> redis::RedisResult<Value> {
        match self {
            Inner::Single(c) => c.req_packed_command(cmd).await,
            Inner::Cluster(c) => c.req_packed_command(cmd).await,
        }
    }

    async fn commands(
        &mut self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisResult<Vec<Value>> {
        match self {
            Inner::Single(c) => c.req_packed_commands(pipeline, offset, count).await,
            Inner::Cluster(c) => c.req_packed_commands(pipeline, offset, count).await,
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            match self.inner.command(cmd).await {
                Err(e) if self.retry && dropped(&e) => self.inner.command(cmd).await,
                r => r,
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            match self.inner.commands(pipeline, offset, count).await {
                Err(e) if self.retry && dropped(&e) => {
                    self.inner.commands(pipeline, offset, count).await
                }
                r => r,
            }
        })
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Single(c) => c.get_db(),
            Inner::Cluster(c) => c.get_db(),
        }
    }
}
