use std::collections::{BTreeMap, BTreeSet, HashMap};

use time::macros::datetime;

use super::phone::{self, Kind, Number, Style};
use super::words::{CITIES, FAMILIES, GIVENS};
use super::*;
use crate::schema::{self, FieldType};
use crate::value::salesforce_length;

fn opts(seed: u64) -> GenOptions {
    GenOptions::new(seed, datetime!(2026-11-20 10:02:03.456_789 UTC))
}

fn text_of<'a>(record: &'a Generated, field: &str) -> Option<&'a str> {
    record.get(field).as_text()
}

/// Share of `records` for which `test` holds.
fn share(records: &[Generated], test: impl Fn(&Generated) -> bool) -> f64 {
    records.iter().filter(|r| test(r)).count() as f64 / records.len() as f64
}

fn assert_near(what: &str, actual: f64, expected: f64, tolerance: f64) {
    assert!((actual - expected).abs() <= tolerance, "{what}: {actual:.4}, expected {expected} ± {tolerance}");
}

/// What a careful normaliser makes of a typed Japanese number: full-width
/// characters folded, separators and a `(0)` after `+81` dropped, then a
/// national number of the right length for its prefix.
fn reference_e164(typed: &str) -> Option<String> {
    let mut folded = String::new();
    for c in typed.chars() {
        folded.push(match c {
            '０'..='９' => char::from_u32(u32::from(c) - 0xFF10 + u32::from('0'))?,
            '－' | '−' | 'ー' => '-',
            '（' => '(',
            '）' => ')',
            '＋' => '+',
            '\u{3000}' => ' ',
            other => other,
        });
    }
    let (international, rest) = match folded.strip_prefix("+81") {
        Some(rest) => (true, rest.trim_start_matches([' ', '-']).replacen("(0)", "", 1)),
        None => (false, folded.clone()),
    };
    let mut digits = String::new();
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '-' | ' ' | '(' | ')' => {}
            _ => return None,
        }
    }
    let national = if international {
        if digits.starts_with('0') {
            return None;
        }
        format!("0{digits}")
    } else {
        digits
    };
    let bytes = national.as_bytes();
    if bytes.first() != Some(&b'0') || bytes.get(1).is_none_or(|d| *d == b'0') {
        return None;
    }
    let eleven = ["050", "070", "080", "090", "0800"].iter().any(|p| national.starts_with(p));
    let valid = match national.len() {
        10 => !eleven,
        11 => eleven,
        _ => false,
    };
    valid.then(|| format!("+81{}", &national[1..]))
}

fn is_e164_jp(text: &str) -> bool {
    text.strip_prefix("+81")
        .is_some_and(|rest| (9..=10).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_digit()))
}

#[test]
fn the_reference_normaliser_reads_the_forms_people_type() {
    let cases: &[(&str, Option<&str>)] = &[
        ("03-1234-5678", Some("+81312345678")),
        ("0312345678", Some("+81312345678")),
        ("03(1234)5678", Some("+81312345678")),
        ("(03)1234-5678", Some("+81312345678")),
        ("03 1234 5678", Some("+81312345678")),
        ("+81 3-1234-5678", Some("+81312345678")),
        ("+81 (0)3-1234-5678", Some("+81312345678")),
        ("+81-90-1234-5678", Some("+819012345678")),
        ("+819012345678", Some("+819012345678")),
        ("０３－１２３４－５６７８", Some("+81312345678")),
        ("052-123-4567", Some("+81521234567")),
        ("0466-12-3456", Some("+81466123456")),
        ("04992-2-3456", Some("+81499223456")),
        ("050-1234-5678", Some("+815012345678")),
        ("0120-123-456", Some("+81120123456")),
        ("0800-123-4567", Some("+818001234567")),
        ("内線123", None),
        ("03-1234", None),
        ("090-1234-567", None),
        ("03-1234-56789", None),
        ("000-0000-0000", None),
        ("0120-123-4567", None),
        ("不明", None),
    ];
    for (typed, expected) in cases {
        assert_eq!(reference_e164(typed).as_deref(), *expected, "{typed}");
    }
}

