//! Field values and records, and how they are read from and written to JSON
//! the way Salesforce does it.

use std::{cmp::Ordering, collections::BTreeMap};

use time::{Date, OffsetDateTime, UtcOffset, format_description::FormatItem, macros::format_description};

use crate::schema::{FieldType, ObjectSchema};

/// One field's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value (a null field).
    Null,
    /// A checkbox.
    Bool(bool),
    /// An integer field.
    Int(i64),
    /// A number with a fraction.
    Double(f64),
    /// Text of any kind: text, phone, e-mail, picklist, id, reference.
    Text(String),
    /// A date field.
    Date(Date),
    /// A datetime field, in UTC.
    DateTime(OffsetDateTime),
}

/// How Salesforce writes datetimes in JSON: milliseconds and an offset
/// without a colon, always UTC (`2026-11-20T01:02:03.000+0000`).
const SF_DATETIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+0000");
const DATE: &[FormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// Formats an instant as Salesforce writes it.
pub fn format_datetime(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC).format(SF_DATETIME).unwrap_or_default()
}

/// Formats a date as `YYYY-MM-DD`.
pub fn format_date(date: Date) -> String {
    date.format(DATE).unwrap_or_default()
}

/// Reads a datetime as Salesforce accepts one in a write: RFC 3339
/// (`Z` or `+09:00`) or Salesforce's own `+0000` form.
pub fn parse_datetime(text: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::{Iso8601, Rfc3339};
    OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(text, &Iso8601::DEFAULT))
        .ok()
        .map(|t| t.to_offset(UtcOffset::UTC))
}

/// Reads `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<Date> {
    Date::parse(text, DATE).ok()
}

impl Value {
    /// True for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The text of a text value.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The value as Salesforce writes it in a JSON record.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Double(d) => serde_json::Number::from_f64(*d).map_or(serde_json::Value::Null, Into::into),
            Value::Text(s) => s.clone().into(),
            Value::Date(d) => format_date(*d).into(),
            Value::DateTime(t) => format_datetime(*t).into(),
        }
    }

    /// Writes the value as [`Value::to_json`] would render it, straight into
    /// `out` (no intermediate JSON tree: paging writes millions of them).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        // Writing into a Vec cannot fail.
        let _ = match self {
            Value::Null => out.write_all(b"null"),
            Value::Bool(b) => out.write_all(if *b { b"true" } else { b"false" }),
            Value::Int(i) => write!(out, "{i}"),
            Value::Double(_) => serde_json::to_writer(&mut *out, &self.to_json()).map_err(std::io::Error::other),
            Value::Text(s) => serde_json::to_writer(&mut *out, s).map_err(std::io::Error::other),
            Value::Date(d) => write!(out, "\"{:04}-{:02}-{:02}\"", d.year(), u8::from(d.month()), d.day()),
            Value::DateTime(t) => {
                let t = t.to_offset(UtcOffset::UTC);
                write!(
                    out,
                    "\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000\"",
                    t.year(),
                    u8::from(t.month()),
                    t.day(),
                    t.hour(),
                    t.minute(),
                    t.second(),
                    t.millisecond()
                )
            }
        };
    }

    /// Reads a JSON value written to a field of type `ty`; `Err` says what
    /// Salesforce would say is wrong with it (without the field name).
    pub fn from_json(ty: &FieldType, json: &serde_json::Value) -> Result<Self, String> {
        use serde_json::Value as J;
        if json.is_null() {
            return Ok(match ty {
                FieldType::Boolean => Value::Bool(false),
                _ => Value::Null,
            });
        }
        match ty {
            FieldType::Boolean => match json {
                J::Bool(b) => Ok(Value::Bool(*b)),
                J::String(s) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") => {
                    Ok(Value::Bool(s.eq_ignore_ascii_case("true")))
                }
                _ => Err(format!("value not of required type: {json}")),
            },
            FieldType::Int => match json {
                J::Number(n) if n.is_i64() => Ok(Value::Int(n.as_i64().unwrap_or_default())),
                J::Number(n) => n
                    .as_f64()
                    .filter(|f| f.fract() == 0.0)
                    .map(|f| Value::Int(f as i64))
                    .ok_or_else(|| format!("value not of required type: {json}")),
                J::String(s) => {
                    s.trim().parse().map(Value::Int).map_err(|_| format!("value not of required type: {s}"))
                }
                _ => Err(format!("value not of required type: {json}")),
            },
            FieldType::Double => match json {
                J::Number(n) => Ok(Value::Double(n.as_f64().unwrap_or_default())),
                J::String(s) => {
                    s.trim().parse().map(Value::Double).map_err(|_| format!("value not of required type: {s}"))
                }
                _ => Err(format!("value not of required type: {json}")),
            },
            FieldType::Date => match json {
                J::String(s) => parse_date(s.get(..10).unwrap_or(s))
                    .map(Value::Date)
                    .ok_or_else(|| format!("value not of required type: {s}")),
                _ => Err(format!("value not of required type: {json}")),
            },
            FieldType::DateTime => match json {
                J::String(s) => {
                    parse_datetime(s).map(Value::DateTime).ok_or_else(|| format!("value not of required type: {s}"))
                }
                _ => Err(format!("value not of required type: {json}")),
            },
            _ => match json {
                J::String(s) if s.is_empty() => Ok(Value::Null),
                J::String(s) => Ok(Value::Text(s.clone())),
                J::Number(n) => Ok(Value::Text(n.to_string())),
                J::Bool(b) => Ok(Value::Text(b.to_string())),
                _ => Err(format!("value not of required type: {json}")),
            },
        }
    }

    /// Orders two values of one field as SOQL does; nulls are handled by the
    /// caller (NULLS FIRST / LAST). Text compares case-insensitively.
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (Value::Double(a), Value::Double(b)) => a.partial_cmp(b),
            (Value::Int(a), Value::Double(b)) => (*a as f64).partial_cmp(b),
            (Value::Double(a), Value::Int(b)) => a.partial_cmp(&(*b as f64)),
            (Value::Text(a), Value::Text(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase()).then_with(|| a.cmp(b))),
            (Value::Date(a), Value::Date(b)) => Some(a.cmp(b)),
            (Value::DateTime(a), Value::DateTime(b)) => Some(a.cmp(b)),
            (Value::Date(a), Value::DateTime(b)) => Some(a.cmp(&b.date())),
            (Value::DateTime(a), Value::Date(b)) => Some(a.date().cmp(b)),
            _ => None,
        }
    }
}

