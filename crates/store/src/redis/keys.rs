//! The Redis key layout of the ledger and the breakers, and the key prefix every key starts
//! with. The jobs' keys are laid out in [`super::jobs`], the bounded sets' in
//! [`super::levels`], the samples' and experiment figures' in [`super::stats`], each beside
//! the scripts that rely on its hash tag.
//!
//! **Why apart.** The layout is a wire format: replicas of different builds, and a ledger
//! kept across upgrades, read it. Building every ledger key here keeps the table below the
//! whole truth, and keeps the store's calls from spelling keys of their own.
//!
//! **Key layout** (every key a script touches is in its `KEYS`; the braces are hash tags, so
//! each script touches one cluster slot):
//!
//! | key | type | what |
//! |---|---|---|
//! | `genroute:{m:YYYY-MM}:epoch` | string | the epoch the month was written under |
//! | `genroute:{m:YYYY-MM}:totals` | hash | micro-USD `committed`, `in_doubt`, `reserved` |
//! | `genroute:{m:YYYY-MM}:open` | sorted set | open reservations by expiry (ms) |
//! | `genroute:{m:YYYY-MM}:log` | sorted set | every entry id by creation (ms) |
//! | `genroute:{m:YYYY-MM}:entries` | hash | `<id>:<field>`: every entry of the month |
//! | `genroute:{meta}:epoch` | hash | the ledger's epoch marker: `id`, `created_ms`, `accepted_ms`, `note` |
//! | `genroute:{meta}:epoch_log` | list | one JSON record per operator acceptance |
//! | `genroute:{meta}:months` | set | months with entries |
//! | `genroute:{breakers}:<backend>` | string | JSON of the breaker |
//!
//! `genroute` is the default prefix; a `prefix=NAME` query parameter on the store URL puts
//! several ledgers on one Redis (`redis://host:6379/0?prefix=staging`).

use crate::error::StoreError;
use crate::ledger::Month;

/// The five keys of one month, in the order the month scripts take them.
pub(super) struct MonthKeys(pub(super) [String; 5]);

impl MonthKeys {
    fn of(prefix: &str, month: Month) -> MonthKeys {
        let k = |what: &str| format!("{prefix}:{{m:{month}}}:{what}");
        MonthKeys([k("epoch"), k("totals"), k("open"), k("log"), k("entries")])
    }

    pub(super) fn epoch(&self) -> &str {
        &self.0[0]
    }

    pub(super) fn log(&self) -> &str {
        &self.0[3]
    }

    pub(super) fn entries(&self) -> &str {
        &self.0[4]
    }
}

/// The key prefix: `genroute`, or the URL's `prefix=` (several ledgers on one Redis).
#[derive(Debug, Clone)]
pub(super) struct Keys {
    pub(super) prefix: String,
}

impl Keys {
    pub(super) fn month(&self, month: Month) -> MonthKeys {
        MonthKeys::of(&self.prefix, month)
    }

    pub(super) fn meta(&self, what: &str) -> String {
        format!("{}:{{meta}}:{what}", self.prefix)
    }

    pub(super) fn breaker(&self, backend: &str) -> String {
        format!("{}:{{breakers}}:{backend}", self.prefix)
    }
}

/// Splits our own `prefix=NAME` query parameter off a Redis URL.
pub(super) fn split_prefix(url: &str) -> Result<(String, String), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), "genroute".to_string()));
    };
    let mut prefix = "genroute".to_string();
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("prefix=") {
            Some(p) => prefix = p.to_string(),
            None => rest.push(pair),
        }
    }
    let valid = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(StoreError::Store(format!(
            "`prefix={prefix}` in the Redis URL: a key prefix is 1 to 64 letters, digits, `-` or `_`"
        )));
    }
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, prefix))
}
