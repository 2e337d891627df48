//! Japanese phone numbers, valid ones, typed the many ways people type them.

use super::{
    Rng,
    words::{CITIES, City},
};

/// What kind of number it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A fixed line: area code, exchange and subscriber, 10 digits.
    Fixed,
    /// 090/080/070, 11 digits.
    Mobile,
    /// 050, 11 digits.
    Ip,
    /// 0120 (10 digits) or 0800 (11 digits).
    TollFree,
}

/// How a number is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    /// `03-1234-5678`
    Hyphens,
    /// `0312345678`
    Digits,
    /// `03(1234)5678`
    BracketMiddle,
    /// `(03)1234-5678`
    BracketArea,
    /// `03 1234 5678`
    Spaces,
    /// `+81 3-1234-5678`
    IntlSpace,
    /// `+81-90-1234-5678`
    IntlHyphens,
    /// `+819012345678`
    IntlCompact,
    /// `+81 (0)3-1234-5678`, as on business cards
    IntlTrunk,
    /// `０３－１２３４－５６７８`
    FullWidth,
    /// Something no normaliser can make a number of (`内線123`, `03-1234`).
    Broken,
}

const STYLES: &[(Style, u64)] = &[
    (Style::Hyphens, 620),
    (Style::Digits, 140),
    (Style::BracketMiddle, 50),
    (Style::BracketArea, 50),
    (Style::Spaces, 40),
    (Style::IntlSpace, 20),
    (Style::IntlHyphens, 15),
    (Style::IntlCompact, 10),
    (Style::IntlTrunk, 5),
    (Style::FullWidth, 40),
    (Style::Broken, 10),
];

/// A valid Japanese number in its national form, split as it is written:
/// area code (or prefix) with the trunk 0, exchange, subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Number {
    pub kind: Kind,
    pub groups: [String; 3],
}

impl Number {
    /// The E.164 form, `+81` and the national number without its trunk 0.
    pub fn e164(&self) -> String {
        let national = self.groups.concat();
        format!("+81{}", national.strip_prefix('0').unwrap_or(&national))
    }

    /// The number typed in `style`; `Broken` is not a rendering (see
    /// [`broken`]) and comes out hyphenated.
    pub fn render(&self, style: Style) -> String {
        let [area, exchange, subscriber] = &self.groups;
        let bare = area.strip_prefix('0').unwrap_or(area);
        match style {
            Style::Hyphens | Style::Broken => format!("{area}-{exchange}-{subscriber}"),
            Style::Digits => format!("{area}{exchange}{subscriber}"),
            Style::BracketMiddle => format!("{area}({exchange}){subscriber}"),
            Style::BracketArea => format!("({area}){exchange}-{subscriber}"),
            Style::Spaces => format!("{area} {exchange} {subscriber}"),
            Style::IntlSpace => format!("+81 {bare}-{exchange}-{subscriber}"),
            Style::IntlHyphens => format!("+81-{bare}-{exchange}-{subscriber}"),
            Style::IntlCompact => format!("+81{bare}{exchange}{subscriber}"),
            Style::IntlTrunk => format!("+81 (0){bare}-{exchange}-{subscriber}"),
            Style::FullWidth => full_width(&format!("{area}-{exchange}-{subscriber}")),
        }
    }
}

/// Digits and hyphens as a Japanese IME types them in full-width mode.
fn full_width(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(u32::from(c) - u32::from('0') + 0xFF10).unwrap_or(c),
            '-' => '－',
            other => other,
        })
        .collect()
}

/// `n` random decimal digits.
pub(super) fn digits(rng: &mut Rng, n: usize) -> String {
    (0..n).map(|_| char::from(b'0' + rng.below(10) as u8)).collect()
}

/// A digit 1-9 followed by `n - 1` random digits.
fn leading_nonzero(rng: &mut Rng, n: usize) -> String {
    let first = char::from(b'1' + rng.below(9) as u8);
    let mut text = String::from(first);
    text.push_str(&digits(rng, n.saturating_sub(1)));
    text
}

/// A fixed line in `city`.
pub(super) fn fixed_in(rng: &mut Rng, city: &City) -> Number {
    let starts = city.exchange_starts.as_bytes();
    let first = if starts.is_empty() { b'2' } else { *rng.pick(starts) };
    let mut exchange = String::from(char::from(first));
    exchange.push_str(&digits(rng, 5usize.saturating_sub(city.area.len())));
    Number { kind: Kind::Fixed, groups: [city.area.to_owned(), exchange, digits(rng, 4)] }
}

/// A fixed line anywhere, Tokyo most likely.
fn fixed(rng: &mut Rng) -> Number {
    let city = rng.pick_weighted(CITIES, |c| c.weight);
    fixed_in(rng, city)
}

