//! The report's tables: per backend, the fallbacks between backends, and an experiment's arms.
//!
//! Why apart from the page: the tables carry what the charts do not show (calls, failures,
//! quality, an arm's samples at its rollback), each with its own columns; the page only
//! decides where they go.

use std::fmt::Write as _;

use super::format::esc;
use crate::simulate::{ExperimentReport, Report};

/// Calls, failures, fallbacks, videos, spend, quality and latency of each backend.
pub(super) fn backends(o: &mut String, report: &Report) {
    o.push_str("<h2>Backends</h2><table><tr><th>backend</th><th>calls</th><th>failures</th><th>fallbacks</th><th>videos</th><th>spend</th><th>avg quality</th><th>p50 s</th><th>p95 s</th></tr>");
    for (name, s) in &report.backends {
        let f = |v: Option<f64>| v.map_or("–".to_string(), |x| format!("{x:.2}"));
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>${}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            s.requests,
            s.failures,
            s.fallbacks,
            s.successes,
            s.spend_usd,
            f(s.avg_quality),
            f(s.p50_latency_s),
            f(s.p95_latency_s)
        );
    }
    o.push_str("</table>");
}

/// Requests moved from one backend to the next of their chain; nothing when none moved.
pub(super) fn fallbacks(o: &mut String, report: &Report) {
    if !report.fallbacks.is_empty() {
        o.push_str("<h2>Fallbacks</h2><table><tr><th>from</th><th>to</th><th>requests</th></tr>");
        for t in &report.fallbacks {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&t.from),
                esc(&t.to),
                t.count
            );
        }
        o.push_str("</table>");
    }
}

/// Every arm's figures, and its sample count when the experiment was rolled back.
pub(super) fn arms(o: &mut String, e: &ExperimentReport) {
    o.push_str("<table><tr><th>arm</th><th>samples</th><th>passes</th><th>delivered</th><th>metric</th><th>samples at rollback</th></tr>");
    for a in &e.arms {
        let v = a.value.map_or("–".to_string(), |x| format!("{x:.3}"));
        let at = a
            .at_rollback
            .map_or("–".to_string(), |f| f.samples.to_string());
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{v}</td><td>{at}</td></tr>",
            esc(&a.backend),
            a.figures.samples,
            a.figures.passes,
            a.figures.delivered
        );
    }
    o.push_str("</table>");
}
