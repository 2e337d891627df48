//! SOQL over HTTP: paging by nextRecordsUrl, batch sizes, single-use
//! locators, record shapes, errors, and the API allowance.

mod common;

use common::env;
use serde_json::{Value, json};

fn leads(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                json!({
                    "LastName": format!("佐藤{i}"), "FirstName": "花子", "Company": "株式会社サンプル商事",
                    "SystemModstamp": format!("2026-11-{:02}T00:00:{:02}.000Z", 1 + i % 20, i % 60)
                })
            })
            .collect(),
    )
}

#[tokio::test]
async fn a_large_result_pages_by_next_records_url_with_single_use_locators() {
    let env = env().await;
    env.seed("Lead", leads(2500)).await;
    let token = env.login().await;
    let soql = "SELECT Id, Name, SystemModstamp FROM Lead ORDER BY SystemModstamp, Id";
    let first = env
        .http
        .get(env.url("/query"))
        .query(&[("q", soql)])
        .bearer_auth(&token)
        .header("Sforce-Query-Options", "batchSize=1000")
        .send()
        .await
        .expect("send");
    let first: Value = first.json().await.expect("json");
    assert_eq!(first["totalSize"], 2500);
    assert_eq!(first["done"], false);
    assert_eq!(first["records"].as_array().map(Vec::len), Some(1000));
    let record = &first["records"][0];
    assert_eq!(record["attributes"]["type"], "Lead");
    assert!(record["attributes"]["url"].as_str().expect("url").starts_with("/services/data/v61.0/sobjects/Lead/00Q"));
    assert_eq!(record["Name"], "佐藤0 花子", "ja_JP composes 姓 名");
    let stamp = record["SystemModstamp"].as_str().expect("stamp");
    assert!(stamp.ends_with(".000+0000") && stamp.len() == 28, "{stamp}");

    let mut seen: Vec<String> =
        first["records"].as_array().expect("records").iter().map(|r| r["Id"].to_string()).collect();
    let mut next = first["nextRecordsUrl"].as_str().expect("next").to_owned();
    assert!(next.starts_with("/services/data/v61.0/query/01g") && next.ends_with("-1000"), "{next}");
    let mut used = Vec::new();
    loop {
        let page: Value = env
            .http
            .get(format!("{}{next}", env.server.url))
            .bearer_auth(&token)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        used.push(next.clone());
        seen.extend(page["records"].as_array().expect("records").iter().map(|r| r["Id"].to_string()));
        match page.get("nextRecordsUrl").and_then(Value::as_str) {
            Some(n) => next = n.to_owned(),
            None => {
                assert_eq!(page["done"], true);
                break;
            }
        }
    }
    assert_eq!(seen.len(), 2500);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 2500, "no record twice");
    // A locator is good once.
    let again = env.http.get(format!("{}{}", env.server.url, used[0])).bearer_auth(&token).send().await.expect("send");
    assert_eq!(again.status().as_u16(), 400);
    let body: Value = again.json().await.expect("json");
    assert_eq!(body[0]["errorCode"], "INVALID_QUERY_LOCATOR");
}

#[tokio::test]
async fn a_contact_without_account_has_a_null_relationship() {
    let env = env().await;
    let account = env.seed("Account", json!([{ "Name": "鈴木工業株式会社" }])).await;
    env.seed(
        "Contact",
        json!([{ "LastName": "鈴木", "FirstName": "一郎", "AccountId": account[0] }, { "LastName": "田中" }]),
    )
    .await;
    let token = env.login().await;
    let answer = env.query(&token, "SELECT LastName, Account.Name FROM Contact ORDER BY LastName DESC").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let records = answer.body["records"].as_array().expect("records");
    let with = records.iter().find(|r| r["LastName"] == "鈴木").expect("with");
    assert_eq!(with["Account"]["Name"], "鈴木工業株式会社");
    assert_eq!(with["Account"]["attributes"]["type"], "Account");
    let without = records.iter().find(|r| r["LastName"] == "田中").expect("without");
    assert_eq!(without["Account"], Value::Null);
}

