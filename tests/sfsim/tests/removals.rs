//! Records that leave Salesforce, as a client sees them through the REST
//! API: merged losers and deleted rows in `queryAll` until the recycle bin
//! is emptied (by hand or after 15 days on the org's clock), the
//! replication API's deleted list and its window, undelete, and Lead
//! conversion.

mod common;

use common::{Answer, Env, env};
use reqwest::Method;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime, format_description::well_known::Rfc3339, macros::format_description};

fn at(stamp: &Value) -> OffsetDateTime {
    let text = stamp.as_str().unwrap_or_else(|| panic!("a datetime, got {stamp}"));
    sfsim::value::parse_datetime(text).unwrap_or_else(|| panic!("a datetime, got {text}"))
}

fn minute_of(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_second(0).and_then(|t| t.replace_nanosecond(0)).expect("a minute")
}

/// `2026-12-04T10:00:00+00:00`, the form the docs show; the client's URL
/// encoding turns `+` into `%2B`.
fn iso(t: OffsetDateTime) -> String {
    t.format(format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]+00:00")).expect("format")
}

async fn get_query(env: &Env, token: &str, path: &str, params: &[(&str, &str)]) -> Answer {
    let response = env.http.get(env.url(path)).query(params).bearer_auth(token).send().await.expect("send");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    Answer { status, headers, body }
}

async fn org_now(env: &Env) -> OffsetDateTime {
    at(&env.control(Method::GET, "/clock", &json!(null)).await.body["now"])
}

async fn deleted_list(env: &Env, token: &str, object: &str, start: &str, end: &str) -> Answer {
    get_query(env, token, &format!("/sobjects/{object}/deleted/"), &[("start", start), ("end", end)]).await
}

async fn query_all(env: &Env, token: &str, soql: &str) -> Answer {
    get_query(env, token, "/queryAll/", &[("q", soql)]).await
}

fn ids_of(answer: &Answer) -> Vec<String> {
    let mut ids: Vec<String> = answer.body["records"]
        .as_array()
        .unwrap_or_else(|| panic!("records in {}", answer.body))
        .iter()
        .map(|r| r["Id"].as_str().expect("Id").to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

async fn merge(env: &Env, object: &str, master: &str, others: &[&str]) -> Answer {
    env.control(
        Method::POST,
        &format!("/records/{object}/merge"),
        &json!({ "master_id": master, "merged_ids": others }),
    )
    .await
}

fn old_contacts(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({ "LastName": format!("佐藤{i}"), "SystemModstamp": "2026-01-01T00:00:00.000Z" }))
            .collect(),
    )
}

#[tokio::test]
async fn merged_losers_show_in_query_all_with_their_master_and_leave_query() {
    let env = env().await;
    let contacts = env.seed("Contact", old_contacts(3)).await;
    let (master, losers) = (&contacts[0], &contacts[1..]);
    let task = env.seed("Task", json!({ "Subject": "電話", "WhoId": losers[0] })).await;
    let merged = merge(&env, "Contact", master, &[&losers[0], &losers[1]]).await;
    assert_eq!(merged.status, 200, "{}", merged.body);
    assert_eq!(merged.body["id"], master.as_str());
    assert_eq!(merged.body["updated_related_ids"], json!(task));

    let token = env.login().await;
    let live = env.query(&token, "SELECT Id, MasterRecordId FROM Contact").await;
    assert_eq!(ids_of(&live), vec![master.clone()], "query leaves merged losers out");
    assert_eq!(live.body["records"][0]["MasterRecordId"], Value::Null, "a live row has no master");

    let soql = format!(
        "SELECT Id, IsDeleted, MasterRecordId, SystemModstamp FROM Contact WHERE IsDeleted = true AND MasterRecordId = '{master}'"
    );
    let gone = query_all(&env, &token, &soql).await;
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert_eq!(ids_of(&gone), sorted(losers.to_vec()));
    for row in gone.body["records"].as_array().expect("rows") {
        assert_eq!(row["IsDeleted"], true);
        assert_eq!(row["MasterRecordId"], master.as_str());
        assert!(at(&row["SystemModstamp"]) > at(&json!("2026-01-01T00:00:00Z")), "a merge moves the loser's modstamp");
    }
    let everyone = query_all(&env, &token, "SELECT Id FROM Contact WHERE MasterRecordId != null").await;
    assert_eq!(ids_of(&everyone), sorted(losers.to_vec()));

    let master_row = env.query(&token, &format!("SELECT SystemModstamp FROM Contact WHERE Id = '{master}'")).await;
    assert!(at(&master_row.body["records"][0]["SystemModstamp"]) > at(&json!("2026-01-02T00:00:00Z")));
    let task_row = env.query(&token, &format!("SELECT WhoId FROM Task WHERE Id = '{}'", task[0])).await;
    assert_eq!(task_row.body["records"][0]["WhoId"], master.as_str(), "the call history follows the survivor");
}

