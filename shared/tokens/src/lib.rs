//! Access tokens for the importer and the activity-writer, from the
//! token-broker over RabbitMQ request/reply ([`protocol`]).
//!
//! [`TokenClient`] keeps each tenant's token in a local cache, so a
//! Salesforce call costs no round trip to the broker; asks the broker once
//! however many tasks want a token for the same tenant at once; and, through
//! [`TokenClient::with_token`], answers Salesforce's `INVALID_SESSION_ID`
//! with one retry on a fresh token. Only the token-broker ever sees a private
//! key; callers only ever see access tokens, and use one only if its
//! `instance_url` is a Salesforce host (or loopback, for sfsim): see
//! [`instance_url`].

pub mod instance_url;
pub mod protocol;

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use fa_amqp::{Broker, Listening, RpcClient, RpcError};
use fa_salesforce::Retry;
use secrecy::SecretString;

pub use protocol::{AccessToken, CONNECTIONS_EXCHANGE, QUEUE, Retired, TokenReply, TokenRequest};

/// Why there is no token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The tenant has no Salesforce connection: its work cannot succeed.
    #[error("tenant {tenant} has no Salesforce connection")]
    NotConnected {
        /// The tenant.
        tenant: String,
    },
    /// No usable token: the broker could not get one (Salesforce refused the
    /// exchange or did not answer; the connection shows the reason to the
    /// admin), or the token named an `instance_url` that is not Salesforce
    /// (`instance_url_not_allowed`) and was not used.
    #[error("no usable token from the token-broker ({code}): {message}")]
    Failed {
        /// The broker's code, e.g. `salesforce_rejected`, or
        /// `instance_url_not_allowed`.
        code: String,
        /// What happened.
        message: String,
    },
    /// The broker did not answer (not running, RabbitMQ unreachable).
    #[error("no answer from the token-broker: {0}")]
    Unavailable(String),
}

impl TokenError {
    /// The stable code: `not_connected`, the broker's code, or
    /// `token_broker_unavailable`.
    pub fn code(&self) -> &str {
        match self {
            Self::NotConnected { .. } => "not_connected",
            Self::Failed { code, .. } => code,
            Self::Unavailable(_) => "token_broker_unavailable",
        }
    }
}

