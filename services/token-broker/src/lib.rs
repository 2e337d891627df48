//! The token-broker: holds each tenant's Salesforce connection, mints and caches access tokens, serves the connection admin API.
//!
//! The binary (`src/main.rs`) only parses the command line and hands over
//! to [`fa_runtime::launch::run`]; the service is [`run`], which tests start
//! in-process on port 0.
//!
//! It publishes `import.requested` to `salesforce.commands`.

pub mod config;

use fa_amqp::{ExchangeKind, Topology};
use fa_messages::topology;
use fa_runtime::{host::Host, launch::Context};

pub use config::Config;

/// The binary's name: `app_id` of what it publishes, `service` of its metrics.
pub const SERVICE: &str = "token-broker";

/// The exchanges and queues the token-broker declares.
pub fn topology() -> Topology {
    Topology::new().exchange(topology::COMMANDS_EXCHANGE, ExchangeKind::Direct)
}

/// Runs the token-broker until `ctx.shutdown` is cancelled.
pub async fn run(config: Config, ctx: Context) -> anyhow::Result<()> {
    let host = Host::start(&config.common, topology()).await?;
    host.serve(axum::Router::new(), ctx, Vec::new()).await
}
