//! The OAuth 2.0 JWT bearer token exchange (docs/salesforce-facts.md §1): post a signed
//! assertion to `{login_url}/services/oauth2/token`, get an access token and
//! the instance URL to call.
//!
//! The assertion is signed by the token-broker, the only holder of the
//! private key; this module only carries it. Neither the assertion nor the
//! token is ever logged: the token is a [`SecretString`] and error messages
//! never quote a body that could hold one.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde::Deserialize;

use crate::{client::describe_transport, error::Retry};

/// The `grant_type` of the JWT bearer flow.
pub const JWT_BEARER_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The JWT `aud` for production orgs, whatever host the assertion is posted to.
pub const LOGIN_AUDIENCE: &str = "https://login.salesforce.com";
/// The JWT `aud` for sandboxes.
pub const TEST_AUDIENCE: &str = "https://test.salesforce.com";
/// How long a token exchange may take before it counts as unreachable.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// What a successful exchange grants.
///
/// `Debug` prints the token as `[REDACTED]`. Salesforce gives no expiry and
/// no refresh token: the token lives until it has been idle for the org's
/// session timeout, and a 401 `INVALID_SESSION_ID` says it is over.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    /// The session: `Authorization: Bearer <token>`.
    pub access_token: SecretString,
    /// Where every API call goes, e.g. `https://acme.my.salesforce.com`.
    pub instance_url: String,
    /// The org (`00D…`), from the `id` URL.
    pub organization_id: Option<String>,
    /// The user the token acts as (`005…`), from the `id` URL.
    pub user_id: Option<String>,
    /// The scopes granted, space-separated (`web api`).
    pub scope: Option<String>,
}

/// Why no token was granted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// Salesforce refused: its `error` and `error_description`, as sent
    /// (branch on `error`, show `error_description`).
    #[error("Salesforce refused the token exchange ({status} {error}: {error_description})")]
    Rejected {
        /// The HTTP status, 400 for every documented refusal.
        status: u16,
        /// e.g. `invalid_grant`.
        error: String,
        /// e.g. `user hasn't approved this consumer`.
        error_description: String,
    },
    /// No usable answer: could not connect, timed out, a 5xx without an OAuth
    /// error body, or an answer that is not JSON.
    #[error("could not get an answer from Salesforce's token endpoint: {0}")]
    Unreachable(String),
}

impl ExchangeError {
    /// What to do about it: an unreachable login host is
    /// [`Retry::Transient`]; too many logins (`rate_limit_exceeded`) is
    /// [`Retry::PauseTenant`]; any other refusal is [`Retry::Permanent`]
    /// until an admin fixes the connected app or the user.
    pub fn retry(&self) -> Retry {
        match self {
            Self::Unreachable(_) => Retry::Transient,
            Self::Rejected { error, .. } if error == "rate_limit_exceeded" => Retry::PauseTenant,
            Self::Rejected { status, .. } if *status >= 500 => Retry::Transient,
            Self::Rejected { .. } => Retry::Permanent,
        }
    }
}

/// The `aud` claim for a login URL: [`TEST_AUDIENCE`] for
/// `test.salesforce.com` and sandbox My Domains (`*.sandbox.my.salesforce.com`),
/// else [`LOGIN_AUDIENCE`], My Domain URLs included (a My Domain is not a
/// valid audience).
pub fn audience_for(login_url: &str) -> &'static str {
    let host = reqwest::Url::parse(login_url.trim())
        .ok()
        .and_then(|url| url.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    if host == "test.salesforce.com" || host.ends_with(".sandbox.my.salesforce.com") {
        TEST_AUDIENCE
    } else {
        LOGIN_AUDIENCE
    }
}

/// Exchanges a signed JWT assertion for an access token: `POST
/// {login_url}/services/oauth2/token` with the JWT bearer grant.
///
/// `login_url` is `https://login.salesforce.com`, `https://test.salesforce.com`
/// or the org's My Domain; a final `/` is allowed. The call gives up after
/// [`EXCHANGE_TIMEOUT`].
///
/// # Errors
/// [`ExchangeError::Rejected`] with Salesforce's words when it refuses,
/// [`ExchangeError::Unreachable`] when there is no usable answer.
pub async fn exchange(http: &reqwest::Client, login_url: &str, assertion: &str) -> Result<TokenGrant, ExchangeError> {
    let started = Instant::now();
    let url = format!("{}/services/oauth2/token", login_url.trim().trim_end_matches('/'));
    let form = [("grant_type", JWT_BEARER_GRANT_TYPE), ("assertion", assertion)];
    let sent = http
        .post(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&form)
        .timeout(EXCHANGE_TIMEOUT)
        .send()
        .await;
    let result = match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            match crate::client::read_body(response, MAX_GRANT_BYTES).await {
                Ok(body) => read_answer(status, &body),
                Err(crate::client::BodyError::Transport(e)) => Err(ExchangeError::Unreachable(describe_transport(&e))),
                Err(crate::client::BodyError::TooLarge) => Err(ExchangeError::Unreachable(format!(
                    "the login URL answered more than {} KiB, which no token grant is",
                    MAX_GRANT_BYTES >> 10
                ))),
            }
        }
        Err(e) => Err(ExchangeError::Unreachable(describe_transport(&e))),
    };
    let outcome = match &result {
        Ok(_) => "ok",
        Err(ExchangeError::Unreachable(_)) => "unreachable",
        Err(ExchangeError::Rejected { error, .. }) => oauth_error_label(error),
    };
    crate::client::record_call(None, "token", outcome, started.elapsed());
    match &result {
        Ok(grant) => tracing::debug!(org = ?grant.organization_id, "Salesforce granted a token"),
        Err(e) => tracing::debug!(error = %e, "Salesforce token exchange failed"),
    }
    result
}

