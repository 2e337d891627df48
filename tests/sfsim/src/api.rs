//! The REST API a connector calls: `/services/oauth2/token` and
//! `/services/data/vXX.X/...`, answering with Salesforce's shapes, headers
//! and errors.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Extension, Form, Json, Router,
    extract::{MatchedPath, OriginalUri, Path, Query, Request, State},
    http::{HeaderMap, HeaderValue},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Map, Value as J, json};

use crate::{
    error::{ApiError, ApiErrors, json_bytes_response, json_response},
    schema::{self, ObjectSchema},
    soql,
    store::{Cursor, Org, Sim, lock, read},
    value::Value,
    write::{self, WriteMode},
};

/// The API versions sfsim answers (Salesforce answers many; connectors pin one).
const MIN_VERSION: u32 = 31;
const MAX_VERSION: u32 = 66;
const MAX_BATCH: usize = 2000;
const MIN_BATCH: usize = 200;
const CURSOR_LIFETIME: Duration = Duration::from_secs(2 * 24 * 3600);

/// The request's org and session, found by the auth layer.
#[derive(Clone)]
pub struct Ctx {
    /// The simulator (ids, other orgs' directory).
    pub sim: Sim,
    /// The session's org.
    pub org: Arc<Org>,
    /// The session's user.
    pub user_id: String,
    /// `v61.0`.
    pub version: String,
}

/// The Salesforce-facing routes.
pub fn router(sim: Sim) -> Router {
    let api = Router::new()
        // Salesforce answers these with or without a final slash, and
        // clients use both (simple-salesforce calls `query/?q=`).
        .route("/query", get(query))
        .route("/query/", get(query))
        .route("/queryAll", get(query_all))
        .route("/queryAll/", get(query_all))
        .route("/query/{locator}", get(query_more))
        .route("/sobjects/{object}", post(create))
        .route("/sobjects/{object}/", post(create))
        .route("/sobjects/{object}/deleted", get(deleted))
        .route("/sobjects/{object}/deleted/", get(deleted))
        .route("/sobjects/{object}/{id}", get(read_record).patch(update).delete(delete))
        .route("/sobjects/{object}/{id}/", get(read_record).patch(update).delete(delete))
        .route("/composite/sobjects", post(collection_create))
        .route("/composite/sobjects/", post(collection_create))
        .route("/composite", post(composite))
        .route("/composite/", post(composite))
        .route("/search", get(search))
        .route("/search/", get(search))
        .route("/limits", get(limits))
        .route("/limits/", get(limits))
        .route_layer(middleware::from_fn_with_state(sim.clone(), api_gate))
        .fallback(|| async { ApiError::not_found() });
    Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/services/oauth2/revoke", post(revoke))
        .route("/services/data", get(versions))
        .route("/services/data/", get(versions))
        .nest("/services/data/{version}", api)
        .with_state(sim)
}

async fn versions() -> Response {
    let list: Vec<J> = (MIN_VERSION..=MAX_VERSION)
        .map(|v| json!({ "label": format!("v{v}.0"), "url": format!("/services/data/v{v}.0"), "version": format!("{v}.0") }))
        .collect();
    json_response(200, &J::Array(list))
}

/// OAuth 2.0 token endpoint: the JWT bearer flow.
async fn token(State(sim): State<Sim>, Form(form): Form<HashMap<String, String>>) -> Response {
    let accepted = ["https://login.salesforce.com", "https://test.salesforce.com"];
    let now = time::OffsetDateTime::now_utc();
    let grant = match crate::oauth::exchange(
        form.get("grant_type").map(String::as_str),
        form.get("assertion").map(String::as_str),
        &accepted,
        now,
        &sim,
    ) {
        Ok(grant) => grant,
        Err(e) => return json_response(e.status, &e.body()),
    };
    // A sandbox accepts only the sandbox audience, production only login.
    let audience = form.get("assertion").and_then(|a| audience_of(a));
    let sandbox = sim.org(&grant.org_id).is_some_and(|o| o.sandbox);
    let expected = if sandbox { accepted[1] } else { accepted[0] };
    if audience.as_deref() != Some(expected) {
        return json_response(400, &json!({ "error": "invalid_grant", "error_description": "audience is invalid" }));
    }
    let access_token = sim.open_session(&grant.org_id, &grant.user_id);
    json_response(200, &crate::oauth::success_body(&access_token, &sim.instance_url(), &grant))
}

