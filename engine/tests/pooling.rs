//! Fresh instances from the instance pool (`Modes::instance_pool`): the same decisions and the
//! same errors as reused and on-demand instances, no memory carried from one call to the next,
//! and a full pool as a typed error.

use leadtime::Source;
use leadtime::{Engine, ErrorKind, Limits, Metric, Modes, Params, Replicas, Request};
use std::path::PathBuf;
use std::sync::mpsc;

const NOW: i64 = 1_700_000_000_000;

fn request(values: &[f64]) -> Request {
    let replicas = Replicas {
        current: 3,
        ready: 3,
        min: 1,
        max: 500,
    };
    let metric = Metric {
        name: "rps".into(),
        target_per_pod: 10.0,
        interval_seconds: 60.0,
        end: NOW,
        values: values.to_vec(),
    };
    Request::new(NOW, replicas, vec![metric])
}

/// Engines that must all behave alike, by name: reused instances, fresh ones on demand, fresh
/// ones from the pool with bounds checks in code (the default), and with guard pages.
fn engines() -> Vec<(&'static str, Engine)> {
    let mut fresh = Modes::new();
    fresh.fresh_instance_per_call(true);
    [
        ("reused", Modes::default()),
        ("fresh on demand", fresh.clone().instance_pool(0).clone()),
        ("fresh pooled", fresh.clone()),
        (
            "fresh pooled, guard pages",
            fresh.clone().pool_bounds_checks(false).clone(),
        ),
    ]
    .into_iter()
    .map(|(name, modes)| (name, Engine::builder().modes(&modes).build().unwrap()))
    .collect()
}

#[test]
fn fresh_pooled_instances_decide_as_reused_ones() {
    let loads: Vec<Vec<f64>> = vec![
        vec![15.0],
        (0..240).map(|i| 100.0 + (i % 17) as f64).collect(),
        vec![42.0, 230.0],
    ];
    for name in ["target-tracking", "hpa"] {
        let mut runs = Vec::new();
        for (engine_name, engine) in engines() {
            let mut policy = engine.load(Source::parse(name), Params::new()).unwrap();
            let decisions: Vec<_> = loads
                .iter()
                .map(|l| {
                    let d = policy.decide(&request(l)).unwrap();
                    (d.replicas, d.reason, d.state)
                })
                .collect();
            runs.push((engine_name, decisions));
        }
        let (_, want) = &runs[0];
        for (engine_name, got) in &runs[1..] {
            assert_eq!(got, want, "{name} on {engine_name}");
        }
    }
}

fn corpus() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/adversarial");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wat"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 25,
        "{} has {} modules",
        dir.display(),
        files.len()
    );
    files
}

