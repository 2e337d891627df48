//! The token request and its reply, as they travel over RabbitMQ.
//!
//! A request goes to the queue [`QUEUE`] (the token-broker's; see
//! `fa_amqp::rpc`), its reply straight back to the caller through direct
//! reply-to (the broker answers nothing else). Replies carry access tokens,
//! so they are never persisted and never logged; their `Debug` redacts the
//! token.

use fa_messages::TenantId;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

/// The token-broker's request queue.
pub const QUEUE: &str = "token-broker.tokens";

/// Asks for the tenant's token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRequest {
    /// The tenant (checked on both sides; on the wire, the id as text).
    pub tenant_id: TenantId,
    /// The `token_id` of a token Salesforce just refused with
    /// `INVALID_SESSION_ID`: the broker mints a new one unless it already has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_token_id: Option<String>,
}

/// The broker's answer. `Debug` shows everything but the access token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum TokenReply {
    /// A token.
    Token {
        /// The access token (a secret: never logged).
        access_token: String,
        /// Where the tenant's API calls go: checked by the broker, and again
        /// by [`TokenClient`](crate::TokenClient) (see [`crate::instance_url`]).
        instance_url: String,
        /// Names the token when reporting it invalid.
        token_id: String,
        /// The org (`00D…`).
        #[serde(default)]
        organization_id: Option<String>,
        /// The connection's own user (`005…`).
        #[serde(default)]
        user_id: Option<String>,
        /// The generation of the connection the token was minted for (see
        /// [`Retired`]).
        #[serde(default)]
        generation: i64,
    },
    /// No token.
    Error {
        /// Why (see [`ErrorCode`]).
        code: ErrorCode,
        /// What happened.
        message: String,
    },
}

impl std::fmt::Debug for TokenReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token { access_token: _, instance_url, token_id, organization_id, user_id, generation } => f
                .debug_struct("Token")
                .field("access_token", &"[redacted]")
                .field("instance_url", instance_url)
                .field("token_id", token_id)
                .field("organization_id", organization_id)
                .field("user_id", user_id)
                .field("generation", generation)
                .finish(),
            Self::Error { code, message } => {
                f.debug_struct("Error").field("code", code).field("message", message).finish()
            }
        }
    }
}

macro_rules! error_codes {
    ($($(#[$attr:meta])* $variant:ident => $wire:literal,)*) => {
        /// Why there is no token: the `code` of a [`TokenReply::Error`], and
        /// of [`TokenError`](crate::TokenError). Each code's text is written
        /// once, here; on the wire it is that text.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ErrorCode {
            $($(#[$attr])* #[doc = concat!("`", $wire, "`")] #[serde(rename = $wire)] $variant,)*
        }

        impl ErrorCode {
            /// The code as it travels and as callers log and count it,
            /// e.g. `not_connected`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)*
                }
            }
        }
    };
}

error_codes! {
    /// The tenant has no Salesforce connection.
    NotConnected => "not_connected",
    /// Salesforce refused the token exchange.
    SalesforceRejected => "salesforce_rejected",
    /// Salesforce's login URL did not answer.
    SalesforceUnreachable => "salesforce_unreachable",
    /// The stored login URL is not on the broker's allowlist.
    LoginUrlNotAllowed => "login_url_not_allowed",
    /// Salesforce's answer named an `instance_url` no token is sent to.
    InstanceUrlNotAllowed => "instance_url_not_allowed",
    /// The request's RabbitMQ user may not ask for tokens.
    RequesterNotAllowed => "requester_not_allowed",
    /// Not a token request, or no tenant id.
    InvalidRequest => "invalid_request",
    /// The broker failed on its side.
    InternalError => "internal_error",
    /// The broker did not answer (said by the client, never on the wire).
    TokenBrokerUnavailable => "token_broker_unavailable",
    /// A code this build does not know (from a newer token-broker).
    #[serde(other)]
    Unknown => "unknown",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for ErrorCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
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
    /// The generation of the connection it was minted for.
    pub generation: i64,
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
            generation: self.generation,
        }
    }
}

/// The fanout exchange on which the token-broker says that a tenant's
/// connection changed ([`Retired`]); every broker replica and every
/// [`TokenClient`](crate::TokenClient) listens on it.
pub const CONNECTIONS_EXCHANGE: &str = "token-broker.connections";

/// News from the token-broker: the tenant's connection was removed or
/// replaced, so no token minted for a connection of `generation` or older
/// may be used again.
///
/// Every stored connection has a generation, taken from one PostgreSQL
/// sequence each time it is saved; removing or replacing it retires its
/// generation. It carries no token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retired {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Tokens of this generation and older are dead.
    pub generation: i64,
    /// A token that must not be revoked though old: after a re-connect with
    /// the same user, Salesforce may hand the same session out again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_token_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "00Dxx0000001gPL!AR8AQJXg5oj8jXSgxJfA0lBog";

    fn token() -> AccessToken {
        AccessToken {
            token: SecretString::from(SECRET),
            instance_url: "https://acme.my.salesforce.com".to_owned(),
            token_id: "0123456789abcdef".to_owned(),
            organization_id: Some("00Dxx0000001gPLEAY".to_owned()),
            user_id: Some("005xx000001SwiUAAS".to_owned()),
            generation: 7,
        }
    }

    #[test]
    fn debug_never_shows_the_access_token() {
        let held = token();
        let reply = held.to_reply();
        for shown in [format!("{reply:?}"), format!("{reply:#?}"), format!("{held:?}"), format!("{held:#?}")] {
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(!shown.contains("AR8AQJ"), "{shown}");
            assert!(shown.contains("[redacted]"), "{shown}");
            assert!(shown.contains("0123456789abcdef"), "the token_id still names it: {shown}");
        }
        let reply = format!("{:?}", Some(&reply));
        assert!(!reply.contains(SECRET), "{reply}");
    }

    #[test]
    fn requests_and_error_codes_read_as_they_travel() {
        let tenant = TenantId::new("acme").expect("tenant");
        let request = TokenRequest { tenant_id: tenant.clone(), invalid_token_id: None };
        assert_eq!(serde_json::to_string(&request).expect("json"), r#"{"tenant_id":"acme"}"#);
        let request = TokenRequest { tenant_id: tenant, invalid_token_id: Some("0123".to_owned()) };
        assert_eq!(serde_json::to_string(&request).expect("json"), r#"{"tenant_id":"acme","invalid_token_id":"0123"}"#);
        assert!(serde_json::from_str::<TokenRequest>(r#"{"tenant_id":"not a tenant!"}"#).is_err());

        let error = TokenReply::Error { code: ErrorCode::NotConnected, message: "none".to_owned() };
        let json = serde_json::to_string(&error).expect("json");
        assert_eq!(json, r#"{"result":"error","code":"not_connected","message":"none"}"#);
        for code in [ErrorCode::InstanceUrlNotAllowed, ErrorCode::RequesterNotAllowed, ErrorCode::Unknown] {
            let text = serde_json::to_string(&code).expect("json");
            assert_eq!(text, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&text).expect("code"), code);
        }
        let newer: ErrorCode = serde_json::from_str(r#""something_new""#).expect("an unknown code still reads");
        assert_eq!(newer, ErrorCode::Unknown);
        assert!(ErrorCode::NotConnected == "not_connected");
    }

    #[test]
    fn a_reply_still_carries_the_token_on_the_wire() {
        let json = serde_json::to_string(&token().to_reply()).expect("json");
        assert!(json.contains(SECRET), "{json}");
        let back: TokenReply = serde_json::from_str(&json).expect("a reply");
        assert_eq!(back, token().to_reply());
    }
}
