//! Who is calling: API keys from the tenants file, their scopes, and their rate limits.
//!
//! **Why one middleware.** With a tenants file (`serve --tenants FILE`), every endpoint but
//! the health probes needs `Authorization: Bearer <key>`, so the check sits in front of the
//! routes, once, before any body is read: an unknown key gets 401 without costing a parse,
//! and no handler can forget it. The table [`need`] says what each endpoint needs. The
//! caller's [`Tenancy`] travels to the handlers as a request extension ([`Caller`]); a
//! handler that builds a generation request hands it on with the request, so the walk
//! reserves on the caller's budgets and the job record keeps them.
//!
//! - 401 for a missing, malformed, unknown or revoked key (with `WWW-Authenticate: Bearer`);
//!   unknown and wrong-secret are not told apart ([`genroute_core::tenant`]).
//! - 403 for a key without the scope the endpoint needs; the answer names both.
//! - 429 with `Retry-After` past the key's `requests_per_minute`: a sliding window of one
//!   minute, kept in the store ([`Store::take_slot`]) so that every replica counts
//!   against the same window. A store that fails lets the request through (and logs it): the
//!   limit is about fairness, while money stays guarded by reserve, which fails closed.
//! - The admin endpoints take a key with the `admin` scope, or the admin token as before.
//!
//! Without a tenants file nothing here runs, and the service is open as it always was (the
//! admin endpoints keep their token).

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State as AxState};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::app::App;
use crate::error::{error, too_many};
use genroute_core::tenant::token::constant_time_eq;
use genroute_core::tenant::{Scope, Tenancy};
use genroute_store::Store;

/// What an endpoint needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: the health probes.
    Open,
    /// A valid key, whatever its scopes (its own budget; unknown paths).
    AnyKey,
    /// A key with this scope.
    Scope(Scope),
}

/// What `method path` needs (README "Tenants and API keys" has the same table).
pub fn need(method: &Method, path: &str) -> Need {
    let get = method == Method::GET || method == Method::HEAD;
    match path {
        "/healthz" | "/readyz" => Need::Open,
        "/metrics" => Need::Scope(Scope::Metrics),
        "/v1/budget" => Need::AnyKey,
        "/v1/decide" | "/v1/backends" | "/v1/experiments" => Need::Scope(Scope::Decide),
        p if p.starts_with("/v1/admin/") => Need::Scope(Scope::Admin),
        "/v1/generate" => Need::Scope(Scope::Generate),
        p if p == "/v1/jobs"
            || p.starts_with("/v1/jobs/")
            || p == "/v1/videos"
            || p.starts_with("/v1/videos/") =>
        {
            if get {
                Need::Scope(Scope::JobsRead)
            } else {
                Need::Scope(Scope::Generate)
            }
        }
        _ => Need::AnyKey,
    }
}

/// The caller of a request: its tenancy with a tenants file, `None` without one.
#[derive(Debug, Clone, Default)]
pub struct Caller(pub Option<Arc<Tenancy>>);

impl Caller {
    /// Whether it may see what belongs to `team` (its own team's, or everything for an
    /// admin; everything without a tenants file).
    pub fn sees_team(&self, team: Option<&str>) -> bool {
        match &self.0 {
            None => true,
            Some(t) => t.allows(Scope::Admin) || team == Some(t.team.as_str()),
        }
    }

    /// Whether it may see `job` (one its team submitted; any, for an admin).
    pub fn sees(&self, job: &genroute_exec::jobs::Job) -> bool {
        self.sees_team(job.tenancy.as_ref().map(|t| t.team.as_str()))
    }

    /// Makes `request` the caller's (its budgets and tenant values).
    pub fn apply(
        &self,
        policy: &genroute_core::Policy,
        request: &mut genroute_core::Request,
    ) -> Result<(), genroute_core::RequestError> {
        match &self.0 {
            Some(t) => request.set_tenancy(policy, t.clone()),
            None => Ok(()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Caller, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or_default())
    }
}

/// Marks a request the middleware let into an admin endpoint.
#[derive(Debug, Clone, Copy)]
pub struct AdminAllowed;

fn unauthorized(message: &str, code: &str) -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, Some("authorization"), message);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"genroute\""),
    );
    r.headers_mut().insert(
        "x-genroute-error",
        HeaderValue::from_str(code).unwrap_or(HeaderValue::from_static("unauthorized")),
    );
    r
}

/// The bearer token of a request, if it has one.
fn bearer(req: &Request) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The middleware (see the module docs).
pub async fn authenticate(
    AxState(app): AxState<Arc<App>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(tenants) = app.tenants() else {
        return next.run(req).await;
    };
    let need = need(req.method(), req.uri().path());
    if need == Need::Open {
        return next.run(req).await;
    }
    let token = bearer(&req).unwrap_or("");
    // The admin token still opens the admin endpoints (and only them).
    if need == Need::Scope(Scope::Admin) {
        if let Some(admin) = &app.admin_token {
            if !token.is_empty() && constant_time_eq(token.as_bytes(), admin.expose().as_bytes()) {
                req.extensions_mut().insert(AdminAllowed);
                return next.run(req).await;
            }
        }
    }
    let tenancy = match tenants.authenticate(token) {
        Ok(t) => Arc::new(t),
        Err(e) => {
            app.metrics.auth_refused(e.code());
            return unauthorized(&e.to_string(), e.code());
        }
    };
    if let Need::Scope(scope) = need {
        if !tenancy.allows(scope) {
            app.metrics.auth_refused("missing_scope");
            return error(
                StatusCode::FORBIDDEN,
                Some("authorization"),
                &format!(
                    "API key `{}` lacks the scope `{scope}`, which `{} {}` needs; its scopes are {}",
                    tenancy.key,
                    req.method(),
                    req.uri().path(),
                    scopes_of(&tenancy)
                ),
            );
        }
    }
    if let Some(limit) = tenancy.limits.requests_per_minute {
        if let Some(r) = rate_limited(&*app.store, &tenancy, limit, app.clock.now()).await {
            app.metrics.rate_limited(&app.team_label(&tenancy.team));
            return r;
        }
    }
    if need == Need::Scope(Scope::Admin) {
        req.extensions_mut().insert(AdminAllowed);
    }
    req.extensions_mut().insert(Caller(Some(tenancy)));
    next.run(req).await
}

fn scopes_of(t: &Tenancy) -> String {
    let names: Vec<String> = t.scopes.iter().map(|s| format!("`{s}`")).collect();
    names.join(", ")
}

/// The set of a key's requests of the last minute.
pub fn rate_set(key: &str) -> String {
    format!("rate:{key}")
}

/// Takes a place in the key's one-minute window, or answers 429.
async fn rate_limited(
    store: &dyn Store,
    t: &Tenancy,
    limit: u32,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Response> {
    let now_ms = genroute_store::millis(now);
    let member = uuid::Uuid::new_v4().simple().to_string();
    match store
        .take_slot(&rate_set(&t.key), &member, limit, now_ms + 60_000, now_ms)
        .await
    {
        Ok(None) => None,
        Ok(Some(at)) => Some(too_many(
            &format!(
                "API key `{}` is over its limit of {limit} requests per minute (`limits.requests_per_minute`); retry after the time `Retry-After` gives",
                t.key
            ),
            at - now_ms,
        )),
        Err(e) => {
            tracing::warn!(key = %t.key, "the rate limit could not be checked, so the request goes through: {e}");
            None
        }
    }
}
