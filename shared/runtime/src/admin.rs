//! What the admin APIs of the token-broker and the importer share
//! (admin-api.yaml, the admin API contract outside this repository; README.md describes the
//! endpoints): the bearer token check and the limits every admin
//! router is served behind ([`protect`]), the language of messages, the
//! path's checked tenant id ([`TenantPath`]), and RFC 9457 problem documents
//! with a stable `code`.

use std::{borrow::Cow, collections::HashMap, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{FromRequestParts, Path, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use fa_messages::TenantId;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::Semaphore;

/// The language of a message meant for an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// Japanese, when `Accept-Language` prefers `ja`.
    Ja,
    /// English otherwise.
    #[default]
    En,
}

impl Lang {
    /// The language `Accept-Language` prefers: Japanese when `ja` (or
    /// `ja-JP`, ...) carries the highest weight among `ja` and `en`, else
    /// English. A missing or unreadable header is English.
    pub fn from_accept_language(value: Option<&str>) -> Self {
        let Some(value) = value else { return Self::En };
        let mut best: Option<(f32, Self)> = None;
        for item in value.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let weight = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let lang = match tag.split('-').next() {
                Some("ja") => Self::Ja,
                Some("en") | Some("*") => Self::En,
                _ => continue,
            };
            if weight > 0.0 && best.is_none_or(|(w, _)| weight > w) {
                best = Some((weight, lang));
            }
        }
        best.map(|(_, l)| l).unwrap_or(Self::En)
    }

    /// `ja` or `en`.
    pub fn pick<'a>(self, en: &'a str, ja: &'a str) -> &'a str {
        match self {
            Self::Ja => ja,
            Self::En => en,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_accept_language(parts.headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok())))
    }
}

/// The `{tenant_id}` of an admin path, checked: a handler that takes it sees
/// only a [`TenantId`]. A malformed one is answered before the handler runs,
/// 400 `invalid_request` ([`Problem::invalid_tenant_id`]) in the request's
/// language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantPath(pub TenantId);

impl<S: Send + Sync> FromRequestParts<S> for TenantPath {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let lang = Lang::from_accept_language(parts.headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Some(text) = params.get("tenant_id") else {
            tracing::error!(path = %parts.uri.path(), "TenantPath on a route without {{tenant_id}}");
            return Err(Problem::internal().render(lang));
        };
        TenantId::new(text.as_str()).map(Self).map_err(|e| Problem::invalid_tenant_id(e.reason()).render(lang))
    }
}

/// A message for an admin in both languages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// English.
    pub en: Cow<'static, str>,
    /// Japanese.
    pub ja: Cow<'static, str>,
}

impl Text {
    /// A message in English and Japanese.
    pub fn new(en: impl Into<Cow<'static, str>>, ja: impl Into<Cow<'static, str>>) -> Self {
        Self { en: en.into(), ja: ja.into() }
    }

    /// The message in `lang`.
    pub fn get(&self, lang: Lang) -> &str {
        lang.pick(&self.en, &self.ja)
    }
}

