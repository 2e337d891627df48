//! The activity-writer's promises (docs/behaviour.md §4): each `assist.completed`
//! becomes exactly one Task, on the right record, owned by the right
//! salesperson, with every field as the contract says. Against sfsim, the
//! real RabbitMQ and a database of the test's own.

mod common;

use std::time::Duration;

use common::{Stack, event, id_of, tasks_for};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

fn valid(type_name: &str, body: &Value) {
    if let Err(errors) = fa_messages::validation::validate(type_name, body) {
        panic!("{type_name} breaks its schema: {errors:?}\n{body}");
    }
}

#[tokio::test]
async fn an_event_naming_a_lead_writes_one_task_with_every_field_exact() {
    let mut stack = Stack::start(&["Lead"]).await;
    let lead = stack.seed("Lead", json!({ "LastName": "佐藤", "FirstName": "花子", "Company": "株式会社サンプル商事", "Phone": "03-1234-5678" })).await;
    let owner = stack.create_user("山田");
    stack.link_user("u-1001", &owner).await;
    stack.start_writer().await;

    let mut e = event(json!({
        "id": "c-55012", "name": "佐藤 花子", "company": "株式会社サンプル商事", "phones": ["03-1234-5678"],
        "salesforce": { "object": "Lead", "id": lead[0] },
    }));
    // 23:30 UTC is the next morning in Tokyo.
    e["call"]["started_at"] = json!("2026-11-25T23:30:00Z");
    e["call"]["direction"] = json!("inbound");
    stack.publish(&e).await;
    stack.wait_settled(WAIT, &[id_of(&e)]).await;

    let tasks = stack.tasks().await;
    let mine = tasks_for(&tasks, id_of(&e));
    assert_eq!(mine.len(), 1, "{tasks:?}");
    let task = mine[0];
    assert_eq!(task["WhoId"], lead[0].as_str());
    assert_eq!(task["WhatId"], Value::Null, "a Lead's Task has no WhatId");
    assert_eq!(task["OwnerId"], owner.as_str());
    assert_eq!(task["Subject"], "Front Agent 通話アシスト: 佐藤 花子");
    assert_eq!(
        task["Description"],
        "新プランの見積りを希望。来週火曜に再架電の約束。\n\n担当者: お世話になっております。サンプルテックの山田です。\nお客様: はい、佐藤です。先日の資料を拝見しました。"
    );
    assert_eq!(task["ActivityDate"], "2026-11-26");
    assert_eq!(task["Status"], "Completed");
    assert_eq!(task["Priority"], "Normal");
    assert_eq!(task["TaskSubtype"], "Call");
    assert_eq!(task["CallType"], "Inbound");
    assert_eq!(task["CallDurationInSeconds"], 432);
    assert_eq!(task["CallObject"], id_of(&e));

    let written = stack.written(id_of(&e)).expect("activity.written").clone();
    valid("activity.written.v1", &written);
    assert_eq!(written["task_id"], task["Id"]);
    assert_eq!(written["target"], json!({ "object": "Lead", "id": lead[0] }));
    assert_eq!(written["owner"], json!({ "salesforce_user_id": owner, "fallback": false }));
    assert!(stack.published("customer.linked").is_empty(), "the event named its record: nothing to link");

    // What an SRE reads: the event and its Task counted, the latency observed.
    let metrics = stack
        .metrics_with(
            0,
            &[
                r#"fa_activity_events_total{service="activity-writer",outcome="written"} 1"#,
                r#"fa_activity_tasks_total{service="activity-writer",outcome="written"} 1"#,
                r#"fa_activity_write_latency_seconds_count{service="activity-writer",from="published"} 1"#,
                r#"fa_amqp_batch_size_count{service="activity-writer",queue="activity-writer.assist"} 1"#,
            ],
        )
        .await;
    assert!(metrics.lines().any(|l| l.starts_with("fa_activity_salesforce_calls_total")), "{metrics}");
}

