//! The three calls `assist` reports, as Front Agent would: which records of
//! the org they are about, and their `assist.completed.v1` events. Pure: the
//! records come in, the events go out.
//!
//! Each call exercises one way the activity-writer finds the record a Task
//! goes on (docs/behaviour.md §4):
//!
//! 1. a customer Front Agent imported from a Lead (`customer.salesforce` set);
//! 2. a caller Front Agent does not know, from a number exactly one Contact
//!    (else Lead) has, so the writer matches the number;
//! 3. a caller from a number no record has, so the writer creates a Lead.

use std::collections::HashMap;

use anyhow::Context as _;
use fa_messages::{
    Assist, AssistCompletedV1, AssistCustomer, AssistUser, Call, CallDirection, EventId, SObject, SalesforceId,
    SalesforceRef, Speaker, TenantId, Utterance,
};
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::sfsim::{is_true, text};

/// A Lead or Contact of the org, as far as an event needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub object: SObject,
    pub id: SalesforceId,
    pub name: String,
    pub company: Option<String>,
    pub email: Option<String>,
    pub phone: String,
    /// A Contact's Account: the Task's WhatId when the writer finds the Contact.
    pub account_id: Option<String>,
}

/// What the three calls are about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picks {
    /// The Lead of the first call.
    pub lead: Person,
    /// The record whose number the second caller calls from.
    pub known: Person,
    /// The third caller's number, which no record has.
    pub new_phone: String,
}

/// One event to publish, with what it is about in words.
#[derive(Debug, Clone)]
pub struct Planned {
    pub about: String,
    pub event: AssistCompletedV1,
}

/// The records of `object` a call can be about: not deleted, not converted,
/// with a Phone; the most recently modified first (those the importer has
/// surely read).
fn people(records: &[Value], object: SObject) -> Vec<Person> {
    let mut live: Vec<(&str, Person)> = records
        .iter()
        .filter(|r| !is_true(r, "IsDeleted") && !is_true(r, "IsConverted"))
        .filter_map(|r| {
            let id = SalesforceId::new(text(r, "Id")?).ok()?;
            let phone = text(r, "Phone")?;
            let name = text(r, "Name")
                .or_else(|| {
                    let parts: Vec<String> = ["LastName", "FirstName"].iter().filter_map(|f| text(r, f)).collect();
                    (!parts.is_empty()).then(|| parts.join(" "))
                })
                .unwrap_or_default();
            let stamp = r.get("SystemModstamp").and_then(Value::as_str).unwrap_or("");
            let (company, email, account_id) = (text(r, "Company"), text(r, "Email"), text(r, "AccountId"));
            Some((stamp, Person { object, id, name, company, email, phone, account_id }))
        })
        .collect();
    // Salesforce's timestamps share one format, so they sort as text.
    live.sort_by(|a, b| b.0.cmp(a.0));
    live.into_iter().map(|(_, p)| p).collect()
}

/// A phone number's digits in the national form (`+81 3-1234-5678` and
/// `03(1234)5678` are both `0312345678`; full-width digits count), for
/// telling numbers apart; not a full normalisation.
pub fn national_digits(phone: &str) -> String {
    let digits: String = phone
        .chars()
        .filter_map(|c| match c {
            '0'..='9' => Some(c),
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32),
            _ => None,
        })
        .collect();
    let international = phone.trim_start().starts_with(['+', '＋']);
    match digits.strip_prefix("81") {
        Some(rest) if international => format!("0{rest}"),
        _ => digits,
    }
}

