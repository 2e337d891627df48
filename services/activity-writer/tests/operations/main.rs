//! What the SRE on call relies on, checked against the running writer: the
//! runbook's dead-letter replay done as written (`runbook`), one trace per
//! assist event (`trace`), and every dashboard query and alert evaluated by
//! a real Prometheus (`prometheus`). One test binary, so the release build
//! links it once.

#[path = "../common/mod.rs"]
mod common;

mod prometheus;
mod runbook;
mod trace;