/// An RFC 9457 problem document with the contract's `code`, rendered in the
/// request's language.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable machine-readable code, e.g. `not_connected`.
    pub code: &'static str,
    /// A short English summary.
    pub title: &'static str,
    /// What happened and what to do, in both languages.
    pub detail: Text,
    /// Extra members (e.g. `salesforce_error`), added as they are.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Problem {
    /// A problem with no extra members.
    pub fn new(status: StatusCode, code: &'static str, title: &'static str, detail: Text) -> Self {
        Self { status, code, title, detail, extra: serde_json::Map::new() }
    }

    /// Adds an extra member.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// 400 `invalid_request`: the body or a path parameter is malformed.
    pub fn invalid_request(detail: Text) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", "Invalid request", detail)
    }

    /// 400 `invalid_request` for a malformed `{tenant_id}` in the path.
    pub fn invalid_tenant_id(reason: &str) -> Self {
        Self::invalid_request(Text::new(
            format!("The tenant id in the path is invalid: {reason}"),
            format!("パスのテナント ID が正しくありません: {reason}"),
        ))
    }

    /// 404 `not_connected`: the tenant has no Salesforce connection.
    pub fn not_connected(tenant_id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_connected",
            "Not connected",
            Text::new(
                format!(
                    "Tenant {tenant_id} has no Salesforce connection. Connect the org first ([管理者機能] → [salesforce連携])."
                ),
                format!(
                    "テナント {tenant_id} は Salesforce に接続されていません。先に [管理者機能] → [salesforce連携] で組織を登録してください。"
                ),
            ),
        )
    }

    /// 500 `internal_error`: something on our side failed; the log says what.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal error",
            Text::new(
                "The connector failed on its side; try again, and if it persists tell Front Agent support (the service log has the cause).",
                "コネクタ側でエラーが発生しました。もう一度お試しください。続く場合は Front Agent サポートにお問い合わせください。",
            ),
        )
    }

    /// The problem in `lang`, as a response.
    pub fn render(&self, lang: Lang) -> Response {
        let mut body = serde_json::Map::new();
        body.insert("type".into(), format!("https://frontagent.jp/problems/{}", self.code).into());
        body.insert("title".into(), self.title.into());
        body.insert("status".into(), self.status.as_u16().into());
        body.insert("detail".into(), self.detail.get(lang).into());
        body.insert("code".into(), self.code.into());
        for (k, v) in &self.extra {
            body.insert(k.clone(), v.clone());
        }
        let mut response = (self.status, serde_json::Value::Object(body).to_string()).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A problem together with the language to render it in, as a handler's
/// error type (boxed: handlers return it in `Result`s).
#[derive(Debug)]
pub struct LocalizedProblem(pub Box<Problem>, pub Lang);

impl LocalizedProblem {
    /// `problem`, to be rendered in `lang`.
    pub fn new(problem: Problem, lang: Lang) -> Self {
        Self(Box::new(problem), lang)
    }

    /// 500 `internal_error` in `lang`, after logging what failed and why
    /// (the cause stays in the log, not in the answer).
    pub fn internal(lang: Lang, what: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{what} failed");
        Self::new(Problem::internal(), lang)
    }
}

impl IntoResponse for LocalizedProblem {
    fn into_response(self) -> Response {
        self.0.render(self.1)
    }
}

/// The admin token, compared in constant time.
#[derive(Clone)]
pub struct AdminToken(std::sync::Arc<SecretString>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken([redacted])")
    }
}

impl AdminToken {
    /// Wraps the configured `FA_SF_ADMIN_TOKEN`.
    pub fn new(token: SecretString) -> Self {
        Self(std::sync::Arc::new(token))
    }

    /// Whether `headers` carry `Authorization: Bearer <token>`. The
    /// comparison takes the same time wherever the first difference is.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        else {
            return false;
        };
        constant_time_eq(given.trim().as_bytes(), self.0.expose_secret().as_bytes())
    }
}

/// Equality whose time depends only on the lengths, not on where the inputs
/// differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // aws-lc's CRYPTO_memcmp under the hood; the length is not secret.
    a.len() == b.len() && aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// How many admin requests one process works on at once; more are refused
/// with 503 `busy` rather than queued (a registration parses keys of up to
/// 8192 bits and logs in to Salesforce).
pub const MAX_CONCURRENT_ADMIN_REQUESTS: usize = 32;

/// How long an admin request may take before its caller gets 504
/// `timeout`: beyond the 30 s a Salesforce login may take.
pub const ADMIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The token, and the limits of [`protect`].
#[derive(Clone)]
struct Guard {
    token: AdminToken,
    slots: Arc<Semaphore>,
    timeout: Duration,
}

