//! The named checks behind `/readyz`.
//!
//! A service registers one check per dependency it needs to do its work
//! (`amqp`, `database`, `consumers`). `/readyz` answers 200 only when all
//! pass, else 503 naming what failed, so Kubernetes stops sending work to a
//! pod that cannot do it and restarts one that never recovers.
//!
//! `/readyz` needs no credentials, so it names the failing checks and
//! nothing more: a database or broker error can carry host names, user
//! names and driver detail an anonymous caller has no business reading.
//! The reasons go to the log, once each time a check starts failing or
//! fails for another reason, not at every probe.

use std::{
    collections::{BTreeMap, BTreeSet},
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

type CheckFn = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// How long one check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The set of readiness checks of one service.
#[derive(Clone)]
pub struct Readiness {
    service: &'static str,
    checks: Arc<Mutex<Vec<(&'static str, CheckFn)>>>,
    /// Each failing check's last logged reason.
    logged: Arc<Mutex<BTreeMap<&'static str, String>>>,
}

/// The outcome of one `/readyz` call.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    /// True when every check passed.
    pub ready: bool,
    /// The names of the failed checks, e.g. `["amqp"]`; why is in the log.
    pub failing: BTreeSet<&'static str>,
}

impl Readiness {
    /// An empty set: ready until a check is added.
    pub fn new(service: &'static str) -> Self {
        Self { service, checks: Arc::default(), logged: Arc::default() }
    }

    /// Adds the check `name`; it answers `Err(reason)` while not ready.
    pub fn add<F, Fut>(&self, name: &'static str, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let check: CheckFn = Arc::new(move || Box::pin(check()));
        if let Ok(mut checks) = self.checks.lock() {
            checks.push((name, check));
        }
    }

    /// Runs every check at once and reports.
    pub async fn report(&self) -> Report {
        let checks: Vec<_> = match self.checks.lock() {
            Ok(checks) => checks.clone(),
            Err(_) => Vec::new(),
        };
        let results = futures_util::future::join_all(checks.iter().map(|(name, check)| {
            let fut = check();
            async move {
                let result = match tokio::time::timeout(CHECK_TIMEOUT, fut).await {
                    Ok(r) => r,
                    Err(_) => Err(format!("no answer within {}s", CHECK_TIMEOUT.as_secs())),
                };
                (*name, result)
            }
        }))
        .await;
        let mut failing = BTreeSet::new();
        let mut logged = self.logged.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (name, result) in results {
            let up = result.is_ok();
            metrics::gauge!("fa_ready", "service" => self.service, "check" => name).set(if up { 1.0 } else { 0.0 });
            match result {
                Ok(()) => {
                    if logged.remove(name).is_some() {
                        tracing::info!(check = name, "readiness check passes again");
                    }
                }
                Err(reason) => {
                    if logged.get(name) != Some(&reason) {
                        tracing::warn!(check = name, reason = %reason, "readiness check failing; /readyz answers 503");
                        logged.insert(name, reason);
                    }
                    failing.insert(name);
                }
            }
        }
        Report { ready: failing.is_empty(), failing }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ready_only_when_every_check_passes() {
        let r = Readiness::new("test");
        assert!(r.report().await.ready);
        r.add("database", || async { Ok(()) });
        r.add("amqp", || async { Err("not connected".to_owned()) });
        let report = r.report().await;
        assert!(!report.ready);
        assert_eq!(report.failing.iter().copied().collect::<Vec<_>>(), ["amqp"]);
    }

    #[tokio::test]
    async fn the_report_names_failing_checks_without_their_reasons() {
        let r = Readiness::new("test");
        r.add("database", || async { Err("password authentication failed for user \"fa\" at db.internal".to_owned()) });
        let body = serde_json::to_string(&r.report().await).expect("JSON");
        assert_eq!(body, r#"{"ready":false,"failing":["database"]}"#);
    }
}
