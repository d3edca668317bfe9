//! Workload traces: a CSV of time and total demand, checked and laid on a regular grid.
//!
//! Times may be `YYYY-MM-DD HH:MM:SS` (UTC), RFC 3339, or Unix seconds. The step is the most
//! common difference between consecutive times; every time must sit on that grid (to within a
//! tenth of a step). Times going backwards, two rows for one time, values that are not finite
//! non-negative numbers (at most [`MAX_TRACE_VALUE`]), and rows so far apart that the grid would
//! be mostly gap ([`MAX_STEPS_PER_ROW`]) are errors naming the line. Grid points with no row (gaps) are kept as
//! missing (NaN): requests carry them as missing values, and the demand holds the last known
//! value through them (see docs/backtest.md).

use chrono::{DateTime, NaiveDateTime};
use std::path::Path;

/// Most grid points a trace may have (8 bytes of memory each, and more per decision): a
/// handful of rows whose times lie years apart would otherwise size memory by the time span.
pub const MAX_TRACE_POINTS: u64 = 20_000_000;

/// Grid steps a trace may span per row it has, past [`SPARSE_TRACE_STEPS`]: the backtest makes a
/// decision at every step, gaps included, so four rows years apart would otherwise cost millions
/// of decisions (hours) for four numbers.
pub const MAX_STEPS_PER_ROW: u64 = 100;

/// Grid steps any trace may span, however few its rows (100,000 decisions take seconds).
pub const SPARSE_TRACE_STEPS: u64 = 100_000;

/// Largest value a trace may hold: the sum of [`MAX_TRACE_POINTS`] of them stays finite, so
/// totals and percentages of demand are numbers, not infinity or NaN.
pub const MAX_TRACE_VALUE: f64 = 1e300;

/// Why a trace could not be read: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    /// The file could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The system's message.
        message: String,
    },
    /// A problem at one line of the file (1-based).
    #[error("{source_name}:{line}: {message}")]
    Line {
        /// The file or trace name.
        source_name: String,
        /// The line, counting from 1.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A problem with the whole file (columns, too few rows).
    #[error("{source_name}: {message}")]
    File {
        /// The file or trace name.
        source_name: String,
        /// What is wrong.
        message: String,
    },
}

/// Which columns hold the time and the value; `None` detects them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns {
    /// The time column: a header name, or a 0-based index.
    pub time: Option<String>,
    /// The value column: a header name, or a 0-based index.
    pub value: Option<String>,
}

/// How `--resample` combines the rows that fall in one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// Their mean (a rate or a level, such as utilisation).
    Mean,
    /// Their largest value (sizing for the peak within the bucket).
    Max,
    /// Their sum (counts per interval, such as requests).
    Sum,
}

/// Buckets a trace onto a grid of its own instead of requiring its times on one: for exports
/// whose times drift off the grid or come at uneven intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resample {
    /// Bucket width, ms; buckets start at multiples of it since the Unix epoch.
    pub step_ms: i64,
    /// How the rows of one bucket combine.
    pub aggregate: Aggregate,
}

impl Resample {
    /// Parses `STEP[:mean|max|sum]` (e.g. `5m`, `5m:max`); the default is the mean.
    pub fn parse(text: &str) -> Result<Resample, String> {
        let (step, how) = text.split_once(':').unwrap_or((text, "mean"));
        let aggregate = match how {
            "mean" => Aggregate::Mean,
            "max" => Aggregate::Max,
            "sum" => Aggregate::Sum,
            other => {
                return Err(format!(
                    "`{other}` is not an aggregate: use mean, max or sum (e.g. 5m:max)"
                ))
            }
        };
        let seconds = crate::parse_seconds(step)?;
        let step_ms = (seconds * 1000.0).round();
        if !(1000.0..=7.0 * 86_400_000.0).contains(&step_ms) {
            return Err(format!("step `{step}` must be from 1s to 7d"));
        }
        Ok(Resample {
            step_ms: step_ms as i64,
            aggregate,
        })
    }
}

