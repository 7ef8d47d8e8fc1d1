//! The chart of replication rate and lag per task over the sample window,
//! as inline SVG: drawn on the server, so it needs no script to show and
//! the page's script only swaps in a fresh copy.

use std::collections::BTreeMap;
use std::fmt::Write;

use mmm_core::model::ServerId;

use super::format::{compact, esc};
use super::samples::{Sample, WINDOW_MS};

const PANEL_W: f64 = 440.0;
const PANEL_H: f64 = 170.0;
const GAP: f64 = 40.0;
const LEFT: f64 = 44.0;
const TOP: f64 = 22.0;
const BOTTOM: f64 = 20.0;
const LEGEND_H: f64 = 22.0;
/// The narrowest time axis: a young scheduler's few samples still spread
/// over the chart instead of crowding its right edge.
const MIN_SPAN_MS: u64 = 30_000;

/// Distinguishable on white and for the common colour blindnesses (Okabe–Ito).
const COLOURS: [&str; 8] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000", "#f0e442",
];

/// The colour of a task's lines.
pub fn colour(id: ServerId) -> &'static str {
    COLOURS[(id as usize).wrapping_sub(1) % COLOURS.len()]
}

struct Panel {
    title: &'static str,
    class: &'static str,
    value: fn(&Sample) -> Option<f64>,
}

const PANELS: [Panel; 2] = [
    Panel {
        title: "Records/s mirrored",
        class: "rate",
        value: |s| s.records_out_per_sec,
    },
    Panel {
        title: "Lag (records)",
        class: "lag",
        value: |s| s.lag,
    },
];

/// The SVG element for `samples`, with `now_ms` at the right edge.
pub fn render(samples: &BTreeMap<ServerId, Vec<Sample>>, now_ms: u64) -> String {
    let width = 2.0 * PANEL_W + GAP;
    let height = PANEL_H + LEGEND_H;
    let oldest = samples.values().flatten().map(|s| s.at_ms).min();
    let span_ms = oldest
        .map_or(WINDOW_MS, |t| now_ms.saturating_sub(t))
        .clamp(MIN_SPAN_MS, WINDOW_MS);
    let axis = Axis {
        start_ms: now_ms.saturating_sub(span_ms),
        span_ms,
        label: span_label(span_ms),
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" aria-label="Replication rate and lag per task over the last {}">"#,
        axis.label
    );
    let any = samples.values().any(|s| !s.is_empty());
    for (i, panel) in PANELS.iter().enumerate() {
        let x0 = i as f64 * (PANEL_W + GAP);
        draw_panel(&mut svg, panel, x0, samples, &axis, any);
    }
    let mut x = LEFT;
    for id in samples.keys() {
        let _ = write!(
            svg,
            r#"<g class="legend"><rect x="{x}" y="{y}" width="12" height="12" fill="{c}"/><text x="{tx}" y="{ty}">task {id}</text></g>"#,
            y = PANEL_H + 6.0,
            c = colour(*id),
            tx = x + 16.0,
            ty = PANEL_H + 16.0,
        );
        x += 70.0;
    }
    svg.push_str("</svg>");
    svg
}

/// The time axis: from `start_ms` to now.
struct Axis {
    start_ms: u64,
    span_ms: u64,
    label: String,
}

/// `45 s`, `3 min`.
fn span_label(ms: u64) -> String {
    if ms >= 120_000 {
        format!("{} min", ms / 60_000)
    } else {
        format!("{} s", ms / 1000)
    }
}

