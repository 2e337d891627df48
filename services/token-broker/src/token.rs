//! Access tokens: minted by the OAuth 2.0 JWT bearer exchange, cached per
//! tenant, and shared by every caller.
//!
//! Salesforce gives no expiry and no refresh token (docs/salesforce-facts.md §1): a token
//! lives until a call answers `INVALID_SESSION_ID`. So a token is cached
//! until a caller reports it invalid, by its `token_id`. Per tenant one
//! exchange runs at a time and everyone waiting shares its result: 200 cold
//! requests cause one exchange, and 50 callers reporting the same dead token
//! cause one refresh (a report naming a token that is no longer the current
//! one gets the current one). A failed exchange is remembered for a short
//! while, so a broken connection is not hammered (logins are rate-limited).
//!
//! A token belongs to one generation of the connection (see
//! [`fa_tokens::Retired`]). Before a cached token is handed out, the row's
//! generation is read (one primary-key lookup; callers cache tokens, so the
//! broker is asked rarely): a token of a removed or replaced connection is
//! never handed out again, by any replica. Removing or replacing a
//! connection [`retire`](Tokens::retire)s the old generation: the replica
//! that did it, and every other on hearing the news, drops the token it
//! holds and revokes its Salesforce session.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use fa_messages::TenantId;
use fa_salesforce::oauth::{self, ExchangeError, TokenGrant};
use fa_tokens::{ErrorCode, TokenSource};
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::PgPool;

use crate::{
    connection::{self, StoredConnection},
    hints::Cause,
    login_url::{Allowlist, InstanceUrlRefusal},
    private_key::RsaPrivateKey,
    sealed::{Binding, Keyring, OpenError},
};

/// A token handed out.
#[derive(Debug)]
pub struct Issued {
    /// The access token.
    pub access_token: SecretString,
    /// Where API calls go.
    pub instance_url: String,
    /// Names this token when a caller reports it invalid (a digest of it,
    /// not the token).
    pub token_id: String,
    /// The org, from the exchange.
    pub organization_id: Option<String>,
    /// The connection's own user, from the exchange.
    pub user_id: Option<String>,
    /// The generation of the connection it was minted for.
    pub generation: i64,
}

impl Issued {
    /// Wraps a grant for the connection of `generation` whose `instance_url`
    /// a bearer token may be sent to ([`Allowlist::check_instance_url`]);
    /// otherwise the token is dropped unused and the refusal says why.
    pub fn from_grant(grant: TokenGrant, allowlist: &Allowlist, generation: i64) -> Result<Self, InstanceUrlRefusal> {
        allowlist.check_instance_url(&grant.instance_url)?;
        let token_id = token_id(grant.access_token.expose_secret());
        Ok(Self {
            access_token: grant.access_token,
            instance_url: grant.instance_url,
            token_id,
            organization_id: grant.organization_id,
            user_id: grant.user_id,
            generation,
        })
    }
}

/// The first 16 hex digits of the token's SHA-256: enough to tell tokens
/// apart, useless to call Salesforce with.
pub fn token_id(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    digest.as_ref().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Why no token could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// The tenant has no connection.
    #[error("tenant {0} has no Salesforce connection")]
    NotConnected(String),
    /// Salesforce refused the exchange.
    #[error("Salesforce refused the token exchange: {error}: {description}")]
    Rejected {
        /// Salesforce's `error`.
        error: String,
        /// Salesforce's `error_description`.
        description: String,
    },
    /// The login URL did not answer.
    #[error("Salesforce's login URL did not answer: {0}")]
    Unreachable(String),
    /// The stored login URL is not on the allowlist (the row was edited, or
    /// the allowlist narrowed): no assertion is signed for it.
    #[error(
        "the connection's login_url {0} is not allowed by FA_SF_LOGIN_URL_ALLOWLIST; no token was requested. \
         Register the connection again with https://login.salesforce.com, https://test.salesforce.com or the org's \
         My Domain"
    )]
    LoginUrlNotAllowed(String),
    /// The grant named an `instance_url` no token is sent to.
    #[error(
        "the token exchange answered with an unusable instance_url: {0}; the token was not used. Check the \
         connection's login_url (register it again), or add the host to FA_SF_LOGIN_URL_ALLOWLIST if it really \
         is the org's"
    )]
    InstanceUrlNotAllowed(InstanceUrlRefusal),
    /// Our side failed (database, a key that no longer opens).
    #[error("{0}")]
    Internal(String),
}

