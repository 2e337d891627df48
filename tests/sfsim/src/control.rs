//! The control API: what a test, a demo or a benchmark does to an org that
//! an admin would do in Salesforce's setup screens (create orgs, apps,
//! users), plus seeding data, reading it back, switching faults on and
//! counting calls. Its paths (`/sfsim/...`) are not Salesforce's.
//!
//! Routes, under `/sfsim/orgs` (JSON in and out; errors are
//! `{"error": "..."}`):
//!
//! | route | what it does |
//! |---|---|
//! | `POST /` | creates an org: `{name, locale, sandbox, daily_api_limit}` |
//! | `GET /{org}` | record counts and API usage |
//! | `POST /{org}/apps` | registers a connected app: `{consumer_key?, certificate_pem}` |
//! | `POST /{org}/users`, `PATCH /{org}/users/{id}` | creates a user, (de)activates or (un)approves one |
//! | `POST /{org}/records/{object}`, `GET` the same | seeds records as given (read-only fields too); lists every record, deleted ones included |
//! | `POST /{org}/records/{object}/merge` | merges Leads, Contacts or Accounts: `{"master_id", "merged_ids": [one or two]}` gives `{"id", "merged_ids", "updated_related_ids"}` ([`crate::merge`]) |
//! | `GET /{org}/recycle-bin` | what the bin holds: `[{"id", "object", "deleted_date"}]` |
//! | `POST /{org}/recycle-bin/empty` | purges the bin, or `{"ids": [...]}` only: gives `{"purged": [...]}`; purged rows leave `queryAll` and move `earliestDateAvailable` forward ([`crate::recycle_bin`]) |
//! | `POST /{org}/recycle-bin/undelete` | `{"ids": [...]}` back live (Salesforce's `undelete`); the delete log keeps their deletions |
//! | `GET /{org}/clock`, `POST /{org}/clock/advance` | the org's clock; `{"days", "seconds"}` moves it forward (never back), and with it `SystemModstamp`, deletion dates, date literals and the 15-day purge. Sessions, cursors and the daily allowance keep real time (`sessions/age` ages sessions) |
//! | `POST /{org}/generate` | realistic Japanese Leads, Contacts, Accounts |
//! | `POST /{org}/leads/{id}/convert` | converts a Lead: `{"contact_id", "account_id"}` |
//! | `GET /{org}/calls` | API calls by route |
//! | `PUT /{org}/faults`, `GET` the same | latency, 503s, row locks, timeouts after commit, search lag, unreadable objects |
//! | `PUT /{org}/limits` | the daily allowance: `{used?, max?}` |
//! | `POST /{org}/sessions/revoke`, `POST /{org}/sessions/age` | ends or ages (`{seconds}`) the org's sessions |
//! | `PUT /{org}/duplicate-rules` | objects whose duplicate rules block creates |

use std::collections::BTreeMap;

use axum::{
    Json, Router,
    extract::{Path, State},
    response::{IntoResponse, Response},
    routing::{get, patch, post, put},
};
use serde::Deserialize;
use serde_json::{Map, Value as J, json};

use crate::{
    error::{ApiError, json_response},
    generate::{self, GenOptions},
    schema,
    store::{Faults, Locale, NewUser, Org, Sim, lock, read, write},
    value::{Record, Value},
    write::{WriteMode, convert_lead, create_in},
};

/// The control routes.
pub fn router(sim: Sim) -> Router {
    Router::new()
        .route("/sfsim/orgs", post(create_org))
        .route("/sfsim/orgs/{org}", get(org_summary))
        .route("/sfsim/orgs/{org}/apps", post(create_app))
        .route("/sfsim/orgs/{org}/users", post(create_user))
        .route("/sfsim/orgs/{org}/users/{id}", patch(update_user))
        .route("/sfsim/orgs/{org}/records/{object}", post(seed).get(records))
        .route("/sfsim/orgs/{org}/records/{object}/merge", post(merge))
        .route("/sfsim/orgs/{org}/recycle-bin", get(recycle_bin))
        .route("/sfsim/orgs/{org}/recycle-bin/empty", post(empty_recycle_bin))
        .route("/sfsim/orgs/{org}/recycle-bin/undelete", post(undelete))
        .route("/sfsim/orgs/{org}/clock", get(clock))
        .route("/sfsim/orgs/{org}/clock/advance", post(advance_clock))
        .route("/sfsim/orgs/{org}/generate", post(generate_records))
        .route("/sfsim/orgs/{org}/leads/{id}/convert", post(convert))
        .route("/sfsim/orgs/{org}/calls", get(calls))
        .route("/sfsim/orgs/{org}/faults", put(set_faults).get(get_faults))
        .route("/sfsim/orgs/{org}/limits", put(set_limits))
        .route("/sfsim/orgs/{org}/sessions/revoke", post(revoke))
        .route("/sfsim/orgs/{org}/sessions/age", post(age))
        .route("/sfsim/orgs/{org}/duplicate-rules", put(duplicate_rules))
        .with_state(sim)
}

