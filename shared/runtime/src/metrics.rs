//! The process-wide Prometheus registry.
//!
//! Metrics are recorded through the `metrics` facade from any crate; this
//! module installs the one recorder a process has and renders it for
//! `/metrics`. Label values must stay bounded: never a tenant on a
//! histogram, never an event or record id (docs/behaviour.md §6).

use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Buckets for durations in seconds, from a fast cache hit to a slow
/// Salesforce call.
const SECONDS_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// The registry of this process, installed on first use.
///
/// Several services started in one test process share it; in production a
/// process is one service.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        match builder.install_recorder() {
            Ok(handle) => handle,
            // Another recorder is already installed (a test harness): keep
            // a private one so `/metrics` still renders.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        }
    })
}

/// Records `fa_build_info` and keeps histograms from growing without bound.
pub fn start(service: &'static str, version: &'static str) {
    let handle = handle();
    metrics::gauge!("fa_build_info", "service" => service, "version" => version).set(1.0);
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let handle = handle.clone();
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        });
    }
}

/// The text exposition of every metric.
pub fn render() -> String {
    handle().render()
}
