//! The plotters plumbing every chart of the report is drawn with: the SVG canvas, titles,
//! axes with round ticks, the mesh, legends, colours and sizes.
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

use std::error::Error;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::format::esc;

pub(super) const PALETTE: [RGBColor; 8] = [
    RGBColor(0x42, 0x69, 0xd0),
    RGBColor(0xef, 0xb1, 0x18),
    RGBColor(0xff, 0x72, 0x5c),
    RGBColor(0x6c, 0xc5, 0xb0),
    RGBColor(0x3c, 0xa9, 0x51),
    RGBColor(0xff, 0x8a, 0xb7),
    RGBColor(0xa4, 0x63, 0xf2),
    RGBColor(0x97, 0xbb, 0xf5),
];
pub(super) const POLICY: RGBColor = PALETTE[0];
pub(super) const BASELINE: RGBColor = RGBColor(0x8a, 0x8a, 0x8a);
pub(super) const BUDGET: RGBColor = RGBColor(0xcc, 0x00, 0x00);
const GRID: RGBColor = RGBColor(0xe6, 0xe6, 0xe6);
pub(super) const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);

/// A chart's size in pixels (two fit side by side in a 1,200-pixel window).
pub(super) const SIZE: (u32, u32) = (550, 340);
const FONT: &str = "sans-serif";
/// Font sizes as plotters takes them; its SVG backend writes `size / 1.24` pixels.
const TITLE_PT: f64 = 21.0;
const LABEL_PT: f64 = 15.0;
pub(super) const NOTE_PT: f64 = 15.0;
/// The band between a chart's title and its plot, for notes that must not cover the data.
pub(super) const BAND: u32 = 22;

pub(super) type Drawn = Result<(), Box<dyn Error>>;
pub(super) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// Every chart's coordinates: numbers on both axes, with the ticks chosen here.
pub(super) type Plane = Cartesian2d<Axis, Axis>;

/// A numeric axis from `lo` to `hi` with its tick values. (plotters' `with_key_points` does
/// the same, but on an `f64` range it loses the tick label formatter, so the mesh cannot be
/// drawn.)
#[derive(Clone)]
pub(super) struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Axis {
    /// From the first tick to the last.
    pub(super) fn over(ticks: Vec<f64>) -> Self {
        let lo = ticks.first().copied().unwrap_or(0.0);
        let hi = ticks
            .last()
            .copied()
            .filter(|h| *h > lo)
            .unwrap_or(lo + 1.0);
        Axis { lo, hi, ticks }
    }

    /// From `lo` to `hi`, with `ticks` inside.
    pub(super) fn between(lo: f64, hi: f64, ticks: Vec<f64>) -> Self {
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

/// Round tick values covering `lo..=hi`: about five steps of 1, 2, 2.5 or 5 times a power of
/// ten, the first at or below `lo` and the last at or above `hi`.
pub(super) fn ticks(lo: f64, hi: f64) -> Vec<f64> {
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
pub(super) fn day_ticks(days: usize) -> Vec<f64> {
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

pub(super) fn text_style(pt: f64, color: &RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    (FONT, pt).into_font().color(color).pos(Pos::new(h, v))
}

/// Runs `draw` on a fresh SVG canvas and returns the SVG, labelled for screen readers; if
/// plotters fails, a paragraph saying so instead of a broken chart.
pub(super) fn svg(label: &str, size: (u32, u32), draw: impl FnOnce(&Area<'_>) -> Drawn) -> String {
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
pub(super) fn titled<'a>(root: &Area<'a>, title: &str) -> Result<Area<'a>, Box<dyn Error>> {
    Ok(root.titled(title, (FONT, TITLE_PT).into_font().color(&INK))?)
}

/// A chart with nothing to draw: its title and a sentence saying why.
pub(super) fn empty_panel(title: &str, why: &str) -> String {
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

/// Legend entries: a short line, or a dashed one, in the series' style.
pub(super) fn line_legend(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(3))
}

pub(super) fn dashed_legend(
    color: RGBColor,
) -> impl Fn((i32, i32)) -> DashedPathElement<std::vec::IntoIter<(i32, i32)>, i32> {
    move |(x, y)| DashedPathElement::new(vec![(x, y), (x + 22, y)], 5, 3, color.stroke_width(2))
}

pub(super) fn box_legend(color: RGBColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
}

pub(super) fn legend<'a>(
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

/// The grid, the axes, their tick labels and their descriptions; `grid` says which axes' ticks
/// get grid lines across the plot (x, y).
pub(super) fn mesh(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_data() {
        assert_eq!(ticks(0.0, 126.0), vec![0.0, 50.0, 100.0, 150.0]);
        assert_eq!(ticks(0.0, 67.2), vec![0.0, 20.0, 40.0, 60.0, 80.0]);
        assert_eq!(ticks(0.0, 1.0), vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(day_ticks(30), vec![1.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0]);
        assert_eq!(day_ticks(28), vec![1.0, 5.0, 10.0, 15.0, 20.0, 25.0, 28.0]);
        assert_eq!(day_ticks(31), vec![1.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0]);
    }
}