#[tokio::test]
async fn a_long_japanese_transcript_with_emoji_is_cut_to_32000_utf16_units_with_the_marker() {
    let mut stack = Stack::start(&["Lead"]).await;
    let lead = stack.seed("Lead", json!({ "LastName": "長話", "Company": "株式会社テスト" })).await;
    stack.start_writer().await;
    let line = "本日はお電話ありがとうございます😀".repeat(50); // 17 characters, 18 UTF-16 units, ×50
    let transcript: Vec<Value> =
        (0..48).map(|i| json!({ "speaker": if i % 2 == 0 { "agent" } else { "customer" }, "text": line })).collect();
    let mut e = event(json!({ "id": "c-long", "name": "長話", "salesforce": { "object": "Lead", "id": lead[0] } }));
    e["assist"]["transcript"] = json!(transcript);
    stack.publish(&e).await;
    stack.wait_settled(WAIT, &[id_of(&e)]).await;

    let tasks = stack.tasks().await;
    let description = tasks_for(&tasks, id_of(&e))[0]["Description"].as_str().expect("Description").to_owned();
    let units = description.encode_utf16().count();
    assert!(units <= 32_000, "{units} UTF-16 units");
    assert!(units > 31_900, "cut no shorter than needed: {units}");
    assert!(description.ends_with(activity_writer::task::DESCRIPTION_CUT_MARKER), "the cut is marked");
    assert!(!description.contains('\u{FFFD}'), "no broken character");
}

#[tokio::test]
async fn a_converted_lead_is_followed_to_its_contact() {
    let mut stack = Stack::start(&["Lead", "Contact"]).await;
    let lead = stack.seed("Lead", json!({ "LastName": "転換", "Company": "株式会社転換" })).await;
    let (contact, account) = sfsim::write::convert_lead(&stack.sfsim.sim, &stack.org.org, &lead[0]).expect("converted");
    stack.start_writer().await;
    let e = event(json!({ "id": "c-conv", "name": "転換", "salesforce": { "object": "Lead", "id": lead[0] } }));
    stack.publish(&e).await;
    stack.wait_settled(WAIT, &[id_of(&e)]).await;

    let tasks = stack.tasks().await;
    assert_eq!(tasks_for(&tasks, id_of(&e))[0]["WhoId"], contact.as_str());
    assert_eq!(tasks_for(&tasks, id_of(&e))[0]["WhatId"], account.as_str(), "the Contact's Account");
    assert_eq!(stack.written(id_of(&e)).expect("written")["target"], json!({ "object": "Contact", "id": contact }));
}

#[tokio::test]
async fn a_deleted_record_is_skipped_and_the_caller_is_matched_by_a_number_stored_another_way() {
    let mut stack = Stack::start(&["Lead", "Contact"]).await;
    let gone = stack.seed("Lead", json!({ "LastName": "削除", "Company": "株式会社削除", "IsDeleted": true })).await;
    let contact =
        stack.seed("Contact", json!({ "LastName": "佐藤", "FirstName": "花子", "Phone": "(03) 1234-5678" })).await;
    stack.start_writer().await;
    let e = event(json!({
        "id": "c-moved", "name": "佐藤 花子", "phones": ["+81312345678"],
        "salesforce": { "object": "Lead", "id": gone[0] },
    }));
    stack.publish(&e).await;
    stack.wait_settled(WAIT, &[id_of(&e)]).await;

    let tasks = stack.tasks().await;
    assert_eq!(tasks_for(&tasks, id_of(&e))[0]["WhoId"], contact[0].as_str());
    let linked = stack.published("customer.linked");
    assert_eq!(linked.len(), 1, "{linked:?}");
    valid("customer.linked.v1", linked[0]);
    assert_eq!(linked[0]["customer_id"], "c-moved");
    assert_eq!(linked[0]["how"], "matched_phone");
    assert_eq!(linked[0]["salesforce"], json!({ "object": "Contact", "id": contact[0] }));
}

