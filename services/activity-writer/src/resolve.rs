//! Which record each event's Task goes on (docs/behaviour.md §4), for a whole
//! batch at once, first match wins:
//! 1. the record the event names, if it still exists (a converted Lead is
//!    followed to its Contact, else its Account);
//! 2. the record the writer linked the customer to earlier, if it still exists;
//! 3. an existing record sharing a phone number (in E.164), else the e-mail,
//!    Contact → Lead → Account, converted Leads left out, most recently
//!    modified first ([`crate::matcher`]); candidates come from the
//!    importer's index and from SOQL over the forms a number may be stored
//!    in, since Salesforce's search index lags new records;
//! 4. a new record, created once per new caller however many events and
//!    writers meet it at once ([`crate::link`]'s claims); when the org's
//!    duplicate rules refuse it, the record they name.
//!
//! Each stage costs one SOQL per object for the batch (more only when a
//! batch's numbers would make a URL longer than Salesforce takes), and the
//! creates one sObject Collections call.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    time::{Duration, Instant},
};

use fa_amqp::{Failure as Refusal, Outcome};
use fa_messages::{AssistCompletedV1, LinkMethod, SObject, SalesforceId, SalesforceRef};
use fa_phone::{E164, Region};
use fa_salesforce::{ErrorCode, ItemError, Retry, soql::quote, write::NewRecord};
use fa_store::tenant::TenantConnection;
use serde::Deserialize;
use sqlx::PgPool;

use crate::{
    link::{self, Claim},
    matcher::{self, Candidate, Identity},
    new_record,
    org::{Failure, Org},
    verdict::{self, WriterCode},
};

/// How long a batch waits for another writer's claim on a new caller before
/// it retries the event later.
const CLAIM_WAIT: Duration = Duration::from_secs(15);

/// The longest a SOQL query's URL-encoded `WHERE` lists may grow before
/// they are split over several queries (Salesforce refuses URIs over
/// 16,384 bytes).
const MAX_ENCODED_TERMS: usize = 10_000;

/// Where one event's Task goes, or what became of the event.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// The Task goes on `target`; `linked` when the writer tied the customer
    /// to it in this batch (rules 3 and 4), to be recorded and announced.
    Found {
        /// The record.
        target: SalesforceRef,
        /// The Account of a Contact target, when Salesforce said: the
        /// Task's `WhatId`.
        account: Option<SalesforceId>,
        /// How the customer was newly tied to it.
        linked: Option<LinkMethod>,
    },
    /// The event cannot go on now (or ever).
    Stop(Outcome),
}

/// What the resolver needs beyond the org.
pub struct Context<'a> {
    /// The database.
    pub pool: &'a PgPool,
    /// The tenant.
    pub tenant: &'a str,
    /// The tenant's connection.
    pub connection: &'a TenantConnection,
    /// This writer's name in claims.
    pub writer: &'a str,
}

/// Resolves every event of the batch, in order.
///
/// # Errors
/// Only the database's: the caller retries the whole batch.
pub async fn resolve(
    ctx: &Context<'_>,
    org: &mut Org,
    events: &[&AssistCompletedV1],
) -> anyhow::Result<Vec<Resolution>> {
    let mut out: Vec<Option<Resolution>> = vec![None; events.len()];

    // Rules 1 and 2: the named record and the writer's own link, checked
    // alive with one query per object. Sent with them, in the same
    // Composite call, the rule 3 queries for the callers who name no record
    // and have no link: most batches are resolved by that one call.
    let customer_ids: Vec<String> = events.iter().map(|e| e.customer.id.clone()).collect();
    let links = link::links(ctx.pool, ctx.tenant, &customer_ids).await?;
    let (wanted, unnamed) = wanted_records(events, &customer_ids, &links);
    let identities: Vec<Identity> = events.iter().map(|e| identity(e)).collect();
    let alive_queries = alive_queries(&wanted);
    let early: Vec<&Identity> = unnamed.iter().map(|i| &identities[*i]).collect();
    let match_queries = candidate_queries(ctx, &early).await?;
    let queries: Vec<String> = alive_queries.iter().chain(&match_queries).map(|(_, soql)| soql.clone()).collect();
    let answers = match org.queries::<Row>(&queries).await {
        Ok(answers) => answers,
        Err(f) => return Ok(vec![Resolution::Stop(verdict::from_query_failure(&f)); events.len()]),
    };
    let (alive, mut candidates) = read_answers(&alive_queries, &match_queries, answers);

    let (dead_links, late) = named_or_linked(events, &customer_ids, &links, &alive, &unnamed, &mut out);
    forget_dead_links(ctx, &dead_links).await?;

    // Rule 3 for the callers whose record or link turned out gone: a second
    // look, only for them.
    if !late.is_empty() {
        look_again(ctx, org, &identities, &late, &mut candidates, &mut out).await?;
    }

    // Rule 3: match by phone, then e-mail.
    choose_matches(&identities, &candidates, &mut out);

    // Rule 4: a new record per new caller.
    let new: Vec<usize> = (0..events.len()).filter(|i| out[*i].is_none()).collect();
    if !new.is_empty() {
        for (i, resolution) in create(ctx, org, events, &identities, &new).await? {
            out[i] = Some(resolution);
        }
    }
    Ok(finish(out))
}

