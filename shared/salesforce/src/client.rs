//! The REST client: one org's instance URL and session, SOQL queries and
//! their pages (docs/salesforce-facts.md §2), with Salesforce's errors read into
//! [`Error`] and the allowance into [`ApiUsage`]. Creating records is in
//! [`crate::write`].
//!
//! Every call records `fa_salesforce_requests_total{service, route,
//! outcome, error_code}` (outcome `success` with an empty `error_code`, or
//! `error` with a bounded error label) and
//! `fa_salesforce_request_duration_seconds{service, route}`; `service` is
//! present when the client was given one ([`Client::with_service`]).

use std::{
    marker::PhantomData,
    sync::Arc,
    time::{Duration, Instant},
};

use secrecy::{ExposeSecret, SecretString};
use serde::{
    Deserialize, Deserializer,
    de::{DeserializeOwned, DeserializeSeed, Error as _, IgnoredAny, MapAccess, Visitor},
};
use tracing::Instrument as _;

use crate::{
    error::{ApiError, Error},
    limits::{self, ApiUsage},
};

/// The API version calls are made with.
pub const DEFAULT_API_VERSION: &str = "v61.0";
/// How long a query page may take. Salesforce allows 10 minutes per call,
/// but a query answers within about a minute or fails with `QUERY_TIMEOUT`.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(120);

/// A connection to one org as one user: the instance URL and the session.
///
/// Cheap to clone and to rebuild: the `reqwest::Client` is shared, and after
/// a 401 `INVALID_SESSION_ID` ([`Retry::RefreshToken`](crate::Retry)) the
/// caller mints a new token and calls [`Client::with_token`].
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    instance_url: Arc<str>,
    api_version: Arc<str>,
    token: SecretString,
    service: Option<&'static str>,
    batch_size: Option<BatchSize>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("instance_url", &self.instance_url)
            .field("api_version", &self.api_version)
            .field("token", &"[redacted]")
            .field("service", &self.service)
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

/// The page size asked for with `Sforce-Query-Options: batchSize=N`:
/// Salesforce takes 200 to 2,000 (the default) and treats it as a hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSize(u16);

impl BatchSize {
    /// The smallest size Salesforce takes.
    pub const MIN: Self = Self(200);
    /// The largest size, and Salesforce's default.
    pub const MAX: Self = Self(2000);

    /// A batch size, brought into 200..=2,000.
    pub fn new(rows: u32) -> Self {
        Self(rows.clamp(200, 2000) as u16)
    }

    /// Rows per page asked for.
    pub fn get(self) -> u16 {
        self.0
    }
}

/// One page of a query's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPage<T> {
    /// All the rows the query matches, not this page's count.
    pub total_size: u64,
    /// True on the last page.
    pub done: bool,
    /// The path of the next page (give it to [`Client::query_more`]), absent
    /// on the last page. Each is good for one call.
    pub next_records_url: Option<String>,
    /// This page's rows; each still carries its `attributes` member, which
    /// `T` may ignore.
    pub records: Vec<T>,
    /// The allowance the answer reported.
    pub usage: Option<ApiUsage>,
}

/// A query page as Salesforce writes it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PageBody<T> {
    total_size: u64,
    done: bool,
    #[serde(default)]
    next_records_url: Option<String>,
    #[serde(default = "Vec::new")]
    records: Vec<T>,
}

impl<T> PageBody<T> {
    /// The page, with the allowance its answer reported.
    pub(crate) fn with_usage(self, usage: Option<ApiUsage>) -> QueryPage<T> {
        QueryPage {
            total_size: self.total_size,
            done: self.done,
            next_records_url: self.next_records_url,
            records: self.records,
            usage,
        }
    }
}

/// Which page of a query to read ([`Client::read_page`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageRequest {
    /// A new query (`query`).
    Query(String),
    /// A new query over live and deleted rows (`queryAll`).
    QueryAll(String),
    /// The next page of a cursor: its `nextRecordsUrl`.
    More(String),
}

/// A query page's answer, read whole but not yet decoded.
pub struct RawPage {
    body: Vec<u8>,
    /// The allowance the answer reported.
    pub usage: Option<ApiUsage>,
}

impl std::fmt::Debug for RawPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawPage").field("bytes", &self.body.len()).field("usage", &self.usage).finish()
    }
}

