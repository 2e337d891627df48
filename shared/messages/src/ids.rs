//! Identifiers that travel in every message: tenants, events and Salesforce records.
//!
//! Each one is checked when it is built and when it is deserialised, so a value of these types
//! always matches the pattern `schemas/_defs.json` gives it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Why a string was refused as an identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidId {
    kind: &'static str,
    value: String,
    reason: &'static str,
}

impl InvalidId {
    /// Longest part of a refused value repeated in the error: the value comes from the wire and
    /// ends up in logs, so a megabyte of garbage must not be copied along with it.
    const MAX_ECHO: usize = 64;

    fn new(kind: &'static str, value: &str, reason: &'static str) -> Self {
        let value = match value.char_indices().nth(Self::MAX_ECHO) {
            Some((cut, _)) => format!("{}…", &value[..cut]),
            None => value.to_owned(),
        };
        Self { kind, value, reason }
    }

    /// What kind of identifier was expected, e.g. `"tenant_id"`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// What is wrong with the value, in words.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for InvalidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} {:?}: {}", self.kind, self.value, self.reason)
    }
}

impl std::error::Error for InvalidId {}

/// The check behind `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`, shared by tenant and event ids.
fn check_token(kind: &'static str, value: &str) -> Result<(), InvalidId> {
    let bytes = value.as_bytes();
    let Some(first) = bytes.first() else {
        return Err(InvalidId::new(kind, value, "must not be empty"));
    };
    if bytes.len() > 128 {
        return Err(InvalidId::new(kind, value, "must be at most 128 characters"));
    }
    if !first.is_ascii_alphanumeric() {
        return Err(InvalidId::new(kind, value, "must start with an ASCII letter or digit"));
    }
    if !bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err(InvalidId::new(kind, value, "may only contain ASCII letters, digits, '.', '_' and '-'"));
    }
    Ok(())
}

