//! The records each tenant's importer has published, by E.164 number and
//! e-mail (`customer_index`): where the activity-writer matches a caller
//! first (docs/behaviour.md §4, case 3), since Salesforce's search index (SOSL)
//! lags new records by minutes.
//!
//! The importer [`upsert`]s the records of each confirmed batch; the writer
//! [`find`]s them. What the index [`held`] is what Front Agent may hold, so
//! only that is announced gone, and then [`remove`]d. E-mail addresses are lower-cased here on both sides
//! (`str::to_lowercase`), so they compare case-insensitively whatever the
//! caller passes.

use sqlx::PgPool;
use time::OffsetDateTime;

/// A record as the index keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedRecord {
    /// `Lead`, `Contact` or `Account`.
    pub object: String,
    /// The record id, as Salesforce answered it (18 characters).
    pub record_id: String,
    /// The E.164 forms of its numbers (`+81312345678`); numbers that could
    /// not be normalised are left out, never passed as anything else (the
    /// table refuses what is not E.164).
    pub phones: Vec<String>,
    /// Its e-mail address.
    pub email: Option<String>,
    /// Its `SystemModstamp`.
    pub modified_at: OffsetDateTime,
    /// A converted Lead: kept, but never found.
    pub converted: bool,
}

/// Inserts or updates `records` of `tenant`, read from the org
/// `organization_id`, in one statement (`UNNEST` of arrays); no statement
/// at all for none.
///
/// A row never moves back to an older `modified_at`. An equal one does
/// replace it: `SystemModstamp` counts whole seconds, so two versions may
/// share one, and the one read later is the newer. A row of another org (a
/// connection re-registered, e.g. to a refreshed sandbox, which keeps
/// record ids) is replaced whatever its stamp. When `records` names one
/// record twice, its latest version (by stamp, then position) is kept.
pub async fn upsert(pool: &PgPool, tenant: &str, organization_id: &str, records: &[IndexedRecord]) -> sqlx::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let mut objects = Vec::with_capacity(records.len());
    let mut ids = Vec::with_capacity(records.len());
    let mut emails = Vec::with_capacity(records.len());
    let mut stamps = Vec::with_capacity(records.len());
    let mut converted = Vec::with_capacity(records.len());
    // Numbers flattened, each with the (1-based) position of its record:
    // PostgreSQL arrays are rectangular, so no array of arrays.
    let mut owners = Vec::new();
    let mut phones = Vec::new();
    for (position, record) in (1i64..).zip(records) {
        objects.push(record.object.as_str());
        ids.push(record.record_id.as_str());
        emails.push(record.email.as_deref().map(str::to_lowercase));
        stamps.push(record.modified_at);
        converted.push(record.converted);
        for phone in &record.phones {
            owners.push(position);
            phones.push(phone.as_str());
        }
    }
    sqlx::query(
        "INSERT INTO customer_index AS ci
             (tenant_id, organization_id, object, record_id, phones, email, modified_at, converted)
         SELECT DISTINCT ON (r.object, r.record_id)
                $1, $2, r.object, r.record_id, coalesce(p.phones, '{}'), r.email, r.modified_at, r.converted
         FROM unnest($3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::boolean[]) WITH ORDINALITY
                  AS r (object, record_id, email, modified_at, converted, n)
         LEFT JOIN (SELECT owner AS n, array_agg(phone ORDER BY k) AS phones
                    FROM unnest($8::bigint[], $9::text[]) WITH ORDINALITY AS p (owner, phone, k)
                    GROUP BY owner) p USING (n)
         ORDER BY r.object, r.record_id, r.modified_at DESC, r.n DESC
         ON CONFLICT (tenant_id, object, record_id) DO UPDATE SET
             phones = EXCLUDED.phones, email = EXCLUDED.email, modified_at = EXCLUDED.modified_at,
             converted = EXCLUDED.converted, organization_id = EXCLUDED.organization_id
         WHERE (ci.modified_at <= EXCLUDED.modified_at OR ci.organization_id <> EXCLUDED.organization_id)
           -- The overlap a run re-reads is mostly unchanged: no dead row for it.
           AND (ci.phones, ci.email, ci.modified_at, ci.converted, ci.organization_id)
               IS DISTINCT FROM
               (EXCLUDED.phones, EXCLUDED.email, EXCLUDED.modified_at, EXCLUDED.converted, EXCLUDED.organization_id)",
    )
    .bind(tenant)
    .bind(organization_id)
    .bind(&objects)
    .bind(&ids)
    .bind(&emails)
    .bind(&stamps)
    .bind(&converted)
    .bind(&owners)
    .bind(&phones)
    .execute(pool)
    .await?;
    Ok(())
}