fn bad(message: impl Into<String>) -> Response {
    json_response(400, &json!({ "error": message.into() }))
}

// Handlers answer early with a ready response; its size does not matter here.
#[allow(clippy::result_large_err)]
fn find(sim: &Sim, id: &str) -> Result<std::sync::Arc<Org>, Response> {
    sim.org(id).ok_or_else(|| json_response(404, &json!({ "error": format!("no org {id}") })))
}

#[derive(Deserialize)]
struct NewOrg {
    #[serde(default = "default_name")]
    name: String,
    #[serde(default = "default_locale")]
    locale: Locale,
    #[serde(default)]
    sandbox: bool,
    daily_api_limit: Option<u64>,
}

fn default_name() -> String {
    "sfsim org".to_owned()
}
fn default_locale() -> Locale {
    Locale::JaJp
}

async fn create_org(State(sim): State<Sim>, Json(new): Json<NewOrg>) -> Response {
    let org = sim.create_org(&new.name, new.locale, new.sandbox, new.daily_api_limit);
    json_response(
        201,
        &json!({ "org_id": org.id, "instance_url": sim.instance_url(), "login_url": sim.instance_url() }),
    )
}

async fn org_summary(State(sim): State<Sim>, Path(org): Path<String>) -> Response {
    let org = match find(&sim, &org) {
        Ok(o) => o,
        Err(r) => return r,
    };
    org.expire_recycle_bin();
    let data = read(&org.data);
    let counts: BTreeMap<&str, usize> = data.by_object.iter().map(|(k, v)| (*k, v.len())).collect();
    let (used, max) = org.usage();
    json_response(
        200,
        &json!({ "org_id": org.id, "name": org.name, "records": counts, "api_usage": { "used": used, "max": max } }),
    )
}

#[derive(Deserialize)]
struct NewApp {
    consumer_key: Option<String>,
    certificate_pem: String,
}

async fn create_app(State(sim): State<Sim>, Path(org): Path<String>, Json(app): Json<NewApp>) -> Response {
    let org = match find(&sim, &org) {
        Ok(o) => o,
        Err(r) => return r,
    };
    if !app.certificate_pem.contains("BEGIN CERTIFICATE") {
        return bad("certificate_pem must be a PEM certificate (server.crt)");
    }
    let key = sim.create_app(&org, app.consumer_key, app.certificate_pem);
    json_response(201, &json!({ "consumer_key": key }))
}

#[derive(Deserialize)]
struct NewUserRequest {
    #[serde(flatten)]
    user: NewUser,
    #[serde(default)]
    approved_apps: Vec<String>,
}

async fn create_user(State(sim): State<Sim>, Path(org): Path<String>, Json(req): Json<NewUserRequest>) -> Response {
    let org = match find(&sim, &org) {
        Ok(o) => o,
        Err(r) => return r,
    };
    match sim.create_user(&org, &req.user) {
        Ok(id) => {
            for key in &req.approved_apps {
                if !sim.approve(key, &id, true) {
                    return bad(format!("no app with consumer key {key}"));
                }
            }
            json_response(201, &json!({ "id": id }))
        }
        Err(e) => json_response(409, &json!({ "error": e })),
    }
}

#[derive(Deserialize)]
struct UserChange {
    active: Option<bool>,
    approve_app: Option<String>,
    unapprove_app: Option<String>,
}

