//! Window resolution, table-driven: across daylight-saving changes in two zones, overlapping
//! windows, a floor over a ceiling, events near a trace's edges, and the errors users get.

use chrono::{TimeZone, Utc};
use leadtime_schedule::{Bounds, Schedule, Scheduler};
use leadtime_wire::{Metric, ReadyTime, Replicas, Request};
use std::time::Duration;

const YAML: &str = r#"
timezone: Europe/Berlin
windows:
  - name: business-hours
    cron: "* 9-17 * * 1-5"
    min: 10
  - name: new-york-open
    cron: "* 9-15 * * 1-5"
    timezone: America/New_York
    min: 14
  - name: night
    cron: "* 0-5 * * *"
    max: 2
  - name: launch-week
    start: 2026-03-30 00:00
    end: 2026-04-06 00:00
    min: 20
    max: 30
events:
  - name: sale
    start: 2026-03-30 20:00
    duration: 2h
    factor: 3
  - name: match
    start: 2026-03-31 15:00
    duration: 2h
    min: 40
"#;

/// Unix ms of a UTC time.
fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .unwrap()
        .timestamp_millis()
}

fn floor(b: &Bounds) -> Option<u32> {
    b.min.as_ref().map(|a| a.replicas)
}

fn ceiling(b: &Bounds) -> Option<u32> {
    b.max.as_ref().map(|a| a.replicas)
}

#[test]
fn windows_follow_local_time_across_daylight_saving_changes_in_two_zones() {
    let s = Schedule::parse(YAML).unwrap();
    let lead = Duration::from_secs(300);
    // (case, UTC time, floor, ceiling). Berlin: CET (UTC+1) until 2026-03-29 02:00, CEST (UTC+2)
    // after. New York: EST (UTC-5) until 2026-03-08 02:00, EDT (UTC-4) after.
    let table = [
        (
            "Fri 09:30 CET, before Europe's change",
            utc(2026, 3, 27, 8, 30),
            Some(10),
            None,
        ),
        (
            "Fri 08:30 CET: not yet business hours",
            utc(2026, 3, 27, 7, 30),
            None,
            None,
        ),
        // 07:30 UTC is 08:30 before the change and 09:30 after: the window moved with the clock.
        (
            "Mon 09:30 CEST, after the change",
            utc(2026, 3, 30, 7, 30),
            Some(20),
            Some(30),
        ),
        (
            "Mon 18:30 CEST: business hours over",
            utc(2026, 3, 30, 16, 30),
            Some(20),
            Some(30),
        ),
        (
            "Fri 08:30 EST in New York: closed",
            utc(2026, 3, 6, 13, 30),
            Some(10),
            None,
        ),
        (
            "Mon 09:30 EDT in New York: open",
            utc(2026, 3, 9, 13, 30),
            Some(14),
            None,
        ),
        (
            "Sat 03:00 CET: the night's max",
            utc(2026, 3, 28, 2, 0),
            None,
            Some(2),
        ),
        // The night of Europe's change: 02:00-03:00 does not exist; 03:30 CEST is night.
        (
            "Sun 03:30 CEST, the changed night",
            utc(2026, 3, 29, 1, 30),
            None,
            Some(2),
        ),
        (
            "Sun 06:30 CEST: night over",
            utc(2026, 3, 29, 4, 30),
            None,
            None,
        ),
    ];
    for (case, at, want_floor, want_ceiling) in table {
        let b = s.bounds_at(at, lead, 5);
        assert_eq!(
            (floor(&b), ceiling(&b)),
            (want_floor, want_ceiling),
            "{case}: {b:?}"
        );
    }
}

