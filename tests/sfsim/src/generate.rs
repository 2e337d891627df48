//! Realistic Japanese CRM data, deterministic: Leads, Contacts and Accounts
//! that look like what Japanese sales teams type into Salesforce, for
//! seeding orgs in tests, demos and benchmarks.
//!
//! What makes it realistic, and hard for a connector:
//! - names in kanji weighted by real frequency, some romanised (`Taro` /
//!   `Yamada`), some without a first name, some with the whole name in
//!   `LastName` separated by a full-width space (`山田　太郎`), and a few
//!   variant characters (髙橋, and 𠮷田 whose first character is a surrogate
//!   pair in UTF-16);
//! - company names in every legal form (`株式会社サンプル商事`,
//!   `富士工業株式会社`, `(株)桜物産`, `有限会社…`, `合同会社…`,
//!   `…ホールディングス`, `Sakura Tech Co., Ltd.`);
//! - phone numbers in every style people type them (see [`phone_number`]);
//! - modification times spread over a window, with bulk-import clusters of
//!   50 to 500 records sharing one millisecond.
//!
//! Every e-mail domain and web site is reserved or invented under
//! `.example`, `example.co.jp`, `example.ne.jp` or `example.jp`, so no real
//! mailbox is ever named.
//!
//! The same seed always gives the same data. A record's fields do not depend
//! on how many records are asked for (`leads(10, o)` has the fields of the
//! first ten of `leads(1000, o)`); the modification times, which carry the
//! clusters, do.

mod phone;
#[cfg(test)]
mod tests;
mod words;

use std::iter;

use time::{Duration, OffsetDateTime};

pub use self::phone::{mobile_number, phone_number};
use self::words::{
    CITIES, DEPARTMENTS, ENGLISH_TRADES, FAMILIES, FREE_DOMAINS, Family, GIVENS, Given, STEMS, TITLES, TRADES,
};
use crate::value::Value;

/// A small deterministic PRNG (splitmix64): fast, good enough for test
/// data, and the same everywhere.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64's output function: a bijective mix of 64 bits.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// A uniform integer in `0..n`, without modulo bias; 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Lemire's multiply-and-reject.
        let threshold = n.wrapping_neg() % n;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(n);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    /// True with probability `p` (false for `p <= 0`, true for `p >= 1`).
    pub fn chance(&mut self, p: f64) -> bool {
        let unit = (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        unit < p
    }

    /// One of `items`, uniformly.
    ///
    /// # Panics
    /// When `items` is empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// One of `items`, with probability proportional to `weight` (uniformly
    /// when every weight is 0).
    ///
    /// # Panics
    /// When `items` is empty.
    pub fn pick_weighted<'a, T>(&mut self, items: &'a [T], weight: impl Fn(&T) -> u64) -> &'a T {
        let total = items.iter().map(&weight).fold(0u64, u64::saturating_add);
        let mut ticket = self.below(total);
        for item in items {
            let w = weight(item);
            if ticket < w {
                return item;
            }
            ticket -= w;
        }
        self.pick(items)
    }

    /// `Some(make(self))` with probability `p`.
    fn maybe<T>(&mut self, p: f64, make: impl FnOnce(&mut Self) -> T) -> Option<T> {
        if self.chance(p) { Some(make(self)) } else { None }
    }
}

/// What to generate around.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// Fixes every choice: the same seed gives the same records.
    pub seed: u64,
    /// Modstamps are spread over [now - spread, now], e.g. two years.
    pub now: OffsetDateTime,
    /// How far back modstamps go; zero puts every record at `now`.
    pub spread: Duration,
}

impl GenOptions {
    /// Options with modstamps spread over the two years before `now`.
    pub fn new(seed: u64, now: OffsetDateTime) -> Self {
        Self { seed, now, spread: Duration::days(730) }
    }
}

/// One generated record's fields, by API name, as `Value`s (the server adds
/// Id, CreatedDate, LastModifiedDate, SystemModstamp... from `modified_at`).
///
/// Every record of one sObject lists the same fields in the same order;
/// a field left empty, as people leave them, is [`Value::Null`].
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The fields, by API name as the schema spells it.
    pub fields: Vec<(&'static str, Value)>,
    /// When the record was last modified, to the millisecond, within
    /// [`GenOptions::now`] - [`GenOptions::spread`] and `now`.
    pub modified_at: OffsetDateTime,
}