/// Ends a session: `POST {instance_url}/services/oauth2/revoke` with
/// `token=<access token>`. Salesforce answers 200 when the session is over,
/// and 400 `invalid_token` when it already was (expired, revoked): both mean
/// the token opens nothing any more, so both are `Ok`.
///
/// # Errors
/// [`ExchangeError::Unreachable`] when there is no answer, or an answer that
/// is neither of those (the session may still be live).
pub async fn revoke(http: &reqwest::Client, instance_url: &str, token: &SecretString) -> Result<(), ExchangeError> {
    use secrecy::ExposeSecret as _;
    let started = Instant::now();
    let url = format!("{}/services/oauth2/revoke", instance_url.trim().trim_end_matches('/'));
    let sent = http.post(url).form(&[("token", token.expose_secret())]).timeout(EXCHANGE_TIMEOUT).send().await;
    let result = match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = crate::client::read_body(response, MAX_GRANT_BYTES).await.unwrap_or_default();
            let refusal = serde_json::from_slice::<Refusal>(&body).ok();
            match (status, refusal) {
                (200, _) => Ok(()),
                (400, Some(r)) if r.error == "invalid_token" => Ok(()),
                (status, Some(r)) => Err(ExchangeError::Unreachable(format!(
                    "the revocation answered {status} {}: {}",
                    r.error, r.error_description
                ))),
                (status, None) => Err(ExchangeError::Unreachable(format!("the revocation answered HTTP {status}"))),
            }
        }
        Err(e) => Err(ExchangeError::Unreachable(describe_transport(&e))),
    };
    let outcome = if result.is_ok() { "ok" } else { "unreachable" };
    crate::client::record_call(None, "revoke", outcome, started.elapsed());
    result
}

/// The largest token-exchange answer read: a grant or an OAuth error is
/// well under a KiB.
const MAX_GRANT_BYTES: usize = 64 << 10;

