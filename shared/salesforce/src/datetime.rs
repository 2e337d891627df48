//! Salesforce datetimes, as answers carry them and as SOQL filters want them
//! (docs/salesforce-facts.md §2, "Dates in answers" and "Dates in WHERE").
//!
//! Answers say `2013-05-20T20:49:32.000+0000`: milliseconds and an offset
//! without a colon, which RFC 3339 parsers refuse. WHERE clauses take the
//! literal unquoted, `2005-10-08T01:02:03Z`. Fractional seconds in a WHERE
//! literal (`…03.123Z`) are not in the facts; sfsim accepts them, so the
//! importer may choose [`soql_literal_millis`] for exact keyset paging and
//! fall back to [`soql_literal_seconds`] with `>=` and dedupe by Id.

use time::{OffsetDateTime, UtcOffset, format_description::BorrowedFormatItem, macros::format_description};

/// How Salesforce writes a datetime in an answer.
const ANSWER: &[BorrowedFormatItem<'static>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3][offset_hour sign:mandatory][offset_minute]"
);

/// Reads a datetime as Salesforce answers it (`2013-05-20T20:49:32.000+0000`).
///
/// RFC 3339 (`2013-05-20T20:49:32Z`, `…+00:00`) is accepted too, for values a
/// caller wrote itself.
///
/// # Errors
/// The format's error when the text is neither.
pub fn parse(text: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(text, ANSWER)
        .or_else(|e| OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(|_| e))
}

/// Writes a datetime as Salesforce answers it: UTC, milliseconds (truncated),
/// `+0000`.
pub fn format(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    format!("{}.{:03}+0000", seconds(at), at.millisecond())
}

/// A SOQL WHERE literal to the second, as documented: `2005-10-08T01:02:03Z`
/// (UTC, unquoted).
///
/// Sub-seconds are dropped (rounded down), so `SystemModstamp > literal`
/// may match rows at or just before `at` again: page with `>=` or `>` and
/// dedupe by Id.
pub fn soql_literal_seconds(at: OffsetDateTime) -> String {
    format!("{}Z", seconds(at.to_offset(UtcOffset::UTC)))
}

/// A SOQL WHERE literal to the millisecond: `2005-10-08T01:02:03.123Z`
/// (UTC, unquoted). Salesforce stores datetimes to the millisecond, so this
/// is exact for keyset paging on `SystemModstamp`. Not among docs/salesforce-facts.md §2's
/// documented forms; sfsim accepts it.
pub fn soql_literal_millis(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    format!("{}.{:03}Z", seconds(at), at.millisecond())
}

/// `YYYY-MM-DDThh:mm:ss` of a UTC datetime.
fn seconds(at: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// `#[serde(with = "fa_salesforce::datetime::field")]` for a record field
/// holding a Salesforce datetime.
pub mod field {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};
    use time::OffsetDateTime;

    /// Reads the field with [`super::parse`].
    ///
    /// # Errors
    /// When the value is not a string or not a Salesforce datetime.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OffsetDateTime, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        super::parse(&text).map_err(|e| D::Error::custom(format!("not a Salesforce datetime {text:?}: {e}")))
    }

    /// Writes the field with [`super::format`].
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(at: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format(*at))
    }
}

