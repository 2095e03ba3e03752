//! `GET /v1/budget`: the month's spend against the policy's budget, and the budgets of the
//! caller's levels (team, key), or of the team or key the query names.
//!
//! **Why the figures come from exec.** The month's summary is [`budget_summary`], the same
//! function `genroute budget` prints, so the CLI and the service cannot disagree; this module
//! only decides which levels a caller may see and shapes the answer.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::app::App;
use crate::auth::Caller;
use crate::error::{error, ledger_unavailable, query, Early};
use genroute_core::levels::LevelBudget;
use genroute_store::Month;

pub use genroute_exec::budget_summary;

/// The query of `GET /v1/budget`.
#[derive(serde::Deserialize)]
pub struct BudgetQuery {
    /// A team's budgets.
    team: Option<String>,
    /// A key's budgets.
    key: Option<String>,
}

/// The budgets that `GET /v1/budget?team=|key=` shows to `caller`, or the answer refusing.
fn budgets_shown(
    app: &App,
    caller: &Caller,
    q: &BudgetQuery,
) -> Result<Option<(Value, Vec<LevelBudget>)>, Early> {
    let policy_levels = app.router().policy().budget_levels();
    let need_tenants = || {
        Box::new(error(
            StatusCode::NOT_FOUND,
            Some(if q.team.is_some() { "team" } else { "key" }),
            "this server has no tenants file (`serve --tenants FILE`), so it has no teams or keys",
        ))
    };
    let forbidden = |what: &str| {
        Box::new(error(
            StatusCode::FORBIDDEN,
            Some(what),
            &format!("an API key sees its own team's budgets only; another {what}'s need the `admin` scope"),
        ))
    };
    let with_policy = |mut v: Vec<LevelBudget>| {
        let mut all = policy_levels.clone();
        all.append(&mut v);
        all
    };
    match (&q.team, &q.key) {
        (Some(team), None) => {
            let tenants = app.tenants().ok_or_else(need_tenants)?;
            if !caller.sees_team(Some(team)) {
                return Err(forbidden("team"));
            }
            let levels = tenants.team_budgets(team).ok_or_else(|| {
                Box::new(error(
                    StatusCode::NOT_FOUND,
                    Some("team"),
                    &format!("no team `{team}` in the tenants file"),
                ))
            })?;
            Ok(Some((json!({"team": team}), with_policy(levels))))
        }
        (team, Some(key)) => {
            let tenants = app.tenants().ok_or_else(need_tenants)?;
            // With both, the key of that team (its levels include the team's).
            let t = tenants
                .tenancy_of(key)
                .filter(|t| team.as_ref().is_none_or(|team| &t.team == team))
                .ok_or_else(|| {
                    let of = team
                        .as_ref()
                        .map(|t| format!(" of team `{t}`"))
                        .unwrap_or_default();
                    Box::new(error(
                        StatusCode::NOT_FOUND,
                        Some("key"),
                        &format!("no key `{key}`{of} in the tenants file"),
                    ))
                })?;
            if !caller.sees_team(Some(&t.team)) {
                return Err(forbidden("key"));
            }
            Ok(Some((
                json!({"key": key, "team": t.team}),
                with_policy(t.budgets),
            )))
        }
        (None, None) => match &caller.0 {
            Some(t) => Ok(Some((
                json!({"key": t.key, "team": t.team}),
                with_policy(t.budgets.clone()),
            ))),
            None if policy_levels.is_empty() => Ok(None),
            None => Ok(Some((json!({}), policy_levels))),
        },
    }
}

/// `GET /v1/budget?team=|key=`.
pub async fn budget(
    AxState(app): AxState<Arc<App>>,
    caller: Caller,
    q: Result<Query<BudgetQuery>, QueryRejection>,
) -> Response {
    let q = match query(q) {
        Ok(q) => q,
        Err(r) => return *r,
    };
    let shown = match budgets_shown(&app, &caller, &q) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let router = app.router();
    let now = app.clock.now();
    let summary = match budget_summary(&*app.store, router.policy(), Month::of(now), now).await {
        Ok(v) => v,
        Err(e) => return ledger_unavailable(e),
    };
    let mut body = serde_json::to_value(summary).unwrap_or_default();
    if let Some((who, levels)) = shown {
        match genroute_exec::levels::summaries(&*app.store, &levels, now).await {
            Ok(l) => {
                if let (Some(map), Value::Object(who)) = (body.as_object_mut(), who) {
                    map.extend(who);
                    map.insert("levels".into(), serde_json::to_value(l).unwrap_or_default());
                }
            }
            Err(e) => return ledger_unavailable(e),
        }
    }
    Json(body).into_response()
}
