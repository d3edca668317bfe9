//! `leadtime-schedule`: what operators know that no model learns from history, as replica bounds
//! over time. A schedule has **windows** (a cron pattern of the minutes it covers, in a named
//! IANA time zone, or a start and end date-time) with a `min` and/or `max`, and planned
//! **events** (at least N pods, or about F times the usual load, from a start for a duration)
//! whose floor is raised one ready time *before* they start.
//!
//! The same YAML block (`schedule:`) is read everywhere a schedule is accepted; unknown fields,
//! bad patterns, zones and times are errors with line and column.
//!
//! **How windows combine** (the rule is the tightest): of the windows active at a time, the
//! floor is the largest `min` and the ceiling the smallest `max`. A floor above the ceiling
//! wins: a `min` is a promise of capacity, a `max` one of cost, and short capacity is the
//! failure users see. Events only raise the floor. The result stays within the workload's own
//! `[min, max]`, which are hard limits.

use chrono::{DateTime, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;
use leadtime_wire::{PlannedEvent, Request};
use serde::Deserialize;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A schedule that does not parse; says what and where (line and column of the YAML).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("schedule: {0}")]
pub struct ScheduleError(pub String);

/// Replica bounds by time, and planned events.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    /// Windows, in the order given.
    pub windows: Vec<Window>,
    /// Planned events, in the order given.
    pub events: Vec<Event>,
}

/// A span of time with replica bounds.
#[derive(Debug, Clone)]
pub struct Window {
    /// Its name, for reasons.
    pub name: String,
    /// When it is active.
    pub when: When,
    /// Fewest replicas while active.
    pub min: Option<u32>,
    /// Most replicas while active.
    pub max: Option<u32>,
}

/// When a window is active.
#[derive(Debug, Clone)]
pub enum When {
    /// Every minute the pattern matches, in local time of the zone.
    Cron {
        /// The pattern, as written.
        text: String,
        /// The parsed pattern.
        cron: Box<Cron>,
        /// The zone its times are in.
        zone: Tz,
    },
    /// From `start` (inclusive) to `end` (exclusive), Unix ms.
    Between {
        /// Start, Unix ms.
        start: i64,
        /// End, Unix ms.
        end: i64,
    },
}

/// A planned event: a floor from one ready time before `start` until `end`.
#[derive(Debug, Clone)]
pub struct Event {
    /// Its name, for reasons.
    pub name: String,
    /// When the load arrives, Unix ms.
    pub start: i64,
    /// When it is over, Unix ms.
    pub end: i64,
    /// What it needs.
    pub need: Need,
}

/// What an event needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Need {
    /// At least this many pods.
    Pods(u32),
    /// About this many times the usual load: the floor is the usual replicas times this.
    Factor(f64),
}

/// The bound of one window or event that decided, for the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The replica count.
    pub replicas: u32,
    /// The window or event, described: ``window `business-hours` (* 9-17 * * 1-5 Asia/Shanghai)``.
    pub source: String,
}

/// The bounds a schedule sets at one time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bounds {
    /// The floor and where it came from.
    pub min: Option<Applied>,
    /// The ceiling and where it came from.
    pub max: Option<Applied>,
}

impl Bounds {
    /// The replica count `proposed` within these bounds and the workload's own `[min, max]`, and
    /// what changed it, in words (`None` when nothing did).
    pub fn apply(&self, proposed: u32, min: u32, max: u32) -> (u32, Option<String>) {
        let mut out = proposed;
        let mut why = None;
        if let Some(cap) = &self.max {
            if out > cap.replicas {
                out = cap.replicas;
                why = Some(format!("{}: max {}", cap.source, cap.replicas));
            }
        }
        if let Some(floor) = &self.min {
            if out < floor.replicas {
                out = floor.replicas;
                why = Some(match &self.max {
                    Some(cap) if cap.replicas < floor.replicas => format!(
                        "{}: min {} (over {}'s max {}: the floor wins)",
                        floor.source, floor.replicas, cap.source, cap.replicas
                    ),
                    _ => format!("{}: min {}", floor.source, floor.replicas),
                });
            }
        }
        let bounded = out.clamp(min, max.max(min));
        if bounded != out {
            why = Some(format!(
                "{}; held within the workload's [{min}, {max}]",
                why.unwrap_or_default()
            ));
        }
        (bounded, why)
    }
}