/// A workload's total demand on a regular time grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// A name for tables (the file name).
    pub name: String,
    /// Time of the first point, Unix milliseconds.
    pub start_ms: i64,
    /// Milliseconds between points.
    pub step_ms: i64,
    /// Demand at each grid point; NaN where the file has no row (a gap).
    pub values: Vec<f64>,
    /// Grid points that had no row.
    pub gaps: usize,
}

impl Trace {
    /// A trace from values at a fixed step, for tests and generated loads.
    pub fn from_values(name: &str, start_ms: i64, step_ms: i64, values: Vec<f64>) -> Trace {
        let gaps = values.iter().filter(|v| v.is_nan()).count();
        Trace {
            name: name.to_string(),
            start_ms,
            step_ms,
            values,
            gaps,
        }
    }

    /// Reads a CSV trace file.
    pub fn from_file(path: &Path, columns: &Columns) -> Result<Trace, TraceError> {
        Trace::from_file_resampled(path, columns, None)
    }

    /// Reads a CSV trace file, bucketed onto `resample`'s grid when given.
    pub fn from_file_resampled(
        path: &Path,
        columns: &Columns,
        resample: Option<Resample>,
    ) -> Result<Trace, TraceError> {
        let text = std::fs::read_to_string(path).map_err(|e| TraceError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let mut trace =
            Trace::parse_resampled(&text, &path.display().to_string(), columns, resample)?;
        trace.name = name;
        Ok(trace)
    }

    /// Reads a CSV trace from text; `source` names it in errors.
    pub fn parse(text: &str, source: &str, columns: &Columns) -> Result<Trace, TraceError> {
        Trace::parse_resampled(text, source, columns, None)
    }

    /// Reads a CSV trace from text, bucketed onto `resample`'s grid when given: each bucket
    /// holds the aggregate of its rows, and a bucket with no row is a gap.
    pub fn parse_resampled(
        text: &str,
        source: &str,
        columns: &Columns,
        resample: Option<Resample>,
    ) -> Result<Trace, TraceError> {
        let file_err = |message: String| TraceError::File {
            source_name: source.to_string(),
            message,
        };
        let line_err = |line: u64, message: String| TraceError::Line {
            source_name: source.to_string(),
            line,
            message,
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut rows: Vec<(u64, csv::StringRecord)> = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                line_err(line, format!("not valid CSV: {e}"))
            })?;
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            if record.iter().all(|f| f.is_empty()) {
                continue; // blank line
            }
            rows.push((line, record));
        }
        let Some((_, first)) = rows.first() else {
            return Err(file_err("has no rows".into()));
        };
        // A first row whose fields are not all times or numbers is a header.
        let has_header = !first
            .iter()
            .all(|f| parse_time(f).is_some() || f.parse::<f64>().is_ok());
        let header: Vec<String> = if has_header {
            first.iter().map(|s| s.to_string()).collect()
        } else {
            Vec::new()
        };
        let data = if has_header { &rows[1..] } else { &rows[..] };
        let Some((_, sample)) = data.first() else {
            return Err(file_err("has a header but no data rows".into()));
        };
        let width = sample.len();
        let pick = |spec: &str, what: &str| -> Result<usize, TraceError> {
            if let Some(i) = header.iter().position(|h| h == spec) {
                return Ok(i);
            }
            match spec.parse::<usize>() {
                Ok(i) if i < width => Ok(i),
                _ => Err(file_err(format!(
                    "no {what} column `{spec}` (columns: {})",
                    if header.is_empty() {
                        format!("0..{} by index, no header", width.saturating_sub(1))
                    } else {
                        header.join(", ")
                    }
                ))),
            }
        };
        let time_col = match &columns.time {
            Some(spec) => pick(spec, "time")?,
            None => detect_time(&header, sample).ok_or_else(|| {
                file_err("cannot tell which column is the time; use --time-column".into())
            })?,
        };
        let value_col = match &columns.value {
            Some(spec) => pick(spec, "value")?,
            None => detect_value(&header, sample, time_col).ok_or_else(|| {
                file_err("cannot tell which column is the value; use --value-column".into())
            })?,
        };
        let mut points: Vec<(u64, i64, f64)> = Vec::with_capacity(data.len());
        for (line, record) in data {
            let line = *line;
            let field = |i: usize, what: &str| {
                record.get(i).ok_or_else(|| {
                    line_err(
                        line,
                        format!("has {} fields, no {what} column {i}", record.len()),
                    )
                })
            };
            let t = field(time_col, "time")?;
            let t_ms = parse_time(t).ok_or_else(|| {
                line_err(
                    line,
                    format!("time `{t}` is not `YYYY-MM-DD HH:MM:SS`, RFC 3339 or Unix seconds"),
                )
            })?;
            let v = field(value_col, "value")?;
            let value: f64 = v
                .parse()
                .map_err(|_| line_err(line, format!("value `{v}` is not a number")))?;
            if !value.is_finite() || value < 0.0 {
                return Err(line_err(
                    line,
                    format!("value `{v}` must be a finite number, 0 or more"),
                ));
            }
            if value > MAX_TRACE_VALUE {
                return Err(line_err(
                    line,
                    format!(
                        "value `{v}` is over the largest a trace may hold, {MAX_TRACE_VALUE:e}"
                    ),
                ));
            }
            if let Some(&(prev_line, prev_t, _)) = points.last() {
                // Resampled, a repeated time is one more row of its bucket.
                if t_ms == prev_t && resample.is_none() {
                    return Err(line_err(
                        line,
                        format!("time `{t}` repeats the time of line {prev_line}; {RESAMPLE_HINT}"),
                    ));
                }
                if t_ms < prev_t {
                    return Err(line_err(
                        line,
                        format!(
                            "time `{t}` is before the time of line {prev_line}: rows must be sorted by time"
                        ),
                    ));
                }
            }
            points.push((line, t_ms, value));
        }
        if let Some(r) = resample {
            return bucket(source, &points, r);
        }
        if points.len() < 2 {
            return Err(file_err(format!(
                "needs at least 2 data rows to tell the step, has {}",
                points.len()
            )));
        }
        let step_ms = mode_step(&points);
        let start_ms = points[0].1;
        let last = points.last().expect("two points").1;
        // In i128: times parsed from huge numbers of seconds saturate at the ends of i64.
        let span = i128::from(last) - i128::from(start_ms);
        let slots = (span + i128::from(step_ms / 2)) / i128::from(step_ms) + 1;
        let slots = check_span(source, &points, slots, step_ms)?;
        let mut values = vec![f64::NAN; slots];
        let mut slot_line = vec![0u64; slots];
        for &(line, t, v) in &points {
            let offset = t - start_ms;
            let slot = (offset + step_ms / 2) / step_ms;
            let off_grid = (offset - slot * step_ms).abs();
            if off_grid * 10 > step_ms {
                return Err(line_err(
                    line,
                    format!(
                        "time is {}s off the trace's {}s grid (step taken as the most common \
                         difference between rows); {RESAMPLE_HINT}",
                        off_grid as f64 / 1000.0,
                        step_ms as f64 / 1000.0
                    ),
                ));
            }
            let slot = slot as usize;
            if slot_line[slot] != 0 {
                return Err(line_err(
                    line,
                    format!(
                        "falls on the same {}s step as line {}",
                        step_ms as f64 / 1000.0,
                        slot_line[slot]
                    ),
                ));
            }
            slot_line[slot] = line;
            values[slot] = v;
        }
        Ok(Trace::from_values(source, start_ms, step_ms, values))
    }

    /// Number of grid points.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the trace has no points.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Time just after the last point's step, Unix ms.
    pub fn end_ms(&self) -> i64 {
        self.start_ms + self.step_ms * self.values.len() as i64
    }

    /// Index of the last point at or before `t_ms`, if any.
    pub fn index_at(&self, t_ms: i64) -> Option<usize> {
        if t_ms < self.start_ms {
            return None;
        }
        let i = ((t_ms - self.start_ms) / self.step_ms) as usize;
        Some(i.min(self.values.len() - 1))
    }

    /// The demand in force at each grid point: gaps hold the last known value (0 before any).
    pub fn demand(&self) -> Vec<f64> {
        let mut last = 0.0;
        self.values
            .iter()
            .map(|&v| {
                if !v.is_nan() {
                    last = v;
                }
                last
            })
            .collect()
    }

    /// The largest value.
    pub fn peak(&self) -> f64 {
        self.values
            .iter()
            .copied()
            .filter(|v| !v.is_nan())
            .fold(0.0, f64::max)
    }
}

