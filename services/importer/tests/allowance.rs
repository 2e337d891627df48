//! Every replica reports a tenant's pause and its org's API usage as
//! PostgreSQL holds them (docs/behaviour.md §5): Prometheus scrapes all
//! replicas and alerts on `max by (tenant)`, so a pause that ended must end
//! on every replica's `/metrics`, not only on the one that ended it.

mod common;

use std::time::Duration;

use common::{Stack, TENANT, completions, leads};
use fa_messages::TenantId;
use importer::allowance::REFRESH_EVERY;
use tokio::time::Instant;

/// How long after PostgreSQL changed every replica must show it: one
/// refresh, plus the refresh's query and the scrape itself.
const WITHIN_ONE_REFRESH: Duration = REFRESH_EVERY.saturating_add(Duration::from_secs(2));

fn paused_series() -> String {
    format!(r#"fa_tenant_paused{{service="importer",tenant="{TENANT}"}}"#)
}

fn usage_series() -> String {
    format!(r#"fa_salesforce_api_usage_ratio{{service="importer",tenant="{TENANT}"}}"#)
}

/// The value of `series` on the `/metrics` of the importer at `port`.
async fn value(port: u16, series: &str) -> Option<f64> {
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.ok()?.text().await.ok()?;
    metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Waits until `series` has a value `ok` accepts on every port; the values.
async fn on_every_replica(
    ports: &[u16],
    series: &str,
    deadline: Duration,
    what: &str,
    ok: impl Fn(f64) -> bool,
) -> Vec<f64> {
    fa_testkit::eventually(deadline, what, || async {
        let mut values = Vec::new();
        for port in ports {
            values.push(value(*port, series).await.filter(|v| ok(*v))?);
        }
        Some(values)
    })
    .await
}

/// Waits until PostgreSQL says the tenant is paused (`true`) or not.
async fn until_paused_in_database(pool: &sqlx::PgPool, paused: bool) {
    fa_testkit::eventually(Duration::from_secs(30), "the pause in import_schedule", || async {
        let row: Option<(bool,)> =
            sqlx::query_as("SELECT paused_until IS NOT NULL FROM import_schedule WHERE tenant_id = $1")
                .bind(TENANT)
                .fetch_optional(pool)
                .await
                .ok()?;
        row.filter(|(p,)| *p == paused).map(|_| ())
    })
    .await;
}

/// The reading stored for the tenant, as a ratio.
async fn stored_usage(pool: &sqlx::PgPool) -> f64 {
    let (used, max): (i64, i64) = sqlx::query_as("SELECT used, max FROM import_api_usage WHERE tenant_id = $1")
        .bind(TENANT)
        .fetch_one(pool)
        .await
        .expect("a stored reading");
    used as f64 / max as f64
}

#[tokio::test]
async fn a_pause_taken_by_one_replica_shows_on_both_and_its_end_leaves_both_within_one_refresh() {
    let mut stack = Stack::start(&[]).await;
    stack.seed("Lead", leads(3000, "一時停止", None)).await;
    let org = stack.sfsim.sim.org(&stack.org.org.id).expect("org");
    org.set_limits(Some(14_990), Some(15_000));
    stack.start_importer().await;
    let (_replica, replica_port) = stack.start_replica().await;
    let ports = [stack.port, replica_port];
    let pool = stack.db.pool().await.expect("pool");
    stack.connect(&["Lead"]).await;

    // Whichever replica ran the tenant paused it; both say so.
    let mut seen = Vec::new();
    stack.collect_until(Duration::from_secs(60), &mut seen, |s| !completions(s).is_empty()).await;
    until_paused_in_database(&pool, true).await;
    on_every_replica(&ports, &paused_series(), WITHIN_ONE_REFRESH, "the pause on both replicas", |v| v == 1.0).await;
    on_every_replica(&ports, &usage_series(), WITHIN_ONE_REFRESH, "the spent allowance on both replicas", |v| v >= 0.9)
        .await;

    // The window rolls; a manual request through the second replica ends
    // the pause (whichever replica then runs the tenant).
    org.set_limits(Some(0), None);
    let (status, body) =
        stack.admin_at(replica_port, reqwest::Method::POST, &format!("/v1/tenants/{TENANT}/imports")).await;
    assert_eq!(status, 202, "{body}");
    stack.collect_until_caught_up(&mut seen).await;
    until_paused_in_database(&pool, false).await;
    let ended = Instant::now();
    on_every_replica(&ports, &paused_series(), WITHIN_ONE_REFRESH, "the pause's end on both replicas", |v| v == 0.0)
        .await;
    assert!(ended.elapsed() <= WITHIN_ONE_REFRESH, "took {:?}", ended.elapsed());

    // Both report the newest reading, whichever replica took it.
    let newest = stored_usage(&pool).await;
    assert!(newest < 0.9, "{newest}");
    let usage =
        on_every_replica(&ports, &usage_series(), WITHIN_ONE_REFRESH, "the newest reading on both replicas", |v| {
            (v - newest).abs() < 1e-9
        })
        .await;
    assert!(ended.elapsed() <= WITHIN_ONE_REFRESH, "took {:?}: {usage:?}", ended.elapsed());
}

/// Sets the stored reading of the tenant's org.
async fn store_usage(pool: &sqlx::PgPool, used: i64, max: i64) {
    sqlx::query("UPDATE import_api_usage SET used = $2, max = $3, read_at = now() WHERE tenant_id = $1")
        .bind(TENANT)
        .bind(used)
        .bind(max)
        .execute(pool)
        .await
        .expect("a stored reading");
}

#[tokio::test]
async fn a_pause_in_the_table_shows_on_both_replicas_until_it_is_cleared_not_when_its_time_passes() {
    let mut stack = Stack::start(&[]).await;
    stack.seed("Lead", leads(10, "期限", None)).await;
    stack.start_importer().await;
    let (_replica, replica_port) = stack.start_replica().await;
    let ports = [stack.port, replica_port];
    let pool = stack.db.pool().await.expect("pool");
    stack.connect(&["Lead"]).await;
    let mut seen = Vec::new();
    stack.collect_until(Duration::from_secs(60), &mut seen, |s| !completions(s).is_empty()).await;
    assert_eq!(completions(&seen)[0]["status"], "succeeded", "{seen:?}");
    on_every_replica(&ports, &paused_series(), WITHIN_ONE_REFRESH, "an unpaused tenant on both replicas", |v| v == 0.0)
        .await;

    // Paused in the table as a run pauses it: no replica set a gauge.
    let tenant = TenantId::new(TENANT).expect("tenant id");
    importer::schedule::pause(&pool, &tenant, Duration::from_secs(3600), "test: allowance spent").await.expect("pause");
    let paused = Instant::now();
    on_every_replica(&ports, &paused_series(), WITHIN_ONE_REFRESH, "the pause on both replicas", |v| v == 1.0).await;
    assert!(paused.elapsed() <= WITHIN_ONE_REFRESH, "took {:?}", paused.elapsed());

    // Its time passes with no run due for an hour: the tenant waits for
    // its next look, still paused. A new reading stored after that shows
    // when both replicas have refreshed since.
    sqlx::query("UPDATE import_schedule SET paused_until = now() - interval '1 second' WHERE tenant_id = $1")
        .bind(TENANT)
        .execute(&pool)
        .await
        .expect("the pause's time passes");
    store_usage(&pool, 9_321, 10_000).await;
    on_every_replica(&ports, &usage_series(), WITHIN_ONE_REFRESH, "the stored reading on both replicas", |v| {
        (v - 0.9321).abs() < 1e-9
    })
    .await;
    for port in ports {
        assert_eq!(value(port, &paused_series()).await, Some(1.0), "replica on {port}");
    }

    // Cleared as a manual request clears it: gone from both.
    importer::schedule::resume(&pool, &tenant).await.expect("resume");
    let ended = Instant::now();
    on_every_replica(&ports, &paused_series(), WITHIN_ONE_REFRESH, "the pause's end on both replicas", |v| v == 0.0)
        .await;
    assert!(ended.elapsed() <= WITHIN_ONE_REFRESH, "took {:?}", ended.elapsed());
    let (runs,): (i64,) = sqlx::query_as("SELECT count(*) FROM import_runs WHERE tenant_id = $1")
        .bind(TENANT)
        .fetch_one(&pool)
        .await
        .expect("runs");
    assert_eq!(runs, 1, "no run took part");
}