#[test]
fn rng_is_deterministic_and_in_range() {
    let (mut a, mut b) = (Rng::new(42), Rng::new(42));
    let first: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
    assert_eq!(first, (0..100).map(|_| b.next_u64()).collect::<Vec<_>>());
    let mut other = Rng::new(43);
    assert_ne!(first, (0..100).map(|_| other.next_u64()).collect::<Vec<_>>());

    let mut rng = Rng::new(7);
    assert_eq!(rng.below(0), 0);
    assert_eq!(rng.below(1), 0);
    let mut counts = [0usize; 6];
    for _ in 0..60_000 {
        let x = rng.below(6);
        assert!(x < 6);
        counts[x as usize] += 1;
    }
    assert!(counts.iter().all(|&c| (9_000..11_000).contains(&c)), "{counts:?}");
    assert!(!rng.chance(0.0) && rng.chance(1.0));
    let heads = (0..10_000).filter(|_| rng.chance(0.3)).count();
    assert!((2_800..3_200).contains(&heads), "{heads}");

    let items = ["a", "b", "c"];
    let seen: BTreeSet<&str> = (0..100).map(|_| *rng.pick(&items)).collect();
    assert_eq!(seen.len(), 3);
    let weighted: Vec<&str> =
        (0..1_000).map(|_| rng.pick_weighted(&[("x", 0u64), ("y", 9), ("z", 1)], |i| i.1).0).collect();
    assert!(!weighted.contains(&"x"));
    assert!(weighted.iter().filter(|w| **w == "y").count() > 800);
    assert_eq!(rng.pick_weighted(&[("only", 0u64)], |i| i.1).0, "only");
}

#[test]
fn the_same_seed_gives_the_same_data() {
    type Make = fn(usize, &GenOptions) -> Vec<Generated>;
    let makers: &[(&str, Make)] = &[("Lead", leads), ("Account", accounts), ("Contact", contacts)];
    for (object, make) in makers {
        let once = make(3_000, &opts(1));
        assert_eq!(once, make(3_000, &opts(1)), "{object}");
        assert_ne!(once, make(3_000, &opts(2)), "{object}");
        // A record's fields do not depend on how many are asked for.
        let few = make(10, &opts(1));
        let fields = |records: &[Generated]| records.iter().map(|r| r.fields.clone()).collect::<Vec<_>>();
        assert_eq!(fields(&few), fields(&once[..10]), "{object}");
    }
    // Different sObjects draw from different streams.
    assert_ne!(text_of(&leads(1, &opts(1))[0], "LastName"), None);
    let lead_names: Vec<_> = leads(20, &opts(1)).iter().map(|r| r.get("LastName").clone()).collect();
    let contact_names: Vec<_> = contacts(20, &opts(1)).iter().map(|r| r.get("LastName").clone()).collect();
    assert_ne!(lead_names, contact_names);

    let mut a = Rng::new(5);
    let mut b = Rng::new(5);
    let numbers: Vec<_> = (0..200).map(|_| phone_number(&mut a)).collect();
    assert_eq!(numbers, (0..200).map(|_| phone_number(&mut b)).collect::<Vec<_>>());
}

#[test]
fn every_field_fits_the_schema() {
    let generated = [
        ("Lead", leads(5_000, &opts(3))),
        ("Account", accounts(5_000, &opts(3))),
        ("Contact", contacts(5_000, &opts(3))),
    ];
    for (object, records) in &generated {
        let schema = schema::object(object).expect("known sObject");
        let names: Vec<&str> = records[0].fields.iter().map(|(name, _)| *name).collect();
        for record in records {
            let these: Vec<&str> = record.fields.iter().map(|(name, _)| *name).collect();
            assert_eq!(these, names, "{object}: every record lists the same fields");
            for (name, value) in &record.fields {
                let field = schema.field(name).unwrap_or_else(|| panic!("{object}.{name} is not in the schema"));
                assert_eq!(field.name, *name, "{object}.{name} is spelt as the schema spells it");
                assert!(field.createable, "{object}.{name} can be created");
                if field.required {
                    assert!(!value.is_null(), "{object}.{name} is required");
                }
                let Value::Text(text) = value else {
                    assert!(value.is_null(), "{object}.{name} is text or null: {value:?}");
                    continue;
                };
                assert!(!text.is_empty() && text.trim() == text, "{object}.{name}: {text:?}");
                let limit = match &field.ty {
                    FieldType::Text { length } | FieldType::TextArea { length } => *length,
                    FieldType::Phone => 40,
                    FieldType::Email => 80,
                    FieldType::Picklist { values, restricted } => {
                        if *restricted {
                            assert!(values.contains(&text.as_str()), "{object}.{name}: {text} is not allowed");
                        }
                        255
                    }
                    other => panic!("{object}.{name} of type {other:?} is not generated"),
                };
                assert!(salesforce_length(text) <= limit, "{object}.{name}: {text} is longer than {limit}");
            }
        }
    }
}