#[derive(Deserialize)]
struct Success {
    access_token: String,
    instance_url: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct Refusal {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Reads the token endpoint's answer. Never quotes the body: a success body
/// holds the token.
fn read_answer(status: u16, body: &[u8]) -> Result<TokenGrant, ExchangeError> {
    if (200..300).contains(&status) {
        let success: Success = serde_json::from_slice(body).map_err(|e| {
            ExchangeError::Unreachable(format!(
                "HTTP {status} answer is not a token ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        let (organization_id, user_id) = success.id.as_deref().map(ids_from_identity_url).unwrap_or_default();
        return Ok(TokenGrant {
            access_token: SecretString::from(success.access_token),
            instance_url: success.instance_url.trim_end_matches('/').to_owned(),
            organization_id,
            user_id,
            scope: success.scope,
        });
    }
    match serde_json::from_slice::<Refusal>(body) {
        Ok(refusal) => {
            Err(ExchangeError::Rejected { status, error: refusal.error, error_description: refusal.error_description })
        }
        Err(_) => Err(ExchangeError::Unreachable(format!("HTTP {status} without an OAuth error body"))),
    }
}

/// The org and user ids at the end of the identity URL
/// (`…/id/<00D orgId>/<005 userId>`).
fn ids_from_identity_url(id: &str) -> (Option<String>, Option<String>) {
    let mut parts = id.trim_end_matches('/').rsplit('/');
    let user = parts.next().filter(|p| p.starts_with("005") && is_id(p));
    let org = parts.next().filter(|p| p.starts_with("00D") && is_id(p));
    match (org, user) {
        (Some(org), Some(user)) => (Some(org.to_owned()), Some(user.to_owned())),
        _ => (None, None),
    }
}

fn is_id(text: &str) -> bool {
    matches!(text.len(), 15 | 18) && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A bounded metric label for a refusal's `error`.
fn oauth_error_label(error: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "invalid_grant",
        "invalid_client_id",
        "invalid_client",
        "invalid_app_access",
        "inactive_user",
        "inactive_org",
        "rate_limit_exceeded",
        "invalid_scope",
        "unsupported_grant_type",
        "invalid_request",
    ];
    KNOWN.iter().find(|k| **k == error).copied().unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn audience_follows_the_login_host() {
        fn check(login_url: &str, expected: &str) {
            assert_eq!(audience_for(login_url), expected, "{login_url}");
        }
        check("https://login.salesforce.com", LOGIN_AUDIENCE);
        check("https://login.salesforce.com/", LOGIN_AUDIENCE);
        check("https://test.salesforce.com", TEST_AUDIENCE);
        check("https://TEST.salesforce.com/", TEST_AUDIENCE);
        check("https://acme--uat.sandbox.my.salesforce.com", TEST_AUDIENCE);
        check("https://acme.my.salesforce.com", LOGIN_AUDIENCE);
        check("https://test.salesforce.com.evil.example", LOGIN_AUDIENCE);
        check("http://127.0.0.1:8080", LOGIN_AUDIENCE);
        check("not a url", LOGIN_AUDIENCE);
    }

    #[test]
    fn the_documented_success_body_is_read() {
        let body = br#"{"access_token":"00Dxx0000001gPL!AR8AQJXg5oj8jXSgxJfA0lBog.39AsX","scope":"web openid api id","instance_url":"https://yourInstance.salesforce.com","id":"https://yourInstance.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS","token_type":"Bearer","issued_at":"1333685628","signature":"x"}"#;
        let grant = read_answer(200, body).expect("grant");
        assert_eq!(grant.access_token.expose_secret(), "00Dxx0000001gPL!AR8AQJXg5oj8jXSgxJfA0lBog.39AsX");
        assert_eq!(grant.instance_url, "https://yourInstance.salesforce.com");
        assert_eq!(grant.organization_id.as_deref(), Some("00Dxx0000001gPLEAY"));
        assert_eq!(grant.user_id.as_deref(), Some("005xx000001SwiUAAS"));
        assert_eq!(grant.scope.as_deref(), Some("web openid api id"));
        let debug = format!("{grant:?}");
        assert!(!debug.contains("AR8AQ"), "{debug}");
    }

    #[test]
    fn answers_are_classified() {
        fn check(status: u16, body: &str, expected: Result<(), ExchangeError>) {
            assert_eq!(read_answer(status, body.as_bytes()).map(|_| ()), expected, "{status} {body}");
        }
        let rejected = |status: u16, error: &str, description: &str| {
            Err(ExchangeError::Rejected { status, error: error.to_owned(), error_description: description.to_owned() })
        };
        check(
            400,
            r#"{"error":"invalid_grant","error_description":"user hasn't approved this consumer"}"#,
            rejected(400, "invalid_grant", "user hasn't approved this consumer"),
        );
        check(
            400,
            r#"{"error":"invalid_client_id","error_description":"client identifier invalid"}"#,
            rejected(400, "invalid_client_id", "client identifier invalid"),
        );
        check(400, r#"{"error":"invalid_grant"}"#, rejected(400, "invalid_grant", ""));
        check(
            503,
            "<html>Maintenance</html>",
            Err(ExchangeError::Unreachable("HTTP 503 without an OAuth error body".into())),
        );
        check(404, "", Err(ExchangeError::Unreachable("HTTP 404 without an OAuth error body".into())));
        check(200, r#"{"access_token":"t","instance_url":"https://x.my.salesforce.com"}"#, Ok(()));
    }

    #[test]
    fn an_unreadable_success_never_quotes_the_body() {
        let body = br#"{"access_token":"00Dsecret!token","instance_url":42}"#;
        let Err(ExchangeError::Unreachable(message)) = read_answer(200, body) else { panic!("not unreachable") };
        assert!(!message.contains("secret"), "{message}");
        let Err(ExchangeError::Unreachable(message)) = read_answer(200, b"00Dsecret!token") else {
            panic!("not unreachable")
        };
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn ids_come_from_the_identity_url() {
        fn check(id: &str, org: Option<&str>, user: Option<&str>) {
            let (o, u) = ids_from_identity_url(id);
            assert_eq!((o.as_deref(), u.as_deref()), (org, user), "{id}");
        }
        check(
            "https://login.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS",
            Some("00Dxx0000001gPLEAY"),
            Some("005xx000001SwiUAAS"),
        );
        check("https://x/id/00Dxx0000001gPL/005xx000001SwiU/", Some("00Dxx0000001gPL"), Some("005xx000001SwiU"));
        check("https://x/id/005xx000001SwiUAAS/00Dxx0000001gPLEAY", None, None);
        check("https://x/id/", None, None);
        check("", None, None);
    }

    #[test]
    fn refusals_are_classified() {
        fn check(error: ExchangeError, expected: Retry) {
            assert_eq!(error.retry(), expected, "{error}");
        }
        let rejected = |status: u16, error: &str| ExchangeError::Rejected {
            status,
            error: error.to_owned(),
            error_description: String::new(),
        };
        check(ExchangeError::Unreachable("connection refused".into()), Retry::Transient);
        check(rejected(400, "invalid_grant"), Retry::Permanent);
        check(rejected(400, "invalid_client_id"), Retry::Permanent);
        check(rejected(400, "rate_limit_exceeded"), Retry::PauseTenant);
        check(rejected(503, "server_error"), Retry::Transient);
    }
}
