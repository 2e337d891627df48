//! fa-salesforce: the Salesforce client every Front Agent service shares.
//!
//! The token-broker uses it to exchange a signed JWT for a session and to
//! list the org's users; the importer to page through SOQL results; the
//! activity-writer to write. It speaks Salesforce's REST and OAuth APIs as
//! `docs/salesforce-facts.md` describes them, and is tested against `sfsim`.
//!
//! Layout:
//! - [`oauth`]: the JWT bearer token exchange ([`exchange`], [`TokenGrant`],
//!   [`ExchangeError`]) and the `aud` a login URL needs ([`audience_for`]).
//!   The JWT is signed elsewhere: no private key comes here.
//! - [`client`]: [`Client`], one org's instance URL and session; SOQL
//!   [`Client::query`] and [`Client::query_more`] giving [`QueryPage`]s of
//!   the caller's own row type.
//! - [`composite`]: up to five queries in one API call
//!   ([`Client::queries`], [`Queried`]), each answered on its own.
//! - [`write`](mod@write): creating records, one with [`Client::create`]
//!   or up to 200 of any types in one sObject Collections call with
//!   [`Client::create_records`] ([`NewRecord`] in, [`Created`] out: one
//!   result per record, in order).
//! - [`error`]: Salesforce's error bodies as data ([`ApiError`] for a call,
//!   [`ItemError`] for one record of a Collections call, both with the
//!   duplicates a duplicate rule named; [`ErrorCode`]), the crate's
//!   [`Error`], and [`Retry`], the one decision of what to do about a
//!   failure (retry, refresh the token, pause the tenant, give up).
//! - [`limits`]: the `Sforce-Limit-Info` allowance ([`ApiUsage`]), read from
//!   every answer.
//! - [`datetime`]: Salesforce's datetimes in answers and in WHERE clauses.
//! - [`soql`]: string literals that cannot break out of a query.
//! - [`users`]: the org's active users, and one user by id.
//! - [`replication`]: the records deleted in a window
//!   ([`Client::deleted`]), which outlive the recycle bin.
//!
//! Secrets: the access token is a [`secrecy::SecretString`], sent only as
//! `Authorization: Bearer` to the instance URL; neither it nor the JWT
//! assertion is logged or put into an error message.
//!
//! Customer data: record field values go into request bodies only, never
//! into logs, metrics or error messages.
//!
//! Metrics (through the `metrics` facade; the process installs the
//! recorder): `fa_salesforce_requests_total{service?, route, outcome,
//! error_code}` and `fa_salesforce_request_duration_seconds{service?, route}`
//! for every call (routes `query`, `query_more`, `composite_query`, `create`,
//! `create_records`; a Collections call that refused some records is still
//! a `success`). The `fa_salesforce_api_usage_ratio` gauge is the caller's
//! to set from [`QueryPage::usage`], [`Created::usage`] or
//! [`ApiError::limit`], under its own tenant label policy.

// `Error::Api` holds its `ApiError` by value (128 bytes since it names
// duplicates): services match `Error::Api(api)` and keep `api`, and moving
// 128 bytes is nothing beside the HTTP call that produced it.
#![allow(clippy::result_large_err, reason = "Error::Api keeps ApiError unboxed for the services that match on it")]

pub mod client;
pub mod composite;
pub mod datetime;
pub mod error;
pub mod limits;
pub mod oauth;
pub mod replication;
pub mod soql;
pub mod users;
pub mod write;

pub use client::{BatchSize, Client, DEFAULT_API_VERSION, PageRequest, QueryPage, RawPage};
pub use composite::Queried;
pub use error::{ApiError, Error, ErrorCode, ItemError, Retry};
pub use limits::ApiUsage;
pub use oauth::{ExchangeError, TokenGrant, audience_for, exchange};
pub use users::{User, active_users, user};
pub use write::{Created, NewRecord};

/// The HTTP client every service talks to Salesforce with: no redirects (a
/// login URL must not lead anywhere the allowlist did not admit, and the
/// token goes only to the instance URL), 10 s to connect, and 30 s for a
/// call that sets no wait of its own (queries wait [`client::QUERY_TIMEOUT`],
/// the token exchange [`oauth::EXCHANGE_TIMEOUT`]).
///
/// # Errors
/// When the TLS backend cannot be set up.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(30))
        .user_agent(concat!("front-agent-salesforce-connector/", env!("CARGO_PKG_VERSION")))
        .build()
}
