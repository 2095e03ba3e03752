//! The simulation report as one self-contained HTML page: inline SVG charts and tables, no
//! scripts, no external resources, so it works offline and in any browser.
//!
//! **How the charts are drawn.** With [plotters]' SVG backend (`svg_backend`, plus
//! `line_series` for the lines; no default features, so no font files, bitmap or image code).
//! It writes each chart as an SVG string that the page inlines, and draws text as SVG `<text>`
//! elements that the browser lays out with its own `sans-serif`, so no font is embedded or
//! loaded. It gives what a reader needs without hand-written geometry: titles, axes with tick
//! marks and labels, axis descriptions, legends for every series, dashed lines and grouped bars.
//! The hand-written SVG it replaces had none of these and scaled the spend chart to the budget.
//! What plotters does not do cleanly, and how this module gets it:
//! - grouped bars: its category axis (`into_segmented`) and `histogram` series give one bar per
//!   category, so the bars of two series (policy and baseline, p50 and p95) are rectangles on
//!   a numeric axis whose ticks sit on the category indices, labelled with the backend names;
//! - ticks chosen by the caller: its `with_key_points` loses the tick label formatter on an
//!   `f64` axis (the mesh then does not compile), so [`Axis`] here, a few lines implementing
//!   plotters' `Ranged`, puts the ticks on round values that [`ticks`] picks;
//! - measuring text: without a font backend (`ttf` pulls in font-kit and system fonts) it
//!   estimates a width from the character count, so legends come out a little wider than their
//!   text and label areas are sized here with room to spare;
//! - notes outside the plot: it places legends only inside the plotting area, so notes that
//!   must not cover the data (the budget far above the data, an experiment's rollback point)
//!   are written in a band reserved between the title and the plot.
//!
//! Each scale shows the data: the spend charts rise to just above the largest spend, and the
//! budget is a dashed line only when it is within [`BUDGET_REACH`] times the data; far above,
//! it is a note at the top edge ("budget $1,000 ↑ (far above)").

use std::error::Error;
use std::fmt::Write as _;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{BackendStats, Report};

/// The budget is drawn as a line when it is at most this many times the largest spend shown;
/// above that, the line would flatten the data, so it becomes a note at the top edge.
pub const BUDGET_REACH: f64 = 2.0;

const PALETTE: [RGBColor; 8] = [
    RGBColor(0x42, 0x69, 0xd0),
    RGBColor(0xef, 0xb1, 0x18),
    RGBColor(0xff, 0x72, 0x5c),
    RGBColor(0x6c, 0xc5, 0xb0),
    RGBColor(0x3c, 0xa9, 0x51),
    RGBColor(0xff, 0x8a, 0xb7),
    RGBColor(0xa4, 0x63, 0xf2),
    RGBColor(0x97, 0xbb, 0xf5),
];
const POLICY: RGBColor = PALETTE[0];
const BASELINE: RGBColor = RGBColor(0x8a, 0x8a, 0x8a);
const BUDGET: RGBColor = RGBColor(0xcc, 0x00, 0x00);
const GRID: RGBColor = RGBColor(0xe6, 0xe6, 0xe6);
const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);

/// A chart's size in pixels (two fit side by side in a 1,200-pixel window).
const SIZE: (u32, u32) = (550, 340);
const FONT: &str = "sans-serif";
/// Font sizes as plotters takes them; its SVG backend writes `size / 1.24` pixels.
const TITLE_PT: f64 = 21.0;
const LABEL_PT: f64 = 15.0;
const NOTE_PT: f64 = 15.0;
/// The band between a chart's title and its plot, for notes that must not cover the data.
const BAND: u32 = 22;

type Drawn = Result<(), Box<dyn Error>>;
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// Every chart's coordinates: numbers on both axes, with the ticks chosen here.
type Plane = Cartesian2d<Axis, Axis>;