/// The records rules 1 and 2 check alive, by object (the one each event
/// names and the customer's link), and the events that have neither.
fn wanted_records(
    events: &[&AssistCompletedV1],
    customer_ids: &[String],
    links: &HashMap<String, SalesforceRef>,
) -> (HashMap<SObject, BTreeSet<SalesforceId>>, Vec<usize>) {
    let mut wanted: HashMap<SObject, BTreeSet<SalesforceId>> = HashMap::new();
    let mut unnamed = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let refs: Vec<&SalesforceRef> = event.customer.salesforce.iter().chain(links.get(&customer_ids[i])).collect();
        if refs.is_empty() {
            unnamed.push(i);
        }
        for r in refs {
            wanted.entry(r.object).or_default().insert(r.id.clone());
        }
    }
    (wanted, unnamed)
}

/// The first call's answers, in the order its queries went: the live
/// records, then rule 3's candidates.
fn read_answers(
    alive_queries: &[(SObject, String)],
    match_queries: &[(SObject, String)],
    answers: Vec<Vec<Row>>,
) -> (Alive, Candidates) {
    let mut answers = answers.into_iter();
    let mut alive = HashMap::new();
    for ((object, _), rows) in alive_queries.iter().zip(answers.by_ref()) {
        read_alive(*object, rows, &mut alive);
    }
    let mut candidates = Candidates::default();
    for ((object, _), rows) in match_queries.iter().zip(answers) {
        candidates.read(*object, rows);
    }
    (alive, candidates)
}

/// Rules 1 and 2: an event goes on the record it names, else on the
/// customer's linked record, when that is alive. Returns the customers
/// whose link is dead, and the events left without a record that rule 3
/// has not looked for yet (they named a record or had a link).
fn named_or_linked(
    events: &[&AssistCompletedV1],
    customer_ids: &[String],
    links: &HashMap<String, SalesforceRef>,
    alive: &Alive,
    unnamed: &[usize],
    out: &mut [Option<Resolution>],
) -> (Vec<String>, Vec<usize>) {
    let mut dead_links = Vec::new();
    let mut late = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let named = event.customer.salesforce.as_ref().and_then(|r| alive.get(&r.id));
        if let Some((target, account)) = named {
            out[i] = Some(Resolution::Found { target: target.clone(), account: account.clone(), linked: None });
            continue;
        }
        if let Some(linked) = links.get(&customer_ids[i]) {
            match alive.get(&linked.id) {
                Some((target, account)) => {
                    out[i] = Some(Resolution::Found { target: target.clone(), account: account.clone(), linked: None });
                    continue;
                }
                None => dead_links.push(customer_ids[i].clone()),
            }
        }
        if !unnamed.contains(&i) {
            late.push(i);
        }
    }
    (dead_links, late)
}

/// Forgets the links to records gone from Salesforce, so those customers
/// are matched again.
async fn forget_dead_links(ctx: &Context<'_>, dead_links: &[String]) -> anyhow::Result<()> {
    if !dead_links.is_empty() {
        tracing::info!(
            tenant_id = ctx.tenant,
            count = dead_links.len(),
            "linked records are gone from Salesforce; matching those customers again"
        );
        link::forget(ctx.pool, ctx.tenant, dead_links).await?;
    }
    Ok(())
}