/// OAuth 2.0 revocation: `token=<access token>` ends that session. 200 with
/// an empty body; 400 `invalid_token` for a token that is unknown or already
/// ended, as Salesforce answers.
async fn revoke(State(sim): State<Sim>, Form(form): Form<HashMap<String, String>>) -> Response {
    match form.get("token") {
        Some(token) if sim.revoke_session(token) => (axum::http::StatusCode::OK, "").into_response(),
        Some(_) => json_response(400, &json!({ "error": "invalid_token", "error_description": "invalid token" })),
        None => json_response(400, &json!({ "error": "unsupported_token_type", "error_description": "missing token" })),
    }
}

fn audience_of(assertion: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: J = serde_json::from_slice(&bytes).ok()?;
    match &claims["aud"] {
        J::String(s) => Some(s.clone()),
        J::Array(a) => a.first().and_then(J::as_str).map(str::to_owned),
        _ => None,
    }
}

fn version_ok(version: &str) -> bool {
    version
        .strip_prefix('v')
        .and_then(|v| v.strip_suffix(".0"))
        .and_then(|v| v.parse::<u32>().ok())
        .is_some_and(|v| (MIN_VERSION..=MAX_VERSION).contains(&v))
}

/// Every API call: a valid session, an unspent allowance, the org's faults;
/// and `Sforce-Limit-Info` on the answer.
async fn api_gate(
    State(sim): State<Sim>,
    matched: MatchedPath,
    OriginalUri(uri): OriginalUri,
    mut request: Request,
    next: Next,
) -> Response {
    // Nested routes see the path without its prefix; the version is in the original.
    let version = uri.path().split('/').nth(3).unwrap_or_default().to_owned();
    if !version_ok(&version) {
        return ApiError::not_found().into_response();
    }
    let token = request
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("OAuth ")))
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    let Some(session) = sim.session(&token) else { return ApiError::invalid_session().into_response() };
    let Some(org) = sim.org(&session.org_id) else { return ApiError::invalid_session().into_response() };

    let route = format!(
        "{} {}",
        request.method(),
        matched.as_str().trim_start_matches("/services/data/{version}").trim_end_matches('/')
    );
    let usage = match org.spend_call(&route) {
        Ok(usage) => usage,
        Err((used, max)) => {
            let mut response =
                ApiError::new(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.").into_response();
            set_limit_header(&mut response, used, max);
            return response;
        }
    };
    let (latency, unavailable) = {
        let mut faults = lock(&org.faults);
        let unavailable = if faults.unavailable_next > 0 {
            faults.unavailable_next -= 1;
            true
        } else {
            roll(faults.unavailable_rate)
        };
        (faults.latency_ms, unavailable)
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    // Salesforce empties the recycle bin of what is 15 days old on its own;
    // sfsim does it when it is next asked.
    org.expire_recycle_bin();
    let mut response = if unavailable {
        ApiError::new(503, "SERVER_UNAVAILABLE", "Server Unavailable").into_response()
    } else {
        request.extensions_mut().insert(Ctx {
            sim: sim.clone(),
            org: org.clone(),
            user_id: session.user_id.clone(),
            version,
        });
        next.run(request).await
    };
    let (used, max) = org.usage();
    set_limit_header(&mut response, used.max(usage.0), max);
    response
}

fn set_limit_header(response: &mut Response, used: u64, max: u64) {
    if let Ok(v) = HeaderValue::from_str(&format!("api-usage={used}/{max}")) {
        response.headers_mut().insert("sforce-limit-info", v);
    }
}

static RNG: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);

/// True with probability `p` (a shared splitmix64 stream; faults need
/// rates, not reproducible sequences).
fn roll(p: f64) -> bool {
    if p <= 0.0 {
        return false;
    }
    let mut z = RNG.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 <= p
}

