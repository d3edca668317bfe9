//! Ctrl-C during a long native call. Python's SIGINT handler only sets a flag, which the
//! interpreter reads when it next runs Python code on the main thread: never while a backtest
//! holds that thread, so `KeyboardInterrupt` used to arrive after the run, its result thrown
//! away. Here the run goes on a thread of its own while the caller's thread asks for signals
//! every [`POLL`], and a signal stops the run at its next decision.

use crate::convert::engine_error;
use leadtime_backtest::Observer;
use pyo3::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// How often the caller's thread looks for a signal while a run goes on.
const POLL: Duration = Duration::from_millis(50);

/// A run's observer that stops it once its flag is set.
struct Stop(AtomicBool);

impl Observer for Stop {
    fn progress(&self, _: u64) {}

    fn stop(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Runs `work` without the GIL; a signal (Ctrl-C's `KeyboardInterrupt`) raised meanwhile stops
/// it and is raised instead of its result.
pub fn run<T: Send>(
    py: Python<'_>,
    work: impl FnOnce(&dyn Observer) -> Result<T, leadtime::Error> + Send,
) -> PyResult<T> {
    let stop = Stop(AtomicBool::new(false));
    let (tx, rx) = mpsc::sync_channel(1);
    // Waited on without the GIL, from this thread only: the lock is never contended.
    let rx = std::sync::Mutex::new(rx);
    let answer = |timeout: Option<Duration>| {
        let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
        match timeout {
            Some(t) => rx.recv_timeout(t),
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        }
    };
    std::thread::scope(|scope| {
        let stop = &stop;
        std::thread::Builder::new()
            .name("leadtime-backtest".into())
            .spawn_scoped(scope, move || {
                let _ = tx.send(work(stop));
            })
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
        loop {
            match py.detach(|| answer(Some(POLL))) {
                Ok(result) => return result.map_err(engine_error),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Err(signal) = py.check_signals() {
                        stop.0.store(true, Ordering::Relaxed);
                        // The run ends at its next decision (a policy call is bounded by fuel).
                        let _ = py.detach(|| answer(None));
                        return Err(signal);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(pyo3::exceptions::PyRuntimeError::new_err(
                        "the backtest's thread ended without an answer",
                    ))
                }
            }
        }
    })
}
