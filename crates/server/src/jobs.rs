//! The job endpoints. `POST /v1/generate` is a job its client waits for: if the client goes
//! away, the job still finishes and stays readable at `GET /v1/jobs/{id}` (its id is the
//! generation's `request_id`). Any replica answers for any job: they are records in the store.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path as UrlPath, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::app::App;
use crate::auth::Caller;
use crate::error::{
    error, ledger_unavailable, none_eligible_status, query, too_many, unavailable_message, Early,
};
use crate::metrics::generation_of;
use genroute_core::request::Request;
use genroute_exec::jobs::runner::{public, Cancelled, NewJob, SubmitError};
use genroute_exec::jobs::Job;
use genroute_exec::{NotCalled, Router};
use genroute_store::Store;

/// How long `/v1/generate` waits for its job (the job itself is bounded by its backends'
/// deadlines; this only bounds the wait).
const WAIT: Duration = Duration::from_secs(24 * 3600);

/// A job request: the generation request, and where its end state goes.
pub(crate) struct Submission {
    pub request: Request,
    pub webhook: Option<String>,
}

/// Parses a job request body: the request's fields, plus `webhook_url`; the request is the
/// caller's.
pub(crate) fn parse(
    app: &App,
    router: &Router,
    caller: &Caller,
    bytes: &Bytes,
) -> Result<Submission, Early> {
    let bad = |field: &str, message: String| {
        Box::new(error(StatusCode::BAD_REQUEST, Some(field), &message))
    };
    let text =
        std::str::from_utf8(bytes).map_err(|_| bad("(body)", "the body is not UTF-8".into()))?;
    let mut map = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(bad("(body)", "the body must be a JSON object".into())),
        Err(e) => return Err(bad("(body)", format!("the body is not valid JSON: {e}"))),
    };
    let webhook = match map.remove("webhook_url") {
        None | Some(Value::Null) => app.config.default_webhook.clone(),
        Some(Value::String(url)) => Some(url),
        Some(_) => {
            return Err(bad(
                "webhook_url",
                "`webhook_url` must be a URL string".into(),
            ))
        }
    };
    if let Some(url) = &webhook {
        reqwest::Url::parse(url)
            .map_err(|e| bad("webhook_url", format!("`{url}` is not a URL ({e})")))?;
    }
    let mut request =
        Request::from_map(router.policy(), map).map_err(|e| bad(&e.field, e.to_string()))?;
    caller
        .apply(router.policy(), &mut request)
        .map_err(|e| bad(&e.field, e.to_string()))?;
    Ok(Submission { request, webhook })
}

/// Submits a parsed job request.
pub(crate) async fn submit(app: &App, s: &Submission) -> Result<Job, Early> {
    submit_new(
        app,
        NewJob {
            request: s.request.clone(),
            webhook: s.webhook.clone(),
            target: None,
            api: None,
        },
    )
    .await
}

/// Submits a job; its errors as HTTP answers.
pub(crate) async fn submit_new(app: &App, new: NewJob) -> Result<Job, Early> {
    app.runner.submit(new).await.map_err(|e| {
        Box::new(match e {
            SubmitError::ShuttingDown => {
                error(StatusCode::SERVICE_UNAVAILABLE, None, &e.to_string())
            }
            SubmitError::Webhook(w) => {
                let status = if w.forbidden {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::BAD_REQUEST
                };
                error(status, Some("webhook_url"), &w.message)
            }
            // As OpenAI answers an unknown model: the resource does not exist.
            SubmitError::UnknownTarget(m) => error(StatusCode::NOT_FOUND, Some("model"), &m),
            SubmitError::TooManyJobs { retry_after_ms, .. } => {
                too_many(&e.to_string(), retry_after_ms)
            }
            SubmitError::Store(e) => ledger_unavailable(e),
        })
    })
}

/// What `/v1/generate` answers for an ended job.
async fn answer(router: &Router, request: &Request, job: &Job) -> (StatusCode, Value) {
    let Some(g) = generation_of(job) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": {"field": null, "message": format!("job `{}` ended without a record of its result", job.id)}}),
        );
    };
    let body = serde_json::to_value(&g).unwrap_or_default();
    let store_failed =
        g.attempts.last().and_then(|a| a.not_called()) == Some(NotCalled::StoreError);
    if g.video.is_some() {
        (StatusCode::OK, body)
    } else if store_failed {
        let why = g.attempts.last().and_then(|a| a.message.clone());
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": {"field": null, "message": unavailable_message(why.unwrap_or_default())}, "generation": body}),
        )
    } else if g.attempts.is_empty() {
        let explanation = router.explain(request).await.ok().map(|(e, _)| e);
        let status = explanation
            .as_ref()
            .map_or(StatusCode::SERVICE_UNAVAILABLE, none_eligible_status);
        (
            status,
            json!({"error": {"field": null, "message": g.error}, "generation": body, "explanation": explanation}),
        )
    } else if g
        .attempts
        .iter()
        .all(|a| a.not_called() == Some(NotCalled::OverBudget))
    {
        // Decided on figures a moment old, then refused at reserve by a budget another
        // request had just filled: the same answer as when the decision sees it.
        (StatusCode::PAYMENT_REQUIRED, body)
    } else {
        (StatusCode::BAD_GATEWAY, body)
    }
}