/// The failure of a call made with [`TokenClient::with_token`].
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No token.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Salesforce answered with an error (after the retry on a fresh token,
    /// when it was `INVALID_SESSION_ID`).
    #[error(transparent)]
    Salesforce(#[from] fa_salesforce::Error),
}

type TenantSlot = Arc<tokio::sync::Mutex<Option<Arc<AccessToken>>>>;

/// Tokens from the token-broker, cached locally. Cheap to clone.
///
/// A cached token is dropped when the token-broker says its connection was
/// removed or replaced ([`Retired`], heard on [`CONNECTIONS_EXCHANGE`]), and
/// a reply minted for a retired connection is never cached. Whenever the
/// client (re)subscribes to that news it drops every cached token, since it
/// may have missed some.
#[derive(Clone)]
pub struct TokenClient {
    rpc: RpcClient,
    timeout: Duration,
    cache: Arc<Cache>,
    _listening: Arc<Listening>,
}

/// The cached tokens and the generations retired, shared with the listener.
#[derive(Default)]
struct Cache {
    tenants: Mutex<HashMap<String, TenantSlot>>,
    retired: Mutex<HashMap<String, i64>>,
}

impl Cache {
    fn tenants(&self) -> std::sync::MutexGuard<'_, HashMap<String, TenantSlot>> {
        self.tenants.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn is_retired(&self, tenant: &str, generation: i64) -> bool {
        let retired = self.retired.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        retired.get(tenant).is_some_and(|&up_to| generation <= up_to)
    }
}

struct News(Arc<Cache>);

impl fa_amqp::Listener for News {
    fn heard(&self, body: &[u8]) {
        let Ok(retired) = serde_json::from_slice::<Retired>(body) else {
            tracing::warn!("unreadable news on {CONNECTIONS_EXCHANGE}; dropping every cached token to be safe");
            self.0.tenants().clear();
            return;
        };
        {
            let mut floors = self.0.retired.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let floor = floors.entry(retired.tenant_id.clone()).or_insert(retired.generation);
            *floor = (*floor).max(retired.generation);
        }
        if self.0.tenants().remove(&retired.tenant_id).is_some() {
            tracing::info!(tenant_id = %retired.tenant_id, generation = retired.generation,
                "the tenant's connection changed; its cached token is dropped");
        }
    }

    fn resubscribed(&self) {
        self.0.tenants().clear();
    }
}

impl TokenClient {
    /// A client asking over `broker`; a request waits at most `timeout`
    /// for the broker's answer (a cold token costs one Salesforce login).
    pub fn new(broker: Broker, timeout: Duration) -> Self {
        let cache = Arc::new(Cache::default());
        let listening = broker.listen(CONNECTIONS_EXCHANGE, News(cache.clone()));
        Self { rpc: RpcClient::new(broker), timeout, cache, _listening: Arc::new(listening) }
    }

    fn slot(&self, tenant: &str) -> TenantSlot {
        self.cache.tenants().entry(tenant.to_owned()).or_default().clone()
    }

    /// The tenant's token: from the local cache, else from the broker (one
    /// request however many tasks ask at once).
    pub async fn token(&self, tenant: &str) -> Result<Arc<AccessToken>, TokenError> {
        let slot = self.slot(tenant);
        let mut held = slot.lock().await;
        if let Some(token) = &*held {
            metrics::counter!("fa_token_client_requests_total", "outcome" => "local").increment(1);
            return Ok(token.clone());
        }
        let token = self.ask(TokenRequest { tenant_id: tenant.to_owned(), invalid_token_id: None }).await;
        self.settle(tenant, &mut held, token)
    }

    /// A fresh token after Salesforce refused `stale` with
    /// `INVALID_SESSION_ID`. When another task already replaced it, that
    /// replacement is returned without asking the broker.
    pub async fn refresh(&self, tenant: &str, stale: &AccessToken) -> Result<Arc<AccessToken>, TokenError> {
        let slot = self.slot(tenant);
        let mut held = slot.lock().await;
        if let Some(token) = &*held
            && token.token_id != stale.token_id
        {
            return Ok(token.clone());
        }
        let request = TokenRequest { tenant_id: tenant.to_owned(), invalid_token_id: Some(stale.token_id.clone()) };
        let token = self.ask(request).await;
        self.settle(tenant, &mut held, token)
    }

    /// Drops the tenant's cached token.
    pub fn forget(&self, tenant: &str) {
        self.cache.tenants().remove(tenant);
    }

    fn settle(
        &self,
        tenant: &str,
        held: &mut Option<Arc<AccessToken>>,
        token: Result<AccessToken, TokenError>,
    ) -> Result<Arc<AccessToken>, TokenError> {
        let label = match &token {
            Ok(_) => "broker",
            Err(e) => e.code(),
        };
        metrics::counter!("fa_token_client_requests_total", "outcome" => label.to_owned()).increment(1);
        match token {
            Ok(token) => {
                let token = Arc::new(token);
                *held = Some(token.clone());
                Ok(token)
            }
            Err(e) => {
                *held = None;
                if matches!(e, TokenError::NotConnected { .. }) {
                    self.forget(tenant);
                }
                Err(e)
            }
        }
    }

    /// One request to the broker, asked once more when the answer is a token
    /// of a connection already retired (a reply that crossed the news).
    async fn ask(&self, request: TokenRequest) -> Result<AccessToken, TokenError> {
        let token = self.ask_once(&request).await?;
        if !self.cache.is_retired(&request.tenant_id, token.generation) {
            return Ok(token);
        }
        let token = self.ask_once(&request).await?;
        if self.cache.is_retired(&request.tenant_id, token.generation) {
            return Err(TokenError::Unavailable(format!(
                "the token-broker answered twice with a token of tenant {}'s removed or replaced connection",
                request.tenant_id
            )));
        }
        Ok(token)
    }

    /// One request to the broker; a broken connection is retried once.
    async fn ask_once(&self, request: &TokenRequest) -> Result<AccessToken, TokenError> {
        let body = serde_json::to_vec(request).map_err(|e| TokenError::Unavailable(e.to_string()))?;
        let mut attempt = 0;
        let reply = loop {
            attempt += 1;
            match self.rpc.call(QUEUE, body.clone(), Some(&request.tenant_id), self.timeout).await {
                Ok(reply) => break reply,
                Err(RpcError::Disconnected) if attempt < 2 => continue,
                Err(e) => return Err(TokenError::Unavailable(e.to_string())),
            }
        };
        match serde_json::from_slice::<TokenReply>(&reply) {
            Ok(TokenReply::Token { access_token, instance_url, token_id, organization_id, user_id, generation }) => {
                if let Err(refusal) = instance_url::for_client(&instance_url) {
                    // The broker checks every grant, so this is a reply that
                    // did not come from it (or a broker that does not check):
                    // the token goes nowhere.
                    tracing::warn!(tenant_id = %request.tenant_id, %token_id, reason = %refusal,
                        "refused a token whose instance_url is not Salesforce; the token is not used");
                    return Err(TokenError::Failed {
                        code: instance_url::Refusal::CODE.to_owned(),
                        message: format!(
                            "{refusal}; the token was refused and not used (check the tenant's connection at the \
                             token-broker, and that only the token-broker serves {QUEUE})"
                        ),
                    });
                }
                Ok(AccessToken {
                    token: SecretString::from(access_token),
                    instance_url,
                    token_id,
                    organization_id,
                    user_id,
                    generation,
                })
            }
            Ok(TokenReply::Error { code, .. }) if code == "not_connected" => {
                Err(TokenError::NotConnected { tenant: request.tenant_id.clone() })
            }
            Ok(TokenReply::Error { code, message }) => Err(TokenError::Failed { code, message }),
            Err(e) => Err(TokenError::Unavailable(format!("unreadable reply from the token-broker: {e}"))),
        }
    }

    /// Runs `call` with the tenant's token; when Salesforce answers
    /// `INVALID_SESSION_ID` (the session expired or was revoked), gets a
    /// fresh token and runs it once more.
    pub async fn with_token<T, F, Fut>(&self, tenant: &str, mut call: F) -> Result<T, CallError>
    where
        F: FnMut(Arc<AccessToken>) -> Fut,
        Fut: Future<Output = Result<T, fa_salesforce::Error>>,
    {
        let token = self.token(tenant).await?;
        match call(token.clone()).await {
            Err(e) if e.retry() == Retry::RefreshToken => {
                tracing::info!(tenant_id = tenant, token_id = %token.token_id, "Salesforce refused the session; retrying once with a fresh token");
                let fresh = self.refresh(tenant, &token).await?;
                Ok(call(fresh).await?)
            }
            other => Ok(other?),
        }
    }
}