impl TokenError {
    /// The stable code callers branch on.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotConnected(_) => ErrorCode::NotConnected,
            Self::Rejected { .. } => ErrorCode::SalesforceRejected,
            Self::Unreachable(_) => ErrorCode::SalesforceUnreachable,
            Self::LoginUrlNotAllowed(_) => ErrorCode::LoginUrlNotAllowed,
            Self::InstanceUrlNotAllowed(_) => InstanceUrlRefusal::CODE,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }
}

enum State {
    Empty,
    Ready(Arc<Issued>),
    Failed { error: TokenError, at: Instant },
}

struct Slot {
    state: tokio::sync::Mutex<State>,
}

/// The tenant's way to a token.
pub struct Tokens {
    pool: PgPool,
    keyring: Arc<Keyring>,
    http: reqwest::Client,
    allowlist: Allowlist,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    failure_hold: Duration,
}

/// What answered a request, for the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Served {
    Cached,
    Exchanged,
}

impl Tokens {
    /// Tokens for the tenants of `pool`, handed out only for an
    /// `instance_url` that `allowlist` accepts; a failed exchange is answered
    /// from memory for `failure_hold`.
    pub fn new(
        pool: PgPool,
        keyring: Arc<Keyring>,
        http: reqwest::Client,
        allowlist: Allowlist,
        failure_hold: Duration,
    ) -> Self {
        for outcome in ["cached", "exchanged", "not_connected", "failed"] {
            metrics::counter!("fa_token_requests_total", "outcome" => outcome).increment(0);
        }
        metrics::counter!("fa_token_exchanges_total", "outcome" => "succeeded", "error" => "").increment(0);
        for outcome in ["revoked", "failed"] {
            metrics::counter!("fa_token_revocations_total", "outcome" => outcome).increment(0);
        }
        Self { pool, keyring, http, allowlist, slots: Mutex::new(HashMap::new()), failure_hold }
    }

