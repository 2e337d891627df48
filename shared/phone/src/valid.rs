//! Whether a parsed number is valid, exactly as phonenumber's
//! `PhoneNumber::is_valid` decides it, with the metadata's patterns compiled
//! once into regexes of our own.
//!
//! phonenumber keeps its compiled patterns in one LRU cache behind one
//! mutex, keyed by the pattern's text: every match locks it and hashes the
//! whole pattern (SipHash) twice, which cost more than the matching. The
//! importer checks a number per record, so the patterns of each region are
//! compiled here on first use and matched without a lock. The rules are
//! phonenumber's (`validator::is_valid_with`): the region from the country
//! code (by leading digits, or by the number's type, where a code has
//! several), then the general pattern and at least one type's pattern.

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, RwLock},
};

use phonenumber::{
    PhoneNumber,
    metadata::{DATABASE, Descriptor, Metadata},
};
use regex::{Regex, RegexBuilder};

/// The patterns of one region, compiled.
struct Patterns {
    leading_digits: Option<Regex>,
    general: Pattern,
    /// Every type phonenumber's `number_type` tells apart: a number of none
    /// of them is of type `Unknown`, which is not valid.
    types: Vec<Pattern>,
}

/// One descriptor: its possible lengths and its national number pattern,
/// anchored at the first digit.
struct Pattern {
    lengths: &'static [u16],
    regex: Regex,
}

impl Pattern {
    fn new(descriptor: &'static Descriptor) -> Option<Self> {
        Some(Self { lengths: descriptor.possible_length(), regex: anchored(descriptor.national_number().as_str())? })
    }

    /// phonenumber's `Descriptor::is_match`: a possible length, and the
    /// pattern matching from the first digit.
    fn is_match(&self, national: &str) -> bool {
        if !self.lengths.is_empty() && !self.lengths.contains(&(national.len() as u16)) {
            return false;
        }
        self.regex.is_match(national)
    }
}

/// A pattern as phonenumber compiles it (`ignore_whitespace`), anchored at
/// the start; `None` if it does not compile, which phonenumber's own
/// metadata never does.
///
/// phonenumber asks whether the leftmost match starts at 0, which is
/// whether any match starts at 0: a search anchored there answers that
/// without scanning the rest of the text or searching backwards for where
/// the match began, and its lazy DFA needs far fewer states. (The line
/// break ends a `#` comment the pattern might end with.)
fn anchored(pattern: &str) -> Option<Regex> {
    RegexBuilder::new(&format!("^(?:{pattern}\n)")).ignore_whitespace(true).build().ok()
}

impl Patterns {
    fn new(metadata: &'static Metadata) -> Option<Self> {
        let descriptors = metadata.descriptors();
        let types = [
            descriptors.premium_rate(),
            descriptors.toll_free(),
            descriptors.shared_cost(),
            descriptors.voip(),
            descriptors.personal_number(),
            descriptors.pager(),
            descriptors.uan(),
            descriptors.voicemail(),
            descriptors.fixed_line(),
            descriptors.mobile(),
        ];
        Some(Self {
            leading_digits: match metadata.leading_digits() {
                Some(pattern) => Some(anchored(pattern.as_str())?),
                None => None,
            },
            general: Pattern::new(descriptors.general())?,
            types: types.into_iter().flatten().map(Pattern::new).collect::<Option<_>>()?,
        })
    }

    /// phonenumber's `number_type(..) != Type::Unknown`.
    fn has_type(&self, national: &str) -> bool {
        self.general.is_match(national) && self.types.iter().any(|pattern| pattern.is_match(national))
    }
}

