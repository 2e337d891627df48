//! The activity-writer under the failures a call centre meets: a writer
//! killed mid-batch, two replicas meeting one new caller, an org that is
//! down, an org whose API allowance is spent. Exactly one Task per event
//! throughout, and one tenant's trouble never delays another's events.

mod common;

use std::{collections::HashMap, time::Duration};

use common::{Stack, event, event_of, id_of};
use serde_json::{Value, json};

#[tokio::test]
async fn a_writer_killed_with_hundreds_of_events_in_flight_leaves_exactly_one_task_per_event_after_restart() {
    let mut stack = Stack::start(&["Lead"]).await;
    let leads = stack
        .seed(
            "Lead",
            Value::Array((0..20).map(|i| json!({ "LastName": format!("顧客{i}"), "Company": "株式会社" })).collect()),
        )
        .await;
    // Slow enough that the kill lands between calls and answers.
    stack.faults(|f| f.latency_ms = 40);
    let first = stack.start_writer().await;
    let events: Vec<Value> = (0..300)
        .map(|i| {
            event(json!({ "id": format!("c-{}", i % 20), "name": "顧客", "salesforce": { "object": "Lead", "id": leads[i % 20] } }))
        })
        .collect();
    for e in &events {
        stack.publish(e).await;
    }
    stack.wait_for(Duration::from_secs(60), "some Tasks written", |seen| seen.len() >= 30).await;
    stack.kill_writer(first);
    stack.start_writer().await;

    let ids: Vec<&str> = events.iter().map(id_of).collect();
    // Events whose attempt the kill cut short wait out ledger::BUSY_FOR (Salesforce may still
    // commit a create whose answer was lost) before they are written.
    stack.wait_settled(Duration::from_secs(360), &ids).await;
    let tasks = stack.tasks().await;
    let mut per_event: HashMap<&str, usize> = HashMap::new();
    for task in &tasks {
        *per_event.entry(task["CallObject"].as_str().unwrap_or_default()).or_default() += 1;
    }
    for id in &ids {
        assert_eq!(per_event.get(id).copied().unwrap_or(0), 1, "event {id}");
    }
    assert_eq!(tasks.len(), 300);
    assert!(stack.published("activity.failed").is_empty(), "{:?}", stack.published("activity.failed"));
}

#[tokio::test]
async fn two_writers_given_two_events_for_one_new_number_create_one_lead() {
    let mut stack = Stack::start(&["Lead"]).await;
    stack.faults(|f| f.latency_ms = 100);
    stack.start_writer().await;
    stack.start_writer().await;
    // Several rounds, so the two events land on different writers at least once.
    let mut ids = Vec::new();
    for round in 0..4 {
        let number = format!("090-5555-{:04}", round);
        let a = event(json!({ "id": format!("c-a{round}"), "name": "初めて 電話", "phones": [number] }));
        let b = event(json!({ "id": format!("c-b{round}"), "name": "初めて 電話", "phones": [number] }));
        stack.publish(&a).await;
        stack.publish(&b).await;
        ids.push(id_of(&a).to_owned());
        ids.push(id_of(&b).to_owned());
    }
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    stack.wait_settled(Duration::from_secs(90), &ids).await;
    let leads = stack.records("Lead").await;
    assert_eq!(leads.len(), 4, "one Lead per new number: {leads:?}");
    let tasks = stack.tasks().await;
    assert_eq!(tasks.len(), 8);
    for round in 0..4 {
        let lead = leads.iter().find(|l| l["Phone"] == format!("090-5555-{round:04}")).expect("lead");
        let on_it = tasks.iter().filter(|t| t["WhoId"] == lead["Id"]).count();
        assert_eq!(on_it, 2, "both calls of round {round} on its one Lead");
    }
}

#[tokio::test]
async fn an_org_answering_503_to_everything_does_not_delay_another_tenant_and_its_events_land_after_it_recovers() {
    let mut stack = Stack::start(&["Lead"]).await;
    let healthy = stack.other_tenant("beta", "Beta", &["Lead"]).await;
    let beta_lead = stack.seed_in(&healthy.org.id, "Lead", json!({ "LastName": "元気", "Company": "株式会社" })).await;
    let acme_lead = stack.seed("Lead", json!({ "LastName": "障害", "Company": "株式会社" })).await;
    stack.start_writer().await;
    let down = stack.org.org.id.clone();
    stack.faults_of(&down, |f| f.unavailable_rate = 1.0);

    let stuck: Vec<Value> = (0..5)
        .map(|i| event(json!({ "id": format!("c-down{i}"), "name": "障害", "salesforce": { "object": "Lead", "id": acme_lead[0] } })))
        .collect();
    for e in &stuck {
        stack.publish(e).await;
    }
    let fine: Vec<Value> = (0..5)
        .map(|i| event_of("beta", json!({ "id": format!("c-ok{i}"), "name": "元気", "salesforce": { "object": "Lead", "id": beta_lead[0] } })))
        .collect();
    for e in &fine {
        stack.publish(e).await;
    }
    let fine_ids: Vec<&str> = fine.iter().map(id_of).collect();
    stack.wait_settled(Duration::from_secs(20), &fine_ids).await;
    for e in &stuck {
        assert!(stack.written(id_of(e)).is_none() && stack.failed(id_of(e)).is_none(), "the down org's events wait");
    }

    stack.faults_of(&down, |f| f.unavailable_rate = 0.0);
    let stuck_ids: Vec<&str> = stuck.iter().map(id_of).collect();
    stack.wait_settled(Duration::from_secs(90), &stuck_ids).await;
    for id in &stuck_ids {
        assert!(stack.written(id).is_some(), "{id} written after the org recovered");
    }
    assert_eq!(stack.tasks().await.len(), 5);
    assert_eq!(stack.tasks_in(&healthy.org.id).await.len(), 5);
}

#[tokio::test]
async fn a_spent_allowance_pauses_the_tenant_without_a_single_failure_and_every_event_lands_once_it_resets() {
    let mut stack = Stack::start(&["Lead"]).await;
    let lead = stack.seed("Lead", json!({ "LastName": "上限", "Company": "株式会社" })).await;
    stack.start_writer().await;
    let org = stack.sfsim.sim.org(&stack.org.org.id).expect("org");
    let (_, max) = org.usage();
    org.set_limits(Some(max), None);

    let events: Vec<Value> = (0..6)
        .map(|i| {
            event(
                json!({ "id": format!("c-lim{i}"), "name": "上限", "salesforce": { "object": "Lead", "id": lead[0] } }),
            )
        })
        .collect();
    for e in &events {
        stack.publish(e).await;
    }
    // The writer met REQUEST_LIMIT_EXCEEDED and paused: nothing written, nothing failed.
    fa_testkit::eventually(Duration::from_secs(30), "the tenant paused", || async {
        let metrics = stack.metrics(0).await;
        metrics
            .lines()
            .any(|l| l.starts_with("fa_tenant_paused") && l.contains("tenant=\"acme\"") && l.ends_with(" 1"))
            .then_some(())
    })
    .await;
    assert!(stack.published("activity.failed").is_empty());

    org.set_limits(Some(0), None);
    let ids: Vec<&str> = events.iter().map(id_of).collect();
    stack.wait_settled(Duration::from_secs(150), &ids).await;
    assert!(stack.published("activity.failed").is_empty(), "{:?}", stack.published("activity.failed"));
    assert_eq!(stack.tasks().await.len(), 6);
}
