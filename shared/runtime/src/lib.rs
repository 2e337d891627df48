//! The ground every service of the connector stands on.
//!
//! A service's `main` is [`launch::run`]: read configuration ([`config`]),
//! start telemetry ([`telemetry`], [`metrics`]), bind the HTTP server
//! ([`http`]) with the service's own routes next to `/healthz`, `/readyz` and
//! `/metrics`, run the service until SIGTERM or SIGINT ([`shutdown`]), then
//! flush. Everything here behaves the same in every service, so an SRE who
//! knows one knows all three.
//!
//! Layout:
//! - [`admin`]: the admin APIs' bearer token, message language and problem
//!   documents.
//! - [`config`]: defaults, then the TOML file named by `FA_SF_CONFIG`, then
//!   the environment; errors name the variable.
//! - [`telemetry`]: logs to stdout (JSON or pretty) and OpenTelemetry export.
//! - [`metrics`]: the process-wide Prometheus registry.
//! - [`readiness`]: the named checks behind `/readyz`.
//! - [`liveness`]: behind `/healthz`, whether every consumer and background
//!   task still runs.
//! - [`http`]: the health, readiness and metrics server.
//! - [`shutdown`]: SIGTERM and SIGINT as a cancellation token.
//! - [`launch`]: the skeleton of every `main`.
//! - [`host`]: the database, the broker and the HTTP server of a running
//!   service, started and stopped in the right order.

pub mod admin;
pub mod config;
pub mod host;
pub mod http;
pub mod launch;
pub mod liveness;
pub mod metrics;
pub mod readiness;
pub mod shutdown;
pub mod telemetry;

pub use config::{CommonConfig, ConfigError, Settings};
pub use liveness::Liveness;
pub use readiness::Readiness;
