//! Helpers shared by the predictive policy's tests: seeded noise and requests.
#![allow(dead_code)]

use leadtime_guest::{Metric, Replicas, Request, Workload};

/// A small seeded generator (SplitMix64) so every case is reproducible.
pub struct Noise(u64);

impl Noise {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Noise {
        Noise(seed)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
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
        params: Default::default(),
        state: None,
    }
}