/// A mobile number.
pub(super) fn mobile(rng: &mut Rng) -> Number {
    let prefix = *rng.pick_weighted(&[("090", 50), ("080", 40), ("070", 10)], |p| p.1);
    Number { kind: Kind::Mobile, groups: [prefix.0.to_owned(), leading_nonzero(rng, 4), digits(rng, 4)] }
}

/// An 050 IP phone number.
pub(super) fn ip(rng: &mut Rng) -> Number {
    Number { kind: Kind::Ip, groups: ["050".to_owned(), leading_nonzero(rng, 4), digits(rng, 4)] }
}

/// A toll-free number: 0120-123-456 or 0800-123-4567.
pub(super) fn toll_free(rng: &mut Rng) -> Number {
    if rng.chance(0.8) {
        Number { kind: Kind::TollFree, groups: ["0120".to_owned(), leading_nonzero(rng, 3), digits(rng, 3)] }
    } else {
        Number { kind: Kind::TollFree, groups: ["0800".to_owned(), leading_nonzero(rng, 3), digits(rng, 4)] }
    }
}

/// Any number, in the mix a `Phone` field holds.
pub(super) fn any(rng: &mut Rng) -> Number {
    match rng.below(100) {
        0..60 => fixed(rng),
        60..88 => mobile(rng),
        88..93 => ip(rng),
        _ => toll_free(rng),
    }
}

/// Something typed into a phone field that is not a number: an extension
/// alone, a number cut short or too long, a placeholder.
fn broken(rng: &mut Rng, number: &Number) -> String {
    let [area, exchange, subscriber] = &number.groups;
    match rng.below(6) {
        0 => format!("内線{}", leading_nonzero(rng, 3)),
        1 => format!("{area}-{exchange}"),
        2 => format!("{area}-{exchange}-{}", subscriber.get(..subscriber.len().saturating_sub(1)).unwrap_or_default()),
        3 => format!("{area}-{exchange}-{subscriber}{}", digits(rng, 1)),
        4 => "000-0000-0000".to_owned(),
        _ => "不明".to_owned(),
    }
}

/// A number as typed into a field, with what it denotes.
#[derive(Debug, Clone)]
pub(super) struct Typed {
    pub text: String,
    pub e164: Option<String>,
}

/// A style from the usual mix for `number`. Toll-free numbers cannot be
/// dialled from abroad, so nobody writes them with `+81`.
pub(super) fn style_for(rng: &mut Rng, number: &Number) -> Style {
    let style = rng.pick_weighted(STYLES, |s| s.1).0;
    let international = matches!(style, Style::IntlSpace | Style::IntlHyphens | Style::IntlCompact | Style::IntlTrunk);
    if international && number.kind == Kind::TollFree { Style::Hyphens } else { style }
}

/// `number` typed in `style` (`Broken` mangles it beyond repair).
pub(super) fn type_as(rng: &mut Rng, number: &Number, style: Style) -> Typed {
    if style == Style::Broken {
        return Typed { text: broken(rng, number), e164: None };
    }
    Typed { text: number.render(style), e164: Some(number.e164()) }
}

/// `number` typed in a style from the usual mix.
pub(super) fn typed(rng: &mut Rng, number: &Number) -> Typed {
    let style = style_for(rng, number);
    type_as(rng, number, style)
}

/// A Japanese phone number as someone typed it into a `Phone` field, and the
/// E.164 form it denotes (`+81…`, matching `^\+81[0-9]{9,10}$`), or `None`
/// for the ~1% that no normaliser can make sense of (`内線123`, `03-1234`).
///
/// The mix: fixed lines with real area codes of 2 to 5 digits (`03-1234-5678`,
/// `052-123-4567`, `0466-12-3456`, `04992-2-3456`), mobiles (`090-`, `080-`,
/// `070-`), 050 IP phones and toll-free numbers (`0120-123-456`,
/// `0800-123-4567`); typed hyphenated (most), as bare digits, with brackets,
/// with spaces, in international forms (`+81 3-1234-5678`,
/// `+81-90-1234-5678`, `+819012345678`, `+81 (0)3-1234-5678`) and in
/// full-width characters (`０３－１２３４－５６７８`).
pub fn phone_number(rng: &mut Rng) -> (String, Option<String>) {
    let number = any(rng);
    let typed = typed(rng, &number);
    (typed.text, typed.e164)
}

/// Like [`phone_number`] but always a mobile (`090-1234-5678` and its
/// variants), as `MobilePhone` holds.
pub fn mobile_number(rng: &mut Rng) -> (String, Option<String>) {
    let number = mobile(rng);
    let typed = typed(rng, &number);
    (typed.text, typed.e164)
}
