//! The backends' breakers on Redis, one JSON string per backend (`{breakers}:<backend>`).
//!
//! **Why apart.** A breaker is not moved by a script: it is read, changed in Rust by the one
//! state machine every store shares ([`genroute_core::breaker`]), and written back only if
//! no other replica wrote in between (compare-and-set), else read again.

use super::{store_err, RedisStore};
use crate::error::StoreError;
use genroute_core::breaker::{Breaker, BreakerChange, BreakerConfig};

impl RedisStore {
    pub(super) async fn read_breakers(
        &self,
        backends: &[String],
    ) -> Result<Vec<Breaker>, StoreError> {
        if backends.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = backends.iter().map(|b| self.keys.breaker(b)).collect();
        let mut c = self.conn.retrying();
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut c)
            .await
            .map_err(store_err)?;
        Ok(values
            .into_iter()
            .map(|v| {
                v.and_then(|j| serde_json::from_str(&j).ok())
                    .unwrap_or_default()
            })
            .collect())
    }

    pub(super) async fn cas_breaker(
        &self,
        backend: &str,
        change: BreakerChange,
        now_ms: i64,
        cfg: BreakerConfig,
    ) -> Result<(Breaker, bool), StoreError> {
        let key = self.keys.breaker(backend);
        let mut c = self.conn.clone();
        for _ in 0..16 {
            let raw: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut self.conn.retrying())
                .await
                .map_err(store_err)?;
            let before: Breaker = raw
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or_default();
            let mut b = before;
            let admitted = b.apply(change, now_ms, &cfg);
            if b == before {
                return Ok((b, admitted));
            }
            let json = serde_json::to_string(&b).map_err(store_err)?;
            let won: i64 = self
                .scripts
                .breaker_cas
                .key(&key)
                .arg(raw.unwrap_or_default())
                .arg(json)
                .invoke_async(&mut c)
                .await
                .map_err(store_err)?;
            if won == 1 {
                return Ok((b, admitted));
            }
        }
        Err(store_err(format!(
            "breaker `{backend}` kept changing under 16 attempts to update it"
        )))
    }
}
