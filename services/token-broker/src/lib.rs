//! The token-broker: holds each tenant's Salesforce connection, mints and
//! caches access tokens, serves the connection admin API.
//!
//! The binary (`src/main.rs`) only parses the command line and hands over
//! to [`fa_runtime::launch::run`]; the service is [`run`], which tests start
//! in-process on port 0.
//!
//! Module map, one noun each:
//! - [`api`]: the admin API (admin-api.yaml, outside this repository, `token-broker` paths).
//! - [`registration`]: the connection form's fields, checked.
//! - [`private_key`]: the pasted key, parsed in every form admins paste it.
//! - [`sealed`]: keys at rest under AES-256-GCM with a key id.
//! - [`login_url`]: the login URL allowlist.
//! - [`hints`]: what to tell the admin: Salesforce's login refusals as the
//!   setting to fix, the pasted key's refusals as what to paste instead,
//!   the connection form's and the user links' refusals.
//! - [`connection`], [`user_link`]: the rows.
//! - [`token`]: the per-tenant token cache and the JWT bearer exchange.
//! - [`token_queue`]: the token service on RabbitMQ (`fa_tokens` is its
//!   client); [`requesters`]: who may use it.
//!
//! **Architecture invariant:** only the token-broker ever reads a private
//! key, and it leaves the process only as AES-256-GCM ciphertext.
//!
//! It publishes `import.requested` to `salesforce.commands`, serves token
//! requests on `token-broker.tokens`, and tells every replica and service
//! on the fanout exchange `token-broker.connections` when a connection was
//! removed or replaced (`fa_tokens::Retired`).

pub mod api;
pub mod config;
pub mod connection;
pub mod hints;
pub mod login_url;
pub mod private_key;
pub mod registration;
pub mod requesters;
pub mod sealed;
pub mod token;
pub mod token_queue;
pub mod user_link;

use std::{sync::Arc, time::Duration};

use fa_amqp::{ExchangeKind, RpcServerOptions, Topology};
use fa_messages::topology;
use fa_runtime::{admin::AdminToken, host::Host, launch::Context};

pub use config::Config;

/// The binary's name: `app_id` of what it publishes, `service` of its metrics.
pub const SERVICE: &str = "token-broker";

/// How long a failed exchange is answered from memory before the next try.
const FAILURE_HOLD: Duration = Duration::from_secs(10);

/// The exchanges and queues the token-broker declares.
///
/// It also declares the importer's `importer.commands` (exactly as the
/// importer does), so the `import.requested` of a connection made before
/// the importer ever started waits in it instead of being unroutable.
pub fn topology() -> Topology {
    Topology::new()
        .exchange(topology::COMMANDS_EXCHANGE, ExchangeKind::Direct)
        .queue(topology::IMPORTER_COMMANDS_QUEUE, &[(topology::COMMANDS_EXCHANGE, topology::IMPORT_REQUESTED)])
        .rpc_queue(fa_tokens::QUEUE)
        // Declared before anything is published, so a disconnect in the
        // first moments never publishes to a missing exchange.
        .exchange(fa_tokens::CONNECTIONS_EXCHANGE, ExchangeKind::Fanout)
}

/// Runs the token-broker until `ctx.shutdown` is cancelled.
pub async fn run(config: Config, ctx: Context) -> anyhow::Result<()> {
    // jsonwebtoken panics at the first signature without a provider; make sure.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let host = Host::start(&config.common, topology()).await?;
    let previous: Vec<[u8; 32]> = config.previous_key_encryption_keys.iter().map(|k| *k.expose()).collect();
    let keyring = Arc::new(sealed::Keyring::new(config.key_encryption_key.expose(), &previous));
    tracing::info!(
        key_id = keyring.current_id(),
        previous = previous.len(),
        "private keys are sealed under this key id"
    );
    let http = fa_salesforce::http_client()?;
    let tokens = Arc::new(token::Tokens::new(
        host.pool.clone(),
        keyring.clone(),
        http.clone(),
        config.login_url_allowlist.clone(),
        FAILURE_HOLD,
    ));
    let requesters = config.token_requesters.clone().with_own(host.broker.user());
    tracing::info!(%requesters, "token requests are answered for these RabbitMQ users");
    let server = host
        .broker
        .serve_rpc(RpcServerOptions::new(fa_tokens::QUEUE), token_queue::TokenQueue::new(tokens.clone(), requesters));
    let _news = host.broker.listen(fa_tokens::CONNECTIONS_EXCHANGE, token::News(tokens.clone()));
    let api = Arc::new(api::Api {
        pool: host.pool.clone(),
        keyring,
        allowlist: config.login_url_allowlist.clone(),
        http,
        tokens,
        broker: host.broker.clone(),
        api_version: config.api_version.clone(),
    });
    let routes = api::router(api, AdminToken::new(config.admin_token.clone()));
    host.serve(routes, ctx, vec![server]).await
}