impl Schedule {
    /// Parses the YAML of a `schedule:` block: the block's fields, or a map whose one key is
    /// `schedule` (a file may be either).
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let error = |e: serde_norway::Error| ScheduleError(e.to_string());
        // Wrapped or not is decided on the top-level keys; the real parse below is of the text
        // itself, so errors keep their lines and columns.
        let wrapped = matches!(
            serde_norway::from_str::<serde_norway::Value>(text),
            Ok(serde_norway::Value::Mapping(m)) if m.contains_key("schedule")
        );
        let file = if wrapped {
            serde_norway::from_str::<Wrapped>(text)
                .map_err(error)?
                .schedule
        } else {
            serde_norway::from_str::<File>(text).map_err(error)?
        };
        file.build()
    }

    /// Reads a schedule file; errors name the file.
    pub fn from_file(path: &std::path::Path) -> Result<Schedule, ScheduleError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ScheduleError(format!("reading {}: {e}", path.display())))?;
        Schedule::parse(&text).map_err(|e| ScheduleError(format!("{}: {}", path.display(), e.0)))
    }

    /// Whether it has no window and no event.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty() && self.events.is_empty()
    }

    /// The bounds at `now_ms`, with events seen `lead` ahead (the ready time: pods asked for
    /// then are ready when the event starts). `usual` is the replica count a factor event
    /// multiplies: the workload's usual need, as its host knows it.
    pub fn bounds_at(&self, now_ms: i64, lead: Duration, usual: u32) -> Bounds {
        self.bounds_with(now_ms, lead, &|_| usual)
    }

    /// [`Schedule::bounds_at`] with each factor event's usual replica count, by event index.
    fn bounds_with(&self, now_ms: i64, lead: Duration, usual: &dyn Fn(usize) -> u32) -> Bounds {
        let mut bounds = Bounds::default();
        for w in self.windows.iter().filter(|w| w.active(now_ms)) {
            if let Some(m) = w.min {
                if bounds.min.as_ref().is_none_or(|a| m > a.replicas) {
                    bounds.min = Some(Applied {
                        replicas: m,
                        source: w.to_string(),
                    });
                }
            }
            if let Some(m) = w.max {
                if bounds.max.as_ref().is_none_or(|a| m < a.replicas) {
                    bounds.max = Some(Applied {
                        replicas: m,
                        source: w.to_string(),
                    });
                }
            }
        }
        let lead_ms = i64::try_from(lead.as_millis()).unwrap_or(i64::MAX);
        for (i, e) in self.events.iter().enumerate() {
            if !e.raised(now_ms, lead_ms) {
                continue;
            }
            let (floor, source) = match e.need {
                Need::Pods(n) => (n, e.to_string()),
                Need::Factor(f) => {
                    let pods = (f64::from(usual(i)) * f).ceil();
                    // Never NaN or past u32 (factors are checked finite and positive).
                    let pods = pods.clamp(0.0, f64::from(u32::MAX)) as u32;
                    // The count multiplied is what ran when the floor went up, a window's floor
                    // included: said, since it can be well above what the load needed then.
                    let why = format!(
                        "{e}: {f} x the {} pods running when it was raised",
                        usual(i)
                    );
                    (pods, why)
                }
            };
            if bounds.min.as_ref().is_none_or(|a| floor > a.replicas) {
                bounds.min = Some(Applied {
                    replicas: floor,
                    source,
                });
            }
        }
        bounds
    }

    /// The events that have not ended at `now_ms`, for a policy's request.
    pub fn upcoming(&self, now_ms: i64) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |e| e.end > now_ms)
    }
}

