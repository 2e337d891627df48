//! The activity-writer: consumes assist.completed and writes exactly one Salesforce Task per call.
//!
//! The binary (`src/main.rs`) only parses the command line and hands over
//! to [`fa_runtime::launch::run`]; the service is [`run`], which tests start
//! in-process on port 0.
//!
//! It consumes `activity-writer.assist` (bound to `frontagent.assist` /
//! `assist.completed`) in per-tenant batches and publishes
//! `customer.linked`, `activity.written` and `activity.failed` to
//! `salesforce.sync`.
//!
//! Layout, by noun:
//! - [`writer`]: one batch, from the deliveries to the acks;
//! - [`event`]: reading and checking a delivery;
//! - [`resolve`] and [`matcher`]: which record a Task goes on;
//! - [`new_record`]: the Lead, Contact or Account made for a new caller;
//! - [`task`] and [`text`]: the Task's fields, lengths in UTF-16 units;
//! - [`ledger`]: exactly one Task per event; [`link`]: links and claims;
//! - [`org`]: the tenant's org during a batch; [`pause`]: spent allowances;
//!   [`verdict`]: what becomes of an event that cannot go on.

pub mod config;
pub mod event;
pub mod ledger;
pub mod link;
pub mod matcher;
pub mod new_record;
pub mod org;
pub mod pause;
pub mod resolve;
pub mod task;
pub mod text;
pub mod verdict;
pub mod writer;

use std::time::Duration;

use fa_amqp::{BatchOptions, ConsumerOptions, ExchangeKind, Topology};
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
    writer::zero_counters();
    let writer = writer::Writer {
        pool: host.pool.clone(),
        broker: host.broker.clone(),
        tokens: fa_tokens::TokenClient::new(host.broker.clone(), Duration::from_secs(30)),
        http: fa_salesforce::http_client()?,
        api_version: config.api_version.to_string(),
        zone: config.timezone.clone(),
        name: format!("{SERVICE}-{}", uuid::Uuid::new_v4().simple()),
        pauses: pause::Pauses::default(),
    };
    let mut options = ConsumerOptions::new(topology::ACTIVITY_WRITER_ASSIST_QUEUE);
    options.prefetch = PREFETCH;
    let batching = BatchOptions { max_batch: config.max_batch, max_concurrent: CONCURRENT_BATCHES };
    let consumer = host.broker.consume_batches(options, batching, writer);
    host.serve(axum::Router::new(), ctx, vec![consumer]).await
}

/// Deliveries in flight at most, shared by every tenant's running batch and
/// the next one forming. Measured with `writer_bench` (10 tenants, 9 KB
/// events): 1,000 capped batches near 50 events (0.106 API calls an event);
/// 2,000 gives about 100 and a peak RSS near 120 MiB; 4,000 fills backlog
/// batches to 200 but reaches 150 MiB.
pub const PREFETCH: u16 = 2000;

/// Events in one batch at most: one sObject Collections call takes 200.
pub const MAX_BATCH: usize = 200;

/// Tenants' batches handled at once.
pub const CONCURRENT_BATCHES: usize = 16;