/// Rule 3's candidates for the events at `late`, in one more call; should
/// it fail, those events stop.
async fn look_again(
    ctx: &Context<'_>,
    org: &mut Org,
    identities: &[Identity],
    late: &[usize],
    candidates: &mut Candidates,
    out: &mut [Option<Resolution>],
) -> anyhow::Result<()> {
    let who: Vec<&Identity> = late.iter().map(|i| &identities[*i]).collect();
    let queries = candidate_queries(ctx, &who).await?;
    let soqls: Vec<String> = queries.iter().map(|(_, soql)| soql.clone()).collect();
    match org.queries::<Row>(&soqls).await {
        Ok(answers) => {
            for ((object, _), rows) in queries.iter().zip(answers) {
                candidates.read(*object, rows);
            }
        }
        Err(f) => {
            for i in late {
                out[*i] = Some(Resolution::Stop(verdict::from_query_failure(&f)));
            }
        }
    }
    Ok(())
}

/// Rule 3 for each event not resolved yet: the candidate
/// [`matcher::choose`] picks, if any.
fn choose_matches(identities: &[Identity], candidates: &Candidates, out: &mut [Option<Resolution>]) {
    for (i, who) in identities.iter().enumerate() {
        if out[i].is_some() {
            continue;
        }
        if let Some((found, how)) = matcher::choose(who, &candidates.found) {
            out[i] = Some(Resolution::Found {
                target: found.record.clone(),
                account: found.account.clone(),
                linked: Some(how),
            });
        }
    }
}

fn finish(out: Vec<Option<Resolution>>) -> Vec<Resolution> {
    out.into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Resolution::Stop(Outcome::Retry {
                    failure: Refusal::new(WriterCode::NotResolved, "the record could not be resolved in this batch"),
                    after: None,
                })
            })
        })
        .collect()
}

/// The caller's numbers in E.164 (the customer's phones and the number of
/// the call) and lower-cased e-mail.
pub fn identity(event: &AssistCompletedV1) -> Identity {
    let mut phones: Vec<E164> = Vec::new();
    let numbers = event.customer.phones.iter().flatten().chain(event.call.customer_number.iter());
    for number in numbers {
        if let Some(e164) = fa_phone::normalize(number, Region::JAPAN)
            && !phones.contains(&e164)
        {
            phones.push(e164);
        }
    }
    let email = event.customer.email.as_deref().map(str::trim).filter(|e| !e.is_empty()).map(str::to_lowercase);
    Identity { phones, email }
}

/// The key of a new caller's claim: their first number, else their e-mail,
/// else Front Agent's customer id.
pub fn claim_key(event: &AssistCompletedV1, who: &Identity) -> String {
    // The smallest number, so the order Front Agent lists them in does not
    // change the key.
    if let Some(phone) = who.phones.iter().map(E164::as_str).min() {
        format!("phone:{phone}")
    } else if let Some(email) = &who.email {
        format!("email:{email}")
    } else {
        format!("customer:{}", event.customer.id)
    }
}

/// A row of any of the resolver's queries: the fields each selects.
#[derive(Deserialize)]
struct Row {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "IsConverted", default)]
    converted: bool,
    #[serde(rename = "ConvertedContactId", default)]
    converted_contact: Option<String>,
    #[serde(rename = "ConvertedAccountId", default)]
    converted_account: Option<String>,
    #[serde(rename = "AccountId", default)]
    account: Option<String>,
    #[serde(rename = "Phone", default)]
    phone: Option<String>,
    #[serde(rename = "Email", default)]
    email: Option<String>,
    #[serde(rename = "SystemModstamp", default, with = "fa_salesforce::datetime::optional_field")]
    modified_at: Option<time::OffsetDateTime>,
}

/// Where a Task for a live record goes, and that Contact's Account.
type Alive = HashMap<SalesforceId, (SalesforceRef, Option<SalesforceId>)>;

/// The queries that find which of `wanted` still exist: one per object
/// (more only for lists too long for one URL).
fn alive_queries(wanted: &HashMap<SObject, BTreeSet<SalesforceId>>) -> Vec<(SObject, String)> {
    let mut queries = Vec::new();
    for object in SObject::MATCH_ORDER {
        let Some(ids) = wanted.get(&object).filter(|ids| !ids.is_empty()) else { continue };
        let fields = match object {
            SObject::Lead => "Id, IsConverted, ConvertedContactId, ConvertedAccountId",
            SObject::Contact => "Id, AccountId",
            SObject::Account => "Id",
        };
        let terms: Vec<Term> = ids.iter().map(|id| Term::new("Id", id.as_str())).collect();
        for chunk in chunks(terms) {
            queries.push((object, format!("SELECT {fields} FROM {object} WHERE {}", condition(&chunk))));
        }
    }
    queries
}

