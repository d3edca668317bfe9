//! The backtest's outputs for people: the text table, and the self-contained HTML report with
//! SVG charts (drawn with plotters).

use crate::compare::base;
use crate::{Backtest, Config, Matched, PolicyResult, Schedule, Series, Trace};
use plotters::prelude::*;
use std::fmt::Write;

/// Everything the HTML report shows.
pub struct Input<'a> {
    /// The trace.
    pub trace: &'a Trace,
    /// The simulation's settings.
    pub config: &'a Config,
    /// The rows and series.
    pub backtest: &'a Backtest,
    /// The sweep's rows, if any.
    pub sweep: Option<&'a [PolicyResult]>,
    /// Each policy against the others' sweep curves at equal cost, with a sweep.
    pub matched: Option<&'a [Matched]>,
}

const HEADERS: [&str; 10] = [
    "policy",
    "under-prov %",
    "unmet %",
    "pod-hours",
    "vs oracle",
    "scale events",
    "mean pods",
    "peak pods",
    "call p50/p99 µs",
    "errors",
];

fn cells(r: &PolicyResult) -> [String; 10] {
    [
        r.policy.clone(),
        format!("{:.2}", r.under_provisioned_pct),
        format!("{:.3}", r.unmet_demand_pct),
        format!("{:.1}", r.pod_hours),
        format!("{:.3}", r.cost_vs_oracle),
        r.scale_events.to_string(),
        format!("{:.2}", r.mean_replicas),
        r.peak_replicas.to_string(),
        format!("{:.0}/{:.0}", r.policy_us_p50, r.policy_us_p99),
        r.policy_errors.to_string(),
    ]
}

/// One line per row that has one: the time under-provisioned while planned events' load was
/// under way; `None` when no row has.
pub fn events_text(rows: &[PolicyResult]) -> Option<String> {
    let mut out = String::new();
    for r in rows {
        if let Some(pct) = r.event_under_provisioned_pct {
            let _ = writeln!(
                out,
                "{:<28} under-provisioned {pct:.2}% of the events' time (cost {:.3} vs oracle)",
                r.policy, r.cost_vs_oracle
            );
        }
    }
    (!out.is_empty()).then_some(out)
}

/// One line per comparison at equal cost: the row's under-provisioning against the other
/// policy's at the same pod-hours.
pub fn matched_text(matched: &[Matched]) -> String {
    let mut out = String::new();
    for m in matched {
        let _ = write!(
            out,
            "{} (cost {:.3}, under-provisioned {:.2}%) against {} at the same cost: ",
            m.policy, m.cost_vs_oracle, m.under_provisioned_pct, m.against
        );
        let _ = match m.against_under_provisioned_pct {
            Some(u) if u > 0.0 => writeln!(out, "{u:.2}% ({:.2}x)", m.under_provisioned_pct / u),
            Some(u) => writeln!(out, "{u:.2}%"),
            None => writeln!(out, "outside its sweep curve"),
        };
    }
    out
}

