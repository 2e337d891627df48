//! Tokens of a SOQL statement, with their byte positions for error messages.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use super::SoqlError;
use super::error::{lexer_error, positioned};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A quoted string with its escapes decoded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StrLit {
    /// The decoded text (`\%` and `\_` decoded to `%` and `_`: they are
    /// valid in LIKE patterns only).
    pub value: String,
    /// Char indices (into `value`) of `%` and `_` that were escaped, so
    /// literal in a LIKE pattern.
    pub escaped_wildcards: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A name, possibly dotted (`Account.Name`), or a keyword.
    Ident,
    Str(StrLit),
    /// A number; `int` when it has no fraction and fits.
    Number {
        int: Option<i64>,
        value: f64,
    },
    Date(Date),
    DateTime(OffsetDateTime),
    Comma,
    LParen,
    RParen,
    Colon,
    Op(CmpOp),
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    /// Byte offsets into the statement.
    pub start: usize,
    pub end: usize,
}

impl Token {
    /// The token as written.
    pub fn text<'s>(&self, soql: &'s str) -> &'s str {
        match self.tok {
            Tok::Eof => "<EOF>",
            _ => &soql[self.start..self.end],
        }
    }

    /// True for an identifier spelled `word` (ASCII case-insensitive).
    pub fn is_keyword(&self, soql: &str, word: &str) -> bool {
        self.tok == Tok::Ident && soql[self.start..self.end].eq_ignore_ascii_case(word)
    }
}

/// Splits a statement into tokens; the last one is [`Tok::Eof`].
pub(crate) fn tokenize(soql: &str) -> Result<Vec<Token>, SoqlError> {
    let bytes = soql.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let tok = match c {
            b',' => {
                i += 1;
                Tok::Comma
            }
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b':' => {
                i += 1;
                Tok::Colon
            }
            b'=' => {
                i += 1;
                Tok::Op(CmpOp::Eq)
            }
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Op(CmpOp::Ne)
            }
            b'<' => match bytes.get(i + 1) {
                Some(b'>') => {
                    i += 2;
                    Tok::Op(CmpOp::Ne)
                }
                Some(b'=') => {
                    i += 2;
                    Tok::Op(CmpOp::Le)
                }
                _ => {
                    i += 1;
                    Tok::Op(CmpOp::Lt)
                }
            },
            b'>' => {
                if bytes.get(i + 1) == Some(&b'=') {
                    i += 2;
                    Tok::Op(CmpOp::Ge)
                } else {
                    i += 1;
                    Tok::Op(CmpOp::Gt)
                }
            }
            b'\'' => {
                let (lit, end) = string(soql, i)?;
                i = end;
                Tok::Str(lit)
            }
            b'0'..=b'9' => {
                if let Some((tok, end)) = date_or_datetime(soql, i)? {
                    i = end;
                    tok
                } else {
                    let (tok, end) = number(soql, i);
                    i = end;
                    tok
                }
            }
            b'-' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let (tok, end) = number(soql, i);
                i = end;
                tok
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                i += 1;
                while i < bytes.len() {
                    let b = bytes[i];
                    let dotted_name =
                        b == b'.' && bytes.get(i + 1).is_some_and(|n| n.is_ascii_alphabetic() || *n == b'_');
                    if b.is_ascii_alphanumeric() || b == b'_' || dotted_name {
                        i += 1;
                    } else {
                        break;
                    }
                }
                Tok::Ident
            }
            _ => {
                let ch = soql[i..].chars().next().unwrap_or('?');
                return Err(lexer_error(soql, i, &format!("no viable alternative at character '{ch}'")));
            }
        };
        tokens.push(Token { tok, start, end: i });
    }
    tokens.push(Token { tok: Tok::Eof, start: soql.len(), end: soql.len() });
    Ok(tokens)
}

/// A quoted string starting at `start` (the opening quote); returns the
/// literal and the offset after the closing quote.
fn string(soql: &str, start: usize) -> Result<(StrLit, usize), SoqlError> {
    let mut value = String::new();
    let mut escaped_wildcards = Vec::new();
    let mut chars = soql[start + 1..].char_indices().map(|(o, c)| (o + start + 1, c));
    let mut count = 0usize;
    while let Some((at, c)) = chars.next() {
        match c {
            '\'' => return Ok((StrLit { value, escaped_wildcards }, at + 1)),
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                let decoded = match e {
                    'n' | 'N' => '\n',
                    'r' | 'R' => '\r',
                    't' | 'T' => '\t',
                    'b' | 'B' => '\u{8}',
                    'f' | 'F' => '\u{c}',
                    '"' => '"',
                    '\'' => '\'',
                    '\\' => '\\',
                    '%' | '_' => {
                        escaped_wildcards.push(count);
                        e
                    }
                    'u' => unicode_escape(&mut chars).ok_or_else(|| illegal_escape(soql, start, 'u'))?,
                    other => return Err(illegal_escape(soql, start, other)),
                };
                value.push(decoded);
                count += 1;
            }
            c => {
                value.push(c);
                count += 1;
            }
        }
    }
    Err(lexer_error(soql, soql.len(), "mismatched character '<EOF>' expecting '''"))
}

/// Salesforce refuses a backslash that starts no known escape.
pub(crate) fn illegal_escape(soql: &str, start: usize, what: char) -> SoqlError {
    positioned(
        "MALFORMED_QUERY",
        soql,
        start,
        &format!(
            "Invalid string literal '{}'. Illegal character sequence '\\{what}' in string literal.",
            raw_string(soql, start)
        ),
    )
}

/// The raw text of a string literal starting at `start`, for messages.
fn raw_string(soql: &str, start: usize) -> &str {
    let rest = &soql[start + 1..];
    let mut escaped = false;
    for (o, c) in rest.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '\'' if !escaped => return &soql[start + 1..start + 1 + o],
            _ => escaped = false,
        }
    }
    rest
}