/// Each live record of `rows` mapped to where a Task for it goes: a
/// converted Lead to its Contact, else its Account.
fn read_alive(object: SObject, rows: Vec<Row>, alive: &mut Alive) {
    for row in rows {
        let Ok(id) = SalesforceId::new(row.id) else { continue };
        let converted_account = row.converted_account.as_deref().and_then(|a| SalesforceId::new(a).ok());
        let target = if row.converted {
            let contact = row.converted_contact.as_deref().and_then(|c| SalesforceId::new(c).ok());
            match (contact, converted_account) {
                (Some(contact), account) => (SalesforceRef { object: SObject::Contact, id: contact }, account),
                (None, Some(account)) => (SalesforceRef { object: SObject::Account, id: account }, None),
                (None, None) => continue,
            }
        } else {
            let account = row.account.as_deref().and_then(|a| SalesforceId::new(a).ok());
            (SalesforceRef { object, id: id.clone() }, account)
        };
        alive.insert(id, target);
    }
}

/// The queries that find live records sharing a number or the e-mail with
/// any of `who`: one per imported object, over the forms the numbers may be
/// stored in, the e-mails, and the ids the importer's index knows for them.
///
/// # Errors
/// The database's, reading the index.
async fn candidate_queries(ctx: &Context<'_>, who: &[&Identity]) -> anyhow::Result<Vec<(SObject, String)>> {
    let phones: BTreeSet<&E164> = who.iter().flat_map(|w| w.phones.iter()).collect();
    let emails: BTreeSet<&str> = who.iter().filter_map(|w| w.email.as_deref()).collect();
    if phones.is_empty() && emails.is_empty() {
        return Ok(Vec::new());
    }
    let e164s: Vec<String> = phones.iter().map(|p| p.as_str().to_owned()).collect();
    let email_list: Vec<String> = emails.iter().map(|e| (*e).to_owned()).collect();
    // The index of the org the connection names now (a re-connect to
    // another org leaves the old org's rows unused).
    let hits = match ctx.connection.organization_id.as_deref() {
        Some(org_id) => fa_store::customer_index::find(ctx.pool, ctx.tenant, org_id, &e164s, &email_list).await?,
        None => Vec::new(),
    };
    let forms: BTreeSet<String> = phones.iter().flat_map(|p| fa_phone::stored_forms(p)).collect();

    let mut queries = Vec::new();
    for object in SObject::MATCH_ORDER {
        if !ctx.connection.objects.iter().any(|o| o == object.as_str()) {
            continue;
        }
        let mut terms: Vec<Term> = forms.iter().map(|f| Term::new("Phone", f)).collect();
        if object != SObject::Account {
            terms.extend(emails.iter().map(|e| Term::new("Email", e)));
        }
        terms.extend(hits.iter().filter(|h| h.object == object.as_str()).map(|h| Term::new("Id", &h.record_id)));
        if terms.is_empty() {
            continue;
        }
        let fields = match object {
            SObject::Contact => "Id, Phone, Email, SystemModstamp, AccountId",
            SObject::Lead => "Id, Phone, Email, SystemModstamp",
            SObject::Account => "Id, Phone, SystemModstamp",
        };
        let only_open = if object == SObject::Lead { "IsConverted = false AND " } else { "" };
        for chunk in chunks(terms) {
            queries.push((object, format!("SELECT {fields} FROM {object} WHERE {only_open}({})", condition(&chunk))));
        }
    }
    Ok(queries)
}

/// The records rule 3 chooses from, each once.
#[derive(Default)]
struct Candidates {
    found: Vec<Candidate>,
    seen: HashSet<SalesforceId>,
}

impl Candidates {
    fn read(&mut self, object: SObject, rows: Vec<Row>) {
        for row in rows {
            let Ok(id) = SalesforceId::new(row.id) else { continue };
            let Some(modified_at) = row.modified_at else { continue };
            if !self.seen.insert(id.clone()) {
                continue;
            }
            self.found.push(Candidate {
                record: SalesforceRef { object, id },
                phone: row.phone.as_deref().and_then(|p| fa_phone::normalize(p, Region::JAPAN)),
                email: row.email.map(|e| e.trim().to_lowercase()).filter(|e| !e.is_empty()),
                modified_at,
                account: row.account.as_deref().and_then(|a| SalesforceId::new(a).ok()),
            });
        }
    }
}