/// The grid steps `points` (sorted by time, at least one) span, `slots`, as a length; refused
/// past [`MAX_TRACE_POINTS`], or past [`MAX_STEPS_PER_ROW`] per row (and
/// [`SPARSE_TRACE_STEPS`]), naming the line after the widest gap.
fn check_span(
    source: &str,
    points: &[(u64, i64, f64)],
    slots: i128,
    step_ms: i64,
) -> Result<usize, TraceError> {
    let rows = points.len() as i128;
    let sparse_cap = (rows * i128::from(MAX_STEPS_PER_ROW)).max(i128::from(SPARSE_TRACE_STEPS));
    let step = step_ms as f64 / 1000.0;
    if slots > i128::from(MAX_TRACE_POINTS) || slots > sparse_cap {
        let widest = points
            .windows(2)
            .max_by_key(|w| i128::from(w[1].1) - i128::from(w[0].1));
        let why = if slots > i128::from(MAX_TRACE_POINTS) {
            format!("over the {MAX_TRACE_POINTS} points a trace may have")
        } else {
            format!(
                "over the {MAX_STEPS_PER_ROW} per row a trace may span (at least \
                 {SPARSE_TRACE_STEPS}): every step of a gap is a decision"
            )
        };
        let message = format!("its {rows} rows span {slots} steps of {step}s, {why}");
        return Err(match widest {
            Some(w) => TraceError::Line {
                source_name: source.to_string(),
                line: w[1].0,
                message: format!(
                    "{message}; this row is {}s after line {}",
                    (i128::from(w[1].1) - i128::from(w[0].1)) as f64 / 1000.0,
                    w[0].0
                ),
            },
            None => TraceError::File {
                source_name: source.to_string(),
                message,
            },
        });
    }
    Ok(slots as usize)
}