async fn update_user(
    State(sim): State<Sim>,
    Path((org, id)): Path<(String, String)>,
    Json(change): Json<UserChange>,
) -> Response {
    let org = match find(&sim, &org) {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Some(active) = change.active
        && !sim.set_user_active(&org, &id, active)
    {
        return json_response(404, &json!({ "error": format!("no user {id}") }));
    }
    if let Some(key) = change.approve_app {
        sim.approve(&key, &id, true);
    }
    if let Some(key) = change.unapprove_app {
        sim.approve(&key, &id, false);
    }
    json_response(200, &json!({ "id": id }))
}

/// Seeds records as given, read-only fields included (`SystemModstamp`,
/// `IsConverted`, ...): a body that is one record or an array of them. A
/// record seeded with `IsDeleted = true` goes into the recycle bin and the
/// delete log, deleted at its `SystemModstamp`.
async fn seed(State(sim): State<Sim>, Path((org, object)): Path<(String, String)>, Json(body): Json<J>) -> Response {
    let org = match find(&sim, &org) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Some(schema) = schema::object(&object) else { return bad(format!("unknown object {object}")) };
    let items: Vec<J> = match body {
        J::Array(items) => items,
        one => vec![one],
    };
    let owner = default_owner(&org);
    let mut data = write(&org.data);
    let mut ids = Vec::with_capacity(items.len());
    for item in &items {
        let Some(fields) = item.as_object() else { return bad("each record must be a JSON object") };
        match create_in(
            &sim,
            &org,
            &mut data,
            schema,
            fields,
            &owner,
            "v61.0",
            WriteMode { seeding: true, skip_duplicate_rules: true },
        ) {
            Ok(id) => {
                // A row seeded deleted is in the recycle bin, as it would be.
                crate::recycle_bin::admit_seeded(&mut data, &id, org.now());
                ids.push(id);
            }
            Err(errors) => {
                return json_response(
                    400,
                    &json!({ "index": ids.len(), "errors": errors.iter().map(ApiError::to_json).collect::<Vec<_>>() }),
                );
            }
        }
    }
    json_response(201, &json!({ "ids": ids }))
}

fn default_owner(org: &Org) -> String {
    let data = read(&org.data);
    schema::object("User")
        .and_then(|user| {
            data.of(user).find(|u| matches!(u.get("IsActive"), Value::Bool(true))).map(|u| u.id().to_owned())
        })
        .unwrap_or_default()
}

/// Every record of an object (deleted ones in the recycle bin included,
/// purged ones not), all fields.
async fn records(State(sim): State<Sim>, Path((org, object)): Path<(String, String)>) -> Response {
    let org = match find(&sim, &org) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Some(schema) = schema::object(&object) else { return bad(format!("unknown object {object}")) };
    org.expire_recycle_bin();
    let data = read(&org.data);
    let list: Vec<J> = data.of(schema).map(record_json).collect();
    json_response(200, &J::Array(list))
}

/// A record with every field, as the control API shows it.
pub fn record_json(record: &Record) -> J {
    let mut map = Map::new();
    map.insert("attributes".into(), json!({ "type": record.object.name }));
    for field in &record.object.fields {
        map.insert(field.name.into(), record.get(field.name).to_json());
    }
    J::Object(map)
}

#[derive(Deserialize)]
struct GenerateRequest {
    #[serde(default)]
    leads: usize,
    #[serde(default)]
    contacts: usize,
    #[serde(default)]
    accounts: usize,
    #[serde(default = "default_seed")]
    seed: u64,
    #[serde(default = "default_spread")]
    spread_days: i64,
}

fn default_seed() -> u64 {
    1
}
fn default_spread() -> i64 {
    730
}

async fn generate_records(
    State(sim): State<Sim>,
    Path(org): Path<String>,
    Json(req): Json<GenerateRequest>,
) -> Response {
    let org = match find(&sim, &org) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let counts = generate_into(&sim, &org, req.leads, req.contacts, req.accounts, req.seed, req.spread_days);
    json_response(201, &json!({ "leads": counts.0, "contacts": counts.1, "accounts": counts.2 }))
}

/// Generates records straight into an org (no API calls spent); Contacts
/// are spread over the generated Accounts, a few without one.
pub fn generate_into(
    sim: &Sim,
    org: &Org,
    leads: usize,
    contacts: usize,
    accounts: usize,
    seed: u64,
    spread_days: i64,
) -> (usize, usize, usize) {
    let opts = GenOptions { seed, now: org.now(), spread: time::Duration::days(spread_days) };
    let owner = default_owner(org);
    let mut data = write(&org.data);
    let mut insert = |object: &'static schema::ObjectSchema, items: Vec<generate::Generated>, accounts: &[String]| {
        let mut ids = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let id = sim.ids().next(object.key_prefix);
            let mut fields = crate::write::initial_fields(object);
            for (name, value) in item.fields {
                if let Some(field) = object.field(name) {
                    fields.insert(field.name, value);
                }
            }
            fields.insert("Id", Value::Text(id.clone()));
            for stamp in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
                fields.insert(stamp, Value::DateTime(item.modified_at));
            }
            if !owner.is_empty() {
                for f in ["OwnerId", "CreatedById", "LastModifiedById"] {
                    if object.field(f).is_some() {
                        fields.insert(f, Value::Text(owner.clone()));
                    }
                }
            }
            // One Contact in twenty has no Account.
            if object.name == "Contact" && !accounts.is_empty() && i % 20 != 19 {
                fields.insert("AccountId", Value::Text(accounts[i % accounts.len()].clone()));
            }
            let mut record = Record { object, fields };
            if object.field("LastName").is_some() {
                let name = crate::write::compose_name(
                    org.locale,
                    record.get("FirstName").as_text(),
                    record.get("LastName").as_text(),
                );
                record.fields.insert("Name", Value::Text(name));
            }
            data.insert(record);
            ids.push(id);
        }
        ids
    };
    let (lead, account, contact) = match (schema::object("Lead"), schema::object("Account"), schema::object("Contact"))
    {
        (Some(l), Some(a), Some(c)) => (l, a, c),
        _ => return (0, 0, 0),
    };
    let account_ids = insert(account, generate::accounts(accounts, &opts), &[]);
    let contact_opts = GenOptions { seed: seed.wrapping_add(1), ..opts.clone() };
    insert(contact, generate::contacts(contacts, &contact_opts), &account_ids);
    let lead_opts = GenOptions { seed: seed.wrapping_add(2), ..opts };
    insert(lead, generate::leads(leads, &lead_opts), &[]);
    (leads, contacts, accounts)
}

