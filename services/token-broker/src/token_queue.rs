//! The token service on RabbitMQ: answers `fa_tokens::TokenRequest`s from
//! the queue `token-broker.tokens` with the tenant's token (see
//! [`crate::token`]), for the RabbitMQ users allowed to ask (see
//! [`crate::requesters`]).

use std::sync::Arc;

use fa_amqp::{RpcHandler, RpcRequest};
use fa_tokens::{ErrorCode, TokenReply, TokenRequest};
use secrecy::ExposeSecret as _;

use crate::{
    requesters::{Refusal, Requesters},
    token::Tokens,
};

/// Answers token requests.
pub struct TokenQueue {
    tokens: Arc<Tokens>,
    requesters: Requesters,
}

impl TokenQueue {
    /// Serves `tokens` to `requesters`.
    pub fn new(tokens: Arc<Tokens>, requesters: Requesters) -> Self {
        Self { tokens, requesters }
    }

    async fn answer(&self, request: &RpcRequest) -> TokenReply {
        if let Err(refusal) = self.requesters.check(request.user_id()) {
            tracing::warn!(
                user_id = request.user_id().unwrap_or_default(),
                app_id = request.properties.app_id().as_ref().map(|a| a.as_str()).unwrap_or_default(),
                tenant_id = request.tenant_id().unwrap_or_default(),
                "a token request refused: {refusal}"
            );
            metrics::counter!("fa_token_requests_refused_total", "reason" => Refusal::CODE.as_str()).increment(1);
            return error(Refusal::CODE, refusal.to_string());
        }
        // The tenant id is checked as the request is read.
        let request: TokenRequest = match serde_json::from_slice(&request.body) {
            Ok(r) => r,
            Err(e) => return error(ErrorCode::InvalidRequest, format!("not a token request: {e}")),
        };
        match self.tokens.get(&request.tenant_id, request.invalid_token_id.as_deref()).await {
            Ok(issued) => TokenReply::Token {
                access_token: issued.access_token.expose_secret().to_owned(),
                instance_url: issued.instance_url.clone(),
                token_id: issued.token_id.clone(),
                organization_id: issued.organization_id.clone(),
                user_id: issued.user_id.clone(),
                generation: issued.generation,
            },
            Err(e) => error(e.code(), e.to_string()),
        }
    }
}

fn error(code: ErrorCode, message: String) -> TokenReply {
    TokenReply::Error { code, message }
}

impl RpcHandler for TokenQueue {
    async fn handle(&self, request: &RpcRequest) -> Vec<u8> {
        let reply = self.answer(request).await;
        serde_json::to_vec(&reply).unwrap_or_else(|_| {
            br#"{"result":"error","code":"internal_error","message":"could not encode the reply"}"#.to_vec()
        })
    }
}