/// Serves `routes` behind the admin token (401 `unauthorized` without it,
/// telling nothing else about the request), at most
/// [`MAX_CONCURRENT_ADMIN_REQUESTS`] at once and [`ADMIN_REQUEST_TIMEOUT`]
/// each. A request that runs out of time is answered 504 but not cut off:
/// it finishes in the background, so a registration is never left half
/// done (stored, but its old tokens not yet retired).
pub fn protect(routes: Router, token: AdminToken) -> Router {
    protect_with(routes, token, MAX_CONCURRENT_ADMIN_REQUESTS, ADMIN_REQUEST_TIMEOUT)
}

/// [`protect`] with other limits (tests).
pub fn protect_with(routes: Router, token: AdminToken, concurrent: usize, timeout: Duration) -> Router {
    let guard = Guard { token, slots: Arc::new(Semaphore::new(concurrent)), timeout };
    routes.route_layer(middleware::from_fn_with_state(guard, guarded))
}

async fn guarded(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let lang = Lang::from_accept_language(request.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
    if !guard.token.admits(request.headers()) {
        return unauthorized(lang);
    }
    let Ok(permit) = guard.slots.clone().try_acquire_owned() else {
        metrics::counter!("fa_admin_requests_refused_total", "reason" => "busy").increment(1);
        let mut response = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Too many admin requests at once",
            Text::new(
                format!("{MAX_CONCURRENT_ADMIN_REQUESTS} admin requests are already in progress; try again in a few seconds."),
                format!("管理リクエストがすでに {MAX_CONCURRENT_ADMIN_REQUESTS} 件処理中です。数秒後にもう一度お試しください。"),
            ),
        )
        .render(lang);
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        return response;
    };
    let work = tokio::spawn(async move {
        let response = next.run(request).await;
        drop(permit);
        response
    });
    match tokio::time::timeout(guard.timeout, work).await {
        Ok(Ok(response)) => response,
        Ok(Err(_panicked)) => Problem::internal().render(lang),
        Err(_) => {
            metrics::counter!("fa_admin_requests_refused_total", "reason" => "timeout").increment(1);
            tracing::warn!(timeout = ?guard.timeout, "an admin request ran out of time; it finishes in the background");
            Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                "The request took too long",
                Text::new(
                    "The request did not finish in time (Salesforce or the database is slow). It goes on in the \
                     background: read the resource again in a minute before repeating it.",
                    "時間内に完了しませんでした(Salesforce またはデータベースの応答が遅れています)。処理は続行中です。\
                     繰り返す前に、1 分ほど後に状態を確認してください。",
                ),
            )
            .render(lang)
        }
    }
}