/// A region's key: its country code and id (`81`, `JP`; every
/// non-geographic code has the id `001`).
type RegionKey = (u16, &'static str);

/// Each region's patterns, compiled on first use.
static PATTERNS: LazyLock<RwLock<HashMap<RegionKey, Arc<Patterns>>>> = LazyLock::new(Default::default);

fn patterns(metadata: &'static Metadata) -> Option<Arc<Patterns>> {
    let key = (metadata.country_code(), metadata.id());
    if let Some(patterns) = PATTERNS.read().ok()?.get(&key) {
        return Some(patterns.clone());
    }
    let patterns = Arc::new(Patterns::new(metadata)?);
    PATTERNS.write().ok()?.entry(key).or_insert_with(|| patterns.clone());
    Some(patterns)
}

/// Japan's patterns, compiled on first use.
static JAPAN: LazyLock<Option<Arc<Patterns>>> = LazyLock::new(|| DATABASE.by_id("JP").and_then(patterns));

/// Whether `national` (digits, no trunk `0`) is a valid number of Japan:
/// [`is_valid`] of `+81` and `national`, Japan being the only region of
/// code 81.
pub(crate) fn is_valid_japanese(national: &str) -> bool {
    JAPAN.as_ref().is_some_and(|japan| japan.has_type(national))
}

/// phonenumber's `PhoneNumber::is_valid`.
pub(crate) fn is_valid(number: &PhoneNumber) -> bool {
    let code = number.code().value();
    let national = number.national().to_string();
    let Some(regions) = DATABASE.region(&code) else { return false };
    let region = match regions.as_slice() {
        // Non-geographic codes (+800, +979, ...) have the world's id.
        ["001"] => DATABASE.by_code(&code).and_then(|m| m.into_iter().next()).and_then(patterns),
        [only] => DATABASE.by_id(*only).and_then(patterns),
        several => several.iter().filter_map(|id| DATABASE.by_id(*id).and_then(patterns)).find(|region| match &region
            .leading_digits
        {
            Some(leading) => leading.is_match(&national),
            None => region.has_type(&national),
        }),
    };
    region.is_some_and(|region| region.has_type(&national))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbers of many countries and kinds, valid and not: the answer must be
    /// phonenumber's own.
    #[test]
    fn validity_is_phonenumbers() {
        for text in [
            "+81312345678",
            "+819012345678",
            "+81120123456",
            "+815012345678",
            "+81661234567",
            "+8131234",
            "+81012345678",
            "+14155552671",
            "+12530000",
            "+16502530000",
            "+18095551234",
            "+442079460958",
            "+447912345678",
            "+441481712345",
            "+390236618300",
            "+330631966543",
            "+80012345678",
            "+979123456789",
            "+6421387835",
            "+74951234567",
            "+77012345678",
            "+8613912345678",
            "+9991234567",
        ] {
            let Ok(number) = phonenumber::parse(None, text) else { continue };
            assert_eq!(is_valid(&number), number.is_valid(), "{text}");
        }
        for (text, region) in [
            ("03-1234-5678", phonenumber::country::Id::JP),
            ("0120-123-456", phonenumber::country::Id::JP),
            ("03-1234", phonenumber::country::Id::JP),
            ("090-1234-5678", phonenumber::country::Id::JP),
            ("(415) 555-2671", phonenumber::country::Id::US),
        ] {
            let number = phonenumber::parse(Some(region), text).expect("parses");
            assert_eq!(is_valid(&number), number.is_valid(), "{text}");
        }
    }

    /// Every example number of phonenumber's metadata, and each cut short
    /// by a digit and grown by one: the same answers as phonenumber's.
    #[test]
    fn validity_is_phonenumbers_for_every_example_of_the_metadata() {
        let mut checked = 0;
        for metadata in DATABASE.iter() {
            let d = metadata.descriptors();
            let examples = [Some(d.general()), d.fixed_line(), d.mobile(), d.toll_free(), d.premium_rate(), d.voip()]
                .into_iter()
                .flatten()
                .filter_map(Descriptor::example);
            for example in examples {
                for national in [example.to_owned(), example[..example.len() - 1].to_owned(), format!("{example}5")] {
                    let Ok(number) = phonenumber::parse(None, format!("+{}{national}", metadata.country_code())) else {
                        continue;
                    };
                    assert_eq!(is_valid(&number), number.is_valid(), "+{} {national}", metadata.country_code());
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000, "only {checked} numbers checked");
    }
}