#[test]
fn overlapping_windows_take_the_tightest_and_a_floor_over_a_ceiling_wins() {
    let s = Schedule::parse(YAML).unwrap();
    let lead = Duration::from_secs(300);
    // Mon 2026-03-30 15:30 CEST: business hours (min 10), New York open (09:30 EDT, min 14),
    // launch week (min 20, max 30): floor 20, ceiling 30.
    let b = s.bounds_at(utc(2026, 3, 30, 13, 30), lead, 5);
    assert_eq!((floor(&b), ceiling(&b)), (Some(20), Some(30)));
    assert_eq!(b.apply(3, 1, 100).0, 20);
    assert_eq!(b.apply(50, 1, 100).0, 30);
    let (n, why) = b.apply(50, 1, 100);
    assert_eq!(n, 30);
    assert!(why.unwrap().contains("window `launch-week`"));
    // Tue 02:00 CEST in launch week: the night's max 2 is under launch week's min 20.
    let b = s.bounds_at(utc(2026, 3, 31, 0, 0), lead, 5);
    assert_eq!((floor(&b), ceiling(&b)), (Some(20), Some(2)));
    let (n, why) = b.apply(1, 1, 100);
    assert_eq!(n, 20);
    let why = why.unwrap();
    assert!(
        why.contains("the floor wins") && why.contains("window `night`"),
        "{why}"
    );
    // The workload's own bounds are hard: a schedule never takes it past them.
    let (n, why) = b.apply(1, 1, 12);
    assert_eq!(n, 12);
    assert!(why.unwrap().contains("[1, 12]"));
}

#[test]
fn events_raise_the_floor_one_ready_time_ahead_and_end_on_time() {
    let s = Schedule::parse(YAML).unwrap();
    let lead = Duration::from_secs(600);
    // The sale starts 2026-03-30 20:00 CEST = 18:00 UTC, for 2 h, at 3x the usual 7 pods.
    let table = [
        ("11 min ahead: not yet", utc(2026, 3, 30, 17, 49), Some(20)),
        (
            "10 min ahead: one ready time",
            utc(2026, 3, 30, 17, 50),
            Some(21),
        ),
        ("during", utc(2026, 3, 30, 19, 59), Some(21)),
        ("at its end", utc(2026, 3, 30, 20, 0), Some(20)),
    ];
    for (case, at, want) in table {
        let b = s.bounds_at(at, lead, 7);
        assert_eq!(floor(&b), want, "{case}: {b:?}");
    }
    // An event already under way when a trace starts counts from the first decision; one past
    // its end is gone: the match (40 pods, 2026-03-31 15:00-17:00 CEST).
    let b = s.bounds_at(utc(2026, 3, 31, 13, 30), lead, 7);
    assert_eq!(floor(&b), Some(40));
    assert!(b.min.unwrap().source.contains("event `match`"));
    assert_eq!(
        floor(&s.bounds_at(utc(2026, 3, 31, 15, 0), lead, 7)),
        Some(20)
    );
    assert_eq!(s.upcoming(utc(2026, 3, 31, 15, 0)).count(), 0);
    assert_eq!(s.upcoming(utc(2026, 3, 30, 0, 0)).count(), 2);
}

#[test]
fn bad_schedules_say_what_and_where() {
    let table = [
        (
            "windows:\n  - name: a\n    cron: \"* 9-17 * *\"\n    min: 1\n",
            &["windows[0]: cron `* 9-17 * *` must have 5 fields", "line 2"][..],
        ),
        (
            "windows:\n  - name: a\n    cron: \"* 25 * * *\"\n    min: 1\n",
            &["windows[0]: cron `* 25 * * *`", "line 2"],
        ),
        ("timezone: Mars/Olympus\n", &["timezone `Mars/Olympus` is not an IANA time zone"]),
        (
            "windows:\n  - name: a\n    cron: \"* * * * *\"\n    timezone: Europe/Berln\n    min: 1\n",
            &["windows[0]: timezone `Europe/Berln` is not an IANA time zone", "line 2"],
        ),
        (
            "windows:\n  - name: a\n    cron: \"* * * * *\"\n    mni: 1\n",
            &["unknown field `mni`", "line 4"],
        ),
        (
            "windows:\n  - name: a\n    cron: \"* * * * *\"\n",
            &["windows[0] `a`: give a `min`, a `max` or both"],
        ),
        (
            "timezone: Europe/Berlin\nwindows:\n  - name: a\n    start: 2026-03-29 02:30\n    end: 2026-03-30 00:00\n    min: 1\n",
            &["does not exist in Europe/Berlin"],
        ),
        (
            "events:\n  - name: e\n    start: 2026-12-24 20:00\n    duration: 2h\n",
            &["give either `min` (pods) or `factor`"],
        ),
        (
            "events:\n  - name: e\n    start: tomorrow\n    duration: 2h\n    min: 3\n",
            &["events[0]: `tomorrow` is not a date-time", "line 2"],
        ),
    ];
    for (yaml, says) in table {
        let e = Schedule::parse(yaml).unwrap_err().to_string();
        for s in says {
            assert!(e.contains(s), "{yaml}\n-> {e}\n(missing {s})");
        }
    }
}

