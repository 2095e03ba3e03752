//! What the operator's machinery polls: `/healthz`, `/readyz` and the Prometheus scrape
//! `/metrics`.
//!
//! **Nothing here waits on a stalled dependency.** `/healthz` touches neither the store nor
//! the policy's state. `/readyz` answers from the store guard's last probe. The scrape sets
//! the budget and breaker gauges from the state cache's last snapshot. A probe that hung on a
//! slow store would get a healthy replica killed, or a scrape time out, exactly when the
//! figures matter most.

use std::sync::Arc;

use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::app::App;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the policy loaded and the store's last call or probe succeeded. Answers at
/// once, from what the probe last saw.
pub async fn readyz(AxState(app): AxState<Arc<App>>) -> Response {
    let reload = app
        .reload_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let health = app.store.health();
    let ready = health.ok;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": ready,
        "policy": app.config.policy_path.display().to_string(),
        "last_reload_ok": reload.is_none(),
        "last_reload_error": reload,
        "ledger_error": if ready { None } else { health.last_error.clone() },
        "store": health,
    });
    (status, Json(body)).into_response()
}

/// `GET /metrics`: the text exposition format, gauges refreshed first.
pub async fn metrics_text(AxState(app): AxState<Arc<App>>) -> Response {
    refresh_gauges(&app);
    (
        [("content-type", "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

/// Sets the budget and breaker gauges from the state cache's last snapshot: the metrics
/// never wait on the store.
fn refresh_gauges(app: &App) {
    let router = app.router();
    let policy = router.policy();
    if let Some(snap) = router.cache().last() {
        app.metrics
            .budget(snap.totals.spent(), policy.budget.monthly);
        let state = router.cache().state(policy, &snap, 0);
        for (b, s) in policy.backends.iter().zip(&state.breakers) {
            app.metrics.breaker(&b.name, *s);
        }
        for (b, m) in policy.backends.iter().zip(&snap.measured) {
            app.metrics.measured(&b.name, m);
        }
        for (e, r) in policy.experiments.iter().zip(&snap.rollbacks) {
            app.metrics.experiment(&e.name, r.is_some());
        }
    }
    app.metrics.store(&app.store.health());
}
