//! The skeleton of every service's `main`: read configuration, start
//! telemetry, bind the HTTP address, run until a shutdown signal, flush.
//!
//! Failures before the service runs (bad configuration, an address in use,
//! an unreachable database) end the process with exit code 2 or 1 and one
//! line on stderr that names the variable or dependency.

use std::{future::Future, process::ExitCode};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    config::{CommonConfig, ConfigError, Settings},
    telemetry::Telemetry,
};

/// A service's parsed configuration.
pub trait ServiceConfig: Send + 'static {
    /// The values every service has.
    fn common(&self) -> &CommonConfig;
}

/// What `run` is handed: the bound listener and the shutdown token.
pub struct Context {
    /// Bound to `FA_SF_HTTP_ADDR`.
    pub listener: TcpListener,
    /// Cancelled by SIGTERM or SIGINT.
    pub shutdown: CancellationToken,
}

/// Runs a service to completion; the whole of a `main`.
///
/// `parse` turns the merged settings into the service's configuration;
/// `run` is the service, which returns when `shutdown` is cancelled and its
/// work is handed back.
pub fn run<C, P, R, Fut>(version: &'static str, parse: P, run: R) -> ExitCode
where
    C: ServiceConfig,
    P: FnOnce(&Settings) -> Result<C, ConfigError>,
    R: FnOnce(C, Context) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let config = match Settings::from_process_env().and_then(|s| parse(&s)) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let common = config.common().clone();
        let telemetry = match Telemetry::init(&common) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        };
        crate::metrics::start(common.service, version);
        let listener = match TcpListener::bind(common.http_addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: FA_SF_HTTP_ADDR {} cannot be bound: {e}", common.http_addr);
                return ExitCode::from(2);
            }
        };
        let shutdown = match crate::shutdown::on_signal() {
            Ok(token) => token,
            Err(e) => {
                eprintln!("error: cannot listen for SIGTERM: {e}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(service = common.service, version, addr = %common.http_addr, "starting");
        let outcome = run(config, Context { listener, shutdown }).await;
        let code = match outcome {
            Ok(()) => {
                tracing::info!(service = common.service, "stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(service = common.service, error = format!("{e:#}"), "stopped on an error");
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
        telemetry.shutdown();
        code
    })
}