    fn slot(&self, tenant: &TenantId) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        slots
            .entry(tenant.as_str().to_owned())
            .or_insert_with(|| Arc::new(Slot { state: tokio::sync::Mutex::new(State::Empty) }))
            .clone()
    }

    /// The tenant's tokens, as a [`TokenSource`] for
    /// [`fa_tokens::with_fresh_token`].
    pub fn of<'a>(&'a self, tenant: &'a TenantId) -> TenantTokens<'a> {
        TenantTokens { tokens: self, tenant }
    }

    /// The tenant's current token; a new one when `invalid` names the
    /// current one (the caller saw `INVALID_SESSION_ID` with it).
    pub async fn get(&self, tenant: &TenantId, invalid: Option<&str>) -> Result<Arc<Issued>, TokenError> {
        let outcome = self.get_inner(tenant, invalid).await;
        let label = match &outcome {
            Ok((_, Served::Cached)) => "cached",
            Ok((_, Served::Exchanged)) => "exchanged",
            Err(TokenError::NotConnected(_)) => "not_connected",
            Err(_) => "failed",
        };
        metrics::counter!("fa_token_requests_total", "outcome" => label).increment(1);
        outcome.map(|(issued, _)| issued)
    }

    async fn get_inner(&self, tenant: &TenantId, invalid: Option<&str>) -> Result<(Arc<Issued>, Served), TokenError> {
        let slot = self.slot(tenant);
        let mut state = slot.state.lock().await;
        match &*state {
            Ready(issued) if invalid != Some(issued.token_id.as_str()) => {
                match connection::generation(&self.pool, tenant).await {
                    Ok(Some(current)) if current == issued.generation => return Ok((issued.clone(), Served::Cached)),
                    Ok(Some(_)) => {
                        tracing::info!(tenant_id = %tenant, token_id = %issued.token_id,
                            "the connection was replaced since this token was minted; minting one for the new one");
                    }
                    Ok(None) => {
                        let stale = issued.clone();
                        *state = Empty;
                        drop(state);
                        self.forget(tenant);
                        self.revoke(tenant, &stale).await;
                        return Err(TokenError::NotConnected(tenant.to_string()));
                    }
                    Err(e) => return Err(internal("reading the connection's generation", &e)),
                }
            }
            Ready(issued) => {
                tracing::info!(tenant_id = %tenant, token_id = %issued.token_id, "a caller reports the token invalid; minting a new one");
            }
            Failed { error, at } if at.elapsed() < self.failure_hold => return Err(error.clone()),
            _ => {}
        }
        match self.exchange(tenant).await {
            Ok(issued) => {
                let issued = Arc::new(issued);
                *state = Ready(issued.clone());
                Ok((issued, Served::Exchanged))
            }
            Err(TokenError::NotConnected(t)) => {
                *state = Empty;
                drop(state);
                self.forget(tenant);
                Err(TokenError::NotConnected(t))
            }
            Err(error) => {
                *state = Failed { error: error.clone(), at: Instant::now() };
                Err(error)
            }
        }
    }

    /// The tenant's connection of `generation` (and older) was removed or
    /// replaced: drops the token held for it and revokes its session, unless
    /// it is `keep` (Salesforce handed the same session to the new
    /// connection).
    pub async fn retire(&self, tenant: &TenantId, generation: i64, keep: Option<&str>) {
        let slot = self.slot(tenant);
        let mut state = slot.state.lock().await;
        let held = match &*state {
            Ready(issued) if issued.generation <= generation => Some(issued.clone()),
            Ready(_) => return,
            _ => None,
        };
        *state = Empty;
        drop(state);
        if let Some(issued) = held
            && keep != Some(issued.token_id.as_str())
        {
            self.revoke(tenant, &issued).await;
        }
    }

    /// Ends the token's Salesforce session; a failure is logged and counted
    /// (the session then ends with the org's inactivity timeout).
    async fn revoke(&self, tenant: &TenantId, issued: &Issued) {
        match oauth::revoke(&self.http, &issued.instance_url, &issued.access_token).await {
            Ok(()) => {
                metrics::counter!("fa_token_revocations_total", "outcome" => "revoked").increment(1);
                tracing::info!(tenant_id = %tenant, token_id = %issued.token_id, "revoked the session of a retired connection");
            }
            Err(e) => {
                metrics::counter!("fa_token_revocations_total", "outcome" => "failed").increment(1);
                tracing::warn!(tenant_id = %tenant, token_id = %issued.token_id, error = %e,
                    "could not revoke the session of a retired connection; it ends with the org's session timeout");
            }
        }
    }

    /// Starts the cache of a tenant with the token its registration got.
    pub async fn seed(&self, tenant: &TenantId, issued: Issued) {
        let slot = self.slot(tenant);
        *slot.state.lock().await = Ready(Arc::new(issued));
    }

    /// Drops whatever is cached for the tenant (disconnected).
    pub fn forget(&self, tenant: &TenantId) {
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(tenant.as_str());
    }

    /// The connection's private key, opened with the fields it was
    /// registered with, and sealed again under the current encryption key
    /// when it was not (rotation, or a key sealed before the binding).
    async fn stored_key(&self, tenant: &TenantId, stored: &StoredConnection) -> Result<RsaPrivateKey, TokenError> {
        let binding = Binding {
            tenant: tenant.as_str(),
            login_url: &stored.login_url,
            username: &stored.username,
            consumer_key: &stored.consumer_key,
        };
        let sealed = &stored.sealed_key;
        let (der, legacy) = match self.keyring.open(&sealed.key_id, &sealed.blob, &binding.aad()) {
            Ok(der) => (der, false),
            Err(OpenError::Corrupt) => match self.keyring.open(&sealed.key_id, &sealed.blob, binding.legacy_aad()) {
                Ok(der) => (der, true),
                Err(e) => {
                    tracing::error!(tenant_id = %tenant, error = %e,
                        "the stored private key does not open with the connection's tenant, login URL, username and \
                         consumer key: the row was edited or copied; register the connection again");
                    let error = TokenError::Internal(format!(
                        "{e}. The key opens only with the tenant, login URL, username and consumer key it was \
                         registered with; register the connection again"
                    ));
                    record_failure(&self.pool, tenant, error.code(), &error.to_string()).await;
                    return Err(error);
                }
            },
            // The encryption key it names is not configured: the row is fine,
            // the deployment is not (restore that key), so nothing is recorded
            // against the admin's connection.
            Err(e @ OpenError::UnknownKey { .. }) => {
                tracing::error!(tenant_id = %tenant, error = %e, "cannot decrypt the stored private key");
                return Err(TokenError::Internal(e.to_string()));
            }
        };
        let key = tokio::task::spawn_blocking(move || RsaPrivateKey::from_pkcs8_der(der.expose_secret()))
            .await
            .map_err(|e| internal("reading the private key", &e))?
            .map_err(|e| TokenError::Internal(format!("the stored private key is unusable: {}", e.reason())))?;
        if legacy || !self.keyring.is_current(&sealed.key_id) {
            // Rotation, or a key sealed before the binding: store it under
            // the current key, bound to its registration.
            let resealed = self.keyring.seal(key.pkcs8_der(), &binding.aad());
            if let Err(e) = connection::reseal(&self.pool, tenant, &sealed.blob, &resealed).await {
                tracing::warn!(tenant_id = %tenant, error = %e, "could not re-encrypt the key under the current key; will retry next exchange");
            } else {
                tracing::info!(tenant_id = %tenant, from = %sealed.key_id, to = %resealed.key_id, bound = legacy,
                    "re-encrypted the private key under the current encryption key, bound to its registration");
            }
        }
        Ok(key)
    }

    /// One exchange with the stored connection, recorded on it.
    async fn exchange(&self, tenant: &TenantId) -> Result<Issued, TokenError> {
        let stored = connection::load(&self.pool, tenant)
            .await
            .map_err(|e| internal("reading the connection", &e))?
            .ok_or_else(|| TokenError::NotConnected(tenant.to_string()))?;
        // The row is not trusted: its login URL passes the allowlist again,
        // and the key opens only with the fields it was registered with.
        if let Err(refusal) = self.allowlist.check(&stored.login_url) {
            let error = TokenError::LoginUrlNotAllowed(stored.login_url.clone());
            tracing::error!(tenant_id = %tenant, login_url = %stored.login_url, reason = ?refusal,
                "the stored login_url is not on the allowlist; no assertion is signed");
            record_failure(&self.pool, tenant, error.code(), &error.to_string()).await;
            return Err(error);
        }
        let key = self.stored_key(tenant, &stored).await?;
        let outcome = exchange(&self.http, &key, &stored.consumer_key, &stored.username, &stored.login_url)
            .await
            .map_err(|e| match e {
                ExchangeError::Rejected { error, error_description, .. } => {
                    let detail = format!("{error}: {error_description}");
                    (TokenError::Rejected { error, description: error_description }, detail)
                }
                ExchangeError::Unreachable(why) => (TokenError::Unreachable(why.clone()), why),
            })
            .and_then(|grant| {
                Issued::from_grant(grant, &self.allowlist, stored.generation).map_err(|refusal| {
                    let error = TokenError::InstanceUrlNotAllowed(refusal);
                    let detail = error.to_string();
                    (error, detail)
                })
            });
        match outcome {
            Ok(issued) => {
                if let Err(e) = connection::record_token(&self.pool, tenant, &issued.instance_url).await {
                    tracing::warn!(tenant_id = %tenant, error = %e, "could not record the token on the connection");
                }
                tracing::info!(tenant_id = %tenant, token_id = %issued.token_id, "minted an access token");
                Ok(issued)
            }
            Err((error, detail)) => {
                tracing::warn!(tenant_id = %tenant, code = %error.code(), detail = %detail, "token exchange failed; the connection is failing");
                record_failure(&self.pool, tenant, error.code(), &detail).await;
                Err(error)
            }
        }
    }
}