#[tokio::test]
async fn an_account_merge_moves_contacts_and_tasks_to_the_master() {
    let env = env().await;
    let accounts = env.seed("Account", json!([{ "Name": "サンプル商事" }, { "Name": "サンプル商事(重複)" }])).await;
    let contact = env.seed("Contact", json!({ "LastName": "佐藤", "AccountId": accounts[1] })).await;
    let task = env.seed("Task", json!({ "Subject": "訪問", "WhatId": accounts[1] })).await;
    let merged = merge(&env, "Account", &accounts[0], &[&accounts[1]]).await;
    assert_eq!(merged.status, 200, "{}", merged.body);
    assert_eq!(merged.body["updated_related_ids"], json!(sorted(vec![contact[0].clone(), task[0].clone()])));

    let token = env.login().await;
    let moved = env.query(&token, &format!("SELECT AccountId FROM Contact WHERE Id = '{}'", contact[0])).await;
    assert_eq!(moved.body["records"][0]["AccountId"], accounts[0].as_str());
    let moved = env.query(&token, &format!("SELECT WhatId, AccountId FROM Task WHERE Id = '{}'", task[0])).await;
    assert_eq!(moved.body["records"][0]["WhatId"], accounts[0].as_str());
    assert_eq!(moved.body["records"][0]["AccountId"], accounts[0].as_str());
    let loser = query_all(
        &env,
        &token,
        &format!("SELECT IsDeleted, MasterRecordId, MasterRecord.Name FROM Account WHERE Id = '{}'", accounts[1]),
    )
    .await;
    assert_eq!(loser.body["records"][0]["IsDeleted"], true, "{}", loser.body);
    assert_eq!(loser.body["records"][0]["MasterRecord"]["Name"], "サンプル商事");
}

#[tokio::test]
async fn merges_salesforce_would_not_make_are_refused() {
    let env = env().await;
    let leads = env
        .seed("Lead", json!([{ "LastName": "A", "Company": "x" }, { "LastName": "B", "Company": "x" }, { "LastName": "C", "Company": "x" }, { "LastName": "D", "Company": "x" }]))
        .await;
    let task = env.seed("Task", json!({ "Subject": "s" })).await;
    let l: Vec<&str> = leads.iter().map(String::as_str).collect();
    let cases: Vec<(&str, &str, Vec<&str>, u16)> = vec![
        ("Lead", l[0], vec![l[1], l[2], l[3]], 400),
        ("Lead", l[0], vec![], 400),
        ("Lead", l[0], vec![l[0]], 400),
        ("Task", task[0].as_str(), vec![l[1]], 400),
        ("Contact", l[0], vec![l[1]], 404),
    ];
    for (object, master, others, status) in cases {
        let answer = merge(&env, object, master, &others).await;
        assert_eq!(answer.status, status, "{object} {master} {others:?}: {}", answer.body);
        assert!(answer.body["error"].is_string(), "{}", answer.body);
    }
    assert_eq!(merge(&env, "Lead", &leads[0], &[&leads[1]]).await.status, 200);
    let again = merge(&env, "Lead", &leads[1], &[&leads[2]]).await;
    assert_eq!(again.status, 404, "a merged loser cannot be a master: {}", again.body);
}

