//! Tenants whose org's API allowance is (nearly) spent (docs/behaviour.md §5).
//!
//! A paused tenant's events wait on the retry queues without a single call
//! to Salesforce; other tenants go on. The pause is short
//! ([`PAUSE_FOR`]): after it the next batch tries again, and pauses again
//! if the org still answers `REQUEST_LIMIT_EXCEEDED` or reports 90 % used, so
//! a tenant resumes within a minute of its usage falling.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::SERVICE;

/// How long a tenant pauses before its next batch tries again.
pub const PAUSE_FOR: Duration = Duration::from_secs(30);

/// The paused tenants of this process.
#[derive(Debug, Default)]
pub struct Pauses {
    until: Mutex<HashMap<String, Instant>>,
}

impl Pauses {
    /// Pauses `tenant` for [`PAUSE_FOR`], saying why in the log and metrics.
    pub fn pause(&self, tenant: &str, reason: &str) {
        let mut until = self.until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if until.insert(tenant.to_owned(), Instant::now() + PAUSE_FOR).is_none() {
            tracing::warn!(
                tenant_id = tenant,
                reason,
                pause_s = PAUSE_FOR.as_secs(),
                "pausing the tenant: its org's daily API allowance is (nearly) spent; its events wait, none is dropped"
            );
        }
        metrics::gauge!("fa_tenant_paused", "service" => SERVICE, "tenant" => tenant.to_owned()).set(1.0);
    }

    /// How much longer `tenant` is paused; `None` (and the pause ended) when
    /// it is not.
    pub fn left(&self, tenant: &str) -> Option<Duration> {
        let mut until = self.until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let left = until.get(tenant)?.checked_duration_since(Instant::now()).filter(|d| !d.is_zero());
        if left.is_none() {
            until.remove(tenant);
            tracing::info!(tenant_id = tenant, "the tenant's pause is over; trying its events again");
            metrics::gauge!("fa_tenant_paused", "service" => SERVICE, "tenant" => tenant.to_owned()).set(0.0);
        }
        left
    }
}