#[test]
fn names_come_in_the_forms_people_type_them() {
    assert!(FAMILIES.len() >= 60 && GIVENS.len() >= 60);
    let all: Vec<Generated> = leads(20_000, &opts(4)).into_iter().chain(contacts(20_000, &opts(4))).collect();
    let first = |r: &Generated| text_of(r, "FirstName").map(str::to_owned);
    let last = |r: &Generated| text_of(r, "LastName").map(str::to_owned).expect("LastName is required");

    let full_width = share(&all, |r| first(r).is_none() && last(r).contains('\u{3000}'));
    let no_first = share(&all, |r| first(r).is_none() && !last(r).contains('\u{3000}'));
    let romanised = share(&all, |r| last(r).is_ascii() && first(r).is_some_and(|f| f.is_ascii()));
    assert_near("full name in LastName", full_width, 0.01, 0.004);
    assert_near("FirstName missing", no_first, 0.02, 0.005);
    assert_near("romanised", romanised, 0.05, 0.01);
    for r in &all {
        let last = last(r);
        match first(r) {
            Some(first) => assert_eq!(first.is_ascii(), last.is_ascii(), "{first} {last}"),
            None => assert!(!last.is_ascii(), "{last}"),
        }
        if let Some((family, given)) = last.split_once('\u{3000}') {
            assert!(FAMILIES.iter().any(|f| f.kanji == family) && GIVENS.iter().any(|g| g.kanji == given), "{last}");
        }
    }

    // Family names follow their real frequency; both lists are used widely.
    let mut families: HashMap<String, usize> = HashMap::new();
    for r in all.iter().filter(|r| first(r).is_some_and(|f| !f.is_ascii())) {
        *families.entry(last(r)).or_default() += 1;
    }
    assert!(families.len() >= 60, "{} family names", families.len());
    assert!(families["佐藤"] > 3 * families["村田"], "佐藤 {} 村田 {}", families["佐藤"], families["村田"]);
    let givens: BTreeSet<String> = all.iter().filter_map(first).filter(|f| !f.is_ascii()).collect();
    assert!(givens.len() >= 60, "{} given names", givens.len());
    // 𠮷田 is there, and counts two UTF-16 units for 𠮷.
    let yoshida = all.iter().map(last).find(|l| l.starts_with('𠮷')).expect("𠮷田 appears");
    assert_eq!(salesforce_length(&yoshida), yoshida.chars().count() + 1);
}

