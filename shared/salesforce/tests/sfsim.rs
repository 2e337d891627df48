//! The client against sfsim, a faithful local Salesforce: the token
//! exchange, paging, record creation, and each kind of failure classified as
//! the services need it.

use std::collections::HashSet;

use fa_salesforce::{
    BatchSize, Client, Error, ErrorCode, ExchangeError, NewRecord, Retry, audience_for, datetime, exchange,
    oauth::{LOGIN_AUDIENCE, TEST_AUDIENCE},
    soql, users,
};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use sfsim::{fixture::ConnectedOrg, server::Server, store::NewUser};
use time::OffsetDateTime;

struct Env {
    server: Server,
    org: ConnectedOrg,
    http: reqwest::Client,
}

async fn env() -> Env {
    let server = Server::start_local().await.expect("sfsim starts");
    let org = sfsim::fixture::connected_org(&server.sim, "Acme").expect("org");
    Env { server, org, http: reqwest::Client::new() }
}

/// A signed assertion as the token-broker makes it.
fn assertion(iss: &str, sub: &str, aud: &str, key_pem: &str) -> String {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let exp = OffsetDateTime::now_utc().unix_timestamp() + 180;
    let claims = json!({ "iss": iss, "sub": sub, "aud": aud, "exp": exp });
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes()).expect("key");
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &claims, &key).expect("sign")
}

impl Env {
    fn assertion(&self) -> String {
        let org = &self.org;
        assertion(&org.consumer_key, &org.username, audience_for(&self.server.url), &org.keys.private_key_pem)
    }

    async fn client(&self) -> Client {
        let grant = exchange(&self.http, &self.server.url, &self.assertion()).await.expect("token");
        Client::new(self.http.clone(), &grant.instance_url, grant.access_token).with_service("test")
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: serde_json::Value) {
        let url = format!("{}/sfsim/orgs/{}{path}", self.server.url, self.org.org.id);
        let answer = self.http.request(method, url).json(&body).send().await.expect("control call");
        assert!(answer.status().is_success(), "{path}: {}", answer.status());
    }

    fn api_calls(&self) -> u64 {
        self.org.org.calls().values().sum()
    }
}

fn new_user(username: &str, last_name: &str, active: bool, user_type: &str) -> NewUser {
    NewUser {
        username: username.to_owned(),
        first_name: None,
        last_name: last_name.to_owned(),
        email: Some(username.to_owned()),
        active,
        user_type: user_type.to_owned(),
    }
}

#[tokio::test]
async fn a_valid_assertion_gets_a_token_and_the_instance_url() {
    let env = env().await;
    let grant = exchange(&env.http, &format!("{}/", env.server.url), &env.assertion()).await.expect("token");
    assert_eq!(grant.instance_url, env.server.url);
    assert_eq!(grant.organization_id.as_deref(), Some(env.org.org.id.as_str()));
    assert_eq!(grant.user_id.as_deref(), Some(env.org.user_id.as_str()));
    assert_eq!(grant.scope.as_deref(), Some("web api"));
    let token = grant.access_token.expose_secret().to_owned();
    assert!(!format!("{grant:?}").contains(&token), "Debug must not print the token");
    let client = Client::new(env.http.clone(), &grant.instance_url, grant.access_token.clone());
    assert!(!format!("{client:?}").contains(&token), "Debug must not print the token");
    let page = client.query::<serde_json::Value>("SELECT Id FROM Lead").await.expect("the token works");
    assert_eq!((page.total_size, page.done), (0, true));
}

#[tokio::test]
async fn each_oauth_refusal_passes_salesforce_error_and_description_through() {
    let env = env().await;
    let org = &env.org;
    env.server
        .sim
        .create_user(&org.org, &new_user("sales@acme.example.com", "営業", true, "Standard"))
        .expect("a user not approved for the app");
    let other_key = sfsim::keygen::generate("other").expect("key");
    let cases = [
        (
            assertion("3MVG9unknown", &org.username, LOGIN_AUDIENCE, &org.keys.private_key_pem),
            "invalid_client_id",
            "client identifier invalid",
        ),
        (
            assertion(&org.consumer_key, "sales@acme.example.com", LOGIN_AUDIENCE, &org.keys.private_key_pem),
            "invalid_grant",
            "user hasn't approved this consumer",
        ),
        (
            assertion(&org.consumer_key, &org.username, LOGIN_AUDIENCE, &other_key.private_key_pem),
            "invalid_grant",
            "invalid assertion",
        ),
        (
            assertion(&org.consumer_key, &org.username, TEST_AUDIENCE, &org.keys.private_key_pem),
            "invalid_grant",
            "audience is invalid",
        ),
    ];
    for (assertion, error, description) in cases {
        let refused = exchange(&env.http, &env.server.url, &assertion).await.expect_err("refused");
        assert_eq!(
            refused,
            ExchangeError::Rejected { status: 400, error: error.to_owned(), error_description: description.to_owned() }
        );
        assert_eq!(refused.retry(), Retry::Permanent, "{refused}");
        assert!(!refused.to_string().contains(&assertion), "the assertion is never quoted");
    }
}