/// A numeric axis from `lo` to `hi` with its tick values. (plotters' `with_key_points` does
/// the same, but on an `f64` range it loses the tick label formatter, so the mesh cannot be
/// drawn.)
#[derive(Clone)]
struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Axis {
    /// From the first tick to the last.
    fn over(ticks: Vec<f64>) -> Self {
        let lo = ticks.first().copied().unwrap_or(0.0);
        let hi = ticks
            .last()
            .copied()
            .filter(|h| *h > lo)
            .unwrap_or(lo + 1.0);
        Axis { lo, hi, ticks }
    }

    /// From `lo` to `hi`, with `ticks` inside.
    fn between(lo: f64, hi: f64, ticks: Vec<f64>) -> Self {
        Axis { lo, hi, ticks }
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, (from, to): (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        if span <= 0.0 || !v.is_finite() {
            return (from + to) / 2;
        }
        let share = (v - self.lo) / span;
        from + (f64::from(to - from) * share).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Grid lines and labels at the ticks only, none in between.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut o = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            o.push(',');
        }
        o.push(c);
    }
    o
}

/// A number for an axis or a label: whole numbers with thousands separators, others with up
/// to three decimals.
fn num(v: f64) -> String {
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    if (a - a.round()).abs() < 1e-9 {
        return format!("{sign}{}", thousands(a.round() as u64));
    }
    let text = format!("{a:.3}");
    let text = text.trim_end_matches('0');
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let whole = thousands(whole.parse().unwrap_or(0));
    format!("{sign}{whole}.{frac}")
}

/// Dollars: `$1,000`, `$64`, `$0.25` (cents shown when there are any).
fn money(v: f64) -> String {
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    if (a - a.round()).abs() < 0.005 {
        format!("{sign}${}", thousands(a.round() as u64))
    } else {
        let cents = (a * 100.0).round() as u64;
        format!("{sign}${}.{:02}", thousands(cents / 100), cents % 100)
    }
}

/// Round tick values covering `lo..=hi`: about five steps of 1, 2, 2.5 or 5 times a power of
/// ten, the first at or below `lo` and the last at or above `hi`.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() && hi > lo {
        (lo, hi)
    } else if lo.is_finite() {
        (lo, lo + 1.0)
    } else {
        (0.0, 1.0)
    };
    let raw = (hi - lo) / 5.0;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * power);
    let first = (lo / step + 1e-9).floor() as i64;
    let last = (hi / step - 1e-9).ceil() as i64;
    (first..=last.max(first + 1))
        .map(|k| {
            // Rounded to the step's decimals, so 0.1 × 3 prints as 0.3.
            let v = k as f64 * step;
            let scale = 10f64.powi((-power.log10().floor() as i32).max(0) + 1);
            (v * scale).round() / scale
        })
        .collect()
}

/// Ticks on the days of a month: the 1st, every fifth day, and the last when it is not too
/// close to the fifth before it.
fn day_ticks(days: usize) -> Vec<f64> {
    let mut t: Vec<f64> = std::iter::once(1)
        .chain((5..=days).step_by(5))
        .map(|d| d as f64)
        .collect();
    if days % 5 >= 3 || days < 5 {
        t.push(days as f64);
    }
    t.dedup();
    t
}

fn text_style(pt: f64, color: &RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    (FONT, pt).into_font().color(color).pos(Pos::new(h, v))
}

/// Runs `draw` on a fresh SVG canvas and returns the SVG, labelled for screen readers; if
/// plotters fails, a paragraph saying so instead of a broken chart.
fn svg(label: &str, size: (u32, u32), draw: impl FnOnce(&Area<'_>) -> Drawn) -> String {
    let mut buf = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        let drawn = root
            .fill(&WHITE)
            .map_err(Box::<dyn Error>::from)
            .and_then(|()| draw(&root));
        drawn.and(root.present().map_err(Box::<dyn Error>::from))
    };
    match result {
        Ok(()) => buf.replacen(
            "<svg ",
            &format!("<svg role=\"img\" aria-label=\"{}\" ", esc(label)),
            1,
        ),
        Err(e) => format!(
            "<p class=\"chart-error\">{}: the chart could not be drawn ({})</p>",
            esc(label),
            esc(&e.to_string())
        ),
    }
}