/// The results as an aligned text table.
pub fn table(rows: &[PolicyResult]) -> String {
    let body: Vec<[String; 10]> = rows.iter().map(cells).collect();
    let mut widths: Vec<usize> = HEADERS.iter().map(|h| h.chars().count()).collect();
    for row in &body {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, row: &[String]| {
        for (i, (c, w)) in row.iter().zip(&widths).enumerate() {
            let pad = w - c.chars().count();
            if i == 0 {
                out.push_str(c);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str("  ");
                out.push_str(&" ".repeat(pad));
                out.push_str(c);
            }
        }
        out.push('\n');
    };
    line(
        &mut out,
        &HEADERS.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
    );
    for row in &body {
        line(&mut out, row);
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
];

fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

/// The longest a report charts, in weeks (one chart pair per week).
const MAX_WEEKS: usize = 12;
/// Points per line in a chart; longer series are reduced bucket by bucket.
const MAX_POINTS: usize = 1200;
const WEEK_MS: i64 = 7 * 86_400_000;

/// The HTML report: settings, table, Pareto chart, and per week the demand against each
/// policy's ready capacity, and the replicas.
pub fn html(input: &Input) -> String {
    let mut h = String::new();
    let title = format!("leadtime backtest: {}", escape(&input.trace.name));
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse}}\
         td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}h2{{margin-top:32px}}\
         .chart{{margin:8px 0}}</style></head><body>\n<h1>{title}</h1>\n"
    );
    let c = input.config;
    let _ = writeln!(
        h,
        "<p>{} scored decisions every {}s; {:.4} demand per pod; ready time {}; target \
         utilization {}; seed {}.</p>",
        input.backtest.steps,
        c.interval_ms.unwrap_or(input.trace.step_ms) / 1000,
        c.capacity_per_pod,
        escape(&c.ready.describe()),
        c.target_utilization,
        c.seed
    );
    h.push_str("<h2>Results</h2>\n");
    html_table(&mut h, &input.backtest.results);
    if let Some(events) = events_text(&input.backtest.results) {
        h.push_str("<h3>While planned events' load was under way</h3>\n<pre>");
        h.push_str(&escape(&events));
        h.push_str("</pre>\n");
    }
    h.push_str(
        "<h2>Under-provisioning against cost</h2>\n<p>Lower left is better; the oracle is the \
         physical limit at cost 1 and 0% under-provisioned.</p>\n<div class=\"chart\">",
    );
    h.push_str(&pareto(&input.backtest.results, input.sweep));
    h.push_str("</div>\n");
    if let Some(m) = input.matched.filter(|m| !m.is_empty()) {
        h.push_str("<h2>At equal cost</h2>\n<p>Each policy against the others' sweep curves, read at its own cost.</p>\n<pre>");
        h.push_str(&escape(&matched_text(m)));
        h.push_str("</pre>\n");
    }
    if let Some(sweep) = input.sweep {
        h.push_str("<h2>Sweep</h2>\n");
        html_table(&mut h, sweep);
    }
    let series = &input.backtest.series;
    if let Some((_, first)) = series.first() {
        let (Some(&start), Some(&last)) = (first.times.first(), first.times.last()) else {
            h.push_str("</body></html>\n");
            return h;
        };
        let weeks = (((last - start) / WEEK_MS) + 1) as usize;
        h.push_str("<h2>Over time</h2>\n");
        if weeks > MAX_WEEKS {
            let _ = writeln!(
                h,
                "<p>The first {MAX_WEEKS} of {weeks} weeks; lines are reduced to at most \
                 {MAX_POINTS} points per chart (demand by its maximum, capacity by its minimum).</p>"
            );
        }
        for w in 0..weeks.min(MAX_WEEKS) {
            let from = start + w as i64 * WEEK_MS;
            let to = from + WEEK_MS;
            let bands = c
                .schedule
                .as_ref()
                .map(|s| bands(s, &first.times, from, to))
                .unwrap_or_default();
            let _ = writeln!(
                h,
                "<h3>Week {} (from {})</h3>\n<div class=\"chart\">{}</div>\n<div class=\"chart\">{}</div>",
                w + 1,
                day(from),
                capacity_chart(series, from, to, &bands),
                replicas_chart(series, from, to, &bands)
            );
        }
    }
    h.push_str("</body></html>\n");
    h
}

