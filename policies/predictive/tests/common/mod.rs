//! Helpers shared by the predictive policy's tests: seeded noise and requests.
#![allow(dead_code)]

use leadtime_guest::{Metric, Replicas, Request, Workload};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Seeded noise from the project's one generator (ChaCha8), so every case is reproducible.
pub struct Noise(ChaCha8Rng);

impl Noise {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Noise {
        Noise(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0.random()
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        self.0.sample(StandardNormal)
    }
}

/// Minutes in a day.
pub const DAY: usize = 1440;
/// A fixed "now" for requests, Unix ms (midnight UTC so that phases are easy to read).
pub const T0: i64 = 1_700_006_400_000;

/// `days` of a daily sine at 1-minute steps: mean 100, amplitude 50, noise sd `sd`.
pub fn daily_sine(days: usize, sd: f64, seed: u64) -> Vec<f64> {
    let mut noise = Noise::new(seed);
    (0..days * DAY)
        .map(|i| {
            100.0
                + 50.0 * (std::f64::consts::TAU * i as f64 / DAY as f64).sin()
                + sd * noise.normal()
        })
        .collect()
}

/// A request with one 1-minute metric whose last value is at `now`.
pub fn request(values: &[f64], target: f64, current: u32, now: i64) -> Request {
    Request {
        abi_version: 1,
        now,
        workload: Workload::default(),
        replicas: Replicas {
            current,
            ready: current,
            min: 1,
            max: 1000,
        },
        metrics: vec![Metric {
            name: "rps".into(),
            target_per_pod: target,
            interval_seconds: 60.0,
            end: now,
            values: values.to_vec(),
        }],
        ready_times: vec![],
        events: vec![],
        params: Default::default(),
        state: None,
    }
}

/// Where Crane's 16 labelled production series are (`input0.csv` .. `input15.csv` of
/// gocrane/crane `pkg/prediction/dsp/test_data`, Apache-2.0): the directory `LEADTIME_PERIODS`
/// names, else `shared/periods` beside the repository. They are not shipped with leadtime; a
/// test that needs them says it skipped when neither holds them.
pub fn crane_series() -> Option<std::path::PathBuf> {
    let dir = match std::env::var_os("LEADTIME_PERIODS") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/periods"),
    };
    if dir.join("input15.csv").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: Crane's labelled series are not in {} (set LEADTIME_PERIODS)",
            dir.display()
        );
        None
    }
}