#[tokio::test]
async fn an_unreachable_login_url_is_unreachable_not_rejected() {
    let env = env().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let error = exchange(&env.http, &format!("http://127.0.0.1:{closed}"), &env.assertion()).await.expect_err("no");
    assert!(matches!(error, ExchangeError::Unreachable(_)), "{error:?}");
    assert_eq!(error.retry(), Retry::Transient);
    // A host that answers, but not as Salesforce's token endpoint does.
    let error = exchange(&env.http, &format!("{}/nowhere", env.server.url), &env.assertion()).await.expect_err("no");
    assert!(matches!(error, ExchangeError::Unreachable(_)), "{error:?}");
}

#[derive(Debug, Deserialize)]
struct Lead {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "LastName")]
    last_name: String,
    #[serde(rename = "SystemModstamp", with = "datetime::field")]
    modstamp: OffsetDateTime,
}

#[tokio::test]
async fn paging_follows_next_records_url_until_done() {
    let env = env().await;
    sfsim::control::generate_into(&env.server.sim, &env.org.org, 2500, 0, 0, 7, 30);
    let client = env.client().await.with_batch_size(BatchSize::new(1000));
    let mut page = client
        .query::<Lead>("SELECT Id, LastName, SystemModstamp FROM Lead ORDER BY SystemModstamp, Id")
        .await
        .expect("page");
    let mut sizes = vec![page.records.len()];
    let mut leads = std::mem::take(&mut page.records);
    assert_eq!((page.total_size, page.done), (2500, false));
    while let Some(next) = page.next_records_url.take() {
        assert!(next.starts_with("/services/data/v61.0/query/"), "{next}");
        page = client.query_more::<Lead>(&next).await.expect("next page");
        assert_eq!(page.total_size, 2500, "totalSize is the whole result on every page");
        sizes.push(page.records.len());
        leads.append(&mut page.records);
    }
    assert!(page.done);
    assert_eq!(sizes, [1000, 1000, 500]);
    let ids: HashSet<&str> = leads.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids.len(), 2500, "no record twice");
    assert!(leads.iter().all(|l| !l.last_name.is_empty()));
    assert!(leads.windows(2).all(|w| w[0].modstamp <= w[1].modstamp), "in SystemModstamp order");
    assert!(page.usage.is_some(), "every page reports the allowance");
}

#[tokio::test]
async fn a_used_locator_is_invalid_and_permanent() {
    let env = env().await;
    sfsim::control::generate_into(&env.server.sim, &env.org.org, 300, 0, 0, 7, 30);
    let client = env.client().await.with_batch_size(BatchSize::MIN);
    let first = client.query::<serde_json::Value>("SELECT Id FROM Lead").await.expect("page");
    let next = first.next_records_url.expect("a second page");
    client.query_more::<serde_json::Value>(&next).await.expect("the locator is good once");
    let error = client.query_more::<serde_json::Value>(&next).await.expect_err("not twice");
    let api = error.api().expect("Salesforce's error");
    assert_eq!((api.status, &api.code), (400, &ErrorCode::InvalidQueryLocator));
    assert_eq!(error.retry(), Retry::Permanent);
}

#[tokio::test]
async fn a_revoked_session_is_classified_refresh_token() {
    let env = env().await;
    let client = env.client().await;
    client.query::<serde_json::Value>("SELECT Id FROM Lead").await.expect("a live session");
    assert!(env.server.sim.revoke_sessions(&env.org.org.id) >= 1);
    let error = client.query::<serde_json::Value>("SELECT Id FROM Lead").await.expect_err("revoked");
    let api = error.api().expect("Salesforce's error");
    assert_eq!(
        (api.status, &api.code, api.message.as_str()),
        (401, &ErrorCode::InvalidSessionId, "Session expired or invalid")
    );
    assert_eq!(error.retry(), Retry::RefreshToken);
    // A new token, the same client otherwise.
    let grant = exchange(&env.http, &env.server.url, &env.assertion()).await.expect("token");
    let client = client.with_token(grant.access_token);
    client.query::<serde_json::Value>("SELECT Id FROM Lead").await.expect("the new session works");
}

