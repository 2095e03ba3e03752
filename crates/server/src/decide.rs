//! `POST /v1/decide`: what the policy would do with a request, and why, without calling any
//! backend or spending anything.
//!
//! **Why it answers with an explanation.** The body is the same as `/v1/generate`'s (parsed
//! by [`crate::jobs`]), so a client can ask before it submits; the answer is the router's
//! [`Explanation`] with the freshness of the figures it was decided on, and a request no
//! backend could serve gets the status [`none_eligible_status`] gives it, as a generation
//! would.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::app::App;
use crate::auth::Caller;
use crate::error::{ledger_unavailable, none_eligible_status};
use genroute_core::explain::Explanation;
use genroute_exec::snapshot::Freshness;

/// An explanation with the freshness of the figures it was decided on.
fn explained(status: StatusCode, e: &Explanation, fresh: Freshness) -> Response {
    let mut body = serde_json::to_value(e).unwrap_or_default();
    if let (Some(map), Ok(serde_json::Value::Object(extra))) =
        (body.as_object_mut(), serde_json::to_value(fresh))
    {
        map.extend(extra);
    }
    (status, Json(body)).into_response()
}

/// `POST /v1/decide`.
pub async fn decide(AxState(app): AxState<Arc<App>>, caller: Caller, body: Bytes) -> Response {
    let router = app.router();
    // The same body as /v1/generate (its `webhook_url` is read and left aside: deciding
    // calls nothing).
    let request = match crate::jobs::parse(&app, &router, &caller, &body) {
        Ok(s) => s.request,
        Err(resp) => return *resp,
    };
    match router.explain(&request).await {
        Ok((e, fresh)) if e.backend.is_some() => explained(StatusCode::OK, &e, fresh),
        Ok((e, fresh)) => explained(none_eligible_status(&e), &e, fresh),
        Err(e) => ledger_unavailable(e),
    }
}
