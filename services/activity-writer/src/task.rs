//! The Salesforce Task written for one assisted call: its fields, built from the event alone.
//!
//! docs/behaviour.md §4's table is the whole specification; this module is that table in code, pure
//! so every row is tested without an org. Which record the Task goes on and who owns it are
//! decided elsewhere (matching, user links) and passed in. The result holds fields only: the
//! Salesforce client adds `attributes` or picks the endpoint, and the Task has no Id yet.
//!
//! Lengths follow Salesforce (docs/salesforce-facts.md §5): `Subject` 255 and `Description` 32,000,
//! counted in UTF-16 units (docs/behaviour.md §4, "Lengths") and cut at whole characters by
//! [`crate::text::cut`]. `CallObject` carries the event id,
//! which is what makes a second delivery find the first Task instead of writing another.

use std::borrow::Cow;

use fa_messages::{AssistCompletedV1, CallDirection, SObject, SalesforceId, SalesforceRef, Speaker, Utterance};
use serde_json::{Map, Value};

use crate::text;

/// The start of every Task's `Subject`; the customer's name or number follows after `": "`.
pub const SUBJECT_PREFIX: &str = "Front Agent 通話アシスト";

/// `Task.Subject`'s length in UTF-16 units.
pub const SUBJECT_MAX: usize = 255;

/// Appended to a `Subject` that was cut (only a name of more than 235 characters gets there).
pub const SUBJECT_CUT_MARKER: &str = "…";

/// `Task.Description`'s length in UTF-16 units.
pub const DESCRIPTION_MAX: usize = 32_000;

/// Ends a `Description` whose transcript (or summary) did not fit, on a line of its own, so the
/// reader of the Task knows the conversation went on.
pub const DESCRIPTION_CUT_MARKER: &str = "\n…（以下省略）";

/// How an agent's utterance starts in the `Description`.
pub const AGENT_LABEL: &str = "担当者: ";

/// How a customer's utterance starts in the `Description`.
pub const CUSTOMER_LABEL: &str = "お客様: ";

/// The fields of the Task for `event`, on `target`, owned by `owner`, dated in `zone`.
///
/// A Lead or Contact target is the `WhoId` and an Account the `WhatId`, never both: a Lead
/// `WhoId` forbids a `WhatId`, and for a Contact Salesforce derives `AccountId` itself.
pub fn task_fields(
    event: &AssistCompletedV1,
    target: &SalesforceRef,
    owner: &SalesforceId,
    zone: &jiff::tz::TimeZone,
) -> Map<String, Value> {
    let mut fields = Map::new();
    let target_field = match target.object {
        SObject::Lead | SObject::Contact => "WhoId",
        SObject::Account => "WhatId",
    };
    fields.insert(target_field.into(), target.id.as_str().into());
    fields.insert("OwnerId".into(), owner.as_str().into());
    fields.insert("Subject".into(), subject(event).into());
    fields.insert("Description".into(), description(&event.assist.summary, event.assist.transcript.as_deref()).into());
    fields.insert("ActivityDate".into(), activity_date(event.call.started_at, zone).into());
    fields.insert("Status".into(), "Completed".into());
    fields.insert("Priority".into(), "Normal".into());
    fields.insert("TaskSubtype".into(), "Call".into());
    let call_type = match event.call.direction {
        CallDirection::Inbound => "Inbound",
        CallDirection::Outbound => "Outbound",
    };
    fields.insert("CallType".into(), call_type.into());
    fields.insert("CallDurationInSeconds".into(), event.call.duration_seconds.into());
    fields.insert("CallObject".into(), event.event_id.as_str().into());
    fields
}

/// `Front Agent 通話アシスト: <who>`, where who is the customer's name, else the number the call
/// showed, else the customer's first phone; just the prefix when there is none of them.
fn subject(event: &AssistCompletedV1) -> String {
    let customer = &event.customer;
    let who = non_blank(customer.name.as_deref())
        .or_else(|| non_blank(event.call.customer_number.as_deref()))
        .or_else(|| customer.phones.iter().flatten().find_map(|phone| non_blank(Some(phone))));
    match who {
        Some(who) => text::cut(&format!("{SUBJECT_PREFIX}: {who}"), SUBJECT_MAX, SUBJECT_CUT_MARKER).into_owned(),
        None => SUBJECT_PREFIX.to_owned(),
    }
}