/// A claim this writer won: its key, the events of that caller, and the
/// record to create for them.
type Won = (String, Vec<usize>, NewRecord);

/// Rule 4 for the events at `new`: claims, then one Collections call for
/// the records this writer won.
async fn create(
    ctx: &Context<'_>,
    org: &mut Org,
    events: &[&AssistCompletedV1],
    identities: &[Identity],
    new: &[usize],
) -> anyhow::Result<Vec<(usize, Resolution)>> {
    let groups = group_by_claim(events, identities, new);
    let keys: Vec<String> = groups.iter().map(|(k, _)| k.clone()).collect();
    let mut claims = link::claim(ctx.pool, ctx.tenant, ctx.writer, &keys).await?;
    wait_for_claims(ctx, &mut claims).await?;

    let mut out = Vec::new();
    let won = sort_claims(ctx, events, groups, &claims, &mut out);
    if won.is_empty() {
        return Ok(out);
    }

    let records: Vec<NewRecord> = won.iter().map(|(_, _, r)| r.clone()).collect();
    let created = match org.create_records(&records).await {
        Ok(created) => created,
        Err(f) => {
            // Nothing known created; a create that did commit is found by the
            // next attempt's match (it carries the caller's number or e-mail).
            // A passing failure may have created the records after all: the
            // claims stay until they go stale, so no writer creates them
            // again meanwhile (the next attempt's match finds a record that
            // did commit). Any other failure created nothing.
            if !matches!(f, Failure::Transient(_)) {
                let keys: Vec<String> = won.iter().map(|(k, _, _)| k.clone()).collect();
                link::release(ctx.pool, ctx.tenant, ctx.writer, &keys).await?;
            }
            let outcome = verdict::from_failure(&f);
            out.extend(won.into_iter().flat_map(|(_, m, _)| m).map(|i| (i, Resolution::Stop(outcome.clone()))));
            return Ok(out);
        }
    };
    settle_claims(ctx, org, won, created.results, &mut out).await?;
    Ok(out)
}

/// The events at `new` grouped by their claim's key ([`claim_key`]), in
/// order: one new record per caller.
fn group_by_claim(events: &[&AssistCompletedV1], identities: &[Identity], new: &[usize]) -> Vec<(String, Vec<usize>)> {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for i in new {
        let key = claim_key(events[*i], &identities[*i]);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(*i),
            None => groups.push((key, vec![*i])),
        }
    }
    groups
}

/// Wait, a little, for records other writers are creating right now: a
/// claim held elsewhere is read again until it is filled or [`CLAIM_WAIT`]
/// has passed.
async fn wait_for_claims(ctx: &Context<'_>, claims: &mut HashMap<String, Claim>) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut waited = false;
    loop {
        let held: Vec<String> = claims.iter().filter(|(_, c)| **c == Claim::Held).map(|(k, _)| k.clone()).collect();
        if held.is_empty() || started.elapsed() >= CLAIM_WAIT {
            break;
        }
        waited = true;
        tokio::time::sleep(Duration::from_millis(200)).await;
        claims.extend(link::held(ctx.pool, ctx.tenant, &held).await?);
    }
    if waited {
        metrics::counter!("fa_activity_claims_waited_total", "service" => crate::SERVICE).increment(1);
    }
    Ok(())
}

/// Each caller by their claim: a record another writer made is theirs
/// too, a claim still held elsewhere is retried shortly, and a claim won
/// is returned with the record this writer is to create.
fn sort_claims(
    ctx: &Context<'_>,
    events: &[&AssistCompletedV1],
    groups: Vec<(String, Vec<usize>)>,
    claims: &HashMap<String, Claim>,
    out: &mut Vec<(usize, Resolution)>,
) -> Vec<Won> {
    let mut won: Vec<Won> = Vec::new();
    for (key, members) in groups {
        match claims.get(&key).cloned().unwrap_or(Claim::Held) {
            Claim::Filled(target, how) => {
                out.extend(
                    members
                        .into_iter()
                        .map(|i| (i, Resolution::Found { target: target.clone(), account: None, linked: Some(how) })),
                );
            }
            Claim::Held => {
                tracing::info!(
                    tenant_id = ctx.tenant,
                    "another writer is still creating this caller's record; trying again shortly"
                );
                let outcome = Outcome::Retry {
                    failure: Refusal::new(WriterCode::ClaimPending, "another writer is creating this caller's record"),
                    after: Some(Duration::from_secs(1)),
                };
                out.extend(members.into_iter().map(|i| (i, Resolution::Stop(outcome.clone()))));
            }
            Claim::Won => {
                let record = new_caller_record(ctx, events[members[0]]);
                won.push((key, members, record));
            }
        }
    }
    won
}

