//! The token-broker's admin API (admin-api.yaml, paths tagged
//! `token-broker`): connect, show and disconnect the org; list its users;
//! link Front Agent users to them. Thin handlers around [`crate::connection`],
//! [`crate::token`] and [`crate::user_link`].

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, put},
};
use fa_amqp::Broker;
use fa_messages::{ImportReason, ImportRequestedV1, SObject, TenantId};
use fa_runtime::admin::{AdminToken, Lang, LocalizedProblem, Problem, Text};
use fa_runtime::config::ApiVersion;
use fa_salesforce::{Client, oauth::ExchangeError};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use sqlx::PgPool;

use crate::{
    connection::{self, ConnectionView, NewConnection, Saved},
    hints::{self, Cause},
    login_url::{Allowlist, DEFAULT_LOGIN_URL, InstanceUrlRefusal},
    private_key::RsaPrivateKey,
    sealed::{Binding, Keyring},
    token::{self, Issued, TokenError, Tokens},
    user_link,
};

/// What the handlers share.
pub struct Api {
    /// The database.
    pub pool: PgPool,
    /// Seals private keys.
    pub keyring: Arc<Keyring>,
    /// `FA_SF_LOGIN_URL_ALLOWLIST`.
    pub allowlist: Allowlist,
    /// For Salesforce.
    pub http: reqwest::Client,
    /// The token cache.
    pub tokens: Arc<Tokens>,
    /// For `import.requested`.
    pub broker: Broker,
    /// `FA_SF_SALESFORCE_API_VERSION`.
    pub api_version: ApiVersion,
}

type Shared = State<Arc<Api>>;
type Answer = Result<Response, LocalizedProblem>;

/// The routes, behind the admin token.
pub fn router(api: Arc<Api>, token: AdminToken) -> Router {
    let routes = Router::new()
        .route("/v1/tenants/{tenant_id}/salesforce/connection", put(connect).get(show_connection).delete(disconnect))
        .route("/v1/tenants/{tenant_id}/salesforce/users", get(list_users))
        .route("/v1/tenants/{tenant_id}/user-links", get(list_links))
        .route("/v1/tenants/{tenant_id}/user-links/{user_id}", put(link_user).delete(unlink_user))
        .with_state(api);
    fa_runtime::admin::protect(routes, token)
}

fn tenant(text: &str, lang: Lang) -> Result<TenantId, LocalizedProblem> {
    TenantId::new(text).map_err(|e| LocalizedProblem::new(Problem::invalid_tenant_id(e.reason()), lang))
}

fn invalid(lang: Lang, en: String, ja: String) -> LocalizedProblem {
    LocalizedProblem::new(Problem::invalid_request(Text::new(en, ja)), lang)
}

#[derive(Deserialize)]
struct ConnectionRequest {
    consumer_key: String,
    username: String,
    private_key: SecretString,
    #[serde(default)]
    login_url: Option<String>,
    objects: Vec<String>,
}

impl std::fmt::Debug for ConnectionRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionRequest").field("username", &self.username).finish_non_exhaustive()
    }
}

/// A registration that passed every local check.
struct Registration {
    consumer_key: String,
    username: String,
    key: RsaPrivateKey,
    login_url: String,
    objects: Vec<SObject>,
}

