//! Migrations against the real PostgreSQL, each test in a database of its own.

use fa_testkit::TestDatabase;

async fn applied(db: &TestDatabase) -> Vec<i64> {
    let pool = db.pool().await.expect("pool");
    let versions: Vec<(i64,)> = sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(&pool)
        .await
        .expect("query");
    pool.close().await;
    versions.into_iter().map(|(v,)| v).collect()
}

fn all_versions() -> Vec<i64> {
    fa_store::MIGRATOR.iter().map(|m| m.version).collect()
}

#[tokio::test]
async fn migrations_apply_on_an_empty_database_and_again_without_error() {
    let db = TestDatabase::create().await.expect("database");
    for _ in 0..2 {
        let pool = fa_store::connect(&db.url, fa_store::PoolOptions::default()).await.expect("connect and migrate");
        pool.close().await;
    }
    assert_eq!(applied(&db).await, all_versions());
    let pool = db.pool().await.expect("pool");
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .expect("tables");
    let names: Vec<_> = tables.into_iter().map(|(t,)| t).collect();
    assert!(names.contains(&"connections".to_owned()) && names.contains(&"user_links".to_owned()), "{names:?}");
}

#[tokio::test]
async fn migrations_from_several_processes_at_once_apply_each_exactly_once() {
    let db = TestDatabase::create().await.expect("database");
    // Separate OS processes, as replicas starting together would be.
    let migrate = env!("CARGO_BIN_EXE_fa-migrate");
    let children: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(migrate)
                .arg(&db.url)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "a concurrent migration failed:\n{text}");
        assert!(text.contains("migrated"), "the child did not migrate:\n{text}");
    }
    assert_eq!(applied(&db).await, all_versions());
}

#[tokio::test]
async fn an_unreachable_database_is_named_without_its_password() {
    let err = fa_store::connect(
        "postgres://postgres:hunter2@127.0.0.1:1/fa_salesforce",
        fa_store::PoolOptions { acquire_timeout: std::time::Duration::from_secs(2), ..Default::default() },
    )
    .await
    .expect_err("nothing listens on port 1");
    let text = format!("{err:#}");
    assert!(text.contains("FA_SF_DATABASE_URL"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}
