//! Customers leave Front Agent when their record leaves Salesforce
//! (docs/behaviour.md §3): deleted, merged and converted records that the
//! importer published before are announced as `customer.removed`, records
//! purged from the recycle bin before a run saw them are found all the
//! same, and records Front Agent never received are never announced.
//! Driven through the token-broker's registration, the importer's admin
//! API and sfsim's control API.

mod common;

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use common::{Stack, completions, ids, leads, upserts};
use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

const DEADLINE: Duration = Duration::from_secs(120);

/// The `customer.removed` bodies among `seen`.
fn removals(seen: &[(String, Value)]) -> Vec<&Value> {
    seen.iter().filter(|(k, _)| k == "customer.removed").map(|(_, b)| b).collect()
}

/// The `customer.removed` bodies about `id`.
fn removals_of<'a>(seen: &'a [(String, Value)], id: &str) -> Vec<&'a Value> {
    removals(seen).into_iter().filter(|m| m["source"]["id"] == id).collect()
}

/// The `customer.upsert` bodies about `id`.
fn upserts_of<'a>(seen: &'a [(String, Value)], id: &str) -> Vec<&'a Value> {
    upserts(seen).into_iter().filter(|m| m["source"]["id"] == id).collect()
}

/// Every message about `id` (upserts and removals), in publication order.
fn about<'a>(seen: &'a [(String, Value)], id: &str) -> Vec<&'a (String, Value)> {
    seen.iter().filter(|(_, b)| b["source"]["id"] == id).collect()
}

fn instant(value: &Value) -> OffsetDateTime {
    let text = value.as_str().unwrap_or_else(|| panic!("a timestamp, got {value}"));
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text} is not RFC 3339: {e}"))
}

/// What one object's counts in an `import.completed` say, 0 when absent.
fn count(run: &Value, object: &str, field: &str) -> u64 {
    run["objects"]
        .as_array()
        .and_then(|objects| objects.iter().find(|o| o["object"] == object))
        .and_then(|o| o[field].as_u64())
        .unwrap_or(0)
}

/// Every message valid against its schema.
fn assert_valid(seen: &[(String, Value)]) {
    for (key, body) in seen {
        let kind = format!("{key}.v1");
        fa_messages::validation::validate(&kind, body).unwrap_or_else(|e| panic!("{kind} invalid: {e:?}: {body}"));
    }
}

/// Front Agent applies messages in the order they arrive: for each record,
/// each message is no older than the one before (a removal never follows a
/// newer upsert of the same record, nor an upsert a newer removal), and a
/// change between upsert and removal is a change of stamp.
fn assert_each_record_moves_forward(seen: &[(String, Value)]) {
    let mut last: HashMap<String, (OffsetDateTime, &str)> = HashMap::new();
    for (key, body) in seen.iter().filter(|(k, _)| k.starts_with("customer.")) {
        let id = body["source"]["id"].as_str().unwrap_or_else(|| panic!("source.id in {body}")).to_owned();
        let at = instant(&body["source"]["modified_at"]);
        if let Some((before, kind)) = last.get(&id) {
            assert!(
                at >= *before,
                "{key} of {id} stamped {at} arrives after a {kind} stamped {before}: Front Agent would apply \
                 the older one last\n{:#?}",
                about(seen, &id)
            );
            assert!(
                *kind == key.as_str() || at > *before,
                "{key} of {id} at the same stamp {at} as the {kind} before it\n{:#?}",
                about(seen, &id)
            );
        }
        last.insert(id, (at, key.as_str()));
    }
}

/// Adds a run's messages to everything seen so far and checks them all as
/// Front Agent would rely on them: valid, and each record moving forward.
fn check_all(seen: &mut Vec<(String, Value)>, next: &[(String, Value)]) {
    seen.extend(next.iter().cloned());
    assert_valid(seen);
    assert_each_record_moves_forward(seen);
}

/// The importer's metrics count one removal of `object` for `reason`.
async fn assert_one_removal_counted(stack: &Stack, object: &str, reason: &str) {
    let metrics = metrics(stack).await;
    assert_eq!(
        metric(&metrics, "fa_import_removals_total", &[("object", object), ("reason", reason)]),
        Some(1.0),
        "{metrics}"
    );
}