#[tokio::test]
async fn an_injected_503_is_transient() {
    let env = env().await;
    let client = env.client().await;
    env.control(reqwest::Method::PUT, "/faults", json!({ "unavailable_next": 1 })).await;
    let error = client.query::<serde_json::Value>("SELECT Id FROM Lead").await.expect_err("unavailable");
    let api = error.api().expect("Salesforce's error");
    assert_eq!((api.status, &api.code), (503, &ErrorCode::ServerUnavailable));
    assert_eq!(error.retry(), Retry::Transient);
    client.query::<serde_json::Value>("SELECT Id FROM Lead").await.expect("the retry succeeds");
}

#[tokio::test]
async fn a_spent_allowance_is_pause_tenant_and_usage_is_read() {
    let env = env().await;
    let client = env.client().await;
    env.org.org.set_limits(Some(0), Some(2));
    for used in 1..=2 {
        let page = client.query::<serde_json::Value>("SELECT Id FROM Lead").await.expect("allowed");
        let usage = page.usage.expect("Sforce-Limit-Info");
        assert_eq!((usage.used, usage.max), (used, 2));
    }
    let error = client.query::<serde_json::Value>("SELECT Id FROM Lead").await.expect_err("spent");
    let api = error.api().expect("Salesforce's error");
    assert_eq!((api.status, &api.code), (403, &ErrorCode::RequestLimitExceeded));
    assert_eq!(api.limit.map(|u| (u.used, u.max, u.ratio())), Some((2, 2, 1.0)));
    assert_eq!(error.retry(), Retry::PauseTenant);
}

#[tokio::test]
async fn a_bad_query_is_permanent_with_salesforces_code() {
    let env = env().await;
    let client = env.client().await;
    for (soql, code) in [
        ("SELEKT Id FROM Lead", ErrorCode::MalformedQuery),
        ("SELECT Bacon__c FROM Account", ErrorCode::InvalidField),
        ("SELECT Id FROM Foo", ErrorCode::InvalidType),
    ] {
        let error = client.query::<serde_json::Value>(soql).await.expect_err("refused");
        let api = error.api().expect("Salesforce's error");
        assert_eq!((api.status, &api.code), (400, &code), "{soql}");
        assert_eq!(error.retry(), Retry::Permanent, "{soql}");
    }
}

#[tokio::test]
async fn a_next_records_url_that_is_not_a_path_is_refused_without_a_call() {
    let env = env().await;
    let client = env.client().await;
    let before = env.api_calls();
    for url in
        ["https://evil.example/services/data/v61.0/query/01g-2000", "/services/data/../../sfsim/orgs", "query/01g"]
    {
        let error = client.query_more::<serde_json::Value>(url).await.expect_err("refused");
        assert!(matches!(error, Error::InvalidInput(_)), "{url}: {error:?}");
    }
    assert_eq!(env.api_calls(), before);
}

#[tokio::test]
async fn active_users_lists_only_active_standard_users_by_name() {
    let env = env().await;
    let sim = &env.server.sim;
    let org = &env.org.org;
    // Enough users for two pages of 200.
    for i in 0..240 {
        sim.create_user(
            org,
            &new_user(&format!("agent{i:03}@acme.example.com"), &format!("Agent {i:03}"), true, "Standard"),
        )
        .expect("user");
    }
    sim.create_user(org, &new_user("abe@acme.example.com", "abe", true, "Standard")).expect("user");
    sim.create_user(org, &new_user("gone@acme.example.com", "Gone", false, "Standard")).expect("user");
    sim.create_user(org, &new_user("portal@acme.example.com", "Portal", true, "PowerPartner")).expect("user");
    sim.create_user(org, &new_user("robot@acme.example.com", "Robot", true, "AutomatedProcess")).expect("user");
    let client = env.client().await.with_batch_size(BatchSize::MIN);
    let calls = env.api_calls();

    let users = users::active_users(&client).await.expect("users");

    assert_eq!(env.api_calls() - calls, 2, "one call per page");
    let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    let mut expected: Vec<String> = (0..240).map(|i| format!("Agent {i:03}")).collect();
    // Case does not count: "abe" before "Agent".
    expected.insert(0, "abe".to_owned());
    expected.push("ユーザー 連携".to_owned());
    assert_eq!(names, expected);
    assert!(users.iter().all(|u| u.active));
    let me = users.iter().find(|u| u.id == env.org.user_id).expect("the integration user");
    assert_eq!(me.username, env.org.username);
    assert!(me.email.as_deref().is_some_and(|e| e.starts_with("admin@")));
}

