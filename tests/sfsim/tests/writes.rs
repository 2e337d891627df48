//! Creates, updates, collections, composite, SOSL, duplicate rules and
//! faults over HTTP, with Salesforce's validation and bodies.

mod common;

use std::time::Duration;

use common::env;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn a_create_answers_201_and_moves_the_modstamp_on_every_write() {
    let env = env().await;
    let token = env.login().await;
    let created = env
        .post(
            &token,
            "/sobjects/Lead/",
            &json!({ "LastName": "佐藤", "FirstName": "花子", "Company": "サンプル商事", "Phone": "03-1234-5678" }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["success"], true);
    assert_eq!(created.body["errors"], json!([]));
    let id = created.body["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("00Q") && id.len() == 18);
    let read = env.get(&token, &format!("/sobjects/Lead/{id}")).await;
    assert_eq!(read.body["Name"], "佐藤 花子");
    assert_eq!(read.body["Phone"], "03-1234-5678", "phones are stored as typed");
    let before = read.body["SystemModstamp"].as_str().expect("stamp").to_owned();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let updated = env.patch(&token, &format!("/sobjects/Lead/{id}"), &json!({ "Title": "部長" })).await;
    assert_eq!(updated.status, 204, "{}", updated.body);
    let after = env.get(&token, &format!("/sobjects/Lead/{id}")).await.body["SystemModstamp"]
        .as_str()
        .expect("stamp")
        .to_owned();
    assert!(after > before, "{before} -> {after}");
    // The 15-character id reads the same record.
    assert_eq!(env.get(&token, &format!("/sobjects/Lead/{}", &id[..15])).await.body["Id"], id.as_str());
}

#[tokio::test]
async fn invalid_records_get_salesforces_field_errors() {
    let env = env().await;
    let token = env.login().await;
    let long_kanji = "あ".repeat(80);
    let long_emoji = "😀".repeat(41);
    let cases: Vec<(&str, Value, &str, Option<&str>)> = vec![
        ("Lead", json!({ "Company": "x" }), "REQUIRED_FIELD_MISSING", Some("LastName")),
        ("Lead", json!({ "LastName": long_emoji, "Company": "x" }), "STRING_TOO_LONG", Some("LastName")),
        (
            "Task",
            json!({ "Subject": "x", "CallType": "Sideways" }),
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            Some("CallType"),
        ),
        ("Lead", json!({ "LastName": "x", "Company": "x", "Shoe__c": 1 }), "INVALID_FIELD", None),
        (
            "Lead",
            json!({ "LastName": "x", "Company": "x", "Name": "y" }),
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            Some("Name"),
        ),
        (
            "Lead",
            json!({ "LastName": "x", "Company": "x", "Email": "not-an-address" }),
            "INVALID_EMAIL_ADDRESS",
            Some("Email"),
        ),
        ("Task", json!({ "Subject": "x", "WhoId": "00Qbogus" }), "MALFORMED_ID", Some("WhoId")),
    ];
    for (object, body, code, field) in cases {
        let answer = env.post(&token, &format!("/sobjects/{object}/"), &body).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
        assert_eq!(answer.body[0]["errorCode"], code, "{body}: {}", answer.body);
        if let Some(field) = field {
            assert_eq!(answer.body[0]["fields"], json!([field]), "{body}");
        }
    }
    // 80 Japanese characters are 80 units: allowed.
    let ok = env.post(&token, "/sobjects/Lead/", &json!({ "LastName": long_kanji, "Company": "x" })).await;
    assert_eq!(ok.status, 201, "{}", ok.body);
}

#[tokio::test]
async fn task_rules_follow_salesforce() {
    let env = env().await;
    let token = env.login().await;
    let lead =
        env.post(&token, "/sobjects/Lead/", &json!({ "LastName": "x", "Company": "y" })).await.body["id"].clone();
    let account = env.post(&token, "/sobjects/Account/", &json!({ "Name": "y" })).await.body["id"].clone();
    let both = env.post(&token, "/sobjects/Task/", &json!({ "Subject": "s", "WhoId": lead, "WhatId": account })).await;
    assert_eq!(both.body[0]["errorCode"], "FIELD_INTEGRITY_EXCEPTION", "a Lead WhoId forbids WhatId: {}", both.body);
    let inactive = env
        .control(
            Method::POST,
            "/users",
            &json!({ "username": "gone@acme.example.com", "last_name": "退職", "active": false }),
        )
        .await
        .body["id"]
        .clone();
    let owned =
        env.post(&token, "/sobjects/Task/", &json!({ "Subject": "s", "WhoId": lead, "OwnerId": inactive })).await;
    assert_eq!(owned.body[0]["errorCode"], "INACTIVE_OWNER_OR_USER", "{}", owned.body);
    let task = env
        .post(&token, "/sobjects/Task/", &json!({ "Subject": "s", "WhoId": lead, "Status": "Completed", "TaskSubtype": "Call", "CallObject": "as_1" }))
        .await;
    assert_eq!(task.status, 201, "{}", task.body);
    let found = env.query(&token, "SELECT Id, IsClosed, Priority FROM Task WHERE CallObject = 'as_1'").await;
    assert_eq!(found.body["records"][0]["IsClosed"], true);
    assert_eq!(found.body["records"][0]["Priority"], "Normal");
    let id = task.body["id"].as_str().expect("id");
    let subtype = env.patch(&token, &format!("/sobjects/Task/{id}"), &json!({ "TaskSubtype": "Email" })).await;
    assert_eq!(subtype.body[0]["errorCode"], "INVALID_FIELD_FOR_INSERT_UPDATE", "TaskSubtype is create-only");
}

#[tokio::test]
async fn a_collection_creates_in_order_and_all_or_none_rolls_back() {
    let env = env().await;
    let token = env.login().await;
    let body = json!({ "allOrNone": false, "records": [
        { "attributes": { "type": "Account" }, "Name": "example.com" },
        { "attributes": { "type": "Contact" } },
        { "attributes": { "type": "Contact" }, "LastName": "Johnson" }
    ]});
    let answer = env.post(&token, "/composite/sobjects", &body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body[0]["success"], true);
    assert_eq!(answer.body[1]["success"], false);
    assert!(answer.body[1].get("id").is_none(), "a failed item has no id");
    assert_eq!(answer.body[1]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(answer.body[2]["success"], true);

    let mut all = body.clone();
    all["allOrNone"] = json!(true);
    all["records"][0]["Name"] = json!("rolled back");
    let answer = env.post(&token, "/composite/sobjects", &all).await;
    assert_eq!(answer.body[0]["errors"][0]["statusCode"], "ALL_OR_NONE_OPERATION_ROLLED_BACK");
    let count = env.query(&token, "SELECT COUNT() FROM Account WHERE Name = 'rolled back'").await;
    assert_eq!(count.body["totalSize"], 0);

    let too_many = json!({ "records": (0..201).map(|i| json!({ "attributes": { "type": "Account" }, "Name": format!("a{i}") })).collect::<Vec<_>>() });
    assert_eq!(env.post(&token, "/composite/sobjects", &too_many).await.status, 400);
}

#[tokio::test]
async fn composite_subrequests_reference_earlier_results() {
    let env = env().await;
    let token = env.login().await;
    let body = json!({ "allOrNone": true, "compositeRequest": [
        { "method": "POST", "url": "/services/data/v61.0/sobjects/Account/", "referenceId": "acct", "body": { "Name": "富士工業" } },
        { "method": "POST", "url": "/services/data/v61.0/sobjects/Contact/", "referenceId": "person", "body": { "LastName": "田中", "AccountId": "@{acct.id}" } },
        { "method": "GET", "url": "/services/data/v61.0/query?q=SELECT+Account.Name+FROM+Contact+WHERE+Id+=+'@{person.id}'", "referenceId": "check" }
    ]});
    let answer = env.post(&token, "/composite", &body).await;
    assert_eq!(answer.status, 200);
    let responses = answer.body["compositeResponse"].as_array().expect("responses");
    assert_eq!(responses[0]["httpStatusCode"], 201);
    assert_eq!(responses[1]["httpStatusCode"], 201, "{}", responses[1]);
    assert_eq!(responses[2]["body"]["records"][0]["Account"]["Name"], "富士工業", "{}", responses[2]);

    let failing = json!({ "allOrNone": true, "compositeRequest": [
        { "method": "POST", "url": "/services/data/v61.0/sobjects/Account/", "referenceId": "a", "body": { "Name": "消える会社" } },
        { "method": "POST", "url": "/services/data/v61.0/sobjects/Contact/", "referenceId": "b", "body": { "FirstName": "no last name" } }
    ]});
    let answer = env.post(&token, "/composite", &failing).await;
    let responses = answer.body["compositeResponse"].as_array().expect("responses");
    assert_eq!(responses[0]["body"][0]["errorCode"], "PROCESSING_HALTED");
    assert_eq!(env.query(&token, "SELECT COUNT() FROM Account WHERE Name = '消える会社'").await.body["totalSize"], 0);

    // At most five of the subrequests may be queries or Collections calls.
    let query = |i: usize| json!({ "method": "GET", "url": "/services/data/v61.0/query?q=SELECT+Id+FROM+Lead", "referenceId": format!("q{i}") });
    let five = json!({ "compositeRequest": (0..5).map(query).collect::<Vec<_>>() });
    assert_eq!(env.post(&token, "/composite", &five).await.status, 200);
    let six = json!({ "compositeRequest": (0..6).map(query).collect::<Vec<_>>() });
    let answer = env.post(&token, "/composite", &six).await;
    assert_eq!((answer.status, &answer.body[0]["errorCode"]), (400, &json!("LIMIT_EXCEEDED")), "{}", answer.body);
}

#[tokio::test]
async fn sosl_finds_phones_whatever_their_formatting_once_indexed() {
    let env = env().await;
    env.seed(
        "Contact",
        json!([
            { "LastName": "鈴木", "Phone": "03-1234-5678", "CreatedDate": "2026-01-01T00:00:00Z" },
            { "LastName": "佐藤", "Phone": "０３（１２３４）５６７８", "CreatedDate": "2026-01-01T00:00:00Z" },
            { "LastName": "高橋", "Phone": "06-6123-4567", "CreatedDate": "2026-01-01T00:00:00Z" }
        ]),
    )
    .await;
    let token = env.login().await;
    let sosl = "FIND {0312345678} IN PHONE FIELDS RETURNING Contact(Id, LastName, Phone), Lead(Id)";
    let answer =
        env.http.get(env.url("/search/")).query(&[("q", sosl)]).bearer_auth(&token).send().await.expect("send");
    let body: Value = answer.json().await.expect("json");
    let mut names: Vec<_> = body["searchRecords"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["LastName"].as_str().unwrap_or("").to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["佐藤", "鈴木"], "{body}");
    assert_eq!(body["searchRecords"][0]["attributes"]["type"], "Contact");

    // A record created now is not in the index yet when the org lags.
    env.control(Method::PUT, "/faults", &json!({ "search_lag_secs": 120 })).await;
    env.post(&token, "/sobjects/Contact/", &json!({ "LastName": "新人", "Phone": "090-1111-2222" })).await;
    let lagging = env
        .http
        .get(env.url("/search/"))
        .query(&[("q", "FIND {09011112222} IN PHONE FIELDS RETURNING Contact(Id)")])
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    let body: Value = lagging.json().await.expect("json");
    assert_eq!(body["searchRecords"], json!([]));
    let soql = env.query(&token, "SELECT Id FROM Contact WHERE Phone = '090-1111-2222'").await;
    assert_eq!(soql.body["totalSize"], 1, "SOQL sees what SOSL does not yet");
}

#[tokio::test]
async fn a_duplicate_rule_names_the_existing_record() {
    let env = env().await;
    let token = env.login().await;
    let first = env
        .post(&token, "/sobjects/Lead/", &json!({ "LastName": "佐藤", "Company": "x", "Phone": "03-1234-5678" }))
        .await
        .body["id"]
        .clone();
    env.control(Method::PUT, "/duplicate-rules", &json!({ "objects": ["Lead"] })).await;
    let again = env
        .post(&token, "/sobjects/Lead/", &json!({ "LastName": "佐藤", "Company": "x", "Phone": "0312345678" }))
        .await;
    assert_eq!(again.status, 400);
    assert_eq!(again.body[0]["errorCode"], "DUPLICATES_DETECTED");
    assert_eq!(again.body[0]["message"], "Use one of these records?");
    assert_eq!(again.body[0]["duplicateResult"]["matchResults"][0]["matchRecords"][0]["record"]["Id"], first);
}

#[tokio::test]
async fn switched_on_faults_answer_as_salesforce_fails() {
    let env = env().await;
    let token = env.login().await;
    env.control(
        Method::PUT,
        "/faults",
        &json!({ "unavailable_next": 1, "lock_next": 1, "timeout_after_commit_next": 1 }),
    )
    .await;
    let answer = env.query(&token, "SELECT Id FROM Lead").await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.body, json!([{ "message": "Server Unavailable", "errorCode": "SERVER_UNAVAILABLE" }]));
    let locked = env.post(&token, "/sobjects/Task/", &json!({ "Subject": "s" })).await;
    assert_eq!(locked.body[0]["errorCode"], "UNABLE_TO_LOCK_ROW");
    // Committed, never answered.
    let hung = env
        .http
        .post(env.url("/sobjects/Task/"))
        .bearer_auth(&token)
        .json(&json!({ "Subject": "lost answer", "CallObject": "as_timeout" }))
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(hung.is_err_and(|e| e.is_timeout()));
    let found = env.query(&token, "SELECT Id FROM Task WHERE CallObject = 'as_timeout'").await;
    assert_eq!(found.body["totalSize"], 1, "the write happened");
}