#[tokio::test]
async fn a_contact_is_chosen_over_a_lead_and_the_most_recently_modified_wins() {
    let mut stack = Stack::start(&["Lead", "Contact"]).await;
    stack
        .seed("Lead", json!({ "LastName": "新しい", "Company": "株式会社", "Phone": "090-1111-2222", "SystemModstamp": "2026-11-30T00:00:00Z" }))
        .await;
    stack
        .seed(
            "Contact",
            json!({ "LastName": "古い", "Phone": "09011112222", "SystemModstamp": "2026-01-01T00:00:00Z" }),
        )
        .await;
    let newest = stack
        .seed(
            "Contact",
            json!({ "LastName": "新しい", "Phone": "+81 90-1111-2222", "SystemModstamp": "2026-06-01T00:00:00Z" }),
        )
        .await;
    stack.start_writer().await;
    let e = event(json!({ "id": "c-many", "name": "", "phones": ["090-1111-2222"] }));
    stack.publish(&e).await;
    stack.wait_settled(WAIT, &[id_of(&e)]).await;

    let tasks = stack.tasks().await;
    assert_eq!(tasks_for(&tasks, id_of(&e))[0]["WhoId"], newest[0].as_str());
}

#[tokio::test]
async fn an_email_matches_ignoring_case_when_no_number_does() {
    let mut stack = Stack::start(&["Lead", "Contact"]).await;
    let lead = stack
        .seed("Lead", json!({ "LastName": "メール", "Company": "株式会社", "Email": "Hanako.Sato@Sample-Shoji.co.jp" }))
        .await;
    stack.seed("Contact", json!({ "LastName": "別人", "Phone": "03-9999-0000" })).await;
    stack.start_writer().await;
    let e = event(
        json!({ "id": "c-mail", "name": "佐藤 花子", "email": "hanako.sato@sample-shoji.co.jp", "phones": ["03-1111-0000"] }),
    );
    stack.publish(&e).await;
    stack.wait_settled(WAIT, &[id_of(&e)]).await;

    let tasks = stack.tasks().await;
    assert_eq!(tasks_for(&tasks, id_of(&e))[0]["WhoId"], lead[0].as_str());
    assert_eq!(stack.published("customer.linked")[0]["how"], "matched_email");
}

#[tokio::test]
async fn a_new_caller_becomes_one_lead_with_the_contract_fields_and_the_next_call_reuses_it() {
    let mut stack = Stack::start(&["Lead", "Contact"]).await;
    stack.start_writer().await;
    let first = event(
        json!({ "id": "c-new", "name": "佐藤　花子", "company": null, "email": null, "phones": ["090-8765-4321"], "salesforce": null }),
    );
    stack.publish(&first).await;
    stack.wait_settled(WAIT, &[id_of(&first)]).await;

    let leads = stack.records("Lead").await;
    assert_eq!(leads.len(), 1, "{leads:?}");
    let lead = &leads[0];
    assert_eq!(lead["LastName"], "佐藤");
    assert_eq!(lead["FirstName"], "花子");
    assert_eq!(lead["Company"], "[not provided]");
    assert_eq!(lead["Phone"], "090-8765-4321");
    let linked = stack.published("customer.linked");
    assert_eq!(linked.len(), 1);
    valid("customer.linked.v1", linked[0]);
    assert_eq!(linked[0]["how"], "created");
    assert_eq!(linked[0]["salesforce"], json!({ "object": "Lead", "id": lead["Id"] }));

    // The customer's next call (Front Agent has not yet applied the link).
    let second = event(json!({ "id": "c-new", "name": "佐藤　花子", "phones": ["090-8765-4321"] }));
    stack.publish(&second).await;
    stack.wait_settled(WAIT, &[id_of(&second)]).await;
    assert_eq!(stack.records("Lead").await.len(), 1, "no second Lead for the same caller");
    let tasks = stack.tasks().await;
    assert_eq!(tasks_for(&tasks, id_of(&second))[0]["WhoId"], lead["Id"]);
}

