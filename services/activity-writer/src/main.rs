//! `activity-writer`: Consumes assist.completed and writes exactly one Salesforce Task per call.
//! Configuration comes from the environment (see README.md); there are no
//! other arguments.

use std::process::ExitCode;

use clap::Parser;

/// Consumes assist.completed and writes exactly one Salesforce Task per call.
///
/// Configured by environment variables (FA_SF_AMQP_URL, FA_SF_DATABASE_URL,
/// FA_SF_HTTP_ADDR, ...) and the optional TOML file named by FA_SF_CONFIG;
/// see the README. Serves /healthz, /readyz and /metrics on FA_SF_HTTP_ADDR
/// (default 127.0.0.1:8082).
#[derive(Parser)]
#[command(name = "activity-writer", version, about, long_about)]
struct Cli {}

fn main() -> ExitCode {
    Cli::parse();
    fa_runtime::launch::run(env!("CARGO_PKG_VERSION"), activity_writer::Config::from_settings, activity_writer::run)
}