fn html_table(h: &mut String, rows: &[PolicyResult]) {
    h.push_str("<table><tr>");
    for head in HEADERS {
        let _ = write!(h, "<th>{}</th>", escape(head));
    }
    h.push_str("</tr>\n");
    for r in rows {
        h.push_str("<tr>");
        for c in cells(r) {
            let _ = write!(h, "<td>{}</td>", escape(&c));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

fn day(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Hours since `from`, for the x axis.
fn hours(t: i64, from: i64) -> f64 {
    (t - from) as f64 / 3.6e6
}

/// `(x, y)` points of one series inside `[from, to)`, reduced to about [`MAX_POINTS`] by taking
/// each bucket's max (`high`) or min.
fn points(times: &[i64], values: &[f64], from: i64, to: i64, high: bool) -> Vec<(f64, f64)> {
    let lo = times.partition_point(|&t| t < from);
    let hi = times.partition_point(|&t| t < to);
    let n = hi.saturating_sub(lo);
    let bucket = n.div_ceil(MAX_POINTS).max(1);
    (lo..hi)
        .step_by(bucket)
        .map(|i| {
            let end = (i + bucket).min(hi);
            let slice = &values[i..end];
            let v = if high {
                slice.iter().copied().fold(f64::MIN, f64::max)
            } else {
                slice.iter().copied().fold(f64::MAX, f64::min)
            };
            (hours(times[i], from), v)
        })
        .collect()
}

/// A shaded stretch of a chart: a schedule's window or event, its spans in hours.
struct Band {
    label: String,
    color: RGBColor,
    spans: Vec<(f64, f64)>,
}

/// The schedule's windows (where active at the decision `times`) and events (their load's
/// start to end) inside `[from, to)`, as bands; windows blue, events orange.
fn bands(schedule: &Schedule, times: &[i64], from: i64, to: i64) -> Vec<Band> {
    let lo = times.partition_point(|&t| t < from);
    let hi = times.partition_point(|&t| t < to);
    let times = &times[lo..hi];
    let Some(&last) = times.last() else {
        return Vec::new();
    };
    let end = hours(last, from);
    let mut out = Vec::new();
    for (i, w) in schedule.windows.iter().enumerate() {
        let mut spans = Vec::new();
        let mut open: Option<f64> = None;
        for &t in times {
            match (w.active(t), open) {
                (true, None) => open = Some(hours(t, from)),
                (false, Some(a)) => {
                    spans.push((a, hours(t, from)));
                    open = None;
                }
                _ => {}
            }
        }
        if let Some(a) = open {
            spans.push((a, end));
        }
        if !spans.is_empty() {
            let shade = [
                RGBColor(70, 130, 220),
                RGBColor(60, 170, 170),
                RGBColor(140, 110, 210),
            ];
            let bounds = match (w.min, w.max) {
                (Some(a), Some(b)) => format!("min {a}, max {b}"),
                (Some(a), None) => format!("min {a}"),
                (None, Some(b)) => format!("max {b}"),
                (None, None) => String::new(),
            };
            out.push(Band {
                label: format!("window {} ({bounds})", w.name),
                color: shade[i % shade.len()],
                spans,
            });
        }
    }
    for e in &schedule.events {
        let (a, b) = (e.start.max(from), e.end.min(to));
        if a < b {
            out.push(Band {
                label: format!("event {}", e.name),
                color: RGBColor(240, 140, 40),
                spans: vec![(hours(a, from), hours(b, from).min(end))],
            });
        }
    }
    out
}

fn capacity_chart(series: &[(String, Series)], from: i64, to: i64, bands: &[Band]) -> String {
    let first = &series[0].1;
    let demand = points(&first.times, &first.demand, from, to, true);
    let mut lines: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(name, s)| {
            (
                format!("{name}: ready capacity"),
                points(&s.times, &s.ready_capacity, from, to, false),
            )
        })
        .collect();
    lines.insert(0, ("demand".into(), demand));
    line_chart("Demand and ready capacity", "demand", &lines, true, bands)
}

fn replicas_chart(series: &[(String, Series)], from: i64, to: i64, bands: &[Band]) -> String {
    let lines: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(name, s)| {
            let v: Vec<f64> = s.replicas.iter().map(|&r| f64::from(r)).collect();
            (name.clone(), points(&s.times, &v, from, to, true))
        })
        .collect();
    line_chart("Replicas (ready or starting)", "pods", &lines, false, bands)
}

/// The y range and label count of a chart: whole numbers for counts (pods), so that a chart of
/// 0-3 pods is not labelled `0, 0, 1, 1` from rounded fractional ticks.
fn y_axis(y_max: f64, whole: bool) -> (f64, usize) {
    if whole {
        let top = y_max.ceil().max(1.0);
        (top, (top as usize + 1).min(11))
    } else {
        (y_max, 10)
    }
}

/// One SVG line chart over shaded `bands`; with `first_black`, the first line is drawn black
/// (the demand).
fn line_chart(
    caption: &str,
    y_label: &str,
    lines: &[(String, Vec<(f64, f64)>)],
    first_black: bool,
    bands: &[Band],
) -> String {
    let mut svg = String::new();
    let x_max = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .fold(1.0, f64::max);
    let y_max = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .fold(1.0, f64::max)
        * 1.08;
    // The demand chart's values are fractional; the replica chart's are pods.
    let (y_max, y_labels) = y_axis(y_max, !first_black);
    {
        let root = SVGBackend::with_string(&mut svg, (1100, 360)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max);
        let Ok(mut chart) = chart else {
            return String::new();
        };
        let _ = chart
            .configure_mesh()
            .x_desc("hours from the start of the week")
            .y_desc(y_label)
            .x_labels(15)
            .y_labels(y_labels)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style(("sans-serif", 13))
            .light_line_style(RGBColor(235, 235, 235))
            .draw();
        // Under the lines: where a schedule's window or event applied.
        for band in bands {
            let fill = band.color.mix(0.18);
            if let Ok(drawn) = chart.draw_series(
                band.spans
                    .iter()
                    .map(|&(a, b)| Rectangle::new([(a, 0.0), (b, y_max)], fill.filled())),
            ) {
                drawn.label(band.label.as_str()).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 18, y + 5)], fill.filled())
                });
            }
        }
        for (i, (name, pts)) in lines.iter().enumerate() {
            let c = if first_black && i == 0 {
                BLACK
            } else {
                color(if first_black { i - 1 } else { i })
            };
            let width = if first_black && i == 0 { 2 } else { 1 };
            if let Ok(series) =
                chart.draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(width)))
            {
                series
                    .label(name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c));
            }
        }
        let _ = chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .label_font(("sans-serif", 13))
            .border_style(RGBColor(180, 180, 180))
            .draw();
        let _ = root.present();
    }
    svg
}