/// Within one run, each object's upserts and removals come in the cursor's
/// `(SystemModstamp, Id)` order.
fn assert_in_cursor_order(run: &[(String, Value)]) {
    let mut by_object: HashMap<String, Vec<(OffsetDateTime, String)>> = HashMap::new();
    for (_, body) in run.iter().filter(|(k, _)| k.starts_with("customer.")) {
        let object = body["source"]["object"].as_str().unwrap_or_default().to_owned();
        let id = body["source"]["id"].as_str().unwrap_or_default().to_owned();
        by_object.entry(object).or_default().push((instant(&body["source"]["modified_at"]), id));
    }
    for (object, order) in by_object {
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "{object}: upserts and removals in (SystemModstamp, Id) order");
    }
}

/// Makes the importer's last look for purged records end ten minutes
/// earlier, as if the run before had been that long ago. In production runs
/// are hours apart; here they are seconds apart, and Salesforce's deleted
/// list refuses a window of a minute or less, so the importer would not ask
/// it until a later run. The importer's clock cannot be moved; where its
/// last look ended can.
async fn let_minutes_pass(stack: &Stack) {
    let pool = sqlx::PgPool::connect(&stack.db.url).await.expect("database");
    let moved = sqlx::query("UPDATE import_removal_looks SET looked_until = looked_until - interval '10 minutes'")
        .execute(&pool)
        .await
        .expect("moving the last look back")
        .rows_affected();
    assert!(moved >= 1, "the first run records where its look for purged records ended");
    pool.close().await;
}

/// Asks for a run and reads what it publishes, up to its `import.completed`.
async fn next_run(stack: &mut Stack) -> Vec<(String, Value)> {
    stack.request_import().await;
    let mut seen = Vec::new();
    stack.collect_until(DEADLINE, &mut seen, |s| !completions(s).is_empty()).await;
    assert_succeeded(stack, &seen);
    seen
}

/// Connects the org and reads the first run (reason `connected`).
async fn first_run(stack: &mut Stack, objects: &[&str]) -> Vec<(String, Value)> {
    stack.start_importer().await;
    stack.connect(objects).await;
    let mut seen = Vec::new();
    stack.collect_until(DEADLINE, &mut seen, |s| !completions(s).is_empty()).await;
    assert_succeeded(stack, &seen);
    seen
}

fn assert_succeeded(stack: &Stack, seen: &[(String, Value)]) {
    for run in completions(seen) {
        assert_eq!(run["status"], "succeeded", "{run}\nimporter logs:\n{}", stack.importer_logs());
    }
}

/// sfsim's control API for the test's org: `(status, body)`.
async fn control(stack: &Stack, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let url = format!("{}/sfsim/orgs/{}{path}", stack.sfsim.url, stack.org.org.id);
    let mut request = stack.http.request(method, url);
    if !body.is_null() {
        request = request.json(&body);
    }
    let response = request.send().await.expect("sfsim answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON") })
}

/// Deletes a record as a user in Salesforce does (into the recycle bin).
fn delete(stack: &Stack, object: &str, id: &str) {
    let schema = sfsim::schema::object(object).expect("a known object");
    sfsim::write::delete(&stack.org.org, schema, id).unwrap_or_else(|e| panic!("delete {object} {id}: {e:?}"));
}

/// Merges `loser` into `master`, as a user merges duplicates in Salesforce.
async fn merge(stack: &Stack, object: &str, master: &str, loser: &str) {
    let path = format!("/records/{object}/merge");
    let (status, body) =
        control(stack, reqwest::Method::POST, &path, json!({ "master_id": master, "merged_ids": [loser] })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["merged_ids"], json!([loser]), "{body}");
}

/// Moves the org's clock forward (deletion dates, modstamps and the
/// recycle bin's 15 days follow it).
async fn advance_clock(stack: &Stack, seconds: u64) {
    let (status, body) = control(stack, reqwest::Method::POST, "/clock/advance", json!({ "seconds": seconds })).await;
    assert_eq!(status, 200, "{body}");
}

