//! Access tokens for the importer and the activity-writer, from the
//! token-broker over RabbitMQ request/reply ([`protocol`]).
//!
//! [`TokenClient`] keeps each tenant's token in a local cache, so a
//! Salesforce call costs no round trip to the broker, and asks the broker
//! once however many tasks want a token for the same tenant at once.
//! [`refresh`] is the one answer to Salesforce's `INVALID_SESSION_ID` (a
//! fresh token and one retry), for every service and whatever the token's
//! source. Only the token-broker ever sees a private key; callers only ever
//! see access tokens, and use one only if its `instance_url` is a Salesforce
//! host (or loopback, for sfsim): see [`instance_url`].

pub mod instance_url;
pub mod protocol;
pub mod refresh;

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use fa_amqp::{Broker, Listening, RpcClient, RpcError};
use fa_messages::{InvalidId, TenantId};
use secrecy::SecretString;

pub use protocol::{AccessToken, CONNECTIONS_EXCHANGE, ErrorCode, QUEUE, Retired, TokenReply, TokenRequest};
pub use refresh::{CallError, Session, TokenSource, with_fresh_token};

/// Why there is no token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The tenant has no Salesforce connection: its work cannot succeed.
    #[error("tenant {tenant} has no Salesforce connection")]
    NotConnected {
        /// The tenant.
        tenant: TenantId,
    },
    /// No usable token: the broker could not get one (Salesforce refused the
    /// exchange or did not answer; the connection shows the reason to the
    /// admin), the token named an `instance_url` that is not Salesforce
    /// (`instance_url_not_allowed`) and was not used, or the tenant id is
    /// none (`invalid_request`).
    #[error("no usable token from the token-broker ({code}): {message}")]
    Failed {
        /// The broker's code, e.g. [`ErrorCode::SalesforceRejected`], or
        /// [`ErrorCode::InstanceUrlNotAllowed`].
        code: ErrorCode,
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
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotConnected { .. } => ErrorCode::NotConnected,
            Self::Failed { code, .. } => *code,
            Self::Unavailable(_) => ErrorCode::TokenBrokerUnavailable,
        }
    }
}

/// Text that is no tenant id, refused as the broker refuses it
/// (`invalid_request`).
impl From<InvalidId> for TokenError {
    fn from(e: InvalidId) -> Self {
        Self::Failed { code: ErrorCode::InvalidRequest, message: e.to_string() }
    }
}

/// A tenant as [`TokenClient`] is asked about it. The services pass their
/// checked [`TenantId`]; text (tests, tools) is checked on the way in, and
/// text that is no tenant id gets `invalid_request` without a round trip, as
/// the broker would answer it.
pub trait IntoTenantId {
    /// The tenant id.
    ///
    /// # Errors
    /// [`InvalidId`] for text that is no tenant id.
    fn into_tenant_id(self) -> Result<TenantId, InvalidId>;
}

impl IntoTenantId for TenantId {
    fn into_tenant_id(self) -> Result<TenantId, InvalidId> {
        Ok(self)
    }
}

impl IntoTenantId for &TenantId {
    fn into_tenant_id(self) -> Result<TenantId, InvalidId> {
        Ok(self.clone())
    }
}

impl IntoTenantId for &str {
    fn into_tenant_id(self) -> Result<TenantId, InvalidId> {
        TenantId::new(self)
    }
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
    tenants: Mutex<HashMap<TenantId, TenantSlot>>,
    retired: Mutex<HashMap<TenantId, i64>>,
}