/// A write refused with `UNABLE_TO_LOCK_ROW` by the org's faults.
pub(crate) fn lock_fault(org: &Org, id: &str) -> Option<ApiError> {
    let mut faults = lock(&org.faults);
    let fail = if faults.lock_next > 0 {
        faults.lock_next -= 1;
        true
    } else {
        roll(faults.lock_rate)
    };
    fail.then(|| {
        ApiError::with_fields(
            400,
            "UNABLE_TO_LOCK_ROW",
            format!("unable to obtain exclusive access to this record or 1 records: {id}"),
            &[],
        )
    })
}

/// After a committed write: when the org says so, never answer.
pub(crate) async fn maybe_hang(org: &Org) {
    let hang = {
        let mut faults = lock(&org.faults);
        let hang = faults.timeout_after_commit_next > 0;
        if hang {
            faults.timeout_after_commit_next -= 1;
        }
        hang
    };
    if hang {
        tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
    }
}

fn object_or_404(name: &str) -> Result<&'static ObjectSchema, ApiError> {
    schema::object(name).ok_or_else(ApiError::not_found)
}

// --- Query -----------------------------------------------------------------

#[derive(serde::Deserialize)]
struct QueryParams {
    q: Option<String>,
}

async fn query(Extension(ctx): Extension<Ctx>, headers: HeaderMap, Query(p): Query<QueryParams>) -> Response {
    run_query(&ctx, &headers, p.q.as_deref(), false)
}

async fn query_all(Extension(ctx): Extension<Ctx>, headers: HeaderMap, Query(p): Query<QueryParams>) -> Response {
    run_query(&ctx, &headers, p.q.as_deref(), true)
}

fn batch_size(headers: &HeaderMap) -> usize {
    headers
        .get("sforce-query-options")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split(',').find_map(|kv| kv.trim().strip_prefix("batchSize=")))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .map_or(MAX_BATCH, |n| n.clamp(MIN_BATCH, MAX_BATCH))
}

/// Runs a SOQL query and answers its first page, `query_all` including
/// deleted rows and archived activities.
pub(crate) fn run_query(ctx: &Ctx, headers: &HeaderMap, soql: Option<&str>, query_all: bool) -> Response {
    match query_page(ctx, batch_size(headers), soql, query_all) {
        Ok(body) => json_bytes_response(200, body),
        Err(e) => e.into_response(),
    }
}

/// One page of a query's answer as JSON text: `totalSize`, `done`,
/// `nextRecordsUrl` when more remain, `records`.
fn page_body<'a>(
    total: usize,
    next: Option<&str>,
    records: impl Iterator<Item = &'a crate::value::Record>,
    query: &soql::Query,
    lookup: &dyn soql::Lookup,
    version: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 * 1024);
    out.extend_from_slice(format!("{{\"totalSize\":{total},\"done\":{}", next.is_none()).as_bytes());
    if let Some(next) = next {
        out.extend_from_slice(b",\"nextRecordsUrl\":");
        let _ = serde_json::to_writer(&mut out, next);
    }
    out.extend_from_slice(b",\"records\":[");
    for (i, record) in records.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        query.write_row(record, lookup, version, &mut out);
    }
    out.extend_from_slice(b"]}");
    out
}

pub(crate) fn query_page(ctx: &Ctx, batch: usize, soql: Option<&str>, query_all: bool) -> Result<Vec<u8>, ApiError> {
    let Some(text) = soql.filter(|q| !q.trim().is_empty()) else {
        return Err(ApiError::new(400, "MALFORMED_QUERY", "A query string has to be specified"));
    };
    let parsed = soql::parse(text).map_err(|e| ApiError::new(400, e.code, e.message))?;
    if lock(&ctx.org.faults).unreadable_objects.iter().any(|o| o.eq_ignore_ascii_case(parsed.object().name)) {
        let e = soql::not_readable(text, &parsed);
        return Err(ApiError::new(400, e.code, e.message));
    }
    let data = read(&ctx.org.data);
    let eval = ctx.org.eval_context();
    let visible = data.of(parsed.object()).filter(|r| {
        query_all
            || !(matches!(r.get("IsDeleted"), Value::Bool(true)) || matches!(r.get("IsArchived"), Value::Bool(true)))
    });
    if parsed.is_count() {
        let n = parsed.run(visible, &*data, &eval).len();
        return Ok(format!("{{\"totalSize\":{n},\"done\":true,\"records\":[]}}").into_bytes());
    }
    let rows = parsed.run(visible, &*data, &eval);
    let total = rows.len();
    if total <= batch {
        return Ok(page_body(total, None, rows.iter().copied(), &parsed, &*data, &ctx.version));
    }
    let cursor_id = format!("01g5j{:010}", CURSORS.fetch_add(1, Ordering::Relaxed));
    let next = format!("/services/data/{}/query/{cursor_id}-{batch}", ctx.version);
    let body = page_body(total, Some(&next), rows.iter().take(batch).copied(), &parsed, &*data, &ctx.version);
    let ids: Vec<String> = rows.iter().map(|r| r.id().to_owned()).collect();
    drop(data);
    lock(&ctx.org.cursors).insert(
        cursor_id,
        Cursor {
            query: Arc::new(parsed),
            ids,
            batch,
            api_version: ctx.version.clone(),
            next: batch,
            expires: Instant::now() + CURSOR_LIFETIME,
        },
    );
    Ok(body)
}

