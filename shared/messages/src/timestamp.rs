//! Serde for `_defs.json#/$defs/timestamp`: read any RFC 3339 date-time, write UTC with
//! milliseconds and a `Z`.
//!
//! One canonical spelling matters because timestamps end up inside AMQP `message_id`s (e.g.
//! `customer.upsert`'s `<modified_at>`): the same instant must always produce the same id, or
//! Front Agent's duplicate detection sees two messages.
//!
//! ```
//! # use serde::{Deserialize, Serialize};
//! # use time::OffsetDateTime;
//! #[derive(Serialize, Deserialize)]
//! struct Event {
//!     #[serde(with = "fa_messages::timestamp")]
//!     at: OffsetDateTime,
//!     #[serde(default, with = "fa_messages::timestamp::option")]
//!     ended_at: Option<OffsetDateTime>,
//! }
//! ```

use serde::{Deserialize, Deserializer, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// Formats `at` in UTC as `YYYY-MM-DDTHH:MM:SS.mmmZ`: always three fraction digits (truncated,
/// never rounded up into the next second) and always `Z`.
///
/// Years outside 0000–9999 cannot be written in RFC 3339; they come out with a sign or more
/// digits and the schemas refuse them. The serde functions of this module report an error
/// instead.
pub fn format_utc_millis(at: OffsetDateTime) -> String {
    let utc = at.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.millisecond()
    )
}

/// Parses any RFC 3339 date-time (any offset, any number of fraction digits), returning it in UTC.
///
/// # Errors
/// The parser's error when `text` is not an RFC 3339 date-time.
pub fn parse(text: &str) -> Result<OffsetDateTime, time::error::Parse> {
    Ok(OffsetDateTime::parse(text, &Rfc3339)?.to_offset(UtcOffset::UTC))
}

/// Serialises as [`format_utc_millis`] does.
///
/// # Errors
/// When the year is outside 0000–9999, which RFC 3339 cannot represent.
pub fn serialize<S: Serializer>(at: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    let year = at.to_offset(UtcOffset::UTC).year();
    if !(0..=9999).contains(&year) {
        return Err(serde::ser::Error::custom(format!("year {year} cannot be written as an RFC 3339 date-time")));
    }
    serializer.serialize_str(&format_utc_millis(*at))
}

/// Deserialises any RFC 3339 date-time, as [`parse`] does.
///
/// # Errors
/// When the value is not a string holding an RFC 3339 date-time.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OffsetDateTime, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    parse(&text).map_err(|err| serde::de::Error::custom(format!("not an RFC 3339 date-time: {text:?}: {err}")))
}

/// The same for `Option<OffsetDateTime>`, mapping `None` to and from JSON `null`.
///
/// Use with `#[serde(default)]` so a missing field is `None` too.
pub mod option {
    use super::*;