impl Cache {
    fn tenants(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, TenantSlot>> {
        self.tenants.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn is_retired(&self, tenant: &TenantId, generation: i64) -> bool {
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

    fn slot(&self, tenant: &TenantId) -> TenantSlot {
        self.cache.tenants().entry(tenant.clone()).or_default().clone()
    }

    /// The tenant's tokens, as a [`TokenSource`] for [`with_fresh_token`]
    /// and [`Session`].
    pub fn tenant<'a>(&'a self, tenant: &'a TenantId) -> TenantTokens<'a> {
        TenantTokens { client: self, tenant }
    }

    /// The tenant's token: from the local cache, else from the broker (one
    /// request however many tasks ask at once).
    pub async fn token(&self, tenant: impl IntoTenantId) -> Result<Arc<AccessToken>, TokenError> {
        let tenant = tenant.into_tenant_id()?;
        let slot = self.slot(&tenant);
        let mut held = slot.lock().await;
        if let Some(token) = &*held {
            metrics::counter!("fa_token_client_requests_total", "outcome" => "local").increment(1);
            return Ok(token.clone());
        }
        let token = self.ask(TokenRequest { tenant_id: tenant.clone(), invalid_token_id: None }).await;
        self.settle(&tenant, &mut held, token)
    }

    /// A fresh token after Salesforce refused `stale` with
    /// `INVALID_SESSION_ID`. When another task already replaced it, that
    /// replacement is returned without asking the broker.
    pub async fn refresh(
        &self,
        tenant: impl IntoTenantId,
        stale: &AccessToken,
    ) -> Result<Arc<AccessToken>, TokenError> {
        let tenant = tenant.into_tenant_id()?;
        let slot = self.slot(&tenant);
        let mut held = slot.lock().await;
        if let Some(token) = &*held
            && token.token_id != stale.token_id
        {
            return Ok(token.clone());
        }
        let request = TokenRequest { tenant_id: tenant.clone(), invalid_token_id: Some(stale.token_id.clone()) };
        let token = self.ask(request).await;
        self.settle(&tenant, &mut held, token)
    }

    /// Drops the tenant's cached token.
    pub fn forget(&self, tenant: impl IntoTenantId) {
        if let Ok(tenant) = tenant.into_tenant_id() {
            self.cache.tenants().remove(&tenant);
        }
    }

    fn settle(
        &self,
        tenant: &TenantId,
        held: &mut Option<Arc<AccessToken>>,
        token: Result<AccessToken, TokenError>,
    ) -> Result<Arc<AccessToken>, TokenError> {
        let label = match &token {
            Ok(_) => "broker",
            Err(e) => e.code().as_str(),
        };
        metrics::counter!("fa_token_client_requests_total", "outcome" => label).increment(1);
        match token {
            Ok(token) => {
                let token = Arc::new(token);
                *held = Some(token.clone());
                Ok(token)
            }
            Err(e) => {
                *held = None;
                if matches!(e, TokenError::NotConnected { .. }) {
                    self.cache.tenants().remove(tenant);
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
            match self.rpc.call(QUEUE, body.clone(), Some(request.tenant_id.as_str()), self.timeout).await {
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
                        code: instance_url::Refusal::CODE,
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
            Ok(TokenReply::Error { code: ErrorCode::NotConnected, .. }) => {
                Err(TokenError::NotConnected { tenant: request.tenant_id.clone() })
            }
            Ok(TokenReply::Error { code, message }) => Err(TokenError::Failed { code, message }),
            Err(e) => Err(TokenError::Unavailable(format!("unreadable reply from the token-broker: {e}"))),
        }
    }

    /// Runs `call` with the tenant's token; when Salesforce answers
    /// `INVALID_SESSION_ID` (the session expired or was revoked), gets a
    /// fresh token and runs it once more ([`with_fresh_token`]).
    ///
    /// # Errors
    /// As [`Session::call`].
    pub async fn with_token<T, F, Fut>(&self, tenant: impl IntoTenantId, call: F) -> Result<T, CallError>
    where
        F: FnMut(Arc<AccessToken>) -> Fut,
        Fut: Future<Output = Result<T, fa_salesforce::Error>>,
    {
        let tenant = tenant.into_tenant_id().map_err(|e| CallError::Token(e.into()))?;
        with_fresh_token(&self.tenant(&tenant), call).await
    }
}

/// One tenant's tokens from a [`TokenClient`] ([`TokenClient::tenant`]).
#[derive(Clone, Copy)]
pub struct TenantTokens<'a> {
    client: &'a TokenClient,
    tenant: &'a TenantId,
}

impl TokenSource for TenantTokens<'_> {
    type Token = Arc<AccessToken>;
    type Error = TokenError;

    fn tenant(&self) -> &TenantId {
        self.tenant
    }

    fn token_id<'t>(&self, token: &'t Self::Token) -> &'t str {
        &token.token_id
    }

    async fn token(&self) -> Result<Self::Token, TokenError> {
        self.client.token(self.tenant).await
    }

    async fn refresh(&self, stale: &Self::Token) -> Result<Self::Token, TokenError> {
        self.client.refresh(self.tenant, stale).await
    }
}