impl Generated {
    /// A field's value by API name; [`Value::Null`] when it is not among the
    /// fields.
    pub fn get(&self, name: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.fields.iter().find(|(field, _)| *field == name).map_or(&NULL, |(_, value)| value)
    }
}

/// Separate streams per sObject, and for fields and times, so that one seed
/// gives unrelated Leads and Contacts and fields do not depend on `n`.
const LEAD_STREAM: u64 = 0x4C45_4144;
const ACCOUNT_STREAM: u64 = 0x4143_4354;
const CONTACT_STREAM: u64 = 0x434F_4E54;
const TIME_STREAM: u64 = 0x5449_4D45_0000_0000;

fn stream(seed: u64, salt: u64) -> Rng {
    Rng::new(mix64(seed ^ mix64(salt.wrapping_add(GOLDEN_GAMMA))))
}

/// `n` records made by `make`, with modstamps, in ascending `modified_at`
/// order (so ids handed out in order follow time, as in a real org).
fn records(
    n: usize,
    opts: &GenOptions,
    salt: u64,
    mut make: impl FnMut(&mut Rng) -> Vec<(&'static str, Value)>,
) -> Vec<Generated> {
    let mut rng = stream(opts.seed, salt);
    let times = modstamps(n, opts, &mut stream(opts.seed, salt ^ TIME_STREAM));
    times.into_iter().map(|modified_at| Generated { fields: make(&mut rng), modified_at }).collect()
}

/// Leads: FirstName, LastName, Company, Email, Phone, MobilePhone, Title,
/// Status, LeadSource.
///
/// Email is null in ~15%, Phone in ~10%, MobilePhone in ~60% and Title in
/// ~40% of leads. Status is never `Closed - Converted` (only a conversion
/// sets that); LeadSource is sometimes a value the org added (`展示会`,
/// `セミナー`) and sometimes null. About 1.5% of leads have `個人` or `不明`
/// as Company, as people type when the required field does not apply.
pub fn leads(n: usize, opts: &GenOptions) -> Vec<Generated> {
    const STATUSES: &[(&str, u64)] =
        &[("Open - Not Contacted", 45), ("Working - Contacted", 35), ("Closed - Not Converted", 20)];
    const SOURCES: &[(Option<&str>, u64)] = &[
        (Some("Web"), 35),
        (Some("Phone Inquiry"), 15),
        (Some("Partner Referral"), 12),
        (Some("Other"), 10),
        (Some("展示会"), 10),
        (Some("セミナー"), 5),
        (None, 13),
    ];
    records(n, opts, LEAD_STREAM, |rng| {
        let person = person(rng);
        let (first, last) = typed_name(rng, person);
        let company = if rng.chance(0.015) { None } else { Some(company(rng)) };
        let company_name = match &company {
            Some(company) => company.name.clone(),
            None => (*rng.pick(&["個人", "不明"])).to_owned(),
        };
        let email = rng.maybe(0.85, |rng| email(rng, person, company.as_ref()));
        let phone = rng.maybe(0.9, |rng| phone_number(rng).0);
        let mobile = rng.maybe(0.4, |rng| mobile_number(rng).0);
        let title = rng.maybe(0.6, |rng| *rng.pick(TITLES));
        let status = rng.pick_weighted(STATUSES, |s| s.1).0;
        let source = rng.pick_weighted(SOURCES, |s| s.1).0;
        vec![
            ("FirstName", first),
            ("LastName", last),
            ("Company", Value::Text(company_name)),
            ("Email", text(email)),
            ("Phone", text(phone)),
            ("MobilePhone", text(mobile)),
            ("Title", text(title)),
            ("Status", Value::Text(status.to_owned())),
            ("LeadSource", text(source)),
        ]
    })
}

/// Accounts: Name (a company), Phone, Website, Industry, BillingCity.
///
/// Phone (null in ~10%) is mostly a fixed line in the BillingCity's area
/// code, else a toll-free or 050 number; Website is present in ~65%,
/// Industry (from the line of business) and BillingCity (sometimes with its
/// prefecture, `東京都港区`) in ~90%.
pub fn accounts(n: usize, opts: &GenOptions) -> Vec<Generated> {
    records(n, opts, ACCOUNT_STREAM, |rng| {
        let company = company(rng);
        let city = rng.pick_weighted(CITIES, |c| c.weight);
        let phone = rng.maybe(0.9, |rng| {
            let number = match rng.below(100) {
                0..85 => phone::fixed_in(rng, city),
                85..95 => phone::toll_free(rng),
                _ => phone::ip(rng),
            };
            phone::typed(rng, &number).text
        });
        let website = rng.maybe(0.65, |rng| website(rng, &company.slug));
        let industry = rng.maybe(0.9, |_| company.industry);
        let billing_city = rng.maybe(0.9, |rng| {
            if rng.chance(0.15) { format!("{}{}", city.prefecture, city.name) } else { city.name.to_owned() }
        });
        vec![
            ("Name", Value::Text(company.name)),
            ("Phone", text(phone)),
            ("Website", text(website)),
            ("Industry", text(industry)),
            ("BillingCity", text(billing_city)),
        ]
    })
}

/// Contacts: FirstName, LastName, Email, Phone, MobilePhone, Title,
/// Department; AccountId is attached by the caller.
///
/// Email is null in ~15%, Phone and MobilePhone in ~10%, Title in ~15% and
/// Department in ~20% of contacts. E-mail domains are those of invented
/// companies, not of the account the caller attaches.
pub fn contacts(n: usize, opts: &GenOptions) -> Vec<Generated> {
    records(n, opts, CONTACT_STREAM, |rng| {
        let person = person(rng);
        let (first, last) = typed_name(rng, person);
        let employer = rng.maybe(0.8, company);
        let email = rng.maybe(0.85, |rng| email(rng, person, employer.as_ref()));
        let phone = rng.maybe(0.9, |rng| phone_number(rng).0);
        let mobile = rng.maybe(0.9, |rng| mobile_number(rng).0);
        let title = rng.maybe(0.85, |rng| *rng.pick(TITLES));
        let department = rng.maybe(0.8, |rng| *rng.pick(DEPARTMENTS));
        vec![
            ("FirstName", first),
            ("LastName", last),
            ("Email", text(email)),
            ("Phone", text(phone)),
            ("MobilePhone", text(mobile)),
            ("Title", text(title)),
            ("Department", text(department)),
        ]
    })
}

/// A text value, or null.
fn text(value: Option<impl Into<String>>) -> Value {
    value.map_or(Value::Null, |v| Value::Text(v.into()))
}

/// A person, before anyone types their name.
#[derive(Clone, Copy)]
struct Person {
    family: &'static Family,
    given: &'static Given,
}

fn person(rng: &mut Rng) -> Person {
    Person { family: rng.pick_weighted(FAMILIES, |f| f.weight), given: rng.pick(GIVENS) }
}

/// FirstName and LastName as people type them: kanji mostly; romanised in
/// ~5% (`Taro` / `Yamada`, sometimes `YAMADA`); FirstName left out in ~2%;
/// the whole name in LastName with a full-width space in ~1% (`山田　太郎`).
fn typed_name(rng: &mut Rng, person: Person) -> (Value, Value) {
    let Person { family, given } = person;
    match rng.below(1000) {
        0..10 => (Value::Null, Value::Text(format!("{}\u{3000}{}", family.kanji, given.kanji))),
        10..30 => (Value::Null, Value::Text(family.kanji.to_owned())),
        30..80 => {
            let last = if rng.chance(0.2) { family.romaji.to_ascii_uppercase() } else { family.romaji.to_owned() };
            (Value::Text(given.romaji.to_owned()), Value::Text(last))
        }
        _ => (Value::Text(given.kanji.to_owned()), Value::Text(family.kanji.to_owned())),
    }
}

/// A company: its name as typed, the slug of its invented domain, and the
/// `Industry` its line of business suggests.
struct Company {
    name: String,
    slug: String,
    industry: &'static str,
}

fn company(rng: &mut Rng) -> Company {
    let &(stem, stem_slug) = rng.pick(STEMS);
    let &(trade, trade_slug, industry) = rng.pick(TRADES);
    let base = format!("{stem}{trade}");
    let slug = format!("{stem_slug}-{trade_slug}");
    let name = match rng.below(100) {
        0..35 => format!("株式会社{base}"),
        35..62 => format!("{base}株式会社"),
        62..66 => format!("株式会社 {base}"),
        66..69 => format!("(株){base}"),
        69..71 => format!("㈱{base}"),
        71..78 => format!("有限会社{base}"),
        78..83 => format!("合同会社{base}"),
        83..88 => {
            let name = if rng.chance(0.6) {
                format!("株式会社{stem}ホールディングス")
            } else {
                format!("{stem}ホールディングス株式会社")
            };
            let industry = *rng.pick(&["Finance", "Other"]);
            return Company { name, slug: format!("{stem_slug}-hd"), industry };
        }
        88..96 => {
            let &(word, word_slug, industry) = rng.pick(ENGLISH_TRADES);
            let form = rng.pick_weighted(&[("Co., Ltd.", 5), ("Inc.", 2), ("Corporation", 1)], |f| f.1).0;
            let name = format!("{} {word} {form}", capitalised(stem_slug));
            return Company { name, slug: format!("{stem_slug}-{word_slug}"), industry };
        }
        _ => base,
    };
    Company { name, slug, industry }
}

/// `sakura` → `Sakura`.
fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// A company's web site, as typed (sometimes without the scheme).
fn website(rng: &mut Rng, slug: &str) -> String {
    match rng.below(100) {
        0..50 => format!("https://www.{slug}.example/"),
        50..70 => format!("https://{slug}.example.jp"),
        70..85 => format!("http://www.{slug}.example"),
        _ => format!("www.{slug}.example"),
    }
}

/// A name-based address at the person's company (when there is one, mostly)
/// or at a provider: `taro.yamada@sample-shoji.example`,
/// `t-yamada@example.ne.jp`, `yamada@freemail.example`.
fn email(rng: &mut Rng, person: Person, company: Option<&Company>) -> String {
    let given = person.given.romaji.to_ascii_lowercase();
    let family = person.family.romaji.to_ascii_lowercase();
    let initial = given.chars().next().map(String::from).unwrap_or_default();
    let local = match rng.below(100) {
        0..30 => format!("{given}.{family}"),
        30..45 => format!("{initial}-{family}"),
        45..55 => family,
        55..65 => format!("{initial}.{family}"),
        65..75 => format!("{family}.{given}"),
        75..80 => format!("{family}-{given}"),
        80..85 => format!("{initial}{family}"),
        85..90 => format!("{family}_{initial}"),
        90..95 => format!("{family}{:02}", rng.below(100)),
        _ => format!("{given}_{family}{}", 60 + rng.below(40)),
    };
    let domain = match company {
        Some(company) if rng.chance(0.75) => match rng.below(100) {
            0..55 => format!("{}.example", company.slug),
            55..85 => format!("{}.example.jp", company.slug),
            _ => format!("mail.{}.example", company.slug),
        },
        _ => (*rng.pick(FREE_DOMAINS)).to_owned(),
    };
    format!("{local}@{domain}")
}

/// Bulk imports: clusters of this many records share one millisecond.
const CLUSTER_MIN: usize = 50;
const CLUSTER_MAX: usize = 500;

/// `n` modstamps in ascending order, to the millisecond, uniform over
/// [now - spread, now] except that ~2% of them come in clusters of 50 to
/// 500 equal ones.
fn modstamps(n: usize, opts: &GenOptions, rng: &mut Rng) -> Vec<OffsetDateTime> {
    let now = opts.now - Duration::nanoseconds(i64::from(opts.now.nanosecond() % 1_000_000));
    let spread_ms = u64::try_from(opts.spread.whole_milliseconds().clamp(0, i128::from(i64::MAX - 1))).unwrap_or(0);
    let at = |rng: &mut Rng| {
        let back = rng.below(spread_ms + 1);
        i64::try_from(back).ok().and_then(|back| now.checked_sub(Duration::milliseconds(back))).unwrap_or(now)
    };
    let mut times = Vec::with_capacity(n);
    for size in cluster_sizes(n, rng) {
        let t = at(rng);
        times.extend(iter::repeat_n(t, size));
    }
    while times.len() < n {
        times.push(at(rng));
    }
    times.sort();
    times
}

/// The sizes of the bulk-import clusters among `n` records: about 2% of
/// them in all. Below 2,500 records, where 2% is less than one cluster,
/// there is one cluster of 50 with the probability that keeps the average
/// at 2%.
fn cluster_sizes(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut budget = n / 50;
    if budget < CLUSTER_MIN {
        let lucky = n >= CLUSTER_MIN && rng.below(CLUSTER_MIN as u64) < budget as u64;
        budget = if lucky { CLUSTER_MIN } else { 0 };
    }
    let mut sizes = Vec::new();
    while budget >= CLUSTER_MIN {
        let size = CLUSTER_MIN + rng.below((budget.min(CLUSTER_MAX) - CLUSTER_MIN + 1) as u64) as usize;
        sizes.push(size);
        budget -= size;
    }
    sizes
}