/// The Lead, Contact or Account to create for a new caller.
fn new_caller_record(ctx: &Context<'_>, event: &AssistCompletedV1) -> NewRecord {
    let (object, mut fields) = new_record::new_record(&event.customer, &imported(ctx.connection));
    // A caller known only by the number they called from keeps it.
    if !fields.contains_key("Phone")
        && let Some(number) = event.call.customer_number.as_deref().map(str::trim).filter(|n| !n.is_empty())
    {
        let number = crate::text::cut(number, new_record::PHONE_MAX, "").into_owned();
        fields.insert("Phone".to_owned(), serde_json::Value::from(number));
    }
    NewRecord { object: object.as_str().to_owned(), fields }
}

/// Each won claim by Salesforce's answer: filled with the record created
/// (or the one a duplicate rule named), else released.
async fn settle_claims(
    ctx: &Context<'_>,
    org: &mut Org,
    won: Vec<Won>,
    results: Vec<Result<String, ItemError>>,
    out: &mut Vec<(usize, Resolution)>,
) -> anyhow::Result<()> {
    let mut filled = Vec::new();
    let mut released = Vec::new();
    for ((key, members, record), result) in won.into_iter().zip(results) {
        match created_record(org, &record, result).await {
            Ok((target, how)) => {
                filled.push((key, target.clone(), how));
                out.extend(
                    members
                        .into_iter()
                        .map(|i| (i, Resolution::Found { target: target.clone(), account: None, linked: Some(how) })),
                );
            }
            Err(outcome) => {
                released.push(key);
                out.extend(members.into_iter().map(|i| (i, Resolution::Stop(outcome.clone()))));
            }
        }
    }
    link::fill(ctx.pool, ctx.tenant, ctx.writer, &filled).await?;
    link::release(ctx.pool, ctx.tenant, ctx.writer, &released).await?;
    Ok(())
}

/// The record Salesforce's answer for `record` gives the caller: the one
/// created, or the one a duplicate rule named ([`duplicate`]).
async fn created_record(
    org: &mut Org,
    record: &NewRecord,
    result: Result<String, ItemError>,
) -> Result<(SalesforceRef, LinkMethod), Outcome> {
    match result {
        Ok(id) => match SalesforceId::new(id) {
            Ok(id) => {
                let object = record.object.parse::<SObject>().unwrap_or(SObject::Lead);
                Ok((SalesforceRef { object, id }, LinkMethod::Created))
            }
            Err(e) => Err(verdict::rejected("INVALID_ID", &format!("Salesforce answered an unreadable id: {e}"))),
        },
        Err(item) if item.code == ErrorCode::DuplicatesDetected => {
            duplicate(org, record, &item.duplicates).await.map(|r| (r.0, r.1))
        }
        Err(item) => Err(match item.retry() {
            Retry::Transient | Retry::RefreshToken => verdict::transient(&format!("{}: {}", item.code, item.message)),
            Retry::PauseTenant => verdict::from_failure(&Failure::Pause(item.message.clone())),
            Retry::Permanent => verdict::rejected(item.code.as_str(), &item.message),
        }),
    }
}