/// The importer's `/metrics` text.
async fn metrics(stack: &Stack) -> String {
    reqwest::get(format!("http://127.0.0.1:{}/metrics", stack.port)).await.expect("metrics").text().await.expect("text")
}

/// The sum of the series of `name` carrying every label of `labels` (in
/// any order, beside others); `None` when there is none.
fn metric(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
        if series_name != name || !labels.iter().all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\""))) {
            continue;
        }
        let value: f64 = value.trim().parse().unwrap_or_else(|e| panic!("{line}: {e}"));
        found = Some(found.unwrap_or(0.0) + value);
    }
    found
}

#[tokio::test]
async fn a_converted_lead_is_removed_with_its_contact_as_successor_and_the_contact_arrives() {
    let mut stack = Stack::start(&[]).await;
    let lead = stack.seed("Lead", leads(1, "変換", None)).await.remove(0);
    let other = stack.seed("Lead", leads(1, "残留", None)).await.remove(0);
    let mut seen = first_run(&mut stack, &["Lead", "Contact"]).await;
    let first = upserts_of(&seen, &lead).first().map(|m| instant(&m["source"]["modified_at"]));
    let first = first.unwrap_or_else(|| panic!("the lead is imported first: {seen:#?}"));

    let (status, converted) =
        control(&stack, reqwest::Method::POST, &format!("/leads/{lead}/convert"), json!({})).await;
    assert_eq!(status, 200, "{converted}");
    let contact = converted["contact_id"].as_str().expect("contact_id").to_owned();
    let account = converted["account_id"].as_str().expect("account_id").to_owned();

    let next = next_run(&mut stack).await;
    let removed = removals_of(&next, &lead);
    assert_eq!(removed.len(), 1, "one removal of the converted lead {lead}: {next:#?}");
    let removal = removed[0];
    assert_eq!(removal["tenant_id"], common::TENANT);
    assert_eq!(removal["reason"], "converted", "{removal}");
    assert_eq!(removal["successor"], json!({ "object": "Contact", "id": contact }), "the Contact, not the Account");
    assert_eq!(removal["source"]["object"], "Lead");
    assert_eq!(removal["source"]["system"], "salesforce");
    assert!(
        instant(&removal["source"]["modified_at"]) > first,
        "the removal carries the conversion's stamp, newer than the lead's upsert: {removal}"
    );
    assert_eq!(removal["import_run_id"], completions(&next)[0]["run_id"], "{removal}");
    let arrived = upserts_of(&next, &contact);
    assert!(!arrived.is_empty(), "the Contact the lead became arrives as customer.upsert: {next:#?}");
    assert_eq!(arrived[0]["source"]["object"], "Contact");
    assert!(removals_of(&next, &other).is_empty(), "the other lead is still a customer");
    assert!(upserts_of(&next, &lead).is_empty(), "the converted lead is not upserted again");
    assert!(about(&next, &account).is_empty(), "Accounts are not imported here: {next:#?}");

    let run = completions(&next)[0];
    assert_eq!(count(run, "Lead", "removed"), 1, "{run}");
    assert_eq!(count(run, "Contact", "published"), 1, "{run}");
    check_all(&mut seen, &next);
    assert_in_cursor_order(&next);

    assert_one_removal_counted(&stack, "Lead", "converted").await;
}

