//! `GET /v1/backends` and `GET /v1/experiments`: the current policy's backends and
//! experiments as they stand now, with their live figures.
//!
//! **Why together.** Both are read-only views of the router in use: the policy's members in
//! its order, joined with the figures the ledger and this replica hold (breakers and recent
//! calls; arms and rollbacks). Neither decides nor spends anything.

use std::sync::Arc;

use axum::extract::State as AxState;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::app::App;
use crate::error::ledger_unavailable;

/// `GET /v1/backends`: in preference order, each with its breaker and its recent calls.
pub async fn backends(AxState(app): AxState<Arc<App>>) -> Response {
    let router = app.router();
    let policy = router.policy();
    let state = match router.state(0).await {
        Ok((s, _)) => s,
        Err(e) => return ledger_unavailable(e),
    };
    let list: Vec<_> = policy
        .preference_order()
        .iter()
        .map(|&i| {
            let b = &policy.backends[i as usize];
            let recent = app.metrics.recent(&b.name);
            json!({
                "name": b.name,
                "type": b.kind,
                "protocol": b.protocol().map(|p| format!("{p:?}").to_lowercase()),
                "enabled": b.enabled,
                "key_missing": b.key_missing,
                "priority": b.priority,
                "cost_usd": b.cost_of(None),
                "quality": b.quality,
                "avg_generation_time_seconds": b.avg_latency,
                "max_generation_time_seconds": b.max_latency,
                "breaker": state.breakers.get(i as usize).copied().unwrap_or_default(),
                "recent": recent,
            })
        })
        .collect();
    Json(json!({"backends": list})).into_response()
}

/// `GET /v1/experiments`: every experiment with its arms' figures and its rollback.
pub async fn experiments(AxState(app): AxState<Arc<App>>) -> Response {
    match app.router().experiments().await {
        Ok(v) => Json(json!({"experiments": v})).into_response(),
        Err(e) => ledger_unavailable(e),
    }
}
