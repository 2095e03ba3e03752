//! The simulation report as one self-contained HTML page: inline SVG charts and tables, no
//! scripts, no external resources, so it works offline and in any browser.
//!
//! This file is the page: its head and style, the summary, and the sections in their order
//! (spend, backend mix, latency and fallbacks, the tables, one section per experiment). The
//! parts are apart because each changes for its own reason: `charts.rs` draws each chart
//! from a report, on the plotters plumbing in `plot.rs` (axes, ticks, legends, the SVG canvas
//! and what plotters does not do for us); `tables.rs` writes the tables; `format.rs` writes
//! numbers, money and escaped text the same way for all of them.

mod charts;
mod format;
mod plot;
mod tables;

use std::fmt::Write as _;

use super::Report;
use charts::{arm_panel, cumulative_spend, daily_spend, fallbacks, latency, mix};
use format::{esc, money, num, thousands};

pub use charts::BUDGET_REACH;

/// Renders the report; `baseline` is the baseline policy's report, if any.
pub fn render(title: &str, report: &Report, baseline: Option<&Report>) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>\
         body{{font-family:system-ui,sans-serif;margin:2rem;color:#222}}table{{border-collapse:collapse;margin:1rem 0}}\
         td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}}th{{background:#f4f4f4}}td:first-child{{text-align:left}}\
         .charts{{display:flex;flex-wrap:wrap;gap:12px}}svg{{background:#fff;border:1px solid #ddd}}</style></head><body><h1>{t}</h1>",
        t = esc(title)
    );
    let crossed = report
        .threshold_crossed_day
        .map(|d| format!("; the cost threshold was crossed on day {d}"))
        .unwrap_or_default();
    let _ = write!(
        o,
        "<p>Month {}: {} requests, {} served, {} unserved. Spend <b>${}</b> of a ${} budget{crossed}.</p>",
        esc(&report.month),
        report.requests,
        report.served,
        report.unserved,
        report.total_usd,
        report.budget_usd
    );
    if let Some(b) = baseline {
        let (saved, pct) = super::savings(b, report);
        let _ = write!(
            o,
            "<p>Baseline: ${}. Savings: <b>${saved}</b> ({pct:.1}%).</p>",
            b.total_usd
        );
    }
    let charts = |o: &mut String, heading: &str, svgs: &[String]| {
        let _ = write!(o, "<h2>{heading}</h2><div class=\"charts\">");
        for s in svgs {
            o.push_str(s);
        }
        o.push_str("</div>");
    };
    charts(
        &mut o,
        "Spend",
        &[
            cumulative_spend(report, baseline),
            daily_spend(report, baseline),
        ],
    );
    charts(
        &mut o,
        "Backend mix",
        &[
            mix(
                "Videos per backend",
                "videos",
                report,
                baseline,
                |s| s.successes as f64,
                num,
            ),
            mix(
                "Spend per backend",
                "spend ($)",
                report,
                baseline,
                |s| s.spend_usd.to_f64(),
                money,
            ),
        ],
    );
    charts(
        &mut o,
        "Latency and fallbacks",
        &[latency(report), fallbacks(report)],
    );
    tables::backends(&mut o, report);
    tables::fallbacks(&mut o, report);
    experiments(&mut o, report);
    o.push_str("</body></html>\n");
    o
}

/// One panel per experimental arm: its metric against the primary's over the month's
/// requests, with the rollback point; then a table of every arm's figures.
fn experiments(o: &mut String, report: &Report) {
    for e in &report.experiments {
        let status = match (e.rolled_back_at_request, &e.reason) {
            (Some(at), Some(why)) => format!(
                "rolled back after request {} (day {}): {}",
                thousands(at),
                e.rolled_back_day.unwrap_or(0),
                esc(why)
            ),
            _ => "not rolled back this month".to_string(),
        };
        let _ = write!(
            o,
            "<h2>Experiment {} (rule {}, primary {})</h2><p>{status}.</p><div class=\"charts\">",
            esc(&e.name),
            esc(&e.rule),
            esc(&e.primary)
        );
        let series = |a: &crate::simulate::ArmReport| {
            (
                a.backend.clone(),
                a.series
                    .iter()
                    .map(|(n, v)| (*n as f64, *v))
                    .collect::<Vec<_>>(),
            )
        };
        let Some(primary) = e.arms.iter().find(|a| a.backend == e.primary) else {
            o.push_str("</div>");
            continue;
        };
        let marker = e.rolled_back_at_request.map(|at| {
            (
                at as f64,
                format!("rolled back at request {}", thousands(at)),
            )
        });
        for arm in e.arms.iter().filter(|a| a.backend != e.primary) {
            o.push_str(&arm_panel(
                &format!("{}: {} against {}", e.name, arm.backend, e.primary),
                "request of the month",
                e.metric,
                &[series(primary), series(arm)],
                marker.as_ref().map(|(x, l)| (*x, l.as_str())),
            ));
        }
        o.push_str("</div>");
        tables::arms(o, e);
    }
}
