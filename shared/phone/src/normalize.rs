//! From a number as someone typed it to its [`E164`].

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;

use crate::{E164, Region, japan::Reading};

/// The E.164 form of a number as people store it, reading numbers without a
/// country code in `default_region` (Front Agent passes [`Region::JAPAN`], so
/// `03-1234-5678` is `+81312345678`); `None` when it is not a valid number.
///
/// Accepted: digits with hyphens, brackets, spaces and dots in any grouping;
/// a leading `+` and country code, also with the Japanese trunk zero kept as
/// `+81 (0)3-…` or `+81 03-…`; full-width characters (`０３－１２３４`,
/// `＋８１`) and the dash look-alikes `‐ ‑ ‒ – — ― − ー ｰ`. A trailing
/// extension (`内線123`, `ext. 12`, `x12`, `#12`) is dropped: the result is
/// the main number, which is what a caller's number is compared with.
///
/// Refused (`None`): empty text, words (`なし`, `unknown`, `TBD`), any other
/// character, and numbers that are too short, too long or not in use in
/// their country's numbering plan (`03-1234`, `12345`).
///
/// ```
/// use fa_phone::{normalize, Region};
///
/// let number = normalize("０３－１２３４－５６７８", Region::JAPAN).expect("a Tokyo number");
/// assert_eq!(number.as_str(), "+81312345678");
/// assert_eq!(normalize("+81 3-1234-5678 内線12", Region::JAPAN), Some(number));
/// assert_eq!(normalize("なし", Region::JAPAN), None);
/// ```
pub fn normalize(stored: &str, default_region: Region) -> Option<E164> {
    let text = simplify(stored);
    let main = without_extension(&text)?;
    let allowed = |c: char| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')' | '.');
    if !main.chars().all(allowed) || !main.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    if default_region == Region::JAPAN {
        match crate::japan::usual(main) {
            Reading::Valid(number) => return Some(number),
            Reading::NotValid => return None,
            Reading::Unusual => {}
        }
    }
    let number = phonenumber::parse(Some(default_region.id()), main).ok()?;
    E164::from_valid(&number)
}

/// NFKC (full-width digits, `＋`, brackets and the ideographic space become
/// ASCII), every dash look-alike becomes `-`, any whitespace a space.
///
/// Most numbers are typed in ASCII, where NFKC changes nothing and no dash
/// look-alike can occur: those are only checked, and borrowed as they are
/// when they hold no whitespace but spaces.
fn simplify(stored: &str) -> Cow<'_, str> {
    if stored.is_ascii() {
        if !stored.bytes().any(|b| b != b' ' && char::from(b).is_whitespace()) {
            return Cow::Borrowed(stored);
        }
        return Cow::Owned(stored.chars().map(|c| if c.is_whitespace() { ' ' } else { c }).collect());
    }
    Cow::Owned(
        stored
            .nfkc()
            .map(|c| match c {
                // Hyphen, non-breaking hyphen, figure dash, en and em dash,
                // horizontal bar, minus sign, katakana prolonged sound mark (ｰ is
                // ー after NFKC), small and full-width hyphen-minus.
                '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{30FC}' | '\u{FE63}' | '\u{FF0D}' => '-',
                c if c.is_whitespace() => ' ',
                c => c,
            })
            .collect(),
    )
}

/// What marks an extension, compared ignoring ASCII case.
const EXTENSION_MARKERS: [&str; 4] = ["内線", "ext", "x", "#"];

/// The number before a trailing extension, if any. `None` when what follows
/// an extension marker is more than an extension (e.g. the `x` of `fax`).
fn without_extension(text: &str) -> Option<&str> {
    let Some((at, len)) = first_marker(text) else {
        return Some(text.trim());
    };
    let extension = text[at + len..].trim_start_matches(['.', ':']);
    let extension_only = extension.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | ')'));
    if !extension_only {
        return None;
    }
    Some(text[..at].trim_end_matches([' ', '(', ',', ';']))
}

/// Where the first extension marker starts, and its length in bytes. Every
/// marker starts with an ASCII byte or a UTF-8 lead byte, so the offset is a
/// character boundary.
fn first_marker(text: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    (0..bytes.len()).find_map(|at| {
        let rest = &bytes[at..];
        EXTENSION_MARKERS
            .iter()
            .find(|marker| rest.get(..marker.len()).is_some_and(|head| head.eq_ignore_ascii_case(marker.as_bytes())))
            .map(|marker| (at, marker.len()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<&str>) {
        let got = normalize(input, Region::JAPAN);
        assert_eq!(got.as_ref().map(E164::as_str), expected, "normalize({input:?}, JP)");
    }

    #[test]
    fn japanese_numbers_as_people_type_them_normalise_to_e164() {
        let tokyo = Some("+81312345678");
        for input in [
            "03-1234-5678",
            "(03)1234-5678",
            "(03) 1234-5678",
            "03(1234)5678",
            "03 1234 5678",
            "0312345678",
            "03.1234.5678",
            " 03-1234-5678 ",
            "+81312345678",
            "+81 3-1234-5678",
            "+81-3-1234-5678",
            "+81 3 1234 5678",
            "+81(0)3-1234-5678",
            "+81 (0)3-1234-5678",
            "+81 03-1234-5678",
            "81312345678",
            "０３－１２３４－５６７８",
            "０３ー１２３４ー５６７８",
            "03ｰ1234ｰ5678",
            "03‐1234‐5678",
            "03−1234−5678",
            "03–1234–5678",
            "（０３）１２３４－５６７８",
            "＋８１　３－１２３４－５６７８",
            "03-1234-5678 内線123",
            "03-1234-5678（内線123）",
            "03-1234-5678 ext. 12",
            "03-1234-5678 x12",
            "03-1234-5678 #12",
        ] {
            check(input, tokyo);
        }
        check("090-1234-5678", Some("+819012345678"));
        check("080 1234 5678", Some("+818012345678"));
        check("０９０－１２３４－５６７８", Some("+819012345678"));
        check("0120-123-456", Some("+81120123456"));
        check("06-6123-4567", Some("+81661234567"));
    }

    #[test]
    fn numbers_with_a_country_code_keep_their_country() {
        check("+1 415-555-2671", Some("+14155552671"));
        check("+1 (415) 555-2671", Some("+14155552671"));
        check("+44 20 7946 0958", Some("+442079460958"));
        check("010-81-3-1234-5678", Some("+81312345678"));
    }

    #[test]
    fn text_that_is_not_a_valid_number_normalises_to_none() {
        for input in [
            "",
            "   ",
            "　",
            "なし",
            "unknown",
            "TBD",
            "-",
            "03-1234",
            "12345",
            "03-1234-5678-9999",
            "0312345678901234567890",
            "03-1234-5678 / 090-1234-5678",
            "fax 03-1234-5678",
            "03-1234-5678 内線なし",
            "+0 3-1234-5678",
        ] {
            check(input, None);
        }
    }
}