#[tokio::test]
async fn the_same_event_delivered_twice_writes_one_task() {
    let mut stack = Stack::start(&["Lead"]).await;
    let lead = stack.seed("Lead", json!({ "LastName": "二重", "Company": "株式会社" })).await;
    stack.start_writer().await;
    let e = event(json!({ "id": "c-twice", "name": "二重", "salesforce": { "object": "Lead", "id": lead[0] } }));
    stack.publish(&e).await;
    stack.wait_settled(WAIT, &[id_of(&e)]).await;
    stack.publish(&e).await;
    stack
        .wait_for(WAIT, "a second activity.written", |seen| {
            seen.iter().filter(|(k, b)| k == "activity.written" && b["event_id"] == id_of(&e)).count() == 2
        })
        .await;
    let tasks = stack.tasks().await;
    assert_eq!(tasks_for(&tasks, id_of(&e)).len(), 1);
    let written = stack.published("activity.written");
    assert_eq!(written[0]["task_id"], written[1]["task_id"], "both announce the one Task");
}

#[tokio::test]
async fn a_timeout_after_salesforce_committed_still_leaves_one_task() {
    let mut stack = Stack::start(&["Lead"]).await;
    let lead = stack.seed("Lead", json!({ "LastName": "遅延", "Company": "株式会社" })).await;
    stack.start_writer().await;
    // The Task's create is committed, and its answer never comes.
    stack.faults(|f| f.timeout_after_commit_next = 1);
    let e = event(json!({ "id": "c-slow", "name": "遅延", "salesforce": { "object": "Lead", "id": lead[0] } }));
    stack.publish(&e).await;
    stack.wait_settled(Duration::from_secs(120), &[id_of(&e)]).await;
    let tasks = stack.tasks().await;
    assert_eq!(tasks_for(&tasks, id_of(&e)).len(), 1, "{tasks:?}");
    let written = stack.written(id_of(&e)).expect("written");
    assert!(written["attempts"].as_u64().expect("attempts") >= 2, "{written}");
}

#[tokio::test]
async fn a_deactivated_linked_user_leaves_the_task_to_the_connection_user() {
    let mut stack = Stack::start(&["Lead"]).await;
    let lead = stack.seed("Lead", json!({ "LastName": "退職", "Company": "株式会社" })).await;
    let leaver = stack.create_user("退職者");
    stack.link_user("u-1001", &leaver).await;
    assert!(stack.sfsim.sim.set_user_active(&stack.org.org, &leaver, false));
    stack.start_writer().await;
    let e = event(json!({ "id": "c-own", "name": "退職", "salesforce": { "object": "Lead", "id": lead[0] } }));
    stack.publish(&e).await;
    stack.wait_settled(WAIT, &[id_of(&e)]).await;

    let tasks = stack.tasks().await;
    assert_eq!(tasks_for(&tasks, id_of(&e))[0]["OwnerId"], stack.org.user_id.as_str());
    let written = stack.written(id_of(&e)).expect("written");
    assert_eq!(written["owner"], json!({ "salesforce_user_id": stack.org.user_id, "fallback": true }));
}

