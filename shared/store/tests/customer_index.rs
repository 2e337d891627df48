//! The customer index against the real PostgreSQL, each test in a database
//! of its own: what the importer writes is what the writer finds.

use fa_store::customer_index::{self, IndexHit, IndexedRecord};
use fa_testkit::TestDatabase;
use sqlx::PgPool;
use time::{OffsetDateTime, macros::datetime};

const ORG: &str = "00D000000000001EAA";

async fn pool() -> (TestDatabase, PgPool) {
    let db = TestDatabase::create().await.expect("database");
    let pool = fa_store::connect(&db.url, fa_store::PoolOptions::default()).await.expect("connect and migrate");
    (db, pool)
}

fn record(object: &str, id: &str, phones: &[&str], email: Option<&str>, at: OffsetDateTime) -> IndexedRecord {
    IndexedRecord {
        object: object.to_owned(),
        record_id: id.to_owned(),
        phones: phones.iter().map(|p| (*p).to_owned()).collect(),
        email: email.map(str::to_owned),
        modified_at: at,
        converted: false,
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The ids `find` answers for `tenant` in [`ORG`], in its order.
async fn found(pool: &PgPool, tenant: &str, e164s: &[&str], emails: &[&str]) -> Vec<String> {
    customer_index::find(pool, tenant, ORG, &strings(e164s), &strings(emails))
        .await
        .expect("find")
        .into_iter()
        .map(|hit| hit.record_id)
        .collect()
}

#[tokio::test]
async fn a_record_is_found_by_any_of_its_numbers_or_by_its_email_in_any_case() {
    let (_db, pool) = pool().await;
    let at = datetime!(2026-11-20 01:02:03 UTC);
    customer_index::upsert(
        &pool,
        "acme",
        ORG,
        &[
            record("Lead", "00Q000000000001EAA", &["+81312345678", "+819012345678"], Some("Hanako@Sato.Example"), at),
            record("Contact", "003000000000001AAA", &[], Some("ichiro@suzuki.example"), at + time::Duration::HOUR),
            record("Account", "001000000000001AAA", &["+81661234567"], None, at),
        ],
    )
    .await
    .expect("upsert");

    assert_eq!(found(&pool, "acme", &["+819012345678"], &[]).await, ["00Q000000000001EAA"]);
    assert_eq!(found(&pool, "acme", &[], &["hanako@sato.example"]).await, ["00Q000000000001EAA"]);
    assert_eq!(found(&pool, "acme", &[], &["ICHIRO@suzuki.example"]).await, ["003000000000001AAA"]);
    // Most recently modified first.
    assert_eq!(
        found(&pool, "acme", &["+81312345678"], &["ichiro@suzuki.example"]).await,
        ["003000000000001AAA", "00Q000000000001EAA"]
    );
    assert!(found(&pool, "acme", &["+81300000000"], &["nobody@example.com"]).await.is_empty());
    assert!(found(&pool, "acme", &[], &[]).await.is_empty());

    // The hit says what it holds, so the caller tells a phone match from an e-mail match.
    let hits = customer_index::find(&pool, "acme", ORG, &[], &strings(&["hanako@sato.example"])).await.expect("find");
    assert_eq!(
        hits,
        [IndexHit {
            object: "Lead".to_owned(),
            record_id: "00Q000000000001EAA".to_owned(),
            modified_at: at,
            phones: strings(&["+81312345678", "+819012345678"]),
            email: Some("hanako@sato.example".to_owned()),
        }]
    );
}

#[tokio::test]
async fn converted_leads_and_other_tenants_or_orgs_are_not_found() {
    let (_db, pool) = pool().await;
    let at = datetime!(2026-11-20 01:02:03 UTC);
    let phone = ["+81312345678"];
    let converted = IndexedRecord { converted: true, ..record("Lead", "00Q000000000002EAA", &phone, None, at) };
    customer_index::upsert(&pool, "acme", ORG, &[record("Lead", "00Q000000000001EAA", &phone, None, at), converted])
        .await
        .expect("upsert acme");
    customer_index::upsert(&pool, "globex", ORG, &[record("Lead", "00Q000000000003EAA", &phone, None, at)])
        .await
        .expect("upsert globex");
    customer_index::upsert(
        &pool,
        "acme",
        "00D000000000002EAA",
        &[record("Contact", "003000000000001AAA", &phone, None, at)],
    )
    .await
    .expect("upsert another org");

    assert_eq!(found(&pool, "acme", &phone, &[]).await, ["00Q000000000001EAA"]);
    assert_eq!(found(&pool, "globex", &phone, &[]).await, ["00Q000000000003EAA"]);
}

#[tokio::test]
async fn an_older_version_never_overwrites_a_newer_one() {
    let (_db, pool) = pool().await;
    let id = "00Q000000000001EAA";
    let newer = datetime!(2026-11-20 01:02:03 UTC);
    customer_index::upsert(
        &pool,
        "acme",
        ORG,
        &[record("Lead", id, &["+81312345678"], Some("new@example.com"), newer)],
    )
    .await
    .expect("upsert newer");
    let older = newer - time::Duration::MINUTE;
    customer_index::upsert(
        &pool,
        "acme",
        ORG,
        &[record("Lead", id, &["+81300000000"], Some("old@example.com"), older)],
    )
    .await
    .expect("upsert older");
    assert_eq!(found(&pool, "acme", &["+81312345678"], &["new@example.com"]).await, [id]);
    assert!(found(&pool, "acme", &["+81300000000"], &["old@example.com"]).await.is_empty());

    // SystemModstamp counts whole seconds: a version read later with the same stamp is newer.
    customer_index::upsert(&pool, "acme", ORG, &[record("Lead", id, &["+81311112222"], None, newer)])
        .await
        .expect("upsert same stamp");
    assert_eq!(found(&pool, "acme", &["+81311112222"], &[]).await, [id]);
    assert!(found(&pool, "acme", &["+81312345678"], &["new@example.com"]).await.is_empty());

    // One batch naming a record twice keeps its latest version.
    let later = newer + time::Duration::MINUTE;
    customer_index::upsert(
        &pool,
        "acme",
        ORG,
        &[record("Lead", id, &["+81333334444"], None, later), record("Lead", id, &["+81355556666"], None, newer)],
    )
    .await
    .expect("upsert a record twice");
    assert_eq!(found(&pool, "acme", &["+81333334444", "+81355556666"], &[]).await, [id]);
    assert!(found(&pool, "acme", &["+81355556666"], &[]).await.is_empty());
}

#[tokio::test]
async fn the_index_refuses_a_number_that_is_not_e164() {
    let (_db, pool) = pool().await;
    let at = datetime!(2026-11-20 01:02:03 UTC);
    for phones in [&["03-1234-5678"][..], &[""], &["+0312345678"], &["+81312345678", ""]] {
        let refused =
            customer_index::upsert(&pool, "acme", ORG, &[record("Lead", "00Q000000000001EAA", phones, None, at)]).await;
        assert!(refused.is_err(), "{phones:?} was indexed");
    }
    assert!(found(&pool, "acme", &["+81312345678"], &[]).await.is_empty());
}

#[tokio::test]
async fn only_what_was_published_from_the_org_is_held_and_a_removal_forgets_it() {
    let (_db, pool) = pool().await;
    let at = datetime!(2026-11-20 01:02:03 UTC);
    let lead = "00Q000000000001EAA";
    let other_lead = "00Q000000000002EAA";
    customer_index::upsert(&pool, "acme", ORG, &[record("Lead", lead, &["+81312345678"], None, at)])
        .await
        .expect("upsert");
    customer_index::upsert(&pool, "globex", ORG, &[record("Lead", other_lead, &[], None, at)]).await.expect("upsert");
    let asked = strings(&[lead, other_lead, "00Q000000000003EAA"]);

    let held = customer_index::held(&pool, "acme", ORG, "Lead", &asked).await.expect("held");
    assert_eq!(
        held.into_iter().collect::<Vec<_>>(),
        [(lead.to_owned(), at)],
        "another tenant's record and an unknown id are not held; the version held is told"
    );
    assert_eq!(
        customer_index::all_held(&pool, "acme", ORG, "Lead").await.expect("all held"),
        [(lead.to_owned(), at)],
        "every record held, for a reconciliation"
    );
    let held = customer_index::held(&pool, "acme", ORG, "Contact", &asked).await.expect("held");
    assert!(held.is_empty(), "the same id as another object is not held");
    let held = customer_index::held(&pool, "acme", "00D000000000002EAA", "Lead", &asked).await.expect("held");
    assert!(held.is_empty(), "a record of the org before a re-connect is not held");

    assert_eq!(customer_index::remove(&pool, "acme", "Lead", &asked).await.expect("remove"), 1);
    assert!(customer_index::held(&pool, "acme", ORG, "Lead", &asked).await.expect("held").is_empty());
    assert!(customer_index::all_held(&pool, "acme", ORG, "Lead").await.expect("all held").is_empty());
    assert!(found(&pool, "acme", &["+81312345678"], &[]).await.is_empty(), "the writer no longer finds it");
    assert_eq!(
        customer_index::held(&pool, "globex", ORG, "Lead", &asked).await.expect("held").into_keys().collect::<Vec<_>>(),
        [other_lead],
        "another tenant's record stays"
    );

    // Undeleted and published again: held again.
    customer_index::upsert(&pool, "acme", ORG, &[record("Lead", lead, &[], None, at + time::Duration::HOUR)])
        .await
        .expect("upsert");
    assert_eq!(customer_index::held(&pool, "acme", ORG, "Lead", &asked).await.expect("held").len(), 1);
}
