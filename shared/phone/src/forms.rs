//! From an [`E164`] back to the ways it may have been typed into Salesforce.

use phonenumber::Mode;

use crate::{E164, e164::formatted};

/// Japan's country code: national forms are written for Japanese numbers,
/// the ones [`normalize`](crate::normalize) reads without a country code.
const JAPAN_CODE: u16 = 81;

/// The ways `number` may be typed into a Salesforce phone field, for a SOQL
/// equality query (`Phone IN (…)`) while the search index lags.
///
/// For `+81312345678`: `+81312345678`, `+81 3-1234-5678`, `+81-3-1234-5678`,
/// `+81 3 1234 5678`, `+81(0)3-1234-5678`, `+81 03-1234-5678`,
/// `03-1234-5678`, `0312345678`, `03 1234 5678`, `(03)1234-5678`,
/// `(03) 1234-5678`, `03(1234)5678` and the full-width `０３－１２３４－５６７８`.
/// The grouping is libphonenumber's (so `090-1234-5678`, `0120-123-456`).
/// National forms are only written for Japanese numbers; other numbers get
/// the international ones.
///
/// Every form normalises back to `number` with [`Region::JAPAN`](crate::Region::JAPAN);
/// the list starts with the E.164 text, has no duplicates, at most 16 forms,
/// and no form contains a quote or a backslash (only digits, spaces and
/// `+-()`, and full-width digits, `－` and `　`), so each can sit in a SOQL
/// string literal as it is.
///
/// ```
/// use fa_phone::{stored_forms, E164};
///
/// let forms = stored_forms(&E164::parse("+81312345678").expect("E.164"));
/// assert!(forms.iter().any(|form| form == "03-1234-5678"));
/// ```
pub fn stored_forms(number: &E164) -> Vec<String> {
    let mut forms = Forms(Vec::with_capacity(16));
    forms.push(number.as_str().to_owned());
    let Ok(parsed) = phonenumber::parse(None, number.as_str()) else {
        return forms.0;
    };
    let code = number.country_code();

    // "+81 3-1234-5678": libphonenumber's international format.
    let Some(international) = formatted(&parsed, Mode::International) else {
        return forms.0;
    };
    let prefix = format!("+{code} ");
    let groups: Vec<&str> = international
        .strip_prefix(&prefix)
        .unwrap_or(number.national_significant())
        .split([' ', '-'])
        .filter(|group| !group.is_empty())
        .collect();
    let hyphenated = groups.join("-");
    forms.push(international.clone());
    forms.push(format!("+{code}-{hyphenated}"));
    forms.push(format!("+{code} {}", groups.join(" ")));

    if code != JAPAN_CODE {
        return forms.0;
    }
    // Japanese habits: the trunk zero kept after the country code.
    forms.push(format!("+{code}(0){hyphenated}"));
    forms.push(format!("+{code} 0{hyphenated}"));

    // "03-1234-5678": libphonenumber's national format, and its variants.
    let Some(national) = formatted(&parsed, Mode::National) else {
        return forms.0;
    };
    let groups: Vec<&str> = national.split([' ', '-']).filter(|group| !group.is_empty()).collect();
    forms.push(national.clone());
    forms.push(groups.concat());
    forms.push(groups.join(" "));
    if let [area, rest @ ..] = groups.as_slice()
        && !rest.is_empty()
    {
        forms.push(format!("({area}){}", rest.join("-")));
        forms.push(format!("({area}) {}", rest.join("-")));
        if let [local, subscriber] = rest {
            forms.push(format!("{area}({local}){subscriber}"));
        }
    }
    forms.push(full_width(&national));
    forms.0
}

/// An order-keeping set: SOQL `IN` lists need no repeats.
struct Forms(Vec<String>);

impl Forms {
    fn push(&mut self, form: String) {
        if !self.0.contains(&form) {
            self.0.push(form);
        }
    }
}

/// Digits as `０`–`９`, hyphens as `－` (U+FF0D) and spaces as `　`, as a
/// Japanese IME types them.
fn full_width(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(u32::from(c) - u32::from('0') + 0xFF10).unwrap_or(c),
            '-' => '－',
            ' ' => '　',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Region, normalize};

    fn e164(text: &str) -> E164 {
        E164::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn check(number: &str, expected: &[&str]) {
        let forms = stored_forms(&e164(number));
        for form in expected {
            assert!(forms.iter().any(|f| f == form), "{form:?} missing from {forms:?}");
        }
    }

    #[test]
    fn forms_include_the_usual_ways_of_typing_a_number() {
        check(
            "+81312345678",
            &[
                "+81312345678",
                "+81 3-1234-5678",
                "+81-3-1234-5678",
                "+81 3 1234 5678",
                "+81(0)3-1234-5678",
                "03-1234-5678",
                "0312345678",
                "(03)1234-5678",
                "03(1234)5678",
                "03 1234 5678",
                "０３－１２３４－５６７８",
            ],
        );
        check(
            "+819012345678",
            &[
                "+819012345678",
                "+81 90-1234-5678",
                "+81-90-1234-5678",
                "090-1234-5678",
                "09012345678",
                "090 1234 5678",
                "(090)1234-5678",
            ],
        );
        check("+81120123456", &["0120-123-456", "0120123456", "+81 120-123-456"]);
        check("+14155552671", &["+14155552671", "+1 415-555-2671", "+1-415-555-2671"]);
        check("+442079460958", &["+44 20 7946 0958", "+44-20-7946-0958"]);
    }

    #[test]
    fn every_form_normalises_back_to_its_number() {
        for number in [
            "+81312345678",
            "+819012345678",
            "+818012345678",
            "+81120123456",
            "+81661234567",
            "+81452123456",
            "+14155552671",
            "+442079460958",
        ] {
            let number = e164(number);
            let forms = stored_forms(&number);
            assert_eq!(forms.first(), Some(&number.to_string()));
            assert!(forms.len() <= 16, "{forms:?}");
            for (i, form) in forms.iter().enumerate() {
                assert_eq!(
                    normalize(form, Region::JAPAN).as_ref(),
                    Some(&number),
                    "{form:?} does not normalise back to {number}"
                );
                assert!(!forms[..i].contains(form), "{form:?} repeated in {forms:?}");
                assert!(!form.contains(['\'', '"', '\\']), "{form:?}");
            }
        }
    }
}
