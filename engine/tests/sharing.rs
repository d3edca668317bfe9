//! Handles that share a policy's instances (`Policy::fork`): each decides exactly as a policy
//! loaded for its workload alone, whatever the order of the calls, on one thread or several; a
//! thousand of them share an instance or two, not a thousand; at most `Modes::idle_instances`
//! stay idle; and a call that fails on one handle leaves the others' next decisions alone.

use leadtime::{
    Decision, Engine, ErrorKind, Metric, Modes, Param, Params, Policy, Replicas, Request, Source,
    Workload,
};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

const NOW: i64 = 1_700_006_400_000;
/// Seconds between points of a window and between decisions.
const STEP: i64 = 300;

/// Workload `w`'s load at `t` (Unix seconds): a daily cycle of its own level, swing and phase,
/// with a little deterministic noise.
fn load(w: usize, t: i64) -> f64 {
    let day = std::f64::consts::TAU * (t as f64 + 7_000.0 * w as f64) / 86_400.0;
    let noise = ((t / STEP) as f64 * (1.3 + w as f64)).sin() * 3.0;
    (60.0 + 45.0 * w as f64) * (1.0 + (0.3 + 0.15 * w as f64) * day.sin()) + noise
}

/// Workload `w`'s request at decision `step`: windows of different lengths (3 days and more,
/// enough for the predictive policy to find the daily cycle) ending at the decision.
fn request(w: usize, step: usize) -> Request {
    let now = NOW + step as i64 * STEP * 1000;
    let points = 864 + 100 * w as i64;
    let end_s = now / 1000;
    let values = (0..points)
        .map(|i| load(w, end_s - (points - 1 - i) * STEP))
        .collect();
    let replicas = Replicas {
        current: 5 + w as u32,
        ready: 5 + w as u32,
        min: 1,
        max: 1000,
    };
    let metric = Metric {
        name: "rps".into(),
        target_per_pod: 10.0,
        interval_seconds: STEP as f64,
        end: now,
        values,
    };
    let mut request = Request::new(now, replicas, vec![metric]);
    request.workload = Workload {
        namespace: "shop".into(),
        name: format!("w{w}"),
    };
    request
}

/// What a decision says, but the fuel it took: an instance that served another workload's call
/// before may spend a different amount on the same request (a buffer already grown, a cache of
/// the other window's length), for the same answer.
fn said(d: Decision) -> (u32, u32, String, String, Option<Vec<u8>>) {
    let forecast = format!("{:?}", d.forecast);
    (d.replicas, d.proposed, d.reason, forecast, d.state)
}

type Said = (u32, u32, String, String, Option<Vec<u8>>);

const WORKLOADS: usize = 4;
const STEPS: usize = 6;

/// Each workload's decisions, step by step, from policies loaded one per workload and called
/// workload after workload.
fn alone(engine: &Engine, name: &str) -> Vec<Vec<Said>> {
    (0..WORKLOADS)
        .map(|w| {
            let mut policy = engine.load(Source::builtin(name), Params::new()).unwrap();
            (0..STEPS)
                .map(|step| said(policy.decide(&request(w, step)).unwrap()))
                .collect()
        })
        .collect()
}