    /// Serialises `Some` as [`format_utc_millis`] does and `None` as `null`.
    ///
    /// # Errors
    /// When the year is outside 0000–9999, which RFC 3339 cannot represent.
    pub fn serialize<S: Serializer>(at: &Option<OffsetDateTime>, serializer: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => super::serialize(at, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Deserialises `null` as `None` and any RFC 3339 date-time as `Some`.
    ///
    /// # Errors
    /// When the value is neither `null` nor a string holding an RFC 3339 date-time.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<OffsetDateTime>, D::Error> {
        let text = <Option<std::borrow::Cow<'de, str>>>::deserialize(deserializer)?;
        text.map(|text| {
            parse(&text).map_err(|err| serde::de::Error::custom(format!("not an RFC 3339 date-time: {text:?}: {err}")))
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use time::macros::datetime;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct At {
        #[serde(with = "super")]
        at: OffsetDateTime,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct MaybeAt {
        #[serde(default, with = "super::option")]
        at: Option<OffsetDateTime>,
    }

    /// `expected` is the canonical spelling of an accepted input, `None` for a refused one.
    fn check(input: &str, expected: Option<&str>) {
        let json = serde_json::json!({ "at": input });
        match (serde_json::from_value::<At>(json), expected) {
            (Ok(got), Some(want)) => {
                let written = serde_json::to_value(&got).expect("serialises");
                assert_eq!(written["at"], want, "input {input:?}");
            }
            (Err(_), None) => {}
            (Ok(got), None) => panic!("input {input:?} was accepted as {got:?} but must be refused"),
            (Err(err), Some(want)) => panic!("input {input:?} was refused ({err}) but must give {want:?}"),
        }
    }

    #[test]
    fn any_rfc3339_date_time_is_read_and_written_in_utc_with_millis() {
        let cases: &[(&str, Option<&str>)] = &[
            ("2026-11-20T01:02:03.000Z", Some("2026-11-20T01:02:03.000Z")),
            ("2026-11-25T01:12:30Z", Some("2026-11-25T01:12:30.000Z")),
            ("2026-11-25T01:12:31.4Z", Some("2026-11-25T01:12:31.400Z")),
            ("2026-11-25T10:12:31.402+09:00", Some("2026-11-25T01:12:31.402Z")),
            ("2026-11-25T00:30:00-05:30", Some("2026-11-25T06:00:00.000Z")),
            ("2026-01-01T08:59:59+09:00", Some("2025-12-31T23:59:59.000Z")),
            ("2026-11-25T01:12:31+00:00", Some("2026-11-25T01:12:31.000Z")),
            // Sub-millisecond digits are cut, never rounded into the next second.
            ("2026-11-25T23:59:59.999999999Z", Some("2026-11-25T23:59:59.999Z")),
            ("0001-01-01T00:00:00Z", Some("0001-01-01T00:00:00.000Z")),
            ("2026-11-25t01:12:30z", Some("2026-11-25T01:12:30.000Z")),
            // `time` has no leap seconds; it reads one as the last millisecond before it.
            ("2026-12-31T23:59:60Z", Some("2026-12-31T23:59:59.999Z")),
            ("2026-11-25T01:12:30.Z", None),
            ("2026-11-25T01:12:30+0900", None),
            ("2026-11-25", None),
            ("2026-11-25T01:12:30", None),
            ("2026-11-25 01:12:30Z extra", None),
            ("2026-13-01T00:00:00Z", None),
            ("2026-02-30T00:00:00Z", None),
            ("2026-11-25T25:00:00Z", None),
            ("1764033150", None),
            ("", None),
        ];
        for &(input, expected) in cases {
            check(input, expected);
        }
    }

    #[test]
    fn a_number_is_not_a_timestamp() {
        assert!(serde_json::from_value::<At>(serde_json::json!({ "at": 1_764_033_150 })).is_err());
    }

    #[test]
    fn format_utc_millis_pads_every_part() {
        assert_eq!(format_utc_millis(datetime!(2026-01-02 03:04:05.006 UTC)), "2026-01-02T03:04:05.006Z");
        assert_eq!(format_utc_millis(datetime!(0099-01-02 03:04:05 +09:00)), "0099-01-01T18:04:05.000Z");
    }

    #[test]
    fn years_rfc3339_cannot_hold_are_refused_when_serialising() {
        let at = At { at: datetime!(-0001-06-01 00:00 UTC) };
        assert!(serde_json::to_string(&at).is_err());
    }

    #[test]
    fn the_option_variant_maps_null_and_missing_to_none() {
        let none: MaybeAt = serde_json::from_str(r#"{"at": null}"#).expect("null");
        assert_eq!(none, MaybeAt { at: None });
        let missing: MaybeAt = serde_json::from_str("{}").expect("missing");
        assert_eq!(missing, MaybeAt { at: None });
        assert_eq!(serde_json::to_string(&none).expect("serialises"), r#"{"at":null}"#);
        let some: MaybeAt = serde_json::from_str(r#"{"at": "2026-11-25T10:00:00+09:00"}"#).expect("some");
        assert_eq!(some, MaybeAt { at: Some(datetime!(2026-11-25 01:00 UTC)) });
        assert_eq!(serde_json::to_string(&some).expect("serialises"), r#"{"at":"2026-11-25T01:00:00.000Z"}"#);
        assert!(serde_json::from_str::<MaybeAt>(r#"{"at": "yesterday"}"#).is_err());
    }

    #[test]
    fn parsed_values_are_in_utc() {
        let at = parse("2026-11-25T10:00:00+09:00").expect("valid");
        assert_eq!(at.offset(), UtcOffset::UTC);
    }
}
