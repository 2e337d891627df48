//! The importer: pages Leads, Contacts and Accounts out of each tenant's
//! Salesforce org and publishes `customer.upsert` (docs/behaviour.md §3, §5).
//!
//! The binary (`src/main.rs`) only parses the command line and hands over
//! to [`fa_runtime::launch::run`]; the service is [`run`], which tests start
//! in-process on port 0.
//!
//! Module map, one noun each:
//! - [`commands`]: `import.requested` from `importer.commands` starts a run.
//! - [`schedule`]: the runs nobody asked for (interval, retries, pauses),
//!   claimed in PostgreSQL by whichever replica looks first.
//! - [`lock`]: one run per tenant across replicas (a PostgreSQL advisory
//!   lock).
//! - [`run`]: a run: read, publish with confirms, index what was
//!   confirmed, move the watermark; [`run_error`]: the codes of a failed
//!   run, written once.
//! - [`index`]: what of a published record goes into the customer index
//!   the activity-writer matches callers on.
//! - [`org`]: the tenant's org: pages, Salesforce's failures classified,
//!   the API allowance watched; [`allowance`]: the pauses and usage
//!   readings every replica reports, from PostgreSQL.
//! - [`query`], [`mapping`], [`watermark`]: the SOQL, the record-to-customer
//!   mapping, the resume point (pure, tested with tables).
//! - [`removal`]: whether a record left Salesforce, why, and whether Front
//!   Agent hears of it; [`reconcile`]: when a run compares ids to find
//!   records purged unseen (both pure); [`purged`]: the deleted list and
//!   that comparison, run once a cursor is read to its end.
//! - [`api`]: the admin API; [`imports`]: a tenant's imports as it shows
//!   them.
//!
//! **Architecture invariant:** the watermark moves only past records whose
//! `customer.upsert` the broker confirmed, together with every record
//! before them.

pub mod allowance;
pub mod api;
pub mod commands;
pub mod config;
pub mod imports;
pub mod index;
pub mod lock;
pub mod mapping;
pub mod org;
pub mod pending;
pub mod purged;
pub mod query;
pub mod reconcile;
pub mod removal;
pub mod run;
pub mod run_error;
pub mod schedule;
pub mod watermark;

use std::{sync::Arc, time::Duration};

use fa_amqp::{ConsumerOptions, ExchangeKind, Topology};
use fa_messages::topology;
use fa_runtime::{admin::AdminToken, host::Host, launch::Context};

pub use config::Config;

/// The binary's name: `app_id` of what it publishes, `service` of its metrics.
pub const SERVICE: &str = "importer";

/// How far before the watermark a fresh query re-reads (records committed late).
const OVERLAP: Duration = Duration::from_secs(5 * 60);

/// How long a tenant pauses for its allowance before the next look.
const PAUSE_FOR: Duration = Duration::from_secs(5 * 60);

/// Tenants run at once by one replica.
const CONCURRENT_RUNS: u16 = 4;

/// The exchanges and queues the importer declares.
pub fn topology() -> Topology {
    Topology::new()
        .exchange(topology::SYNC_EXCHANGE, ExchangeKind::Topic)
        .exchange(topology::COMMANDS_EXCHANGE, ExchangeKind::Direct)
        .queue(topology::IMPORTER_COMMANDS_QUEUE, &[(topology::COMMANDS_EXCHANGE, topology::IMPORT_REQUESTED)])
}

/// Runs the importer until `ctx.shutdown` is cancelled.
pub async fn run(config: Config, ctx: Context) -> anyhow::Result<()> {
    let mut host = Host::start(&config.common, topology()).await?;
    let http = fa_salesforce::http_client()?;
    let settings = run::Settings {
        max_records_per_run: u64::from(config.max_records_per_run),
        lookback: config.lookback,
        interval: config.interval,
        api_version: config.api_version.as_str().to_owned(),
        overlap: OVERLAP,
        pause_for: PAUSE_FOR,
        backoff: Arc::from([1, 2, 5, 10, 20].map(Duration::from_secs).as_slice()),
    };
    let importer = run::Importer {
        pool: host.pool.clone(),
        broker: host.broker.clone(),
        tokens: fa_tokens::TokenClient::new(host.broker.clone(), Duration::from_secs(30)),
        http,
        settings: Arc::new(settings),
        stop: ctx.shutdown.clone(),
    };
    let mut options = ConsumerOptions::new(topology::IMPORTER_COMMANDS_QUEUE);
    options.prefetch = CONCURRENT_RUNS;
    let consumer = host.broker.consume(options, commands::Commands { importer });
    let tick = (config.interval / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
    host.own(
        "scheduler",
        tokio::spawn(schedule::run(host.pool.clone(), host.broker.clone(), tick, ctx.shutdown.clone())),
    );
    let gauges = allowance::run(host.pool.clone(), allowance::REFRESH_EVERY, ctx.shutdown.clone());
    host.own("allowance", tokio::spawn(gauges));
    let api = Arc::new(api::Api { pool: host.pool.clone(), broker: host.broker.clone() });
    let routes = api::router(api, AdminToken::new(config.admin_token.clone()));
    host.serve(routes, ctx, vec![consumer]).await
}