/// The summary, a blank line, then one line per utterance (`担当者: …` / `お客様: …`), cut to
/// [`DESCRIPTION_MAX`] with [`DESCRIPTION_CUT_MARKER`]. Without utterances, just the summary.
fn description(summary: &str, transcript: Option<&[Utterance]>) -> String {
    let summary = summary.trim();
    let transcript = transcript.unwrap_or_default();
    let mut out = String::with_capacity(summary.len() + transcript.iter().map(|u| u.text.len() + 16).sum::<usize>());
    out.push_str(summary);
    if !transcript.is_empty() {
        out.push_str("\n\n");
    }
    for (i, utterance) in transcript.iter().enumerate() {
        // A UTF-8 byte is at most one UTF-16 unit and a character of three bytes is one unit, so
        // past this size the text is surely too long and the rest would only be cut away.
        if out.len() > 3 * DESCRIPTION_MAX + 3 {
            break;
        }
        if i > 0 {
            out.push('\n');
        }
        out.push_str(match utterance.speaker {
            Speaker::Agent => AGENT_LABEL,
            Speaker::Customer => CUSTOMER_LABEL,
        });
        push_on_one_line(&mut out, utterance.text.trim());
    }
    let cut = match text::cut(&out, DESCRIPTION_MAX, DESCRIPTION_CUT_MARKER) {
        Cow::Borrowed(_) => None,
        Cow::Owned(cut) => Some(cut),
    };
    cut.unwrap_or(out)
}

/// Appends `text` with its line breaks turned into spaces: one utterance stays one line, so a
/// label always starts a line and no line is mistaken for the other speaker's.
fn push_on_one_line(out: &mut String, text: &str) {
    let mut lines = text.split(['\r', '\n']).map(str::trim).filter(|line| !line.is_empty());
    if let Some(first) = lines.next() {
        out.push_str(first);
    }
    for line in lines {
        out.push(' ');
        out.push_str(line);
    }
}

/// The call's start date in `zone`, `YYYY-MM-DD`: the day the agent lived the call, which in
/// Tokyo is the next UTC day for a call at 23:30 UTC.
fn activity_date(started_at: time::OffsetDateTime, zone: &jiff::tz::TimeZone) -> String {
    // `time` reaches a day past jiff's range at year 9999; the schema's RFC 3339 allows it, so
    // the UTC date stands in there rather than failing a Task over a nonsensical timestamp.
    let nanos = i32::try_from(started_at.nanosecond()).unwrap_or(0);
    match jiff::Timestamp::new(started_at.unix_timestamp(), nanos) {
        Ok(instant) => zone.to_datetime(instant).date().to_string(),
        Err(_) => {
            let date = started_at.to_offset(time::UtcOffset::UTC).date();
            format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
        }
    }
}