fn draw_panel(
    svg: &mut String,
    panel: &Panel,
    x0: f64,
    samples: &BTreeMap<ServerId, Vec<Sample>>,
    axis: &Axis,
    any: bool,
) {
    let plot_w = PANEL_W - LEFT;
    let plot_h = PANEL_H - TOP - BOTTOM;
    let (left, top) = (x0 + LEFT, TOP);
    let max = samples
        .values()
        .flatten()
        .filter_map(panel.value)
        .fold(0.0_f64, f64::max);
    let scale = nice_ceiling(max);
    let _ = write!(
        svg,
        r#"<g class="panel {class}"><text class="title" x="{left}" y="14">{title}</text><rect class="frame" x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/><text class="axis" x="{lx}" y="{ty}" text-anchor="end">{maxl}</text><text class="axis" x="{lx}" y="{by}" text-anchor="end">0</text><text class="axis" x="{left}" y="{xy}">-{span}</text><text class="axis" x="{right}" y="{xy}" text-anchor="end">now</text>"#,
        class = panel.class,
        title = esc(panel.title),
        lx = left - 4.0,
        ty = top + 10.0,
        maxl = compact(scale),
        by = top + plot_h,
        xy = top + plot_h + 14.0,
        right = left + plot_w,
        span = axis.label,
    );
    if !any {
        let _ = write!(
            svg,
            r#"<text class="empty" x="{}" y="{}" text-anchor="middle">no executor reports yet</text>"#,
            left + plot_w / 2.0,
            top + plot_h / 2.0
        );
    }
    for (id, series) in samples {
        let points: Vec<(f64, f64)> = series
            .iter()
            .filter_map(|s| {
                let v = (panel.value)(s)?;
                let at = s.at_ms.saturating_sub(axis.start_ms) as f64;
                let x = left + plot_w * (at / axis.span_ms as f64);
                let y = top + plot_h - plot_h * (v / scale);
                Some((x.min(left + plot_w), y))
            })
            .collect();
        let Some(&(lx, ly)) = points.last() else {
            continue;
        };
        let list = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect::<Vec<_>>()
            .join(" ");
        let _ = write!(
            svg,
            r#"<polyline class="series" data-task="{id}" points="{list}" stroke="{c}"/><circle cx="{lx:.1}" cy="{ly:.1}" r="3" fill="{c}"/>"#,
            c = colour(*id),
        );
    }
    svg.push_str("</g>");
}

/// The smallest of 1, 2 or 5 times a power of ten that is at least `n`
/// (and at least 1), so the axis reads in round numbers.
fn nice_ceiling(n: f64) -> f64 {
    if !(n.is_finite() && n > 1.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(n.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|f| f * magnitude)
        .find(|c| *c >= n)
        .unwrap_or(10.0 * magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: u64, out: f64, lag: f64) -> Sample {
        Sample {
            at_ms,
            records_in_per_sec: Some(out),
            records_out_per_sec: Some(out),
            lag: Some(lag),
        }
    }

    #[test]
    fn rounds_the_axis_up() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(1200.0), 2000.0);
        assert_eq!(nice_ceiling(5000.0), 5000.0);
        assert_eq!(nice_ceiling(7001.0), 10_000.0);
    }

    #[test]
    fn draws_one_line_per_task_and_panel_scaled_to_the_window() {
        let now = 1_000_000_000;
        let samples = BTreeMap::from([
            (
                1,
                vec![sample(now - WINDOW_MS, 0.0, 10.0), sample(now, 1000.0, 0.0)],
            ),
            (2, vec![sample(now - WINDOW_MS / 2, 500.0, 5.0)]),
        ]);
        let svg = render(&samples, now);
        assert_eq!(svg.matches("<polyline").count(), 4, "{svg}");
        // Rate panel: task 1 goes from the bottom left to the top right.
        let left = LEFT;
        let bottom = TOP + PANEL_H - TOP - BOTTOM;
        let expected = format!(
            r#"data-task="1" points="{left:.1},{bottom:.1} {:.1},{TOP:.1}""#,
            PANEL_W
        );
        assert!(svg.contains(&expected), "{expected} in {svg}");
        assert!(
            svg.contains(">task 2</text>") && svg.contains(">1.0k</text>"),
            "{svg}"
        );
        assert!(!svg.contains("no executor reports yet"));
    }

    #[test]
    fn a_short_history_spreads_over_the_whole_axis() {
        let now = 1_000_000_000;
        let samples = BTreeMap::from([(
            1,
            vec![sample(now - 15_000, 10.0, 1.0), sample(now, 10.0, 1.0)],
        )]);
        let svg = render(&samples, now);
        assert!(svg.contains(">-30 s</text>"), "{svg}");
        // Half-way along a 30 s axis.
        let half = format!(r#"points="{:.1},"#, LEFT + (PANEL_W - LEFT) / 2.0);
        assert!(svg.contains(&half), "{half} in {svg}");
        let samples = BTreeMap::from([(1, vec![sample(now - 200_000, 10.0, 1.0)])]);
        assert!(render(&samples, now).contains(">-3 min</text>"));
        assert!(render(&BTreeMap::new(), now).contains(">-10 min</text>"));
    }

    #[test]
    fn says_when_there_is_nothing_to_draw() {
        let svg = render(&BTreeMap::from([(1, Vec::new())]), 5);
        assert!(svg.contains("no executor reports yet"), "{svg}");
        assert!(!svg.contains("<polyline"));
    }
}
