//! The one answer to Salesforce's `INVALID_SESSION_ID`, for every service:
//! run the call with the tenant's token; when Salesforce refuses the session
//! ([`Retry::RefreshToken`]), report that token as bad, get a fresh one and
//! run the call exactly once more.
//!
//! Where tokens come from is a [`TokenSource`]: [`TokenClient`] for one
//! tenant ([`TokenClient::tenant`]) in the importer and the activity-writer,
//! which ask the token-broker over RabbitMQ; the broker's own cache in the
//! token-broker's admin API. Anything else a caller does about a failure
//! (the importer's backoff, the writer's delay queues, the allowance
//! watched) stays the caller's: it sees every Salesforce answer through its
//! `call`, and gets back the last one.
//!
//! [`TokenClient`]: crate::TokenClient
//! [`TokenClient::tenant`]: crate::TokenClient::tenant

use std::future::Future;

use fa_messages::TenantId;
use fa_salesforce::Retry;

use crate::TokenError;

/// Where one tenant's tokens come from.
pub trait TokenSource {
    /// A token as the source hands it out (an `Arc`: cheap to clone).
    type Token: Clone;
    /// Why there is no token.
    type Error;

    /// The tenant, for the logs.
    fn tenant(&self) -> &TenantId;

    /// What names `token` in the logs (never the token itself).
    fn token_id<'t>(&self, token: &'t Self::Token) -> &'t str;

    /// The tenant's current token.
    fn token(&self) -> impl Future<Output = Result<Self::Token, Self::Error>> + Send;

    /// A fresh token, after Salesforce refused `stale` with
    /// `INVALID_SESSION_ID`.
    fn refresh(&self, stale: &Self::Token) -> impl Future<Output = Result<Self::Token, Self::Error>> + Send;
}

/// The failure of a call made through [`Session::call`] or
/// [`with_fresh_token`].
#[derive(Debug, thiserror::Error)]
pub enum CallError<E = TokenError> {
    /// No token (the first, or the fresh one).
    #[error(transparent)]
    Token(E),
    /// Salesforce's answer: an error other than `INVALID_SESSION_ID`, or
    /// `INVALID_SESSION_ID` again after the fresh token.
    #[error(transparent)]
    Salesforce(#[from] fa_salesforce::Error),
}

/// The token of one logical call, across the tries its caller makes of it:
/// the source's token, and after `INVALID_SESSION_ID` one fresh token and
/// one more try, never a second refresh.
pub struct Session<'s, S: TokenSource> {
    source: &'s S,
    token: Option<S::Token>,
    refreshed: bool,
}

impl<'s, S: TokenSource> Session<'s, S> {
    /// A session that asks `source` for its token on its first call.
    pub fn new(source: &'s S) -> Self {
        Self { source, token: None, refreshed: false }
    }

    /// Runs `call` with the session's token; when Salesforce refuses the
    /// session and the session has not refreshed yet, reports the token,
    /// gets a fresh one and runs `call` once more. Every other answer comes
    /// back as it is, for the caller to decide about.
    ///
    /// # Errors
    /// [`CallError::Token`] when there is no token, [`CallError::Salesforce`]
    /// with Salesforce's last answer.
    pub async fn call<T, F, Fut>(&mut self, mut call: F) -> Result<T, CallError<S::Error>>
    where
        F: FnMut(S::Token) -> Fut,
        Fut: Future<Output = Result<T, fa_salesforce::Error>>,
    {
        let token = match &self.token {
            Some(token) => token.clone(),
            None => self.token.insert(self.source.token().await.map_err(CallError::Token)?).clone(),
        };
        match call(token.clone()).await {
            Err(e) if e.retry() == Retry::RefreshToken && !self.refreshed => {
                self.refreshed = true;
                tracing::info!(tenant_id = %self.source.tenant(), token_id = self.source.token_id(&token),
                    "Salesforce refused the session (INVALID_SESSION_ID); retrying once with a fresh token");
                let fresh = self.source.refresh(&token).await.map_err(CallError::Token)?;
                self.token = Some(fresh.clone());
                Ok(call(fresh).await?)
            }
            answer => Ok(answer?),
        }
    }
}

