//! The canonical form numbers are compared in.

use std::fmt::{self, Write as _};

use phonenumber::{Mode, PhoneNumber, metadata::DATABASE};

/// A valid phone number in E.164: `+`, the country code and the national
/// significant number, digits only (`+81312345678`).
///
/// Only [`normalize`](crate::normalize) and [`E164::parse`] make one, so
/// holding an `E164` means the number is valid for libphonenumber; two
/// `E164`s are the same number exactly when they are equal. It serialises as
/// the plain string, and deserialising checks it like [`E164::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct E164(String);

/// Text that is not a valid phone number already in E.164.
///
/// The number itself is left out of the message, as it is personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidE164 {
    /// Not `+` followed by 7 to 15 digits, the first not `0`.
    #[error(
        "not a phone number in E.164 form: expected `+`, a country code and 7 to 15 digits in all, \
         nothing else (e.g. `+81312345678`); use fa_phone::normalize for numbers as people type them"
    )]
    Syntax,
    /// Shaped like E.164 but not a valid number in its country's numbering plan.
    #[error("not a valid phone number: the digits do not fit the numbering plan of their country code")]
    NotValid,
}

impl E164 {
    /// Reads text that is already in E.164, strictly: `^\+[1-9][0-9]{6,14}$`
    /// and a valid number. No spaces, hyphens or national forms; for those use
    /// [`normalize`](crate::normalize).
    pub fn parse(text: &str) -> Result<Self, InvalidE164> {
        let digits = text.strip_prefix('+').ok_or(InvalidE164::Syntax)?;
        let shaped =
            (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        if !shaped {
            return Err(InvalidE164::Syntax);
        }
        let number = phonenumber::parse(None, text).map_err(|_| InvalidE164::NotValid)?;
        // Canonical only: the E.164 text must be exactly what we would write.
        match E164::from_valid(&number) {
            Some(e164) if e164.0 == text => Ok(e164),
            _ => Err(InvalidE164::NotValid),
        }
    }

    /// The E.164 of a parsed number, if it is valid.
    ///
    /// Written from the number's parts, as phonenumber's E.164 mode writes
    /// it (`+`, the country code, the national number with its leading
    /// zeros), without its formatter: that one first looks for the
    /// country's national format through every format's leading-digits
    /// pattern, which E.164 does not use and which costs more than the rest
    /// of [`normalize`](crate::normalize).
    pub(crate) fn from_valid(number: &PhoneNumber) -> Option<Self> {
        if !crate::valid::is_valid(number) {
            return None;
        }
        let national = number.national();
        let mut text = String::with_capacity(16);
        write!(text, "+{}", number.code().value()).ok()?;
        text.extend(std::iter::repeat_n('0', usize::from(national.zeros())));
        write!(text, "{}", national.value()).ok()?;
        Some(E164(text))
    }

    /// An E.164 already known valid: `+`, the country code and a national
    /// number that its country's patterns accept (see [`crate::japan`]).
    pub(crate) fn from_checked(text: String) -> Self {
        E164(text)
    }

    /// The number as E.164 text, e.g. `"+81312345678"`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The country calling code, e.g. `81` for Japan.
    pub fn country_code(&self) -> u16 {
        self.split().0
    }

    /// The national significant number: the digits after the country code,
    /// without any national (trunk) prefix, e.g. `"312345678"` for
    /// `+81312345678`.
    pub fn national_significant(&self) -> &str {
        let (_, len) = self.split();
        &self.0[1 + len..]
    }

    /// The country code and its length in digits. Country codes are prefix
    /// free, so the first prefix libphonenumber knows is the code.
    fn split(&self) -> (u16, usize) {
        let digits = &self.0[1..];
        (1..=3)
            .filter_map(|len| {
                let code = digits.get(..len)?.parse::<u16>().ok()?;
                DATABASE.by_code(&code).map(|_| (code, len))
            })
            .next()
            // Unreachable for a valid number; keep the whole tail rather than panic.
            .unwrap_or((0, 0))
    }
}

/// `number` in `mode`, or `None` where phonenumber's formatter fails (it
/// reports an unknown country code as a `fmt::Error`, on which `to_string`
/// would panic).
pub(crate) fn formatted(number: &PhoneNumber, mode: Mode) -> Option<String> {
    let mut text = String::new();
    fmt::write(&mut text, format_args!("{}", number.format().mode(mode))).ok()?;
    Some(text)
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for E164 {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for E164 {
    type Err = InvalidE164;

    /// Same as [`E164::parse`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        E164::parse(text)
    }
}

impl TryFrom<String> for E164 {
    type Error = InvalidE164;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        E164::parse(&text)
    }
}

impl From<E164> for String {
    fn from(number: E164) -> String {
        number.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Result<(), InvalidE164>) {
        let got = E164::parse(text);
        assert_eq!(got.as_ref().map(|_| ()).map_err(|e| *e), expected, "E164::parse({text:?})");
        if let Ok(number) = got {
            assert_eq!(number.as_str(), text);
        }
    }

    #[test]
    fn parse_takes_only_canonical_e164_text() {
        check("+81312345678", Ok(()));
        check("+819012345678", Ok(()));
        check("+14155552671", Ok(()));
        check("81312345678", Err(InvalidE164::Syntax));
        check("+0312345678", Err(InvalidE164::Syntax));
        check("+81 3 1234 5678", Err(InvalidE164::Syntax));
        check("+81-3-1234-5678", Err(InvalidE164::Syntax));
        check("", Err(InvalidE164::Syntax));
        check("+", Err(InvalidE164::Syntax));
        check("+８１３１２３４５６７８", Err(InvalidE164::Syntax));
        check("+1234567890123456", Err(InvalidE164::Syntax));
        check("+8131234", Err(InvalidE164::NotValid));
        check("+810312345678", Err(InvalidE164::NotValid));
    }

    #[test]
    fn country_code_and_national_significant_number_split_the_digits() {
        for (text, code, national) in [
            ("+81312345678", 81, "312345678"),
            ("+819012345678", 81, "9012345678"),
            ("+14155552671", 1, "4155552671"),
            ("+442079460958", 44, "2079460958"),
            // Italy keeps its leading zero in E.164.
            ("+390669821234", 39, "0669821234"),
        ] {
            let number = E164::parse(text).expect("valid E.164");
            assert_eq!((number.country_code(), number.national_significant()), (code, national));
        }
    }

    #[test]
    fn serialises_as_a_json_string_and_checks_what_it_reads() {
        let number = E164::parse("+81312345678").expect("valid E.164");
        let json = serde_json::to_string(&number).expect("serialises");
        assert_eq!(json, r#""+81312345678""#);
        assert_eq!(serde_json::from_str::<E164>(&json).ok(), Some(number));
        for bad in [r#""03-1234-5678""#, r#""+8131234""#, "81312345678", "null"] {
            assert!(serde_json::from_str::<E164>(bad).is_err(), "{bad} deserialised");
        }
    }

    #[test]
    fn the_text_is_what_phonenumbers_formatter_writes() {
        for text in ["+81312345678", "+819012345678", "+390669821234", "+442079460958", "+80012345678", "+14155552671"]
        {
            let number = phonenumber::parse(None, text).expect("parses");
            assert_eq!(E164::from_valid(&number).map(String::from), formatted(&number, Mode::E164), "{text}");
        }
    }

    #[test]
    fn displays_as_its_text() {
        let number = E164::parse("+81312345678").expect("valid E.164");
        assert_eq!(number.to_string(), "+81312345678");
    }
}
