//! Issue 13: after an admin re-connects the tenant to another org, the
//! importer's next run reads the new org with the new org's token (before,
//! its cached token kept it reading the first org).

mod common;

use std::collections::HashSet;

use common::{ADMIN_TOKEN, Stack, TENANT, completions, leads, upserts};
use serde_json::{Value, json};

fn ids(seen: &[(String, Value)]) -> HashSet<String> {
    upserts(seen).iter().filter_map(|m| m["source"]["id"].as_str().map(str::to_owned)).collect()
}

#[tokio::test]
async fn after_a_reconnect_to_a_second_org_the_next_run_reads_the_second_org() {
    let mut stack = Stack::start(&[]).await;
    let first: HashSet<String> = stack.seed("Lead", leads(3, "佐藤", None)).await.into_iter().collect();
    stack.start_importer().await;
    stack.connect(&["Lead"]).await;
    let mut seen = Vec::new();
    stack.collect_until_caught_up(&mut seen).await;
    assert_eq!(ids(&seen), first);

    // The second org, with customers of its own.
    let second = sfsim::fixture::connected_org(&stack.sfsim.sim, "Second").expect("org");
    let response = stack
        .http
        .post(format!("{}/sfsim/orgs/{}/records/Lead", stack.sfsim.url, second.org.id))
        .json(&leads(2, "鈴木", None))
        .send()
        .await
        .expect("sfsim answers");
    let body: Value = response.json().await.expect("JSON");
    let second_ids: HashSet<String> =
        body["ids"].as_array().expect("ids").iter().filter_map(|i| i.as_str().map(str::to_owned)).collect();
    assert_eq!(second_ids.len(), 2);
    let response = stack
        .http
        .put(format!("http://127.0.0.1:{}/v1/tenants/{TENANT}/salesforce/connection", stack.broker_port))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({
            "consumer_key": second.consumer_key, "username": second.username,
            "private_key": second.keys.private_key_pem, "login_url": stack.sfsim.url, "objects": ["Lead"],
        }))
        .send()
        .await
        .expect("the broker answers");
    assert_eq!(response.status(), 200);

    // The re-connect asks for an import; its run reads the second org.
    let mut after = Vec::new();
    stack.collect_until_caught_up(&mut after).await;
    assert_eq!(ids(&after), second_ids, "the run after the re-connect publishes the second org's Leads only");
    let run = completions(&after).last().copied().cloned().expect("a run");
    assert_eq!(run["status"], "succeeded", "{run}");
}
