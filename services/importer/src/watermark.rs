//! Where each object's import stands: the `(SystemModstamp, Id)` of the
//! last record whose `customer.upsert` the broker confirmed, and the filter
//! that resumes a read after it without losing or repeating records.
//!
//! A read starts at the watermark's second, rounded down (SOQL datetime
//! literals are whole seconds), minus an overlap on a fresh query, because
//! Salesforce can commit a record after records with later stamps are
//! already visible (docs/behaviour.md §3). [`Resume`] then sorts what comes back,
//! in the query's `ORDER BY SystemModstamp, Id` order:
//! - before the watermark record (an earlier stamp, or its own stamp and
//!   before it in the query's order): the overlap, published again but not
//!   counted against the run's cap (Front Agent upserts). A record committed
//!   late with the watermark's own stamp is among them, so it is not lost;
//! - the watermark record itself: confirmed by an earlier run, skipped;
//! - after it: new.
//!
//! If the watermark record does not show up at its stamp (it was changed
//! since, so it moved later), the records at that stamp are all sent as
//! overlap: nothing is skipped on a guess, and nothing is held in memory.

use fa_messages::{SObject, TenantId};
use sqlx::PgPool;
use time::OffsetDateTime;

/// The last confirmed record of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    /// Its `SystemModstamp`.
    pub modified_at: OffsetDateTime,
    /// Its id.
    pub id: String,
}

/// What the run does with a record read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Before the watermark: the overlap. Publish, do not count, do not
    /// move the watermark.
    Overlap,
    /// After the watermark: publish, count, move the watermark.
    New,
}

/// Sorts records of one read against the watermark it started from.
#[derive(Debug)]
pub struct Resume {
    watermark: Option<Watermark>,
    /// The read is past the watermark record (or there was none): all that
    /// follows is new.
    passed: bool,
}

/// A record as far as the watermark cares.
pub trait Stamped {
    /// `SystemModstamp`.
    fn modified_at(&self) -> OffsetDateTime;
    /// `Id`.
    fn id(&self) -> &str;
}

impl Resume {
    /// A filter for a read that started from `watermark` (none: the first
    /// read of the object, everything is new).
    pub fn new(watermark: Option<Watermark>) -> Self {
        let passed = watermark.is_none();
        Self { watermark, passed }
    }

    /// What to do with the next record read, in the query's order; `None`
    /// for the watermark record itself.
    pub fn admit(&mut self, record: &impl Stamped) -> Option<Fate> {
        if self.passed {
            return Some(Fate::New);
        }
        let Some(wm) = &self.watermark else { return Some(Fate::New) };
        let at = record.modified_at();
        if at < wm.modified_at || (at == wm.modified_at && record.id() != wm.id) {
            Some(Fate::Overlap)
        } else if at == wm.modified_at {
            self.passed = true;
            None
        } else {
            // Past the watermark's stamp, with or without meeting the
            // watermark record (it may have moved).
            self.passed = true;
            Some(Fate::New)
        }
    }
}

/// The object's watermark when it was set for `organization_id`; a
/// watermark of another org (the connection was re-registered to another
/// org) does not count.
pub async fn load(
    pool: &PgPool,
    tenant: &TenantId,
    object: SObject,
    organization_id: &str,
) -> Result<Option<Watermark>, sqlx::Error> {
    let row: Option<(OffsetDateTime, String)> = sqlx::query_as(
        "SELECT modified_at, record_id FROM import_watermarks
         WHERE tenant_id = $1 AND object = $2 AND organization_id = $3",
    )
    .bind(tenant.as_str())
    .bind(object.as_str())
    .bind(organization_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(modified_at, id)| Watermark { modified_at, id }))
}