async fn parse_registration(body: &[u8], allowlist: &Allowlist, lang: Lang) -> Result<Registration, LocalizedProblem> {
    let request: ConnectionRequest = serde_json::from_slice(body).map_err(|e| {
        invalid(
            lang,
            format!("The body is not a valid connection request: {e}. Send consumer_key, username, private_key and objects."),
            format!("リクエストの内容が正しくありません: {e}。consumer_key、username、private_key、objects を送ってください。"),
        )
    })?;
    let consumer_key = request.consumer_key.trim().to_owned();
    if consumer_key.is_empty() || consumer_key.chars().count() > 512 {
        return Err(invalid(
            lang,
            "consumer_key must be the Consumer Key of the connected app (1 to 512 characters).".into(),
            "consumer_key には接続アプリケーションの「コンシューマー鍵」を指定してください(1〜512 文字)。".into(),
        ));
    }
    let username = request.username.trim().to_owned();
    let length = username.chars().count();
    if !(3..=255).contains(&length) || username.contains(char::is_whitespace) {
        return Err(invalid(
            lang,
            "username must be the Salesforce username (an e-mail-like login, 3 to 255 characters).".into(),
            "username には Salesforce のユーザー名(メールアドレス形式のログイン ID、3〜255 文字)を指定してください。"
                .into(),
        ));
    }
    let key_length = request.private_key.expose_secret().chars().count();
    if key_length == 0 || key_length > 20_000 {
        return Err(invalid(
            lang,
            "private_key must be the text of server.key (at most 20,000 characters).".into(),
            "private_key には server.key の内容を貼り付けてください(20,000 文字以内)。".into(),
        ));
    }
    let mut objects = Vec::new();
    for name in &request.objects {
        let object: SObject = name.parse().map_err(|_| {
            invalid(
                lang,
                format!("objects may only name Lead, Contact and Account, not {name:?}."),
                format!("objects に指定できるのは Lead、Contact、Account のみです({name:?} は指定できません)。"),
            )
        })?;
        if objects.contains(&object) {
            return Err(invalid(
                lang,
                format!("objects names {name} twice."),
                format!("objects に {name} が 2 回指定されています。"),
            ));
        }
        objects.push(object);
    }
    if objects.is_empty() {
        return Err(invalid(
            lang,
            "objects must name at least one of Lead, Contact, Account.".into(),
            "objects には Lead、Contact、Account のうち少なくとも 1 つを指定してください。".into(),
        ));
    }
    let url = request.login_url.as_deref().map(str::trim).filter(|u| !u.is_empty()).unwrap_or(DEFAULT_LOGIN_URL);
    let login_url = allowlist.check(url).map_err(|refusal| {
        LocalizedProblem::new(
            Problem::new(
                StatusCode::BAD_REQUEST,
                "login_url_not_allowed",
                "Login URL not allowed",
                refusal.message(url),
            ),
            lang,
        )
    })?;
    // Parsing checks the key by signing with it: up to 8192 bits, tens of
    // milliseconds of CPU, off the async workers.
    let pasted = request.private_key;
    let parsed = tokio::task::spawn_blocking(move || RsaPrivateKey::parse(pasted.expose_secret()))
        .await
        .map_err(|e| LocalizedProblem::internal(lang, "parsing the private key", &e))?;
    let key = parsed.map_err(|refusal| {
        LocalizedProblem::new(
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_private_key",
                "Invalid private key",
                hints::key_hint(&refusal),
            )
            .with("reason", refusal.reason()),
            lang,
        )
    })?;
    Ok(Registration { consumer_key, username, key, login_url: login_url.as_str().to_owned(), objects })
}

fn exchange_problem(error: &ExchangeError, lang: Lang) -> LocalizedProblem {
    let problem = match error {
        ExchangeError::Rejected { error, error_description, .. } => {
            let cause = Cause::of(error, error_description);
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "salesforce_rejected",
                "Salesforce refused the login",
                cause.hint(),
            )
            .with("cause", cause.as_str())
            .with("salesforce_error", error.as_str())
            .with("salesforce_error_description", error_description.as_str())
        }
        ExchangeError::Unreachable(why) => Problem::new(
            StatusCode::BAD_GATEWAY,
            "salesforce_unreachable",
            "Salesforce did not answer",
            Text::new(
                format!("No answer from the login URL ({why}). Check the login URL and try again in a few minutes."),
                format!(
                    "ログイン URL から応答がありません({why})。ログイン URL を確認し、数分後にもう一度お試しください。"
                ),
            ),
        ),
    };
    LocalizedProblem::new(problem, lang)
}