#[test]
fn companies_come_in_every_legal_form() {
    let names: Vec<String> =
        accounts(5_000, &opts(5)).iter().filter_map(|r| text_of(r, "Name").map(str::to_owned)).collect();
    type Form = (&'static str, fn(&str) -> bool);
    let forms: &[Form] = &[
        ("株式会社XX (before)", |n| n.starts_with("株式会社") && !n.contains("ホールディングス")),
        ("XX株式会社 (after)", |n| n.ends_with("株式会社") && !n.contains("ホールディングス")),
        ("(株)XX", |n| n.starts_with("(株)")),
        ("㈱XX", |n| n.starts_with('㈱')),
        ("有限会社XX", |n| n.starts_with("有限会社")),
        ("合同会社XX", |n| n.starts_with("合同会社")),
        ("XXホールディングス", |n| n.contains("ホールディングス")),
        ("XX Co., Ltd.", |n| n.ends_with(" Co., Ltd.")),
        ("XX Inc.", |n| n.ends_with(" Inc.")),
        ("XX Corporation", |n| n.ends_with(" Corporation")),
        ("no legal form", |n| {
            !n.contains("会社") && !n.contains('株') && !n.contains(' ') && !n.contains("ホールディングス")
        }),
    ];
    for (form, test) in forms {
        let count = names.iter().filter(|n| test(n)).count();
        assert!(count >= 20, "{form}: {count} of {}", names.len());
    }
    assert!(names.iter().any(|n| n.contains("サンプル")));
    let lead_companies: Vec<Generated> = leads(10_000, &opts(5));
    assert_near(
        "個人 / 不明",
        share(&lead_companies, |r| matches!(text_of(r, "Company"), Some("個人" | "不明"))),
        0.015,
        0.005,
    );
}

#[test]
fn emails_use_only_reserved_or_invented_domains() {
    let all: Vec<Generated> = leads(10_000, &opts(6)).into_iter().chain(contacts(10_000, &opts(6))).collect();
    assert_near("null e-mail", share(&all, |r| r.get("Email").is_null()), 0.15, 0.015);
    let reserved = ["example.co.jp", "example.ne.jp", "example.jp"];
    let mut domains = BTreeSet::new();
    for email in all.iter().filter_map(|r| text_of(r, "Email")) {
        let (local, domain) = email.split_once('@').unwrap_or_else(|| panic!("{email}"));
        assert!(!local.is_empty() && local.len() <= 64, "{email}");
        assert!(local.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)), "{email}");
        assert!(!local.starts_with('.') && !local.ends_with('.'), "{email}");
        assert!(domain.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-".contains(&b)), "{email}");
        let safe =
            domain.ends_with(".example") || reserved.iter().any(|r| domain == *r || domain.ends_with(&format!(".{r}")));
        assert!(safe, "{email} is not at a reserved domain");
        domains.insert(domain.to_owned());
    }
    for free in ["gmail", "yahoo", "hotmail", "outlook", "icloud", "docomo", "ezweb", "softbank"] {
        assert!(!domains.iter().any(|d| d.contains(free)), "{free}");
    }
    assert!(domains.iter().any(|d| d.ends_with("-shoji.example")));
    assert!(domains.contains("example.ne.jp"));

    for site in accounts(2_000, &opts(6)).iter().filter_map(|r| text_of(r, "Website")) {
        let host = site.trim_start_matches("https://").trim_start_matches("http://").trim_end_matches('/');
        assert!(host.ends_with(".example") || host.ends_with(".example.jp"), "{site}");
    }
}

/// The style of a typed number, read from its text alone.
fn style_of(typed: &str, e164: Option<&str>) -> Style {
    if e164.is_none() {
        Style::Broken
    } else if typed.chars().any(|c| ('０'..='９').contains(&c)) {
        Style::FullWidth
    } else if typed.starts_with("+81 (0)") {
        Style::IntlTrunk
    } else if typed.starts_with("+81 ") {
        Style::IntlSpace
    } else if typed.starts_with("+81-") {
        Style::IntlHyphens
    } else if typed.starts_with("+81") {
        Style::IntlCompact
    } else if typed.starts_with('(') {
        Style::BracketArea
    } else if typed.contains('(') {
        Style::BracketMiddle
    } else if typed.contains(' ') {
        Style::Spaces
    } else if typed.bytes().all(|b| b.is_ascii_digit()) {
        Style::Digits
    } else {
        Style::Hyphens
    }
}

fn kind_of(e164: &str) -> Kind {
    let national = format!("0{}", &e164[3..]);
    if national.starts_with("0120") || national.starts_with("0800") {
        Kind::TollFree
    } else if ["090", "080", "070"].iter().any(|p| national.starts_with(p)) {
        Kind::Mobile
    } else if national.starts_with("050") {
        Kind::Ip
    } else {
        Kind::Fixed
    }
}