/// The rows of `points` (sorted by time) in buckets of `r.step_ms`.
fn bucket(source: &str, points: &[(u64, i64, f64)], r: Resample) -> Result<Trace, TraceError> {
    let step = r.step_ms;
    let start = points[0].1.div_euclid(step) * step;
    let last = points[points.len() - 1].1;
    let slots = check_span(
        source,
        points,
        (i128::from(last) - i128::from(start)) / i128::from(step) + 1,
        step,
    )?;
    let mut sum = vec![0.0f64; slots];
    let mut max = vec![f64::NEG_INFINITY; slots];
    let mut count = vec![0u32; slots];
    for &(_, t, v) in points {
        let i = ((t - start) / step) as usize;
        sum[i] += v;
        max[i] = max[i].max(v);
        count[i] += 1;
    }
    let values = (0..slots)
        .map(|i| match (count[i], r.aggregate) {
            (0, _) => f64::NAN,
            (n, Aggregate::Mean) => sum[i] / f64::from(n),
            (_, Aggregate::Max) => max[i],
            (_, Aggregate::Sum) => sum[i],
        })
        .collect();
    Ok(Trace::from_values(source, start, step, values))
}

/// Parses a time: Unix seconds, `YYYY-MM-DD HH:MM:SS` (UTC) or RFC 3339; Unix milliseconds.
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        // Within ±10^13 s (300,000 years) of 1970, so that differences of times never overflow.
        return (secs.abs() <= 1e13).then(|| (secs * 1000.0).round() as i64);
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f") {
        return Some(t.and_utc().timestamp_millis());
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// What to do about a trace off its grid, in the words of both front ends.
const RESAMPLE_HINT: &str =
    "resampling buckets such a trace (--resample STEP in the CLI, resample=\"STEP\" in Python)";

