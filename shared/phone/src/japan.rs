//! Japanese numbers in the forms nearly every stored number takes, read
//! without phonenumber's parser.
//!
//! phonenumber's `parse` runs a nom grammar and several of the metadata's
//! patterns through a regex cache it locks, fills and evicts on every call:
//! in `import_bench` it was a quarter of the importer's CPU, for numbers
//! that are almost all `0` + a national number or `+81` + one. Those two
//! forms are read here directly. What they mean is phonenumber's, for
//! Japan's metadata (`internationalPrefix="010"`, `nationalPrefix="0"`,
//! `nationalPrefixForParsing="(000[2569]\d{4,6})$|(?:(?:003768)0?)|0"`):
//!
//! - without `+`, text whose digits start with `0` and then `1`–`9`, other
//!   than `010` (the international prefix): the trunk `0` is dropped, the
//!   rest is the national number;
//! - `+81`, then the national number, with the trunk `0` after the country
//!   code dropped too (`+81 (0)3-…`, `+81 03-…`).
//!
//! In these forms the number is valid exactly when the national number
//! is: phonenumber keeps the trunk `0` only when the number without it
//! does not fit the numbering plan, and no Japanese number starts with `0`
//! followed by `1`–`9`, so what it then reads is not valid either. Anything
//! else (`00…`, `010…`, `81…` without `+`, other country codes) goes to
//! phonenumber as before; a test holds the two readers to the same answers
//! over every form the importer sees, valid or not.

use crate::E164;

/// The most digits a Japanese national number has (phonenumber's longest
/// valid one is 17 with its `00…` forms, which are not read here).
const MOST_DIGITS: usize = 17;

/// What [`usual`] makes of a number.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reading {
    /// One of the usual forms, and this valid number.
    Valid(E164),
    /// One of the usual forms, not a valid number.
    NotValid,
    /// Not one of the usual forms: phonenumber must decide.
    Unusual,
}

/// What `text` (digits, spaces, `+-().` only, the extension already cut
/// off) is, if it is in one of the two usual forms.
pub(crate) fn usual(text: &str) -> Reading {
    match e164_text(text) {
        None => Reading::Unusual,
        Some(e164) if crate::valid::is_valid_japanese(&e164[COUNTRY.len()..]) => {
            Reading::Valid(E164::from_checked(e164))
        }
        Some(_) => Reading::NotValid,
    }
}

/// Japan's country code as E.164 writes it.
const COUNTRY: &str = "+81";

/// `+81` and the national number of `text` (without its trunk `0`), if
/// `text` is in one of the two usual forms.
fn e164_text(text: &str) -> Option<String> {
    let text = text.trim_start();
    let (international, rest) = match text.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let mut digits = [0u8; MOST_DIGITS + 3];
    let mut len = 0;
    for byte in rest.bytes() {
        match byte {
            b'0'..=b'9' => {
                *digits.get_mut(len)? = byte;
                len += 1;
            }
            b' ' | b'-' | b'(' | b')' | b'.' => {}
            _ => return None,
        }
    }
    let digits = &digits[..len];
    let national = if international {
        match digits.strip_prefix(b"81")? {
            [b'0', b'0', ..] => return None,
            [b'0', national @ ..] | national => national,
        }
    } else {
        match digits {
            [b'0', b'1', b'0', ..] => return None,
            [b'0', b'1'..=b'9', ..] => &digits[1..],
            _ => return None,
        }
    };
    if national.first().is_none_or(|&first| first == b'0') {
        return None;
    }
    let mut e164 = String::with_capacity(COUNTRY.len() + national.len());
    e164.push_str(COUNTRY);
    e164.extend(national.iter().map(|&digit| char::from(digit)));
    Some(e164)
}

#[cfg(test)]
mod tests {
    use phonenumber::metadata::DATABASE;

    use super::*;
    use crate::Region;

    /// What phonenumber's parser makes of `text` read in Japan.
    fn parsed(text: &str) -> Option<E164> {
        let number = phonenumber::parse(Some(Region::JAPAN.id()), text).ok()?;
        E164::from_valid(&number)
    }