#[tokio::test]
async fn a_merged_contact_is_removed_with_the_survivor_as_successor_and_the_survivor_is_upserted_again() {
    let mut stack = Stack::start(&[]).await;
    let contacts = stack
        .seed(
            "Contact",
            json!([
                { "LastName": "佐藤", "FirstName": "花子", "Phone": "03-1234-5678" },
                { "LastName": "佐藤", "FirstName": "花子", "Phone": "03-1234-5678", "Email": "hanako@sato.example" },
            ]),
        )
        .await;
    let (survivor, loser) = (contacts[0].clone(), contacts[1].clone());
    let mut seen = first_run(&mut stack, &["Contact"]).await;
    let stamp_of = |seen: &[(String, Value)], id: &str| {
        upserts_of(seen, id)
            .last()
            .map(|m| instant(&m["source"]["modified_at"]))
            .unwrap_or_else(|| panic!("{id} upserted: {seen:#?}"))
    };
    let survivor_before = stamp_of(&seen, &survivor);
    let loser_before = stamp_of(&seen, &loser);

    merge(&stack, "Contact", &survivor, &loser).await;

    let next = next_run(&mut stack).await;
    let removed = removals_of(&next, &loser);
    assert_eq!(removed.len(), 1, "one removal of the merged loser {loser}: {next:#?}");
    assert_eq!(removed[0]["reason"], "merged", "{}", removed[0]);
    assert_eq!(removed[0]["successor"], json!({ "object": "Contact", "id": survivor }), "{}", removed[0]);
    assert_eq!(removed[0]["source"]["object"], "Contact");
    assert!(instant(&removed[0]["source"]["modified_at"]) > loser_before, "{}", removed[0]);
    assert!(removals_of(&next, &survivor).is_empty(), "the survivor stays a customer: {next:#?}");
    assert!(upserts_of(&next, &loser).is_empty(), "the loser is not upserted again: {next:#?}");
    let survivor_after = stamp_of(&next, &survivor);
    assert!(
        survivor_after > survivor_before,
        "the survivor is upserted again with the merge's stamp: {survivor_after} after {survivor_before}"
    );

    let run = completions(&next)[0];
    assert_eq!(count(run, "Contact", "removed"), 1, "{run}");
    assert_eq!(count(run, "Contact", "published"), 1, "{run}");
    check_all(&mut seen, &next);
    assert_in_cursor_order(&next);

    assert_one_removal_counted(&stack, "Contact", "merged").await;
}

#[tokio::test]
async fn a_lead_deleted_and_undeleted_between_runs_ends_as_an_upsert() {
    let mut stack = Stack::start(&[]).await;
    let seeded = stack.seed("Lead", leads(2, "復元", None)).await;
    // One undeleted a moment after its deletion; one undeleted within the
    // deletion's own stamp (automation is that quick, and a stamp is only so
    // fine: sfsim's to the millisecond).
    let (later, at_once) = (seeded[0].clone(), seeded[1].clone());
    let mut seen = first_run(&mut stack, &["Lead"]).await;
    assert!(ids(&seen).contains(&later) && ids(&seen).contains(&at_once), "imported first: {seen:#?}");

    let undelete = |id: String| {
        let stack = &stack;
        async move {
            let (status, body) =
                control(stack, reqwest::Method::POST, "/recycle-bin/undelete", json!({ "ids": [id] })).await;
            assert_eq!(status, 200, "{body}");
        }
    };
    delete(&stack, "Lead", &later);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    undelete(later.clone()).await;

    delete(&stack, "Lead", &at_once);
    let (_, bin) = control(&stack, reqwest::Method::GET, "/recycle-bin", Value::Null).await;
    let deleted_date = bin
        .as_array()
        .and_then(|entries| entries.iter().find(|e| e["id"] == at_once.as_str()))
        .and_then(|e| e["deleted_date"].as_str())
        .and_then(sfsim::value::parse_datetime)
        .unwrap_or_else(|| panic!("{at_once} in the recycle bin: {bin}"));
    undelete(at_once.clone()).await;
    {
        // sfsim stamps the undelete with its own instant, a few hundred
        // microseconds later: the stamp shown is the deletion's millisecond.
        let mut data = stack.org.org.data.write().expect("sfsim's data");
        let record = data.records.get_mut(&at_once).expect("the undeleted lead");
        record.fields.insert("SystemModstamp", sfsim::value::Value::DateTime(deleted_date));
    }
    let_minutes_pass(&stack).await;

    // The delete log keeps the deletions, and the deleted list names them,
    // but the leads are live again: an undelete is a change, so the run
    // upserts them, and nothing it says afterwards may remove them.
    let next = next_run(&mut stack).await;
    for (what, id) in [("a moment later", &later), ("within the deletion's stamp", &at_once)] {
        let messages = about(&next, id);
        let last = messages.last().unwrap_or_else(|| panic!("{id}, undeleted {what}, is upserted again: {next:#?}"));
        assert_eq!(
            last.0,
            "customer.upsert",
            "the last word about {id}, undeleted {what}, is that it lives: {messages:#?}\nimporter logs:\n{}",
            stack.importer_logs()
        );
    }
    assert_eq!(count(completions(&next)[0], "Lead", "published"), 2, "{next:#?}");
    check_all(&mut seen, &next);
}