impl Event {
    /// Whether its floor is up at `now_ms`: from `lead_ms` before it starts until it ends.
    pub fn raised(&self, now_ms: i64, lead_ms: i64) -> bool {
        (self.start.saturating_sub(lead_ms)..self.end).contains(&now_ms)
    }

    /// The event as a request carries it.
    pub fn planned(&self) -> PlannedEvent {
        let (min_replicas, factor) = match self.need {
            Need::Pods(n) => (Some(n), None),
            Need::Factor(f) => (None, Some(f)),
        };
        PlannedEvent {
            name: self.name.clone(),
            start: self.start,
            end: self.end,
            min_replicas,
            factor,
        }
    }
}

/// A schedule as one workload's host applies it, call after call. It remembers the usual
/// replica count of each factor event: the workload's count when the event's floor went up,
/// before its load arrived (the load under way would otherwise multiply itself).
#[derive(Debug, Clone)]
pub struct Scheduler {
    schedule: Schedule,
    usual: Vec<Option<u32>>,
}

impl Scheduler {
    /// A scheduler with nothing remembered yet.
    pub fn new(schedule: Schedule) -> Scheduler {
        let usual = vec![None; schedule.events.len()];
        Scheduler { schedule, usual }
    }

    /// The schedule it applies.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// How far ahead events are raised for `request`: its ready-time estimate.
    pub fn lead(request: &Request) -> Duration {
        Duration::try_from_secs_f64(request.ready_estimate_seconds()).unwrap_or(Duration::MAX)
    }

    /// Adds to `request` the events a policy should know of: those not over before its oldest
    /// metric value, so that it can keep them out of what it learns as normal.
    pub fn annotate(&self, request: &mut Request) {
        let since = request
            .metrics
            .iter()
            .map(|m| {
                let span = m.values.len() as f64 * m.interval_seconds * 1000.0;
                // Saturating: a window's span comes from the caller.
                m.end
                    .saturating_sub(span.clamp(0.0, i64::MAX as f64) as i64)
            })
            .min()
            .unwrap_or(request.now);
        request.events = self
            .schedule
            .events
            .iter()
            .filter(|e| e.end > since)
            .map(Event::planned)
            .collect();
    }

    /// The bounds at `request`'s time, events raised one ready time ahead.
    pub fn bounds(&mut self, request: &Request) -> Bounds {
        let lead = Scheduler::lead(request);
        let lead_ms = i64::try_from(lead.as_millis()).unwrap_or(i64::MAX);
        for (e, usual) in self.schedule.events.iter().zip(&mut self.usual) {
            if e.raised(request.now, lead_ms) {
                usual.get_or_insert(request.replicas.current);
            } else {
                *usual = None;
            }
        }
        let current = request.replicas.current;
        let usual = &self.usual;
        self.schedule
            .bounds_with(request.now, lead, &|i| usual[i].unwrap_or(current))
    }

    /// `target` (after the policy and the behavior guardrails) within the schedule's bounds and
    /// the request's `[min, max]`, and what changed it, in words.
    pub fn apply(&mut self, request: &Request, target: u32) -> (u32, Option<String>) {
        self.bounds(request)
            .apply(target, request.replicas.min, request.replicas.max)
    }
}

