//! One tenant's org as the writer calls it during one batch: a token from
//! the token-broker, every answer's allowance watched, and each failure
//! turned into what the batch does about it ([`Failure`]).
//!
//! The decision of what a Salesforce error means is `fa_salesforce`'s
//! ([`Retry`]); a fresh token and one immediate retry on
//! `INVALID_SESSION_ID` is `fa_tokens`' ([`fa_tokens::with_fresh_token`]).
//! This module adds the writer's side: a count of the calls a batch made
//! (the org's allowance is shared with every other integration, so the
//! writer measures what it spends), and the allowance watched.

use std::sync::{
    Mutex, PoisonError,
    atomic::{AtomicU32, Ordering},
};

use fa_messages::TenantId;
use fa_salesforce::{
    ApiError, ApiUsage, Client, Queried, Retry,
    composite::MAX_QUERIES,
    write::{Created, NewRecord},
};
use fa_tokens::{AccessToken, CallError, IntoTenantId, TokenClient, TokenError};
use serde::de::DeserializeOwned;

use crate::SERVICE;

/// The share of the daily allowance at which a tenant pauses (docs/behaviour.md §5).
pub const PAUSE_AT: f64 = 0.9;

/// Why a call to the org did not give an answer the batch can use.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Try again later: Salesforce or the token-broker is failing for now
    /// (5xx, lock, timeout, lost connection). For a write, the outcome is
    /// unknown: Salesforce may have committed it.
    Transient(String),
    /// The org's allowance is spent (`REQUEST_LIMIT_EXCEEDED`): pause the
    /// tenant. Nothing was done.
    Pause(String),
    /// The tenant has no connection: its events can never succeed.
    NotConnected(String),
    /// Salesforce refused the request itself (not one record of it).
    Rejected(ApiError),
}

/// One tenant's org for the length of one batch. Its token is the
/// [`TokenClient`]'s cached one.
pub struct Org {
    tenant: TenantId,
    tokens: TokenClient,
    http: reqwest::Client,
    api_version: String,
    calls: AtomicU32,
    usage: Mutex<Option<ApiUsage>>,
}

impl Org {
    /// The org of `tenant` (the batch's [`TenantId`], or its text), once it
    /// has a token.
    pub async fn open(
        tenant: impl IntoTenantId,
        tokens: TokenClient,
        http: reqwest::Client,
        api_version: &str,
    ) -> Result<Self, Failure> {
        let tenant = tenant.into_tenant_id().map_err(|e| token_failure(e.into()))?;
        tokens.token(&tenant).await.map_err(token_failure)?;
        Ok(Self {
            tenant,
            tokens,
            http,
            api_version: api_version.to_owned(),
            calls: AtomicU32::new(0),
            usage: Mutex::new(None),
        })
    }

    /// Salesforce API calls made so far (each page, query and Collections
    /// call counts one, as the org counts them).
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The allowance the newest answer reported, when it says the tenant
    /// must pause.
    pub fn spent(&self) -> Option<ApiUsage> {
        self.usage.lock().unwrap_or_else(PoisonError::into_inner).filter(|u| u.ratio() >= PAUSE_AT)
    }

    /// All rows of a SOQL query, following `nextRecordsUrl`.
    pub async fn query<T: DeserializeOwned>(&mut self, soql: &str) -> Result<Vec<T>, Failure> {
        let mut page = self.call(|client| async move { client.query::<T>(soql).await }).await?;
        let mut rows = std::mem::take(&mut page.records);
        while let Some(next) = page.next_records_url.take() {
            let next = next.as_str();
            page = self.call(|client| async move { client.query_more::<T>(next).await }).await?;
            rows.append(&mut page.records);
        }
        Ok(rows)
    }

    /// All rows of each of `soqls`, in order: the first pages of up to five
    /// queries in one Composite call (one API call for the five), each
    /// later page one call. One failed query fails them all: the batch
    /// cannot be resolved without it.
    pub async fn queries<T: DeserializeOwned>(&mut self, soqls: &[String]) -> Result<Vec<Vec<T>>, Failure> {
        let mut all = Vec::with_capacity(soqls.len());
        for chunk in soqls.chunks(MAX_QUERIES) {
            let queried = self.call(|client| async move { client.queries::<T>(chunk).await }).await?;
            for result in queried.results {
                let mut page = result.map_err(|api| failure(fa_salesforce::Error::Api(api)))?;
                let mut rows = std::mem::take(&mut page.records);
                while let Some(next) = page.next_records_url.take() {
                    let next = next.as_str();
                    page = self.call(|client| async move { client.query_more::<T>(next).await }).await?;
                    rows.append(&mut page.records);
                }
                all.push(rows);
            }
        }
        Ok(all)
    }

