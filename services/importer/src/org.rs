//! One tenant's org as the importer calls it: query pages with a token from
//! the token-broker, Salesforce's answers classified (docs/salesforce-facts.md §2, §3, §10)
//! into what the run does next, and the org's API usage watched.
//!
//! - passing failures (5xx, `SERVER_UNAVAILABLE`, `QUERY_TIMEOUT`, lost
//!   connections) are retried here with growing delay, within the run;
//! - `INVALID_SESSION_ID` gets a fresh token and one more try, once per
//!   page (`fa_tokens`' [`Session`]);
//! - `REQUEST_LIMIT_EXCEEDED`, or an allowance used to 90 %, pauses the
//!   tenant ([`Failure::Pause`]);
//! - anything else ends the run ([`Failure::Permanent`]).
//!
//! Each usage an answer reports is stored ([`allowance::record`]), so every
//! replica reports the newest reading, whichever replica took it.

use std::{sync::Arc, time::Duration};

use fa_messages::{SObject, TenantId};
pub use fa_salesforce::PageRequest;
use fa_salesforce::{ApiUsage, Client, ErrorCode, RawPage, Retry, replication::DeletedList};
use fa_tokens::{AccessToken, CallError, Session, TokenClient, TokenError};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::{
    SERVICE,
    allowance::{self, Gauge},
    run_error::RunErrorCode,
};

/// The share of the daily allowance at which a tenant pauses (docs/behaviour.md §5).
pub const PAUSE_AT: f64 = 0.9;

/// `usage` when it says the org has used [`PAUSE_AT`] of its allowance.
pub fn spent(usage: Option<ApiUsage>) -> Option<ApiUsage> {
    usage.filter(|usage| usage.ratio() >= PAUSE_AT)
}

/// `usage` as the logs, the API and `import.completed` tell it.
pub fn describe_usage(usage: ApiUsage) -> String {
    format!("the org has used {} of its {} daily API requests ({:.0} %)", usage.used, usage.max, usage.ratio() * 100.0)
}

/// Why a page could not be had.
#[derive(Debug, Clone)]
pub enum Failure {
    /// Pause the tenant: its allowance is (nearly) spent.
    Pause {
        /// What Salesforce said, for the logs and the API.
        reason: String,
    },
    /// The run cannot go on.
    Permanent {
        /// Why, for the run's error.
        code: RunErrorCode,
        /// What happened.
        message: String,
        /// Salesforce's own error code, when it gave one.
        salesforce_error_code: Option<String>,
    },
    /// Passing failures went on past the run's patience; the next run
    /// tries again.
    Exhausted {
        /// The last failure.
        message: String,
    },
    /// SIGTERM: stop at this page boundary.
    Stopped,
    /// The tenant's run lock was lost (its database connection closed):
    /// stop, so that two runs of the tenant never overlap.
    LockLost,
}

/// Reading one tenant's org.
#[derive(Clone)]
pub struct Org {
    tenant: TenantId,
    tokens: TokenClient,
    http: reqwest::Client,
    /// Where the usage readings go.
    pool: PgPool,
    api_version: String,
    stop: CancellationToken,
    /// Waits between passing failures; the run gives up after the last.
    backoff: Arc<[Duration]>,
}

impl Org {
    /// The org of `tenant`; the usage it reports is stored in `pool`.
    pub fn new(
        tenant: &TenantId,
        tokens: TokenClient,
        http: reqwest::Client,
        pool: PgPool,
        api_version: &str,
        stop: CancellationToken,
        backoff: Arc<[Duration]>,
    ) -> Self {
        Self { tenant: tenant.clone(), tokens, http, pool, api_version: api_version.to_owned(), stop, backoff }
    }

