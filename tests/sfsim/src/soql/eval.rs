//! Evaluating a resolved query on records: WHERE, ORDER BY and result rows.

use std::{cmp::Ordering, sync::LazyLock};

use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time};

use super::lexer::CmpOp;
use super::parser::RelativeDate;
use super::resolve::{
    Cond, Hop, Kind, LikeTok, Operand, OrderKey, Path, RowEntry, RowNode, SortKind, USER_ONLY_NAME_FIELDS, fold1,
};
use super::{EvalContext, Lookup};
use crate::schema::{self, Field, FieldType, ObjectSchema};
use crate::value::{Record, Value};

static NULL: Value = Value::Null;
static FALSE: Value = Value::Bool(false);

/// `Type` of the `Name` entity: the related record's object name.
static TYPE_NAMES: LazyLock<Vec<Value>> =
    LazyLock::new(|| schema::objects().iter().map(|o| Value::Text(o.name.to_owned())).collect());

fn type_value(object: &'static ObjectSchema) -> &'static Value {
    schema::objects().iter().position(|o| std::ptr::eq(o, object)).and_then(|i| TYPE_NAMES.get(i)).unwrap_or(&NULL)
}

/// A relative date literal made concrete for one evaluation: whole days in
/// the user's time zone, and the instants where they start and end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DayRange {
    first: Date,
    last: Date,
    /// Midnight starting `first`, in the user's time zone.
    start: OffsetDateTime,
    /// Midnight ending `last` (exclusive).
    end: OffsetDateTime,
}

/// Resolves relative date literals against `ctx`: "today" is the current
/// day in the querying user's time zone.
pub(crate) fn day_ranges(relative: &[RelativeDate], ctx: &EvalContext) -> Vec<DayRange> {
    let today = ctx.now.to_offset(ctx.user_offset).date();
    relative
        .iter()
        .map(|r| {
            let (first, last) = days(*r, today);
            let midnight = |d: Date| PrimitiveDateTime::new(d, Time::MIDNIGHT).assume_offset(ctx.user_offset);
            let end = last.next_day().map_or_else(|| midnight(last) + Duration::DAY, midnight);
            DayRange { first, last, start: midnight(first), end }
        })
        .collect()
}

/// Adds days, saturating a day inside the representable range.
fn add_days(d: Date, n: i64) -> Date {
    let lo = Date::MIN.next_day().unwrap_or(Date::MIN);
    let hi = Date::MAX.previous_day().unwrap_or(Date::MAX);
    d.checked_add(Duration::days(n)).unwrap_or(if n < 0 { lo } else { hi }).clamp(lo, hi)
}

fn month_bounds(year: i32, month: Month) -> (Date, Date) {
    let first = Date::from_calendar_date(year, month, 1).unwrap_or(Date::MIN);
    let next = if month == Month::December {
        Date::from_calendar_date(year + 1, Month::January, 1)
    } else {
        Date::from_calendar_date(year, month.next(), 1)
    };
    let last = next.ok().and_then(Date::previous_day).unwrap_or(Date::MAX);
    (first, last)
}

fn year_bounds(year: i32) -> (Date, Date) {
    (month_bounds(year, Month::January).0, month_bounds(year, Month::December).1)
}

/// The first and last day of a relative date literal (SOQL's "Date
/// Literals" table).
fn days(r: RelativeDate, today: Date) -> (Date, Date) {
    use RelativeDate::*;
    let shift_month = |delta: i32| {
        let index = today.year() * 12 + i32::from(u8::from(today.month())) - 1 + delta;
        let month = Month::try_from((index.rem_euclid(12) + 1) as u8).unwrap_or(Month::January);
        month_bounds(index.div_euclid(12), month)
    };
    match r {
        Today => (today, today),
        Yesterday => (add_days(today, -1), add_days(today, -1)),
        Tomorrow => (add_days(today, 1), add_days(today, 1)),
        // "Starts 00:00:00 of the current day and continues for the past n
        // days": today and the n days before it.
        LastNDays(n) => (add_days(today, -i64::from(n)), today),
        // "Starts 00:00:00 of the next day and continues for the next n days."
        NextNDays(n) => (add_days(today, 1), add_days(today, i64::from(n))),
        NDaysAgo(n) => (add_days(today, -i64::from(n)), add_days(today, -i64::from(n))),
        ThisMonth => shift_month(0),
        LastMonth => shift_month(-1),
        NextMonth => shift_month(1),
        ThisYear => year_bounds(today.year()),
        LastYear => year_bounds(today.year() - 1),
        NextYear => year_bounds(today.year() + 1),
    }
}