static CURSORS: AtomicU64 = AtomicU64::new(1);

async fn query_more(Extension(ctx): Extension<Ctx>, Path((_, locator)): Path<(String, String)>) -> Response {
    let invalid = || ApiError::new(400, "INVALID_QUERY_LOCATOR", "invalid query locator").into_response();
    let Some((cursor_id, offset)) = locator.rsplit_once('-') else { return invalid() };
    let Ok(offset) = offset.parse::<usize>() else { return invalid() };
    let mut cursors = lock(&ctx.org.cursors);
    let Some(cursor) = cursors.get_mut(cursor_id) else { return invalid() };
    // Each locator is good for one page: only the latest one is valid.
    if cursor.next != offset || cursor.expires < Instant::now() {
        return invalid();
    }
    let end = (offset + cursor.batch).min(cursor.ids.len());
    let total = cursor.ids.len();
    let next = (end < total).then(|| format!("/services/data/{}/query/{cursor_id}-{end}", cursor.api_version));
    let data = read(&ctx.org.data);
    let records = cursor.ids[offset..end].iter().filter_map(|id| data.records.get(id));
    let body = page_body(total, next.as_deref(), records, &cursor.query, &*data, &cursor.api_version);
    drop(data);
    if next.is_some() {
        cursor.next = end;
    } else {
        cursors.remove(cursor_id);
    }
    json_bytes_response(200, body)
}

// --- Records ---------------------------------------------------------------

async fn read_record(
    Extension(ctx): Extension<Ctx>,
    Path((_, object, id)): Path<(String, String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    match read_json(&ctx, &object, &id, params.get("fields").map(String::as_str)) {
        Ok(body) => json_response(200, &body),
        Err(e) => e.into_response(),
    }
}

pub(crate) fn read_json(ctx: &Ctx, object: &str, id: &str, fields: Option<&str>) -> Result<J, ApiError> {
    let schema = object_or_404(object)?;
    let id18 = crate::ids::to_18(id).ok_or_else(|| {
        ApiError::with_fields(
            400,
            "MALFORMED_ID",
            format!("{} ID: id value of incorrect type: {id}", schema.name),
            &["Id"],
        )
    })?;
    let data = read(&ctx.org.data);
    let record = data
        .records
        .get(&id18)
        .filter(|r| r.object.name == schema.name && !matches!(r.get("IsDeleted"), Value::Bool(true)))
        .ok_or_else(ApiError::not_found)?;
    let names: Vec<&str> = match fields {
        Some(list) => list.split(',').map(str::trim).filter(|f| !f.is_empty()).collect(),
        None => schema.fields.iter().map(|f| f.name).collect(),
    };
    let mut body = Map::new();
    body.insert(
        "attributes".into(),
        json!({ "type": schema.name, "url": format!("/services/data/{}/sobjects/{}/{}", ctx.version, schema.name, record.id()) }),
    );
    for name in names {
        let field = schema.field(name).ok_or_else(|| {
            ApiError::new(400, "INVALID_FIELD", format!("No such column '{name}' on sobject of type {}", schema.name))
        })?;
        body.insert(field.name.into(), record.get(field.name).to_json());
    }
    Ok(J::Object(body))
}

fn body_object(body: &J) -> Result<&Map<String, J>, ApiError> {
    body.as_object().ok_or_else(|| ApiError::new(400, "JSON_PARSER_ERROR", "The request body must be a JSON object"))
}

async fn create(
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    Path((_, object)): Path<(String, String)>,
    body: Option<Json<J>>,
) -> Response {
    let Some(Json(body)) = body else {
        return ApiError::new(400, "JSON_PARSER_ERROR", "The request body is not valid JSON").into_response();
    };
    let schema = match object_or_404(&object) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let fields = match body_object(&body) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    if let Some(e) = lock_fault(&ctx.org, &ctx.user_id) {
        return e.into_response();
    }
    let mode = WriteMode { seeding: false, skip_duplicate_rules: allow_save(&headers) };
    match write::create(&ctx.sim, &ctx.org, schema, fields, &ctx.user_id, &ctx.version, mode) {
        Ok(id) => {
            maybe_hang(&ctx.org).await;
            json_response(201, &json!({ "id": id, "success": true, "errors": [] }))
        }
        Err(errors) => ApiErrors(errors).into_response(),
    }
}

/// `Sforce-Duplicate-Rule-Header: allowSave=true`.
pub(crate) fn allow_save(headers: &HeaderMap) -> bool {
    headers
        .get("sforce-duplicate-rule-header")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.replace(' ', "").to_ascii_lowercase().contains("allowsave=true"))
}

