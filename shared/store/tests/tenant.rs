//! A tenant's connection and user links as the services read them, against
//! the real PostgreSQL (rows written as the token-broker writes them).

use std::collections::HashMap;

use fa_testkit::TestDatabase;
use sqlx::PgPool;

async fn pool() -> (TestDatabase, PgPool) {
    let db = TestDatabase::create().await.expect("database");
    let pool = fa_store::connect(&db.url, fa_store::PoolOptions::default()).await.expect("connect and migrate");
    (db, pool)
}

async fn connect(pool: &PgPool, tenant: &str, org: Option<&str>, user: Option<&str>, objects: &[&str]) {
    sqlx::query(
        "INSERT INTO connections (tenant_id, consumer_key, username, login_url, instance_url, organization_id,
             salesforce_user_id, objects, key_id, private_key_ciphertext)
         VALUES ($1, 'key', 'user@example.com', 'https://login.salesforce.com', 'https://example.my.salesforce.com',
             $2, $3, $4, 'k1', '\\x00')",
    )
    .bind(tenant)
    .bind(org)
    .bind(user)
    .bind(objects)
    .execute(pool)
    .await
    .expect("connection");
}

async fn link(pool: &PgPool, tenant: &str, user_id: &str, salesforce_user_id: &str) {
    sqlx::query(
        "INSERT INTO user_links (tenant_id, user_id, salesforce_user_id, salesforce_user_name) VALUES ($1, $2, $3, 'n')",
    )
    .bind(tenant)
    .bind(user_id)
    .bind(salesforce_user_id)
    .execute(pool)
    .await
    .expect("link");
}

#[tokio::test]
async fn a_connection_is_read_with_its_objects_in_order_and_none_without_one() {
    let (_db, pool) = pool().await;
    connect(&pool, "acme", Some("00D000000000001EAA"), Some("005000000000001AAA"), &["Contact", "Lead"]).await;
    connect(&pool, "globex", None, None, &["Account"]).await;

    let acme = fa_store::tenant::connection(&pool, "acme").await.expect("read").expect("connected");
    assert_eq!(acme.objects, ["Contact", "Lead"]);
    assert_eq!(acme.organization_id.as_deref(), Some("00D000000000001EAA"));
    assert_eq!(acme.salesforce_user_id.as_deref(), Some("005000000000001AAA"));
    let globex = fa_store::tenant::connection(&pool, "globex").await.expect("read").expect("connected");
    assert_eq!((globex.organization_id, globex.salesforce_user_id), (None, None));
    assert_eq!(fa_store::tenant::connection(&pool, "initech").await.expect("read"), None);
}

#[tokio::test]
async fn user_links_answer_only_the_linked_users_asked_for_of_the_tenant() {
    let (_db, pool) = pool().await;
    connect(&pool, "acme", None, None, &["Lead"]).await;
    connect(&pool, "globex", None, None, &["Lead"]).await;
    link(&pool, "acme", "u1", "005000000000001AAA").await;
    link(&pool, "acme", "u2", "005000000000002AAA").await;
    link(&pool, "globex", "u3", "005000000000003AAA").await;

    let asked: Vec<String> = ["u1", "u3", "u4"].map(str::to_owned).to_vec();
    let links = fa_store::tenant::user_links(&pool, "acme", &asked).await.expect("links");
    assert_eq!(links, HashMap::from([("u1".to_owned(), "005000000000001AAA".to_owned())]));
    assert!(fa_store::tenant::user_links(&pool, "acme", &[]).await.expect("links").is_empty());
}