const TIME_NAMES: &[&str] = &["timestamp", "time", "ts", "date", "datetime", "t"];

fn detect_time(header: &[String], sample: &csv::StringRecord) -> Option<usize> {
    if let Some(i) = header
        .iter()
        .position(|h| TIME_NAMES.contains(&h.to_ascii_lowercase().as_str()))
    {
        return Some(i);
    }
    // A date text first; else the first column (Unix seconds look like any number).
    sample
        .iter()
        .position(|f| f.parse::<f64>().is_err() && parse_time(f).is_some())
        .or_else(|| (sample.len() >= 2 && parse_time(&sample[0]).is_some()).then_some(0))
}

fn detect_value(header: &[String], sample: &csv::StringRecord, time: usize) -> Option<usize> {
    if let Some(i) = header
        .iter()
        .position(|h| h.eq_ignore_ascii_case("value"))
        .filter(|&i| i != time)
    {
        return Some(i);
    }
    (0..sample.len()).find(|&i| i != time && sample[i].parse::<f64>().is_ok())
}

/// The most common positive difference between consecutive times (smallest on a tie).
fn mode_step(points: &[(u64, i64, f64)]) -> i64 {
    let mut diffs: Vec<i64> = points.windows(2).map(|w| w[1].1 - w[0].1).collect();
    diffs.sort_unstable();
    let (mut best, mut best_n) = (diffs[0], 0);
    let mut i = 0;
    while i < diffs.len() {
        let j = diffs[i..].iter().take_while(|&&d| d == diffs[i]).count();
        if j > best_n {
            (best, best_n) = (diffs[i], j);
        }
        i += j;
    }
    best
}

// Traces from arrays: the Python package's (python/, issue #19) way in, for pandas Series and
// NumPy arrays. The rules are a CSV file's (sorted, on one grid, finite values of 0 or more);
// errors name the point by its 1-based position where a file's name the line.