#[tokio::test]
async fn a_lead_purged_by_hand_between_runs_is_found_by_a_reconciliation_and_announced_deleted() {
    let mut stack = Stack::start(&[]).await;
    let seeded = stack.seed("Lead", leads(2, "削除", None)).await;
    let (gone, kept) = (seeded[0].clone(), seeded[1].clone());
    let mut seen = first_run(&mut stack, &["Lead"]).await;
    assert!(ids(&seen).contains(&gone) && ids(&seen).contains(&kept), "both imported first: {seen:#?}");

    // The admin deletes the lead a few minutes later and empties the
    // recycle bin: the purge moves the deleted list's earliest date past
    // where the importer's last look ended (the list counts in minutes), so
    // the list refuses the window and the run must compare ids.
    let_minutes_pass(&stack).await;
    delete(&stack, "Lead", &gone);
    let (status, body) = control(&stack, reqwest::Method::POST, "/recycle-bin/empty", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["purged"], json!([gone]), "{body}");

    let next = next_run(&mut stack).await;
    let removed = removals_of(&next, &gone);
    assert_eq!(removed.len(), 1, "the purged lead is announced once: {next:#?}");
    assert_eq!(removed[0]["reason"], "deleted", "{}", removed[0]);
    assert_eq!(removed[0]["successor"], Value::Null, "{}", removed[0]);
    assert_eq!(removed[0]["source"]["object"], "Lead");
    assert!(removals_of(&next, &kept).is_empty(), "a live lead is never announced removed: {next:#?}");
    assert_eq!(count(completions(&next)[0], "Lead", "removed"), 1, "{next:#?}");
    check_all(&mut seen, &next);

    let logs = stack.importer_logs();
    assert!(logs.to_lowercase().contains("reconcil"), "the run says it reconciled, and what it cost:\n{logs}");
    let metrics = metrics(&stack).await;
    // The emptied bin moved the deleted list's earliest date past the last
    // look: the run compared ids at once (not waiting for the daily safety
    // net), the two leads it held, in one page of ids.
    assert_eq!(
        metric(&metrics, "fa_import_reconciliations_total", &[("object", "Lead"), ("reason", "list_gap")]),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "fa_import_reconcile_ids_compared_total", &[("object", "Lead")]),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "fa_import_reconcile_api_calls_total", &[("object", "Lead")]),
        Some(1.0),
        "the comparison's calls are counted: {metrics}"
    );
    assert_one_removal_counted(&stack, "Lead", "deleted").await;
}

#[tokio::test]
async fn a_lead_purged_after_fifteen_days_on_the_clock_is_announced_deleted() {
    let mut stack = Stack::start(&[]).await;
    let seeded = stack.seed("Lead", leads(2, "期限", None)).await;
    let (gone, kept) = (seeded[0].clone(), seeded[1].clone());
    let mut seen = first_run(&mut stack, &["Lead"]).await;
    assert!(ids(&seen).contains(&gone) && ids(&seen).contains(&kept), "both imported first: {seen:#?}");

    // Deleted, then the tenant was not imported for 20 days: the recycle
    // bin purged the lead, and the deleted list no longer reaches back.
    delete(&stack, "Lead", &gone);
    let_minutes_pass(&stack).await;
    advance_clock(&stack, 20 * 24 * 3600).await;
    let (status, bin) = control(&stack, reqwest::Method::GET, "/recycle-bin", Value::Null).await;
    assert_eq!((status, bin.clone()), (200, json!([])), "sfsim purged the bin after 15 days");

    let next = next_run(&mut stack).await;
    let removed = removals_of(&next, &gone);
    assert_eq!(removed.len(), 1, "the purged lead is announced once: {next:#?}");
    assert_eq!(removed[0]["reason"], "deleted", "{}", removed[0]);
    assert_eq!(removed[0]["successor"], Value::Null, "{}", removed[0]);
    assert!(removals_of(&next, &kept).is_empty(), "a live lead is never announced removed: {next:#?}");
    assert_eq!(count(completions(&next)[0], "Lead", "removed"), 1, "{next:#?}");
    check_all(&mut seen, &next);
    let logs = stack.importer_logs();
    assert!(logs.to_lowercase().contains("reconcil"), "the run says it reconciled:\n{logs}");
}