impl Window {
    /// Whether the window is active at `now_ms`.
    pub fn active(&self, now_ms: i64) -> bool {
        match &self.when {
            When::Between { start, end } => (*start..*end).contains(&now_ms),
            When::Cron { cron, zone, .. } => {
                let Some(t) = DateTime::<Utc>::from_timestamp_millis(now_ms) else {
                    return false;
                };
                // The pattern names minutes: match the minute this instant is in.
                let local = t.with_timezone(zone);
                let minute = local
                    .with_second(0)
                    .and_then(|t| t.with_nanosecond(0))
                    .unwrap_or(local);
                cron.is_time_matching(&minute).unwrap_or(false)
            }
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.when {
            When::Cron { text, zone, .. } => write!(f, "window `{}` ({text} {zone})", self.name),
            When::Between { start, end } => write!(
                f,
                "window `{}` ({} to {})",
                self.name,
                utc(*start),
                utc(*end)
            ),
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let need = match self.need {
            Need::Pods(n) => format!("at least {n} pods"),
            Need::Factor(x) => format!("{x}x the usual load"),
        };
        write!(f, "event `{}` ({need} from {})", self.name, utc(self.start))
    }
}

fn utc(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// A `schedule:` block inside a larger YAML document (the scaler's config): errors keep the
/// document's lines and columns.
impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Schedule, D::Error> {
        File::deserialize(d)?
            .build()
            .map_err(|e| serde::de::Error::custom(e.0))
    }
}

/// A file whose one key is `schedule`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wrapped {
    schedule: File,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    timezone: Option<Zone>,
    #[serde(default)]
    windows: Vec<WindowFile>,
    #[serde(default)]
    events: Vec<EventFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowFile {
    name: String,
    cron: Option<Pattern>,
    start: Option<Local>,
    end: Option<Local>,
    timezone: Option<Zone>,
    min: Option<u32>,
    max: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventFile {
    name: String,
    start: Local,
    duration: Span,
    timezone: Option<Zone>,
    min: Option<u32>,
    factor: Option<f64>,
}

/// An IANA zone name, checked where it is read (so the error has its line and column).
#[derive(Clone, Copy)]
struct Zone(Tz);

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Zone, D::Error> {
        let name = String::deserialize(d)?;
        Tz::from_str(&name).map(Zone).map_err(|_| {
            serde::de::Error::custom(format!(
                "timezone `{name}` is not an IANA time zone (e.g. Europe/Berlin, Asia/Shanghai, UTC)"
            ))
        })
    }
}

/// A standard 5-field cron pattern, checked where it is read.
struct Pattern(String, Box<Cron>);

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Pattern, D::Error> {
        let text = String::deserialize(d)?;
        if text.split_whitespace().count() != 5 {
            return Err(serde::de::Error::custom(format!(
                "cron `{text}` must have 5 fields (minute hour day-of-month month day-of-week)"
            )));
        }
        let cron = Cron::from_str(&text).map_err(|e| {
            // croner says what is wrong ("Number out of bounds"), not where: each field is tried
            // alone to name it.
            const FIELDS: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];
            let fields: Vec<&str> = text.split_whitespace().collect();
            let culprit = (0..5).find(|&i| {
                let mut alone = ["*"; 5];
                alone[i] = fields[i];
                Cron::from_str(&alone.join(" ")).is_err()
            });
            let field = culprit
                .map(|i| format!(" in its {} field `{}`", FIELDS[i], fields[i]))
                .unwrap_or_default();
            serde::de::Error::custom(format!("cron `{text}`{field}: {e}"))
        })?;
        Ok(Pattern(text, Box::new(cron)))
    }
}

/// A local date-time (`2026-12-24 20:00`, seconds optional, or RFC 3339 with an offset).
enum Local {
    /// Wall-clock time in the window's or schedule's zone.
    Wall(NaiveDateTime, String),
    /// An instant (an offset was given).
    Instant(i64),
}

impl<'de> Deserialize<'de> for Local {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Local, D::Error> {
        let text = String::deserialize(d)?;
        if let Ok(t) = DateTime::parse_from_rfc3339(&text) {
            return Ok(Local::Instant(t.timestamp_millis()));
        }
        for format in [
            "%Y-%m-%d %H:%M",
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%dT%H:%M:%S",
        ] {
            if let Ok(t) = NaiveDateTime::parse_from_str(&text, format) {
                return Ok(Local::Wall(t, text));
            }
        }
        Err(serde::de::Error::custom(format!(
            "`{text}` is not a date-time: write `2026-12-24 20:00` (in the schedule's time zone) \
             or RFC 3339 with an offset"
        )))
    }
}