#[tokio::test]
async fn an_emptied_recycle_bin_hides_rows_from_query_all_but_not_from_the_deleted_list() {
    let env = env().await;
    let leads = env
        .seed("Lead", json!([{ "LastName": "A", "Company": "x" }, { "LastName": "B", "Company": "x" }, { "LastName": "C", "Company": "x" }]))
        .await;
    assert_eq!(merge(&env, "Lead", &leads[0], &[&leads[1], &leads[2]]).await.status, 200);
    let token = env.login().await;
    let soql = "SELECT Id, IsDeleted, MasterRecordId FROM Lead";
    assert_eq!(ids_of(&query_all(&env, &token, soql).await).len(), 3);
    let bin = env.control(Method::GET, "/recycle-bin", &json!(null)).await;
    assert_eq!(bin.body.as_array().map(Vec::len), Some(2), "{}", bin.body);
    let deleted_at = at(&bin.body[0]["deleted_date"]);
    let end = iso(org_now(&env).await + Duration::minutes(2));

    let before = deleted_list(&env, &token, "Lead", &iso(deleted_at - Duration::minutes(10)), &end).await;
    assert_eq!(before.status, 200, "{}", before.body);
    let listed: Vec<&str> = before.body["deletedRecords"]
        .as_array()
        .expect("deletedRecords")
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!(sorted(listed.iter().map(|s| (*s).to_owned()).collect()), sorted(leads[1..].to_vec()));
    assert_eq!(
        at(&before.body["deletedRecords"][0]["deletedDate"]),
        deleted_at,
        "deletedDate is the deletion's modstamp"
    );

    let emptied = env.control(Method::POST, "/recycle-bin/empty", &json!({})).await;
    assert_eq!(emptied.status, 200, "{}", emptied.body);
    assert_eq!(ids_of(&query_all(&env, &token, soql).await), vec![leads[0].clone()], "purged rows leave queryAll");
    let purged_read = env.get(&token, &format!("/sobjects/Lead/{}", leads[1])).await;
    assert_eq!(purged_read.status, 404);

    let too_early = deleted_list(&env, &token, "Lead", &iso(deleted_at - Duration::minutes(10)), &end).await;
    assert_eq!(too_early.status, 400, "a purge moves the window's start: {}", too_early.body);
    assert_eq!(too_early.body[0]["errorCode"], "INVALID_REPLICATION_DATE");
    let after = deleted_list(&env, &token, "Lead", &iso(minute_of(deleted_at)), &end).await;
    assert_eq!(after.status, 200, "{}", after.body);
    assert_eq!(after.body["deletedRecords"].as_array().map(Vec::len), Some(2), "{}", after.body);
    assert_eq!(at(&after.body["earliestDateAvailable"]), minute_of(deleted_at));
}

#[tokio::test]
async fn after_fifteen_days_on_the_clock_the_bin_is_empty_and_the_deleted_list_no_longer_reaches_back() {
    let env = env().await;
    let leads =
        env.seed("Lead", json!([{ "LastName": "A", "Company": "x" }, { "LastName": "B", "Company": "x" }])).await;
    let token = env.login().await;
    let gone = env.http.delete(env.url(&format!("/sobjects/Lead/{}", leads[1]))).bearer_auth(&token).send().await;
    assert_eq!(gone.expect("send").status().as_u16(), 204);
    let deleted_at = org_now(&env).await;
    let start = iso(deleted_at - Duration::minutes(5));

    let fourteen = env.control(Method::POST, "/clock/advance", &json!({ "days": 14 })).await;
    assert_eq!(fourteen.status, 200, "{}", fourteen.body);
    assert_eq!(fourteen.body["ahead_by_seconds"], 14 * 24 * 3600);
    let soql = format!("SELECT Id FROM Lead WHERE Id = '{}'", leads[1]);
    assert_eq!(ids_of(&query_all(&env, &token, &soql).await), vec![leads[1].clone()], "still in the bin after 14 days");
    let end = iso(org_now(&env).await);
    let listed = deleted_list(&env, &token, "Lead", &start, &end).await;
    assert_eq!(listed.body["deletedRecords"][0]["id"], leads[1].as_str(), "{}", listed.body);

    env.control(Method::POST, "/clock/advance", &json!({ "days": 1, "seconds": 3600 })).await;
    assert_eq!(ids_of(&query_all(&env, &token, &soql).await), Vec::<String>::new(), "purged after 15 days");
    let now = org_now(&env).await;
    let end = iso(now);
    let too_old = deleted_list(&env, &token, "Lead", &start, &end).await;
    assert_eq!(too_old.status, 400, "{}", too_old.body);
    assert_eq!(too_old.body[0]["errorCode"], "INVALID_REPLICATION_DATE");
    assert!(too_old.body[0]["message"].is_string());
    let window = deleted_list(&env, &token, "Lead", &iso(now - Duration::days(15) + Duration::minutes(2)), &end).await;
    assert_eq!(window.status, 200, "{}", window.body);
    assert_eq!(window.body["deletedRecords"], json!([]), "the deletion is older than the log reaches");
    assert!(at(&window.body["earliestDateAvailable"]) > deleted_at);

    let created = env.post(&token, "/sobjects/Lead/", &json!({ "LastName": "新規", "Company": "x" })).await;
    let id = created.body["id"].as_str().expect("id");
    let row = env.get(&token, &format!("/sobjects/Lead/{id}")).await;
    assert!(at(&row.body["SystemModstamp"]) >= deleted_at + Duration::days(15), "modstamps follow the org's clock");
}