async fn update(
    Extension(ctx): Extension<Ctx>,
    Path((_, object, id)): Path<(String, String, String)>,
    body: Option<Json<J>>,
) -> Response {
    let Some(Json(body)) = body else {
        return ApiError::new(400, "JSON_PARSER_ERROR", "The request body is not valid JSON").into_response();
    };
    let result = (|| {
        let schema = object_or_404(&object)?;
        let fields = body_object(&body)?;
        let id18 = crate::ids::to_18(&id).ok_or_else(ApiError::not_found)?;
        if let Some(e) = lock_fault(&ctx.org, &id18) {
            return Err(e);
        }
        write::update(&ctx.org, schema, &id18, fields, &ctx.user_id).map_err(|mut e| e.remove(0))
    })();
    match result {
        Ok(()) => {
            maybe_hang(&ctx.org).await;
            axum::http::StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn delete(Extension(ctx): Extension<Ctx>, Path((_, object, id)): Path<(String, String, String)>) -> Response {
    let result = object_or_404(&object)
        .and_then(|schema| crate::ids::to_18(&id).ok_or_else(ApiError::not_found).map(|id| (schema, id)))
        .and_then(|(schema, id)| write::delete(&ctx.org, schema, &id));
    match result {
        Ok(()) => axum::http::StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(serde::Deserialize)]
struct DeletedParams {
    start: Option<String>,
    end: Option<String>,
}

/// `GET …/sobjects/{object}/deleted/?start=&end=`: the replication API's
/// deleted list ([`crate::replication`]).
async fn deleted(
    Extension(ctx): Extension<Ctx>,
    Path((_, object)): Path<(String, String)>,
    Query(p): Query<DeletedParams>,
) -> Response {
    let result = object_or_404(&object).and_then(|schema| {
        let data = read(&ctx.org.data);
        crate::replication::deleted(&data.recycle_bin, schema.name, p.start.as_deref(), p.end.as_deref(), ctx.org.now())
    });
    match result {
        Ok(body) => json_response(200, &body),
        Err(e) => e.into_response(),
    }
}

async fn limits(Extension(ctx): Extension<Ctx>) -> Response {
    let (used, max) = ctx.org.usage();
    json_response(200, &json!({ "DailyApiRequests": { "Max": max, "Remaining": max.saturating_sub(used) } }))
}

// --- Placeholders filled by composite.rs and search.rs ----------------------

async fn collection_create(ext: Extension<Ctx>, headers: HeaderMap, body: Option<Json<J>>) -> Response {
    crate::composite::collection_create(ext, headers, body).await
}

async fn composite(ext: Extension<Ctx>, headers: HeaderMap, body: Option<Json<J>>) -> Response {
    crate::composite::composite(ext, headers, body).await
}

async fn search(ext: Extension<Ctx>, Query(p): Query<QueryParams>) -> Response {
    crate::search::search(ext, p.q.as_deref()).await
}