/// One record of one org.
#[derive(Debug, Clone)]
pub struct Record {
    /// Its sObject type.
    pub object: &'static ObjectSchema,
    /// Field values by API name (as the schema spells it). `Id` is among them.
    pub fields: BTreeMap<&'static str, Value>,
}

impl Record {
    /// The record's id.
    pub fn id(&self) -> &str {
        self.fields.get("Id").and_then(Value::as_text).unwrap_or_default()
    }

    /// A field's value by name (case-insensitive); `Null` when unset or
    /// unknown.
    pub fn get(&self, name: &str) -> &Value {
        static NULL: Value = Value::Null;
        match self.object.field(name) {
            Some(field) => self.fields.get(field.name).unwrap_or(&NULL),
            None => &NULL,
        }
    }
}

/// The digits of a phone number as typed, full-width ones included
/// (`０３－１２３４` gives `031234`): how duplicate rules and SOSL compare
/// phones regardless of formatting.
pub fn phone_digits(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '0'..='9' => Some(c),
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32),
            _ => None,
        })
        .collect()
}

/// Lengths as Salesforce counts them (docs/behaviour.md §4, "Lengths"): UTF-16 code units (a Japanese
/// character counts one, an emoji two).
pub fn salesforce_length(text: &str) -> usize {
    text.encode_utf16().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_are_written_as_salesforce_writes_them() {
        let at = parse_datetime("2026-11-20T10:02:03.5+09:00").expect("parses");
        assert_eq!(format_datetime(at), "2026-11-20T01:02:03.500+0000");
        assert_eq!(parse_datetime("2026-11-20T01:02:03.000+0000"), Some(at - time::Duration::milliseconds(500)));
    }

    #[test]
    fn writing_json_directly_matches_the_json_tree() {
        let values = [
            Value::Null,
            Value::Bool(true),
            Value::Int(-42),
            Value::Double(1.5),
            Value::Text("佐藤 \"花子\"\n".to_owned()),
            Value::Date(parse_date("2026-01-05").expect("date")),
            Value::DateTime(parse_datetime("2026-11-20T10:02:03.5+09:00").expect("datetime")),
        ];
        for value in values {
            let mut out = Vec::new();
            value.write_json(&mut out);
            assert_eq!(String::from_utf8(out).expect("utf-8"), value.to_json().to_string(), "{value:?}");
        }
    }

    #[test]
    fn lengths_count_utf16_units() {
        assert_eq!(salesforce_length("佐藤"), 2);
        assert_eq!(salesforce_length("😀"), 2);
        assert_eq!(salesforce_length("abc"), 3);
    }
}