/// 502 `instance_url_not_allowed`: the login URL answered, but with an
/// `instance_url` outside Salesforce (and the allowlist), an answer no token
/// is sent to; the token is not used and nothing is stored.
fn instance_url_problem(refusal: &InstanceUrlRefusal, lang: Lang) -> LocalizedProblem {
    let problem = Problem::new(
        StatusCode::BAD_GATEWAY,
        InstanceUrlRefusal::CODE,
        "Salesforce's answer names a host tokens are not sent to",
        Text::new(
            format!(
                "The login answered, but {refusal}; the token was not used. Check login_url: use \
                 https://login.salesforce.com, https://test.salesforce.com or your https://<My Domain>.my.salesforce.com, \
                 and connect again."
            ),
            format!(
                "ログインの応答にある instance_url がトークンの送り先として認められない(https の Salesforce ホストではない)ため、\
                 トークンは使用しませんでした({refusal})。login_url を確認し(https://login.salesforce.com、\
                 https://test.salesforce.com、または https://<私のドメイン>.my.salesforce.com)、もう一度接続してください。"
            ),
        ),
    );
    LocalizedProblem::new(problem, lang)
}

async fn connect(State(api): Shared, Path(tenant_id): Path<String>, lang: Lang, body: Bytes) -> Answer {
    let tenant = tenant(&tenant_id, lang)?;
    let registration = parse_registration(&body, &api.allowlist, lang).await?;
    let Registration { consumer_key, username, key, login_url, objects } = registration;
    tracing::info!(tenant_id = %tenant, %username, %login_url, key = ?key, "registering a Salesforce connection");

    let grant = token::exchange(&api.http, &key, &consumer_key, &username, &login_url).await.map_err(|e| {
        tracing::info!(tenant_id = %tenant, error = %e, "registration refused: the token exchange failed");
        exchange_problem(&e, lang)
    })?;
    let mut issued = Issued::from_grant(grant, &api.allowlist, 0).map_err(|refusal| {
        tracing::warn!(tenant_id = %tenant, %login_url, reason = %refusal,
            "registration refused: the token exchange answered an instance_url no token is sent to");
        instance_url_problem(&refusal, lang)
    })?;

    let binding =
        Binding { tenant: tenant.as_str(), login_url: &login_url, username: &username, consumer_key: &consumer_key };
    let sealed = api.keyring.seal(key.pkcs8_der(), &binding.aad());
    let new = NewConnection {
        consumer_key: &consumer_key,
        username: &username,
        login_url: &login_url,
        instance_url: &issued.instance_url,
        organization_id: issued.organization_id.as_deref(),
        salesforce_user_id: issued.user_id.as_deref(),
        objects: &objects,
        sealed_key: &sealed,
    };
    let Saved { stored, links_dropped, replaced } = connection::save(&api.pool, &tenant, &new)
        .await
        .map_err(|e| LocalizedProblem::internal(lang, "storing the connection", &e))?;
    issued.generation = stored.generation;
    if let Some(replaced) = replaced {
        retire(&api, &tenant, replaced, Some(issued.token_id.clone())).await;
    }
    api.tokens.seed(&tenant, issued).await;
    tracing::info!(tenant_id = %tenant, organization_id = ?stored.organization_id, links_dropped, "Salesforce connection registered");

    let request = ImportRequestedV1 {
        tenant_id: tenant.clone(),
        reason: ImportReason::Connected,
        requested_at: time::OffsetDateTime::now_utc(),
    };
    if let Err(e) = api.broker.publish(&request).await {
        // The connection stands; the importer's schedule picks up a tenant
        // that has never been imported.
        tracing::error!(tenant_id = %tenant, error = %e, "could not publish import.requested after connecting");
    }
    Ok(Json(ConnectionView::from(&stored)).into_response())
}