fn unauthorized(lang: Lang) -> Response {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Unauthorized",
        Text::new(
            "Send Authorization: Bearer <FA_SF_ADMIN_TOKEN>.",
            "Authorization: Bearer <FA_SF_ADMIN_TOKEN> を付けてください。",
        ),
    )
    .render(lang)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_of_japanese_and_english() {
        let check = |header: Option<&str>, expected: Lang| {
            assert_eq!(Lang::from_accept_language(header), expected, "{header:?}");
        };
        check(None, Lang::En);
        check(Some("ja"), Lang::Ja);
        check(Some("ja-JP,ja;q=0.9,en-US;q=0.8"), Lang::Ja);
        check(Some("en-US,en;q=0.9,ja;q=0.8"), Lang::En);
        check(Some("fr, ja;q=0.5"), Lang::Ja);
        check(Some("ja;q=0, en"), Lang::En);
        check(Some("de"), Lang::En);
        check(Some("JA"), Lang::Ja);
        check(Some(""), Lang::En);
    }

    /// A router whose one route takes `work` and then records that it
    /// finished, behind `protect_with(1 at once, 300 ms)`.
    async fn serve_slow(work: Duration, finished: Arc<std::sync::atomic::AtomicBool>) -> String {
        let routes = Router::new().route(
            "/slow",
            axum::routing::get(move || async move {
                tokio::time::sleep(work).await;
                finished.store(true, std::sync::atomic::Ordering::SeqCst);
                "done"
            }),
        );
        let token = AdminToken::new(SecretString::from("0123456789abcdef0123456789abcdef"));
        let app = protect_with(routes, token, 1, Duration::from_millis(300));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/slow", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    async fn get(url: &str, token: &str) -> (u16, Option<String>, serde_json::Value) {
        let response = reqwest::Client::new()
            .get(url)
            .bearer_auth(token)
            .header("Accept-Language", "ja")
            .send()
            .await
            .expect("answer");
        let status = response.status().as_u16();
        let retry = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = response.text().await.expect("body");
        (status, retry, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }

    #[tokio::test]
    async fn admin_requests_beyond_the_limit_are_refused_and_a_slow_one_answers_504_but_finishes() {
        const TOKEN: &str = "0123456789abcdef0123456789abcdef";
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let url = serve_slow(Duration::from_millis(800), finished.clone()).await;

        let (status, _, body) = get(&url, "wrong").await;
        assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")), "{body}");

        let first = tokio::spawn({
            let url = url.clone();
            async move { get(&url, TOKEN).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (status, retry, body) = get(&url, TOKEN).await;
        assert_eq!((status, body["code"].as_str()), (503, Some("busy")), "{body}");
        assert_eq!(retry.as_deref(), Some("2"));
        assert!(body["detail"].as_str().is_some_and(|d| d.contains("数秒後")), "{body}");

        let (status, _, body) = first.await.expect("first");
        assert_eq!((status, body["code"].as_str()), (504, Some("timeout")), "{body}");
        assert!(!finished.load(std::sync::atomic::Ordering::SeqCst), "answered before the work ended");
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(finished.load(std::sync::atomic::Ordering::SeqCst), "the work was not cut off");
        let (status, _, body) = get(&url, TOKEN).await;
        assert_eq!(status, 504, "the slot is free again: {body}");
    }

    #[tokio::test]
    async fn a_malformed_tenant_id_in_the_path_never_reaches_the_handler() {
        let routes = Router::new().route(
            "/v1/tenants/{tenant_id}/things/{thing}",
            axum::routing::get(|TenantPath(tenant): TenantPath| async move { tenant.to_string() }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}/v1/tenants", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, routes).await });
        let ask = |path: String, lang: &'static str| async move {
            let response =
                reqwest::Client::new().get(path).header("Accept-Language", lang).send().await.expect("answer");
            (response.status().as_u16(), response.text().await.expect("body"))
        };

        assert_eq!(ask(format!("{base}/acme-jp/things/1"), "en").await, (200, "acme-jp".to_owned()));
        let (status, body) = ask(format!("{base}/-acme/things/1"), "ja").await;
        let body: serde_json::Value = serde_json::from_str(&body).expect("a problem document");
        assert_eq!((status, body["code"].as_str()), (400, Some("invalid_request")), "{body}");
        let expected = Problem::invalid_tenant_id("must start with an ASCII letter or digit");
        assert_eq!(body["detail"].as_str(), Some(expected.detail.get(Lang::Ja)), "{body}");
    }

    #[test]
    fn the_token_must_match_exactly() {
        let token = AdminToken::new(SecretString::from("s3cret-token"));
        let check = |value: Option<&str>, expected: bool| {
            let mut headers = HeaderMap::new();
            if let Some(v) = value {
                headers.insert(header::AUTHORIZATION, HeaderValue::from_str(v).expect("header"));
            }
            assert_eq!(token.admits(&headers), expected, "{value:?}");
        };
        check(Some("Bearer s3cret-token"), true);
        check(None, false);
        check(Some("Bearer s3cret-toke"), false);
        check(Some("Bearer s3cret-token2"), false);
        check(Some("Bearer S3cret-token"), false);
        check(Some("Basic s3cret-token"), false);
        check(Some("s3cret-token"), false);
        check(Some("Bearer "), false);
    }
}