/// Under-provisioned time against cost vs the oracle: each row a point, each swept policy a curve.
fn pareto(results: &[PolicyResult], sweep: Option<&[PolicyResult]>) -> String {
    let mut svg = String::new();
    let all: Vec<&PolicyResult> = results.iter().chain(sweep.unwrap_or(&[])).collect();
    let x_max = all.iter().map(|r| r.cost_vs_oracle).fold(1.2, f64::max) * 1.05;
    let y_max = all
        .iter()
        .map(|r| r.under_provisioned_pct)
        .fold(1.0, f64::max)
        * 1.1;
    let mut names: Vec<&str> = Vec::new();
    for r in &all {
        if !names.contains(&base(&r.policy)) {
            names.push(base(&r.policy));
        }
    }
    {
        let root = SVGBackend::with_string(&mut svg, (900, 480)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let Ok(mut chart) = ChartBuilder::on(&root)
            .caption("Under-provisioned time vs cost", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.9..x_max, 0.0..y_max)
        else {
            return String::new();
        };
        let _ = chart
            .configure_mesh()
            .x_desc("pod-hours / oracle pod-hours")
            .y_desc("under-provisioned time (%)")
            .x_label_formatter(&|x| format!("{x:.2}"))
            .y_label_formatter(&|y| format!("{y:.1}"))
            .label_style(("sans-serif", 13))
            .light_line_style(RGBColor(235, 235, 235))
            .draw();
        for (i, name) in names.iter().enumerate() {
            let c = if *name == "oracle" { BLACK } else { color(i) };
            let mut curve: Vec<(f64, f64)> = sweep
                .unwrap_or(&[])
                .iter()
                .filter(|r| base(&r.policy) == *name)
                .map(|r| (r.cost_vs_oracle, r.under_provisioned_pct))
                .collect();
            curve.sort_by(|a, b| a.0.total_cmp(&b.0));
            if curve.len() > 1 {
                let _ = chart.draw_series(LineSeries::new(curve.iter().copied(), c.mix(0.6)));
                let _ = chart.draw_series(
                    curve
                        .iter()
                        .map(|&p| Circle::new(p, 3, c.mix(0.6).filled())),
                );
            }
            let main: Vec<(f64, f64)> = results
                .iter()
                .filter(|r| base(&r.policy) == *name)
                .map(|r| (r.cost_vs_oracle, r.under_provisioned_pct))
                .collect();
            if let Ok(s) = chart.draw_series(main.iter().map(|&p| Circle::new(p, 6, c.filled()))) {
                s.label(*name)
                    .legend(move |(x, y)| Circle::new((x + 8, y), 5, c.filled()));
            }
        }
        let _ = chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .label_font(("sans-serif", 13))
            .border_style(RGBColor(180, 180, 180))
            .draw();
        let _ = root.present();
    }
    svg
}

#[cfg(test)]
mod tests {
    use super::y_axis;

    #[test]
    fn pod_charts_have_whole_number_ticks() {
        // 0-1 pods: the axis goes to 2 (1 × 1.08 rounded up) with a label per pod.
        assert_eq!(y_axis(1.08, true), (2.0, 3));
        assert_eq!(y_axis(3.24, true), (4.0, 5));
        // Many pods: at most 11 labels, plotters then steps by whole numbers.
        assert_eq!(y_axis(54.0, true), (54.0, 11));
        assert_eq!(y_axis(1.08, false), (1.08, 10));
    }
}