/// Runs `call` with the source's token; on `INVALID_SESSION_ID`, a fresh
/// token and exactly one more try (one [`Session`], one call).
///
/// # Errors
/// As [`Session::call`].
pub async fn with_fresh_token<S, T, F, Fut>(source: &S, call: F) -> Result<T, CallError<S::Error>>
where
    S: TokenSource,
    F: FnMut(S::Token) -> Fut,
    Fut: Future<Output = Result<T, fa_salesforce::Error>>,
{
    Session::new(source).call(call).await
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };

    use fa_salesforce::{ApiError, Error, ErrorCode};

    use super::*;

    /// Hands out token 1, then one more per refresh; counts the refreshes.
    struct Counting {
        tenant: TenantId,
        current: AtomicU32,
        refreshes: AtomicU32,
    }

    impl Counting {
        fn new() -> Self {
            Self {
                tenant: TenantId::new("acme").expect("tenant"),
                current: AtomicU32::new(1),
                refreshes: AtomicU32::new(0),
            }
        }
    }

    impl TokenSource for Counting {
        type Token = Arc<String>;
        type Error = &'static str;

        fn tenant(&self) -> &TenantId {
            &self.tenant
        }

        fn token_id<'t>(&self, token: &'t Arc<String>) -> &'t str {
            token
        }

        async fn token(&self) -> Result<Arc<String>, &'static str> {
            Ok(Arc::new(self.current.load(Ordering::SeqCst).to_string()))
        }

        async fn refresh(&self, _stale: &Arc<String>) -> Result<Arc<String>, &'static str> {
            self.refreshes.fetch_add(1, Ordering::SeqCst);
            Ok(Arc::new((self.current.fetch_add(1, Ordering::SeqCst) + 1).to_string()))
        }
    }

    fn refused(status: u16, code: ErrorCode) -> Error {
        Error::Api(ApiError {
            status,
            code,
            message: "refused".to_owned(),
            fields: Vec::new(),
            limit: None,
            duplicates: Vec::new(),
        })
    }

    fn invalid_session() -> Error {
        refused(401, ErrorCode::InvalidSessionId)
    }

    #[tokio::test]
    async fn an_invalid_session_gets_one_fresh_token_and_one_more_try() {
        let source = Counting::new();
        let mut seen = Vec::new();
        let answer = with_fresh_token(&source, |token: Arc<String>| {
            seen.push(token.to_string());
            let first = token.as_str() == "1";
            async move { if first { Err(invalid_session()) } else { Ok("answer") } }
        })
        .await;
        assert_eq!(answer.expect("answered"), "answer");
        assert_eq!(seen, ["1", "2"]);
        assert_eq!(source.refreshes.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_refused_fresh_token_comes_back_and_a_session_never_refreshes_twice() {
        let source = Counting::new();
        let mut session = Session::new(&source);
        let mut tries = 0;
        let always_refused = |_token: Arc<String>| {
            tries += 1;
            async { Err::<(), _>(invalid_session()) }
        };
        let answer = session.call(always_refused).await;
        assert!(matches!(answer, Err(CallError::Salesforce(e)) if e.retry() == Retry::RefreshToken));
        // The caller tries again (the importer's backoff): the fresh token,
        // and no second refresh.
        let mut used = Vec::new();
        let answer = session
            .call(|token: Arc<String>| {
                used.push(token.to_string());
                async { Err::<(), _>(invalid_session()) }
            })
            .await;
        assert!(matches!(answer, Err(CallError::Salesforce(_))));
        assert_eq!(tries, 2);
        assert_eq!(used, ["2"]);
        assert_eq!(source.refreshes.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn other_failures_come_back_without_a_refresh() {
        let source = Counting::new();
        for error in [refused(503, ErrorCode::ServerUnavailable), refused(403, ErrorCode::RequestLimitExceeded)] {
            let expected = error.clone();
            let answer = with_fresh_token(&source, |_token| {
                let error = error.clone();
                async move { Err::<(), _>(error) }
            })
            .await;
            assert!(matches!(answer, Err(CallError::Salesforce(e)) if e == expected));
        }
        assert_eq!(source.refreshes.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn no_token_is_the_sources_error() {
        struct Empty(TenantId);
        impl TokenSource for Empty {
            type Token = Arc<String>;
            type Error = &'static str;
            fn tenant(&self) -> &TenantId {
                &self.0
            }
            fn token_id<'t>(&self, token: &'t Arc<String>) -> &'t str {
                token
            }
            async fn token(&self) -> Result<Arc<String>, &'static str> {
                Err("not_connected")
            }
            async fn refresh(&self, _stale: &Arc<String>) -> Result<Arc<String>, &'static str> {
                Err("not_connected")
            }
        }
        let source = Empty(TenantId::new("acme").expect("tenant"));
        let answer = with_fresh_token(&source, |_token| async { Ok(()) }).await;
        assert!(matches!(answer, Err(CallError::Token("not_connected"))));
    }
}
