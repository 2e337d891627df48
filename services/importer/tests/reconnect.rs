//! Issue 13: after an admin re-connects the tenant to another org, the
//! importer's next run reads the new org with the new org's token (before,
//! its cached token kept it reading the first org).

mod common;

use std::collections::HashSet;

use common::{Stack, completions, ids, leads};

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
    let second_ids: HashSet<String> =
        stack.seed_in(&second.org.id, "Lead", leads(2, "鈴木", None)).await.into_iter().collect();
    assert_eq!(second_ids.len(), 2);
    stack.connect_to(&second, &["Lead"]).await;

    // The re-connect asks for an import; its run reads the second org.
    let mut after = Vec::new();
    stack.collect_until_caught_up(&mut after).await;
    assert_eq!(ids(&after), second_ids, "the run after the re-connect publishes the second org's Leads only");
    let run = completions(&after).last().copied().cloned().expect("a run");
    assert_eq!(run["status"], "succeeded", "{run}");
}
