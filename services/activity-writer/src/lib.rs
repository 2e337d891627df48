//! The activity-writer: consumes assist.completed and writes exactly one Salesforce Task per call.
//!
//! The binary (`src/main.rs`) only parses the command line and hands over
//! to [`fa_runtime::launch::run`]; the service is [`run`], which tests start
//! in-process on port 0.
//!
//! It consumes `activity-writer.assist` (bound to `frontagent.assist` / `assist.completed`) and publishes to `salesforce.sync`.

pub mod config;

use fa_amqp::{ExchangeKind, Topology};
use fa_messages::topology;
use fa_runtime::{host::Host, launch::Context};

pub use config::Config;

/// The binary's name: `app_id` of what it publishes, `service` of its metrics.
pub const SERVICE: &str = "activity-writer";

/// The exchanges and queues the activity-writer declares.
pub fn topology() -> Topology {
    Topology::new()
        .exchange(topology::ASSIST_EXCHANGE, ExchangeKind::Topic)
        .exchange(topology::SYNC_EXCHANGE, ExchangeKind::Topic)
        .queue(topology::ACTIVITY_WRITER_ASSIST_QUEUE, &[(topology::ASSIST_EXCHANGE, topology::ASSIST_COMPLETED)])
}

/// Runs the activity-writer until `ctx.shutdown` is cancelled.
pub async fn run(config: Config, ctx: Context) -> anyhow::Result<()> {
    let host = Host::start(&config.common, topology()).await?;
    host.serve(axum::Router::new(), ctx, Vec::new()).await
}