use State::{Empty, Failed, Ready};

/// One tenant's tokens from the broker's own cache ([`Tokens::of`]): a
/// fresh token is the report of the refused one by its `token_id`, as a
/// caller over RabbitMQ makes it.
pub struct TenantTokens<'a> {
    tokens: &'a Tokens,
    tenant: &'a TenantId,
}

impl TokenSource for TenantTokens<'_> {
    type Token = Arc<Issued>;
    type Error = TokenError;

    fn tenant(&self) -> &TenantId {
        self.tenant
    }

    fn token_id<'t>(&self, token: &'t Arc<Issued>) -> &'t str {
        &token.token_id
    }

    async fn token(&self) -> Result<Arc<Issued>, TokenError> {
        self.tokens.get(self.tenant, None).await
    }

    async fn refresh(&self, stale: &Arc<Issued>) -> Result<Arc<Issued>, TokenError> {
        self.tokens.get(self.tenant, Some(&stale.token_id)).await
    }
}

/// A replica hearing that a connection was removed or replaced (by another
/// replica, or by itself) retires the token it holds for it.
pub struct News(pub Arc<Tokens>);

impl fa_amqp::Listener for News {
    fn heard(&self, body: &[u8]) {
        let Ok(retired) = serde_json::from_slice::<fa_tokens::Retired>(body) else {
            tracing::warn!("unreadable news on {}; ignored", fa_tokens::CONNECTIONS_EXCHANGE);
            return;
        };
        let tokens = self.0.clone();
        tokio::spawn(async move {
            tokens.retire(&retired.tenant_id, retired.generation, retired.keep_token_id.as_deref()).await;
        });
    }