/// The record a duplicate rule named instead of `record`. Collections items
/// may not carry the rule's `duplicateResult`; then one single create of the
/// same record asks for it (it is refused again, this time with the names).
async fn duplicate(
    org: &mut Org,
    record: &NewRecord,
    named: &[String],
) -> Result<(SalesforceRef, LinkMethod), Outcome> {
    let fallback = record.object.parse::<SObject>().unwrap_or(SObject::Lead);
    if let Some(found) = named.iter().find_map(|id| reference(id, fallback)) {
        return Ok((found, LinkMethod::MatchedDuplicateRule));
    }
    match org.create(&record.object, &record.fields).await {
        Ok(Ok(id)) => SalesforceId::new(id)
            .map(|id| (SalesforceRef { object: fallback, id }, LinkMethod::Created))
            .map_err(|e| verdict::rejected("INVALID_ID", &format!("Salesforce answered an unreadable id: {e}"))),
        Ok(Err(api)) => match api.duplicates.iter().find_map(|id| reference(id, fallback)) {
            Some(found) => Ok((found, LinkMethod::MatchedDuplicateRule)),
            None => Err(verdict::rejected(api.code.as_str(), &api.message)),
        },
        Err(f) => Err(verdict::from_failure(&f)),
    }
}

/// A record id with its object read from the id's prefix (`fallback` for
/// a prefix that names none of the three).
pub(crate) fn reference(id: &str, fallback: SObject) -> Option<SalesforceRef> {
    let id = SalesforceId::new(id).ok()?;
    let object = match id.key_prefix() {
        "00Q" => SObject::Lead,
        "003" => SObject::Contact,
        "001" => SObject::Account,
        _ => fallback,
    };
    Some(SalesforceRef { object, id })
}

fn imported(connection: &TenantConnection) -> Vec<SObject> {
    connection.objects.iter().filter_map(|o| o.parse::<SObject>().ok()).collect()
}

/// One `Field = 'value'` condition of a SOQL `WHERE`.
#[derive(Debug, Clone)]
pub(crate) struct Term {
    field: &'static str,
    literal: String,
}

impl Term {
    pub(crate) fn new(field: &'static str, value: &str) -> Self {
        Self { field, literal: quote(value) }
    }

    /// Its length once URL-encoded, at most.
    fn encoded_len(&self) -> usize {
        self.field.len()
            + 8
            + self.literal.bytes().map(|b| if b.is_ascii_alphanumeric() { 1 } else { 3 }).sum::<usize>()
    }
}

/// Terms split so no query's lists grow past [`MAX_ENCODED_TERMS`].
pub(crate) fn chunks(terms: Vec<Term>) -> Vec<Vec<Term>> {
    let mut out: Vec<Vec<Term>> = Vec::new();
    let mut size = 0;
    for term in terms {
        let len = term.encoded_len();
        match out.last_mut() {
            Some(last) if size + len <= MAX_ENCODED_TERMS => last.push(term),
            _ => {
                out.push(vec![term]);
                size = 0;
            }
        }
        size += len;
    }
    out
}

/// `Phone IN ('…', '…') OR Email IN ('…')`.
pub(crate) fn condition(terms: &[Term]) -> String {
    let mut by_field: Vec<(&str, Vec<&str>)> = Vec::new();
    for term in terms {
        match by_field.iter_mut().find(|(f, _)| *f == term.field) {
            Some((_, values)) => values.push(&term.literal),
            None => by_field.push((term.field, vec![&term.literal])),
        }
    }
    by_field
        .iter()
        .map(|(field, values)| format!("{field} IN ({})", values.join(", ")))
        .collect::<Vec<_>>()
        .join(" OR ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_group_terms_by_field_and_quote_values() {
        fn check(terms: &[(&'static str, &str)], expected: &str) {
            let terms: Vec<Term> = terms.iter().map(|(f, v)| Term::new(f, v)).collect();
            assert_eq!(condition(&terms), expected);
        }
        check(
            &[("Phone", "03-1234-5678"), ("Email", "a@b.jp"), ("Phone", "0312345678")],
            "Phone IN ('03-1234-5678', '0312345678') OR Email IN ('a@b.jp')",
        );
        check(&[("Email", "' OR Name LIKE '%")], r"Email IN ('\' OR Name LIKE \'%')");
        check(&[("Email", r"back\slash")], r"Email IN ('back\\slash')");
    }

    #[test]
    fn long_lists_are_split_under_the_uri_limit() {
        let terms: Vec<Term> = (0..2_000).map(|i| Term::new("Phone", &format!("+8131234{i:04}"))).collect();
        let chunks = chunks(terms);
        assert!(chunks.len() > 1);
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), 2_000);
        for chunk in &chunks {
            assert!(chunk.iter().map(Term::encoded_len).sum::<usize>() <= MAX_ENCODED_TERMS);
        }
    }
}