/// The record a lookup points at, if any.
fn follow<'a>(hop: &Hop, record: &'a Record, lookup: &'a dyn Lookup) -> Option<&'a Record> {
    let id = record.fields.get(hop.reference.name)?.as_text()?;
    lookup.record(id)
}

/// A field of `record`; on the `Name` entity, as Salesforce fills it.
fn leaf_value<'a>(field: &'static Field, on_name: bool, record: &'a Record) -> &'a Value {
    if on_name {
        if field.name == "Type" {
            return type_value(record.object);
        }
        if record.object.name != "User" && USER_ONLY_NAME_FIELDS.contains(&field.name) {
            return if field.ty == FieldType::Boolean { &FALSE } else { &NULL };
        }
    }
    record.fields.get(field.name).unwrap_or(&NULL)
}

/// The value of a path on a record; null when a lookup on the way is empty.
pub(crate) fn fetch<'a>(path: &Path, record: &'a Record, lookup: &'a dyn Lookup) -> &'a Value {
    let mut current = record;
    for hop in &path.hops {
        match follow(hop, current, lookup) {
            Some(parent) => current = parent,
            None => return &NULL,
        }
    }
    leaf_value(path.leaf, path.on_name, current)
}

/// Text order as SOQL sorts it for English locales: by the upper-case
/// forms, so case-insensitive.
pub(crate) fn collate(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.bytes().map(|c| c.to_ascii_uppercase()).cmp(b.bytes().map(|c| c.to_ascii_uppercase()))
    } else {
        a.chars().flat_map(char::to_uppercase).cmp(b.chars().flat_map(char::to_uppercase))
    }
}

/// Id order: the 15-character case-sensitive key, byte by byte (base-62
/// digits `0-9A-Za-z` are in ASCII order).
fn id_cmp(a: &str, b: &str) -> Ordering {
    fn key(s: &str) -> &[u8] {
        &s.as_bytes()[..s.len().min(15)]
    }
    key(a).cmp(key(b))
}

fn holds(op: CmpOp, ord: Ordering) -> bool {
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
    }
}

