//! The simulation report as one self-contained HTML page: inline SVG charts and tables, no
//! scripts, no external resources, so it works offline and in any browser.
//!
//! The charts are drawn as plain SVG elements here rather than through a plotting crate:
//! three simple charts need a few dozen lines, and the page stays free of fonts and scripts.

use std::fmt::Write as _;

use super::{BackendStats, Report};
use crate::num::Fixed;

const PALETTE: [&str; 8] = [
    "#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the report; `baseline` is the baseline policy's report, if any.
pub fn render(title: &str, report: &Report, baseline: Option<&Report>) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>\
         body{{font-family:system-ui,sans-serif;margin:2rem;color:#222}}table{{border-collapse:collapse;margin:1rem 0}}\
         td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}}th{{background:#f4f4f4}}td:first-child{{text-align:left}}\
         svg{{background:#fff;border:1px solid #ddd;margin:.5rem 0}}</style></head><body><h1>{t}</h1>",
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
    o.push_str("<h2>Cumulative spend</h2>");
    o.push_str(&spend_chart(report, baseline));
    o.push_str("<h2>Backend mix</h2>");
    o.push_str(&bars(
        report,
        "videos",
        |s| s.successes as f64,
        |v| format!("{v:.0}"),
    ));
    o.push_str(&bars(
        report,
        "spend (USD)",
        |s| s.spend_usd.to_f64(),
        |v| format!("${v:.2}"),
    ));
    o.push_str("<h2>Latency per backend (p50 / p95, seconds)</h2>");
    o.push_str(&latency_chart(report));
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
    o.push_str("</table></body></html>\n");
    o
}

fn svg_open(label: &str, w: f64, h: f64) -> String {
    format!("<svg role=\"img\" aria-label=\"{label}\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\">")
}

fn spend_chart(r: &Report, baseline: Option<&Report>) -> String {
    let (w, h, pad) = (720.0, 300.0, 50.0);
    let days = r.daily_spend.len().max(1) as f64;
    let top = [
        r.budget_usd.to_f64(),
        r.total_usd.to_f64(),
        baseline.map_or(0.0, |b| b.total_usd.to_f64()),
    ]
    .into_iter()
    .fold(1.0, f64::max)
        * 1.1;
    let x = |d: f64| pad + d / days * (w - 2.0 * pad);
    let y = |v: f64| h - pad - v / top * (h - 2.0 * pad);
    let line = |series: &[Fixed]| {
        series
            .iter()
            .enumerate()
            .map(|(d, v)| format!("{:.1},{:.1}", x(d as f64 + 1.0), y(v.to_f64())))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut o = svg_open("cumulative spend", w, h);
    let _ = write!(
        o,
        "<line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#999\"/>",
        b = h - pad,
        r = w - pad
    );
    let _ = write!(
        o,
        "<line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{b}\" stroke=\"#999\"/>",
        b = h - pad
    );
    let by = y(r.budget_usd.to_f64());
    let _ = write!(
        o,
        "<line x1=\"{pad}\" y1=\"{by:.1}\" x2=\"{}\" y2=\"{by:.1}\" stroke=\"#c00\" stroke-dasharray=\"6 4\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"12\" fill=\"#c00\" text-anchor=\"end\">budget ${}</text>",
        w - pad,
        w - pad,
        by - 4.0,
        r.budget_usd
    );
    if let Some(b) = baseline {
        let _ = write!(o, "<polyline fill=\"none\" stroke=\"#999\" stroke-width=\"2\" stroke-dasharray=\"3 3\" points=\"{}\"/>", line(&b.daily_spend));
    }
    let _ = write!(
        o,
        "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2.5\" points=\"{}\"/>",
        PALETTE[0],
        line(&r.daily_spend)
    );
    for d in [1.0, (days / 2.0).round(), days] {
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">day {d:.0}</text>",
            x(d),
            h - pad + 16.0
        );
    }
    let _ = write!(
        o,
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">$0</text><text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">${:.0}</text>",
        pad - 4.0,
        h - pad,
        pad - 4.0,
        y(top) + 4.0,
        top
    );
    o.push_str("</svg>");
    o
}

fn bars(
    r: &Report,
    label: &str,
    value: impl Fn(&BackendStats) -> f64,
    show: impl Fn(f64) -> String,
) -> String {
    let rows: Vec<(&String, f64)> = r.backends.iter().map(|(n, s)| (n, value(s))).collect();
    let max = rows
        .iter()
        .map(|(_, v)| *v)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let (w, row) = (720.0, 26.0);
    let h = row * rows.len() as f64 + 30.0;
    let mut o = svg_open(label, w, h);
    let _ = write!(o, "<text x=\"8\" y=\"16\" font-size=\"12\">{label}</text>");
    for (i, (name, v)) in rows.iter().enumerate() {
        let y = 24.0 + i as f64 * row;
        let len = v / max * (w - 260.0);
        let _ = write!(
            o,
            "<text x=\"110\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{}</text><rect x=\"120\" y=\"{y:.1}\" width=\"{len:.1}\" height=\"18\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\">{}</text>",
            y + 13.0,
            esc(name),
            PALETTE[i % PALETTE.len()],
            126.0 + len,
            y + 13.0,
            show(*v)
        );
    }
    o.push_str("</svg>");
    o
}

fn latency_chart(r: &Report) -> String {
    let rows: Vec<(&String, f64, f64)> = r
        .backends
        .iter()
        .filter_map(|(n, s)| Some((n, s.p50_latency_s?, s.p95_latency_s?)))
        .collect();
    let max = rows
        .iter()
        .map(|r| r.2)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let (w, row) = (720.0, 30.0);
    let h = row * rows.len().max(1) as f64 + 20.0;
    let mut o = svg_open("latency", w, h);
    for (i, (name, p50, p95)) in rows.iter().enumerate() {
        let y = 10.0 + i as f64 * row;
        let scale = |v: f64| v / max * (w - 260.0);
        let color = PALETTE[i % PALETTE.len()];
        let _ = write!(
            o,
            "<text x=\"110\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{}</text><rect x=\"120\" y=\"{y:.1}\" width=\"{:.1}\" height=\"20\" fill=\"{color}\" opacity=\"0.35\"/><rect x=\"120\" y=\"{y:.1}\" width=\"{:.1}\" height=\"20\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\">{p50:.1} / {p95:.1}</text>",
            y + 14.0,
            esc(name),
            scale(*p95),
            scale(*p50),
            126.0 + scale(*p95),
            y + 14.0
        );
    }
    o.push_str("</svg>");
    o
}
