//! The answers that refuse: one JSON shape, `{"error": {"field", "message"}}`, for every
//! endpoint, and the mappings from the library's failures to HTTP statuses.
//!
//! **Why a module of its own.** Every handler, the auth middleware and the body limit answer
//! errors the same way, so the shape and the statuses live below all of them: a handler module
//! names this one, never another handler's, to refuse a request.

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use genroute_core::explain::{Explanation, Unserved};

/// A JSON error answer: `field` names what in the request is wrong, when one thing is.
pub(crate) fn error(status: StatusCode, field: Option<&str>, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"field": field, "message": message}})),
    )
        .into_response()
}

/// A response, boxed: handlers return it early from helper functions.
pub(crate) type Early = Box<Response>;

/// 429 with `Retry-After` (whole seconds, at least 1).
pub(crate) fn too_many(message: &str, retry_after_ms: i64) -> Response {
    let mut r = error(StatusCode::TOO_MANY_REQUESTS, None, message);
    let secs = (retry_after_ms.max(0) + 999) / 1000;
    if let Ok(v) = axum::http::HeaderValue::from_str(&secs.max(1).to_string()) {
        r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
    }
    r
}

/// Why nothing can be spent while the ledger does not answer.
pub(crate) fn unavailable_message(e: impl std::fmt::Display) -> String {
    format!("the ledger is unavailable, so nothing can be spent (fail closed): {e}")
}

/// 503: the ledger did not answer (see [`unavailable_message`]).
pub(crate) fn ledger_unavailable(e: impl std::fmt::Display) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        None,
        &unavailable_message(e),
    )
}

/// The status that answers a request no backend could serve: 402 when the budget is what
/// stops every backend, 503 when a backend is out of service, 409 when the request asks for
/// what no backend offers ([`genroute_core::explain::Unserved`]).
pub fn none_eligible_status(e: &Explanation) -> StatusCode {
    match e.unserved() {
        Unserved::Budget => StatusCode::PAYMENT_REQUIRED,
        Unserved::OutOfService => StatusCode::SERVICE_UNAVAILABLE,
        Unserved::Unservable => StatusCode::CONFLICT,
    }
}

/// A query string, or a JSON 400 naming what is wrong with it.
pub(crate) fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, Early> {
    q.map(|Query(t)| t).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            Some("(query)"),
            &format!("the query string cannot be read: {}", e.body_text()),
        ))
    })
}