/// The area under the title, with the note band reserved by the chart builder's top margin.
fn titled<'a>(root: &Area<'a>, title: &str) -> Result<Area<'a>, Box<dyn Error>> {
    Ok(root.titled(title, (FONT, TITLE_PT).into_font().color(&INK))?)
}

/// A chart with nothing to draw: its title and a sentence saying why.
fn empty_panel(title: &str, why: &str) -> String {
    svg(title, (SIZE.0, 160), |root| {
        let area = titled(root, title)?;
        let (w, h) = area.dim_in_pixel();
        area.draw(&Text::new(
            why.to_string(),
            (w as i32 / 2, h as i32 / 2),
            text_style(LABEL_PT, &INK, HPos::Center, VPos::Center),
        ))?;
        Ok(())
    })
}

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
        o.push_str("</div><table><tr><th>arm</th><th>samples</th><th>passes</th><th>delivered</th><th>metric</th><th>samples at rollback</th></tr>");
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
}

/// Legend entries: a short line, or a dashed one, in the series' style.
fn line_legend(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(3))
}

fn dashed_legend(
    color: RGBColor,
) -> impl Fn((i32, i32)) -> DashedPathElement<std::vec::IntoIter<(i32, i32)>, i32> {
    move |(x, y)| DashedPathElement::new(vec![(x, y), (x + 22, y)], 5, 3, color.stroke_width(2))
}

fn box_legend(color: RGBColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
}

fn legend<'a>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Plane>,
    at: SeriesLabelPosition,
) -> Drawn {
    chart
        .configure_series_labels()
        .position(at)
        .label_font((FONT, LABEL_PT).into_font().color(&INK))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(0xbb, 0xbb, 0xbb))
        .margin(8)
        .draw()?;
    Ok(())
}

/// Cumulative spend over the month: the policy, the baseline, and the budget (a dashed line
/// within reach, a note at the top edge when far above).
fn cumulative_spend(r: &Report, baseline: Option<&Report>) -> String {
    let title = "Cumulative spend";
    svg(title, SIZE, |root| {
        let days = r.daily_spend.len().max(1);
        let budget = r.budget_usd.to_f64();
        let data_max = baseline
            .map_or(0.0, |b| b.total_usd.to_f64())
            .max(r.total_usd.to_f64());
        let budget_line = budget > 0.0 && budget <= data_max.max(f64::MIN_POSITIVE) * BUDGET_REACH;
        let top = if budget_line {
            budget.max(data_max)
        } else {
            data_max
        };
        let ys = ticks(0.0, top * 1.05);
        let area = titled(root, title)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(10)
            .margin_top(BAND)
            .margin_right(24)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(
                Axis::between(0.0, days as f64, day_ticks(days)),
                Axis::over(ys),
            )?;
        mesh(
            &mut chart,
            ("day of month", "spend so far ($)"),
            &|v| num(*v),
            &|v| money(*v),
            (true, true),
        )?;
        let points = |s: &[genroute_core::num::Fixed]| {
            std::iter::once((0.0, 0.0))
                .chain(
                    s.iter()
                        .enumerate()
                        .map(|(d, v)| (d as f64 + 1.0, v.to_f64())),
                )
                .collect::<Vec<_>>()
        };
        if let Some(b) = baseline {
            chart
                .draw_series(DashedLineSeries::new(
                    points(&b.daily_spend),
                    7,
                    4,
                    BASELINE.stroke_width(2),
                ))?
                .label(format!("baseline: {}", money(b.total_usd.to_f64())))
                .legend(dashed_legend(BASELINE));
        }
        chart
            .draw_series(LineSeries::new(
                points(&r.daily_spend),
                POLICY.stroke_width(3),
            ))?
            .label(format!("policy: {}", money(r.total_usd.to_f64())))
            .legend(line_legend(POLICY));
        let note = if budget_line {
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, budget), (days as f64, budget)],
                    9,
                    5,
                    BUDGET.stroke_width(2),
                ))?
                .label(format!("budget: {}", money(budget)))
                .legend(dashed_legend(BUDGET));
            format!("budget {}", money(budget))
        } else if budget > 0.0 {
            format!("budget {} ↑ (far above)", money(budget))
        } else {
            "no budget".to_string()
        };
        // Cumulative lines start at zero on the left and rise: the lower right stays clear.
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        // The note: above the line's left end when it is drawn (where the spend is still
        // low), in the band above the plot when the budget is off the scale.
        let (at, h) = if budget_line {
            let (x, y) = chart.backend_coord(&(0.0, budget));
            ((x + 6, y - 4), HPos::Left)
        } else {
            let (x, y) = chart.backend_coord(&(days as f64, chart.y_range().end));
            ((x, y - 6), HPos::Right)
        };
        root.draw(&Text::new(
            note,
            at,
            text_style(NOTE_PT, &BUDGET, h, VPos::Bottom),
        ))?;
        Ok(())
    })
}