    /// The tenant whose org this is.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    fn client(&self, token: &AccessToken) -> Client {
        Client::new(self.http.clone(), &token.instance_url, token.token.clone())
            .with_service(SERVICE)
            .with_api_version(&self.api_version)
    }

    /// One page, retried as the failure policy says. It comes back read
    /// but not decoded ([`RawPage::decode`]): the run asks for the next
    /// page as soon as the decoding reaches its `nextRecordsUrl`, and
    /// decodes off the async workers.
    pub async fn page(&self, request: &PageRequest) -> Result<RawPage, Failure> {
        self.call(|client| async move {
            let page = client.read_page(request).await?;
            let usage = page.usage;
            Ok((page, usage))
        })
        .await
    }

    /// The records of `object` deleted between `start` and `end` (the
    /// replication API's deleted list, one call), retried as [`Self::page`]
    /// is; `None` when Salesforce refuses the window
    /// (`INVALID_REPLICATION_DATE`: it no longer reaches back to `start`).
    pub async fn deleted(
        &self,
        object: SObject,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Result<Option<DeletedList>, Failure> {
        self.call(|client| async move {
            match client.deleted(object.as_str(), start, end).await {
                Ok(list) => {
                    let usage = list.usage;
                    Ok((Some(list), usage))
                }
                Err(e) if e.api().is_some_and(|api| api.code == ErrorCode::InvalidReplicationDate) => {
                    let usage = e.api().and_then(|api| api.limit);
                    Ok((None, usage))
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// One call of `request`, with a fresh token and one more try on
    /// `INVALID_SESSION_ID` (the shared [`Session`]: once per call, however
    /// many passing failures follow), passing failures retried with growing
    /// delay, and the allowance each answer reports watched.
    async fn call<T, F, Fut>(&self, request: F) -> Result<T, Failure>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<(T, Option<ApiUsage>), fa_salesforce::Error>>,
    {
        let tokens = self.tokens.tenant(&self.tenant);
        let mut session = Session::new(&tokens);
        let mut attempt = 0;
        loop {
            let answered = session.call(|token| self.watched(request(self.client(&token)))).await;
            let error = match answered {
                Ok((answer, usage)) => {
                    if let Some(usage) = spent(usage) {
                        // The answer is good; the run uses it, then pauses.
                        tracing::warn!(tenant_id = %self.tenant, used = usage.used, max = usage.max,
                            "the org has used 90 % of its daily API allowance; pausing this tenant");
                    }
                    return Ok(answer);
                }
                Err(CallError::Token(e)) => return Err(token_failure(e)),
                Err(CallError::Salesforce(error)) => error,
            };
            match error.retry() {
                Retry::Transient | Retry::RefreshToken => {
                    let Some(wait) = self.backoff.get(attempt).copied() else {
                        return Err(Failure::Exhausted { message: error.to_string() });
                    };
                    attempt += 1;
                    tracing::warn!(tenant_id = %self.tenant, error = %error, retry_in_ms = wait.as_millis() as u64,
                        "passing Salesforce failure; retrying within the run");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.stop.cancelled() => return Err(Failure::Stopped),
                    }
                }
                Retry::PauseTenant => return Err(Failure::Pause { reason: error.to_string() }),
                Retry::Permanent => {
                    return Err(Failure::Permanent {
                        code: RunErrorCode::SalesforceRejected,
                        message: error.to_string(),
                        salesforce_error_code: error.api().map(|a| a.code.as_str().to_owned()),
                    });
                }
            }
        }
    }

    /// `answer`, its allowance watched whether it succeeded or not.
    async fn watched<T>(
        &self,
        answer: impl Future<Output = Result<(T, Option<ApiUsage>), fa_salesforce::Error>>,
    ) -> Result<(T, Option<ApiUsage>), fa_salesforce::Error> {
        let answer = answer.await;
        let usage = match &answer {
            Ok((_, usage)) => *usage,
            Err(error) => error.api().and_then(|api| api.limit),
        };
        if let Some(usage) = usage {
            self.watch(usage).await;
        }
        answer
    }

    /// Shows the reading on this replica at once and stores it for the
    /// others ([`allowance`]). A reading that could not be stored is only
    /// shown here: the next answer brings another, and the run goes on.
    async fn watch(&self, usage: ApiUsage) {
        Gauge::Usage.set(self.tenant.as_str(), usage.ratio());
        if let Err(e) = allowance::record(&self.pool, &self.tenant, usage).await {
            tracing::warn!(tenant_id = %self.tenant, error = %e, "the org's API usage could not be stored; other replicas show the previous reading");
        }
    }
}

fn token_failure(e: TokenError) -> Failure {
    match e {
        TokenError::NotConnected { .. } => {
            Failure::Permanent { code: RunErrorCode::NotConnected, message: e.to_string(), salesforce_error_code: None }
        }
        TokenError::Failed { .. } => Failure::Permanent {
            code: RunErrorCode::TokenUnavailable,
            message: format!("{e}; the token-broker's connection status says why"),
            salesforce_error_code: None,
        },
        TokenError::Unavailable(_) => Failure::Exhausted { message: e.to_string() },
    }
}