async fn convert(State(sim): State<Sim>, Path((org, id)): Path<(String, String)>) -> Response {
    let org = match find(&sim, &org) {
        Ok(o) => o,
        Err(r) => return r,
    };
    match convert_lead(&sim, &org, &id) {
        Ok((contact, account)) => json_response(200, &json!({ "contact_id": contact, "account_id": account })),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct MergeRequest {
    master_id: String,
    merged_ids: Vec<String>,
}

/// 15- or 18-character ids as the 18-character form records are kept by;
/// `Err` names the first malformed one.
fn full_ids<'a>(ids: impl IntoIterator<Item = &'a String>) -> Result<Vec<String>, String> {
    ids.into_iter().map(|id| crate::ids::to_18(id).ok_or_else(|| format!("malformed id {id}"))).collect()
}

async fn merge(
    State(sim): State<Sim>,
    Path((org, object)): Path<(String, String)>,
    Json(req): Json<MergeRequest>,
) -> Response {
    let org = match find(&sim, &org) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Some(schema) = schema::object(&object) else { return bad(format!("unknown object {object}")) };
    let ids = match full_ids(std::iter::once(&req.master_id).chain(&req.merged_ids)) {
        Ok(ids) => ids,
        Err(e) => return bad(e),
    };
    let now = org.now();
    let result = crate::merge::merge(&mut write(&org.data), schema, &ids[0], &ids[1..], now);
    match result {
        Ok(merged) => json_response(
            200,
            &json!({ "id": merged.id, "merged_ids": merged.merged_ids, "updated_related_ids": merged.updated_related_ids }),
        ),
        Err(e @ crate::merge::MergeError::NotFound { .. }) => json_response(404, &json!({ "error": e.to_string() })),
        Err(e) => bad(e.to_string()),
    }
}

async fn recycle_bin(State(sim): State<Sim>, Path(org): Path<String>) -> Response {
    let org = match find(&sim, &org) {
        Ok(o) => o,
        Err(r) => return r,
    };
    org.expire_recycle_bin();
    let data = read(&org.data);
    let entries: Vec<J> = data
        .recycle_bin
        .entries()
        .map(|(id, at)| {
            let object = data.records.get(id).map(|r| r.object.name);
            json!({ "id": id, "object": object, "deleted_date": crate::value::format_datetime(at) })
        })
        .collect();
    json_response(200, &J::Array(entries))
}

#[derive(Deserialize, Default)]
struct Ids {
    ids: Option<Vec<String>>,
}

async fn empty_recycle_bin(State(sim): State<Sim>, Path(org): Path<String>, body: Option<Json<Ids>>) -> Response {
    let org = match find(&sim, &org) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let ids = match body.and_then(|Json(b)| b.ids).map(|ids| full_ids(&ids)).transpose() {
        Ok(ids) => ids,
        Err(e) => return bad(e),
    };
    org.expire_recycle_bin();
    let mut data = write(&org.data);
    if let Some(missing) = ids.iter().flatten().find(|id| data.recycle_bin.deleted_at(id).is_none()) {
        return json_response(404, &json!({ "error": format!("{missing} is not in the recycle bin") }));
    }
    let purged = crate::recycle_bin::purge(&mut data, ids.as_deref());
    json_response(200, &json!({ "purged": purged }))
}

async fn undelete(State(sim): State<Sim>, Path(org): Path<String>, Json(body): Json<Ids>) -> Response {
    let org = match find(&sim, &org) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let ids = match full_ids(body.ids.iter().flatten()) {
        Ok(ids) if !ids.is_empty() => ids,
        Ok(_) => return bad("ids: give the ids to undelete"),
        Err(e) => return bad(e),
    };
    org.expire_recycle_bin();
    let now = org.now();
    let mut data = write(&org.data);
    if let Some(missing) = ids.iter().find(|id| data.recycle_bin.deleted_at(id).is_none()) {
        return json_response(404, &json!({ "error": format!("{missing} is not in the recycle bin") }));
    }
    for id in &ids {
        // Every id was checked to be in the bin, under the same lock.
        let _ = crate::recycle_bin::undelete(&mut data, id, now);
    }
    json_response(200, &json!({ "undeleted": ids }))
}

fn clock_json(org: &Org) -> J {
    json!({
        "now": crate::value::format_datetime(org.now()),
        "ahead_by_seconds": org.clock_ahead().whole_seconds(),
    })
}

async fn clock(State(sim): State<Sim>, Path(org): Path<String>) -> Response {
    match find(&sim, &org) {
        Ok(org) => json_response(200, &clock_json(&org)),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct Advance {
    #[serde(default)]
    days: u32,
    #[serde(default)]
    seconds: u64,
}

async fn advance_clock(State(sim): State<Sim>, Path(org): Path<String>, Json(by): Json<Advance>) -> Response {
    let org = match find(&sim, &org) {
        Ok(o) => o,
        Err(r) => return r,
    };
    // Ten years at a time keeps every instant sfsim computes representable.
    const MAX_SECONDS: u64 = 10 * 366 * 24 * 3600;
    let total = u64::from(by.days).saturating_mul(24 * 3600).saturating_add(by.seconds);
    if total == 0 || total > MAX_SECONDS {
        return bad("give days or seconds (together at most ten years) to move the clock forward by");
    }
    let by = time::Duration::seconds(i64::try_from(total).unwrap_or(0));
    org.advance_clock(by);
    json_response(200, &clock_json(&org))
}

async fn calls(State(sim): State<Sim>, Path(org): Path<String>) -> Response {
    let org = match find(&sim, &org) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let calls = lock(&org.calls).clone();
    let total: u64 = calls.values().sum();
    json_response(200, &json!({ "total": total, "by_route": calls }))
}

async fn set_faults(State(sim): State<Sim>, Path(org): Path<String>, Json(faults): Json<Faults>) -> Response {
    let org = match find(&sim, &org) {
        Ok(o) => o,
        Err(r) => return r,
    };
    *lock(&org.faults) = faults.clone();
    json_response(200, &json!(faults))
}

async fn get_faults(State(sim): State<Sim>, Path(org): Path<String>) -> Response {
    match find(&sim, &org) {
        Ok(org) => json_response(200, &json!(*lock(&org.faults))),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct LimitsChange {
    used: Option<u64>,
    max: Option<u64>,
}

async fn set_limits(State(sim): State<Sim>, Path(org): Path<String>, Json(change): Json<LimitsChange>) -> Response {
    let org = match find(&sim, &org) {
        Ok(o) => o,
        Err(r) => return r,
    };
    org.set_limits(change.used, change.max);
    let (used, max) = org.usage();
    json_response(200, &json!({ "used": used, "max": max }))
}

async fn revoke(State(sim): State<Sim>, Path(org): Path<String>) -> Response {
    match find(&sim, &org) {
        Ok(org) => json_response(200, &json!({ "revoked": sim.revoke_sessions(&org.id) })),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct Age {
    seconds: u64,
}

async fn age(State(sim): State<Sim>, Path(org): Path<String>, Json(age): Json<Age>) -> Response {
    match find(&sim, &org) {
        Ok(org) => {
            sim.age_sessions(&org.id, std::time::Duration::from_secs(age.seconds));
            json_response(200, &json!({ "aged_by_seconds": age.seconds }))
        }
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct DuplicateRules {
    objects: Vec<String>,
}

async fn duplicate_rules(
    State(sim): State<Sim>,
    Path(org): Path<String>,
    Json(rules): Json<DuplicateRules>,
) -> Response {
    let org = match find(&sim, &org) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let mut set = lock(&org.duplicate_rules);
    set.clear();
    for name in &rules.objects {
        match schema::object(name) {
            Some(o) => {
                set.insert(o.name);
            }
            None => return bad(format!("unknown object {name}")),
        }
    }
    json_response(200, &json!({ "objects": set.iter().collect::<Vec<_>>() }))
}