#[tokio::test]
async fn malformed_events_are_dead_lettered_at_once_and_the_next_good_event_is_written() {
    let mut stack = Stack::start(&["Lead"]).await;
    let lead = stack.seed("Lead", json!({ "LastName": "正常", "Company": "株式会社" })).await;
    stack.start_writer().await;

    stack.publish_raw(b"{ not json", "as_broken", common::TENANT).await;
    let mut schema = event(json!({ "id": "c-bad", "name": "x" }));
    schema["call"]["duration_seconds"] = json!(-5);
    stack.publish(&schema).await;
    let mut stranger = event(json!({ "id": "c-x", "name": "x", "salesforce": { "object": "Lead", "id": lead[0] } }));
    stranger["tenant_id"] = json!("no-such-tenant");
    stack.publish(&stranger).await;
    let good = event(json!({ "id": "c-good", "name": "正常", "salesforce": { "object": "Lead", "id": lead[0] } }));
    stack.publish(&good).await;

    stack.wait_settled(WAIT, &[id_of(&schema), id_of(&stranger), id_of(&good), "as_broken"]).await;
    assert!(stack.written(id_of(&good)).is_some());
    let bad = stack.failed(id_of(&schema)).expect("activity.failed").clone();
    valid("activity.failed.v1", &bad);
    assert_eq!(bad["error"]["code"], "invalid_event");
    assert!(bad["error"]["message"].as_str().unwrap_or_default().contains("duration_seconds"), "{bad}");
    assert_eq!(bad["attempts"], 1);
    let unknown = stack.failed(id_of(&stranger)).expect("activity.failed");
    assert_eq!(unknown["error"]["code"], "not_connected");
    assert_eq!(stack.failed("as_broken").expect("activity.failed")["error"]["code"], "invalid_event");

    let dead = stack.dead_letters().await;
    assert_eq!(dead.len(), 3, "{dead:?}");
    let codes: Vec<&str> = dead.iter().map(|(error, _)| error["code"].as_str().unwrap_or_default()).collect();
    assert_eq!(codes.iter().filter(|c| **c == "invalid_event").count(), 2, "{codes:?}");
    assert!(codes.contains(&"not_connected"), "{codes:?}");
    assert!(dead.iter().all(|(error, _)| !error["message"].as_str().unwrap_or_default().is_empty()));

    // What an SRE reads: failures by code, every code's series there from
    // the start so that the first failure of a kind shows in `increase()`.
    stack
        .metrics_with(
            0,
            &[
                r#"fa_activity_tasks_total{service="activity-writer",outcome="failed",code="invalid_event"} 2"#,
                r#"fa_activity_tasks_total{service="activity-writer",outcome="failed",code="not_connected"} 1"#,
                r#"fa_activity_tasks_total{service="activity-writer",outcome="failed",code="salesforce_rejected"} 0"#,
                r#"fa_activity_owner_fallbacks_total{service="activity-writer",reason="inactive_owner"} 0"#,
            ],
        )
        .await;
}

#[tokio::test]
async fn names_emails_and_numbers_shaped_like_soql_injection_are_used_literally() {
    let mut stack = Stack::start(&["Lead"]).await;
    let tricky =
        stack.seed("Lead", json!({ "LastName": "O'Brien", "Company": "x", "Email": "o'brien\\x@example.com" })).await;
    stack.seed("Lead", json!({ "LastName": "無関係", "Company": "y", "Email": "other@example.com" })).await;
    stack.start_writer().await;
    let matched = event(json!({ "id": "c-q1", "name": "O'Brien", "email": "o'brien\\x@example.com" }));
    let created = event(
        json!({ "id": "c-q2", "name": "' OR Name LIKE '%", "email": "x'or'1@example.com", "phones": ["03-0000-1111' OR Phone != '"] }),
    );
    stack.publish(&matched).await;
    stack.publish(&created).await;
    stack.wait_settled(WAIT, &[id_of(&matched), id_of(&created)]).await;

    let tasks = stack.tasks().await;
    assert_eq!(tasks_for(&tasks, id_of(&matched))[0]["WhoId"], tricky[0].as_str());
    let leads = stack.records("Lead").await;
    assert_eq!(leads.len(), 3, "one new Lead, nothing else matched: {leads:?}");
    let new = leads.iter().find(|l| l["LastName"] == "'").expect("the new Lead, named literally");
    assert_eq!(new["FirstName"], "OR Name LIKE '%");
    assert_eq!(tasks_for(&tasks, id_of(&created))[0]["WhoId"], new["Id"]);
}