/// `POST /v1/generate`: a job, waited for.
pub async fn generate(AxState(app): AxState<Arc<App>>, caller: Caller, body: Bytes) -> Response {
    let router = app.router();
    let s = match parse(&app, &router, &caller, &body) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    // Only the id is kept while waiting (10,000 waiting clients hold one each).
    let id = match submit(&app, &s).await {
        Ok(j) => j.id,
        Err(r) => return *r,
    };
    match app.runner.wait(&id, WAIT).await {
        Ok(Some(done)) if done.state.is_final() => {
            let (status, body) = answer(&router, &s.request, &done).await;
            (status, Json(body)).into_response()
        }
        Ok(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            None,
            &format!("job `{id}` is still running; read it at /v1/jobs/{id}"),
        ),
        Err(e) => ledger_unavailable(e),
    }
}

/// `POST /v1/jobs`: a job in the background.
pub async fn create(AxState(app): AxState<Arc<App>>, caller: Caller, body: Bytes) -> Response {
    let router = app.router();
    let s = match parse(&app, &router, &caller, &body) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match submit(&app, &s).await {
        Ok(job) => (
            StatusCode::ACCEPTED,
            Json(json!({"id": job.id, "status": job.state.as_str(), "url": format!("/v1/jobs/{}", job.id)})),
        )
            .into_response(),
        Err(r) => *r,
    }
}

/// `GET /v1/jobs/{id}`.
pub async fn show(
    AxState(app): AxState<Arc<App>>,
    caller: Caller,
    UrlPath(id): UrlPath<String>,
) -> Response {
    match visible(&app, &caller, &id).await {
        Ok(Some(job)) => Json(public(&job)).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, Some("id"), &format!("no job `{id}`")),
        Err(e) => ledger_unavailable(e),
    }
}

/// Job `id` if the caller may see it (another team's job reads as absent: its existence is
/// not told).
pub(crate) async fn visible(
    app: &App,
    caller: &Caller,
    id: &str,
) -> Result<Option<Job>, genroute_store::StoreError> {
    Ok(app.store.job(id).await?.filter(|j| caller.sees(j)))
}

/// Pages the caller may see, newest first after `after`: up to `limit` jobs and whether more
/// follow. Other teams' jobs are skipped, reading at most 20 store pages per answer.
pub(crate) async fn visible_page(
    app: &App,
    caller: &Caller,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<Job>, bool), genroute_store::StoreError> {
    let mut out = Vec::new();
    let mut cursor = after.map(str::to_string);
    for _ in 0..20 {
        let page = app.store.list_jobs(cursor.as_deref(), limit + 1).await?;
        let exhausted = page.len() <= limit;
        cursor = page.last().map(|j| j.id.clone());
        for job in page {
            if out.len() > limit {
                break;
            }
            if caller.sees(&job) {
                out.push(job);
            }
        }
        if out.len() > limit || exhausted {
            break;
        }
    }
    let more = out.len() > limit;
    out.truncate(limit);
    Ok((out, more))
}

/// The query of `GET /v1/jobs`.
#[derive(serde::Deserialize)]
pub struct Page {
    /// The last id of the previous page.
    after: Option<String>,
    /// At most this many (default 20, at most 100).
    limit: Option<usize>,
}

/// A page's size: 1 to 100, default 20.
pub(crate) fn page_size(limit: Option<usize>) -> Result<usize, Early> {
    match limit.unwrap_or(20) {
        n @ 1..=100 => Ok(n),
        n => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            Some("limit"),
            &format!("`limit` is {n}; give 1 to 100"),
        ))),
    }
}

/// `GET /v1/jobs?after=ID&limit=N`: newest first.
pub async fn list(
    AxState(app): AxState<Arc<App>>,
    caller: Caller,
    page: Result<Query<Page>, QueryRejection>,
) -> Response {
    let page = match query(page) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let limit = match page_size(page.limit) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    match visible_page(&app, &caller, page.after.as_deref(), limit).await {
        Ok((jobs, has_more)) => {
            let last = jobs.last().map(|j| j.id.clone());
            let data: Vec<Value> = jobs.iter().map(public).collect();
            Json(json!({"data": data, "has_more": has_more, "last_id": last})).into_response()
        }
        Err(e) => ledger_unavailable(e),
    }
}

/// `DELETE /v1/jobs/{id}`: cancels; the answer says what happened to the money.
pub async fn cancel(
    AxState(app): AxState<Arc<App>>,
    caller: Caller,
    UrlPath(id): UrlPath<String>,
) -> Response {
    match visible(&app, &caller, &id).await {
        Ok(Some(_)) => {}
        Ok(None) => return error(StatusCode::NOT_FOUND, Some("id"), &format!("no job `{id}`")),
        Err(e) => return ledger_unavailable(e),
    }
    match app.runner.cancel(&id).await {
        Ok(Cancelled::Done { job, money }) => {
            Json(json!({"cancelled": true, "money": money, "job": public(&job)})).into_response()
        }
        Ok(Cancelled::AlreadyEnded(job)) => (
            StatusCode::CONFLICT,
            Json(json!({"error": {"field": "id", "message": format!("job `{id}` has ended ({}); there is nothing to cancel", job.state.as_str())}, "job": public(&job)})),
        )
            .into_response(),
        Ok(Cancelled::NotFound) => error(StatusCode::NOT_FOUND, Some("id"), &format!("no job `{id}`")),
        Err(e) => ledger_unavailable(e),
    }
}