/// Orders a (non-null) field value against a (non-null, non-relative)
/// operand; `None` when they are of different types.
fn order(v: &Value, rhs: &Operand) -> Option<Ordering> {
    match (v, rhs) {
        (Value::Text(a), Operand::Text(b)) => Some(collate(a, b)),
        (Value::Text(a), Operand::Id(b)) => Some(id_cmp(a, b)),
        (Value::Int(a), Operand::Int(b)) => Some(a.cmp(b)),
        (Value::Int(a), Operand::Double(b)) => (*a as f64).partial_cmp(b),
        (Value::Double(a), Operand::Double(b)) => a.partial_cmp(b),
        (Value::Double(a), Operand::Int(b)) => a.partial_cmp(&(*b as f64)),
        (Value::Date(a), Operand::Date(b)) => Some(a.cmp(b)),
        (Value::DateTime(a), Operand::DateTime(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// A date or datetime against a relative date literal: `=` means within
/// the days, `<` before the first, `>` after the last, and so on.
fn in_range(op: CmpOp, v: &Value, range: &DayRange) -> Option<bool> {
    let (before, after) = match v {
        Value::Date(d) => (*d < range.first, *d > range.last),
        Value::DateTime(t) => (*t < range.start, *t >= range.end),
        _ => return None,
    };
    Some(match op {
        CmpOp::Eq => !before && !after,
        CmpOp::Ne => before || after,
        CmpOp::Lt => before,
        CmpOp::Le => !after,
        CmpOp::Gt => after,
        CmpOp::Ge => !before,
    })
}

/// One comparison. SOQL has no three-valued logic: a null field is unequal
/// to every value (so `!=` and NOT IN keep it), and a boolean null is false.
fn compare(kind: Kind, op: CmpOp, v: &Value, rhs: &Operand, ranges: &[DayRange]) -> bool {
    if kind == Kind::Bool {
        let b = matches!(v, Value::Bool(true));
        let r = matches!(rhs, Operand::Bool(true));
        return holds(op, b.cmp(&r));
    }
    let rhs_null = matches!(rhs, Operand::Null);
    if v.is_null() || rhs_null {
        let equal = v.is_null() && rhs_null;
        return match op {
            CmpOp::Eq => equal,
            CmpOp::Ne => !equal,
            _ => false,
        };
    }
    let result = match rhs {
        Operand::Relative(i) => ranges.get(*i).and_then(|r| in_range(op, v, r)),
        _ => order(v, rhs).map(|o| holds(op, o)),
    };
    result.unwrap_or(op == CmpOp::Ne)
}

/// LIKE: `%` any run, `_` one character, the rest case-insensitive (the
/// pattern's characters are already folded).
fn like(pattern: &[LikeTok], text: &str) -> bool {
    if text.is_ascii() {
        like_in(pattern, text.as_bytes(), |c, b| c == char::from(b.to_ascii_uppercase()))
    } else {
        let chars: Vec<char> = text.chars().collect();
        like_in(pattern, &chars, |c, t| c == fold1(t))
    }
}

/// Wildcard matching with backtracking to the last `%`.
fn like_in<T: Copy>(pattern: &[LikeTok], text: &[T], eq: impl Fn(char, T) -> bool) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(LikeTok::Any) => {
                star = Some((p, t));
                p += 1;
            }
            Some(LikeTok::One) => {
                p += 1;
                t += 1;
            }
            Some(LikeTok::Char(c)) if eq(*c, text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|x| *x == LikeTok::Any)
}

/// True when `record` satisfies `cond`.
pub(crate) fn eval(cond: &Cond, record: &Record, lookup: &dyn Lookup, ranges: &[DayRange]) -> bool {
    match cond {
        Cond::And(items) => items.iter().all(|c| eval(c, record, lookup, ranges)),
        Cond::Or(items) => items.iter().any(|c| eval(c, record, lookup, ranges)),
        Cond::Not(inner) => !eval(inner, record, lookup, ranges),
        Cond::Cmp { path, kind, op, rhs } => compare(*kind, *op, fetch(path, record, lookup), rhs, ranges),
        Cond::In { path, kind, negated, rhs } => {
            let v = fetch(path, record, lookup);
            let found = rhs.iter().any(|o| compare(*kind, CmpOp::Eq, v, o, ranges));
            found != *negated
        }
        Cond::InIds { path, negated, keys, null } => {
            let found = match fetch(path, record, lookup) {
                Value::Text(id) => keys.contains(id.get(..15).unwrap_or(id)),
                Value::Null => *null,
                _ => false,
            };
            found != *negated
        }
        Cond::Like { path, pattern } => match fetch(path, record, lookup) {
            Value::Text(s) => like(pattern, s),
            _ => false,
        },
    }
}

/// A sort key made compact once per record, so that comparing two records
/// touches neither their maps nor (mostly) their strings.
#[derive(Debug, Clone, Copy)]
enum Key<'a> {
    Null,
    /// Booleans, integers, dates (Julian day), datetimes (Unix nanoseconds),
    /// ids (their 15-character key, big-endian).
    Int(i128),
    Float(f64),
    /// Text: the first 8 bytes of its upper-case form, then the whole text.
    Text(u64, &'a str),
    /// A picklist value: its position among the picklist's values, then as
    /// text.
    Ranked(usize, u64, &'a str),
}

impl Key<'_> {
    fn variant(&self) -> u8 {
        match self {
            Key::Null => 0,
            Key::Int(_) => 1,
            Key::Float(_) => 2,
            Key::Text(..) => 3,
            Key::Ranked(..) => 4,
        }
    }
}

/// The first 8 bytes of the upper-case UTF-8 form of `s`, zero-padded: it
/// orders as [`collate`] does whenever two prefixes differ.
fn upper_prefix(s: &str) -> u64 {
    let mut buf = [0u8; 8];
    let mut n = 0;
    'fill: for c in s.chars().flat_map(char::to_uppercase) {
        let mut utf8 = [0u8; 4];
        for &b in c.encode_utf8(&mut utf8).as_bytes() {
            if n == buf.len() {
                break 'fill;
            }
            buf[n] = b;
            n += 1;
        }
    }
    u64::from_be_bytes(buf)
}

/// The 15-character key of an id as a number ordering as its bytes do.
fn id_key(s: &str) -> i128 {
    let bytes = s.as_bytes();
    (0..15).fold(0i128, |k, i| (k << 8) | i128::from(bytes.get(i).copied().unwrap_or(0)))
}

fn key(sort: SortKind, v: &Value) -> Key<'_> {
    match v {
        Value::Null => Key::Null,
        Value::Bool(b) => Key::Int(i128::from(*b)),
        Value::Int(i) if !matches!(sort, SortKind::Plain(Kind::Double)) => Key::Int(i128::from(*i)),
        Value::Int(i) => Key::Float(*i as f64),
        Value::Double(f) => Key::Float(*f),
        Value::Date(d) => Key::Int(i128::from(d.to_julian_day())),
        Value::DateTime(t) => Key::Int(t.unix_timestamp_nanos()),
        Value::Text(s) => match sort {
            SortKind::Plain(Kind::Id) => Key::Int(id_key(s)),
            SortKind::Picklist(values) => {
                Key::Ranked(values.iter().position(|v| *v == s).unwrap_or(values.len()), upper_prefix(s), s)
            }
            SortKind::Plain(_) => Key::Text(upper_prefix(s), s),
        },
    }
}

/// Orders two keys of one ORDER BY item, nulls and direction included.
fn key_cmp(item: &OrderKey, a: &Key<'_>, b: &Key<'_>) -> Ordering {
    let null_side = if item.nulls_first { Ordering::Less } else { Ordering::Greater };
    let o = match (a, b) {
        (Key::Null, Key::Null) => return Ordering::Equal,
        (Key::Null, _) => return null_side,
        (_, Key::Null) => return null_side.reverse(),
        (Key::Int(x), Key::Int(y)) => x.cmp(y),
        (Key::Float(x), Key::Float(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (Key::Text(px, x), Key::Text(py, y)) => px.cmp(py).then_with(|| collate(x, y)),
        (Key::Ranked(rx, px, x), Key::Ranked(ry, py, y)) => rx.cmp(ry).then(px.cmp(py)).then_with(|| collate(x, y)),
        _ => a.variant().cmp(&b.variant()),
    };
    if item.desc { o.reverse() } else { o }
}

/// One record to sort: its first two keys inline, the others (if any) in a
/// side table, and its position (the last tie-break, which makes the order
/// stable).
struct Entry<'a> {
    k0: Key<'a>,
    k1: Key<'a>,
    index: u32,
}

/// The records in ORDER BY order (stable), keeping only the first `keep`
/// when given (then the others are never fully sorted).
pub(crate) fn sorted<'r>(
    order: &[OrderKey],
    records: &[&'r Record],
    lookup: &dyn Lookup,
    keep: Option<usize>,
) -> Vec<&'r Record> {
    let keep = keep.unwrap_or(records.len()).min(records.len());
    if order.is_empty() || records.len() < 2 || keep == 0 {
        return records[..keep].to_vec();
    }
    let extra = order.len().saturating_sub(2);
    let mut rest: Vec<Key<'_>> = Vec::with_capacity(records.len() * extra);
    let mut entries: Vec<Entry<'_>> = Vec::with_capacity(records.len());
    for (i, &record) in records.iter().enumerate() {
        let key_of = |item: &OrderKey| key(item.sort, fetch(&item.path, record, lookup));
        let k0 = key_of(&order[0]);
        let k1 = order.get(1).map_or(Key::Null, key_of);
        rest.extend(order.iter().skip(2).map(key_of));
        entries.push(Entry { k0, k1, index: i as u32 });
    }
    let cmp = |a: &Entry<'_>, b: &Entry<'_>| {
        key_cmp(&order[0], &a.k0, &b.k0)
            .then_with(|| order.get(1).map_or(Ordering::Equal, |item| key_cmp(item, &a.k1, &b.k1)))
            .then_with(|| {
                let (ra, rb) = (a.index as usize * extra, b.index as usize * extra);
                (0..extra)
                    .map(|j| key_cmp(&order[j + 2], &rest[ra + j], &rest[rb + j]))
                    .find(|o| *o != Ordering::Equal)
                    .unwrap_or(Ordering::Equal)
            })
            .then(a.index.cmp(&b.index))
    };
    if keep < entries.len() {
        entries.select_nth_unstable_by(keep, cmp);
        entries.truncate(keep);
    }
    entries.sort_unstable_by(cmp);
    entries.iter().map(|e| records[e.index as usize]).collect()
}

/// Sorts by the ORDER BY keys (stable).
pub(crate) fn sort(order: &[OrderKey], records: &mut [&Record], lookup: &dyn Lookup) {
    if order.is_empty() || records.len() < 2 {
        return;
    }
    let in_order = sorted(order, records, lookup, None);
    records.copy_from_slice(&in_order);
}

/// `/services/data/v61.0`, from `v61.0` or `61.0`.
pub(crate) fn data_prefix(api_version: &str) -> String {
    if api_version.starts_with('v') {
        format!("/services/data/{api_version}")
    } else {
        format!("/services/data/v{api_version}")
    }
}

/// A record as a result row, shaped by `node`.
/// Writes the row of [`render`] as JSON text straight into `out`.
pub(crate) fn render_into(
    node: &RowNode,
    record: &Record,
    type_name: &str,
    lookup: &dyn Lookup,
    prefix: &str,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"{\"attributes\":{\"type\":");
    write_str(out, type_name);
    out.extend_from_slice(b",\"url\":\"");
    // Prefixes, object names and ids need no escaping.
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(b"/sobjects/");
    out.extend_from_slice(record.object.name.as_bytes());
    out.push(b'/');
    out.extend_from_slice(record.id().as_bytes());
    out.extend_from_slice(b"\"}");
    for entry in &node.entries {
        out.push(b',');
        match entry {
            RowEntry::Field { field, on_name } => {
                write_str(out, field.name);
                out.push(b':');
                leaf_value(field, *on_name, record).write_json(out);
            }
            RowEntry::Parent { hop, node } => {
                write_str(out, hop.name);
                out.push(b':');
                match follow(hop, record, lookup) {
                    Some(p) => {
                        let type_name = if hop.polymorphic { "Name" } else { p.object.name };
                        render_into(node, p, type_name, lookup, prefix, out);
                    }
                    None => out.extend_from_slice(b"null"),
                }
            }
        }
    }
    out.push(b'}');
}