/// A record [`find`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexHit {
    /// `Lead`, `Contact` or `Account`.
    pub object: String,
    /// The record id.
    pub record_id: String,
    /// Its `SystemModstamp` when indexed.
    pub modified_at: OffsetDateTime,
    /// All its E.164 numbers: a hit whose numbers share none with those
    /// asked for matched by e-mail.
    pub phones: Vec<String>,
    /// Its e-mail address, lower-cased.
    pub email: Option<String>,
}

/// Unconverted records of `tenant` in org `organization_id` having any of
/// `e164s` among their phones or whose email is one of `emails` (compared
/// case-insensitively), most recently modified first.
pub async fn find(
    pool: &PgPool,
    tenant: &str,
    organization_id: &str,
    e164s: &[String],
    emails: &[String],
) -> sqlx::Result<Vec<IndexHit>> {
    if e164s.is_empty() && emails.is_empty() {
        return Ok(Vec::new());
    }
    let emails: Vec<String> = emails.iter().map(|e| e.to_lowercase()).collect();
    type Row = (String, String, OffsetDateTime, Vec<String>, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT object, record_id, modified_at, phones, email FROM customer_index
         WHERE tenant_id = $1 AND organization_id = $2 AND NOT converted
           AND (phones && $3::text[] OR email = ANY($4::text[]))
         ORDER BY modified_at DESC, object, record_id",
    )
    .bind(tenant)
    .bind(organization_id)
    .bind(e164s)
    .bind(&emails)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(object, record_id, modified_at, phones, email)| IndexHit {
            object,
            record_id,
            modified_at,
            phones,
            email,
        })
        .collect())
}

/// Which of `record_ids` (records of `object`) Front Agent may hold for
/// `tenant`, with the `SystemModstamp` of the version it holds: those the
/// importer published from org `organization_id` and has not announced
/// gone since. The importer announces a removal only for these
/// (docs/behaviour.md §3): a record first seen already gone was never Front
/// Agent's.
pub async fn held(
    pool: &PgPool,
    tenant: &str,
    organization_id: &str,
    object: &str,
    record_ids: &[String],
) -> sqlx::Result<std::collections::HashMap<String, OffsetDateTime>> {
    if record_ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let rows: Vec<(String, OffsetDateTime)> = sqlx::query_as(
        "SELECT record_id, modified_at FROM customer_index
         WHERE tenant_id = $1 AND organization_id = $2 AND object = $3 AND record_id = ANY($4::text[])",
    )
    .bind(tenant)
    .bind(organization_id)
    .bind(object)
    .bind(record_ids)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Every record of `object` Front Agent may hold for `tenant` from org
/// `organization_id` (as [`held`]), with its `SystemModstamp`, in id order:
/// what a reconciliation compares with the ids Salesforce still has.
pub async fn all_held(
    pool: &PgPool,
    tenant: &str,
    organization_id: &str,
    object: &str,
) -> sqlx::Result<Vec<(String, OffsetDateTime)>> {
    sqlx::query_as(
        "SELECT record_id, modified_at FROM customer_index
         WHERE tenant_id = $1 AND organization_id = $2 AND object = $3 ORDER BY record_id",
    )
    .bind(tenant)
    .bind(organization_id)
    .bind(object)
    .fetch_all(pool)
    .await
}

/// Forgets `record_ids` (records of `object`) of `tenant` once their
/// removal was confirmed: the writer no longer matches callers on them, and
/// a run that reads them again does not announce them twice. A record that
/// comes back (undeleted) is indexed again by its next upsert. Returns how
/// many rows went.
pub async fn remove(pool: &PgPool, tenant: &str, object: &str, record_ids: &[String]) -> sqlx::Result<u64> {
    if record_ids.is_empty() {
        return Ok(0);
    }
    let done =
        sqlx::query("DELETE FROM customer_index WHERE tenant_id = $1 AND object = $2 AND record_id = ANY($3::text[])")
            .bind(tenant)
            .bind(object)
            .bind(record_ids)
            .execute(pool)
            .await?;
    Ok(done.rows_affected())
}