impl RawPage {
    /// Decodes the page in one pass. `on_next` is handed the page's
    /// `nextRecordsUrl` as soon as the parser reaches it: before the rows,
    /// where Salesforce writes it, so the caller can ask for the next page
    /// while the rows are still being read. It gets `None` once the page is
    /// read to its end without one (the last page), and is dropped uncalled
    /// when the page fails to decode before that.
    ///
    /// # Errors
    /// [`Error::Decode`] when the body is not a query page or a row is not
    /// a `T`.
    pub fn decode<T: DeserializeOwned>(&self, on_next: impl FnOnce(Option<&str>)) -> Result<QueryPage<T>, Error> {
        let mut json = serde_json::Deserializer::from_slice(&self.body);
        let seed = PageSeed { on_next: Some(on_next), rows: PhantomData };
        let page = seed.deserialize(&mut json).and_then(|page| json.end().map(|()| page));
        page.map(|page| page.with_usage(self.usage)).map_err(|e| Error::Decode(e.to_string()))
    }
}

/// Reads a [`PageBody`] member by member, calling `on_next` at
/// `nextRecordsUrl` (see [`RawPage::decode`]).
struct PageSeed<T, F> {
    on_next: Option<F>,
    rows: PhantomData<T>,
}

/// The members of a query page; others are skipped.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum PageField {
    TotalSize,
    Done,
    NextRecordsUrl,
    Records,
    #[serde(other)]
    Other,
}

