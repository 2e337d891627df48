//! Every Salesforce customer reaches Front Agent, none missed (docs/behaviour.md
//! §3, §5), driven through the token-broker's registration, the importer's
//! admin API and sfsim.

mod common;

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use common::{Stack, TENANT, completions, ids, leads, upserts};
use serde_json::{Value, json};

#[tokio::test]
async fn five_thousand_leads_arrive_in_runs_of_at_most_two_thousand_oldest_change_first() {
    let mut stack = Stack::start(&[]).await;
    let seeded: HashSet<String> = stack.seed("Lead", leads(5000, "佐藤", None)).await.into_iter().collect();
    stack.start_importer().await;
    stack.connect(&["Lead"]).await;

    let mut seen = Vec::new();
    stack.collect_until_caught_up(&mut seen).await;
    let runs = completions(&seen);
    assert_eq!(runs.len(), 3, "{runs:?}");
    let published: Vec<u64> = runs.iter().map(|r| r["objects"][0]["published"].as_u64().unwrap_or(0)).collect();
    assert_eq!(published, [2000, 2000, 1000]);
    assert_eq!(
        runs.iter().map(|r| r["more_pending"].clone()).collect::<Vec<_>>(),
        [json!(true), json!(true), json!(false)]
    );
    assert!(runs.iter().all(|r| r["status"] == "succeeded"));
    let seen_ids = ids(&seen);
    assert_eq!(seen_ids.len(), 5000);
    assert!(seeded.is_subset(&seen_ids) && seen_ids.is_subset(&seeded));

    for (key, body) in &seen {
        let kind = format!("{key}.v1");
        fa_messages::validation::validate(&kind, body).unwrap_or_else(|e| panic!("{kind} invalid: {e:?}: {body}"));
    }
    // Oldest change first within each run, and runs in order.
    let stamps: Vec<(String, String)> = upserts(&seen)
        .iter()
        .map(|m| {
            (
                m["source"]["modified_at"].as_str().unwrap_or("").to_owned(),
                m["source"]["id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let mut sorted = stamps.clone();
    sorted.sort();
    assert_eq!(stamps, sorted, "published oldest change first");
    let catch_ups: Vec<Value> = {
        let (_, body) = stack.admin(reqwest::Method::GET, &format!("/v1/tenants/{TENANT}/imports")).await;
        body["runs"].as_array().cloned().unwrap_or_default()
    };
    let reasons: Vec<&str> = catch_ups.iter().rev().filter_map(|r| r["reason"].as_str()).collect();
    assert_eq!(reasons, ["connected", "catch_up", "catch_up"]);

    // What an SRE's dashboard reads.
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", stack.port))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} is missing from:\n{metrics}"))
    };
    assert_eq!(value(r#"fa_import_runs_total{outcome="succeeded"}"#), 3.0);
    assert_eq!(value(r#"fa_import_records_total{object="Lead",outcome="published"}"#), 5000.0);
    assert_eq!(value(r#"fa_import_records_total{object="Lead",outcome="skipped"}"#), 0.0);
    assert_eq!(value("fa_import_run_duration_seconds_count"), 3.0);
    // 5,000 rows at 2,000 a page: the query (to queryAll, which also sees
    // deleted and converted rows) and two more pages.
    assert_eq!(
        value(r#"fa_salesforce_requests_total{service="importer",route="query_all",outcome="success",error_code=""}"#),
        1.0
    );
    assert_eq!(
        value(r#"fa_salesforce_requests_total{service="importer",route="query_more",outcome="success",error_code=""}"#),
        2.0
    );
    let usage = value(&format!(r#"fa_salesforce_api_usage_ratio{{service="importer",tenant="{TENANT}"}}"#));
    assert!(usage > 0.0 && usage < 0.9, "{usage}");
}

#[tokio::test]
async fn the_mapping_is_exact_for_each_object() {
    let mut stack = Stack::start(&[]).await;
    let account = stack
        .seed("Account", json!([{ "Name": "鈴木工業株式会社", "Phone": "06-6123-4567", "SystemModstamp": "2026-11-20T01:02:03.000Z" }]))
        .await
        .remove(0);
    let lead = stack
        .seed("Lead", json!([{ "LastName": "佐藤", "FirstName": "花子", "Company": "佐藤商事", "Email": "hanako@sato.example",
            "Phone": "０３－１２３４－５６７８", "MobilePhone": "090-0000-0000", "SystemModstamp": "2026-11-20T01:02:04.000Z" }]))
        .await
        .remove(0);
    let with_account = stack
        .seed(
            "Contact",
            json!([{ "LastName": "鈴木", "FirstName": "一郎", "AccountId": account, "Email": "ichiro@suzuki.example",
            "Phone": "(06)6123-4567", "SystemModstamp": "2026-11-20T01:02:05.000Z" }]),
        )
        .await
        .remove(0);
    let without = stack
        .seed("Contact", json!([{ "LastName": "田中", "Phone": "なし", "SystemModstamp": "2026-11-20T01:02:06.000Z" }]))
        .await
        .remove(0);
    stack.start_importer().await;
    stack.connect(&["Lead", "Contact", "Account"]).await;
    let mut seen = Vec::new();
    stack.collect_until(Duration::from_secs(60), &mut seen, |s| !completions(s).is_empty()).await;
    let by_id = |id: &str| -> Value {
        upserts(&seen)
            .into_iter()
            .find(|m| m["source"]["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not published"))
    };
    let check = |id: &str, object: &str, stamp: &str, customer: Value| {
        let message = by_id(id);
        assert_eq!(message["tenant_id"], TENANT);
        assert_eq!(
            message["source"],
            json!({ "system": "salesforce", "object": object, "id": id, "modified_at": stamp })
        );
        assert_eq!(message["customer"], customer, "{object} {id}");
    };
    check(
        &lead,
        "Lead",
        "2026-11-20T01:02:04.000Z",
        json!({
            "name": "佐藤 花子", "company": "佐藤商事", "email": "hanako@sato.example",
            "phones": [{ "number": "０３－１２３４－５６７８", "e164": "+81312345678" }],
        }),
    );
    check(
        &with_account,
        "Contact",
        "2026-11-20T01:02:05.000Z",
        json!({
            "name": "鈴木 一郎", "company": "鈴木工業株式会社", "email": "ichiro@suzuki.example",
            "phones": [{ "number": "(06)6123-4567", "e164": "+81661234567" }],
        }),
    );
    check(
        &without,
        "Contact",
        "2026-11-20T01:02:06.000Z",
        json!({
            "name": "田中", "company": null, "email": null, "phones": [{ "number": "なし", "e164": null }],
        }),
    );
    check(
        &account,
        "Account",
        "2026-11-20T01:02:03.000Z",
        json!({
            "name": "鈴木工業株式会社", "company": "鈴木工業株式会社", "email": null,
            "phones": [{ "number": "06-6123-4567", "e164": "+81661234567" }],
        }),
    );
    let run = completions(&seen)[0];
    let mut objects: Vec<(String, u64)> = run["objects"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| (o["object"].as_str().unwrap_or("").to_owned(), o["published"].as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    objects.sort();
    assert_eq!(objects, [("Account".to_owned(), 1), ("Contact".to_owned(), 2), ("Lead".to_owned(), 1)]);
}

/// A row of the customer index: (phones, email, organization id).
type Indexed = (Vec<String>, Option<String>, String);

/// The customer index's rows of the test's tenant by (object, id).
async fn indexed(stack: &Stack) -> HashMap<(String, String), Indexed> {
    type Row = (String, String, Vec<String>, Option<String>, String, bool);
    let pool = stack.db.pool().await.expect("pool");
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT object, record_id, phones, email, organization_id, converted FROM customer_index WHERE tenant_id = $1",
    )
    .bind(TENANT)
    .fetch_all(&pool)
    .await
    .expect("customer_index");
    pool.close().await;
    assert!(rows.iter().all(|row| !row.5), "the importer indexes no converted Lead: {rows:?}");
    rows.into_iter().map(|(object, id, phones, email, org, _)| ((object, id), (phones, email, org))).collect()
}

#[tokio::test]
async fn imported_records_are_indexed_by_their_e164_numbers_and_lower_cased_email() {
    let mut stack = Stack::start(&[]).await;
    let lead = stack
        .seed(
            "Lead",
            json!([{ "LastName": "佐藤", "Company": "佐藤商事", "Email": "Hanako@Sato.Example",
            "Phone": "(03) 1234-5678", "SystemModstamp": "2026-11-20T01:02:04.000Z" }]),
        )
        .await
        .remove(0);
    let contact = stack
        .seed("Contact", json!([{ "LastName": "田中", "Phone": "なし", "SystemModstamp": "2026-11-20T01:02:05.000Z" }]))
        .await
        .remove(0);
    let account =
        stack.seed("Account", json!([{ "Name": "鈴木工業株式会社", "Phone": "06-6123-4567" }])).await.remove(0);
    let nameless = stack.seed("Lead", json!([{ "LastName": " ", "Company": "名無し", "Phone": "03-9999-9999" }])).await;
    stack.start_importer().await;
    stack.connect(&["Lead", "Contact", "Account"]).await;
    let mut seen = Vec::new();
    stack.collect_until(Duration::from_secs(60), &mut seen, |s| !completions(s).is_empty()).await;
    let run = completions(&seen)[0];
    assert_eq!(run["status"], "succeeded");
    let lead_counts = run["objects"].as_array().and_then(|a| a.iter().find(|o| o["object"] == "Lead")).cloned();
    assert_eq!(lead_counts, Some(json!({ "object": "Lead", "published": 1, "skipped": 1 })), "{run}");

    let pool = stack.db.pool().await.expect("pool");
    let (org,): (String,) = sqlx::query_as("SELECT organization_id FROM connections WHERE tenant_id = $1")
        .bind(TENANT)
        .fetch_one(&pool)
        .await
        .expect("the connection's org");
    pool.close().await;
    let row = |phones: &[&str], email: Option<&str>| {
        (phones.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>(), email.map(str::to_owned), org.clone())
    };
    let expected = HashMap::from([
        (("Lead".to_owned(), lead), row(&["+81312345678"], Some("hanako@sato.example"))),
        (("Contact".to_owned(), contact), row(&[], None)),
        (("Account".to_owned(), account), row(&["+81661234567"], None)),
    ]);
    let index = indexed(&stack).await;
    assert_eq!(index, expected, "the nameless lead {nameless:?} is not published, so not indexed either");
}

#[tokio::test]
async fn records_outside_the_lookback_converted_or_nameless_are_not_published() {
    let mut stack = Stack::start(&[("FA_SF_IMPORT_LOOKBACK", "30d")]).await;
    let old = stack.seed("Lead", leads(3, "古い", Some("2020-01-01T00:00:00.000Z"))).await;
    let fresh = stack.seed("Lead", leads(3, "新しい", None)).await;
    let converted = stack.seed("Lead", leads(1, "変換", None)).await.remove(0);
    sfsim::write::convert_lead(&stack.sfsim.sim, &stack.org.org, &converted).expect("convert");
    stack.start_importer().await;
    stack.connect(&["Lead"]).await;
    let mut seen = Vec::new();
    stack.collect_until(Duration::from_secs(60), &mut seen, |s| !completions(s).is_empty()).await;
    let got = ids(&seen);
    for id in &fresh {
        assert!(got.contains(id), "a fresh lead is missing");
    }
    for id in old.iter().chain([&converted]) {
        assert!(!got.contains(id), "{id} should not be published");
    }
    assert_eq!(completions(&seen)[0]["objects"][0]["skipped"], 0, "converted leads are filtered, not skipped");
}

#[tokio::test]
async fn five_hundred_records_sharing_one_stamp_across_a_page_boundary_all_arrive() {
    // A run cap of 300 splits the 500 at the watermark's own stamp.
    let mut stack = Stack::start(&[("FA_SF_IMPORT_MAX_RECORDS_PER_RUN", "300")]).await;
    let shared = stack.seed("Lead", leads(500, "一括", Some("2026-11-20T01:02:03.000Z"))).await;
    stack.start_importer().await;
    stack.connect(&["Lead"]).await;
    let mut seen = Vec::new();
    stack.collect_until_caught_up(&mut seen).await;
    let got = ids(&seen);
    assert!(
        shared.iter().all(|id| got.contains(id)),
        "{} of 500 arrived",
        shared.iter().filter(|id| got.contains(*id)).count()
    );
    assert_eq!(upserts(&seen).len(), 500, "none twice in the first import");
}

#[tokio::test]
async fn records_changed_after_a_run_arrive_in_the_next_run() {
    let mut stack = Stack::start(&[]).await;
    stack.seed("Lead", leads(10, "前", None)).await;
    stack.start_importer().await;
    stack.connect(&["Lead"]).await;
    let mut seen = Vec::new();
    stack.collect_until(Duration::from_secs(60), &mut seen, |s| !completions(s).is_empty()).await;

    let added = stack.seed("Lead", leads(5, "後", None)).await;
    let changed = upserts(&seen)[0]["source"]["id"].as_str().expect("id").to_owned();
    let body = serde_json::Map::from_iter([("Email".to_owned(), json!("changed@example.com"))]);
    let lead = sfsim::schema::object("Lead").expect("Lead");
    sfsim::write::update(&stack.org.org, lead, &changed, &body, &stack.org.user_id).expect("update");
    stack.request_import().await;
    let mut next = Vec::new();
    stack.collect_until(Duration::from_secs(60), &mut next, |s| !completions(s).is_empty()).await;
    let got = ids(&next);
    assert!(added.iter().all(|id| got.contains(id)), "new records arrive");
    let update =
        upserts(&next).into_iter().find(|m| m["source"]["id"] == changed.as_str()).expect("the change arrives");
    assert_eq!(update["customer"]["email"], "changed@example.com");
    assert_eq!(completions(&next)[0]["objects"][0]["published"], 6, "only what changed counts: {next:?}");
    let index = indexed(&stack).await;
    assert_eq!(index.len(), 15, "{index:?}");
    assert_eq!(
        index[&("Lead".to_owned(), changed)].1.as_deref(),
        Some("changed@example.com"),
        "the index follows the change"
    );
}

#[tokio::test]
async fn a_process_killed_mid_run_loses_no_record() {
    let mut stack = Stack::start(&[("FA_SF_IMPORT_MAX_RECORDS_PER_RUN", "1000")]).await;
    let seeded: HashSet<String> = stack.seed("Lead", leads(4000, "中断", None)).await.into_iter().collect();
    // Slow pages, so the kill lands mid-import.
    stack.faults(|f| f.latency_ms = 150);
    stack.start_importer().await;
    stack.connect(&["Lead"]).await;
    let mut seen = Vec::new();
    stack.collect_until(Duration::from_secs(60), &mut seen, |s| upserts(s).len() >= 1200).await;
    stack.kill_importer();
    stack.faults(|f| f.latency_ms = 0);
    stack.start_importer().await;
    stack.request_import().await;
    stack.collect_until_caught_up(&mut seen).await;
    let got = ids(&seen);
    let missing = seeded.difference(&got).count();
    assert_eq!(missing, 0, "{missing} records lost");
    let interrupted = completions(&seen).into_iter().any(|c| c["error"]["code"] == "interrupted");
    assert!(interrupted, "the killed run is reported as interrupted");
}

#[tokio::test]
async fn sigterm_ends_the_run_at_a_page_boundary_as_interrupted_and_loses_nothing() {
    let mut stack = Stack::start(&[]).await;
    let seeded: HashSet<String> = stack.seed("Lead", leads(6000, "停止", None)).await.into_iter().collect();
    stack.faults(|f| f.latency_ms = 200);
    stack.start_importer().await;
    stack.connect(&["Lead"]).await;
    let mut seen = Vec::new();
    stack.collect_until(Duration::from_secs(60), &mut seen, |s| !upserts(s).is_empty()).await;
    let status = stack.terminate_importer();
    assert!(status.success(), "{status:?}");
    stack
        .collect_until(Duration::from_secs(30), &mut seen, |s| {
            completions(s).iter().any(|c| c["error"]["code"] == "interrupted")
        })
        .await;
    let stopped = completions(&seen).into_iter().find(|c| c["error"]["code"] == "interrupted").cloned();
    let stopped = stopped.expect("the stopped run");
    assert_eq!(stopped["status"], "failed", "{stopped}");
    assert_eq!(stopped["more_pending"], true, "{stopped}");
    // The run finished the page it was publishing: whole pages only.
    let before = upserts(&seen).len();
    assert_eq!(before % 2000, 0, "{before} records published before the stop");

    stack.faults(|f| f.latency_ms = 0);
    stack.start_importer().await;
    stack.request_import().await;
    stack.collect_until_caught_up(&mut seen).await;
    assert_eq!(ids(&seen), seeded);
}

#[tokio::test]
async fn injected_503s_and_a_revoked_session_are_survived() {
    let mut stack = Stack::start(&[("FA_SF_IMPORT_MAX_RECORDS_PER_RUN", "5000")]).await;
    let seeded: HashSet<String> = stack.seed("Lead", leads(3000, "障害", None)).await.into_iter().collect();
    stack.start_importer().await;
    stack.faults(|f| f.unavailable_next = 2);
    stack.connect(&["Lead"]).await;
    let mut seen = Vec::new();
    stack.collect_until(Duration::from_secs(60), &mut seen, |s| upserts(s).len() >= 500).await;
    stack.sfsim.sim.revoke_sessions(&stack.org.org.id);
    stack.faults(|f| f.unavailable_next = 2);
    stack.collect_until(Duration::from_secs(90), &mut seen, |s| !completions(s).is_empty()).await;
    let run = completions(&seen)[0];
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(seeded.is_subset(&ids(&seen)));
}

#[tokio::test]
async fn a_spent_allowance_pauses_the_tenant_without_failing_it() {
    let mut stack = Stack::start(&[]).await;
    stack.seed("Lead", leads(3000, "上限", None)).await;
    let org = stack.sfsim.sim.org(&stack.org.org.id).expect("org");
    org.set_limits(Some(14_990), Some(15_000));
    stack.start_importer().await;
    stack.connect(&["Lead"]).await;
    let mut seen = Vec::new();
    stack.collect_until(Duration::from_secs(60), &mut seen, |s| !completions(s).is_empty()).await;
    let run = completions(&seen)[0].clone();
    assert_eq!(run["status"], "succeeded", "paused, not failed: {run}");
    assert_eq!(run["more_pending"], true);
    // import.completed is published before the pause is written: wait
    // for the pause, not assume it landed first.
    let path = format!("/v1/tenants/{TENANT}/imports");
    fa_testkit::eventually(Duration::from_secs(10), "the pause to be recorded", || async {
        let (_, state) = stack.admin(reqwest::Method::GET, &path).await;
        state["paused_until"].is_string().then_some(())
    })
    .await;
    let paused = format!("fa_tenant_paused{{service=\"importer\",tenant=\"{TENANT}\"}} 1");
    fa_testkit::eventually(Duration::from_secs(10), "fa_tenant_paused to show the pause", || async {
        let url = format!("http://127.0.0.1:{}/metrics", stack.port);
        let metrics = reqwest::get(url).await.ok()?.text().await.ok()?;
        metrics.contains(&paused).then_some(())
    })
    .await;
    // The first page showed 90 % used: no further page was asked for.
    let calls = org.calls();
    let pages: u64 = calls.iter().filter(|(route, _)| route.contains("/query")).map(|(_, n)| n).sum();
    assert_eq!(pages, 1, "{calls:?}");
    assert_eq!(upserts(&seen).len(), 2000, "the page read before the pause is published");

    // The window rolls; a manual request looks again at once.
    org.set_limits(Some(0), None);
    stack.request_import().await;
    stack.collect_until_caught_up(&mut seen).await;
    assert_eq!(ids(&seen).len(), 3000, "every lead arrived after the pause");
}

#[tokio::test]
async fn two_replicas_never_run_one_tenant_at_once() {
    let mut stack = Stack::start(&[("FA_SF_IMPORT_MAX_RECORDS_PER_RUN", "1000")]).await;
    let seeded: HashSet<String> = stack.seed("Lead", leads(3000, "並行", None)).await.into_iter().collect();
    // Slow pages, so every request arrives while a run is going on.
    stack.faults(|f| f.latency_ms = 100);
    stack.start_importer().await;
    let (replica, replica_port) = stack.start_replica().await;
    stack.connect(&["Lead"]).await;
    // Two more requests, one through each replica's admin API: with the
    // connection's own, RabbitMQ hands them to both replicas.
    for port in [stack.port, replica_port] {
        let (status, body) =
            stack.admin_at(port, reqwest::Method::POST, &format!("/v1/tenants/{TENANT}/imports")).await;
        assert_eq!(status, 202, "{body}");
    }
    let mut seen = Vec::new();
    stack.collect_until_caught_up(&mut seen).await;
    assert!(seeded.is_subset(&ids(&seen)));

    let pool = sqlx::PgPool::connect(&stack.db.url).await.expect("database");
    let runs: Vec<(String, time::OffsetDateTime, Option<time::OffsetDateTime>)> = sqlx::query_as(
        "SELECT run_id, started_at, finished_at FROM import_runs WHERE tenant_id = $1 ORDER BY started_at",
    )
    .bind(TENANT)
    .fetch_all(&pool)
    .await
    .expect("runs");
    assert!(runs.len() >= 3, "{runs:?}");
    for pair in runs.windows(2) {
        let (earlier, later) = (&pair[0], &pair[1]);
        let finished = earlier.2.unwrap_or_else(|| panic!("{} still running when {} started", earlier.0, later.0));
        assert!(
            finished <= later.1,
            "{} ({:?} to {finished}) overlaps {} (from {})",
            earlier.0,
            earlier.1,
            later.0,
            later.1
        );
    }
    // Both replicas took requests; a request that met a run in progress
    // said so and waits for its retry.
    let first = stack.importer_logs();
    let second = format!("{}\n{}", replica.stdout(), replica.stderr());
    for logs in [&first, &second] {
        assert!(logs.contains("import run started") || logs.contains("tenant_busy"), "{logs}");
    }
    assert!(first.contains("tenant_busy") || second.contains("tenant_busy"), "{first}\n{second}");
    drop(replica);
}

#[tokio::test]
async fn a_permanent_salesforce_error_fails_the_run_with_its_reason_and_loses_nothing() {
    let mut stack = Stack::start(&[]).await;
    let seeded: HashSet<String> = stack.seed("Lead", leads(20, "権限", None)).await.into_iter().collect();
    // The admin took the integration user's read access to Leads away.
    stack.faults(|f| f.unreadable_objects = vec!["Lead".to_owned()]);
    stack.start_importer().await;
    stack.connect(&["Lead"]).await;
    let mut seen = Vec::new();
    stack.collect_until(Duration::from_secs(60), &mut seen, |s| !completions(s).is_empty()).await;
    let run = completions(&seen)[0].clone();
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["more_pending"], true, "{run}");
    assert_eq!(run["error"]["code"], "salesforce_rejected", "{run}");
    assert_eq!(run["error"]["salesforce_error_code"], "INVALID_TYPE", "{run}");
    let message = run["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("sObject type 'Lead' is not supported"), "Salesforce's words reach the admin: {message}");
    fa_messages::validation::validate("import.completed.v1", &run).expect("valid import.completed");
    assert!(upserts(&seen).is_empty());

    let (_, state) = stack.admin(reqwest::Method::GET, &format!("/v1/tenants/{TENANT}/imports")).await;
    let shown = &state["runs"][0];
    assert_eq!(shown["run_id"], run["run_id"], "{state}");
    assert_eq!(shown["status"], "failed", "{state}");
    assert_eq!(shown["error"]["salesforce_error_code"], "INVALID_TYPE", "{state}");

    // Access given back, the next run publishes every record.
    stack.faults(|f| f.unreadable_objects.clear());
    stack.request_import().await;
    stack.collect_until_caught_up(&mut seen).await;
    assert_eq!(ids(&seen), seeded);
}

#[tokio::test]
async fn an_allowance_spent_on_an_empty_page_pauses_before_the_next_object_is_queried() {
    let mut stack = Stack::start(&[]).await;
    let contacts: HashSet<String> = stack
        .seed(
            "Contact",
            json!([{ "LastName": "田中", "FirstName": "一郎" }, { "LastName": "中村", "FirstName": "花子" }]),
        )
        .await
        .into_iter()
        .collect();
    let org = stack.sfsim.sim.org(&stack.org.org.id).expect("org");
    org.set_limits(Some(14_990), Some(15_000));
    stack.start_importer().await;
    // No Leads at all: the Lead query answers an empty page, showing the
    // allowance 90 % used.
    stack.connect(&["Lead", "Contact"]).await;
    let mut seen = Vec::new();
    stack.collect_until(Duration::from_secs(60), &mut seen, |s| !completions(s).is_empty()).await;
    let run = completions(&seen)[0].clone();
    assert_eq!(run["status"], "succeeded", "paused, not failed: {run}");
    assert_eq!(run["more_pending"], true, "{run}");
    let calls = org.calls();
    let queries: u64 = calls.iter().filter(|(route, _)| route.contains("/query")).map(|(_, n)| n).sum();
    assert_eq!(queries, 1, "Contacts are not queried once the allowance is 90 % used: {calls:?}");
    // import.completed is published before the pause is written: wait
    // for the pause, not assume it landed first.
    let path = format!("/v1/tenants/{TENANT}/imports");
    fa_testkit::eventually(Duration::from_secs(10), "the pause to be recorded", || async {
        let (_, state) = stack.admin(reqwest::Method::GET, &path).await;
        state["paused_until"].is_string().then_some(())
    })
    .await;

    org.set_limits(Some(0), None);
    stack.request_import().await;
    stack.collect_until_caught_up(&mut seen).await;
    assert_eq!(ids(&seen), contacts);
}

#[tokio::test]
async fn a_run_that_loses_its_lock_stops_and_the_next_run_loses_nothing() {
    let mut stack = Stack::start(&[("FA_SF_IMPORT_MAX_RECORDS_PER_RUN", "1000")]).await;
    let seeded: HashSet<String> = stack.seed("Lead", leads(4000, "切断", None)).await.into_iter().collect();
    stack.faults(|f| f.latency_ms = 150);
    stack.start_importer().await;
    stack.connect(&["Lead"]).await;
    let mut seen = Vec::new();
    stack.collect_until(Duration::from_secs(60), &mut seen, |s| !upserts(s).is_empty()).await;
    // The database drops the lock's connection (as in a failover): another
    // replica could now take the tenant.
    let pool = sqlx::PgPool::connect(&stack.db.url).await.expect("database");
    let (dropped,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_locks
         WHERE locktype = 'advisory' AND granted
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS t",
    )
    .fetch_one(&pool)
    .await
    .expect("terminate");
    assert_eq!(dropped, 1, "one run holds one lock");
    stack
        .collect_until(Duration::from_secs(60), &mut seen, |s| {
            completions(s).iter().any(|c| c["error"]["message"].as_str().is_some_and(|m| m.contains("lost its lock")))
        })
        .await;
    let stopped = completions(&seen).into_iter().find(|c| c["error"]["code"] == "interrupted").cloned();
    assert_eq!(stopped.expect("the stopped run")["status"], "failed");

    stack.faults(|f| f.latency_ms = 0);
    stack.request_import().await;
    stack.collect_until_caught_up(&mut seen).await;
    assert!(seeded.is_subset(&ids(&seen)));
}

#[tokio::test]
async fn sigterm_while_salesforce_is_slow_stops_without_waiting_for_the_page() {
    let mut stack = Stack::start(&[]).await;
    stack.seed("Lead", leads(10, "遅延", None)).await;
    stack.start_importer().await;
    // Every call now takes a minute: the run sits waiting for its first page.
    stack.faults(|f| f.latency_ms = 60_000);
    stack.connect(&["Lead"]).await;
    fa_testkit::eventually(Duration::from_secs(30), "a run to be going on", || async {
        let (_, state) = stack.admin(reqwest::Method::GET, &format!("/v1/tenants/{TENANT}/imports")).await;
        (state["runs"][0]["status"] == "running").then_some(())
    })
    .await;
    let mut importer = stack.importer.take().expect("importer");
    importer.signal("TERM").expect("SIGTERM");
    // Well inside the pod's 45 s grace, and long before the page comes.
    let (status, took) = importer.wait(Duration::from_secs(15)).expect("stops without waiting for the page");
    assert!(status.success(), "{status:?} after {took:?}");
    let mut seen = Vec::new();
    stack
        .collect_until(Duration::from_secs(10), &mut seen, |s| {
            completions(s).iter().any(|c| c["error"]["code"] == "interrupted")
        })
        .await;
}
