//! One compile per module at a time, and a failed load remembered for a while: a burst of first
//! calls for the same module (a scaler's cold start) waits for one compile instead of starting
//! one each, and a module that fails is not compiled again on every call.

use crate::error::{Error, ErrorKind};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a module's load failure is answered from memory before the module is compiled again.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(60);

/// Failures remembered at most; the oldest goes first.
const FAILURES_KEPT: usize = 64;

/// A load that failed: its kind and message.
struct Failure {
    at: Instant,
    kind: ErrorKind,
    reason: String,
}

/// A compile in progress: done once its leader has finished, either way.
#[derive(Default)]
struct Flight {
    done: Mutex<bool>,
    landed: Condvar,
}

/// What a caller is to do about a module: compile it (it leads), or it waited for the leader.
pub(crate) enum Turn {
    /// No one is compiling it: the caller compiles, then reports with [`Flights::land`].
    Lead,
    /// Another caller compiled it meanwhile (look in the cache again), or `Err` when waiting
    /// took longer than `wait`.
    Waited(Result<(), Error>),
}

/// The compiles in flight and the failures remembered, by module.
pub(crate) struct Flights<K> {
    in_flight: Mutex<HashMap<K, Arc<Flight>>>,
    failures: Mutex<HashMap<K, Failure>>,
}

impl<K: Eq + Hash + Copy> Default for Flights<K> {
    fn default() -> Self {
        Flights {
            in_flight: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update is one call on the map: a panic elsewhere leaves it consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<K: Eq + Hash + Copy> Flights<K> {
    /// The remembered failure of `key`, as an error, while it is younger than
    /// [`FAILURE_MEMORY`].
    pub fn failed(&self, key: &K) -> Option<Error> {
        let mut failures = lock(&self.failures);
        let f = failures.get(key)?;
        let age = f.at.elapsed();
        if age >= FAILURE_MEMORY {
            failures.remove(key);
            return None;
        }
        Some(Error::RecentlyFailed {
            kind: f.kind,
            reason: f.reason.clone(),
            age,
            retry_in: FAILURE_MEMORY - age,
        })
    }

    /// Whether the caller compiles `key` or waits (at most `wait`) for the one that does.
    pub fn turn(&self, key: K, wait: Duration) -> Turn {
        let flight = {
            let mut in_flight = lock(&self.in_flight);
            match in_flight.get(&key) {
                Some(f) => f.clone(),
                None => {
                    in_flight.insert(key, Arc::default());
                    return Turn::Lead;
                }
            }
        };
        let done = lock(&flight.done);
        let (done, timeout) = flight
            .landed
            .wait_timeout_while(done, wait, |done| !*done)
            .unwrap_or_else(|p| p.into_inner());
        if timeout.timed_out() && !*done {
            return Turn::Waited(Err(Error::CompileTimeout { cap: wait }));
        }
        Turn::Waited(Ok(()))
    }

    /// The leader's report: `failure` (when the load failed in a way that another try would
    /// repeat) is remembered, and the callers waiting for `key` are woken.
    pub fn land(&self, key: K, failure: Option<&Error>) {
        if let Some(e) = failure.filter(|e| remembered(e)) {
            let mut failures = lock(&self.failures);
            failures.retain(|_, f| f.at.elapsed() < FAILURE_MEMORY);
            while failures.len() >= FAILURES_KEPT {
                let Some(oldest) = failures.iter().min_by_key(|(_, f)| f.at).map(|(k, _)| *k)
                else {
                    break;
                };
                failures.remove(&oldest);
            }
            failures.insert(
                key,
                Failure {
                    at: Instant::now(),
                    kind: e.kind(),
                    reason: e.to_string(),
                },
            );
        }
        if let Some(flight) = lock(&self.in_flight).remove(&key) {
            *lock(&flight.done) = true;
            flight.landed.notify_all();
        }
    }
}

/// The leader's duty to land: [`Flights::land`] on drop if the leader never got to it (it
/// panicked), so that the callers waiting for it are woken and the next caller leads.
pub(crate) struct Landing<'a, K: Eq + Hash + Copy> {
    flights: &'a Flights<K>,
    key: K,
}

impl<'a, K: Eq + Hash + Copy> Landing<'a, K> {
    /// The duty for `key`, taken by the caller that leads it.
    pub fn new(flights: &'a Flights<K>, key: K) -> Self {
        Landing { flights, key }
    }

    /// Lands with the leader's result (a failure is remembered as [`Flights::land`] says).
    pub fn land(self, failure: Option<&Error>) {
        self.flights.land(self.key, failure);
        std::mem::forget(self);
    }
}

impl<K: Eq + Hash + Copy> Drop for Landing<'_, K> {
    fn drop(&mut self) {
        self.flights.land(self.key, None);
    }
}

/// Whether a load failure belongs to the module (the same bytes would fail the same way), not to
/// the moment (a thread that did not start).
fn remembered(e: &Error) -> bool {
    !matches!(e, Error::Runtime(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_leads_the_others_wait_and_a_failure_is_remembered() {
        let flights = Arc::new(Flights::<u32>::default());
        assert!(matches!(
            flights.turn(1, Duration::from_secs(5)),
            Turn::Lead
        ));
        // Others wait for the leader; a different module is not held up.
        assert!(matches!(
            flights.turn(2, Duration::from_secs(5)),
            Turn::Lead
        ));
        let waiter = {
            let flights = flights.clone();
            std::thread::spawn(move || flights.turn(1, Duration::from_secs(5)))
        };
        std::thread::sleep(Duration::from_millis(50));
        let e = Error::CompileTimeout {
            cap: Duration::from_secs(20),
        };
        flights.land(1, Some(&e));
        assert!(matches!(waiter.join().unwrap(), Turn::Waited(Ok(()))));
        let remembered = flights.failed(&1).expect("remembered");
        assert_eq!(remembered.kind(), ErrorKind::InvalidModule);
        assert!(
            remembered.to_string().contains("longer than 20s"),
            "{remembered}"
        );
        // A success is not a failure; the next turn leads again.
        flights.land(2, None);
        assert!(flights.failed(&2).is_none());
        assert!(matches!(
            flights.turn(2, Duration::from_secs(5)),
            Turn::Lead
        ));
    }

    #[test]
    fn a_leader_that_panics_still_wakes_its_waiters() {
        let flights = Arc::new(Flights::<u32>::default());
        assert!(matches!(
            flights.turn(3, Duration::from_secs(5)),
            Turn::Lead
        ));
        let leader = {
            let flights = flights.clone();
            std::thread::spawn(move || {
                let _landing = Landing::new(&flights, 3);
                std::thread::sleep(Duration::from_millis(50));
                panic!("the leader's compile panicked");
            })
        };
        assert!(matches!(
            flights.turn(3, Duration::from_secs(5)),
            Turn::Waited(Ok(()))
        ));
        assert!(leader.join().is_err());
        // Nothing remembered, and the next caller leads.
        assert!(flights.failed(&3).is_none());
        assert!(matches!(
            flights.turn(3, Duration::from_secs(5)),
            Turn::Lead
        ));
    }

    #[test]
    fn a_waiter_gives_up_at_its_deadline() {
        let flights = Flights::<u32>::default();
        assert!(matches!(
            flights.turn(7, Duration::from_secs(5)),
            Turn::Lead
        ));
        let waited = flights.turn(7, Duration::from_millis(20));
        assert!(matches!(
            waited,
            Turn::Waited(Err(Error::CompileTimeout { .. }))
        ));
    }
}
