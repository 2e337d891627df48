//! The control API: what a test, a demo or a benchmark does to an org that
//! an admin would do in Salesforce's setup screens (create orgs, apps,
//! users), plus seeding data, reading it back, switching faults on and
//! counting calls. Its paths (`/sfsim/...`) are not Salesforce's.

use std::collections::BTreeMap;

use axum::{
    Json, Router,
    extract::{Path, State},
    response::{IntoResponse, Response},
    routing::{get, patch, post, put},
};
use serde::Deserialize;
use serde_json::{Map, Value as J, json};
use time::OffsetDateTime;

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
/// `IsConverted`, ...): a body that is one record or an array of them.
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
            Ok(id) => ids.push(id),
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

/// Every record of an object (deleted ones included), all fields.
async fn records(State(sim): State<Sim>, Path((org, object)): Path<(String, String)>) -> Response {
    let org = match find(&sim, &org) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Some(schema) = schema::object(&object) else { return bad(format!("unknown object {object}")) };
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
    let opts = GenOptions { seed, now: OffsetDateTime::now_utc(), spread: time::Duration::days(spread_days) };
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