impl Local {
    /// Unix ms, wall times read in `zone`. A time a daylight-saving change skips is an error; one
    /// it repeats is its first occurrence.
    fn ms(&self, zone: Tz, field: &str) -> Result<i64, ScheduleError> {
        match self {
            Local::Instant(ms) => Ok(*ms),
            Local::Wall(t, text) => zone
                .from_local_datetime(t)
                .earliest()
                .map(|t| t.timestamp_millis())
                .ok_or_else(|| {
                    ScheduleError(format!(
                        "{field}: `{text}` does not exist in {zone} (a daylight-saving change skips it)"
                    ))
                }),
        }
    }
}

/// A duration such as `2h` or `90m`.
struct Span(Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map(Span)
            .map_err(|e| serde::de::Error::custom(format!("duration `{text}`: {e}")))
    }
}

impl File {
    fn build(self) -> Result<Schedule, ScheduleError> {
        if self.windows.is_empty() && self.events.is_empty() {
            return Err(ScheduleError(
                "no `windows` and no `events`: an empty schedule changes nothing (an empty file, \
                 or its entries under another key?)"
                    .into(),
            ));
        }
        // Reasons and the report name windows and events: two of one name could not be told
        // apart there.
        for (kind, names) in [
            (
                "windows",
                self.windows.iter().map(|w| &w.name).collect::<Vec<_>>(),
            ),
            (
                "events",
                self.events.iter().map(|e| &e.name).collect::<Vec<_>>(),
            ),
        ] {
            for (i, name) in names.iter().enumerate() {
                if let Some(first) = names[..i].iter().position(|n| n == name) {
                    return Err(ScheduleError(format!(
                        "{kind}[{i}] `{name}`: the name of {kind}[{first}] too; names tell them \
                         apart in reasons and reports"
                    )));
                }
            }
        }
        let default_zone = self.timezone.map_or(Tz::UTC, |z| z.0);
        let mut schedule = Schedule::default();
        for (i, w) in self.windows.into_iter().enumerate() {
            let at = format!("windows[{i}] `{}`", w.name);
            if w.min.is_none() && w.max.is_none() {
                return Err(ScheduleError(format!(
                    "{at}: give a `min`, a `max` or both"
                )));
            }
            let zone = w.timezone.map_or(default_zone, |z| z.0);
            let when = match (w.cron, w.start, w.end) {
                (Some(Pattern(text, cron)), None, None) => When::Cron { text, cron, zone },
                (None, Some(start), Some(end)) => {
                    let (start, end) = (
                        start.ms(zone, &format!("{at}.start"))?,
                        end.ms(zone, &format!("{at}.end"))?,
                    );
                    if end <= start {
                        return Err(ScheduleError(format!("{at}: `end` is not after `start`")));
                    }
                    When::Between { start, end }
                }
                _ => {
                    return Err(ScheduleError(format!(
                        "{at}: give either `cron` or both `start` and `end`"
                    )))
                }
            };
            schedule.windows.push(Window {
                name: w.name,
                when,
                min: w.min,
                max: w.max,
            });
        }
        for (i, e) in self.events.into_iter().enumerate() {
            let at = format!("events[{i}] `{}`", e.name);
            let zone = e.timezone.map_or(default_zone, |z| z.0);
            let start = e.start.ms(zone, &format!("{at}.start"))?;
            let length = i64::try_from(e.duration.0.as_millis())
                .ok()
                .filter(|&ms| ms > 0 && ms <= 366 * 86_400_000)
                .ok_or_else(|| {
                    ScheduleError(format!(
                        "{at}: `duration` must be over 0 and at most a year"
                    ))
                })?;
            let need = match (e.min, e.factor) {
                (Some(n), None) => Need::Pods(n),
                (None, Some(f)) if f.is_finite() && f > 0.0 && f <= 1000.0 => Need::Factor(f),
                (None, Some(f)) => {
                    return Err(ScheduleError(format!(
                        "{at}: `factor` must be a number over 0 and at most 1000, got {f}"
                    )))
                }
                _ => {
                    return Err(ScheduleError(format!(
                        "{at}: give either `min` (pods) or `factor` (times the usual load)"
                    )))
                }
            };
            schedule.events.push(Event {
                name: e.name,
                start,
                end: start + length,
                need,
            });
        }
        Ok(schedule)
    }
}
