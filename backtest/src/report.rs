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

/// Text made safe inside HTML (elements and attribute values).
pub fn escape(s: &str) -> String {
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
const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = 7 * DAY_MS;

/// The weeks the report charts: the first [`MAX_WEEKS`], and any later one with a planned event
/// of the schedule (what a user most wants to see of a long trace).
fn weeks_shown(weeks: usize, start: i64, schedule: Option<&Schedule>) -> Vec<usize> {
    (0..weeks)
        .filter(|&w| {
            let from = start + w as i64 * WEEK_MS;
            w < MAX_WEEKS
                || schedule.is_some_and(|s| {
                    s.events
                        .iter()
                        .any(|e| e.start < from + WEEK_MS && e.end > from)
                })
        })
        .collect()
}

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
         .chart{{margin:8px 0}}.legend{{font-size:13px;margin:0 0 12px 60px}}</style></head><body>\n<h1>{title}</h1>\n"
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
        let shown = weeks_shown(weeks, start, c.schedule.as_ref());
        h.push_str("<h2>Over time</h2>\n");
        if shown.len() < weeks {
            let later: Vec<String> = shown
                .iter()
                .filter(|&&w| w >= MAX_WEEKS)
                .map(|w| (w + 1).to_string())
                .collect();
            let _ = writeln!(
                h,
                "<p>The first {MAX_WEEKS} of {weeks} weeks{}; lines are reduced to at most \
                 {MAX_POINTS} points per chart (demand by its maximum, capacity by its minimum).</p>",
                if later.is_empty() {
                    String::new()
                } else {
                    format!(", and week {} (planned events)", later.join(", "))
                }
            );
        }
        for w in shown {
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

/// Days since `from`, for the x axis (labelled with dates and clock times).
fn days(t: i64, from: i64) -> f64 {
    (t - from) as f64 / DAY_MS as f64
}

/// An x-axis label: the date at midnight, the clock time otherwise (UTC).
fn tick(from: i64, x: f64) -> String {
    let t = from + (x * DAY_MS as f64).round() as i64;
    chrono::DateTime::from_timestamp_millis(t)
        .map(|t| {
            if t.format("%H:%M").to_string() == "00:00" {
                t.format("%a %d %b").to_string()
            } else {
                t.format("%H:%M").to_string()
            }
        })
        .unwrap_or_default()
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
            (days(times[i], from), v)
        })
        .collect()
}

/// A shaded stretch of a chart: a schedule's window or event, its spans in days.
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
    let end = days(last, from);
    let mut out = Vec::new();
    for (i, w) in schedule.windows.iter().enumerate() {
        let mut spans = Vec::new();
        let mut open: Option<f64> = None;
        for &t in times {
            match (w.active(t), open) {
                (true, None) => open = Some(days(t, from)),
                (false, Some(a)) => {
                    spans.push((a, days(t, from)));
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
                spans: vec![(days(a, from), days(b, from).min(end))],
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
    line_chart(
        "Demand and ready capacity",
        "demand",
        &lines,
        true,
        bands,
        from,
    )
}

fn replicas_chart(series: &[(String, Series)], from: i64, to: i64, bands: &[Band]) -> String {
    let lines: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(name, s)| {
            let v: Vec<f64> = s.replicas.iter().map(|&r| f64::from(r)).collect();
            (name.clone(), points(&s.times, &v, from, to, true))
        })
        .collect();
    line_chart(
        "Replicas (ready or starting)",
        "pods",
        &lines,
        false,
        bands,
        from,
    )
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

/// One SVG line chart of the week from `from` over shaded `bands`, its legend below it (never
/// over a line); with `first_black`, the first line is drawn black (the demand).
fn line_chart(
    caption: &str,
    y_label: &str,
    lines: &[(String, Vec<(f64, f64)>)],
    first_black: bool,
    bands: &[Band],
    from: i64,
) -> String {
    let mut svg = String::new();
    // A whole week, also for a trace's last, shorter one: every week's chart has one scale.
    let x_max = 7.0;
    let mut legend = Vec::new();
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
            .x_desc("UTC")
            .y_desc(y_label)
            .x_labels(15)
            .y_labels(y_labels)
            .x_label_formatter(&|x| tick(from, *x))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style(("sans-serif", 13))
            .light_line_style(RGBColor(235, 235, 235))
            .draw();
        // Under the lines: where a schedule's window or event applied.
        for band in bands {
            let fill = band.color.mix(0.18);
            let _ = chart.draw_series(
                band.spans
                    .iter()
                    .map(|&(a, b)| Rectangle::new([(a, 0.0), (b, y_max)], fill.filled())),
            );
            legend.push((band.label.clone(), band.color, Swatch::Band));
        }
        for (i, (name, pts)) in lines.iter().enumerate() {
            let c = if first_black && i == 0 {
                BLACK
            } else {
                color(if first_black { i - 1 } else { i })
            };
            let width = if first_black && i == 0 { 2 } else { 1 };
            let _ = chart.draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(width)));
            legend.push((name.clone(), c, Swatch::Line));
        }
        let _ = root.present();
    }
    svg + &legend_html(&legend)
}