/// Events alone, in UTC: the sale 2026-03-30 18:00-20:00 at 3x, the match 2026-03-31
/// 13:00-15:00 at 40 pods.
const EVENTS: &str = r#"
events:
  - name: sale
    start: 2026-03-30 18:00
    duration: 2h
    factor: 3
  - name: match
    start: 2026-03-31T13:00:00Z
    duration: 2h
    min: 40
"#;

/// A request at `now` with `current` replicas in [1, 100], one recent ready time of
/// `ready_seconds`, and a metric window of `points` values at 60 s ending at `now`.
fn request(now: i64, current: u32, ready_seconds: f64, points: usize) -> Request {
    let mut r = Request::new(
        now,
        Replicas {
            current,
            ready: current,
            min: 1,
            max: 100,
        },
        vec![Metric {
            name: "load".into(),
            target_per_pod: 1.0,
            interval_seconds: 60.0,
            end: now,
            values: vec![1.0; points],
        }],
    );
    r.ready_times.push(ReadyTime {
        started_at: now - 3_600_000,
        ready_seconds,
    });
    r
}

#[test]
fn a_factor_event_multiplies_the_count_from_when_its_floor_went_up() {
    // The sale: 3x from 2026-03-30 18:00 UTC for 2 h. Ready time 10 min: raised from 17:50.
    let mut s = Scheduler::new(Schedule::parse(EVENTS).unwrap());
    let at = |h, m| utc(2026, 3, 30, h, m);
    // (case, time, current replicas, target after the policy, answer)
    let table = [
        ("before: the policy's target", at(17, 40), 5, 6, 6),
        ("raised: 3 x the 7 pods of then", at(17, 50), 7, 7, 21),
        ("under way: still 3 x 7, not 3 x 21", at(18, 30), 21, 30, 30),
        ("under way, policy lower", at(19, 0), 30, 12, 21),
        ("over: the policy's target", at(20, 0), 21, 9, 9),
    ];
    for (case, now, current, target, want) in table {
        let (got, why) = s.apply(&request(now, current, 600.0, 60), target);
        assert_eq!(got, want, "{case}: {why:?}");
        if got != target {
            assert!(why.unwrap().contains("event `sale`"), "{case}");
        }
    }
}

#[test]
fn the_lead_is_the_ready_time_estimate_hosts_and_the_predictive_policy_share() {
    let mut s = Scheduler::new(Schedule::parse(EVENTS).unwrap());
    // The match: 40 pods from 2026-03-31 13:00 UTC. With pods ready in 30 min it is raised
    // at 12:30; with no ready time seen, the default 300 s raises it at 12:55.
    let req = request(utc(2026, 3, 31, 12, 30), 5, 1800.0, 10);
    assert_eq!(s.apply(&req, 5).0, 40);
    let mut none = request(utc(2026, 3, 31, 12, 50), 5, 0.0, 10);
    none.ready_times.clear();
    assert_eq!(s.apply(&none, 5).0, 5, "not yet");
    none.now = utc(2026, 3, 31, 12, 55);
    assert_eq!(s.apply(&none, 5).0, 40);
}

