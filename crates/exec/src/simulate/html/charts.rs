//! Each chart of the report, drawn from the simulation's figures: cumulative and daily spend,
//! videos and spend per backend, latency, fallbacks, and an experiment arm's panel.
//!
//! Each scale shows the data: the spend charts rise to just above the largest spend, and the
//! budget is a dashed line only when it is within [`BUDGET_REACH`] times the data; far above,
//! it is a note at the top edge ("budget $1,000 ↑ (far above)").
//!
//! Why apart from the plumbing in `plot.rs`: this is what each chart shows and how its scale
//! is chosen, the part that changes when the report does.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::format::{money, num, thousands};
use super::plot::{
    box_legend, dashed_legend, day_ticks, empty_panel, legend, line_legend, mesh, svg, text_style,
    ticks, titled, Axis, BAND, BASELINE, BUDGET, INK, NOTE_PT, PALETTE, POLICY, SIZE,
};
use crate::simulate::{BackendStats, Report};

/// The budget is drawn as a line when it is at most this many times the largest spend shown;
/// above that, the line would flatten the data, so it becomes a note at the top edge.
pub const BUDGET_REACH: f64 = 2.0;

/// Cumulative spend over the month: the policy, the baseline, and the budget (a dashed line
/// within reach, a note at the top edge when far above).
pub(super) fn cumulative_spend(r: &Report, baseline: Option<&Report>) -> String {
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

/// Spend per day: a bar for the policy and one for the baseline on each day.
pub(super) fn daily_spend(r: &Report, baseline: Option<&Report>) -> String {
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
pub(super) fn mix(
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
pub(super) fn latency(r: &Report) -> String {
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
pub(super) fn fallbacks(r: &Report) -> String {
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
pub(super) fn arm_panel(
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
