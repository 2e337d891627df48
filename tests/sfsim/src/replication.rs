//! The replication API's deleted list: `GET …/sobjects/{object}/deleted/
//! ?start=…&end=…`, read from the object's delete log
//! ([`crate::recycle_bin`]). The HTTP handler in [`crate::api`] is a shell
//! around [`deleted`].
//!
//! What rests on Salesforce's docs (REST "sObject Get Deleted", SOAP
//! getDeleted() and GetDeletedResult) and observed answers:
//! - the answer's shape, `deletedRecords[{id, deletedDate}]`,
//!   `earliestDateAvailable`, `latestDateCovered` (the REST doc's example);
//!   `deletedDate` is the record's `SystemModstamp` at deletion;
//! - results reach no more than 15 days back, "or earlier if an
//!   administrator has purged the Recycle Bin"; a purge done before the
//!   call makes it fail with `INVALID_REPLICATION_DATE`, and
//!   `earliestDateAvailable` is "the timestamp of the last physically
//!   deleted object";
//! - start must precede end by more than one minute, else
//!   `INVALID_REPLICATION_DATE`, whose observed message is "startDate must
//!   be at least one minute greater than endDate" (restforce issue 667);
//! - seconds of start and end are ignored, and the example answers give
//!   minute-round `latestDateCovered` and `earliestDateAvailable`;
//! - more than 600,000 ids give `EXCEEDED_ID_LIMIT`.
//!
//! What is assumed (no recorded answer found): the HTTP status 400 for
//! these errors (REST answers request errors with 400); the messages of a
//! too-old start, of a missing or unreadable date and of
//! `EXCEEDED_ID_LIMIT`; that a start older than `earliestDateAvailable`
//! fails (the SOAP page's wording, "if this value is less than endDate",
//! reads as a slip for this); that `earliestDateAvailable` is the later of
//! the 15-day edge and the newest purged deletion (a recorded answer
//! shows an older purge date, so Salesforce may report that instead); that
//! `end` counts with its seconds (a recorded answer lists a deletion made
//! after its minute-round `latestDateCovered`) and is capped at now.

use serde_json::{Value as J, json};
use time::{Duration, OffsetDateTime};

use crate::{
    error::ApiError,
    recycle_bin::{RecycleBin, log_start},
    value::{format_datetime, parse_datetime},
};

/// The most ids one answer may hold.
pub const MAX_IDS: usize = 600_000;

fn invalid_date(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "INVALID_REPLICATION_DATE", message)
}

fn floor_minute(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_second(0).and_then(|t| t.replace_nanosecond(0)).unwrap_or(at)
}

fn ceil_minute(at: OffsetDateTime) -> OffsetDateTime {
    let floor = floor_minute(at);
    if floor == at { at } else { floor + Duration::minutes(1) }
}

/// Reads `start` or `end` as Salesforce accepts it: ISO 8601 with an offset
/// (`2026-12-01T00:00:00+00:00`, `…Z`, `…+0900`, milliseconds allowed).
/// An unencoded `+` arrives as a space and is refused, as Salesforce does.
pub fn parse_instant(text: &str) -> Option<OffsetDateTime> {
    parse_datetime(text.trim_end())
}

/// The earliest `start` the object's deleted list accepts at `now`: the
/// 15-day edge (rounded up to a minute, so the whole minute is in the log),
/// or the minute of the newest purged deletion when that is later.
pub fn earliest_available(bin: &RecycleBin, object: &str, now: OffsetDateTime) -> OffsetDateTime {
    let edge = ceil_minute(log_start(now));
    bin.newest_purged(object).map_or(edge, |purged| edge.max(floor_minute(purged)))
}

