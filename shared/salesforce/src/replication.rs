//! The replication API's deleted list: which records of an object were
//! deleted in a window, `GET …/sobjects/{object}/deleted/?start=…&end=…`
//! (docs/salesforce-facts.md §9, "getDeleted").
//!
//! Why it exists beside `queryAll`: a deleted record stays visible to
//! `queryAll` only while it is in the recycle bin; once the bin is emptied
//! (by hand, or by Salesforce after 15 days) only this list remembers it,
//! and only for a window that ends at `earliestDateAvailable`. A `start`
//! before that, or less than a minute before `end`, is refused with
//! `INVALID_REPLICATION_DATE`: permanent, and for a caller that keeps
//! replicas the sign that the list can no longer tell it everything, so it
//! must compare ids instead (docs/behaviour.md §3, the reconciliation).

use serde::Deserialize;
use time::{OffsetDateTime, UtcOffset, macros::format_description};

use crate::{
    client::{Client, record_call},
    error::Error,
    limits::ApiUsage,
};

/// What [`Client::deleted`] answers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedList {
    /// The records deleted in the window, as far as the log reaches.
    pub deleted_records: Vec<DeletedRecord>,
    /// The oldest moment the log still covers: a later window start is
    /// refused, and deletions before it may be gone from the list.
    #[serde(with = "crate::datetime::optional_field", default)]
    pub earliest_date_available: Option<OffsetDateTime>,
    /// Where the next window must start to miss nothing: deletions that
    /// began before `end` but committed after it show up from here.
    #[serde(with = "crate::datetime::optional_field", default)]
    pub latest_date_covered: Option<OffsetDateTime>,
    /// The allowance the answer reported (from `Sforce-Limit-Info`).
    #[serde(skip)]
    pub usage: Option<ApiUsage>,
}

/// One deleted record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedRecord {
    /// Its id.
    pub id: String,
    /// When it was deleted (its `SystemModstamp` then), in UTC.
    #[serde(with = "crate::datetime::field")]
    pub deleted_date: OffsetDateTime,
}

/// A window bound as the route takes it: UTC with an explicit offset,
/// `2026-12-04T05:06:00+00:00` (sent URL-encoded, so the `+` survives).
fn bound(at: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]+00:00");
    at.to_offset(UtcOffset::UTC).format(&format).unwrap_or_default()
}

impl Client {
    /// The records of `object` (`Lead`, `Contact`, `Account`) deleted
    /// between `start` and `end`: one API call. Salesforce ignores the
    /// seconds of the bounds and wants `start` more than a minute before
    /// `end`, within the last 15 days (less after the recycle bin was
    /// emptied).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an object name that is not an API name
    /// (the call is not made); `INVALID_REPLICATION_DATE` (permanent) when
    /// the window is refused; any other [`Error`] as for queries.
    pub async fn deleted(
        &self,
        object: &str,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Result<DeletedList, Error> {
        if !crate::write::is_api_name(object) {
            let error = Error::InvalidInput(format!("{object:?} is not an sObject name"));
            record_call(self.service(), "deleted", error.label(), std::time::Duration::ZERO);
            return Err(error);
        }
        let url = format!("{}/services/data/{}/sobjects/{object}/deleted/", self.instance_url(), self.api_version());
        let request = self.http().get(url).query(&[("start", bound(start)), ("end", bound(end))]);
        let started = std::time::Instant::now();
        let result = self.call(request).await.and_then(|(body, usage)| {
            let list =
                serde_json::from_slice::<DeletedList>(body.as_ref()).map_err(|e| Error::Decode(e.to_string()))?;
            Ok(DeletedList { usage, ..list })
        });
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.label(),
        };
        record_call(self.service(), "deleted", outcome, started.elapsed());
        result
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn bounds_are_utc_with_an_explicit_offset() {
        assert_eq!(bound(datetime!(2026-12-04 14:05:06.789 +09:00)), "2026-12-04T05:05:06+00:00");
    }

    #[test]
    fn the_answer_reads_as_the_docs_show_it() {
        let body = r#"{"deletedRecords":[{"id":"00Q5j00000AbCdEEAV","deletedDate":"2026-12-01T03:04:00.000+0000"}],
            "earliestDateAvailable":"2026-11-19T15:01:00.000+0000","latestDateCovered":"2026-12-04T05:05:00.000+0000"}"#;
        let list: DeletedList = serde_json::from_str(body).expect("the documented shape");
        assert_eq!(list.deleted_records.len(), 1);
        assert_eq!(list.deleted_records[0].deleted_date, datetime!(2026-12-01 03:04 UTC));
        assert_eq!(list.earliest_date_available, Some(datetime!(2026-11-19 15:01 UTC)));
        assert_eq!(list.latest_date_covered, Some(datetime!(2026-12-04 05:05 UTC)));
    }
}