    /// A small deterministic generator (xorshift64*), so a failure names an
    /// input that comes back on the next run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
        }
    }

    /// `national` typed the ways people type it, grouped as `groups` says.
    fn typings(national: &str, rng: &mut Rng) -> Vec<String> {
        let cut = 1 + rng.below(national.len().max(2) as u64 - 1) as usize;
        let cut = cut.min(national.len());
        let (head, tail) = national.split_at(cut);
        let mid = tail.len() / 2;
        let (tail_a, tail_b) = tail.split_at(mid);
        vec![
            format!("0{national}"),
            format!("0{head}-{tail_a}-{tail_b}"),
            format!("(0{head}){tail_a}-{tail_b}"),
            format!("0{head}({tail_a}){tail_b}"),
            format!("0{head} {tail_a} {tail_b}"),
            format!("0{head}.{tail_a}.{tail_b}"),
            format!("+81{national}"),
            format!("+81 {head}-{tail_a}-{tail_b}"),
            format!("+81-{head}-{tail}"),
            format!("+81 (0){head}-{tail}"),
            format!("+81 0{head}-{tail}"),
            format!("+810{national}"),
            format!("+8100{national}"),
            format!("00{national}"),
            format!("010{national}"),
            format!("010-81-{national}"),
            format!("81{national}"),
            format!("0{national}0"),
            national.to_owned(),
            format!("+1{national}"),
            format!("+{national}"),
        ]
    }

    /// The usual forms read here give phonenumber's own answer whenever
    /// they give one, over Japan's example numbers of every type (and each
    /// cut short and grown by a digit) and thousands of random national
    /// numbers in every typing; and they do answer most of them.
    #[test]
    fn the_usual_forms_read_as_phonenumber_reads_them() {
        let japan = DATABASE.by_id("JP").expect("Japan's metadata");
        let d = japan.descriptors();
        let mut nationals: Vec<String> = [
            Some(d.general()),
            d.fixed_line(),
            d.mobile(),
            d.toll_free(),
            d.premium_rate(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ]
        .into_iter()
        .flatten()
        .filter_map(|descriptor| descriptor.example())
        .flat_map(|example| [example.to_owned(), example[..example.len() - 1].to_owned(), format!("{example}5")])
        .collect();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..3000 {
            let len = 6 + rng.below(8);
            nationals.push((0..len).map(|_| char::from(b'0' + rng.below(10) as u8)).collect());
        }
        let (mut compared, mut answered, mut answered_valid, mut valid) = (0, 0, 0, 0);
        for national in &nationals {
            for text in typings(national, &mut rng) {
                let slow = parsed(&text);
                valid += usize::from(slow.is_some());
                let fast = match usual(&text) {
                    Reading::Valid(number) => Some(number),
                    Reading::NotValid => None,
                    Reading::Unusual => {
                        compared += 1;
                        continue;
                    }
                };
                assert_eq!(fast, slow, "{text:?}");
                answered += 1;
                answered_valid += usize::from(slow.is_some());
                compared += 1;
            }
        }
        assert!(compared > 60_000, "only {compared} typings compared");
        // 12 of the 21 typings are usual forms; most valid numbers must be
        // answered here, or the fast path saves nothing.
        assert!(answered * 2 > compared, "answered {answered} of {compared} typings");
        assert!(answered_valid * 2 > valid, "answered {answered_valid} of {valid} valid typings");
    }

    #[test]
    fn the_forms_phonenumber_must_decide_are_left_to_it() {
        for text in ["0081312345678", "010-81-3-1234-5678", "81312345678", "+1 415-555-2671", "+8100312345678"] {
            assert_eq!(usual(text), Reading::Unusual, "{text:?}");
        }
        for (text, e164) in [
            ("03-1234-5678", "+81312345678"),
            ("+81 (0)3-1234-5678", "+81312345678"),
            ("+81 90-1234-5678", "+819012345678"),
            ("0120-123-456", "+81120123456"),
        ] {
            assert_eq!(usual(text), Reading::Valid(E164::parse(e164).expect("valid")), "{text:?}");
        }
        assert_eq!(usual("03-1234"), Reading::NotValid, "too short");
        assert_eq!(usual("+81 (0)3-1234-5678-9"), Reading::NotValid, "too long");
    }
}