    /// Nothing to catch up on: a token is handed out only after its
    /// connection's generation was read from the database.
    fn resubscribed(&self) {}
}

/// Shows the admin why the connection fails (its `last_error`); a database
/// that cannot take it is logged, the failure itself is still answered.
async fn record_failure(pool: &PgPool, tenant: &TenantId, code: ErrorCode, detail: &str) {
    if let Err(db) = connection::record_failure(pool, tenant, code.as_str(), detail).await {
        tracing::warn!(tenant_id = %tenant, error = %db, "could not record the failure on the connection");
    }
}

fn internal(what: &str, e: &dyn std::fmt::Display) -> TokenError {
    tracing::error!(error = %e, "{what} failed");
    TokenError::Internal(format!("{what} failed"))
}

/// How long the signed assertion is valid: within the 3 minutes Salesforce
/// allows, with room for a skewed clock.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(150);

#[derive(serde::Serialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: &'static str,
    exp: i64,
}

/// Signs the JWT bearer assertion (RS256; `iss` the consumer key, `sub` the
/// username, `aud` the login or test host) and exchanges it, recording the
/// exchange in the metrics.
pub async fn exchange(
    http: &reqwest::Client,
    key: &RsaPrivateKey,
    consumer_key: &str,
    username: &str,
    login_url: &str,
) -> Result<TokenGrant, ExchangeError> {
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + ASSERTION_LIFETIME.as_secs() as i64;
    let claims =
        Claims { iss: consumer_key.to_owned(), sub: username.to_owned(), aud: oauth::audience_for(login_url), exp };
    // An RSA signature with a key of up to 8192 bits: off the async workers.
    let signing = key.encoding_key().clone();
    let assertion = tokio::task::spawn_blocking(move || {
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &claims, &signing)
    })
    .await
    .map_err(|e| ExchangeError::Unreachable(format!("could not sign the assertion: {e}")))?
    .map_err(|e| ExchangeError::Unreachable(format!("could not sign the assertion: {e}")))?;
    let started = Instant::now();
    let outcome = oauth::exchange(http, login_url, &assertion).await;
    let (label, error) = match &outcome {
        Ok(_) => ("succeeded", String::new()),
        Err(ExchangeError::Rejected { error, error_description, .. }) => {
            ("failed", Cause::of(error, error_description).as_str().to_owned())
        }
        Err(ExchangeError::Unreachable(_)) => ("failed", "unreachable".to_owned()),
    };
    metrics::counter!("fa_token_exchanges_total", "outcome" => label, "error" => error).increment(1);
    metrics::histogram!("fa_token_exchange_duration_seconds").record(started.elapsed().as_secs_f64());
    outcome
}
