//! The Redis store's figures, on Redis' own types: a sample list is a list (`LPUSH` and
//! `LTRIM` in one `MULTI`), an arm's counters a hash (`HINCRBY` then `HGETALL` in one
//! `MULTI`, so the figures returned include this addition and no other replica's half-step),
//! a mark a string set with `SET NX` (of two replicas rolling an experiment back, one wins).
//! All of them share the `{stats}` hash tag, so a cluster keeps them in one slot and a
//! multi-key read or clear stays one command.

use super::{store_err, RedisStore};
use crate::error::StoreError;
use crate::store::Counters;

impl RedisStore {
    fn stats_key(&self, kind: &str, key: &str) -> String {
        format!("{}:{{stats}}:{kind}:{key}", self.keys.prefix)
    }

    pub(super) async fn push_sample_list(
        &self,
        key: &str,
        sample: &str,
        keep: usize,
    ) -> Result<(), StoreError> {
        let k = self.stats_key("s", key);
        let mut c = self.conn.retrying();
        let _: () = redis::pipe()
            .atomic()
            .cmd("LPUSH")
            .arg(&k)
            .arg(sample)
            .ignore()
            .cmd("LTRIM")
            .arg(&k)
            .arg(0)
            .arg(keep.saturating_sub(1))
            .ignore()
            .query_async(&mut c)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    pub(super) async fn sample_lists(
        &self,
        keys: &[String],
        limit: usize,
    ) -> Result<Vec<Vec<String>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.cmd("LRANGE")
                .arg(self.stats_key("s", k))
                .arg(0)
                .arg(limit.saturating_sub(1));
        }
        let mut c = self.conn.retrying();
        pipe.query_async(&mut c).await.map_err(store_err)
    }

    pub(super) async fn add_hash(
        &self,
        key: &str,
        by: &[(&str, i64)],
    ) -> Result<Counters, StoreError> {
        let k = self.stats_key("c", key);
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (field, n) in by {
            pipe.cmd("HINCRBY").arg(&k).arg(*field).arg(*n).ignore();
        }
        pipe.cmd("HGETALL").arg(&k);
        let mut c = self.conn.retrying();
        let (all,): (Counters,) = pipe.query_async(&mut c).await.map_err(store_err)?;
        Ok(all)
    }

    pub(super) async fn hashes(&self, keys: &[String]) -> Result<Vec<Counters>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.cmd("HGETALL").arg(self.stats_key("c", k));
        }
        let mut c = self.conn.retrying();
        pipe.query_async(&mut c).await.map_err(store_err)
    }

    pub(super) async fn set_mark(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let mut c = self.conn.retrying();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.stats_key("m", key))
            .arg(value)
            .arg("NX")
            .query_async(&mut c)
            .await
            .map_err(store_err)?;
        Ok(set.is_some())
    }

    pub(super) async fn get_marks(
        &self,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let ks: Vec<String> = keys.iter().map(|k| self.stats_key("m", k)).collect();
        let mut c = self.conn.retrying();
        redis::cmd("MGET")
            .arg(&ks)
            .query_async(&mut c)
            .await
            .map_err(store_err)
    }

    pub(super) async fn del_mark(&self, key: &str, counters: &[String]) -> Result<(), StoreError> {
        let mut ks: Vec<String> = counters.iter().map(|k| self.stats_key("c", k)).collect();
        ks.push(self.stats_key("m", key));
        let mut c = self.conn.retrying();
        let _: () = redis::cmd("DEL")
            .arg(&ks)
            .query_async(&mut c)
            .await
            .map_err(store_err)?;
        Ok(())
    }
}