/// The answer to `GET …/sobjects/{object}/deleted/?start=&end=` at `now`.
pub fn deleted(
    bin: &RecycleBin,
    object: &str,
    start: Option<&str>,
    end: Option<&str>,
    now: OffsetDateTime,
) -> Result<J, ApiError> {
    let (Some(start_text), Some(end_text)) = (start, end) else {
        return Err(ApiError::new(400, "MISSING_ARGUMENT", "start and end are both required"));
    };
    let read = |text: &str, name: &str| {
        parse_instant(text).ok_or_else(|| {
            invalid_date(format!(
                "{name} is not a valid date: {text}; use ISO 8601 with an offset, e.g. 2026-12-01T00:00:00+00:00 (URL-encode '+' as %2B)"
            ))
        })
    };
    let start = read(start_text, "start")?;
    let end = read(end_text, "end")?;
    if end - start <= Duration::minutes(1) {
        return Err(invalid_date("startDate must be at least one minute greater than endDate"));
    }
    let from = floor_minute(start);
    let earliest = earliest_available(bin, object, now);
    if from < earliest {
        return Err(invalid_date(format!(
            "startDate is before the earliest date available: {}",
            format_datetime(earliest)
        )));
    }
    let until = end.min(now);
    let mut found: Vec<_> = bin.log(object).iter().filter(|d| d.deleted_at >= from && d.deleted_at <= until).collect();
    if found.len() > MAX_IDS {
        return Err(ApiError::new(
            400,
            "EXCEEDED_ID_LIMIT",
            format!("More than {MAX_IDS} ids: choose start and end dates closer together"),
        ));
    }
    found.sort_by_key(|d| d.deleted_at);
    let records: Vec<J> =
        found.iter().map(|d| json!({ "id": d.id, "deletedDate": format_datetime(d.deleted_at) })).collect();
    Ok(json!({
        "deletedRecords": records,
        "earliestDateAvailable": format_datetime(earliest),
        "latestDateCovered": format_datetime(floor_minute(until)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        parse_datetime(text).expect("a datetime")
    }

    #[test]
    fn dates_are_read_as_salesforce_accepts_them() {
        fn check(text: &str, expected: Option<&str>) {
            assert_eq!(parse_instant(text).map(format_datetime).as_deref(), expected, "{text}");
        }
        check("2026-12-01T00:00:00+00:00", Some("2026-12-01T00:00:00.000+0000"));
        check("2026-12-01T00:00:00Z", Some("2026-12-01T00:00:00.000+0000"));
        check("2026-12-01T09:00:00+09:00", Some("2026-12-01T00:00:00.000+0000"));
        check("2026-12-01T00:00:00.000+0000", Some("2026-12-01T00:00:00.000+0000"));
        check("2026-12-01T00:00:00 00:00", None);
        check("2026-12-01", None);
        check("yesterday", None);
    }

    #[test]
    fn windows_salesforce_refuses() {
        let now = at("2026-12-04T12:00:30Z");
        let bin = RecycleBin::default();
        fn check(bin: &RecycleBin, now: OffsetDateTime, start: Option<&str>, end: Option<&str>, code: &str) {
            let e = deleted(bin, "Lead", start, end, now).expect_err("refused");
            assert_eq!((e.status, e.code.as_str()), (400, code), "{start:?} {end:?}: {}", e.message);
        }
        check(&bin, now, None, Some("2026-12-04T12:00:00Z"), "MISSING_ARGUMENT");
        check(&bin, now, Some("2026-12-04T11:00:00 00:00"), Some("2026-12-04T12:00:00Z"), "INVALID_REPLICATION_DATE");
        check(&bin, now, Some("2026-12-04T12:00:00Z"), Some("2026-12-04T11:00:00Z"), "INVALID_REPLICATION_DATE");
        check(&bin, now, Some("2026-12-04T11:59:00Z"), Some("2026-12-04T12:00:00Z"), "INVALID_REPLICATION_DATE");
        check(&bin, now, Some("2026-11-19T12:00:00Z"), Some("2026-12-04T12:00:00Z"), "INVALID_REPLICATION_DATE");
        let ok = deleted(&bin, "Lead", Some("2026-11-19T12:01:00Z"), Some("2026-12-05T00:00:00Z"), now).expect("ok");
        assert_eq!(ok["earliestDateAvailable"], "2026-11-19T12:01:00.000+0000");
        assert_eq!(ok["latestDateCovered"], "2026-12-04T12:00:00.000+0000", "capped at now, minute-round");
        assert_eq!(ok["deletedRecords"], json!([]));
    }
}
