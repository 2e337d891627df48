//! What `/healthz` answers: whether the process can still make progress.
//!
//! Kubernetes restarts a container whose liveness probe fails, so
//! `/healthz` must fail exactly when a restart is the cure:
//!
//! - A consumer loop or a background task the service handed to
//!   [`Host`](crate::host::Host) that ended (it returned, panicked or was
//!   cancelled) while the process is not shutting down is **dead**: nothing
//!   in the process starts it again, so the pod would keep running, doing
//!   none of that work, forever. `/healthz` answers 503, one line per dead
//!   task, e.g. `consumer importer.commands stopped: it panicked`.
//! - A consumer waiting for RabbitMQ to come back, or a task whose queries
//!   fail while PostgreSQL is away, is **alive**: it resumes by itself.
//!   That is `/readyz`'s business ([`readiness`](crate::readiness)), which
//!   takes the pod out of service meanwhile. Failing `/healthz` then would
//!   restart every replica at once and add a crash loop to the outage.
//!
//! Why this little: the only question asked is "has it ended?", answered
//! by a flag set when the task's future completes. There is no heartbeat,
//! so a task stuck forever (a deadlock) goes unseen; catching that would
//! need every loop to tick and a threshold per loop, and a threshold set
//! too short restarts healthy pods during a long run or an outage.
//!
//! Like `/readyz`, `/healthz` needs no credentials, so it says what died
//! and how (returned, panicked, cancelled, its broker closed), never an
//! error's text. A panic's message and location are on stderr, printed by
//! Rust's panic hook when it happened. Each death is logged once, at
//! ERROR, by the first `/healthz` that finds it.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex, OnceLock, PoisonError},
};

use tokio_util::sync::CancellationToken;

type ProbeFn = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The liveness probes of one service.
#[derive(Clone)]
pub struct Liveness {
    probes: Arc<Mutex<Vec<ProbeFn>>>,
    /// The deaths already logged.
    logged: Arc<Mutex<BTreeSet<String>>>,
    /// Once cancelled, tasks end because they were asked to.
    shutdown: Arc<OnceLock<CancellationToken>>,
}

impl Default for Liveness {
    fn default() -> Self {
        Self::new()
    }
}

impl Liveness {
    /// No probes: alive.
    pub fn new() -> Self {
        Self { probes: Arc::default(), logged: Arc::default(), shutdown: Arc::default() }
    }

    /// Adds a probe answering `Err("<what> stopped: <how>")` once what it
    /// watches has ended for good.
    pub fn add(&self, probe: impl Fn() -> Result<(), String> + Send + Sync + 'static) {
        self.probes.lock().unwrap_or_else(PoisonError::into_inner).push(Arc::new(probe));
    }

    /// From the moment `shutdown` is cancelled tasks end because they were
    /// asked to, so none of them counts as dead any more.
    pub fn shutting_down_on(&self, shutdown: CancellationToken) {
        let _ = self.shutdown.set(shutdown);
    }

    /// What died, one line each; empty while everything runs and once the
    /// process is shutting down. Logs each death the first time it is seen.
    pub fn report(&self) -> Vec<String> {
        if self.shutdown.get().is_some_and(CancellationToken::is_cancelled) {
            return Vec::new();
        }
        let probes = self.probes.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let dead: Vec<String> = probes.iter().filter_map(|probe| probe().err()).collect();
        let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
        for death in &dead {
            if logged.insert(death.clone()) {
                tracing::error!(reason = %death, "the process can no longer make progress; /healthz answers 503");
            }
        }
        dead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_while_a_probe_fails_unless_shutting_down() {
        let liveness = Liveness::new();
        assert!(liveness.report().is_empty());
        liveness.add(|| Ok(()));
        liveness.add(|| Err("task scheduler stopped: it returned".to_owned()));
        assert_eq!(liveness.report(), ["task scheduler stopped: it returned"]);
        let shutdown = CancellationToken::new();
        liveness.shutting_down_on(shutdown.clone());
        assert_eq!(liveness.report().len(), 1);
        shutdown.cancel();
        assert!(liveness.report().is_empty());
    }

    /// Kubernetes probes every few seconds; the log says it once.
    #[test]
    fn each_death_is_logged_once_at_error() {
        #[derive(Clone, Default)]
        struct Log(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Log {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
        let liveness = Liveness::new();
        liveness.add(|| Err("consumer importer.commands stopped: it panicked".to_owned()));
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..3 {
                assert_eq!(liveness.report().len(), 1);
            }
        });
        let text = String::from_utf8_lossy(&log.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert!(lines[0].contains("ERROR") && lines[0].contains("consumer importer.commands stopped"), "{text}");
    }
}
