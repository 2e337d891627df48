//! `token-broker`: Holds each tenant's Salesforce connection, mints and caches access tokens, serves the connection admin API.
//! Configuration comes from the environment (see README.md); there are no
//! other arguments.

use std::process::ExitCode;

use clap::Parser;

// Every token request allocates small buffers (JSON, AMQP frames); mimalloc
// keeps that off the latency of the token service.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Holds each tenant's Salesforce connection, mints and caches access tokens, serves the connection admin API.
///
/// Configured by environment variables (FA_SF_AMQP_URL, FA_SF_DATABASE_URL,
/// FA_SF_HTTP_ADDR, ...) and the optional TOML file named by FA_SF_CONFIG;
/// see the README. Serves /healthz, /readyz and /metrics on FA_SF_HTTP_ADDR
/// (default 127.0.0.1:8080).
#[derive(Parser)]
#[command(name = "token-broker", version, about, long_about)]
struct Cli {}

fn main() -> ExitCode {
    Cli::parse();
    fa_runtime::launch::run(env!("CARGO_PKG_VERSION"), token_broker::Config::from_settings, token_broker::run)
}