/// How a legend entry shows its series.
#[derive(Clone, Copy)]
enum Swatch {
    Line,
    Band,
    Dot,
}

/// A chart's legend as HTML under it: a legend drawn inside the plot hid the points and peaks
/// under its box.
fn legend_html(entries: &[(String, RGBColor, Swatch)]) -> String {
    let mut h = String::from("<div class=\"legend\">");
    for (label, RGBColor(r, g, b), swatch) in entries {
        let style = match swatch {
            Swatch::Line => format!("display:inline-block;width:18px;height:3px;background:rgb({r},{g},{b});vertical-align:middle"),
            Swatch::Band => format!("display:inline-block;width:18px;height:12px;background:rgba({r},{g},{b},0.25);vertical-align:middle"),
            Swatch::Dot => format!("display:inline-block;width:10px;height:10px;border-radius:5px;background:rgb({r},{g},{b});vertical-align:middle"),
        };
        let _ = write!(
            h,
            "<span style=\"margin-right:16px;white-space:nowrap\"><span style=\"{style}\"></span> {}</span>",
            escape(label)
        );
    }
    h.push_str("</div>");
    h
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
    let mut legend = Vec::new();
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
            let _ = chart.draw_series(main.iter().map(|&p| Circle::new(p, 6, c.filled())));
            legend.push((name.to_string(), c, Swatch::Dot));
        }
        let _ = root.present();
    }
    svg + &legend_html(&legend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_after_the_twelfth_are_charted_when_an_event_falls_in_them() {
        let start = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        let schedule = Schedule::parse(
            "timezone: UTC\nevents:\n  - name: launch\n    start: 2026-05-14 10:00\n    duration: 2h\n    min: 40\n",
        )
        .unwrap();
        let twelve: Vec<usize> = (0..12).collect();
        assert_eq!(weeks_shown(20, start, None), twelve);
        // 2026-05-14 is 133 days after 2026-01-01: the 20th week (index 19).
        let with_event: Vec<usize> = (0..12).chain([19]).collect();
        assert_eq!(weeks_shown(20, start, Some(&schedule)), with_event);
        assert_eq!(weeks_shown(5, start, Some(&schedule)), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn the_time_axis_reads_dates_and_clock_times() {
        let monday = 1_767_571_200_000; // 2026-01-05T00:00:00Z
        assert_eq!(tick(monday, 0.0), "Mon 05 Jan");
        assert_eq!(tick(monday, 1.5), "12:00");
        assert_eq!(tick(monday, 2.0), "Wed 07 Jan");
    }

    #[test]
    fn legends_sit_under_the_charts_not_over_the_lines() {
        let lines = vec![
            ("demand".to_string(), vec![(0.0, 1.0), (6.9, 2.0)]),
            (
                "hpa+schedule: ready capacity".to_string(),
                vec![(0.0, 1.0), (6.9, 3.0)],
            ),
        ];
        let chart = line_chart("Load", "load", &lines, true, &[], 0);
        let (svg, legend) = chart.split_at(chart.find("</svg>").unwrap());
        for (name, _) in &lines {
            assert!(!svg.contains(name.as_str()), "{name} drawn inside the plot");
            assert!(
                legend.contains(name.as_str()),
                "{name} missing from the legend"
            );
        }
        assert!(legend.contains("class=\"legend\""));
    }

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