async fn show_connection(State(api): Shared, Path(tenant_id): Path<String>, lang: Lang) -> Answer {
    let tenant = tenant(&tenant_id, lang)?;
    let stored = connection::load(&api.pool, &tenant)
        .await
        .map_err(|e| LocalizedProblem::internal(lang, "reading the connection", &e))?
        .ok_or_else(|| LocalizedProblem::new(Problem::not_connected(tenant.as_str()), lang))?;
    Ok(Json(ConnectionView::from(&stored)).into_response())
}

async fn disconnect(State(api): Shared, Path(tenant_id): Path<String>, lang: Lang) -> Answer {
    let tenant = tenant(&tenant_id, lang)?;
    let deleted = connection::delete(&api.pool, &tenant)
        .await
        .map_err(|e| LocalizedProblem::internal(lang, "deleting the connection", &e))?;
    let Some(generation) = deleted else {
        return Err(LocalizedProblem::new(Problem::not_connected(tenant.as_str()), lang));
    };
    retire(&api, &tenant, generation, None).await;
    tracing::info!(tenant_id = %tenant, "Salesforce connection removed with its key, cached tokens and user links");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The connection of `generation` is gone (removed, or replaced by one that
/// keeps the session `keep`): this replica revokes the token it holds, and
/// the news tells the other replicas and every service caching tokens to
/// drop theirs.
async fn retire(api: &Api, tenant: &TenantId, generation: i64, keep: Option<String>) {
    api.tokens.retire(tenant, generation, keep.as_deref()).await;
    let news = fa_tokens::Retired { tenant_id: tenant.to_string(), generation, keep_token_id: keep };
    let sent = match serde_json::to_vec(&news) {
        Ok(body) => api.broker.broadcast(fa_tokens::CONNECTIONS_EXCHANGE, &body).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = sent {
        // Other replicas still check the generation before handing a token
        // out; services keep theirs until Salesforce refuses it.
        tracing::error!(tenant_id = %tenant, generation, error = %e,
            "could not tell the other replicas and services that the connection changed");
    }
}

/// Runs `call` against the tenant's org with a token from the cache, once
/// more with a fresh token when Salesforce says the session is invalid.
async fn with_org<T, F, Fut>(api: &Api, tenant: &TenantId, lang: Lang, call: F) -> Result<T, LocalizedProblem>
where
    F: Fn(Client) -> Fut,
    Fut: Future<Output = Result<T, fa_salesforce::Error>>,
{
    let mut invalid: Option<String> = None;
    loop {
        let issued = api.tokens.get(tenant, invalid.as_deref()).await.map_err(|e| token_problem(&e, tenant, lang))?;
        let client = Client::new(
            api.http.clone(),
            &issued.instance_url,
            SecretString::from(issued.access_token.expose_secret().to_owned()),
        )
        .with_service(crate::SERVICE)
        .with_api_version(api.api_version.as_str());
        match call(client).await {
            Err(e) if e.retry() == fa_salesforce::Retry::RefreshToken && invalid.is_none() => {
                invalid = Some(issued.token_id.clone());
            }
            Err(e) => return Err(salesforce_problem(&e, lang)),
            Ok(v) => return Ok(v),
        }
    }
}

fn token_problem(e: &TokenError, tenant: &TenantId, lang: Lang) -> LocalizedProblem {
    let problem = match e {
        TokenError::NotConnected(_) => Problem::not_connected(tenant.as_str()),
        TokenError::Rejected { error, description } => {
            let cause = Cause::of(error, description);
            Problem::new(StatusCode::BAD_GATEWAY, "salesforce_error", "Salesforce refused the login", cause.hint())
                .with("cause", cause.as_str())
                .with("salesforce_error", error.as_str())
                .with("salesforce_error_description", description.as_str())
        }
        TokenError::Unreachable(why) => Problem::new(
            StatusCode::BAD_GATEWAY,
            "salesforce_unreachable",
            "Salesforce did not answer",
            Text::new(
                format!("No answer from Salesforce ({why}); try again in a few minutes."),
                format!("Salesforce から応答がありません({why})。数分後にもう一度お試しください。"),
            ),
        ),
        TokenError::InstanceUrlNotAllowed(refusal) => return instance_url_problem(refusal, lang),
        // 502 like every other failure of the stored connection to log in
        // (the users path documents no other status for it).
        TokenError::LoginUrlNotAllowed(url) => Problem::new(
            StatusCode::BAD_GATEWAY,
            "login_url_not_allowed",
            "The stored login URL is not allowed",
            Text::new(
                format!(
                    "The connection's login_url {url} is not allowed by FA_SF_LOGIN_URL_ALLOWLIST, so no login was \
                     attempted. Register the connection again with https://login.salesforce.com, \
                     https://test.salesforce.com or your https://<My Domain>.my.salesforce.com."
                ),
                format!(
                    "接続のログイン URL「{url}」は FA_SF_LOGIN_URL_ALLOWLIST で許可されていないため、ログインしませんでした。\
                     https://login.salesforce.com、https://test.salesforce.com、または https://<私のドメイン>.my.salesforce.com \
                     で接続を登録し直してください。"
                ),
            ),
        ),
        TokenError::Internal(_) => Problem::internal(),
    };
    LocalizedProblem::new(problem, lang)
}

fn salesforce_problem(e: &fa_salesforce::Error, lang: Lang) -> LocalizedProblem {
    let problem = match e {
        fa_salesforce::Error::Api(api) => Problem::new(
            StatusCode::BAD_GATEWAY,
            "salesforce_error",
            "Salesforce answered with an error",
            Text::new(
                format!("Salesforce answered {} {}: {}", api.status, api.code.as_str(), api.message),
                format!("Salesforce がエラーを返しました({} {}): {}", api.status, api.code.as_str(), api.message),
            ),
        )
        .with("salesforce_error", api.code.as_str())
        .with("salesforce_error_description", api.message.as_str()),
        other => Problem::new(
            StatusCode::BAD_GATEWAY,
            "salesforce_unreachable",
            "Salesforce did not answer",
            Text::new(
                format!("No usable answer from Salesforce ({other}); try again in a few minutes."),
                format!("Salesforce から正常な応答がありません({other})。数分後にもう一度お試しください。"),
            ),
        ),
    };
    LocalizedProblem::new(problem, lang)
}

async fn list_users(State(api): Shared, Path(tenant_id): Path<String>, lang: Lang) -> Answer {
    let tenant = tenant(&tenant_id, lang)?;
    let users =
        with_org(&api, &tenant, lang, |client| async move { fa_salesforce::users::active_users(&client).await })
            .await?;
    let users: Vec<_> = users
        .into_iter()
        .map(|u| {
            serde_json::json!({
                "id": u.id, "name": u.name, "username": u.username, "email": u.email, "active": u.active,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "users": users })).into_response())
}

async fn require_connection(api: &Api, tenant: &TenantId, lang: Lang) -> Result<(), LocalizedProblem> {
    match connection::load(&api.pool, tenant).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(LocalizedProblem::new(Problem::not_connected(tenant.as_str()), lang)),
        Err(e) => Err(LocalizedProblem::internal(lang, "reading the connection", &e)),
    }
}

async fn list_links(State(api): Shared, Path(tenant_id): Path<String>, lang: Lang) -> Answer {
    let tenant = tenant(&tenant_id, lang)?;
    require_connection(&api, &tenant, lang).await?;
    let links = user_link::list(&api.pool, &tenant)
        .await
        .map_err(|e| LocalizedProblem::internal(lang, "reading user links", &e))?;
    Ok(Json(serde_json::json!({ "links": links })).into_response())
}

#[derive(Deserialize)]
struct LinkRequest {
    salesforce_user_id: String,
}

fn user_id(text: &str, lang: Lang) -> Result<String, LocalizedProblem> {
    let length = text.chars().count();
    if (1..=128).contains(&length) && !text.chars().any(char::is_control) {
        Ok(text.to_owned())
    } else {
        Err(invalid(
            lang,
            "The Front Agent user id in the path must be 1 to 128 characters.".into(),
            "パスの Front Agent ユーザー ID は 1〜128 文字で指定してください。".into(),
        ))
    }
}

fn salesforce_user_id(text: &str) -> bool {
    let b = text.as_bytes();
    (b.len() == 15 || b.len() == 18) && text.starts_with("005") && b.iter().all(u8::is_ascii_alphanumeric)
}

async fn link_user(
    State(api): Shared,
    Path((tenant_id, user)): Path<(String, String)>,
    lang: Lang,
    body: Bytes,
) -> Answer {
    let tenant = tenant(&tenant_id, lang)?;
    let user = user_id(&user, lang)?;
    let request: LinkRequest = serde_json::from_slice(&body).map_err(|e| {
        invalid(
            lang,
            format!("The body must be {{\"salesforce_user_id\": \"005…\"}}: {e}"),
            format!("本文は {{\"salesforce_user_id\": \"005…\"}} の形式で送ってください: {e}"),
        )
    })?;
    let wanted = request.salesforce_user_id.trim().to_owned();
    if !salesforce_user_id(&wanted) {
        return Err(invalid(
            lang,
            format!(
                "salesforce_user_id {wanted:?} is not a Salesforce user id (15 or 18 letters and digits starting with 005)."
            ),
            format!(
                "salesforce_user_id {wanted:?} は Salesforce のユーザー ID ではありません(005 で始まる 15 桁または 18 桁の英数字)。"
            ),
        ));
    }
    require_connection(&api, &tenant, lang).await?;
    let found = {
        let wanted = wanted.clone();
        with_org(&api, &tenant, lang, move |client| {
            let wanted = wanted.clone();
            async move { fa_salesforce::users::user(&client, &wanted).await }
        })
        .await?
    };
    let Some(found) = found else {
        return Err(LocalizedProblem::new(
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_salesforce_user",
                "Unknown Salesforce user",
                Text::new(
                    format!("The org has no user {wanted}. Pick a user from the CRM user list."),
                    format!("組織にユーザー {wanted} は存在しません。CRM ユーザー一覧から選んでください。"),
                ),
            ),
            lang,
        ));
    };
    if !found.active {
        return Err(LocalizedProblem::new(
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "inactive_salesforce_user",
                "Inactive Salesforce user",
                Text::new(
                    format!(
                        "Salesforce user {} ({}) is inactive. Reactivate them in Salesforce or pick an active user.",
                        found.name, found.id
                    ),
                    format!(
                        "Salesforce ユーザー {}({})は無効です。Salesforce で有効にするか、有効なユーザーを選んでください。",
                        found.name, found.id
                    ),
                ),
            ),
            lang,
        ));
    }
    let link = user_link::put(&api.pool, &tenant, &user, &found.id, &found.name)
        .await
        .map_err(|e| LocalizedProblem::internal(lang, "storing the user link", &e))?
        .ok_or_else(|| LocalizedProblem::new(Problem::not_connected(tenant.as_str()), lang))?;
    tracing::info!(tenant_id = %tenant, user_id = %user, salesforce_user_id = %found.id, "user linked");
    Ok(Json(link).into_response())
}

async fn unlink_user(State(api): Shared, Path((tenant_id, user)): Path<(String, String)>, lang: Lang) -> Answer {
    let tenant = tenant(&tenant_id, lang)?;
    let user = user_id(&user, lang)?;
    require_connection(&api, &tenant, lang).await?;
    let deleted = user_link::delete(&api.pool, &tenant, &user)
        .await
        .map_err(|e| LocalizedProblem::internal(lang, "deleting the user link", &e))?;
    if !deleted {
        return Err(LocalizedProblem::new(
            Problem::new(
                StatusCode::NOT_FOUND,
                "not_linked",
                "Not linked",
                Text::new(
                    format!("Front Agent user {user} has no Salesforce link."),
                    format!("Front Agent ユーザー {user} は Salesforce と連携されていません。"),
                ),
            ),
            lang,
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