/// How many live records have each number (Phone and MobilePhone).
fn phone_counts(all: &[&[Value]]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for record in all.iter().flat_map(|r| r.iter()).filter(|r| !is_true(r, "IsDeleted")) {
        for field in ["Phone", "MobilePhone"] {
            if let Some(phone) = text(record, field) {
                *counts.entry(national_digits(&phone)).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// Picks the Lead, the known number and a new number from the org's
/// records; `random` feeds the new number's digits.
pub fn pick(
    leads: &[Value],
    contacts: &[Value],
    accounts: &[Value],
    mut random: impl FnMut() -> u64,
) -> anyhow::Result<Picks> {
    let counts = phone_counts(&[leads, contacts, accounts]);
    let lead_people = people(leads, SObject::Lead);
    let lead = lead_people
        .first()
        .cloned()
        .context("the org has no Lead with a Phone (not converted, not deleted) to call about")?;
    // A number exactly one record has, so the match is unambiguous; a
    // Contact under an Account shows both WhoId and WhatId on its Task.
    let unique = |p: &&Person| counts.get(&national_digits(&p.phone)) == Some(&1);
    let contact_people = people(contacts, SObject::Contact);
    let known = contact_people
        .iter()
        .filter(|p| p.account_id.is_some())
        .find(unique)
        .or_else(|| contact_people.iter().find(unique))
        .or_else(|| lead_people.iter().filter(|p| p.id != lead.id).find(unique))
        .cloned()
        .context("the org has no other Lead or Contact whose Phone no other record shares")?;
    let new_phone = (0..1000)
        .map(|_| {
            let n = random() % 100_000_000;
            format!("090-{:04}-{:04}", n / 10_000, n % 10_000)
        })
        .find(|p| !counts.contains_key(&national_digits(p)))
        .context("no free 090 number found")?;
    Ok(Picks { lead, known, new_phone })
}

fn transcript(lines: &[(Speaker, f64, &str)]) -> Option<Vec<Utterance>> {
    Some(
        lines
            .iter()
            .map(|(speaker, at, text)| Utterance {
                speaker: *speaker,
                text: (*text).to_owned(),
                offset_seconds: Some(*at),
            })
            .collect(),
    )
}

/// The three events, in the order above, as Front Agent sends them when the
/// calls end: event ids `as_<run_id>_lead`, `_known`, `_new`, customer ids
/// `c-<run_id>-1` to `-3` (fresh per run, so no earlier run's link applies);
/// calls that ended a few minutes before `now`. `agent` takes the first two
/// calls, `other` the third.
pub fn plan(
    tenant: &TenantId,
    agent: &AssistUser,
    other: &AssistUser,
    picks: &Picks,
    run_id: &str,
    now: OffsetDateTime,
) -> anyhow::Result<Vec<Planned>> {
    use Speaker::{Agent, Customer};
    let event_id = |suffix: &str| {
        EventId::new(format!("as_{run_id}_{suffix}")).map_err(|e| anyhow::anyhow!("event id from {run_id:?}: {e}"))
    };
    let call = |direction, minutes_ago: i64, duration: u32, number: &str| {
        let started_at = now - Duration::minutes(minutes_ago);
        Call {
            direction,
            started_at,
            ended_at: Some(started_at + Duration::seconds(i64::from(duration))),
            duration_seconds: duration,
            customer_number: Some(number.to_owned()),
        }
    };
    let (lead, known, new_phone) = (&picks.lead, &picks.known, &picks.new_phone);
    Ok(vec![
        Planned {
            about: format!("on Lead {} {}", lead.id, lead.name),
            event: AssistCompletedV1 {
                event_id: event_id("lead")?,
                tenant_id: tenant.clone(),
                occurred_at: now - Duration::minutes(4),
                user: agent.clone(),
                customer: AssistCustomer {
                    id: format!("c-{run_id}-1"),
                    name: Some(lead.name.clone()),
                    company: lead.company.clone(),
                    email: lead.email.clone(),
                    phones: Some(vec![lead.phone.clone()]),
                    salesforce: Some(SalesforceRef { object: SObject::Lead, id: lead.id.clone() }),
                },
                call: call(CallDirection::Outbound, 10, 312, &lead.phone),
                assist: Assist {
                    summary: "資料送付後のフォロー。導入は来期4月を検討中で、決裁者は部長。\
                              来週水曜までに見積りを送付し、金曜に再度電話する約束。"
                        .to_owned(),
                    transcript: transcript(&[
                        (Agent, 0.6, "お世話になっております。フロントテックの山田です。先日お送りした資料はご覧いただけましたか。"),
                        (Customer, 6.2, "はい、拝見しました。導入は来期の4月頃で考えていて、部長の決裁が必要です。"),
                        (Agent, 13.8, "承知しました。では来週水曜までにお見積りをお送りし、金曜に改めてお電話いたします。"),
                    ]),
                },
            },
        },
        Planned {
            about: format!("from {} (the number of {} {} {})", known.phone, known.object, known.id, known.name),
            event: AssistCompletedV1 {
                event_id: event_id("known")?,
                tenant_id: tenant.clone(),
                occurred_at: now - Duration::minutes(2),
                user: agent.clone(),
                customer: AssistCustomer {
                    id: format!("c-{run_id}-2"),
                    name: None,
                    company: None,
                    email: None,
                    phones: Some(vec![known.phone.clone()]),
                    salesforce: None,
                },
                call: call(CallDirection::Inbound, 6, 185, &known.phone),
                assist: Assist {
                    summary: "請求書の送付先変更の依頼。新しい住所は本日中にメールで届く予定。受領後に変更し、完了を連絡する。"
                        .to_owned(),
                    transcript: transcript(&[
                        (Customer, 0.9, "すみません、請求書の送付先を変更したいのですが。"),
                        (Agent, 4.1, "承知しました。新しいご住所を伺ってもよろしいでしょうか。"),
                        (Customer, 8.7, "本日中にメールでお送りします。"),
                        (Agent, 11.5, "ありがとうございます。受け取り次第変更して、ご連絡いたします。"),
                    ]),
                },
            },
        },
        Planned {
            about: format!("from new number {new_phone} (新規 太郎)"),
            event: AssistCompletedV1 {
                event_id: event_id("new")?,
                tenant_id: tenant.clone(),
                occurred_at: now - Duration::seconds(30),
                user: other.clone(),
                customer: AssistCustomer {
                    id: format!("c-{run_id}-3"),
                    name: Some("新規 太郎".to_owned()),
                    company: Some("株式会社みらい物流".to_owned()),
                    email: None,
                    phones: Some(vec![new_phone.clone()]),
                    salesforce: None,
                },
                call: call(CallDirection::Inbound, 4, 201, new_phone),
                assist: Assist {
                    summary: "Webサイトを見ての新規問い合わせ。営業20名規模での導入を検討中。\
                              料金表と導入事例の送付を希望、来週デモの日程を調整する。"
                        .to_owned(),
                    transcript: transcript(&[
                        (Customer, 0.5, "ホームページを見てお電話しました。みらい物流の新規と申します。"),
                        (Agent, 5.3, "お問い合わせありがとうございます。ご利用は何名ほどをお考えですか。"),
                        (Customer, 9.9, "営業の20名ほどです。料金表と導入事例をいただけますか。"),
                        (Agent, 15.2, "かしこまりました。資料をお送りし、来週デモのお時間をいただければと思います。"),
                    ]),
                },
            },
        },
    ])
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use fa_messages::{AssistUser, SObject, TenantId};
    use serde_json::{Value, json};
    use time::macros::datetime;

    use super::{Picks, Planned, national_digits, pick, plan};

    fn lead(id: &str, name: &str, phone: Option<&str>, stamp: &str) -> Value {
        json!({"attributes": {"type": "Lead"}, "Id": id, "Name": name, "LastName": name, "Company": "株式会社葵興産",
            "Email": null, "Phone": phone, "MobilePhone": null, "IsDeleted": false, "IsConverted": false,
            "SystemModstamp": stamp})
    }

    fn contact(id: &str, name: &str, phone: &str, stamp: &str) -> Value {
        json!({"attributes": {"type": "Contact"}, "Id": id, "Name": name, "Email": "a@example.jp", "Phone": phone,
            "MobilePhone": null, "IsDeleted": false, "SystemModstamp": stamp, "AccountId": "001000000000001AAA"})
    }

    /// Leads: a converted, a deleted, a phoneless, the newest usable and an old one; Contacts: one
    /// sharing its number with an Account, a newer one without an Account, one with a number of
    /// its own and an Account.
    fn org() -> (Vec<Value>, Vec<Value>, Vec<Value>) {
        let mut converted = lead("00Q000000000001EAA", "変換 済", Some("03-1111-1111"), "2026-12-01T00:00:00.000+0000");
        converted["IsConverted"] = json!(true);
        let mut deleted = lead("00Q000000000002EAA", "削除 済", Some("03-2222-2222"), "2026-12-02T00:00:00.000+0000");
        deleted["IsDeleted"] = json!(true);
        let leads = vec![
            converted,
            deleted,
            lead("00Q000000000003EAA", "電話 なし", None, "2026-12-03T00:00:00.000+0000"),
            lead("00Q000000000004EAA", "小川 愛", Some("080-2619-1748"), "2026-11-30T00:00:00.000+0000"),
            lead("00Q000000000005EAA", "古い 人", Some("03-5555-5555"), "2025-01-01T00:00:00.000+0000"),
        ];
        let mut no_account = contact("003000000000003AAA", "個人 客", "03-7777-7777", "2026-12-03T00:00:00.000+0000");
        no_account["AccountId"] = Value::Null;
        let contacts = vec![
            contact("003000000000001AAA", "共有 番号", "06-6123-4567", "2026-12-02T00:00:00.000+0000"),
            no_account,
            contact("003000000000002AAA", "鈴木 一郎", "+81 3-9876-5432", "2026-12-01T00:00:00.000+0000"),
        ];
        let accounts = vec![json!({"Id": "001000000000001AAA", "Name": "株式会社テスト", "Phone": "06(6123)4567"})];
        (leads, contacts, accounts)
    }

    fn picks() -> Picks {
        let (leads, contacts, accounts) = org();
        pick(&leads, &contacts, &accounts, || 12_345_678).expect("picks")
    }

    fn planned() -> Vec<Planned> {
        let tenant = TenantId::new("demo").expect("tenant");
        let agent = AssistUser { id: "u-demo".into(), name: Some("山田 太郎".into()) };
        let other = AssistUser { id: "u-demo-2".into(), name: Some("佐々木 美咲".into()) };
        plan(&tenant, &agent, &other, &picks(), "0193abcdef01", datetime!(2026-12-03 01:00 UTC)).expect("plan")
    }

    fn body(planned: &Planned) -> Value {
        serde_json::to_value(&planned.event).expect("serialises")
    }

    #[test]
    fn the_lead_is_the_newest_live_lead_with_a_phone() {
        let lead = picks().lead;
        assert_eq!((lead.object, lead.id.as_str()), (SObject::Lead, "00Q000000000004EAA"));
        assert_eq!((lead.name.as_str(), lead.phone.as_str()), ("小川 愛", "080-2619-1748"));
    }

    #[test]
    fn the_known_number_is_that_of_a_contact_under_an_account_no_other_record_shares() {
        let known = picks().known;
        assert_eq!((known.object, known.id.as_str()), (SObject::Contact, "003000000000002AAA"));
        assert_eq!(known.phone, "+81 3-9876-5432");
        assert_eq!(known.account_id.as_deref(), Some("001000000000001AAA"));
    }

    #[test]
    fn without_a_contact_under_an_account_the_known_number_is_any_contacts() {
        let (leads, contacts, accounts) = org();
        let loose: Vec<Value> = contacts
            .into_iter()
            .map(|mut c| {
                c["AccountId"] = Value::Null;
                c
            })
            .collect();
        let known = pick(&leads, &loose, &accounts, || 1).expect("picks").known;
        assert_eq!(known.id.as_str(), "003000000000003AAA");
    }

    #[test]
    fn without_contacts_the_known_number_is_another_leads() {
        let (leads, _, accounts) = org();
        let known = pick(&leads, &[], &accounts, || 1).expect("picks").known;
        assert_eq!((known.object, known.id.as_str()), (SObject::Lead, "00Q000000000005EAA"));
    }

    #[test]
    fn the_new_number_is_a_090_number_no_record_has() {
        assert_eq!(picks().new_phone, "090-1234-5678");
        let (leads, mut contacts, accounts) = org();
        contacts.push(contact("003000000000009AAA", "先客 様", "09012345678", "2026-01-01T00:00:00.000+0000"));
        let mut draws = [12_345_678_u64, 87_654_321].into_iter();
        let picks = pick(&leads, &contacts, &accounts, || draws.next().unwrap_or_default()).expect("picks");
        assert_eq!(picks.new_phone, "090-8765-4321");
    }

    #[test]
    fn an_org_without_a_usable_lead_is_refused_with_the_reason() {
        let (_, contacts, accounts) = org();
        let err = pick(&[], &contacts, &accounts, || 1).expect_err("no lead");
        assert!(err.to_string().contains("no Lead with a Phone"), "{err}");
    }

    #[test]
    fn numbers_compare_in_national_digits() {
        for (raw, digits) in [
            ("+81 3-1234-5678", "0312345678"),
            ("03(1234)5678", "0312345678"),
            ("０３－１２３４－５６７８", "0312345678"),
            ("＋８１ ９０ １２３４ ５６７８", "09012345678"),
            ("0120-81-1234", "0120811234"),
        ] {
            assert_eq!(national_digits(raw), digits, "{raw}");
        }
    }

    #[test]
    fn every_event_validates_against_the_schema() {
        let planned = planned();
        assert_eq!(planned.len(), 3);
        for p in &planned {
            let body = body(p);
            assert_eq!(fa_messages::validation::validate("assist.completed.v1", &body), Ok(()), "{body:#}");
            let lines = body["assist"]["transcript"].as_array().map_or(0, Vec::len);
            assert!((2..=4).contains(&lines), "{body:#}");
            assert!(body["assist"]["summary"].as_str().is_some_and(|s| !s.is_empty()), "{body:#}");
        }
    }

    #[test]
    fn the_lead_call_names_the_lead() {
        let body = body(&planned()[0]);
        assert_eq!(body["event_id"], "as_0193abcdef01_lead");
        assert_eq!(body["tenant_id"], "demo");
        assert_eq!(body["user"], json!({"id": "u-demo", "name": "山田 太郎"}));
        assert_eq!(body["customer"]["salesforce"], json!({"object": "Lead", "id": "00Q000000000004EAA"}));
        assert_eq!(body["customer"]["name"], "小川 愛");
        assert_eq!(body["customer"]["company"], "株式会社葵興産");
        assert_eq!(body["customer"]["phones"], json!(["080-2619-1748"]));
        assert_eq!(body["call"]["direction"], "outbound");
    }

    #[test]
    fn the_known_number_call_carries_only_the_number() {
        let body = body(&planned()[1]);
        assert_eq!(body["event_id"], "as_0193abcdef01_known");
        assert_eq!(body["customer"]["phones"], json!(["+81 3-9876-5432"]));
        assert_eq!(body["customer"]["salesforce"], Value::Null);
        assert_eq!(body["customer"]["name"], Value::Null);
        assert_eq!(body["user"]["id"], "u-demo");
    }

    #[test]
    fn the_new_number_call_has_a_japanese_name_and_the_new_number() {
        let body = body(&planned()[2]);
        assert_eq!(body["event_id"], "as_0193abcdef01_new");
        assert_eq!(body["customer"]["name"], "新規 太郎");
        assert_eq!(body["customer"]["phones"], json!(["090-1234-5678"]));
        assert_eq!(body["customer"]["salesforce"], Value::Null);
        assert_eq!(body["user"]["id"], "u-demo-2");
    }

    #[test]
    fn events_and_customers_are_distinct_and_every_call_is_over_before_its_event() {
        let planned = planned();
        let ids: BTreeSet<&str> = planned.iter().map(|p| p.event.event_id.as_str()).collect();
        let customers: BTreeSet<&str> = planned.iter().map(|p| p.event.customer.id.as_str()).collect();
        assert_eq!((ids.len(), customers.len()), (3, 3));
        for p in &planned {
            let ended = p.event.call.ended_at.expect("ended_at");
            assert!(ended <= p.event.occurred_at, "{}", p.event.event_id);
            assert!(p.event.occurred_at <= datetime!(2026-12-03 01:00 UTC), "{}", p.event.event_id);
        }
    }
}