#[test]
fn every_form_of_phone_number_appears_and_denotes_its_e164() {
    let mut rng = Rng::new(8);
    let numbers: Vec<(String, Option<String>)> = (0..10_000).map(|_| phone_number(&mut rng)).collect();
    let mut styles: BTreeMap<String, usize> = BTreeMap::new();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut area_lengths = BTreeSet::new();
    for (typed, e164) in &numbers {
        assert!(salesforce_length(typed) <= 40, "{typed}");
        assert_eq!(reference_e164(typed), *e164, "{typed}");
        *styles.entry(format!("{:?}", style_of(typed, e164.as_deref()))).or_default() += 1;
        let Some(e164) = e164 else { continue };
        assert!(is_e164_jp(e164), "{e164}");
        let kind = kind_of(e164);
        *kinds.entry(format!("{kind:?}")).or_default() += 1;
        let groups: Vec<&str> = typed.split('-').collect();
        if kind == Kind::Fixed && groups.len() == 3 && !typed.starts_with('+') && typed.is_ascii() {
            // Area code, exchange, subscriber: 10 digits, split as numbering plans do.
            let (area, exchange, subscriber) = (groups[0], groups[1], groups[2]);
            assert!(CITIES.iter().any(|c| c.area == area), "{typed}: unknown area code");
            assert_eq!((area.len() + exchange.len(), subscriber.len()), (6, 4), "{typed}");
            assert!(!exchange.starts_with(['0', '1']), "{typed}");
            area_lengths.insert(area.len());
        }
    }
    let expected_styles = [
        Style::Hyphens,
        Style::Digits,
        Style::BracketMiddle,
        Style::BracketArea,
        Style::Spaces,
        Style::IntlSpace,
        Style::IntlHyphens,
        Style::IntlCompact,
        Style::IntlTrunk,
        Style::FullWidth,
        Style::Broken,
    ];
    for style in expected_styles {
        assert!(styles.get(&format!("{style:?}")).is_some_and(|c| *c >= 10), "{style:?} in {styles:?}");
    }
    assert!(styles["Hyphens"] > numbers.len() / 2, "{styles:?}");
    let broken = styles["Broken"] as f64 / numbers.len() as f64;
    assert_near("unnormalisable", broken, 0.01, 0.005);
    let full_width = styles["FullWidth"] as f64 / numbers.len() as f64;
    assert_near("full-width", full_width, 0.04, 0.01);
    for kind in ["Fixed", "Mobile", "Ip", "TollFree"] {
        assert!(kinds.get(kind).is_some_and(|c| *c >= 100), "{kind} in {kinds:?}");
    }
    assert_eq!(area_lengths, BTreeSet::from([2, 3, 4, 5]));
    // Toll-free numbers are never written in an international form.
    assert!(numbers.iter().all(|(typed, _)| !typed.starts_with("+81120") && !typed.starts_with("+81 120")));

    let mut rng = Rng::new(9);
    for _ in 0..2_000 {
        let (typed, e164) = mobile_number(&mut rng);
        assert_eq!(reference_e164(&typed), e164, "{typed}");
        if let Some(e164) = e164 {
            assert!(e164.len() == 13 && kind_of(&e164) == Kind::Mobile, "{typed} {e164}");
        }
    }
}

#[test]
fn one_number_renders_in_every_style() {
    let tokyo = Number { kind: Kind::Fixed, groups: ["03".into(), "1234".into(), "5678".into()] };
    let mobile = Number { kind: Kind::Mobile, groups: ["090".into(), "1234".into(), "5678".into()] };
    let island = Number { kind: Kind::Fixed, groups: ["04992".into(), "2".into(), "3456".into()] };
    let cases: &[(&Number, Style, &str)] = &[
        (&tokyo, Style::Hyphens, "03-1234-5678"),
        (&tokyo, Style::Digits, "0312345678"),
        (&tokyo, Style::BracketMiddle, "03(1234)5678"),
        (&tokyo, Style::BracketArea, "(03)1234-5678"),
        (&tokyo, Style::Spaces, "03 1234 5678"),
        (&tokyo, Style::IntlSpace, "+81 3-1234-5678"),
        (&tokyo, Style::IntlTrunk, "+81 (0)3-1234-5678"),
        (&tokyo, Style::FullWidth, "０３－１２３４－５６７８"),
        (&mobile, Style::IntlHyphens, "+81-90-1234-5678"),
        (&mobile, Style::IntlCompact, "+819012345678"),
        (&island, Style::Hyphens, "04992-2-3456"),
    ];
    for (number, style, expected) in cases {
        assert_eq!(number.render(*style), *expected, "{style:?}");
        assert_eq!(reference_e164(expected), Some(number.e164()), "{expected}");
    }
    assert_eq!(tokyo.e164(), "+81312345678");
    assert_eq!(mobile.e164(), "+819012345678");
}

#[test]
fn phone_fields_are_null_as_often_as_in_real_orgs() {
    let lead_records = leads(10_000, &opts(10));
    let contact_records = contacts(10_000, &opts(10));
    let account_records = accounts(10_000, &opts(10));
    let cases: &[(&str, &[Generated], &str, f64)] = &[
        ("Lead", &lead_records, "Phone", 0.10),
        ("Lead", &lead_records, "MobilePhone", 0.60),
        ("Contact", &contact_records, "Phone", 0.10),
        ("Contact", &contact_records, "MobilePhone", 0.10),
        ("Account", &account_records, "Phone", 0.10),
    ];
    for (object, records, field, expected) in cases {
        assert_near(&format!("null {object}.{field}"), share(records, |r| r.get(field).is_null()), *expected, 0.015);
        for typed in records.iter().filter_map(|r| text_of(r, field)) {
            let e164 = reference_e164(typed);
            if *field == "MobilePhone" {
                assert!(e164.is_none_or(|e| kind_of(&e) == Kind::Mobile), "{object}.{field}: {typed}");
            }
        }
    }
}