#[tokio::test]
async fn one_user_is_found_by_its_15_or_18_character_id() {
    let env = env().await;
    let sim = &env.server.sim;
    let gone =
        sim.create_user(&env.org.org, &new_user("gone@acme.example.com", "Gone", false, "Standard")).expect("user");
    let client = env.client().await;

    let me = users::user(&client, &env.org.user_id).await.expect("call").expect("found");
    assert_eq!((me.id.as_str(), me.active), (env.org.user_id.as_str(), true));
    let short = users::user(&client, &env.org.user_id[..15]).await.expect("call").expect("found by 15 characters");
    assert_eq!(short.id, env.org.user_id);
    let gone = users::user(&client, &gone).await.expect("call").expect("inactive users are found too");
    assert!(!gone.active);
    assert_eq!(users::user(&client, "005000000000000AAA").await.expect("call"), None);

    let calls = env.api_calls();
    let error = users::user(&client, "005' OR Name != '").await.expect_err("refused");
    assert!(matches!(error, Error::InvalidInput(_)), "{error:?}");
    assert_eq!(error.retry(), Retry::Permanent);
    assert_eq!(env.api_calls(), calls, "a refused id costs no call");
}

#[tokio::test]
async fn where_datetimes_filter_to_the_second_and_to_the_millisecond() {
    let env = env().await;
    let seeded = json!([
        { "LastName": "Early", "Company": "x", "SystemModstamp": "2026-11-01T00:00:00.250Z" },
        { "LastName": "Late", "Company": "y", "SystemModstamp": "2026-11-01T00:00:00.750Z" },
    ]);
    env.control(reqwest::Method::POST, "/records/Lead", seeded).await;
    let client = env.client().await;
    let at = time::macros::datetime!(2026-11-01 09:00:00.250 +09:00);
    let cases = [
        (format!("SystemModstamp > {}", datetime::soql_literal_millis(at)), vec!["Late"]),
        (format!("SystemModstamp >= {}", datetime::soql_literal_millis(at)), vec!["Early", "Late"]),
        (format!("SystemModstamp > {}", datetime::soql_literal_seconds(at)), vec!["Early", "Late"]),
        // A `+` offset survives the URL encoding.
        ("SystemModstamp > 2026-11-01T09:00:00.500+09:00".to_owned(), vec!["Late"]),
    ];
    for (filter, expected) in cases {
        let soql = format!("SELECT Id, LastName, SystemModstamp FROM Lead WHERE {filter} ORDER BY SystemModstamp");
        let page = client.query::<Lead>(&soql).await.expect(&soql);
        let names: Vec<&str> = page.records.iter().map(|l| l.last_name.as_str()).collect();
        assert_eq!(names, expected, "{filter}");
    }
}

/// A record to create from a JSON object of fields.
fn new_record(object: &str, fields: serde_json::Value) -> NewRecord {
    let serde_json::Value::Object(fields) = fields else { panic!("fields are a JSON object") };
    NewRecord { object: object.to_owned(), fields }
}

/// The record `id` of `object` as Salesforce reads it back, if it exists.
async fn read_back(client: &Client, object: &str, fields: &str, id: &str) -> Option<serde_json::Value> {
    let soql = format!("SELECT {fields} FROM {object} WHERE Id = {}", soql::quote(id));
    client.query::<serde_json::Value>(&soql).await.expect("read back").records.into_iter().next()
}

