//! The documented table of every built-in name a condition can read: its canonical dotted
//! form, its short alias, its type and its meaning.
//!
//! **Why a file of its own.** It is data, not resolution: `genroute names`, the README's table,
//! did-you-mean suggestions and the schema read it, while [`super::scope`] resolves names to
//! slots. Three hundred lines of entries would bury that logic.

/// The tenant values every policy can read, first among its tenant fields.
pub const TENANT_BUILTINS: &[&str] = &["team", "org", "key"];

/// One documented name.
#[derive(Debug, Clone, Copy)]
pub struct NameDoc {
    /// Canonical dotted form.
    pub name: &'static str,
    /// Short form accepted without the prefix, if any.
    pub alias: Option<&'static str>,
    /// Type, as written in the docs.
    pub ty: &'static str,
    /// Meaning.
    pub doc: &'static str,
}

const fn n(
    name: &'static str,
    alias: Option<&'static str>,
    ty: &'static str,
    doc: &'static str,
) -> NameDoc {
    NameDoc {
        name,
        alias,
        ty,
        doc,
    }
}

/// Every built-in name, for documentation and suggestions. `backend.*` names also exist as
/// `backends.<name>.*` for any backend of the policy.
pub const BUILTIN_NAMES: &[NameDoc] = &[
    n(
        "request.priority",
        Some("priority"),
        "enum quality|balanced|speed",
        "the request's priority",
    ),
    n(
        "request.duration",
        Some("duration"),
        "number",
        "requested video length in seconds",
    ),
    n(
        "request.aspect_ratio",
        Some("aspect_ratio"),
        "enum 16:9|9:16|1:1|4:3|3:4|21:9",
        "requested aspect ratio",
    ),
    n(
        "request.quality_threshold",
        Some("quality_threshold"),
        "number",
        "lowest acceptable backend quality score",
    ),
    n(
        "request.style",
        Some("style"),
        "string",
        "requested style; reading it when unset is an error",
    ),
    n(
        "budget.monthly_spend",
        Some("monthly_spend"),
        "money",
        "spend this month: committed plus reserved",
    ),
    n(
        "budget.monthly_budget",
        Some("monthly_budget"),
        "money",
        "`budget.monthly_budget_usd`",
    ),
    n(
        "budget.budget_remaining",
        Some("budget_remaining"),
        "money",
        "monthly budget minus monthly spend",
    ),
    n(
        "budget.team.remaining",
        None,
        "money",
        "what the caller's team can still spend now (least of its monthly and daily remainders); also `budget.org.*`, `budget.key.*`",
    ),
    n(
        "budget.team.spend",
        None,
        "money",
        "spent or reserved by the caller's team this month (also `org`, `key`)",
    ),
    n(
        "budget.team.budget",
        None,
        "money",
        "the caller's team's monthly budget (also `org`, `key`)",
    ),
    n(
        "tenant.team",
        None,
        "string",
        "the caller's team, from its API key (no key: the rule does not match)",
    ),
    n(
        "tenant.org",
        None,
        "string",
        "the caller's organisation",
    ),
    n(
        "tenant.key",
        None,
        "string",
        "the caller's API key id (never its secret)",
    ),
    n(
        "budget.cost_threshold",
        Some("cost_threshold"),
        "money",
        "`budget.cost_threshold_usd`",
    ),
    n(
        "budget.available",
        None,
        "bool",
        "true while any budget remains",
    ),
    n(
        "backend.cost",
        Some("cost"),
        "money",
        "target backend's cost for the rule's model",
    ),
    n(
        "backend.quality",
        Some("quality"),
        "number",
        "target backend's `quality.score`",
    ),
    n(
        "backend.temporal_coherence",
        None,
        "number",
        "target backend's `quality.temporal_coherence`",
    ),
    n(
        "backend.prompt_adherence",
        None,
        "number",
        "target backend's `quality.prompt_adherence`",
    ),
    n(
        "backend.latency",
        Some("latency"),
        "number",
        "target backend's average generation time, seconds",
    ),
    n(
        "backend.max_latency",
        None,
        "number",
        "target backend's maximum generation time, seconds",
    ),
    n(
        "backend.priority",
        None,
        "number",
        "target backend's priority number",
    ),
    n(
        "backend.breaker",
        Some("breaker"),
        "enum closed|open|half_open",
        "target backend's circuit breaker",
    ),
    n(
        "backend.budget_available",
        Some("budget_available"),
        "bool",
        "target backend's cost fits the remaining budget",
    ),
    n(
        "backend.measured.samples",
        None,
        "number",
        "target backend's delivered videos in the rolling window (0 with no history)",
    ),
    n(
        "backend.measured.pass_rate",
        None,
        "number",
        "share of its checked videos that passed the output checks, 0 to 1",
    ),
    n(
        "backend.measured.latency_p50",
        None,
        "number",
        "median seconds from create call to downloaded video, measured",
    ),
    n(
        "backend.measured.latency_p95",
        None,
        "number",
        "95th percentile of the same, seconds",
    ),
    n(
        "backend.measured.flicker",
        None,
        "number",
        "mean measured flicker of its videos, 0 to 1",
    ),
    n(
        "attempt.failures",
        Some("failures"),
        "number",
        "attempts that already failed for this request",
    ),
    n(
        "time.month_progress",
        Some("month_progress"),
        "number",
        "elapsed fraction of the UTC month, 0 to 1",
    ),
    n(
        "time.day_of_month",
        Some("day_of_month"),
        "number",
        "day of the month, UTC, 1 to 31",
    ),
    n(
        "time.hour",
        Some("hour"),
        "number",
        "hour of the day, UTC, 0 to 23",
    ),
    n(
        "video.passed",
        None,
        "bool",
        "quality_retry.when only: the delivered video passed its output checks",
    ),
    n(
        "video.checked",
        None,
        "bool",
        "quality_retry.when only: the video's file was checked",
    ),
    n(
        "video.duration",
        None,
        "number",
        "quality_retry.when only: seconds, from its container",
    ),
    n(
        "video.width",
        None,
        "number",
        "quality_retry.when only: pixels",
    ),
    n(
        "video.height",
        None,
        "number",
        "quality_retry.when only: pixels",
    ),
    n(
        "video.fps",
        None,
        "number",
        "quality_retry.when only: frames per second",
    ),
    n(
        "video.flicker",
        None,
        "number",
        "quality_retry.when only: mean difference of consecutive frames, 0 to 1 (ffmpeg)",
    ),
    n(
        "video.black_fraction",
        None,
        "number",
        "quality_retry.when only: share of the clip that is black (ffmpeg)",
    ),
    n(
        "video.frozen_fraction",
        None,
        "number",
        "quality_retry.when only: share of the clip that is frozen (ffmpeg)",
    ),
    n(
        "video.latency",
        None,
        "number",
        "quality_retry.when only: seconds from create call to downloaded file",
    ),
];
