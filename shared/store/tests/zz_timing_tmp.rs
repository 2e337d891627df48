use fa_store::customer_index::{self, IndexedRecord};
use std::time::Instant;

#[tokio::test]
async fn timing() {
    let db = fa_testkit::TestDatabase::create().await.expect("database");
    let pool = fa_store::connect(&db.url, fa_store::PoolOptions::default()).await.expect("connect");
    let now = time::OffsetDateTime::now_utc();
    for size in [2000usize, 512, 2000, 512] {
        let t = Instant::now();
        let mut n = 0;
        for b in 0..(40_000 / size) {
            let records: Vec<IndexedRecord> = (0..size)
                .map(|i| IndexedRecord {
                    object: "Lead".into(),
                    record_id: format!("00Q{size:05}{b:05}{i:05}"),
                    phones: vec![format!("+8131{:07}", b * size + i)],
                    email: Some(format!("U{i}@x.com")),
                    modified_at: now,
                    converted: false,
                })
                .collect();
            let s = Instant::now();
            customer_index::upsert(&pool, "t", "org", &records).await.expect("upsert");
            n += 1;
            if b < 3 {
                eprintln!("size {size} stmt {b}: {:?}", s.elapsed());
            }
        }
        eprintln!(
            "size {size}: {n} statements, {:?} per statement, {:?} per 2000 rows",
            t.elapsed() / n,
            t.elapsed() * 2000 / 40_000
        );
    }
}