#[tokio::test]
async fn a_duplicate_rule_refusing_the_new_record_links_the_record_it_names() {
    let mut stack = Stack::start(&["Lead"]).await;
    // Stored in a form no SOQL over the usual forms finds; the org's
    // duplicate rule compares digits and does.
    let existing =
        stack.seed("Lead", json!({ "LastName": "既存", "Company": "株式会社", "Phone": "03.1234.5678" })).await;
    let response = stack
        .http
        .put(format!("{}/sfsim/orgs/{}/duplicate-rules", stack.sfsim.url, stack.org.org.id))
        .json(&json!({ "objects": ["Lead"] }))
        .send()
        .await
        .expect("sfsim answers");
    assert!(response.status().is_success());
    stack.start_writer().await;
    let e = event(json!({ "id": "c-dup", "name": "既存 太郎", "phones": ["03-1234-5678"] }));
    stack.publish(&e).await;
    stack.wait_settled(WAIT, &[id_of(&e)]).await;

    assert_eq!(stack.records("Lead").await.len(), 1, "no second Lead");
    let tasks = stack.tasks().await;
    assert_eq!(tasks_for(&tasks, id_of(&e))[0]["WhoId"], existing[0].as_str());
    let linked = stack.published("customer.linked");
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0]["how"], "matched_duplicate_rule");
    assert_eq!(linked[0]["salesforce"], json!({ "object": "Lead", "id": existing[0] }));
}

#[tokio::test]
async fn a_locked_row_is_retried_and_still_gives_one_task() {
    let mut stack = Stack::start(&["Lead"]).await;
    let lead = stack.seed("Lead", json!({ "LastName": "競合", "Company": "株式会社" })).await;
    stack.start_writer().await;
    stack.faults(|f| f.lock_next = 1);
    let e = event(json!({ "id": "c-lock", "name": "競合", "salesforce": { "object": "Lead", "id": lead[0] } }));
    stack.publish(&e).await;
    stack.wait_settled(WAIT, &[id_of(&e)]).await;
    assert_eq!(tasks_for(&stack.tasks().await, id_of(&e)).len(), 1);
    let written = stack.written(id_of(&e)).expect("written after the retry");
    assert_eq!(written["attempts"], 2, "{written}");
}

#[tokio::test]
async fn a_revoked_session_gets_a_fresh_token_and_one_immediate_retry() {
    let mut stack = Stack::start(&["Lead"]).await;
    let lead = stack.seed("Lead", json!({ "LastName": "再認証", "Company": "株式会社" })).await;
    stack.start_writer().await;
    let first = event(json!({ "id": "c-s1", "name": "再認証", "salesforce": { "object": "Lead", "id": lead[0] } }));
    stack.publish(&first).await;
    stack.wait_settled(WAIT, &[id_of(&first)]).await;
    let logins = stack.sfsim.sim.logins(&stack.org.org.id);

    assert!(stack.sfsim.sim.revoke_sessions(&stack.org.org.id) > 0);
    let second = event(json!({ "id": "c-s2", "name": "再認証", "salesforce": { "object": "Lead", "id": lead[0] } }));
    stack.publish(&second).await;
    stack.wait_settled(WAIT, &[id_of(&second)]).await;
    let written = stack.written(id_of(&second)).expect("written");
    assert_eq!(written["attempts"], 1, "retried at once, not through the delay queues: {written}");
    assert_eq!(stack.sfsim.sim.logins(&stack.org.org.id), logins + 1, "one fresh token");
}

