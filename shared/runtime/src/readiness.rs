//! The named checks behind `/readyz`.
//!
//! A service registers one check per dependency it needs to do its work
//! (`amqp`, `database`, `consumers`). `/readyz` answers 200 only when all
//! pass, else 503 naming what failed, so Kubernetes stops sending work to a
//! pod that cannot do it and restarts one that never recovers.

use std::{
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
}

/// The outcome of one `/readyz` call.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    /// True when every check passed.
    pub ready: bool,
    /// The failed checks and why, e.g. `{"amqp": "not connected: ..."}`.
    pub failing: std::collections::BTreeMap<&'static str, String>,
}

impl Readiness {
    /// An empty set: ready until a check is added.
    pub fn new(service: &'static str) -> Self {
        Self { service, checks: Arc::default() }
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
        let mut failing = std::collections::BTreeMap::new();
        for (name, result) in results {
            let up = result.is_ok();
            metrics::gauge!("fa_ready", "service" => self.service, "check" => name).set(if up { 1.0 } else { 0.0 });
            if let Err(reason) = result {
                failing.insert(name, reason);
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
        assert_eq!(report.failing.get("amqp").map(String::as_str), Some("not connected"));
        assert!(!report.failing.contains_key("database"));
    }
}