#[tokio::test]
async fn a_collections_create_answers_each_record_in_order_in_one_call() {
    let env = env().await;
    let client = env.client().await;
    let records = [
        new_record("Lead", json!({ "LastName": "山田", "FirstName": "花子", "Company": "株式会社サンプル" })),
        new_record("Contact", json!({ "LastName": "佐藤", "Email": "sato@example.co.jp" })),
        new_record("Lead", json!({ "FirstName": "名無し", "Company": "株式会社サンプル" })),
        new_record("Task", json!({ "Subject": "通話", "Status": "Completed", "Priority": "Normal" })),
    ];
    let calls = env.api_calls();

    let created = client.create_records(&records).await.expect("HTTP 200 even with a refused record");

    assert_eq!(env.api_calls() - calls, 1, "one API call for the whole batch");
    assert!(created.usage.is_some(), "the answer reports the allowance");
    let [lead, contact, nameless, task] = created.results.try_into().expect("one result per record");
    let refused = nameless.expect_err("a Lead without LastName is refused");
    assert_eq!(refused.code, ErrorCode::RequiredFieldMissing);
    assert_eq!(refused.fields, ["LastName"]);
    assert_eq!(refused.retry(), Retry::Permanent);
    let (lead, contact, task) = (lead.expect("Lead"), contact.expect("Contact"), task.expect("Task"));
    for (id, prefix) in [(&lead, "00Q"), (&contact, "003"), (&task, "00T")] {
        assert_eq!((id.len(), &id[..3]), (18, prefix), "{id}");
    }
    let lead = read_back(&client, "Lead", "Id, LastName, Company", &lead).await.expect("the Lead exists");
    assert_eq!((&lead["LastName"], &lead["Company"]), (&json!("山田"), &json!("株式会社サンプル")));
    let contact = read_back(&client, "Contact", "Id, Email", &contact).await.expect("the Contact exists");
    assert_eq!(contact["Email"], "sato@example.co.jp");
    let task = read_back(&client, "Task", "Id, Subject", &task).await.expect("the Task exists");
    assert_eq!(task["Subject"], "通話");
    let page = client.query::<serde_json::Value>("SELECT Id FROM Lead").await.expect("leads");
    assert_eq!(page.total_size, 1, "the refused Lead was not created");
}

#[tokio::test]
async fn a_duplicate_lead_is_refused_naming_the_existing_record() {
    let env = env().await;
    let client = env.client().await;
    let fields = |last_name: &str| {
        new_record(
            "Lead",
            json!({ "LastName": last_name, "Company": "株式会社サンプル", "Email": "hanako@example.co.jp" }),
        )
        .fields
    };
    let (existing, usage) = client.create("Lead", &fields("山田")).await.expect("the first Lead");
    assert!(usage.is_some());
    env.control(reqwest::Method::PUT, "/duplicate-rules", json!({ "objects": ["Lead"] })).await;

    let error = client.create("Lead", &fields("山田 (2)")).await.expect_err("a duplicate");
    let api = error.api().expect("Salesforce's error");
    assert_eq!((api.status, &api.code), (400, &ErrorCode::DuplicatesDetected));
    assert_eq!(api.duplicates, std::slice::from_ref(&existing));
    assert_eq!(error.retry(), Retry::Permanent);

    // In a Collections call the same refusal is one record's; Salesforce may
    // or may not name the duplicates there.
    let created = client
        .create_records(&[
            NewRecord { object: "Lead".to_owned(), fields: fields("山田 (3)") },
            new_record("Lead", json!({ "LastName": "鈴木", "Company": "株式会社サンプル" })),
        ])
        .await
        .expect("HTTP 200");
    let refused = created.results[0].as_ref().expect_err("a duplicate");
    assert_eq!(refused.code, ErrorCode::DuplicatesDetected);
    assert!(refused.duplicates.is_empty() || refused.duplicates == [existing], "{refused:?}");
    assert!(created.results[1].is_ok(), "the other record is created");
}

#[tokio::test]
async fn more_than_200_records_are_refused_without_a_call() {
    let env = env().await;
    let client = env.client().await;
    let records = vec![new_record("Task", json!({ "Subject": "通話" })); 201];
    let calls = env.api_calls();

    let error = client.create_records(&records).await.expect_err("too many");

    assert!(matches!(error, Error::InvalidInput(_)), "{error:?}");
    assert_eq!(error.retry(), Retry::Permanent);
    assert_eq!(env.api_calls(), calls, "no call was made");
    let page = client.query::<serde_json::Value>("SELECT Id FROM Task").await.expect("tasks");
    assert_eq!(page.total_size, 0);
}

