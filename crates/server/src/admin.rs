//! The operator's endpoints, behind the admin token: reload the policy, close a breaker,
//! resume a rolled-back experiment, and accept a Redis ledger that lost its data.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::app::App;
use crate::auth::AdminAllowed;
use crate::error::{error, ledger_unavailable, Early};
use genroute_core::tenant::token::constant_time_eq;
use genroute_store::Store;

/// The auth middleware's mark on a request it let into an admin endpoint.
type Allowed = Option<axum::Extension<AdminAllowed>>;

/// Whether the request may use an admin endpoint: the auth middleware let it in (a key with
/// the `admin` scope, or the admin token, with a tenants file), or it carries the admin token.
fn authorized(app: &App, headers: &HeaderMap, allowed: Allowed) -> Result<(), Early> {
    if allowed.is_some() {
        return Ok(());
    }
    let Some(token) = &app.admin_token else {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            None,
            "admin endpoints are disabled: set GENROUTE_ADMIN_TOKEN to enable them",
        )));
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), token.expose().as_bytes()) => Ok(()),
        _ => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            Some("authorization"),
            "a valid `Authorization: Bearer <token>` header is required",
        ))),
    }
}

/// `POST /v1/admin/reload`.
pub async fn reload(
    AxState(app): AxState<Arc<App>>,
    allowed: Allowed,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorized(&app, &headers, allowed) {
        return *r;
    }
    match app.reload().await {
        Ok(()) => Json(json!({"reloaded": true})).into_response(),
        Err(diagnostics) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"reloaded": false, "error": {"message": diagnostics}})),
        )
            .into_response(),
    }
}

/// `POST /v1/admin/breakers/{backend}/reset`.
pub async fn reset(
    AxState(app): AxState<Arc<App>>,
    allowed: Allowed,
    headers: HeaderMap,
    UrlPath(backend): UrlPath<String>,
) -> Response {
    if let Err(r) = authorized(&app, &headers, allowed) {
        return *r;
    }
    let router = app.router();
    if router.policy().backend_index(&backend).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            Some("backend"),
            &format!("unknown backend `{backend}`"),
        );
    }
    match router.reset_breaker(&backend).await {
        Ok(()) => Json(json!({"backend": backend, "breaker": "closed"})).into_response(),
        Err(e) => ledger_unavailable(e),
    }
}

/// `POST /v1/admin/experiments/{name}/resume`: sends the experiment's arms their weights
/// again after a rollback; their figures start afresh.
pub async fn resume_experiment(
    AxState(app): AxState<Arc<App>>,
    allowed: Allowed,
    headers: HeaderMap,
    UrlPath(name): UrlPath<String>,
) -> Response {
    if let Err(r) = authorized(&app, &headers, allowed) {
        return *r;
    }
    match app.router().resume_experiment(&name).await {
        Ok(true) => {
            tracing::warn!(experiment = %name, "experiment resumed through the admin endpoint");
            Json(json!({"experiment": name, "status": "running"})).into_response()
        }
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            Some("experiment"),
            &format!("the policy has no experiment `{name}`"),
        ),
        Err(e) => ledger_unavailable(e),
    }
}

/// The body of `POST /v1/admin/ledger/accept-empty`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Acceptance {
    /// Why, and by whom: kept with the acceptance record.
    note: String,
}

/// `POST /v1/admin/ledger/accept-empty`: the operator accepts the Redis ledger as it now is,
/// after it lost its data. The note is required and recorded.
pub async fn accept_empty(
    AxState(app): AxState<Arc<App>>,
    allowed: Allowed,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorized(&app, &headers, allowed) {
        return *r;
    }
    let acceptance: Acceptance = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                Some("note"),
                &format!("give a JSON body such as {{\"note\": \"redis-0 lost its data at 10:02; accepted by ops\"}}: {e}"),
            )
        }
    };
    if acceptance.note.trim().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            Some("note"),
            "`note` is empty; say why the empty ledger is accepted, and by whom",
        );
    }
    let note = format!("{} (via the admin endpoint)", acceptance.note.trim());
    match app.store().accept_empty(&note).await {
        Ok(epoch) => {
            tracing::warn!(epoch = %epoch, "the ledger was accepted as it is through the admin endpoint");
            Json(json!({"accepted": true, "epoch": epoch})).into_response()
        }
        Err(e @ genroute_store::StoreError::Store(_))
            if app.store().kind() != "redis" && app.store().kind() != "redis-cluster" =>
        {
            error(StatusCode::CONFLICT, None, &e.to_string())
        }
        Err(e) => ledger_unavailable(e),
    }
}