#[tokio::test]
async fn bad_queries_get_salesforces_errors() {
    let env = env().await;
    let token = env.login().await;
    let cases = [
        ("SELEKT Id FROM Lead", "MALFORMED_QUERY"),
        ("SELECT Bacon__c FROM Account LIMIT 2", "INVALID_FIELD"),
        ("SELECT Id FROM Foo", "INVALID_TYPE"),
        ("SELECT Id FROM Lead OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE"),
        ("SELECT Id FROM Task WHERE Description = 'x'", "INVALID_FIELD"),
    ];
    for (soql, code) in cases {
        let answer = env.query(&token, soql).await;
        assert_eq!(answer.status, 400, "{soql}");
        assert_eq!(answer.body[0]["errorCode"], code, "{soql}: {}", answer.body);
        assert!(answer.body[0].get("fields").is_none(), "query errors carry no fields");
    }
    let answer = env.query(&token, "SELECT Bacon__c FROM Account LIMIT 2").await;
    assert_eq!(
        answer.body[0]["message"],
        "\nSELECT Bacon__c FROM Account LIMIT 2\n       ^\nERROR at Row:1:Column:8\nNo such column 'Bacon__c' on entity 'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
    );
}

#[tokio::test]
async fn converted_and_deleted_records_are_left_out_where_salesforce_leaves_them_out() {
    let env = env().await;
    let ids = env.seed("Lead", json!([{ "LastName": "A", "Company": "x" }, { "LastName": "B", "Company": "y" }, { "LastName": "C", "Company": "z" }])).await;
    let converted = env.control(reqwest::Method::POST, &format!("/leads/{}/convert", ids[0]), &json!({})).await;
    assert_eq!(converted.status, 200, "{}", converted.body);
    let token = env.login().await;
    let deleted =
        env.http.delete(env.url(&format!("/sobjects/Lead/{}", ids[1]))).bearer_auth(&token).send().await.expect("send");
    assert_eq!(deleted.status().as_u16(), 204);
    let open = env.query(&token, "SELECT Id FROM Lead WHERE IsConverted = false").await;
    assert_eq!(open.body["totalSize"], 1, "{}", open.body);
    let all = env.get(&token, "/queryAll?q=SELECT+Id,+IsDeleted+FROM+Lead").await;
    assert_eq!(all.body["totalSize"], 3, "{}", all.body);
    let contact = env.query(&token, &format!("SELECT ConvertedContactId FROM Lead WHERE Id = '{}'", ids[0])).await;
    assert!(contact.body["records"][0]["ConvertedContactId"].as_str().is_some_and(|id| id.starts_with("003")));
}

#[tokio::test]
async fn every_api_answer_says_the_usage_and_a_spent_allowance_answers_403() {
    let env = env().await;
    let token = env.login().await;
    env.control(reqwest::Method::PUT, "/limits", &json!({ "used": 0, "max": 3 })).await;
    for expected in 1..=3 {
        let answer = env.query(&token, "SELECT Id FROM Lead").await;
        assert_eq!(answer.status, 200);
        let info = answer.headers.get("sforce-limit-info").and_then(|v| v.to_str().ok()).expect("Sforce-Limit-Info");
        assert_eq!(info, format!("api-usage={expected}/3"));
    }
    let answer = env.query(&token, "SELECT Id FROM Lead").await;
    assert_eq!(answer.status, 403);
    assert_eq!(
        answer.body,
        json!([{ "message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED" }])
    );
    assert_eq!(answer.headers.get("sforce-limit-info").and_then(|v| v.to_str().ok()), Some("api-usage=3/3"));
    let calls = env.control(reqwest::Method::GET, "/calls", &json!(null)).await;
    assert_eq!(calls.body["by_route"]["GET /query"], 3, "{}", calls.body);
}