impl<'de, T: Deserialize<'de>, F: FnOnce(Option<&str>)> DeserializeSeed<'de> for PageSeed<T, F> {
    type Value = PageBody<T>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: Deserialize<'de>, F: FnOnce(Option<&str>)> Visitor<'de> for PageSeed<T, F> {
    type Value = PageBody<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a query page")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut total_size, mut done, mut next_records_url, mut records) = (None, None, None, None);
        while let Some(field) = map.next_key()? {
            match field {
                PageField::TotalSize => total_size = Some(map.next_value()?),
                PageField::Done => done = Some(map.next_value()?),
                PageField::NextRecordsUrl => {
                    next_records_url = map.next_value::<Option<String>>()?;
                    if let Some(on_next) = self.on_next.take() {
                        on_next(next_records_url.as_deref());
                    }
                }
                PageField::Records => records = Some(map.next_value()?),
                PageField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let total_size = total_size.ok_or_else(|| A::Error::missing_field("totalSize"))?;
        let done = done.ok_or_else(|| A::Error::missing_field("done"))?;
        if let Some(on_next) = self.on_next.take() {
            on_next(next_records_url.as_deref());
        }
        Ok(PageBody { total_size, done, next_records_url, records: records.unwrap_or_default() })
    }
}

impl Client {
    /// A client for the org at `instance_url` (from the token grant; a final
    /// `/` is dropped) using the session `token`, with
    /// [`DEFAULT_API_VERSION`].
    pub fn new(http: reqwest::Client, instance_url: &str, token: SecretString) -> Self {
        Self {
            http,
            instance_url: Arc::from(instance_url.trim().trim_end_matches('/')),
            api_version: Arc::from(DEFAULT_API_VERSION),
            token,
            service: None,
            batch_size: None,
        }
    }

    /// The same client with another session token (after a refresh).
    pub fn with_token(&self, token: SecretString) -> Self {
        Self { token, ..self.clone() }
    }

    /// Labels this client's metrics with `service` (`importer`, ...).
    pub fn with_service(self, service: &'static str) -> Self {
        Self { service: Some(service), ..self }
    }

    /// Calls another API version (`v62.0`).
    pub fn with_api_version(self, api_version: &str) -> Self {
        Self { api_version: Arc::from(api_version), ..self }
    }

    /// Asks for pages of `batch_size` rows on [`Client::query`] and
    /// [`Client::query_more`].
    pub fn with_batch_size(self, batch_size: BatchSize) -> Self {
        Self { batch_size: Some(batch_size), ..self }
    }

    /// Where calls go, without a final `/`.
    pub fn instance_url(&self) -> &str {
        &self.instance_url
    }

    /// The API version calls are made with.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// The HTTP client, for the other routes of this crate.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The `service` metric label, if any.
    pub(crate) fn service(&self) -> Option<&'static str> {
        self.service
    }

    /// Runs a SOQL query and answers its first page: `GET
    /// {instance_url}/services/data/{version}/query?q=<soql>`.
    ///
    /// Rows deserialize into `T`: `serde_json::Value`, or the caller's own
    /// struct with `#[serde(rename = "Field")]` members (and
    /// [`datetime::field`](crate::datetime::field) for datetimes). Follow
    /// [`QueryPage::next_records_url`] with [`Client::query_more`].
    ///
    /// # Errors
    /// See [`Error`]; [`Error::retry`] says what to do.
    pub async fn query<T: DeserializeOwned>(&self, soql: &str) -> Result<QueryPage<T>, Error> {
        self.read_page(&PageRequest::Query(soql.to_owned())).await?.decode(|_| ())
    }

    /// Runs a SOQL query over live, deleted and merged rows alike (the
    /// recycle bin's too): `GET …/queryAll?q=<soql>`; rows carry
    /// `IsDeleted` (and `MasterRecordId` for merged ones) when selected.
    /// Its `nextRecordsUrl` still says `/query/` (docs/salesforce-facts.md §2, "Paging") and is
    /// followed with [`Client::query_more`] like any other.
    ///
    /// # Errors
    /// See [`Error`]; [`Error::retry`] says what to do.
    pub async fn query_all<T: DeserializeOwned>(&self, soql: &str) -> Result<QueryPage<T>, Error> {
        self.read_page(&PageRequest::QueryAll(soql.to_owned())).await?.decode(|_| ())
    }

    /// The next page of a query: `GET {instance_url}{next_records_url}`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `next_records_url` is not a
    /// `/services/data/` path (the token goes only to the instance URL); a
    /// used or expired locator is [`ErrorCode::InvalidQueryLocator`](crate::ErrorCode),
    /// permanent: start the query again.
    pub async fn query_more<T: DeserializeOwned>(&self, next_records_url: &str) -> Result<QueryPage<T>, Error> {
        self.read_page(&PageRequest::More(next_records_url.to_owned())).await?.decode(|_| ())
    }

    /// One page of a query, read but not decoded: [`RawPage::decode`] hands
    /// over its `nextRecordsUrl` as soon as the parser reaches it, so a
    /// caller paging a large cursor can ask for the next page while it
    /// decodes this one's rows (off the async workers), reading each row
    /// once.
    ///
    /// # Errors
    /// As [`Client::query`], [`Client::query_all`] and
    /// [`Client::query_more`]; the rows' errors come from
    /// [`RawPage::decode`].
    pub async fn read_page(&self, request: &PageRequest) -> Result<RawPage, Error> {
        let (operation, request) = match request {
            PageRequest::Query(soql) => {
                let url = format!("{}/services/data/{}/query", self.instance_url, self.api_version);
                ("query", self.http.get(url).query(&[("q", soql)]))
            }
            PageRequest::QueryAll(soql) => {
                let url = format!("{}/services/data/{}/queryAll", self.instance_url, self.api_version);
                ("query_all", self.http.get(url).query(&[("q", soql)]))
            }
            PageRequest::More(next_records_url) => {
                if !next_records_url.starts_with("/services/data/") || next_records_url.contains("..") {
                    let error = Error::InvalidInput("nextRecordsUrl must be a /services/data/ path".to_owned());
                    record_call(self.service, "query_more", error.label(), Duration::ZERO);
                    return Err(error);
                }
                ("query_more", self.http.get(format!("{}{next_records_url}", self.instance_url)))
            }
        };
        let mut request = request.timeout(QUERY_TIMEOUT);
        if let Some(batch) = self.batch_size {
            request = request.header("Sforce-Query-Options", format!("batchSize={}", batch.get()));
        }
        let started = Instant::now();
        let result = self.call(request).await;
        let elapsed = started.elapsed();
        match result {
            Ok((body, usage)) => {
                record_call(self.service, operation, "ok", elapsed);
                tracing::debug!(operation, bytes = body.len(), ?elapsed, "Salesforce answered");
                Ok(RawPage { body, usage })
            }
            Err(e) => {
                record_call(self.service, operation, e.label(), elapsed);
                tracing::debug!(operation, error = %e, ?elapsed, "Salesforce call failed");
                Err(e)
            }
        }
    }

    /// Sends an authorised request; a 2xx body and the allowance, or the
    /// error.
    ///
    /// Every call Salesforce counts against the org's allowance passes
    /// here, so each gets one span (`salesforce.request`), a child of the
    /// span of the work that made it (an assist event's delivery): one trace
    /// shows every call an event cost. The span names the method and path
    /// only: a query's text (in the URL's query string) can quote customer
    /// data, and is left out.
    pub(crate) async fn call(&self, request: reqwest::RequestBuilder) -> Result<(Vec<u8>, Option<ApiUsage>), Error> {
        let request = request
            .bearer_auth(self.token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .build()
            .map_err(|e| Error::Transport(describe_transport(&e)))?;
        let span = tracing::info_span!(
            "salesforce.request",
            otel.kind = "client",
            http.request.method = %request.method(),
            url.path = request.url().path(),
            http.response.status_code = tracing::field::Empty,
        );
        self.send(request).instrument(span).await
    }

    async fn send(&self, request: reqwest::Request) -> Result<(Vec<u8>, Option<ApiUsage>), Error> {
        let response = self.http.execute(request).await.map_err(|e| Error::Transport(describe_transport(&e)))?;
        let status = response.status().as_u16();
        tracing::Span::current().record("http.response.status_code", status);
        let usage =
            response.headers().get(limits::HEADER).and_then(|v| v.to_str().ok()).and_then(ApiUsage::from_header);
        let body = read_body(response, MAX_ANSWER_BYTES).await.map_err(|e| match e {
            BodyError::Transport(e) => Error::Transport(describe_transport(&e)),
            BodyError::TooLarge => Error::Decode(format!("the answer is larger than {} MiB", MAX_ANSWER_BYTES >> 20)),
        })?;
        if (200..300).contains(&status) {
            Ok((body, usage))
        } else {
            Err(Error::Api(ApiError::from_body(status, &body, usage)))
        }
    }
}

/// The largest answer read from Salesforce. A query page of 2,000 rows, or
/// a Composite call of five, is a few MiB; a body past this is not
/// Salesforce's, and reading it whole could take the process's memory.
pub const MAX_ANSWER_BYTES: usize = 64 << 20;

/// Why a body was not read.
pub(crate) enum BodyError {
    /// The connection broke or timed out.
    Transport(reqwest::Error),
    /// The body is longer than the cap.
    TooLarge,
}

/// The response's body, refused as soon as it passes `cap` bytes (before
/// reading it when `Content-Length` says so).
pub(crate) async fn read_body(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::with_capacity(response.content_length().map_or(0, |n| n as usize));
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Records one call's metrics.
pub(crate) fn record_call(
    service: Option<&'static str>,
    operation: &'static str,
    outcome: &'static str,
    elapsed: Duration,
) {
    // Label values the alerts rely on (deploy/prometheus/alerts.yaml):
    // `outcome` is success or error, `error_code` empty on success.
    let (outcome, error_code) = if outcome == "ok" { ("success", "") } else { ("error", outcome) };
    match service {
        Some(service) => {
            metrics::counter!("fa_salesforce_requests_total", "service" => service, "route" => operation,
                "outcome" => outcome, "error_code" => error_code)
            .increment(1);
            metrics::histogram!("fa_salesforce_request_duration_seconds", "service" => service, "route" => operation)
                .record(elapsed.as_secs_f64());
        }
        None => {
            metrics::counter!("fa_salesforce_requests_total", "route" => operation, "outcome" => outcome,
                "error_code" => error_code)
            .increment(1);
            metrics::histogram!("fa_salesforce_request_duration_seconds", "route" => operation)
                .record(elapsed.as_secs_f64());
        }
    }
}

/// A transport failure in words, without the URL (it carries the SOQL,
/// which may carry customer data) and never a header.
pub(crate) fn describe_transport(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "could not read the answer"
    } else if error.is_builder() {
        "could not build the request"
    } else {
        "request failed"
    };
    let mut message = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// Serves one raw HTTP answer on a local port; its URL.
    async fn serve_once(answer: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(&answer).await;
                let _ = socket.shutdown().await;
            }
        });
        format!("http://{addr}/")
    }

    async fn read(answer: Vec<u8>, cap: usize) -> Result<Vec<u8>, &'static str> {
        let url = serve_once(answer).await;
        let response = reqwest::get(url).await.expect("an answer");
        read_body(response, cap).await.map_err(|e| match e {
            BodyError::Transport(_) => "transport",
            BodyError::TooLarge => "too large",
        })
    }

    #[tokio::test]
    async fn an_answer_past_the_cap_is_refused_whether_or_not_it_says_its_length() {
        let sized =
            |n: usize| [format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n").into_bytes(), vec![b'x'; n]].concat();
        assert_eq!(read(sized(100), 100).await.map(|b| b.len()), Ok(100));
        assert_eq!(read(sized(101), 100).await, Err("too large"));
        // Chunked: no length to refuse early, so it is counted as it comes.
        let chunk = format!("{:x}\r\n{}\r\n", 60, "y".repeat(60));
        let chunked =
            format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}{chunk}0\r\n\r\n").into_bytes();
        assert_eq!(read(chunked.clone(), 120).await.map(|b| b.len()), Ok(120));
        assert_eq!(read(chunked, 119).await, Err("too large"));
    }

    /// What a decoded page says: its rows' ids, what `on_next` was handed
    /// (`None`: never called), and the page's own `nextRecordsUrl`.
    type Decoded = (Vec<String>, Option<Option<String>>, Option<String>);

    fn decode(body: &str) -> Result<Decoded, Error> {
        #[derive(Deserialize)]
        struct Row {
            #[serde(rename = "Id")]
            id: String,
        }
        let mut seen = None;
        let page = RawPage { body: body.as_bytes().to_vec(), usage: None };
        let page = page.decode::<Row>(|next| seen = Some(next.map(str::to_owned)))?;
        Ok((page.records.into_iter().map(|row| row.id).collect(), seen, page.next_records_url))
    }

    #[test]
    fn a_page_hands_over_its_next_records_url_wherever_it_is_written() {
        let next = "/services/data/v61.0/query/01gRO0000016PIAYA2-2000";
        let ids = || vec!["00Q5g00000ABCDEFGH".to_owned()];
        let row = r#"{"attributes":{"type":"Lead"},"Id":"00Q5g00000ABCDEFGH"}"#;
        // Salesforce's order: the locator before the rows.
        let first = format!(r#"{{"totalSize":3000,"done":false,"nextRecordsUrl":"{next}","records":[{row}]}}"#);
        assert_eq!(decode(&first).ok(), Some((ids(), Some(Some(next.to_owned())), Some(next.to_owned()))));
        // Any other order still works, the locator known only at the end.
        let last = format!(r#"{{"records":[{row}],"totalSize":3000,"nextRecordsUrl":"{next}","done":false}}"#);
        assert_eq!(decode(&last).ok(), Some((ids(), Some(Some(next.to_owned())), Some(next.to_owned()))));
        // The last page: told there is none once the page is read.
        let done = format!(r#"{{"totalSize":1,"done":true,"records":[{row}],"queryLocator":null}}"#);
        assert_eq!(decode(&done).ok(), Some((ids(), Some(None), None)));
        let null = format!(r#"{{"totalSize":1,"done":true,"nextRecordsUrl":null,"records":[{row}]}}"#);
        assert_eq!(decode(&null).ok(), Some((ids(), Some(None), None)));
        // No rows member: an empty page.
        assert_eq!(decode(r#"{"totalSize":0,"done":true}"#).ok(), Some((vec![], Some(None), None)));
    }

    #[test]
    fn a_page_that_is_not_one_fails_to_decode_and_names_why() {
        for (body, says) in [
            (r#"{"done":true,"records":[]}"#, "missing field `totalSize`"),
            (r#"{"totalSize":1,"done":true,"records":[{"Name":"x"}]}"#, "missing field `Id`"),
            (r#"{"totalSize":1,"done":true,"records":[]} trailing"#, "trailing characters"),
            (r#"[1,2]"#, "a query page"),
        ] {
            match decode(body) {
                Err(Error::Decode(message)) => assert!(message.contains(says), "{body}: {message}"),
                other => panic!("{body}: {:?}", other.map(|page| page.0)),
            }
        }
    }
}