/// The grid, the axes, their tick labels and their descriptions; `grid` says which axes' ticks
/// get grid lines across the plot (x, y).
fn mesh(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Plane>,
    (x_desc, y_desc): (&str, &str),
    x_fmt: &dyn Fn(&f64) -> String,
    y_fmt: &dyn Fn(&f64) -> String,
    grid: (bool, bool),
) -> Drawn {
    let mut m = chart.configure_mesh();
    m.bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(RGBColor(0x66, 0x66, 0x66))
        .label_style((FONT, LABEL_PT).into_font().color(&INK))
        .axis_desc_style((FONT, LABEL_PT).into_font().color(&INK))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(x_fmt)
        .y_label_formatter(y_fmt);
    if !grid.0 {
        m.disable_x_mesh();
    }
    if !grid.1 {
        m.disable_y_mesh();
    }
    m.draw()?;
    Ok(())
}

/// Spend per day: a bar for the policy and one for the baseline on each day.
fn daily_spend(r: &Report, baseline: Option<&Report>) -> String {
    let title = "Daily spend";
    let per_day = |s: &[genroute_core::num::Fixed]| {
        s.iter()
            .scan(0.0, |before, v| {
                let v = v.to_f64();
                let day = v - *before;
                *before = v;
                Some(day)
            })
            .collect::<Vec<f64>>()
    };
    let mut series = vec![("policy", POLICY, per_day(&r.daily_spend))];
    if let Some(b) = baseline {
        series.push(("baseline", BASELINE, per_day(&b.daily_spend)));
    }
    svg(title, SIZE, |root| {
        let days = r.daily_spend.len().max(1);
        let max = series
            .iter()
            .flat_map(|s| s.2.iter().copied())
            .fold(0.0, f64::max);
        // Room above the bars for the legend.
        let ys = ticks(0.0, max * 1.3);
        let area = titled(root, title)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(10)
            .margin_top(BAND)
            .margin_right(24)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(
                Axis::between(0.5, days as f64 + 0.5, day_ticks(days)),
                Axis::over(ys),
            )?;
        mesh(
            &mut chart,
            ("day of month", "spend that day ($)"),
            &|v| num(*v),
            &|v| money(*v),
            (false, true),
        )?;
        let width = 0.8 / series.len() as f64;
        for (k, (name, color, values)) in series.iter().enumerate() {
            let total: f64 = values.iter().sum();
            chart
                .draw_series(values.iter().enumerate().map(|(d, v)| {
                    let x0 = d as f64 + 1.0 - 0.4 + k as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width, *v)], color.filled())
                }))?
                .label(format!("{name}: {} in {days} days", money(total)))
                .legend(box_legend(*color));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

/// Backends shown in the mix charts: the policy's and the baseline's, by name.
fn backend_names(r: &Report, baseline: Option<&Report>) -> Vec<String> {
    let mut names: Vec<String> = r.backends.keys().cloned().collect();
    if let Some(b) = baseline {
        names.extend(b.backends.keys().cloned());
    }
    names.sort();
    names.dedup();
    names
}

/// Grouped vertical bars over named categories, each bar labelled with its value.
struct Bars<'a> {
    title: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
    categories: Vec<String>,
    /// Name, colour and one value per category (`None`: nothing to draw).
    series: Vec<(String, RGBColor, Vec<Option<f64>>)>,
    /// The y tick labels.
    tick: &'a dyn Fn(f64) -> String,
    /// The label on each bar.
    show: &'a dyn Fn(f64) -> String,
}