/// Moves the object's watermark to `watermark`.
pub async fn save(
    pool: &PgPool,
    tenant: &TenantId,
    object: SObject,
    organization_id: &str,
    watermark: &Watermark,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO import_watermarks (tenant_id, object, organization_id, modified_at, record_id, updated_at)
         VALUES ($1, $2, $3, $4, $5, now())
         ON CONFLICT (tenant_id, object) DO UPDATE SET organization_id = EXCLUDED.organization_id,
             modified_at = EXCLUDED.modified_at, record_id = EXCLUDED.record_id, updated_at = now()",
    )
    .bind(tenant.as_str())
    .bind(object.as_str())
    .bind(organization_id)
    .bind(watermark.modified_at)
    .bind(&watermark.id)
    .execute(pool)
    .await
    .map(|_| ())
}

/// Every object's watermark of the tenant, for the admin API.
pub async fn all(pool: &PgPool, tenant: &TenantId) -> Result<Vec<(String, Watermark)>, sqlx::Error> {
    let rows: Vec<(String, OffsetDateTime, String)> = sqlx::query_as(
        "SELECT w.object, w.modified_at, w.record_id FROM import_watermarks w
         JOIN connections c ON c.tenant_id = w.tenant_id AND c.organization_id = w.organization_id
         WHERE w.tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(object, modified_at, id)| (object, Watermark { modified_at, id })).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct R(OffsetDateTime, &'static str);

    impl Stamped for R {
        fn modified_at(&self) -> OffsetDateTime {
            self.0
        }
        fn id(&self) -> &str {
            self.1
        }
    }

    const T0: OffsetDateTime = datetime!(2026-11-20 01:00:00.000 UTC);
    const T1: OffsetDateTime = datetime!(2026-11-20 01:02:03.000 UTC);
    const T2: OffsetDateTime = datetime!(2026-11-20 01:02:03.500 UTC);

    fn check(watermark: Option<(OffsetDateTime, &str)>, read: &[R], expected: &[(&str, Fate)]) {
        let mut resume = Resume::new(watermark.map(|(modified_at, id)| Watermark { modified_at, id: id.to_owned() }));
        let got: Vec<(&str, Fate)> = read.iter().filter_map(|r| resume.admit(r).map(|fate| (r.1, fate))).collect();
        assert_eq!(got, expected, "watermark {watermark:?}");
    }

    #[test]
    fn a_read_resumes_right_after_the_watermark() {
        use Fate::{New, Overlap};
        // The first read: all new.
        check(None, &[R(T0, "a"), R(T1, "b")], &[("a", New), ("b", New)]);
        // Overlap before the watermark record (also at its own stamp: a
        // record committed late there is sent again, not lost), the
        // watermark record skipped, then new.
        check(
            Some((T1, "c")),
            &[R(T0, "x"), R(T1, "a"), R(T1, "b"), R(T1, "c"), R(T1, "d"), R(T2, "e")],
            &[("x", Overlap), ("a", Overlap), ("b", Overlap), ("d", New), ("e", New)],
        );
        // 500 records sharing one stamp across a page boundary: the ones
        // after the watermark record all come as new.
        let shared: Vec<R> = (0..500).map(|i| R(T1, Box::leak(format!("r{i:03}").into_boxed_str()))).collect();
        let expected: Vec<(&str, Fate)> = shared
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 250)
            .map(|(i, r)| (r.1, if i < 250 { Overlap } else { New }))
            .collect();
        check(Some((T1, "r250")), &shared, &expected);
        // The watermark record moved (changed since): nothing at its old
        // stamp is skipped.
        check(Some((T1, "gone")), &[R(T1, "a"), R(T1, "b"), R(T2, "c")], &[("a", Overlap), ("b", Overlap), ("c", New)]);
        check(Some((T1, "gone")), &[R(T1, "a"), R(T1, "b")], &[("a", Overlap), ("b", Overlap)]);
        // Nothing after the watermark.
        check(Some((T1, "c")), &[R(T1, "c")], &[]);
        check(Some((T2, "z")), &[R(T0, "a")], &[("a", Overlap)]);
    }
}