/// `#[serde(with = "fa_salesforce::datetime::optional_field", default)]`
/// for a nullable Salesforce datetime field.
pub mod optional_field {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};
    use time::OffsetDateTime;

    /// Reads `null` as `None`, else as [`super::field`] does.
    ///
    /// # Errors
    /// When the value is neither null nor a Salesforce datetime.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<OffsetDateTime>, D::Error> {
        match <Option<std::borrow::Cow<'de, str>>>::deserialize(deserializer)? {
            None => Ok(None),
            Some(text) => super::parse(&text)
                .map(Some)
                .map_err(|e| D::Error::custom(format!("not a Salesforce datetime {text:?}: {e}"))),
        }
    }

    /// Writes `None` as `null`.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(at: &Option<OffsetDateTime>, serializer: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => serializer.serialize_str(&super::format(*at)),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn answers_are_parsed() {
        fn check(text: &str, expected: Option<OffsetDateTime>) {
            assert_eq!(parse(text).ok(), expected, "{text}");
        }
        check("2013-05-20T20:49:32.000+0000", Some(datetime!(2013-05-20 20:49:32 UTC)));
        check("2026-11-01T00:00:59.123+0000", Some(datetime!(2026-11-01 00:00:59.123 UTC)));
        check("2026-11-01T09:00:00.000+0900", Some(datetime!(2026-11-01 00:00:00 UTC)));
        check("2026-11-01T00:00:00.000-0500", Some(datetime!(2026-11-01 05:00:00 UTC)));
        check("2013-05-20T20:49:32Z", Some(datetime!(2013-05-20 20:49:32 UTC)));
        check("2013-05-20T20:49:32.5+00:00", Some(datetime!(2013-05-20 20:49:32.5 UTC)));
        check("2013-05-20", None);
        check("2013-05-20T20:49:32.000", None);
        check("2013-13-20T20:49:32.000+0000", None);
        check("", None);
    }

    #[test]
    fn answers_are_written_back_as_salesforce_writes_them() {
        fn check(at: OffsetDateTime, expected: &str) {
            assert_eq!(format(at), expected);
            let back = parse(expected).expect("parses");
            assert_eq!(back, at.replace_nanosecond(u32::from(at.millisecond()) * 1_000_000).expect("millis"));
        }
        check(datetime!(2013-05-20 20:49:32 UTC), "2013-05-20T20:49:32.000+0000");
        check(datetime!(2026-11-01 09:00:00.123 +09:00), "2026-11-01T00:00:00.123+0000");
        check(datetime!(2026-11-01 00:00:00.1239 UTC), "2026-11-01T00:00:00.123+0000");
    }

    #[test]
    fn where_literals_are_utc_and_unquoted() {
        fn check(at: OffsetDateTime, seconds: &str, millis: &str) {
            assert_eq!(soql_literal_seconds(at), seconds);
            assert_eq!(soql_literal_millis(at), millis);
        }
        check(datetime!(2005-10-08 01:02:03 UTC), "2005-10-08T01:02:03Z", "2005-10-08T01:02:03.000Z");
        check(datetime!(2005-10-08 01:02:03.123 UTC), "2005-10-08T01:02:03Z", "2005-10-08T01:02:03.123Z");
        check(datetime!(2005-10-08 01:02:03.999999 UTC), "2005-10-08T01:02:03Z", "2005-10-08T01:02:03.999Z");
        check(datetime!(2005-10-08 10:02:03.5 +09:00), "2005-10-08T01:02:03Z", "2005-10-08T01:02:03.500Z");
        check(datetime!(2005-10-07 23:00:00 -05:00), "2005-10-08T04:00:00Z", "2005-10-08T04:00:00.000Z");
    }

    #[test]
    fn record_fields_deserialize_straight_into_datetimes() {
        #[derive(serde::Deserialize, serde::Serialize, Debug, PartialEq)]
        struct Row {
            #[serde(rename = "SystemModstamp", with = "field")]
            modstamp: OffsetDateTime,
            #[serde(rename = "ConvertedDate", with = "optional_field", default)]
            converted: Option<OffsetDateTime>,
        }
        fn check(json: &str, expected: Option<Row>) {
            assert_eq!(serde_json::from_str::<Row>(json).ok(), expected, "{json}");
        }
        let at = datetime!(2013-05-20 20:49:32 UTC);
        check(r#"{"SystemModstamp":"2013-05-20T20:49:32.000+0000"}"#, Some(Row { modstamp: at, converted: None }));
        check(
            r#"{"SystemModstamp":"2013-05-20T20:49:32.000+0000","ConvertedDate":null}"#,
            Some(Row { modstamp: at, converted: None }),
        );
        check(
            r#"{"SystemModstamp":"2013-05-20T20:49:32.000+0000","ConvertedDate":"2013-05-20T20:49:32.000+0000"}"#,
            Some(Row { modstamp: at, converted: Some(at) }),
        );
        check(r#"{"SystemModstamp":"yesterday"}"#, None);
        check(r#"{"SystemModstamp":null}"#, None);
        let json = serde_json::to_string(&Row { modstamp: at, converted: None }).expect("serializes");
        assert_eq!(json, r#"{"SystemModstamp":"2013-05-20T20:49:32.000+0000","ConvertedDate":null}"#);
    }
}