/// `text` trimmed, unless it is missing or blank.
fn non_blank(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::text::utf16_len;

    /// `assist.completed.v1.lead-linked.json` of the contract's examples.
    const LEAD_LINKED: &str = r#"{
      "event_id": "as_01JDQ8Z6X0M2T4K9P3W7R5B1C8",
      "tenant_id": "acme-jp",
      "occurred_at": "2026-11-25T01:12:30Z",
      "user": { "id": "u-1001", "name": "山田 太郎" },
      "customer": {
        "id": "c-55012",
        "name": "佐藤 花子",
        "company": "株式会社サンプル商事",
        "email": "hanako.sato@sample-shoji.co.jp",
        "phones": ["03-1234-5678"],
        "salesforce": { "object": "Lead", "id": "00Q5j00000ABCdeEAH" }
      },
      "call": {
        "direction": "outbound",
        "started_at": "2026-11-25T01:05:00Z",
        "ended_at": "2026-11-25T01:12:12Z",
        "duration_seconds": 432,
        "customer_number": "+81312345678"
      },
      "assist": {
        "summary": "新プランの見積りを希望。来週火曜に再架電の約束。",
        "transcript": [
          { "speaker": "agent", "text": "お世話になっております。サンプルテックの山田です。", "offset_seconds": 0.4 },
          { "speaker": "customer", "text": "はい、佐藤です。先日の資料を拝見しました。", "offset_seconds": 3.9 },
          { "speaker": "agent", "text": "ありがとうございます。お見積りをお送りしてもよろしいでしょうか。", "offset_seconds": 8.2 }
        ]
      }
    }"#;

    fn example() -> AssistCompletedV1 {
        serde_json::from_str(LEAD_LINKED).expect("the example event parses")
    }

    fn tokyo() -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get("Asia/Tokyo").expect("Asia/Tokyo is in the tz database")
    }

    fn owner() -> SalesforceId {
        SalesforceId::new("005000000000001").expect("valid user id")
    }

    fn reference(object: SObject, id: &str) -> SalesforceRef {
        SalesforceRef { object, id: SalesforceId::new(id).expect("valid record id") }
    }

    fn lead() -> SalesforceRef {
        reference(SObject::Lead, "00Q5j00000ABCdeEAH")
    }

    #[test]
    fn every_field_of_the_example_event() {
        let fields = task_fields(&example(), &lead(), &owner(), &tokyo());
        let expected = json!({
            "WhoId": "00Q5j00000ABCdeEAH",
            "OwnerId": "005000000000001AAA",
            "Subject": "Front Agent 通話アシスト: 佐藤 花子",
            "Description": "新プランの見積りを希望。来週火曜に再架電の約束。\n\
                            \n\
                            担当者: お世話になっております。サンプルテックの山田です。\n\
                            お客様: はい、佐藤です。先日の資料を拝見しました。\n\
                            担当者: ありがとうございます。お見積りをお送りしてもよろしいでしょうか。",
            "ActivityDate": "2026-11-25",
            "Status": "Completed",
            "Priority": "Normal",
            "TaskSubtype": "Call",
            "CallType": "Outbound",
            "CallDurationInSeconds": 432,
            "CallObject": "as_01JDQ8Z6X0M2T4K9P3W7R5B1C8",
        });
        assert_eq!(Value::Object(fields), expected);
    }

    #[test]
    fn the_target_is_who_for_people_and_what_for_accounts() {
        fn check(target: SalesforceRef, expected_who: Option<&str>, expected_what: Option<&str>) {
            let fields = task_fields(&example(), &target, &owner(), &tokyo());
            assert_eq!(fields.get("WhoId").and_then(Value::as_str), expected_who, "{target:?}");
            assert_eq!(fields.get("WhatId").and_then(Value::as_str), expected_what, "{target:?}");
            assert!(
                !fields.contains_key("AccountId") && !fields.contains_key("Id") && !fields.contains_key("attributes")
            );
        }
        check(lead(), Some("00Q5j00000ABCdeEAH"), None);
        check(reference(SObject::Contact, "0035j00000XyZabAAF"), Some("0035j00000XyZabAAF"), None);
        check(reference(SObject::Account, "0015000000Gv7qJ"), None, Some("0015000000Gv7qJAAR"));
    }

    #[test]
    fn the_subject_names_the_customer_or_their_number() {
        fn check(name: Option<&str>, customer_number: Option<&str>, phones: Option<&[&str]>, expected: &str) {
            let mut event = example();
            event.customer.name = name.map(str::to_owned);
            event.call.customer_number = customer_number.map(str::to_owned);
            event.customer.phones = phones.map(|p| p.iter().map(|s| s.to_string()).collect());
            let fields = task_fields(&event, &lead(), &owner(), &tokyo());
            let subject = fields["Subject"].as_str().expect("Subject is text");
            assert_eq!(subject, expected, "name {name:?}, number {customer_number:?}, phones {phones:?}");
            assert!(utf16_len(subject) <= SUBJECT_MAX);
        }
        let long_name = "あ".repeat(255);
        let room = SUBJECT_MAX - utf16_len(SUBJECT_PREFIX) - utf16_len(": ") - utf16_len(SUBJECT_CUT_MARKER);
        let long_subject = format!("{SUBJECT_PREFIX}: {}…", "あ".repeat(room));
        check(Some("佐藤 花子"), Some("+81312345678"), Some(&["03-1234-5678"]), "Front Agent 通話アシスト: 佐藤 花子");
        check(Some("  佐藤 花子　"), None, None, "Front Agent 通話アシスト: 佐藤 花子");
        check(Some(""), Some("+81312345678"), Some(&["03-1234-5678"]), "Front Agent 通話アシスト: +81312345678");
        check(Some(" 　"), None, Some(&["090-8765-4321", "03-1234-5678"]), "Front Agent 通話アシスト: 090-8765-4321");
        check(None, Some(" "), Some(&[" ", "090-8765-4321"]), "Front Agent 通話アシスト: 090-8765-4321");
        check(None, None, Some(&[]), "Front Agent 通話アシスト");
        check(Some(""), None, None, "Front Agent 通話アシスト");
        check(Some(&long_name), None, None, &long_subject);
    }

    #[test]
    fn the_description_is_the_summary_then_one_line_per_utterance() {
        fn check(summary: &str, transcript: Option<&[(Speaker, &str)]>, expected: &str) {
            let transcript: Option<Vec<Utterance>> = transcript.map(|t| {
                t.iter()
                    .map(|&(speaker, text)| Utterance { speaker, text: text.to_owned(), offset_seconds: None })
                    .collect()
            });
            assert_eq!(description(summary, transcript.as_deref()), expected, "summary {summary:?}");
        }
        use Speaker::{Agent, Customer};
        check("料金についての問い合わせ。折り返し希望。", None, "料金についての問い合わせ。折り返し希望。");
        check("要約", Some(&[]), "要約");
        check("要約\n", Some(&[(Agent, "もしもし"), (Customer, "はい")]), "要約\n\n担当者: もしもし\nお客様: はい");
        check("要約", Some(&[(Customer, "一行目\r\n二行目\n\n三行目 ")]), "要約\n\nお客様: 一行目 二行目 三行目");
        check("", Some(&[(Agent, "もしもし")]), "\n\n担当者: もしもし");
    }

    #[test]
    fn a_long_transcript_is_cut_to_32000_units_with_the_marker() {
        // 40,000 characters of kana and two-unit emoji in ten utterances. The text repeats every
        // 14 units; shifting it by summaries of 1 to 28 units puts an emoji across the limit in
        // some of them, whatever the exact arithmetic.
        let mut lengths = Vec::new();
        for shift in 1..=28 {
            let summary = "要".repeat(shift);
            let summary = summary.as_str();
            let mut event = example();
            event.assist.summary = summary.to_owned();
            let line = "はい、😀承知しました。👍".repeat(334);
            event.assist.transcript = Some(
                (0..10)
                    .map(|i| Utterance {
                        speaker: if i % 2 == 0 { Speaker::Agent } else { Speaker::Customer },
                        text: line.clone(),
                        offset_seconds: None,
                    })
                    .collect(),
            );
            let transcript_chars: usize =
                event.assist.transcript.iter().flatten().map(|u| u.text.chars().count()).sum();
            assert!(transcript_chars >= 40_000, "the test's transcript is long enough: {transcript_chars}");

            let fields = task_fields(&event, &lead(), &owner(), &tokyo());
            let cut = fields["Description"].as_str().expect("Description is text");
            let units = utf16_len(cut);
            assert!(units <= DESCRIPTION_MAX, "{units} units");
            assert!(units >= DESCRIPTION_MAX - 1, "only a character that did not fit is left out: {units}");
            let kept = cut.strip_suffix(DESCRIPTION_CUT_MARKER).expect("the cut is marked");
            let encoded: Vec<u16> = cut.encode_utf16().collect();
            assert!(String::from_utf16(&encoded).is_ok(), "no lone surrogate");

            let full = format!("{summary}\n\n{}", {
                let lines: Vec<String> = event
                    .assist
                    .transcript
                    .iter()
                    .flatten()
                    .map(|u| {
                        format!("{}{}", if u.speaker == Speaker::Agent { AGENT_LABEL } else { CUSTOMER_LABEL }, u.text)
                    })
                    .collect();
                lines.join("\n")
            });
            assert!(full.starts_with(kept), "the kept text is the start of the description");
            assert!(
                unicode_segmentation::UnicodeSegmentation::grapheme_indices(full.as_str(), true)
                    .any(|(start, _)| start == kept.len()),
                "the cut is between characters"
            );
            lengths.push(units);
        }
        assert!(lengths.contains(&(DESCRIPTION_MAX - 1)), "an emoji straddled the limit in one alignment: {lengths:?}");
    }

    #[test]
    fn the_activity_date_is_the_start_date_in_the_configured_zone() {
        fn check(started_at: &str, zone: &str, expected: &str) {
            let started = fa_messages::timestamp::parse(started_at).expect("valid timestamp");
            let zone = jiff::tz::TimeZone::get(zone).expect("known zone");
            assert_eq!(activity_date(started, &zone), expected, "{started_at} in {zone:?}");
        }
        check("2026-11-24T23:30:00Z", "Asia/Tokyo", "2026-11-25");
        check("2026-11-24T23:30:00Z", "UTC", "2026-11-24");
        check("2026-11-25T14:59:59.999Z", "Asia/Tokyo", "2026-11-25");
        check("2026-11-25T15:00:00Z", "Asia/Tokyo", "2026-11-26");
        check("2026-11-25T10:30:00+09:00", "Asia/Tokyo", "2026-11-25");
        check("2026-11-25T05:00:00Z", "America/Los_Angeles", "2026-11-24");
        check("9999-12-31T23:59:59Z", "Asia/Tokyo", "9999-12-31");
    }

    #[test]
    fn call_fields_follow_the_call() {
        fn check(direction: CallDirection, duration: u32, expected_type: &str) {
            let mut event = example();
            event.call.direction = direction;
            event.call.duration_seconds = duration;
            let fields = task_fields(&event, &lead(), &owner(), &tokyo());
            assert_eq!(fields["CallType"], expected_type);
            assert_eq!(fields["CallDurationInSeconds"], duration);
            assert_eq!(fields["CallObject"], "as_01JDQ8Z6X0M2T4K9P3W7R5B1C8");
        }
        check(CallDirection::Inbound, 0, "Inbound");
        check(CallDirection::Outbound, 86_400, "Outbound");
    }
}