fn write_str(out: &mut Vec<u8>, text: &str) {
    let _ = serde_json::to_writer(&mut *out, text);
}

pub(crate) fn render(
    node: &RowNode,
    record: &Record,
    type_name: &str,
    lookup: &dyn Lookup,
    prefix: &str,
) -> serde_json::Map<String, serde_json::Value> {
    let mut map = serde_json::Map::new();
    let mut attributes = serde_json::Map::new();
    attributes.insert("type".to_owned(), type_name.into());
    attributes.insert("url".to_owned(), format!("{prefix}/sobjects/{}/{}", record.object.name, record.id()).into());
    map.insert("attributes".to_owned(), attributes.into());
    for entry in &node.entries {
        match entry {
            RowEntry::Field { field, on_name } => {
                map.insert(field.name.to_owned(), leaf_value(field, *on_name, record).to_json());
            }
            RowEntry::Parent { hop, node } => {
                let parent = follow(hop, record, lookup).map_or(serde_json::Value::Null, |p| {
                    // Salesforce types a polymorphic parent as `Name`; its
                    // url still names the real object.
                    let type_name = if hop.polymorphic { "Name" } else { p.object.name };
                    render(node, p, type_name, lookup, prefix).into()
                });
                map.insert(hop.name.to_owned(), parent);
            }
        }
    }
    map
}
