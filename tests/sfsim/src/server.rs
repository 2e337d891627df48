//! Running sfsim: as a binary, or in-process on port 0 for tests.

use std::net::SocketAddr;

use tokio::{net::TcpListener, task::JoinHandle};

use crate::store::{Sim, SimConfig};

/// A running sfsim.
pub struct Server {
    /// `http://127.0.0.1:<port>`: both the login URL and the instance URL.
    pub url: String,
    /// The simulator's state, for tests that set it up directly.
    pub sim: Sim,
    task: JoinHandle<()>,
}

/// Every route: Salesforce's and the control API.
pub fn app(sim: Sim) -> axum::Router {
    crate::api::router(sim.clone()).merge(crate::control::router(sim))
}

impl Server {
    /// Binds `addr` (port 0 for any) and serves until dropped or stopped.
    pub async fn start(addr: SocketAddr, config: SimConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let url = format!("http://{local}");
        let sim = Sim::new(config);
        sim.set_instance_url(url.clone());
        let router = app(sim.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "sfsim stopped");
            }
        });
        Ok(Self { url, sim, task })
    }

    /// Starts on a free loopback port with the default configuration.
    pub async fn start_local() -> std::io::Result<Self> {
        Self::start(SocketAddr::from(([127, 0, 0, 1], 0)), SimConfig::default()).await
    }

    /// Stops serving.
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