    /// Creates up to 200 records in one sObject Collections call; each
    /// record's result on its own.
    pub async fn create_records(&mut self, records: &[NewRecord]) -> Result<Created, Failure> {
        self.call(|client| async move { client.create_records(records).await }).await.map_err(unknown_outcome)
    }

    /// Creates one record; a refusal comes back whole (with the duplicates
    /// Salesforce names), not as a [`Failure`].
    pub async fn create(
        &mut self,
        object: &str,
        fields: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Result<String, ApiError>, Failure> {
        match self.call(|client| async move { client.create(object, fields).await }).await.map_err(unknown_outcome) {
            Ok((id, _)) => Ok(Ok(id)),
            Err(Failure::Rejected(api)) => Ok(Err(api)),
            Err(other) => Err(other),
        }
    }

    fn client(&self, token: &AccessToken) -> Client {
        Client::new(self.http.clone(), &token.instance_url, token.token.clone())
            .with_service(SERVICE)
            .with_api_version(&self.api_version)
    }

    /// Runs one call; on `INVALID_SESSION_ID`, a fresh token and one more
    /// try ([`fa_tokens::with_fresh_token`]). Each try is counted and its
    /// allowance watched.
    async fn call<T, F, Fut>(&mut self, mut call: F) -> Result<T, Failure>
    where
        T: Usage,
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, fa_salesforce::Error>>,
    {
        let this = &*self;
        let tokens = this.tokens.tenant(&this.tenant);
        let answer = fa_tokens::with_fresh_token(&tokens, |token| this.counted(call(this.client(&token)))).await;
        answer.map_err(|e| match e {
            CallError::Token(e) => token_failure(e),
            CallError::Salesforce(e) => failure(e),
        })
    }

    /// One try: counted, timed, and its allowance watched.
    async fn counted<T: Usage>(
        &self,
        answer: impl Future<Output = Result<T, fa_salesforce::Error>>,
    ) -> Result<T, fa_salesforce::Error> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let asked = std::time::Instant::now();
        let answer = answer.await;
        tracing::debug!(tenant_id = %self.tenant, took_ms = asked.elapsed().as_secs_f64() * 1e3, ok = answer.is_ok(), "salesforce call");
        match &answer {
            Ok(answer) => self.watch(answer.usage()),
            Err(error) => self.watch(error.api().and_then(|api| api.limit)),
        }
        answer
    }

    fn watch(&self, usage: Option<ApiUsage>) {
        if let Some(usage) = usage {
            *self.usage.lock().unwrap_or_else(PoisonError::into_inner) = Some(usage);
            metrics::gauge!("fa_salesforce_api_usage_ratio", "service" => SERVICE, "tenant" => self.tenant.to_string())
                .set(usage.ratio());
        }
    }
}

/// What the batch does about a failed call (or one failed query of a
/// Composite call), as [`Retry`] decides it.
fn failure(error: fa_salesforce::Error) -> Failure {
    match error.retry() {
        Retry::Transient | Retry::RefreshToken => Failure::Transient(error.to_string()),
        Retry::PauseTenant => Failure::Pause(error.to_string()),
        Retry::Permanent => match error {
            fa_salesforce::Error::Api(api) => Failure::Rejected(api),
            other => Failure::Rejected(ApiError {
                status: 0,
                code: fa_salesforce::ErrorCode::Other(other.label().to_owned()),
                message: other.to_string(),
                fields: Vec::new(),
                limit: None,
                duplicates: Vec::new(),
            }),
        },
    }
}

/// The allowance an answer reported.
trait Usage {
    fn usage(&self) -> Option<ApiUsage>;
}

impl<T> Usage for fa_salesforce::QueryPage<T> {
    fn usage(&self) -> Option<ApiUsage> {
        self.usage
    }
}

impl<T> Usage for Queried<T> {
    fn usage(&self) -> Option<ApiUsage> {
        self.usage
    }
}

impl Usage for Created {
    fn usage(&self) -> Option<ApiUsage> {
        self.usage
    }
}

impl Usage for (String, Option<ApiUsage>) {
    fn usage(&self) -> Option<ApiUsage> {
        self.1
    }
}

/// A write whose answer could not be read (a 2xx with an unreadable body)
/// may have been committed: its outcome is unknown, like a timeout's.
fn unknown_outcome(failure: Failure) -> Failure {
    match failure {
        Failure::Rejected(api) if api.status == 0 && api.code.as_str() == "decode" => Failure::Transient(api.message),
        other => other,
    }
}

fn token_failure(e: TokenError) -> Failure {
    match e {
        TokenError::NotConnected { .. } => Failure::NotConnected(e.to_string()),
        // The broker could not log in (the connection shows why to the
        // admin) or did not answer: both may pass.
        TokenError::Failed { .. } | TokenError::Unavailable(_) => Failure::Transient(e.to_string()),
    }
}