#[test]
fn account_phones_are_in_the_area_of_their_city() {
    let mut checked = 0;
    for account in accounts(5_000, &opts(11)) {
        let (Some(typed), Some(city)) = (text_of(&account, "Phone"), text_of(&account, "BillingCity")) else {
            continue;
        };
        let city = CITIES
            .iter()
            .find(|c| city == c.name || city.strip_prefix(c.prefecture) == Some(c.name))
            .expect("a known city");
        let Some(e164) = reference_e164(typed) else { continue };
        if kind_of(&e164) == Kind::Fixed {
            assert!(e164.starts_with(&format!("+81{}", &city.area[1..])), "{typed} in {}", city.name);
            checked += 1;
        }
    }
    assert!(checked > 2_800, "{checked}");
    assert!(phone::fixed_in(&mut Rng::new(1), &CITIES[0]).kind == Kind::Fixed);
}

#[test]
fn modstamps_spread_over_the_window_with_bulk_import_clusters() {
    let o = opts(12);
    let records = leads(10_000, &o);
    let now = datetime!(2026-11-20 10:02:03.456 UTC);
    let start = now - o.spread;
    let mut runs: HashMap<OffsetDateTime, usize> = HashMap::new();
    for pair in records.windows(2) {
        assert!(pair[0].modified_at <= pair[1].modified_at, "ascending");
    }
    for r in &records {
        assert!(r.modified_at >= start && r.modified_at <= now, "{}", r.modified_at);
        assert_eq!(r.modified_at.nanosecond() % 1_000_000, 0, "milliseconds");
        *runs.entry(r.modified_at).or_default() += 1;
    }
    let clusters: Vec<usize> = runs.values().copied().filter(|c| *c > 1).collect();
    assert!(!clusters.is_empty(), "clusters exist");
    assert!(clusters.iter().all(|c| (50..=500).contains(c)), "{clusters:?}");
    let clustered: usize = clusters.iter().sum();
    assert!((100..=200).contains(&clustered), "{clustered} clustered records");
    let middle = start + o.spread / 2;
    assert_near("first half", share(&records, |r| r.modified_at < middle), 0.5, 0.03);

    // Every size gets its share of clusters, on average.
    let mut rng = Rng::new(13);
    let table: &[(usize, usize, usize)] = &[(0, 0, 0), (49, 0, 0), (10_000, 151, 200), (100_000, 1_951, 2_000)];
    for (n, low, high) in table {
        let total: usize = cluster_sizes(*n, &mut rng).iter().sum();
        assert!((*low..=*high).contains(&total), "{n}: {total}");
    }
    let lucky = (0..1_000).filter(|_| !cluster_sizes(1_000, &mut rng).is_empty()).count();
    assert_near("clusters among 1,000", lucky as f64 / 1_000.0, 0.4, 0.05);

    // Zero spread puts everything at now; no records, no times.
    let still = GenOptions { spread: Duration::ZERO, ..opts(14) };
    assert!(accounts(100, &still).iter().all(|r| r.modified_at == now));
    assert!(contacts(0, &o).is_empty());
}

#[test]
fn typed_numbers_are_what_their_style_says() {
    let mut rng = Rng::new(15);
    let mut seen = BTreeSet::new();
    for _ in 0..5_000 {
        let number = phone::any(&mut rng);
        let style = phone::style_for(&mut rng, &number);
        let typed = phone::type_as(&mut rng, &number, style);
        assert_eq!(style_of(&typed.text, typed.e164.as_deref()), style, "{}", typed.text);
        match &typed.e164 {
            Some(e164) => {
                assert_eq!(*e164, number.e164(), "{}", typed.text);
                assert_eq!(kind_of(e164), number.kind, "{}", typed.text);
            }
            None => assert_eq!(style, Style::Broken),
        }
        seen.insert(format!("{style:?}"));
    }
    assert_eq!(seen.len(), 11, "{seen:?}");
}