impl Trace {
    /// A trace from points at `times_ms` (Unix ms, sorted) with `values`, checked and laid on
    /// their grid as a CSV file's rows are, or bucketed onto `resample`'s grid when given.
    pub fn from_points(
        name: &str,
        times_ms: &[i64],
        values: &[f64],
        resample: Option<Resample>,
    ) -> Result<Trace, TraceError> {
        let point_err = |i: usize, message: String| TraceError::Line {
            source_name: name.to_string(),
            line: i as u64 + 1,
            message,
        };
        if times_ms.len() != values.len() {
            return Err(TraceError::File {
                source_name: name.to_string(),
                message: format!("{} times but {} values", times_ms.len(), values.len()),
            });
        }
        let mut points: Vec<(u64, i64, f64)> = Vec::with_capacity(values.len());
        for (i, (&t, &v)) in times_ms.iter().zip(values).enumerate() {
            if !(v.is_finite() && (0.0..=MAX_TRACE_VALUE).contains(&v)) {
                return Err(point_err(
                    i,
                    format!("value {v} must be a finite number from 0 to {MAX_TRACE_VALUE:e}"),
                ));
            }
            // Within ±10^13 s of 1970, as parsed times are, so differences never overflow.
            if t.unsigned_abs() > 10_000_000_000_000_000 {
                return Err(point_err(i, format!("time {t} ms is out of range")));
            }
            if let Some(&(_, prev, _)) = points.last() {
                if t < prev || (t == prev && resample.is_none()) {
                    return Err(point_err(
                        i,
                        format!(
                            "time {t} ms is {} the previous point's: points must be sorted by \
                             time, one per time (resampling buckets repeated times)",
                            if t < prev { "before" } else { "equal to" }
                        ),
                    ));
                }
            }
            points.push((i as u64 + 1, t, v));
        }
        if let Some(r) = resample {
            if points.is_empty() {
                return Err(TraceError::File {
                    source_name: name.to_string(),
                    message: "has no points".into(),
                });
            }
            return bucket(name, &points, r);
        }
        if points.len() < 2 {
            return Err(TraceError::File {
                source_name: name.to_string(),
                message: format!(
                    "needs at least 2 points to tell the step, has {}",
                    points.len()
                ),
            });
        }
        let step_ms = mode_step(&points);
        let start_ms = points[0].1;
        let span = i128::from(points[points.len() - 1].1) - i128::from(start_ms);
        let slots = (span + i128::from(step_ms / 2)) / i128::from(step_ms) + 1;
        let slots = check_span(name, &points, slots, step_ms)?;
        let mut grid = vec![f64::NAN; slots];
        let mut taken = vec![false; slots];
        for &(index, t, v) in &points {
            let offset = t - start_ms;
            let slot = (offset + step_ms / 2) / step_ms;
            let off_grid = (offset - slot * step_ms).abs();
            let i = index as usize - 1;
            if off_grid * 10 > step_ms {
                return Err(point_err(
                    i,
                    format!(
                        "time is {}s off the trace's {}s grid (the most common difference \
                         between points); {RESAMPLE_HINT}",
                        off_grid as f64 / 1000.0,
                        step_ms as f64 / 1000.0
                    ),
                ));
            }
            let slot = slot as usize;
            if std::mem::replace(&mut taken[slot], true) {
                return Err(point_err(
                    i,
                    format!(
                        "falls on the same {}s step as the point before",
                        step_ms as f64 / 1000.0
                    ),
                ));
            }
            grid[slot] = v;
        }
        Ok(Trace::from_values(name, start_ms, step_ms, grid))
    }
}

#[cfg(test)]
mod from_points_tests {
    use super::{Aggregate, Columns, Resample, Trace};

    #[test]
    fn points_make_the_trace_their_csv_makes() {
        let csv = "time,value\n600,1\n660,2\n780,4.5\n840,0\n";
        let from_csv = Trace::parse(csv, "t", &Columns::default()).unwrap();
        let times = [600_000, 660_000, 780_000, 840_000];
        let points = Trace::from_points("t", &times, &[1.0, 2.0, 4.5, 0.0], None).unwrap();
        assert_eq!((points.start_ms, points.step_ms), (600_000, 60_000));
        assert_eq!(points.gaps, 1);
        assert_eq!(
            format!("{:?}", points.values),
            format!("{:?}", from_csv.values)
        );
        let r = Resample {
            step_ms: 120_000,
            aggregate: Aggregate::Sum,
        };
        let bucketed = Trace::from_points("t", &times, &[1.0, 2.0, 4.5, 0.0], Some(r)).unwrap();
        assert_eq!(bucketed.values, [3.0, 4.5, 0.0]); // 600+660, 780, 840
    }

    #[test]
    fn points_are_checked_as_rows_are() {
        let bad: [(&[i64], &[f64], &str); 6] = [
            (&[0, 60_000], &[1.0], "2 times but 1 values"),
            (&[0, 60_000], &[1.0, -1.0], "t:2: value -1"),
            (&[0, 60_000], &[1.0, f64::NAN], "t:2: value NaN"),
            (&[60_000, 0], &[1.0, 1.0], "t:2: time 0 ms is before"),
            (&[0, 0], &[1.0, 1.0], "equal to"),
            (
                &[0, 60_000, 120_000, 150_000, 240_000],
                &[1.0; 5],
                "t:4: time is 30s off",
            ),
        ];
        for (times, values, want) in bad {
            let e = Trace::from_points("t", times, values, None).unwrap_err();
            assert!(e.to_string().contains(want), "{want}: {e}");
        }
        assert!(Trace::from_points("t", &[0], &[1.0], None).is_err());
    }
}