#[tokio::test]
async fn an_undeleted_record_is_live_again_and_its_deletion_stays_in_the_log() {
    let env = env().await;
    let leads = env
        .seed("Lead", json!([{ "LastName": "A", "Company": "x" }, { "LastName": "B", "Company": "x" }, { "LastName": "C", "Company": "x" }]))
        .await;
    let token = env.login().await;
    let start = iso(org_now(&env).await - Duration::minutes(5));
    let gone = env.http.delete(env.url(&format!("/sobjects/Lead/{}", leads[1]))).bearer_auth(&token).send().await;
    assert_eq!(gone.expect("send").status().as_u16(), 204);
    assert_eq!(merge(&env, "Lead", &leads[0], &[&leads[2]]).await.status, 200);
    let deleted_row =
        query_all(&env, &token, &format!("SELECT SystemModstamp FROM Lead WHERE Id = '{}'", leads[1])).await;
    let deleted_stamp = at(&deleted_row.body["records"][0]["SystemModstamp"]);

    let undeleted = env.control(Method::POST, "/recycle-bin/undelete", &json!({ "ids": [leads[1], leads[2]] })).await;
    assert_eq!(undeleted.status, 200, "{}", undeleted.body);
    let live = env.query(&token, "SELECT Id, IsDeleted, MasterRecordId, SystemModstamp FROM Lead").await;
    assert_eq!(ids_of(&live), sorted(leads.clone()));
    for row in live.body["records"].as_array().expect("rows") {
        assert_eq!(row["IsDeleted"], false);
        assert_eq!(row["MasterRecordId"], Value::Null);
    }
    let row = env.get(&token, &format!("/sobjects/Lead/{}", leads[1])).await;
    assert!(at(&row.body["SystemModstamp"]) >= deleted_stamp, "an undelete is a change");

    let end = iso(org_now(&env).await + Duration::minutes(1));
    let log = deleted_list(&env, &token, "Lead", &start, &end).await;
    assert_eq!(log.body["deletedRecords"].as_array().map(Vec::len), Some(2), "{}", log.body);
    let again = env.control(Method::POST, "/recycle-bin/undelete", &json!({ "ids": [leads[1]] })).await;
    assert_eq!(again.status, 404, "{}", again.body);
}

#[tokio::test]
async fn a_converted_lead_carries_its_conversion_fields_and_a_new_modstamp() {
    let env = env().await;
    let lead = env
        .seed(
            "Lead",
            json!({ "LastName": "佐藤", "Company": "サンプル商事", "SystemModstamp": "2026-01-01T00:00:00.000Z" }),
        )
        .await;
    let converted = env.control(Method::POST, &format!("/leads/{}/convert", lead[0]), &json!({})).await;
    assert_eq!(converted.status, 200, "{}", converted.body);
    let token = env.login().await;
    let soql =
        "SELECT Id, IsConverted, ConvertedDate, ConvertedContactId, ConvertedAccountId, SystemModstamp FROM Lead";
    let row = env.query(&token, soql).await;
    let row = &row.body["records"][0];
    assert_eq!(row["IsConverted"], true, "plain query still returns a converted Lead: {row}");
    assert_eq!(row["ConvertedContactId"], converted.body["contact_id"]);
    assert_eq!(row["ConvertedAccountId"], converted.body["account_id"]);
    let today = org_now(&env).await.date();
    assert_eq!(row["ConvertedDate"], today.format(format_description!("[year]-[month]-[day]")).expect("date"));
    assert!(at(&row["SystemModstamp"]) > at(&json!("2026-01-01T00:00:00Z")), "{row}");
    let open = env.query(&token, "SELECT Id FROM Lead WHERE IsConverted = false").await;
    assert_eq!(open.body["totalSize"], 0);
}