#[tokio::test]
async fn records_front_agent_never_received_are_never_announced() {
    let mut stack = Stack::start(&[("FA_SF_IMPORT_LOOKBACK", "30d")]).await;
    // Created and deleted before the first run.
    let early = stack.seed("Lead", leads(1, "早期", None)).await.remove(0);
    delete(&stack, "Lead", &early);
    // Last changed long before the lookback: never imported.
    let old = stack.seed("Lead", leads(1, "古い", Some("2020-01-01T00:00:00.000Z"))).await.remove(0);
    // Imported, then deleted: announced, so the second run is known to
    // look at what left.
    let kept = stack.seed("Lead", leads(1, "対照", None)).await.remove(0);
    let mut seen = first_run(&mut stack, &["Lead"]).await;
    assert_eq!(ids(&seen), HashSet::from([kept.clone()]), "only the live lead inside the lookback: {seen:#?}");

    // Created and deleted between two runs, the old lead deleted (a new
    // stamp, inside the window now), the imported one deleted.
    let brief = stack.seed("Lead", leads(1, "短命", None)).await.remove(0);
    delete(&stack, "Lead", &brief);
    delete(&stack, "Lead", &old);
    delete(&stack, "Lead", &kept);
    // The deleted list names all three.
    let_minutes_pass(&stack).await;

    let next = next_run(&mut stack).await;
    let removed = removals_of(&next, &kept);
    assert_eq!(removed.len(), 1, "the imported lead is announced: {next:#?}");
    assert_eq!(removed[0]["reason"], "deleted", "{}", removed[0]);
    seen.extend(next.iter().cloned());
    let never = [
        ("created and deleted before the first run", &early),
        ("outside the lookback", &old),
        ("created and deleted between runs", &brief),
    ];
    for (what, id) in never {
        let messages = about(&seen, id);
        assert!(
            messages.is_empty(),
            "{id} ({what}) never reached Front Agent, so nothing is said of it: {messages:#?}"
        );
    }
    assert_eq!(removals(&seen).len(), 1, "{seen:#?}");
    assert_eq!(count(completions(&next)[0], "Lead", "removed"), 1, "{next:#?}");
    assert_valid(&seen);
}