macro_rules! token_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks `value` against `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`.
            ///
            /// # Errors
            /// [`InvalidId`] when the value does not match.
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                check_token($kind, &value)?;
                Ok(Self(value))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, InvalidId> {
                Self::new(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidId;
            fn try_from(value: &str) -> Result<Self, InvalidId> {
                Self::new(value)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(value: &str) -> Result<Self, InvalidId> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

token_id!(
    /// Front Agent's tenant: one company, one Salesforce org. Also the AMQP header `tenant_id`.
    TenantId,
    "tenant_id"
);

token_id!(
    /// The id of one assist event, unique per assist; also its AMQP `message_id` and the Task's
    /// `CallObject`, which is what makes writing the Task idempotent.
    EventId,
    "event_id"
);

/// The alphabet Salesforce uses for the three check characters of an 18-character id.
const CHECKSUM_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// A Salesforce record id, always held in its 18-character form.
///
/// A 15-character id is case-sensitive; Salesforce appends three characters that encode where the
/// capitals are, so the 18-character form survives case-insensitive systems. Converting on the
/// way in means two spellings of one record compare equal and the connector only ever emits
/// 18-character ids, as `_defs.json` promises.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SalesforceId(String);

impl SalesforceId {
    /// Accepts 15 or 18 ASCII letters and digits; a 15-character id gets its check suffix.
    ///
    /// An 18-character id is kept as given: its suffix is not verified, because Salesforce is
    /// the authority on its own ids and a mismatch would only turn a working message into a
    /// dead-lettered one.
    ///
    /// # Errors
    /// [`InvalidId`] for any other length or a character outside `[A-Za-z0-9]`.
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
        let mut value = value.into();
        if !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(InvalidId::new("Salesforce id", &value, "may only contain ASCII letters and digits"));
        }
        match value.len() {
            18 => Ok(Self(value)),
            15 => {
                let suffix = checksum_suffix(value.as_bytes());
                value.extend(suffix.iter().map(|&b| char::from(b)));
                Ok(Self(value))
            }
            _ => Err(InvalidId::new("Salesforce id", &value, "must be 15 or 18 characters long")),
        }
    }

    /// Accepts only an 18-character id, for the fields the schemas pin to 18 characters.
    ///
    /// # Errors
    /// [`InvalidId`] unless the value is 18 ASCII letters and digits.
    pub fn new_18(value: impl Into<String>) -> Result<Self, InvalidId> {
        let value = value.into();
        if value.len() != 18 {
            return Err(InvalidId::new("Salesforce id", &value, "must be 18 characters long"));
        }
        Self::new(value)
    }

    /// The 18-character id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first three characters, which name the object type (`00Q` Lead, `003` Contact,
    /// `001` Account, `00T` Task, `005` User).
    pub fn key_prefix(&self) -> &str {
        // Construction guarantees 18 ASCII characters, so this slice cannot split a character.
        &self.0[..3]
    }
}

/// The three check characters of a 15-character id: for each 5-character chunk, bit `i` is set
/// when character `i` is an uppercase letter, and the 5-bit value picks a character of
/// [`CHECKSUM_ALPHABET`].
fn checksum_suffix(id15: &[u8]) -> [u8; 3] {
    let mut suffix = [0u8; 3];
    for (slot, chunk) in suffix.iter_mut().zip(id15.chunks(5)) {
        let bits =
            chunk.iter().enumerate().filter(|(_, c)| c.is_ascii_uppercase()).fold(0usize, |acc, (i, _)| acc | 1 << i);
        *slot = CHECKSUM_ALPHABET[bits];
    }
    suffix
}

impl TryFrom<String> for SalesforceId {
    type Error = InvalidId;
    fn try_from(value: String) -> Result<Self, InvalidId> {
        Self::new(value)
    }
}

impl TryFrom<&str> for SalesforceId {
    type Error = InvalidId;
    fn try_from(value: &str) -> Result<Self, InvalidId> {
        Self::new(value)
    }
}

impl FromStr for SalesforceId {
    type Err = InvalidId;
    fn from_str(value: &str) -> Result<Self, InvalidId> {
        Self::new(value)
    }
}

impl From<SalesforceId> for String {
    fn from(id: SalesforceId) -> String {
        id.0
    }
}

impl AsRef<str> for SalesforceId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SalesforceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Deserialisers for fields whose schema is stricter than `_defs.json#/$defs/salesforce_id`.
///
/// Serialising needs nothing special: a [`SalesforceId`] is always 18 characters.
pub(crate) mod strict {
    use super::*;

    fn with_prefix<'de, D: Deserializer<'de>>(deserializer: D, prefix: &'static str) -> Result<SalesforceId, D::Error> {
        let raw = String::deserialize(deserializer)?;
        let id = SalesforceId::new_18(raw).map_err(serde::de::Error::custom)?;
        if !id.as_str().starts_with(prefix) {
            return Err(serde::de::Error::custom(format!("Salesforce id {id} must start with {prefix}")));
        }
        Ok(id)
    }

    /// `^[a-zA-Z0-9]{18}$`, e.g. `customer.upsert`'s `source.id`.
    pub(crate) fn exactly_18<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SalesforceId, D::Error> {
        with_prefix(deserializer, "")
    }

    /// `^00T[a-zA-Z0-9]{15}$`: a Task.
    pub(crate) fn task_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SalesforceId, D::Error> {
        with_prefix(deserializer, "00T")
    }

    /// `^005[a-zA-Z0-9]{15}$`: a User.
    pub(crate) fn user_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SalesforceId, D::Error> {
        with_prefix(deserializer, "005")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `expected` is the stored form for an accepted input, `None` for a refused one.
    fn check<T, E>(parse: impl Fn(&str) -> Result<T, E>, input: &str, expected: Option<&str>)
    where
        T: AsRef<str>,
        E: fmt::Debug,
    {
        match (parse(input), expected) {
            (Ok(got), Some(want)) => assert_eq!(got.as_ref(), want, "input {input:?}"),
            (Err(_), None) => {}
            (Ok(got), None) => panic!("input {input:?} was accepted as {:?} but must be refused", got.as_ref()),
            (Err(err), Some(want)) => panic!("input {input:?} was refused ({err:?}) but must give {want:?}"),
        }
    }

    #[test]
    fn tenant_and_event_ids_follow_the_defs_pattern() {
        let max = "a".repeat(128);
        let too_long = "a".repeat(129);
        let cases: &[(&str, Option<&str>)] = &[
            ("acme-jp", Some("acme-jp")),
            ("a", Some("a")),
            ("0", Some("0")),
            ("as_01JDQ8Z6X0M2T4K9P3W7R5B1C8", Some("as_01JDQ8Z6X0M2T4K9P3W7R5B1C8")),
            ("A.b_c-D", Some("A.b_c-D")),
            (&max, Some(&max)),
            (&too_long, None),
            ("", None),
            ("-acme", None),
            ("_acme", None),
            (".acme", None),
            ("acme jp", None),
            ("acme/jp", None),
            ("acme:jp", None),
            ("アクメ", None),
            ("acme\n", None),
        ];
        for &(input, expected) in cases {
            check(TenantId::from_str, input, expected);
            check(EventId::from_str, input, expected);
        }
    }

    #[test]
    fn salesforce_ids_are_stored_in_their_18_character_form() {
        let cases: &[(&str, Option<&str>)] = &[
            // Salesforce's own documented pair.
            ("0015000000Gv7qJ", Some("0015000000Gv7qJAAR")),
            ("001000000000001", Some("001000000000001AAA")),
            ("ABCDEABCDEABCDE", Some("ABCDEABCDEABCDE555")),
            ("abcdeabcdeabcde", Some("abcdeabcdeabcdeAAA")),
            ("A0000000000000e", Some("A0000000000000eBAA")),
            ("0000A00000B0000", Some("0000A00000B0000QAB")),
            // An 18-character id is trusted as Salesforce sent it, suffix included.
            ("0035j00000XyZabAAF", Some("0035j00000XyZabAAF")),
            ("00Q5j00000abcdeeaf", Some("00Q5j00000abcdeeaf")),
            ("", None),
            ("0015000000Gv7q", None),
            ("0015000000Gv7qJA", None),
            ("0015000000Gv7qJAA", None),
            ("0015000000Gv7qJAAR0", None),
            ("0015000000Gv7q-", None),
            ("0015000000Gv7qJAA ", None),
            ("0015000000Gv7qé", None),
        ];
        for &(input, expected) in cases {
            check(SalesforceId::from_str, input, expected);
        }
    }

    #[test]
    fn the_strict_constructor_refuses_15_character_ids() {
        check(|s: &str| SalesforceId::new_18(s), "0035j00000XyZabAAF", Some("0035j00000XyZabAAF"));
        check(|s: &str| SalesforceId::new_18(s), "0015000000Gv7qJ", None);
    }

    #[test]
    fn key_prefix_is_the_first_three_characters() {
        let id = SalesforceId::new("00Q5j00000ABCdeEAH").expect("valid id");
        assert_eq!(id.key_prefix(), "00Q");
        assert_eq!(id.to_string(), "00Q5j00000ABCdeEAH");
    }

    #[test]
    fn two_spellings_of_one_record_are_equal() {
        assert_eq!(SalesforceId::new("0015000000Gv7qJ").ok(), SalesforceId::new("0015000000Gv7qJAAR").ok());
    }

    #[test]
    fn deserialising_applies_the_same_checks() {
        let id: SalesforceId = serde_json::from_str(r#""0015000000Gv7qJ""#).expect("15-char id");
        assert_eq!(id.as_str(), "0015000000Gv7qJAAR");
        assert_eq!(serde_json::to_string(&id).expect("serialises"), r#""0015000000Gv7qJAAR""#);
        assert!(serde_json::from_str::<SalesforceId>(r#""0015000000Gv7q""#).is_err());
        assert!(serde_json::from_str::<TenantId>(r#""-acme""#).is_err());
        assert!(serde_json::from_str::<EventId>(r#""""#).is_err());
        let tenant: TenantId = serde_json::from_str(r#""acme-jp""#).expect("valid tenant");
        assert_eq!(tenant.as_str(), "acme-jp");
    }

    #[test]
    fn errors_do_not_echo_huge_values() {
        let huge = "x".repeat(10_000) + " ";
        let err = TenantId::new(huge).expect_err("too long");
        assert!(err.to_string().len() < 200, "{err}");
    }
}