#[test]
fn requests_carry_the_events_their_history_or_future_overlaps() {
    let s = Scheduler::new(Schedule::parse(EVENTS).unwrap());
    let names = |r: &Request| r.events.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
    // A day of history at 2026-03-31 12:00 UTC sees the sale (yesterday 18:00-20:00) and the
    // match to come; an hour of history sees the match only.
    let mut day = request(utc(2026, 3, 31, 12, 0), 5, 60.0, 1440);
    s.annotate(&mut day);
    assert_eq!(names(&day), ["sale", "match"]);
    let sale = &day.events[0];
    assert_eq!(
        (sale.start, sale.end),
        (utc(2026, 3, 30, 18, 0), utc(2026, 3, 30, 20, 0))
    );
    assert_eq!((sale.factor, sale.min_replicas), (Some(3.0), None));
    assert_eq!(day.events[1].min_replicas, Some(40));
    let mut hour = request(utc(2026, 3, 31, 12, 0), 5, 60.0, 60);
    s.annotate(&mut hour);
    assert_eq!(names(&hour), ["match"]);
    let mut after = request(utc(2026, 4, 2, 0, 0), 5, 60.0, 60);
    s.annotate(&mut after);
    assert!(after.events.is_empty());
}

#[test]
fn a_file_may_wrap_the_block_in_schedule_and_errors_keep_their_lines() {
    let wrapped = format!(
        "schedule:\n{}",
        YAML.lines().map(|l| format!("  {l}\n")).collect::<String>()
    );
    let s = Schedule::parse(&wrapped).unwrap();
    assert_eq!((s.windows.len(), s.events.len()), (4, 2));
    let e = Schedule::parse(
        "schedule:\n  windows:\n    - name: a\n      cron: \"* * * * *\"\n      mni: 1\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("unknown field `mni`") && e.contains("line 5"),
        "{e}"
    );
    let e = Schedule::parse("schedule: {}\nextra: 1\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `extra`"), "{e}");
}

#[test]
fn an_empty_schedule_a_repeated_name_and_a_bad_cron_field_are_said() {
    for (text, want) in [
        ("", "no `windows` and no `events`"),
        ("timezone: UTC\n", "no `windows` and no `events`"),
        (
            "windows:\n  - {name: day, cron: '* 9-17 * * *', min: 3}\n  - {name: day, cron: '* 1 * * *', max: 5}\n",
            "windows[1] `day`: the name of windows[0] too",
        ),
        (
            "events:\n  - {name: sale, start: 2026-12-24 20:00, duration: 2h, min: 9}\n  - {name: sale, start: 2026-12-25 20:00, duration: 2h, min: 9}\n",
            "events[1] `sale`: the name of events[0] too",
        ),
        (
            "windows:\n  - {name: a, cron: '* 25 * * *', min: 3}\n",
            "in its hour field `25`",
        ),
        (
            "windows:\n  - {name: a, cron: '* * * 13 *', min: 3}\n",
            "in its month field `13`",
        ),
    ] {
        let e = Schedule::parse(text).unwrap_err().to_string();
        assert!(e.contains(want), "{text:?}: {e}");
    }
}

#[test]
fn a_factor_events_reason_says_what_it_multiplied() {
    let s = Schedule::parse(
        "timezone: UTC\nevents:\n  - {name: sale, start: 2026-12-24 20:00, duration: 2h, factor: 3}\n",
    )
    .unwrap();
    let during = s.events[0].start + 60_000;
    let bounds = s.bounds_at(during, std::time::Duration::ZERO, 6);
    let min = bounds.min.expect("a floor during the event");
    assert_eq!(min.replicas, 18);
    assert!(
        min.source
            .contains("3 x the 6 pods running when it was raised"),
        "{}",
        min.source
    );
}