#[tokio::test]
async fn a_number_stored_in_a_form_only_the_importers_index_knows_is_matched() {
    let mut stack = Stack::start(&["Lead"]).await;
    // `03.1234.5678` is not among the forms SOQL asks for; the importer
    // read it and indexed it as +81312345678.
    let lead = stack
        .seed("Lead", json!({ "LastName": "点区切り", "Company": "株式会社", "Phone": "03.1234.5678", "SystemModstamp": "2026-11-01T00:00:00Z" }))
        .await;
    let pool = stack.db.pool().await.expect("pool");
    let indexed = fa_store::customer_index::IndexedRecord {
        object: "Lead".to_owned(),
        record_id: lead[0].clone(),
        phones: vec!["+81312345678".to_owned()],
        email: None,
        modified_at: time::macros::datetime!(2026-11-01 00:00 UTC),
        converted: false,
    };
    fa_store::customer_index::upsert(&pool, common::TENANT, &stack.org.org.id, &[indexed]).await.expect("indexed");
    stack.start_writer().await;
    let e = event(json!({ "id": "c-dots", "name": "点区切り", "phones": ["03-1234-5678"] }));
    stack.publish(&e).await;
    stack.wait_settled(WAIT, &[id_of(&e)]).await;

    assert_eq!(stack.records("Lead").await.len(), 1, "matched, not created");
    assert_eq!(tasks_for(&stack.tasks().await, id_of(&e))[0]["WhoId"], lead[0].as_str());
    assert_eq!(stack.published("customer.linked")[0]["how"], "matched_phone");
}

#[tokio::test]
async fn a_backlog_of_sixty_mixed_calls_costs_a_handful_of_api_calls_and_lands_each_task_right() {
    // The org's allowance is shared with every other integration: a backlog
    // is resolved and written a batch at a time, not a call per event.
    let mut stack = Stack::start(&["Lead", "Contact"]).await;
    let leads: Vec<Value> =
        (0..40).map(|i| json!({ "LastName": format!("見込{i}"), "Company": "株式会社サンプル" })).collect();
    let leads = stack.seed("Lead", Value::Array(leads)).await;
    let contacts: Vec<Value> = (0..12)
        .map(|i| json!({ "LastName": format!("顧客{i}"), "Phone": format!("03-5555-{:04}", 1000 + i) }))
        .collect();
    let contacts = stack.seed("Contact", Value::Array(contacts)).await;
    let mut expected = Vec::new();
    for (i, lead) in leads.iter().enumerate() {
        let e = event(
            json!({ "id": format!("c-lead-{i}"), "name": "見込 客", "salesforce": { "object": "Lead", "id": lead } }),
        );
        expected.push((e, Some(lead.clone())));
    }
    for (i, contact) in contacts.iter().enumerate() {
        let number = format!("+8135555{:04}", 1000 + i);
        expected.push((
            event(json!({ "id": format!("c-known-{i}"), "name": "顧客 様", "phones": [number] })),
            Some(contact.clone()),
        ));
    }
    for i in 0..8 {
        let number = format!("+8190{:08}", 12_345_000 + i);
        expected.push((
            event(json!({ "id": format!("c-new-{i}"), "name": format!("新規 {i}"), "phones": [number] })),
            None,
        ));
    }
    // The queue exists (the writer declares it), and the calls wait for
    // the writer.
    stack.start_writer().await;
    stack.stop_writer(0);
    for (e, _) in &expected {
        stack.publish(e).await;
    }
    let org = stack.sfsim.sim.org(&stack.org.org.id).expect("org");
    let before = org.usage().0;

    stack.start_writer().await;
    let ids: Vec<&str> = expected.iter().map(|(e, _)| id_of(e)).collect();
    stack.wait_settled(WAIT, &ids).await;

    let spent = org.usage().0 - before;
    assert!(spent <= 8, "60 events cost {spent} API calls; batched they take a few per batch, not one per event");
    let tasks = stack.tasks().await;
    let new_leads: Vec<String> = stack
        .records("Lead")
        .await
        .iter()
        .filter_map(|l| l["Id"].as_str().map(str::to_owned))
        .filter(|id| !leads.contains(id))
        .collect();
    assert_eq!(new_leads.len(), 8, "one new Lead per new caller");
    for (e, record) in &expected {
        let mine = tasks_for(&tasks, id_of(e));
        assert_eq!(mine.len(), 1, "{}: {mine:?}", id_of(e));
        let who = mine[0]["WhoId"].as_str().expect("WhoId").to_owned();
        match record {
            Some(record) => assert_eq!(&who, record, "{}", id_of(e)),
            None => assert!(new_leads.contains(&who), "{}: {who} is not one of the new Leads", id_of(e)),
        }
    }
}