fn bars(b: Bars<'_>) -> String {
    svg(b.title, SIZE, |root| {
        let n = b.categories.len().max(1);
        let max = b
            .series
            .iter()
            .flat_map(|s| s.2.iter().flatten().copied())
            .fold(0.0, f64::max);
        let ys = ticks(0.0, max * 1.35);
        let area = titled(root, b.title)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(10)
            .margin_top(BAND)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(
                Axis::between(-0.5, n as f64 - 0.5, (0..n).map(|i| i as f64).collect()),
                Axis::over(ys),
            )?;
        let category = |v: &f64| {
            b.categories
                .get(v.round().max(0.0) as usize)
                .cloned()
                .unwrap_or_default()
        };
        let tick = |v: &f64| (b.tick)(*v);
        mesh(
            &mut chart,
            (b.x_desc, b.y_desc),
            &category,
            &tick,
            (false, true),
        )?;
        let width = 0.8 / b.series.len().max(1) as f64;
        for (k, (name, color, values)) in b.series.iter().enumerate() {
            let x0 = |i: usize| i as f64 - 0.4 + k as f64 * width;
            chart
                .draw_series(values.iter().enumerate().filter_map(|(i, v)| {
                    v.map(|v| Rectangle::new([(x0(i), 0.0), (x0(i) + width, v)], color.filled()))
                }))?
                .label(name.clone())
                .legend(box_legend(*color));
            chart.draw_series(values.iter().enumerate().filter_map(|(i, v)| {
                v.map(|v| {
                    Text::new(
                        (b.show)(v),
                        (x0(i) + width / 2.0, v),
                        text_style(13.0, &INK, HPos::Center, VPos::Bottom),
                    )
                })
            }))?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

/// Videos or spend per backend, the policy's beside the baseline's.
fn mix(
    title: &str,
    y_desc: &str,
    r: &Report,
    baseline: Option<&Report>,
    value: impl Fn(&BackendStats) -> f64,
    show: fn(f64) -> String,
) -> String {
    let categories = backend_names(r, baseline);
    let of = |rep: &Report| {
        categories
            .iter()
            .map(|n| Some(rep.backends.get(n).map_or(0.0, &value)))
            .collect::<Vec<_>>()
    };
    let mut series = vec![("policy".to_string(), POLICY, of(r))];
    if let Some(b) = baseline {
        series.push(("baseline".to_string(), BASELINE, of(b)));
    }
    bars(Bars {
        title,
        x_desc: "backend",
        y_desc,
        series,
        categories,
        tick: &show,
        show: &show,
    })
}

/// Median and 95th percentile latency of the policy's calls, per backend that was called.
fn latency(r: &Report) -> String {
    let title = "Latency per backend";
    let rows: Vec<(&String, f64, f64)> = r
        .backends
        .iter()
        .filter_map(|(n, s)| Some((n, s.p50_latency_s?, s.p95_latency_s?)))
        .collect();
    if rows.is_empty() {
        return empty_panel(title, "no backend was called");
    }
    let show = |v: f64| format!("{v:.1} s");
    bars(Bars {
        title,
        x_desc: "backend",
        y_desc: "latency (seconds)",
        categories: rows.iter().map(|r| r.0.clone()).collect(),
        series: vec![
            (
                "p50 (median)".into(),
                POLICY,
                rows.iter().map(|r| Some(r.1)).collect(),
            ),
            (
                "p95".into(),
                PALETTE[1],
                rows.iter().map(|r| Some(r.2)).collect(),
            ),
        ],
        tick: &num,
        show: &show,
    })
}

/// Requests moved from one backend to the next of their chain, as horizontal bars.
fn fallbacks(r: &Report) -> String {
    let title = "Fallbacks between backends";
    if r.fallbacks.is_empty() {
        return empty_panel(title, "no fallbacks: every call went to the first choice");
    }
    let rows: Vec<(String, u64)> = r
        .fallbacks
        .iter()
        .map(|t| (format!("{} → {}", t.from, t.to), t.count))
        .collect();
    let m = rows.len();
    let label_chars = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let height = (150 + 34 * m as u32).max(SIZE.1);
    svg(title, (SIZE.0, height), |root| {
        let max = rows.iter().map(|r| r.1).max().unwrap_or(0) as f64;
        let xs = ticks(0.0, (max * 1.2).max(1.0));
        let area = titled(root, title)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(10)
            .margin_top(BAND)
            .margin_right(24)
            .x_label_area_size(48)
            .y_label_area_size(40 + 8 * label_chars as u32)
            .build_cartesian_2d(
                Axis::over(xs),
                Axis::between(-0.5, m as f64 - 0.5, (0..m).map(|i| i as f64).collect()),
            )?;
        // The most frequent move on top.
        let row = |v: &f64| m.saturating_sub(1 + v.round().max(0.0) as usize);
        let label = |v: &f64| rows.get(row(v)).map(|r| r.0.clone()).unwrap_or_default();
        mesh(
            &mut chart,
            (
                "requests moved (failure or skip of the first, call of the second)",
                "",
            ),
            &|v| num(*v),
            &label,
            (true, false),
        )?;
        let y = |k: usize| (m - 1 - k) as f64;
        chart
            .draw_series(rows.iter().enumerate().map(|(k, (_, c))| {
                Rectangle::new(
                    [(0.0, y(k) - 0.32), (*c as f64, y(k) + 0.32)],
                    PALETTE[2].filled(),
                )
            }))?
            .label("requests moved from → to")
            .legend(box_legend(PALETTE[2]));
        chart.draw_series(rows.iter().enumerate().map(|(k, (_, c))| {
            EmptyElement::at((*c as f64, y(k)))
                + Text::new(
                    thousands(*c),
                    (4, 0),
                    text_style(13.0, &INK, HPos::Left, VPos::Center),
                )
        }))?;
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    })
}

/// A line chart with one line per series, a legend and ticks on both axes, and an optional
/// vertical marker (a dashed line with its label above the plot, e.g. "rolled back at request
/// 1,234"): the panel of one A/B experiment arm.
pub(crate) fn arm_panel(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    marker: Option<(f64, &str)>,
) -> String {
    let points = || {
        series
            .iter()
            .flat_map(|s| s.1.iter().copied())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let bounds = |vs: &mut dyn Iterator<Item = f64>| {
        vs.fold(None, |acc: Option<(f64, f64)>, v| {
            Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
        })
    };
    let marker_x = marker.map(|m| m.0).filter(|x| x.is_finite());
    let (x_lo, x_hi) = bounds(&mut points().map(|p| p.0).chain(marker_x)).unwrap_or((0.0, 1.0));
    let (y_lo, y_hi) = bounds(&mut points().map(|p| p.1)).unwrap_or((0.0, 1.0));
    let xs = ticks(x_lo, x_hi);
    let ys = ticks(y_lo.min(0.0), y_hi + (y_hi - y_lo.min(0.0)).abs() * 0.05);
    svg(title, SIZE, |root| {
        let area = titled(root, title)?;
        let (x_axis, y_axis) = (Axis::over(xs.clone()), Axis::over(ys.clone()));
        let (x_range, y_range) = (x_axis.range(), y_axis.range());
        let mut chart = ChartBuilder::on(&area)
            .margin(10)
            .margin_top(BAND)
            .margin_right(28)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(x_axis, y_axis)?;
        mesh(
            &mut chart,
            (x_label, y_label),
            &|v| num(*v),
            &|v| num(*v),
            (true, true),
        )?;
        for (k, (name, pts)) in series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(3)))?
                .label(name.clone())
                .legend(line_legend(color));
        }
        if let (Some((x, label)), Some(_)) = (marker, marker_x) {
            chart.draw_series(DashedLineSeries::new(
                [(x, y_range.start), (x, y_range.end)],
                8,
                5,
                BUDGET.stroke_width(2),
            ))?;
            // The label above the plot, anchored so that it stays inside the chart.
            let (px, py) = chart.backend_coord(&(x, y_range.end));
            let share = (x - x_range.start) / (x_range.end - x_range.start);
            let h = if share < 0.25 {
                HPos::Left
            } else if share > 0.75 {
                HPos::Right
            } else {
                HPos::Center
            };
            root.draw(&Text::new(
                label.to_string(),
                (px, py - 6),
                text_style(NOTE_PT, &BUDGET, h, VPos::Bottom),
            ))?;
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of each `<text>` element.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let body = t.split_once('>')?.1;
                Some(body.split_once("</text>")?.0.trim().to_string())
            })
            .collect()
    }

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(money(1000.0), "$1,000");
        assert_eq!(money(64.0), "$64");
        assert_eq!(money(0.25), "$0.25");
        assert_eq!(num(1234.0), "1,234");
        assert_eq!(num(0.3), "0.3");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn ticks_are_round_and_cover_the_data() {
        assert_eq!(ticks(0.0, 126.0), vec![0.0, 50.0, 100.0, 150.0]);
        assert_eq!(ticks(0.0, 67.2), vec![0.0, 20.0, 40.0, 60.0, 80.0]);
        assert_eq!(ticks(0.0, 1.0), vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(day_ticks(30), vec![1.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0]);
        assert_eq!(day_ticks(28), vec![1.0, 5.0, 10.0, 15.0, 20.0, 25.0, 28.0]);
        assert_eq!(day_ticks(31), vec![1.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0]);
    }

    #[test]
    fn an_arm_panel_has_a_legend_ticks_and_its_marker() {
        let series = vec![
            (
                "primary (veo)".to_string(),
                (0..=20).map(|i| (i as f64 * 100.0, 0.9)).collect(),
            ),
            (
                "experimental (pixverse)".to_string(),
                (0..=20)
                    .map(|i| (i as f64 * 100.0, 0.9 - i as f64 * 0.02))
                    .collect(),
            ),
        ];
        let svg = arm_panel(
            "Arm pass rate",
            "request",
            "pass rate",
            &series,
            Some((1234.0, "rolled back at request 1,234")),
        );
        assert!(
            svg.starts_with("<svg role=\"img\" aria-label=\"Arm pass rate\""),
            "{svg}"
        );
        let t = texts(&svg);
        for want in [
            "Arm pass rate",
            "primary (veo)",
            "experimental (pixverse)",
            "rolled back at request 1,234",
            "request",
            "pass rate",
            "2,000",
            "0.8",
        ] {
            assert!(t.iter().any(|s| s == want), "{want:?} not in {t:?}");
        }
        assert!(svg.contains("stroke-dasharray") || svg.matches("<polyline").count() > 3);
        // `GENROUTE_SHOTS=DIR` writes the panel to DIR/arm-panel.html, to look at.
        if let Some(dir) = std::env::var_os("GENROUTE_SHOTS") {
            let page = format!("<!doctype html><html><body>{svg}</body></html>\n");
            std::fs::write(std::path::Path::new(&dir).join("arm-panel.html"), page).unwrap();
        }
        // Without a marker, no marker label; an empty series list still draws.
        let plain = arm_panel("A", "x", "y", &series[..1], None);
        assert!(!plain.contains("rolled back"));
        assert!(arm_panel("empty", "x", "y", &[], None).contains("<svg"));
    }
}
