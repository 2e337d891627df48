//! The importer: pages Leads, Contacts and Accounts out of Salesforce and publishes customer.upsert.
//!
//! The binary (`src/main.rs`) only parses the command line and hands over
//! to [`fa_runtime::launch::run`]; the service is [`run`], which tests start
//! in-process on port 0.
//!
//! It consumes `importer.commands` (bound to `salesforce.commands` / `import.requested`) and publishes to `salesforce.sync`.

pub mod config;

use fa_amqp::{ExchangeKind, Topology};
use fa_messages::topology;
use fa_runtime::{host::Host, launch::Context};

pub use config::Config;

/// The binary's name: `app_id` of what it publishes, `service` of its metrics.
pub const SERVICE: &str = "importer";

/// The exchanges and queues the importer declares.
pub fn topology() -> Topology {
    Topology::new()
        .exchange(topology::SYNC_EXCHANGE, ExchangeKind::Topic)
        .exchange(topology::COMMANDS_EXCHANGE, ExchangeKind::Direct)
        .queue(topology::IMPORTER_COMMANDS_QUEUE, &[(topology::COMMANDS_EXCHANGE, topology::IMPORT_REQUESTED)])
}

/// Runs the importer until `ctx.shutdown` is cancelled.
pub async fn run(config: Config, ctx: Context) -> anyhow::Result<()> {
    let host = Host::start(&config.common, topology()).await?;
    host.serve(axum::Router::new(), ctx, Vec::new()).await
}