#[tokio::test]
async fn five_hundred_leads_deleted_at_one_stamp_are_each_announced_once_across_capped_runs() {
    let mut stack = Stack::start(&[("FA_SF_IMPORT_MAX_RECORDS_PER_RUN", "300")]).await;
    let seeded = stack.seed("Lead", leads(500, "一括削除", None)).await;
    stack.start_importer().await;
    stack.connect(&["Lead"]).await;
    let mut seen = Vec::new();
    stack.collect_until_caught_up(&mut seen).await;
    assert_succeeded(&stack, &seen);
    assert_eq!(ids(&seen), seeded.iter().cloned().collect::<HashSet<_>>(), "all 500 imported first");

    // One bulk delete: Salesforce stamps the batch's rows with one
    // SystemModstamp. sfsim stamps each deletion with its own instant (to
    // the nanosecond), so the rows are given one stamp afterwards.
    for id in &seeded {
        delete(&stack, "Lead", id);
    }
    let now = stack.org.org.now();
    let stamp = now.replace_nanosecond(u32::from(now.millisecond()) * 1_000_000).expect("a millisecond");
    {
        let mut data = stack.org.org.data.write().expect("sfsim's data");
        for id in &seeded {
            let record = data.records.get_mut(id).expect("the deleted lead");
            record.fields.insert("SystemModstamp", sfsim::value::Value::DateTime(stamp));
        }
    }

    stack.request_import().await;
    let mut after = Vec::new();
    stack.collect_until_caught_up(&mut after).await;
    assert_succeeded(&stack, &after);
    let runs = completions(&after);
    assert!(runs.len() >= 2, "500 removals at a cap of 300 take two runs at least: {runs:#?}");
    for run in &runs {
        let total: u64 = ["published", "removed"].iter().map(|f| count(run, "Lead", f)).sum();
        assert!(total <= 300, "removals count toward the cap: {run}");
    }
    let removed: u64 = runs.iter().map(|r| count(r, "Lead", "removed")).sum();
    assert_eq!(removed, 500, "{runs:#?}");

    let announced = removals(&after);
    let mut times: HashMap<&str, usize> = HashMap::new();
    for m in &announced {
        *times.entry(m["source"]["id"].as_str().expect("id")).or_default() += 1;
        assert_eq!(m["reason"], "deleted", "{m}");
        assert_eq!(m["successor"], Value::Null, "{m}");
        assert_eq!(instant(&m["source"]["modified_at"]), stamp, "the deletion's stamp: {m}");
    }
    let missing: Vec<&String> = seeded.iter().filter(|id| !times.contains_key(id.as_str())).collect();
    assert!(missing.is_empty(), "{} of 500 never announced, e.g. {:?}", missing.len(), missing.first());
    let twice: Vec<(&&str, &usize)> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{} announced more than once, e.g. {:?}", twice.len(), twice.first());
    assert_eq!(times.len(), 500, "no other record announced");
    assert!(upserts(&after).is_empty(), "nothing lives to be upserted: {:#?}", upserts(&after).first());
    // One cursor, one order: the runs continue where the last one stopped.
    let order: Vec<&str> = announced.iter().filter_map(|m| m["source"]["id"].as_str()).collect();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert!(order == sorted, "removals at one stamp come in Id order across the runs");
    seen.extend(after.iter().cloned());
    assert_valid(&seen);
    assert_each_record_moves_forward(&seen);
}

#[tokio::test]
async fn the_first_run_of_a_new_tenant_announces_nothing() {
    let mut stack = Stack::start(&[]).await;
    let l = stack.seed("Lead", leads(5, "初回", None)).await;
    let c = stack
        .seed(
            "Contact",
            json!([{ "LastName": "田中" }, { "LastName": "中村" }, { "LastName": "中村" }, { "LastName": "小林" }]),
        )
        .await;
    let a = stack.seed("Account", json!([{ "Name": "鈴木工業" }, { "Name": "削除商事" }])).await;
    // Before the tenant connects: a deleted Lead, a merged Lead, a
    // converted Lead, a merged and a deleted Contact, a deleted Account.
    delete(&stack, "Lead", &l[1]);
    merge(&stack, "Lead", &l[2], &l[3]).await;
    let (contact, account) = sfsim::write::convert_lead(&stack.sfsim.sim, &stack.org.org, &l[4]).expect("convert");
    merge(&stack, "Contact", &c[1], &c[2]).await;
    delete(&stack, "Contact", &c[3]);
    delete(&stack, "Account", &a[1]);

    let seen = first_run(&mut stack, &["Lead", "Contact", "Account"]).await;
    assert!(removals(&seen).is_empty(), "a new tenant's first run announces nothing: {:#?}", removals(&seen));
    let got = ids(&seen);
    for id in [&l[0], &l[2], &c[0], &c[1], &contact, &account, &a[0]] {
        assert!(got.contains(id), "live {id} is imported: {seen:#?}");
    }
    for id in [&l[1], &l[3], &l[4], &c[2], &c[3], &a[1]] {
        assert!(!got.contains(id), "{id} left before the tenant connected and is not imported");
    }
    for run in completions(&seen) {
        for object in ["Lead", "Contact", "Account"] {
            assert_eq!(count(run, object, "removed"), 0, "{run}");
        }
    }

    // Nothing changed: the next run has nothing to announce either.
    let next = next_run(&mut stack).await;
    assert!(removals(&next).is_empty(), "{:#?}", removals(&next));
    let mut all = seen;
    all.extend(next);
    assert_valid(&all);
    assert_each_record_moves_forward(&all);
}
