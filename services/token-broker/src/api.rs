//! The token-broker's admin API (admin-api.yaml, the admin API contract outside this repository;
//! README.md, "Connecting an org"; paths tagged
//! `token-broker`): connect, show and disconnect the org; list its users;
//! link Front Agent users to them. Thin handlers around
//! [`crate::registration`], [`crate::connection`], [`crate::token`] and
//! [`crate::user_link`]; their words for the admin are in [`crate::hints`].

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
use fa_messages::{ImportReason, ImportRequestedV1, TenantId};
use fa_runtime::admin::{AdminToken, Lang, LocalizedProblem, Problem, TenantPath, Text};
use fa_runtime::config::ApiVersion;
use fa_salesforce::{Client, oauth::ExchangeError};
use fa_tokens::CallError;
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::PgPool;

use crate::{
    connection::{self, ConnectionView, NewConnection, Saved},
    hints::{self, Cause},
    login_url::{Allowlist, InstanceUrlRefusal},
    private_key::RsaPrivateKey,
    registration::{self, Fields, Registration},
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

/// A registration read and checked: its fields, then its key (parsing signs
/// with it: up to 8192 bits, tens of milliseconds of CPU, off the async
/// workers).
async fn parse_registration(body: &[u8], allowlist: &Allowlist, lang: Lang) -> Result<Registration, LocalizedProblem> {
    let fields = Fields::read(body, allowlist).map_err(|refusal| registration_problem(&refusal, lang))?;
    let pasted = fields.private_key.clone();
    let parsed = tokio::task::spawn_blocking(move || RsaPrivateKey::parse(pasted.expose_secret()))
        .await
        .map_err(|e| LocalizedProblem::internal(lang, "parsing the private key", &e))?;
    let key = parsed.map_err(|refusal| registration_problem(&registration::Refusal::Key(refusal), lang))?;
    Ok(fields.with_key(key))
}

/// 400 `invalid_request`, 400 `login_url_not_allowed` or 422
/// `invalid_private_key` (with its `reason`).
fn registration_problem(refusal: &registration::Refusal, lang: Lang) -> LocalizedProblem {
    let hint = hints::registration_hint(refusal);
    let problem = match refusal {
        registration::Refusal::LoginUrl { .. } => {
            Problem::new(StatusCode::BAD_REQUEST, "login_url_not_allowed", "Login URL not allowed", hint)
        }
        registration::Refusal::Key(key) => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_private_key", "Invalid private key", hint)
                .with("reason", key.reason())
        }
        _ => Problem::invalid_request(hint),
    };
    LocalizedProblem::new(problem, lang)
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
        InstanceUrlRefusal::CODE.as_str(),
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

async fn connect(State(api): Shared, TenantPath(tenant): TenantPath, lang: Lang, body: Bytes) -> Answer {
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

async fn show_connection(State(api): Shared, TenantPath(tenant): TenantPath, lang: Lang) -> Answer {
    let stored = connection::load(&api.pool, &tenant)
        .await
        .map_err(|e| LocalizedProblem::internal(lang, "reading the connection", &e))?
        .ok_or_else(|| LocalizedProblem::new(Problem::not_connected(tenant.as_str()), lang))?;
    Ok(Json(ConnectionView::from(&stored)).into_response())
}

async fn disconnect(State(api): Shared, TenantPath(tenant): TenantPath, lang: Lang) -> Answer {
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
    let news = fa_tokens::Retired { tenant_id: tenant.clone(), generation, keep_token_id: keep };
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
/// more with a fresh token when Salesforce says the session is invalid
/// ([`fa_tokens::with_fresh_token`]).
async fn with_org<T, F, Fut>(api: &Api, tenant: &TenantId, lang: Lang, call: F) -> Result<T, LocalizedProblem>
where
    F: Fn(Client) -> Fut,
    Fut: Future<Output = Result<T, fa_salesforce::Error>>,
{
    let client = |issued: Arc<Issued>| {
        Client::new(
            api.http.clone(),
            &issued.instance_url,
            SecretString::from(issued.access_token.expose_secret().to_owned()),
        )
        .with_service(crate::SERVICE)
        .with_api_version(api.api_version.as_str())
    };
    fa_tokens::with_fresh_token(&api.tokens.of(tenant), |issued| call(client(issued))).await.map_err(|e| match e {
        CallError::Token(e) => token_problem(&e, tenant, lang),
        CallError::Salesforce(e) => salesforce_problem(&e, lang),
    })
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

async fn list_users(State(api): Shared, TenantPath(tenant): TenantPath, lang: Lang) -> Answer {
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

async fn list_links(State(api): Shared, TenantPath(tenant): TenantPath, lang: Lang) -> Answer {
    require_connection(&api, &tenant, lang).await?;
    let links = user_link::list(&api.pool, &tenant)
        .await
        .map_err(|e| LocalizedProblem::internal(lang, "reading user links", &e))?;
    Ok(Json(serde_json::json!({ "links": links })).into_response())
}

/// 400 `invalid_request`, 422 `unknown_salesforce_user` or
/// `inactive_salesforce_user`, or 404 `not_linked`.
fn link_problem(refusal: &user_link::Refusal, lang: Lang) -> LocalizedProblem {
    use user_link::Refusal;
    let hint = hints::link_hint(refusal);
    let problem = match refusal {
        Refusal::UserId | Refusal::Body(_) | Refusal::NotAUserId(_) => Problem::invalid_request(hint),
        Refusal::Unknown(_) => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_salesforce_user", "Unknown Salesforce user", hint)
        }
        Refusal::Inactive { .. } => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "inactive_salesforce_user", "Inactive Salesforce user", hint)
        }
        Refusal::NotLinked(_) => Problem::new(StatusCode::NOT_FOUND, "not_linked", "Not linked", hint),
    };
    LocalizedProblem::new(problem, lang)
}

async fn link_user(
    State(api): Shared,
    TenantPath(tenant): TenantPath,
    Path((_, user)): Path<(String, String)>,
    lang: Lang,
    body: Bytes,
) -> Answer {
    let refused = |refusal| link_problem(&refusal, lang);
    let user = user_link::user_id(&user).map_err(refused)?;
    let wanted = user_link::requested(&body).map_err(refused)?;
    require_connection(&api, &tenant, lang).await?;
    let found = with_org(&api, &tenant, lang, |client| {
        let wanted = wanted.clone();
        async move { fa_salesforce::users::user(&client, wanted.as_str()).await }
    })
    .await?;
    let found = user_link::linkable(found, &wanted).map_err(refused)?;
    let link = user_link::put(&api.pool, &tenant, user, &found.id, &found.name)
        .await
        .map_err(|e| LocalizedProblem::internal(lang, "storing the user link", &e))?
        .ok_or_else(|| LocalizedProblem::new(Problem::not_connected(tenant.as_str()), lang))?;
    tracing::info!(tenant_id = %tenant, user_id = %user, salesforce_user_id = %found.id, "user linked");
    Ok(Json(link).into_response())
}

async fn unlink_user(
    State(api): Shared,
    TenantPath(tenant): TenantPath,
    Path((_, user)): Path<(String, String)>,
    lang: Lang,
) -> Answer {
    let user = user_link::user_id(&user).map_err(|refusal| link_problem(&refusal, lang))?;
    require_connection(&api, &tenant, lang).await?;
    let deleted = user_link::delete(&api.pool, &tenant, user)
        .await
        .map_err(|e| LocalizedProblem::internal(lang, "deleting the user link", &e))?;
    if !deleted {
        return Err(link_problem(&user_link::Refusal::NotLinked(user.to_owned()), lang));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
