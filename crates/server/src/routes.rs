//! The route table: which handler answers which method and path, and the layers in front of
//! all of them (body limit, auth).
//!
//! **Why on top.** This is the one module that names every handler module; they name
//! [`crate::app`] and [`crate::error`] and never this one, so the table can change without
//! touching a handler, and a handler cannot reach another through the router. The auth
//! middleware's table of what each path needs is [`crate::auth::need`]; `openapi.yaml`
//! documents the same paths and is tested against them.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};

use crate::app::App;
use crate::error::error;
use crate::{admin, auth, backends, body, budget, decide, health, jobs, videos};
use genroute_core::request::MAX_REQUEST_BYTES;

/// The axum application.
pub fn routes(app: Arc<App>) -> axum::Router {
    axum::Router::new()
        .route("/v1/decide", post(decide::decide))
        .route("/v1/generate", post(jobs::generate))
        .route("/v1/jobs", post(jobs::create).get(jobs::list))
        .route("/v1/jobs/{id}", get(jobs::show).delete(jobs::cancel))
        .route("/v1/videos", post(videos::create).get(videos::list))
        .route(
            "/v1/videos/{id}",
            get(videos::retrieve).delete(videos::delete),
        )
        .route("/v1/videos/{id}/content", get(videos::content))
        .route("/v1/backends", get(backends::backends))
        .route("/v1/budget", get(budget::budget))
        .route("/v1/experiments", get(backends::experiments))
        .route("/metrics", get(health::metrics_text))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/v1/admin/reload", post(admin::reload))
        .route("/v1/admin/breakers/{backend}/reset", post(admin::reset))
        .route("/v1/admin/ledger/accept-empty", post(admin::accept_empty))
        .route(
            "/v1/admin/experiments/{name}/resume",
            post(admin::resume_experiment),
        )
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                None,
                "no such endpoint; see openapi.yaml",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(axum::middleware::from_fn(body::bounded))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::authenticate,
        ))
        .with_state(app)
}