/// Decodes the `XXXX` of `\uXXXX` (and a following `\uXXXX` low
/// surrogate after a high one); `None` when malformed.
fn unicode_escape(chars: &mut impl Iterator<Item = (usize, char)>) -> Option<char> {
    fn hex4(chars: &mut impl Iterator<Item = (usize, char)>) -> Option<u16> {
        (0..4).try_fold(0u16, |n, _| {
            let d = chars.next()?.1.to_digit(16)?;
            Some(n * 16 + d as u16)
        })
    }
    let first = hex4(chars)?;
    let units = if (0xD800..0xDC00).contains(&first) {
        if chars.next()?.1 != '\\' || chars.next()?.1 != 'u' {
            return None;
        }
        vec![first, hex4(chars)?]
    } else {
        vec![first]
    };
    let mut decoded = char::decode_utf16(units);
    let c = decoded.next()?.ok()?;
    decoded.next().is_none().then_some(c)
}

/// A number (`12`, `-3`, `4.5`) starting at `start`.
fn number(soql: &str, start: usize) -> (Tok, usize) {
    let bytes = soql.as_bytes();
    let mut i = start;
    if bytes[i] == b'-' {
        i += 1;
    }
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let mut fraction = false;
    if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
        fraction = true;
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
    }
    let text = &soql[start..i];
    let int = if fraction { None } else { text.parse::<i64>().ok() };
    let value = text.parse::<f64>().unwrap_or(f64::NAN);
    (Tok::Number { int, value }, i)
}

fn digits(bytes: &[u8], at: usize, n: usize) -> Option<u32> {
    let slice = bytes.get(at..at + n)?;
    slice.iter().try_fold(0u32, |acc, b| b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0')))
}

/// `YYYY-MM-DD` or `YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)` at `start`, if the
/// text there has the shape of a date.
fn date_or_datetime(soql: &str, start: usize) -> Result<Option<(Tok, usize)>, SoqlError> {
    let b = soql.as_bytes();
    let (Some(year), Some(month), Some(day)) = (digits(b, start, 4), digits(b, start + 5, 2), digits(b, start + 8, 2))
    else {
        return Ok(None);
    };
    if b.get(start + 4) != Some(&b'-') || b.get(start + 7) != Some(&b'-') {
        return Ok(None);
    }
    let invalid = |what: &str, end: usize| {
        positioned("MALFORMED_QUERY", soql, start, &format!("Invalid {what}: {}", &soql[start..end]))
    };
    // Where the literal stops being well-formed: Salesforce's lexer reports
    // the character it could not take.
    let stop = |at: usize| {
        let shown = soql[at..].chars().next().map_or_else(|| "<EOF>".to_owned(), String::from);
        lexer_error(soql, at, &format!("no viable alternative at character '{shown}'"))
    };
    let date = Month::try_from(month as u8).ok().and_then(|m| Date::from_calendar_date(year as i32, m, day as u8).ok());
    let mut i = start + 10;
    if b.get(i) != Some(&b'T') {
        if b.get(i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
            return Err(stop(i));
        }
        let date = date.ok_or_else(|| invalid("date", i))?;
        return Ok(Some((Tok::Date(date), i)));
    }
    i += 1;
    let (Some(h), Some(mi), Some(s)) = (digits(b, i, 2), digits(b, i + 3, 2), digits(b, i + 6, 2)) else {
        return Err(stop(first_bad(b, i, b"dd:dd:dd")));
    };
    if b.get(i + 2) != Some(&b':') || b.get(i + 5) != Some(&b':') {
        return Err(stop(first_bad(b, i, b"dd:dd:dd")));
    }
    i += 8;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let from = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == from {
            return Err(stop(i));
        }
        // Keep nanosecond precision; extra digits are ignored.
        let frac = &soql[from..i.min(from + 9)];
        let scale = 10u32.pow(9 - frac.len() as u32);
        nanos = frac.parse::<u32>().unwrap_or(0) * scale;
    }
    let offset = match b.get(i) {
        Some(b'Z') | Some(b'z') => {
            i += 1;
            Some(UtcOffset::UTC)
        }
        Some(sign @ (b'+' | b'-')) => {
            let (Some(oh), Some(om)) = (digits(b, i + 1, 2), digits(b, i + 4, 2)) else {
                return Err(stop(first_bad(b, i + 1, b"dd:dd")));
            };
            if b.get(i + 3) != Some(&b':') {
                return Err(stop(i + 3));
            }
            let secs = (oh * 3600 + om * 60) as i32;
            i += 6;
            UtcOffset::from_whole_seconds(if *sign == b'-' { -secs } else { secs }).ok()
        }
        _ => return Err(stop(i)),
    };
    if b.get(i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
        return Err(stop(i));
    }
    let time = Time::from_hms_nano(h as u8, mi as u8, s as u8, nanos).ok();
    match (date, time, offset) {
        (Some(d), Some(t), Some(o)) => {
            let at = PrimitiveDateTime::new(d, t).assume_offset(o).to_offset(UtcOffset::UTC);
            Ok(Some((Tok::DateTime(at), i)))
        }
        _ => Err(invalid("datetime", i)),
    }
}

/// The first offset from `at` where the text does not follow `shape`
/// (`d` = a digit, anything else = itself).
fn first_bad(b: &[u8], at: usize, shape: &[u8]) -> usize {
    for (k, want) in shape.iter().enumerate() {
        let ok = match b.get(at + k) {
            Some(c) if *want == b'd' => c.is_ascii_digit(),
            Some(c) => c == want,
            None => false,
        };
        if !ok {
            return at + k;
        }
    }
    at + shape.len()
}
