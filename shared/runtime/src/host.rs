//! What a running service holds: its database pool, its broker connection,
//! its readiness checks and the liveness of its consumers and background
//! tasks; and the order they stop in.
//!
//! Every consumer and background task is the host's ([`Host::own`],
//! [`Host::serve`]), so the host is the one place that knows when one of
//! them ended before shutdown: `/healthz` then fails (see
//! [`liveness`](crate::liveness)) and Kubernetes restarts the process.

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use anyhow::Context as _;
use axum::Router;
use fa_amqp::{Broker, BrokerOptions, ConsumerHandle, Topology};
use secrecy::ExposeSecret as _;
use sqlx::PgPool;
use tokio::task::{AbortHandle, JoinHandle};

use crate::{config::CommonConfig, launch::Context, liveness::Liveness, readiness::Readiness};

/// The shared resources of one service.
pub struct Host {
    /// The database, migrated.
    pub pool: PgPool,
    /// The broker, connecting or connected.
    pub broker: Broker,
    /// The checks behind `/readyz`: `database` and `amqp`, plus
    /// `consumers` once the service consumes.
    pub readiness: Readiness,
    /// Behind `/healthz`: the owned tasks and the consumers, each alive
    /// until it ends before shutdown.
    pub liveness: Liveness,
    /// Background tasks ([`Self::own`]), stopped before the broker and the pool.
    tasks: Vec<Owned>,
}

/// A background task of the host's: a watcher that awaits it (and records
/// how it ended for [`Liveness`]), and the handle that aborts it.
struct Owned {
    name: &'static str,
    watcher: JoinHandle<()>,
    abort: AbortHandle,
}

/// How long [`Host::serve`] waits for an owned task to end after shutdown
/// before it aborts it.
const TASK_GRACE: Duration = Duration::from_secs(10);

impl Host {
    /// Connects to the database and applies migrations (failing when it is
    /// unreachable: a service without its database cannot start), and starts
    /// connecting to RabbitMQ in the background (a service without the broker
    /// starts, reports not ready, and keeps trying).
    pub async fn start(common: &CommonConfig, topology: Topology) -> anyhow::Result<Self> {
        let pool = fa_store::connect(common.database_url.expose_secret(), fa_store::PoolOptions::default()).await?;
        let options = BrokerOptions { tls_roots: common.amqp_tls_roots.clone(), ..BrokerOptions::default() };
        let broker = Broker::start(common.amqp_url.clone(), common.service, topology, options);
        let readiness = Readiness::new(common.service);
        let probe = broker.clone();
        readiness.add("amqp", move || std::future::ready(probe.readiness()));
        let probe = pool.clone();
        readiness.add("database", move || {
            let pool = probe.clone();
            async move { fa_store::ping(&pool).await }
        });
        Ok(Self { pool, broker, readiness, liveness: Liveness::new(), tasks: Vec::new() })
    }

    /// Makes `task` the service's: at shutdown [`Self::serve`] waits for it
    /// (it must end on the shutdown token) after the consumers and before the
    /// broker and the pool close, so it never finds them closed under it;
    /// one that has not ended after 10 s is aborted.
    ///
    /// It must not end before shutdown: if it does (returns or panics),
    /// `/healthz` answers 503 with `task <name> stopped: <how>`.
    pub fn own(&mut self, name: &'static str, task: JoinHandle<()>) {
        let abort = task.abort_handle();
        let ended: Arc<OnceLock<&'static str>> = Arc::default();
        let record = ended.clone();
        let watcher = tokio::spawn(async move {
            let how = match task.await {
                Ok(()) => "it returned",
                Err(e) if e.is_panic() => "it panicked",
                Err(_) => "it was cancelled",
            };
            let _ = record.set(how);
        });
        self.liveness.add(move || match ended.get() {
            None => Ok(()),
            Some(how) => Err(format!("task {name} stopped: {how}")),
        });
        self.tasks.push(Owned { name, watcher, abort });
    }

    /// Serves `routes` with the health, readiness and metrics endpoints until
    /// shutdown, then stops `consumers` (work in flight finishes or goes back
    /// to its queue) and the tasks it owns, closes the broker connection and
    /// the pool.
    pub async fn serve(self, routes: Router, ctx: Context, consumers: Vec<ConsumerHandle>) -> anyhow::Result<()> {
        self.liveness.shutting_down_on(ctx.shutdown.clone());
        for consumer in &consumers {
            self.liveness.add(consumer.liveness_probe());
        }
        if !consumers.is_empty() {
            let probes: Vec<_> = consumers.iter().map(ConsumerHandle::readiness_probe).collect();
            self.readiness.add("consumers", move || std::future::ready(probes.iter().try_for_each(|p| p())));
        }
        let app = crate::http::router(routes, self.readiness.clone(), self.liveness.clone());
        let shutdown = ctx.shutdown.clone();
        let http = tokio::spawn(crate::http::serve(ctx.listener, app, shutdown.clone()));
        shutdown.cancelled().await;
        futures_util::future::join_all(consumers.into_iter().map(ConsumerHandle::stop)).await;
        for Owned { name, watcher, abort } in self.tasks {
            if tokio::time::timeout(TASK_GRACE, watcher).await.is_err() {
                abort.abort();
                tracing::warn!(
                    task = name,
                    grace_s = TASK_GRACE.as_secs(),
                    "a background task did not end after shutdown; aborted"
                );
            }
        }
        self.broker.close().await;
        self.pool.close().await;
        http.await.context("the HTTP server task failed")?.context("the HTTP server failed")?;
        Ok(())
    }
}
