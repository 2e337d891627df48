//! Text lengths as Salesforce counts them (docs/behaviour.md §4, "Lengths"), and cutting text to a
//! field's length.
//!
//! Salesforce measures a field's length in UTF-16 code units: a Japanese character counts one,
//! an emoji outside the Basic Multilingual Plane two. Bytes would over-count Japanese three
//! times, `char`s would under-count emoji; either way a Task or record would be refused
//! (`STRING_TOO_LONG`) or cut shorter than needed. A cut also never leaves half a character:
//! not half a surrogate pair (which Salesforce would store as U+FFFD), and not a base letter
//! without its combining mark, a ZWJ emoji sequence without its last person, or half a flag, so
//! cuts happen at grapheme-cluster boundaries (Unicode UAX #29).

use std::borrow::Cow;

use unicode_segmentation::UnicodeSegmentation;

/// The length of `text` in UTF-16 code units, the unit of Salesforce's field lengths.
pub fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// `text` cut to at most `max` UTF-16 units, `marker` included.
///
/// The text is returned unchanged (borrowed) when it fits. Otherwise it is cut at the last
/// grapheme-cluster boundary that leaves room for `marker`, and `marker` is appended, so a
/// reader sees that something is missing; pass `""` for no marker.
///
/// When `marker` alone is longer than `max`, the limit wins: the text is cut to `max` without
/// a marker rather than with a broken one.
pub fn cut<'a>(text: &'a str, max: usize, marker: &str) -> Cow<'a, str> {
    if utf16_len(text) <= max {
        return Cow::Borrowed(text);
    }
    let marker_len = utf16_len(marker);
    let (budget, marker) = if marker_len <= max { (max - marker_len, marker) } else { (max, "") };
    let end = prefix_end(text, budget);
    let mut out = String::with_capacity(end + marker.len());
    out.push_str(&text[..end]);
    out.push_str(marker);
    Cow::Owned(out)
}

/// The byte index where the longest prefix of whole grapheme clusters within `budget` UTF-16
/// units ends.
fn prefix_end(text: &str, budget: usize) -> usize {
    let mut used = 0;
    for (start, grapheme) in text.grapheme_indices(true) {
        used += utf16_len(grapheme);
        if used > budget {
            return start;
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_counted_in_utf16_units() {
        fn check(input: &str, expected: usize) {
            assert_eq!(utf16_len(input), expected, "input {input:?}");
        }
        check("", 0);
        check("Front Agent", 11);
        check("佐藤 花子", 5);
        check("ｻﾄｳ", 3);
        check("😀", 2);
        check("はい😀", 4);
        check("e\u{301}", 2);
        check("🇯🇵", 4);
        check("👨\u{200D}👩\u{200D}👧", 8);
    }

    #[test]
    fn cuts_keep_whole_characters_and_mark_the_cut() {
        fn check(text: &str, max: usize, marker: &str, expected: &str) {
            let got = cut(text, max, marker);
            assert_eq!(got, expected, "cut({text:?}, {max}, {marker:?})");
            assert!(utf16_len(&got) <= max, "cut({text:?}, {max}, {marker:?}) is {} units", utf16_len(&got));
            assert_eq!(matches!(got, Cow::Borrowed(_)), expected == text, "only an uncut text is borrowed");
        }
        // ASCII.
        check("hello world", 8, "…", "hello w…");
        check("hello world", 8, "", "hello wo");
        // Japanese counts one unit a character (three bytes each in UTF-8).
        check("佐藤花子です", 4, "…", "佐藤花…");
        check("佐藤花子です", 4, "", "佐藤花子");
        // An emoji (two units) that would straddle the limit is left out whole.
        check("ab😀cd", 4, "…", "ab…");
        check("ab😀cd", 5, "…", "ab😀…");
        check("ab😀cd", 3, "", "ab");
        // A combining mark stays with its base: か + U+309A (か゚), e + U+0301 (é).
        check("かか\u{309A}き", 3, "…", "か…");
        check("cafe\u{301} au lait", 5, "…", "caf…");
        check("cafe\u{301} au lait", 6, "…", "cafe\u{301}…");
        // A ZWJ sequence and a flag are one character each.
        check("a👨\u{200D}👩\u{200D}👧b", 6, "…", "a…");
        check("a👨\u{200D}👩\u{200D}👧bc", 9, "…", "a…");
        check("a👨\u{200D}👩\u{200D}👧bc", 10, "…", "a👨\u{200D}👩\u{200D}👧…");
        check("🇯🇵🇺🇸", 6, "", "🇯🇵");
        check("🇯🇵🇺🇸", 3, "", "");
        // An exact fit is not cut and gets no marker.
        check("hello", 5, "…", "hello");
        check("佐藤😀", 4, "（以下省略）", "佐藤😀");
        check("", 0, "…", "");
        // A marker that fills the limit leaves no text; one longer than the limit is dropped.
        check("abcdef", 2, "…!", "…!");
        check("abcdef", 3, "（以下省略）", "abc");
        check("abc", 0, "…", "");
    }
}