#[tokio::test]
async fn five_queries_cost_one_call_and_each_answers_on_its_own() {
    let env = env().await;
    sfsim::control::generate_into(&env.server.sim, &env.org.org, 30, 20, 10, 7, 30);
    let client = env.client().await;
    let soqls: Vec<String> = [
        "SELECT Id FROM Lead",
        "SELECT Id FROM Contact",
        "SELECT Bacon__c FROM Account",
        "SELECT Id FROM Account WHERE Phone IN ('+81 3-1234-5678', 'a&b=c')",
        "SELECT Id FROM Lead WHERE LastName = 'いない'",
    ]
    .map(str::to_owned)
    .to_vec();
    let calls = env.api_calls();

    let queried = client.queries::<serde_json::Value>(&soqls).await.expect("one Composite call");

    assert_eq!(env.api_calls() - calls, 1, "five queries, one API call");
    assert!(queried.usage.is_some(), "the answer reports the allowance");
    let sizes: Vec<Result<usize, String>> = queried
        .results
        .iter()
        .map(|r| r.as_ref().map(|p| p.records.len()).map_err(|e| e.code.as_str().to_owned()))
        .collect();
    assert_eq!(sizes, [Ok(30), Ok(20), Err("INVALID_FIELD".to_owned()), Ok(0), Ok(0)]);
    let bad = queried.results[2].as_ref().expect_err("refused");
    assert_eq!((bad.status, bad.retry()), (400, Retry::Permanent));

    let six = [soqls.clone(), vec!["SELECT Id FROM Lead".to_owned()]].concat();
    let error = client.queries::<serde_json::Value>(&six).await.expect_err("at most five");
    assert!(matches!(error, Error::InvalidInput(_)), "{error:?}");
    assert_eq!(env.api_calls() - calls, 1, "refused without a call");
}

#[derive(Deserialize)]
struct LifeRow {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "IsDeleted")]
    is_deleted: bool,
}

#[tokio::test]
async fn query_all_sees_the_recycle_bin_and_the_deleted_list_outlives_it() {
    let env = env().await;
    let now = OffsetDateTime::now_utc();
    let stamp = |t: OffsetDateTime| datetime::format(t);
    env.control(
        reqwest::Method::POST,
        "/records/Lead",
        json!([
            { "LastName": "生きている", "Company": "x", "SystemModstamp": stamp(now - time::Duration::hours(3)) },
            { "LastName": "ごみ箱", "Company": "x", "IsDeleted": true, "SystemModstamp": stamp(now - time::Duration::hours(2)) },
        ]),
    )
    .await;
    let client = env.client().await;
    let soql = "SELECT Id, IsDeleted FROM Lead ORDER BY SystemModstamp";
    let live = client.query::<LifeRow>(soql).await.expect("query");
    assert_eq!(live.records.len(), 1, "query leaves the recycle bin out");
    let all = client.query_all::<LifeRow>(soql).await.expect("queryAll");
    let deleted: Vec<&LifeRow> = all.records.iter().filter(|r| r.is_deleted).collect();
    assert_eq!((all.records.len(), deleted.len()), (2, 1), "queryAll sees the bin too");
    let deleted_id = deleted[0].id.clone();

    let calls = env.api_calls();
    let list = client.deleted("Lead", now - time::Duration::days(1), now).await.expect("the deleted list");
    assert_eq!(env.api_calls() - calls, 1, "one API call");
    assert_eq!(list.deleted_records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [deleted_id.as_str()]);
    assert!(list.earliest_date_available.is_some_and(|at| at <= now - time::Duration::days(1)));
    assert!(list.latest_date_covered.is_some());

    // Emptied by hand: gone from queryAll, still in the list.
    env.control(reqwest::Method::POST, "/recycle-bin/empty", json!({})).await;
    let all = client.query_all::<LifeRow>(soql).await.expect("queryAll");
    assert_eq!(all.records.len(), 1, "purged rows leave queryAll");
    let list = client.deleted("Lead", now - time::Duration::hours(1), now).await.expect("a window after the purge");
    assert!(list.deleted_records.is_empty(), "the deletion was before this window");

    // A window reaching back past what the log still covers is refused,
    // permanently: the sign to compare ids instead.
    let err = client.deleted("Lead", now - time::Duration::days(1), now).await.expect_err("before the purge");
    assert!(matches!(&err, Error::Api(api) if api.code == ErrorCode::InvalidReplicationDate), "{err:?}");
    assert_eq!(err.retry(), Retry::Permanent);

    let err = client.deleted("Lead; DROP", now - time::Duration::hours(1), now).await.expect_err("not an object");
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
}