#[test]
fn every_hostile_module_fails_the_same_way_from_the_pool() {
    // The pool refuses some modules when it builds them (more memories or tables than a slot
    // has, an initial size over a cap), where on demand the instantiation refuses them: the
    // error must not tell the two apart.
    let req = request(&[10.0, 20.0, 30.0]);
    let outcome = |engine: &Engine, path: &PathBuf| match engine
        .load(Source::file(path), Params::new())
        .and_then(|mut p| p.decide(&req))
    {
        Ok(d) => format!("ok {}", d.replicas),
        Err(e) => e.kind().to_string(),
    };
    let engines = engines();
    let mut differences = Vec::new();
    for path in corpus() {
        let want = outcome(&engines[0].1, &path);
        for (name, engine) in &engines[1..] {
            let got = outcome(engine, &path);
            if got != want {
                differences.push(format!("{}: {want} reused, {got} {name}", path.display()));
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// A policy that counts its calls in memory and grows memory by a page per call, answering
/// `10 * calls + pages`; a payload over 2,000 bytes traps after both, leaving memory dirty.
const COUNTER: &str = r#"
(module
  (memory (export "memory") 1)
  ;; {"replicas": n}, with n at byte 10.
  (data (i32.const 0) "\81\a8replicas\00")
  (global $len (mut i32) (i32.const 0))
  (func (export "leadtime_abi_version") (result i32) (i32.const 1))
  (func (export "leadtime_alloc") (param $len i32) (result i32)
    (global.set $len (local.get $len))
    (i32.const 1024))
  (func (export "leadtime_decide") (param $ptr i32) (param $n i32) (result i64)
    (i32.store (i32.const 64) (i32.add (i32.load (i32.const 64)) (i32.const 1)))
    (drop (memory.grow (i32.const 1)))
    (if (i32.gt_u (global.get $len) (i32.const 2000)) (then unreachable))
    (i32.store8 (i32.const 10)
      (i32.add (i32.mul (i32.load (i32.const 64)) (i32.const 10)) (memory.size)))
    (i64.const 11)))
"#;

#[test]
fn a_fresh_instance_starts_from_clean_memory_even_after_a_trap() {
    let short = request(&[1.0]);
    let long = request(&[1.0; 1000]);
    for (name, engine) in engines() {
        let mut policy = engine
            .load(Source::bytes("counter", COUNTER.as_bytes()), Params::new())
            .unwrap();
        let mut outcomes = Vec::new();
        for req in [&short, &short, &long, &short, &short] {
            outcomes.push(match policy.decide(req) {
                Ok(d) => d.replicas.to_string(),
                Err(e) => e.kind().to_string(),
            });
        }
        // One call, one page grown: 1 call and 2 pages is 12. A reused instance counts on
        // (23) until the trap; the instance after it starts over.
        let want = if name == "reused" {
            ["12", "23", "trap", "12", "23"]
        } else {
            ["12", "12", "trap", "12", "12"]
        };
        assert_eq!(outcomes, want, "{name}");
    }
}

#[test]
fn a_module_over_the_caps_of_the_pool_is_out_of_memory() {
    // Caps smaller than the defaults, so the pool's slots are sized from these limits.
    let engine = Engine::builder()
        .limits(Limits::new().memory_bytes(4 << 16).table_elements(10))
        .modes(Modes::new().fresh_instance_per_call(true))
        .build()
        .unwrap();
    let module = |decls: &str| {
        format!(
            r#"(module {decls}
              (memory (export "memory") 1)
              (func (export "leadtime_abi_version") (result i32) (i32.const 1))
              (func (export "leadtime_alloc") (param i32) (result i32) (i32.const 0))
              (func (export "leadtime_decide") (param i32 i32) (result i64) (i64.const 0)))"#
        )
    };
    let ok = module("");
    assert!(engine
        .load(Source::bytes("ok", ok.as_bytes()), Params::new())
        .is_ok());
    for (decls, what, desired) in [
        ("(table 11 funcref)", "table", 11),
        ("(table 1 funcref) (memory 5)", "memory count", 2),
    ] {
        let err = engine
            .load(Source::bytes(what, module(decls).as_bytes()), Params::new())
            .err()
            .unwrap_or_else(|| panic!("{decls} loaded"));
        assert_eq!(err.kind(), ErrorKind::OutOfMemory, "{decls}: {err}");
        assert!(
            err.to_string()
                .contains(&format!("{what} would grow to {desired} ")),
            "{decls}: {err}"
        );
    }
    let big = module("").replace(
        "(memory (export \"memory\") 1)",
        "(memory (export \"memory\") 5)",
    );
    let err = engine
        .load(Source::bytes("big", big.as_bytes()), Params::new())
        .err()
        .expect("a memory of 5 pages over a cap of 4 loaded");
    assert_eq!(err.kind(), ErrorKind::OutOfMemory, "{err}");
    assert!(
        err.to_string()
            .contains(&format!("memory would grow to {}", 5 << 16)),
        "{err}"
    );
}

/// Holds the thread that logs in a call until told to go on: the call keeps its instance's
/// slot meanwhile.
struct HoldOnLog {
    entered: mpsc::SyncSender<()>,
    release: std::sync::Mutex<mpsc::Receiver<()>>,
}

impl tracing::Subscriber for HoldOnLog {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() == "policy" {
            self.entered.send(()).unwrap();
            self.release.lock().unwrap().recv().unwrap();
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// A policy whose `decide` logs a line, then answers nothing valid: the test needs only the
/// call to be in progress.
const LOGS: &str = r#"
(module
  (import "leadtime" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "busy")
  (func (export "leadtime_abi_version") (result i32) (i32.const 1))
  (func (export "leadtime_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "leadtime_decide") (param i32 i32) (result i64)
    (call $log (i32.const 1) (i32.const 0) (i32.const 4))
    (i64.const 0)))
"#;

#[test]
fn a_full_pool_is_a_typed_error_and_frees_its_slot_after_the_call() {
    let engine = Engine::builder()
        .modes(Modes::new().fresh_instance_per_call(true).instance_pool(1))
        .build()
        .unwrap();
    let mut busy = engine
        .load(Source::bytes("logs", LOGS.as_bytes()), Params::new())
        .unwrap();
    let (entered_tx, entered) = mpsc::sync_channel(0);
    let (release, release_rx) = mpsc::sync_channel(0);
    let hold = HoldOnLog {
        entered: entered_tx,
        release: std::sync::Mutex::new(release_rx),
    };
    std::thread::scope(|s| {
        let call = s.spawn(move || {
            tracing::subscriber::with_default(hold, || busy.decide(&request(&[1.0])))
        });
        entered.recv().unwrap();
        // The only slot is in the call above: a load needs one to run its checks.
        let err = engine
            .load(Source::builtin("target-tracking"), Params::new())
            .err()
            .expect("a load with the pool full succeeded");
        assert_eq!(err.kind(), ErrorKind::Runtime, "{err}");
        assert!(err.to_string().contains("instance_pool"), "{err}");
        release.send(()).unwrap();
        // The held call answered `{}` through `(0, 0)`: not a decision, but it ran.
        let held = call.join().unwrap();
        assert_eq!(held.unwrap_err().kind(), ErrorKind::BadResponse);
    });
    // The slot came back with the call's end.
    let mut policy = engine
        .load(Source::builtin("target-tracking"), Params::new())
        .unwrap();
    assert_eq!(policy.decide(&request(&[95.0])).unwrap().replicas, 10);
}
