//! `importer`: Pages Leads, Contacts and Accounts out of Salesforce and publishes customer.upsert.
//! Configuration comes from the environment (see README.md); there are no
//! other arguments.

use std::process::ExitCode;

use clap::Parser;

/// Pages Leads, Contacts and Accounts out of Salesforce and publishes customer.upsert.
///
/// Configured by environment variables (FA_SF_AMQP_URL, FA_SF_DATABASE_URL,
/// FA_SF_HTTP_ADDR, ...) and the optional TOML file named by FA_SF_CONFIG;
/// see the README. Serves /healthz, /readyz and /metrics on FA_SF_HTTP_ADDR
/// (default 127.0.0.1:8081).
#[derive(Parser)]
#[command(name = "importer", version, about, long_about)]
struct Cli {}

fn main() -> ExitCode {
    Cli::parse();
    fa_runtime::launch::run(env!("CARGO_PKG_VERSION"), importer::Config::from_settings, importer::run)
}