#[test]
fn forks_decide_as_policies_loaded_one_per_workload() {
    let engine = Engine::new(&Default::default()).unwrap();
    let names = leadtime::builtin_names();
    assert!(names.len() >= 5, "built-ins: {names:?}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut stateful = Vec::new();
    for name in names {
        let want = alone(&engine, name);
        let template = engine.load(Source::builtin(name), Params::new()).unwrap();
        let mut forks: Vec<Policy> = (0..WORKLOADS).map(|_| template.fork()).collect();
        assert_eq!(template.handles(), WORKLOADS + 1, "{name}");
        let mut got = vec![Vec::new(); WORKLOADS];
        for step in 0..STEPS {
            // The workloads' calls interleaved, in a new order at every step.
            let mut order: Vec<usize> = (0..WORKLOADS).collect();
            order.shuffle(&mut rng);
            for w in order {
                let decision = forks[w].decide(&request(w, step)).unwrap();
                got[w].push(said(decision));
            }
        }
        for w in 0..WORKLOADS {
            assert_eq!(got[w], want[w], "{name}, workload {w}");
        }
        // The comparison has teeth where the policy keeps state: the workloads' states differ,
        // so a handle that sent another's state would decide from the wrong model.
        let states: Vec<_> = got.iter().map(|g| g[STEPS - 1].4.clone()).collect();
        if states[0].is_some() {
            stateful.push(name);
            for (a, b) in [(0, 1), (1, 2), (2, 3)] {
                assert_ne!(states[a], states[b], "{name}: workloads {a} and {b}");
            }
        }
        drop(forks);
        assert_eq!(template.handles(), 1, "{name}");
    }
    assert!(stateful.contains(&"predictive"), "stateful: {stateful:?}");
}

#[test]
fn a_fork_starts_without_state_and_reset_forgets_only_its_own() {
    let engine = Engine::new(&Default::default()).unwrap();
    let want = alone(&engine, "predictive");
    let mut a = engine
        .load(Source::builtin("predictive"), Params::new())
        .unwrap();
    assert_eq!(said(a.decide(&request(0, 0)).unwrap()), want[0][0]);
    // Forked from a handle with state, the fork has none: it decides as a new policy would.
    let mut b = a.fork();
    assert_eq!(said(b.decide(&request(1, 0)).unwrap()), want[1][0]);
    assert_eq!(b.name(), a.name());
    assert_eq!(b.params(), a.params());
    // Forgetting b's state leaves a's: a goes on as if alone.
    b.reset_state();
    assert_eq!(said(a.decide(&request(0, 1)).unwrap()), want[0][1]);
    let mut fresh = engine
        .load(Source::builtin("predictive"), Params::new())
        .unwrap();
    let b_again = said(b.decide(&request(1, 1)).unwrap());
    assert_eq!(b_again, said(fresh.decide(&request(1, 1)).unwrap()));
}

#[test]
fn forks_on_threads_decide_as_on_one() {
    let engine = Engine::new(&Default::default()).unwrap();
    for name in ["predictive", "crane-dsp", "target-tracking"] {
        let want = alone(&engine, name);
        let template = engine.load(Source::builtin(name), Params::new()).unwrap();
        let got: Vec<Vec<Said>> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..WORKLOADS)
                .map(|w| {
                    let mut fork = template.fork();
                    s.spawn(move || {
                        (0..STEPS)
                            .map(|step| said(fork.decide(&request(w, step)).unwrap()))
                            .collect::<Vec<Said>>()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        for w in 0..WORKLOADS {
            assert_eq!(got[w], want[w], "{name}, workload {w}");
        }
        assert_eq!(template.handles(), 1, "the threads' forks are gone");
        assert!(template.memory_bytes().is_some(), "{name}: nothing idle");
    }
}

/// A policy that counts, in memory, the calls its instance has served, and answers the count;
/// its `leadtime_init` logs "init" and its `leadtime_decide` logs "call", so the host sees each
/// instance made and each call in progress.
const COUNTER: &str = r#"
(module
  (import "leadtime" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  ;; {"replicas": n}, n a uint16 at bytes 11 and 12.
  (data (i32.const 0) "\81\a8replicas\cd\00\00")
  (data (i32.const 16) "initcall")
  (func (export "leadtime_abi_version") (result i32) (i32.const 1))
  (func (export "leadtime_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "leadtime_init") (param i32 i32) (result i32)
    (call $log (i32.const 1) (i32.const 16) (i32.const 4))
    (i32.const 0))
  (func (export "leadtime_decide") (param i32 i32) (result i64)
    (local $n i32)
    (local.set $n (i32.add (i32.load (i32.const 64)) (i32.const 1)))
    (i32.store (i32.const 64) (local.get $n))
    (call $log (i32.const 1) (i32.const 20) (i32.const 4))
    (i32.store8 (i32.const 11) (i32.shr_u (local.get $n) (i32.const 8)))
    (i32.store8 (i32.const 12) (local.get $n))
    (i64.const 13)))
"#;

/// A small request the counter can take (its buffer is the rest of one page).
fn small(load: f64) -> Request {
    let replicas = Replicas {
        current: 3,
        ready: 3,
        min: 0,
        max: 60_000,
    };
    let metric = Metric {
        name: "rps".into(),
        target_per_pod: 10.0,
        interval_seconds: 60.0,
        end: NOW,
        values: vec![load; 10],
    };
    Request::new(NOW, replicas, vec![metric])
}

/// Where the policy's log lines go on the threads that install it: "init" lines are counted,
/// and on a "call" line the thread waits at `rendezvous`, if any, until as many calls are in
/// progress as it expects.
struct Watch {
    inits: Arc<AtomicUsize>,
    rendezvous: Option<Arc<Rendezvous>>,
}

impl tracing::Subscriber for Watch {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() != "policy" {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        match message.0.as_str() {
            "init" => {
                self.inits.fetch_add(1, Ordering::SeqCst);
            }
            "call" => {
                if let Some(r) = &self.rendezvous {
                    r.arrive();
                }
            }
            _ => {}
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

/// Holds each arriving thread until `expected` have arrived: calls held there are all in
/// progress at once. Gives up (panics, failing the call and the test) after a while rather
/// than hanging, when calls cannot all be in progress at once.
struct Rendezvous {
    arrived: Mutex<usize>,
    all_in: Condvar,
    expected: usize,
}

impl Rendezvous {
    fn new(expected: usize) -> Arc<Rendezvous> {
        Arc::new(Rendezvous {
            arrived: Mutex::new(0),
            all_in: Condvar::new(),
            expected,
        })
    }

    fn arrive(&self) {
        let mut arrived = self.arrived.lock().unwrap_or_else(PoisonError::into_inner);
        *arrived += 1;
        self.all_in.notify_all();
        let (arrived, timeout) = self
            .all_in
            .wait_timeout_while(arrived, Duration::from_secs(60), |n| *n < self.expected)
            .unwrap_or_else(PoisonError::into_inner);
        let arrived = *arrived;
        assert!(
            !timeout.timed_out(),
            "{arrived} of {} calls were in progress at once",
            self.expected
        );
    }
}

fn counter(engine: &Engine) -> Policy {
    engine
        .load(Source::bytes("counter", COUNTER.as_bytes()), Params::new())
        .unwrap()
}

#[test]
fn a_thousand_forks_calling_in_turn_share_one_instance() {
    let inits = Arc::new(AtomicUsize::new(0));
    let watch = Watch {
        inits: Arc::clone(&inits),
        rendezvous: None,
    };
    tracing::subscriber::with_default(watch, || {
        let engine = Engine::new(&Default::default()).unwrap();
        let template = counter(&engine);
        assert_eq!(inits.load(Ordering::SeqCst), 1, "the load's instance");
        let mut forks: Vec<Policy> = (0..1000).map(|_| template.fork()).collect();
        assert_eq!(template.handles(), 1001);
        let answers: Vec<u32> = forks
            .iter_mut()
            .map(|f| f.decide(&small(10.0)).unwrap().replicas)
            .collect();
        // One instance served every call, the one the load made: it counted them all.
        let want: Vec<u32> = (1..=1000).collect();
        assert_eq!(answers, want);
        assert_eq!(inits.load(Ordering::SeqCst), 1, "instances made");
        assert!(template.memory_bytes().is_some());
        drop(forks);
        assert_eq!(template.handles(), 1);
    });
}

#[test]
fn fresh_instances_per_call_serve_a_thousand_forks_from_a_small_pool() {
    let inits = Arc::new(AtomicUsize::new(0));
    let watch = Watch {
        inits: Arc::clone(&inits),
        rendezvous: None,
    };
    tracing::subscriber::with_default(watch, || {
        let engine = Engine::builder()
            .modes(Modes::new().fresh_instance_per_call(true).instance_pool(2))
            .build()
            .unwrap();
        let template = counter(&engine);
        assert_eq!(template.memory_bytes(), None, "a fresh policy keeps none");
        let mut forks: Vec<Policy> = (0..1000).map(|_| template.fork()).collect();
        for (i, fork) in forks.iter_mut().enumerate() {
            // Each call's instance is new (its count starts over) and its slot is free again
            // after: two slots serve every fork in turn.
            let answer = fork.decide(&small(10.0)).map(|d| d.replicas);
            assert_eq!(answer.ok(), Some(1), "fork {i}");
        }
        assert_eq!(
            inits.load(Ordering::SeqCst),
            1001,
            "the load's and one per call"
        );
        assert_eq!(template.memory_bytes(), None);
    });
}

/// `threads` forks of `template` call at once, each on its own thread; their answers, sorted.
fn all_at_once(template: &Policy, threads: usize, inits: &Arc<AtomicUsize>) -> Vec<u32> {
    let rendezvous = Rendezvous::new(threads);
    let mut answers: Vec<u32> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..threads)
            .map(|_| {
                let mut fork = template.fork();
                let watch = Watch {
                    inits: Arc::clone(inits),
                    rendezvous: Some(Arc::clone(&rendezvous)),
                };
                s.spawn(move || {
                    tracing::subscriber::with_default(watch, || {
                        fork.decide(&small(10.0)).unwrap().replicas
                    })
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    answers.sort();
    answers
}

#[test]
fn calls_at_once_use_instances_of_their_own_and_few_stay_idle() {
    let inits = Arc::new(AtomicUsize::new(0));
    let engine = Engine::builder()
        .modes(Modes::new().idle_instances(2))
        .build()
        .unwrap();
    assert_eq!(Modes::new().get_idle_instances(), 4, "the default");
    let template = tracing::subscriber::with_default(
        Watch {
            inits: Arc::clone(&inits),
            rendezvous: None,
        },
        || counter(&engine),
    );
    assert_eq!(inits.load(Ordering::SeqCst), 1);
    // Six calls in progress at once (which the rendezvous waits for: a lock held during a call
    // would keep the others out) take the load's instance and five new ones, each counting its
    // first call.
    assert_eq!(all_at_once(&template, 6, &inits), [1; 6]);
    assert_eq!(inits.load(Ordering::SeqCst), 6);
    // Two of the six stayed idle: six more calls at once find two instances at their second
    // call and make four.
    assert_eq!(all_at_once(&template, 6, &inits), [1, 1, 1, 1, 2, 2]);
    assert_eq!(inits.load(Ordering::SeqCst), 10);
    assert_eq!(template.handles(), 1);
}

#[test]
fn no_instance_is_kept_idle_with_idle_instances_zero() {
    let engine = Engine::builder()
        .modes(Modes::new().idle_instances(0))
        .build()
        .unwrap();
    let mut policy = counter(&engine);
    assert_eq!(policy.memory_bytes(), None);
    for _ in 0..3 {
        assert_eq!(policy.decide(&small(10.0)).unwrap().replicas, 1);
    }
    assert_eq!(policy.memory_bytes(), None);
}

/// A stateless policy that answers 7, unless the request is over 2,000 bytes: it then writes 99
/// over its answer in memory and traps, leaving that memory behind.
const POISON: &str = r#"
(module
  (memory (export "memory") 1)
  ;; {"replicas": 7}
  (data (i32.const 0) "\81\a8replicas\07")
  (global $len (mut i32) (i32.const 0))
  (func (export "leadtime_abi_version") (result i32) (i32.const 1))
  (func (export "leadtime_alloc") (param $len i32) (result i32)
    (global.set $len (local.get $len))
    (i32.const 1024))
  (func (export "leadtime_decide") (param i32 i32) (result i64)
    (if (i32.gt_u (global.get $len) (i32.const 2000))
      (then (i32.store8 (i32.const 10) (i32.const 99)) unreachable))
    (i64.const 11)))
"#;

#[test]
fn a_trap_on_one_fork_leaves_the_next_decision_of_another_alone() {
    let engine = Engine::new(&Default::default()).unwrap();
    let mut a = engine
        .load(Source::bytes("poison", POISON.as_bytes()), Params::new())
        .unwrap();
    let mut b = a.fork();
    let short = small(10.0);
    let mut long = small(10.0);
    long.metrics[0].values = vec![10.0; 400];
    assert_eq!(a.decide(&short).unwrap().replicas, 7);
    // b takes the instance a left idle, writes 99 over the answer there and traps.
    let err = b.decide(&long).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Trap, "{err}");
    assert!(b.last_fuel() > 0);
    // That instance is gone: a's next call runs on a new one, and so does b's.
    assert_eq!(a.decide(&short).unwrap().replicas, 7);
    assert_eq!(b.decide(&short).unwrap().replicas, 7);
    assert_eq!(a.decide(&short).unwrap().replicas, 7);
}

#[test]
fn a_policy_error_on_one_fork_leaves_every_state_as_it_was() {
    let engine = Engine::new(&Default::default()).unwrap();
    let want = alone(&engine, "predictive");
    let template = engine
        .load(Source::builtin("predictive"), Params::new())
        .unwrap();
    let mut a = template.fork();
    let mut b = template.fork();
    assert_eq!(said(a.decide(&request(0, 0)).unwrap()), want[0][0]);
    assert_eq!(said(b.decide(&request(1, 0)).unwrap()), want[1][0]);
    let mut bad = request(1, 1);
    bad.params
        .insert("no_such_param".into(), Param::Number(1.0));
    let err = b.decide(&bad).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PolicyError, "{err}");
    // a goes on as if alone, and b from the state of its last good call.
    let steps = want[0].iter().zip(&want[1]).enumerate().skip(1);
    for (step, (want_a, want_b)) in steps {
        let got_a = said(a.decide(&request(0, step)).unwrap());
        assert_eq!(&got_a, want_a, "a, step {step}");
        let got_b = said(b.decide(&request(1, step)).unwrap());
        assert_eq!(&got_b, want_b, "b, step {step}");
    }
}