#[tokio::test]
async fn the_deleted_list_costs_one_call_and_refuses_windows_salesforce_refuses() {
    let env = env().await;
    let token = env.login().await;
    let now = org_now(&env).await;
    let ok = deleted_list(&env, &token, "Lead", &iso(now - Duration::hours(1)), &iso(now)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(
        ok.body.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["deletedRecords".to_owned(), "earliestDateAvailable".to_owned(), "latestDateCovered".to_owned()])
    );
    assert_eq!(at(&ok.body["latestDateCovered"]), minute_of(now));
    assert!(ok.headers.get("sforce-limit-info").is_some());

    async fn check(env: &Env, token: &str, object: &str, params: &[(&str, String)], expected: (u16, &str)) {
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = get_query(env, token, &format!("/sobjects/{object}/deleted/"), &params).await;
        let got = (answer.status, answer.body[0]["errorCode"].as_str().unwrap_or_default());
        assert_eq!(got, expected, "{object} {params:?}: {}", answer.body);
        assert!(answer.body[0]["message"].is_string(), "{}", answer.body);
    }
    let rfc = |t: OffsetDateTime| t.format(&Rfc3339).expect("format");
    let invalid = (400, "INVALID_REPLICATION_DATE");
    let hour_ago = now - Duration::hours(1);
    check(&env, &token, "Lead", &[("start", iso(now)), ("end", iso(hour_ago))], invalid).await;
    check(&env, &token, "Lead", &[("start", rfc(now - Duration::seconds(30))), ("end", rfc(now))], invalid).await;
    check(&env, &token, "Lead", &[("start", rfc(now - Duration::days(16))), ("end", rfc(now))], invalid).await;
    check(&env, &token, "Lead", &[("start", "2026-12-01".to_owned()), ("end", rfc(now))], invalid).await;
    check(&env, &token, "Lead", &[("end", rfc(now))], (400, "MISSING_ARGUMENT")).await;
    check(&env, &token, "Bacon__c", &[("start", rfc(hour_ago)), ("end", rfc(now))], (404, "NOT_FOUND")).await;
    // An unencoded '+' reaches Salesforce as a space.
    let raw = env.url(&format!("/sobjects/Lead/deleted/?start={}&end={}", iso(now - Duration::hours(1)), iso(now)));
    let answer = env.http.get(raw).bearer_auth(&token).send().await.expect("send");
    assert_eq!(answer.status().as_u16(), 400);

    let calls = env.control(Method::GET, "/calls", &json!(null)).await;
    assert_eq!(calls.body["by_route"]["GET /sobjects/{object}/deleted"], 8, "{}", calls.body);
}

#[tokio::test]
async fn rows_seeded_deleted_are_in_the_recycle_bin_from_their_modstamp() {
    let env = env().await;
    let now = org_now(&env).await;
    let stamp = |t: OffsetDateTime| t.format(&Rfc3339).expect("format");
    let leads = env
        .seed(
            "Lead",
            json!([
                { "LastName": "昨日", "Company": "x", "IsDeleted": true, "SystemModstamp": stamp(now - Duration::days(1)) },
                { "LastName": "先月", "Company": "x", "IsDeleted": true, "SystemModstamp": stamp(now - Duration::days(20)) },
            ]),
        )
        .await;
    let token = env.login().await;
    let all = query_all(&env, &token, "SELECT Id FROM Lead WHERE IsDeleted = true").await;
    assert_eq!(ids_of(&all), vec![leads[0].clone()], "a row deleted 20 days ago was purged already");
    let start = iso(now - Duration::days(2));
    let log = deleted_list(&env, &token, "Lead", &start, &iso(now)).await;
    assert_eq!(log.body["deletedRecords"][0]["id"], leads[0].as_str(), "{}", log.body);
    let deleted_date = at(&log.body["deletedRecords"][0]["deletedDate"]);
    assert!((deleted_date - (now - Duration::days(1))).abs() < Duration::milliseconds(1), "deleted at its modstamp");
}
