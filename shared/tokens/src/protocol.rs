//! The token request and its reply, as they travel over RabbitMQ.
//!
//! A request goes to the queue [`QUEUE`] (the token-broker's; see
//! `fa_amqp::rpc`), its reply straight back to the caller through direct
//! reply-to. Replies carry access tokens, so they are never persisted and
//! never logged.

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

/// The token-broker's request queue.
pub const QUEUE: &str = "token-broker.tokens";

/// Asks for the tenant's token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRequest {
    /// The tenant.
    pub tenant_id: String,
    /// The `token_id` of a token Salesforce just refused with
    /// `INVALID_SESSION_ID`: the broker mints a new one unless it already has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_token_id: Option<String>,
}

/// The broker's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum TokenReply {
    /// A token.
    Token {
        /// The access token (a secret: never logged).
        access_token: String,
        /// Where the tenant's API calls go.
        instance_url: String,
        /// Names the token when reporting it invalid.
        token_id: String,
        /// The org (`00D…`).
        #[serde(default)]
        organization_id: Option<String>,
        /// The connection's own user (`005…`).
        #[serde(default)]
        user_id: Option<String>,
    },
    /// No token.
    Error {
        /// `not_connected`, `salesforce_rejected`, `salesforce_unreachable`,
        /// `invalid_request` or `internal_error`.
        code: String,
        /// What happened.
        message: String,
    },
}

/// A token as callers hold it.
#[derive(Clone)]
pub struct AccessToken {
    /// The access token.
    pub token: SecretString,
    /// Where the tenant's API calls go.
    pub instance_url: String,
    /// Names the token when reporting it invalid.
    pub token_id: String,
    /// The org (`00D…`).
    pub organization_id: Option<String>,
    /// The connection's own user (`005…`): the Task owner fallback.
    pub user_id: Option<String>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("instance_url", &self.instance_url)
            .field("token_id", &self.token_id)
            .finish_non_exhaustive()
    }
}

impl AccessToken {
    /// The reply that carries this token.
    pub fn to_reply(&self) -> TokenReply {
        TokenReply::Token {
            access_token: self.token.expose_secret().to_owned(),
            instance_url: self.instance_url.clone(),
            token_id: self.token_id.clone(),
            organization_id: self.organization_id.clone(),
            user_id: self.user_id.clone(),
        }
    }
}
