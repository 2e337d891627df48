//! Creating records (docs/salesforce-facts.md §4): one at a time with
//! [`Client::create`], or up to 200 of any types in one API call with
//! [`Client::create_records`] (sObject Collections), each record's result on
//! its own.
//!
//! A Collections call answers HTTP 200 even when records fail, so a failed
//! record is not an [`Error`] but an [`ItemError`] in its place of
//! [`Created::results`]; [`ItemError::retry`] judges it with the same
//! decision as a failed call.
//!
//! Field values are customer data: they go into the request body and
//! nowhere else (not into logs, metrics or error messages).
//!
//! A write can time out after Salesforce committed it. Such a failure is
//! [`Error::Transport`], [`Retry::Transient`](crate::Retry): the outcome is
//! unknown, and the caller settles it (finds the record) before writing
//! again.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use crate::error::ItemError;
use crate::{
    client::{Client, record_call},
    error::{Error, ErrorCode},
    limits::ApiUsage,
};

/// The most records one sObject Collections call takes.
pub const MAX_RECORDS: usize = 200;

/// A record to create: its sObject type and its fields (no `Id`, no
/// `attributes`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    /// The sObject's API name: `Lead`, `Task`, `Custom__c`.
    pub object: String,
    /// Field API names and their values, as the REST API takes them.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// The answer to a Collections create: one result per record, in input
/// order.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    /// The new record's id (18 characters), or why it was not created.
    pub results: Vec<Result<String, ItemError>>,
    /// The allowance the answer reported.
    pub usage: Option<ApiUsage>,
}

impl Created {
    /// How many records were created.
    pub fn created(&self) -> usize {
        self.results.iter().filter(|r| r.is_ok()).count()
    }
}

/// The request body of a Collections create, borrowing the records.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CollectionRequest<'a> {
    all_or_none: bool,
    records: Vec<CollectionRecord<'a>>,
}

#[derive(Serialize)]
struct CollectionRecord<'a> {
    attributes: Attributes<'a>,
    #[serde(flatten)]
    fields: &'a serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct Attributes<'a> {
    #[serde(rename = "type")]
    object: &'a str,
}

/// One element of a Collections answer.
#[derive(Deserialize)]
struct ItemResult {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    success: bool,
    #[serde(default)]
    errors: serde_json::Value,
}

/// A single create's 201 answer; `success` and `errors` say nothing a 201
/// does not.
#[derive(Deserialize)]
struct CreateAnswer {
    id: String,
}

impl Client {
    /// Creates up to [`MAX_RECORDS`] records, of any sObject types, in one
    /// API call: `POST {instance_url}/services/data/{version}/composite/sobjects`
    /// with `allOrNone: false`. Each record is created or refused on its
    /// own; the answer is HTTP 200 even when some are refused, and
    /// [`Created::results`] holds one result per record in input order.
    ///
    /// No call is made for an empty `records` (the answer has no results and
    /// no usage).
    ///
    /// # Errors
    /// [`Error::InvalidInput`], without a call, for more than 200 records,
    /// an object name that is not an API name, or fields that carry `Id` or
    /// `attributes`. Otherwise the call's [`Error`] when the whole call
    /// failed ([`Error::retry`] says what to do); then no record is known to
    /// be created. An [`Error::Transport`] (timeout, broken connection) is
    /// transient but leaves the outcome unknown: Salesforce may have
    /// committed some or all records, and the caller must find them before
    /// creating them again. So does an [`Error::Decode`] (a 200 whose body
    /// is not one result per record), though it is permanent.
    pub async fn create_records(&self, records: &[NewRecord]) -> Result<Created, Error> {
        const ROUTE: &str = "create_records";
        if let Err(error) = check_records(records) {
            record_call(self.service(), ROUTE, error.label(), Duration::ZERO);
            return Err(error);
        }
        if records.is_empty() {
            return Ok(Created { results: Vec::new(), usage: None });
        }
        let body = CollectionRequest {
            all_or_none: false,
            records: records
                .iter()
                .map(|r| CollectionRecord { attributes: Attributes { object: &r.object }, fields: &r.fields })
                .collect(),
        };
        let url = format!("{}/services/data/{}/composite/sobjects", self.instance_url(), self.api_version());
        let started = Instant::now();
        let result = self.call(self.http().post(url).json(&body)).await.and_then(|(answer, usage)| {
            let results = read_results(answer.as_ref(), records.len())?;
            Ok(Created { results, usage })
        });
        let elapsed = started.elapsed();
        match &result {
            Ok(created) => {
                record_call(self.service(), ROUTE, "ok", elapsed);
                tracing::debug!(
                    operation = ROUTE,
                    records = records.len(),
                    created = created.created(),
                    refused = records.len() - created.created(),
                    ?elapsed,
                    "Salesforce answered"
                );
            }
            Err(e) => {
                record_call(self.service(), ROUTE, e.label(), elapsed);
                // The code, not the message: a validation message may quote
                // a field's value.
                tracing::debug!(
                    operation = ROUTE,
                    records = records.len(),
                    error = e.label(),
                    ?elapsed,
                    "Salesforce call failed"
                );
            }
        }
        result
    }

    /// Creates one record: `POST
    /// {instance_url}/services/data/{version}/sobjects/{object}/` with the
    /// fields as the body; the new id (18 characters) and the allowance.
    ///
    /// # Errors
    /// [`Error::InvalidInput`], without a call, when `object` is not an API
    /// name or `fields` carry `Id` or `attributes`. A refusal is
    /// [`Error::Api`]; for `DUPLICATES_DETECTED` its
    /// [`ApiError::duplicates`](crate::ApiError::duplicates) names the
    /// existing records when Salesforce named any. An [`Error::Transport`]
    /// (timeout, broken connection) is transient but leaves the outcome
    /// unknown: Salesforce may have committed the record, and the caller
    /// must look for it before creating it again. So does an
    /// [`Error::Decode`] (a 2xx without an id), though it is permanent.
    pub async fn create(
        &self,
        object: &str,
        fields: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(String, Option<ApiUsage>), Error> {
        const ROUTE: &str = "create";
        if let Err(reason) = check_record(object, fields) {
            let error = Error::InvalidInput(reason);
            record_call(self.service(), ROUTE, error.label(), Duration::ZERO);
            return Err(error);
        }
        let url = format!("{}/services/data/{}/sobjects/{object}/", self.instance_url(), self.api_version());
        let started = Instant::now();
        let result = self.call(self.http().post(url).json(fields)).await.and_then(|(answer, usage)| {
            let answer: CreateAnswer =
                serde_json::from_slice(answer.as_ref()).map_err(|e| Error::Decode(e.to_string()))?;
            Ok((answer.id, usage))
        });
        let elapsed = started.elapsed();
        match &result {
            Ok(_) => {
                record_call(self.service(), ROUTE, "ok", elapsed);
                tracing::debug!(operation = ROUTE, object, ?elapsed, "Salesforce answered");
            }
            Err(e) => {
                record_call(self.service(), ROUTE, e.label(), elapsed);
                tracing::debug!(operation = ROUTE, object, error = e.label(), ?elapsed, "Salesforce call failed");
            }
        }
        result
    }
}

/// Refuses what must not be sent, naming a record by its position and a
/// field by its name (never a value).
fn check_records(records: &[NewRecord]) -> Result<(), Error> {
    if records.len() > MAX_RECORDS {
        return Err(Error::InvalidInput(format!(
            "{} records in one sObject Collections call; Salesforce takes at most {MAX_RECORDS}",
            records.len()
        )));
    }
    for (i, record) in records.iter().enumerate() {
        check_record(&record.object, &record.fields).map_err(|e| Error::InvalidInput(format!("record {i}: {e}")))?;
    }
    Ok(())
}

/// Why a record cannot be sent as it is.
fn check_record(object: &str, fields: &serde_json::Map<String, serde_json::Value>) -> Result<(), String> {
    if !is_api_name(object) {
        let shown: String = object.chars().take(40).collect();
        return Err(format!("{shown:?} is not an sObject API name"));
    }
    if let Some(name) = fields.keys().find(|k| k.eq_ignore_ascii_case("Id") || k.eq_ignore_ascii_case("attributes")) {
        return Err(format!("a new {object} must not carry {name:?}"));
    }
    Ok(())
}

/// An API name (`Lead`, `Custom__c`, `ns__Object__c`): an ASCII letter, then
/// letters, digits and underscores. Nothing else may go into the URL path.
pub(crate) fn is_api_name(name: &str) -> bool {
    name.len() <= 80
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Reads a Collections answer: one result per record sent, in order.
fn read_results(body: &[u8], sent: usize) -> Result<Vec<Result<String, ItemError>>, Error> {
    let items: Vec<ItemResult> = serde_json::from_slice(body).map_err(|e| Error::Decode(e.to_string()))?;
    if items.len() != sent {
        return Err(Error::Decode(format!("{} results for {sent} records", items.len())));
    }
    Ok(items.into_iter().map(item_result).collect())
}

fn item_result(item: ItemResult) -> Result<String, ItemError> {
    match item.id {
        Some(id) if item.success && !id.is_empty() => Ok(id),
        _ => Err(ItemError::from_errors(&item.errors).unwrap_or_else(|| ItemError {
            code: ErrorCode::Other(String::new()),
            message: if item.success {
                "Salesforce reported the record created without its id".to_owned()
            } else {
                "Salesforce refused the record without saying why".to_owned()
            },
            fields: Vec::new(),
            duplicates: Vec::new(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One result as a line: the id, or `CODE fields=[..] duplicates=[..]`.
    fn describe(result: &Result<String, ItemError>) -> String {
        match result {
            Ok(id) => id.clone(),
            Err(e) => format!("{} fields={:?} duplicates={:?}", e.code.as_str(), e.fields, e.duplicates),
        }
    }

    #[test]
    fn collections_answers_are_read_item_by_item_in_order() {
        fn check(body: &str, sent: usize, expected: &[&str]) {
            let results = read_results(body.as_bytes(), sent).expect(body);
            assert_eq!(results.iter().map(describe).collect::<Vec<_>>(), expected, "{body}");
        }
        // The documentation's example (docs/salesforce-facts.md §4).
        check(
            r#"[{"success":false,"errors":[{"statusCode":"DUPLICATES_DETECTED","message":"Use one of these records?","fields":[]}]},
                {"id":"003RM0000068xVCYAY","success":true,"errors":[]}]"#,
            2,
            &["DUPLICATES_DETECTED fields=[] duplicates=[]", "003RM0000068xVCYAY"],
        );
        // A duplicate item that does carry its duplicateResult.
        check(
            r#"[{"success":false,"errors":[{"statusCode":"DUPLICATES_DETECTED","message":"Use one of these records?","fields":[],
                "duplicateResult":{"allowSave":false,"duplicateRule":"Standard_Lead_Duplicate_Rule","duplicateRuleEntityType":"Lead",
                "errorMessage":"Use one of these records?","matchResults":[{"entityType":"Lead","matchEngine":"FuzzyMatchEngine",
                "matchRecords":[{"record":{"attributes":{"type":"Lead"},"Id":"00Q5g00000A1b2CEAR"}}]}]}}]}]"#,
            1,
            &[r#"DUPLICATES_DETECTED fields=[] duplicates=["00Q5g00000A1b2CEAR"]"#],
        );
        check(
            r#"[{"id":"00Q5g00000A1b2CEAR","success":true,"errors":[]},
                {"success":false,"errors":[{"statusCode":"REQUIRED_FIELD_MISSING","message":"Required fields are missing: [LastName]","fields":["LastName"]},
                                           {"statusCode":"REQUIRED_FIELD_MISSING","message":"Required fields are missing: [Company]","fields":["Company"]}]},
                {"id":"00T5g00000A1b2CEAR","success":true,"errors":[],"warnings":[]}]"#,
            3,
            &[
                "00Q5g00000A1b2CEAR",
                r#"REQUIRED_FIELD_MISSING fields=["LastName"] duplicates=[]"#,
                "00T5g00000A1b2CEAR",
            ],
        );
        // fields absent; a lock on the Task's Who.
        check(
            r#"[{"success":false,"errors":[{"statusCode":"UNABLE_TO_LOCK_ROW","message":"unable to obtain exclusive access to this record or 1 records: 0035cFAKEIDAQBGAA4"}]}]"#,
            1,
            &["UNABLE_TO_LOCK_ROW fields=[] duplicates=[]"],
        );
        // Refused without errors, or "created" without an id: refused, code unknown.
        check(
            r#"[{"success":false,"errors":[]},{"success":false},{"success":true,"errors":[]},{"id":null,"success":true}]"#,
            4,
            &[" fields=[] duplicates=[]"; 4],
        );
        check("[]", 0, &[]);
    }

    #[test]
    fn an_answer_that_does_not_match_the_records_sent_is_unreadable() {
        fn check(body: &str, sent: usize) {
            let error = read_results(body.as_bytes(), sent).expect_err(body);
            assert!(matches!(error, Error::Decode(_)), "{body}: {error:?}");
        }
        check(r#"[{"id":"003RM0000068xVCYAY","success":true,"errors":[]}]"#, 2);
        check(r#"[{"id":"003RM0000068xVCYAY","success":true,"errors":[]}]"#, 0);
        check(r#"{"id":"003RM0000068xVCYAY","success":true,"errors":[]}"#, 1);
        check("", 1);
    }

    #[test]
    fn records_are_refused_before_any_call() {
        fn record(object: &str, fields: serde_json::Value) -> NewRecord {
            let serde_json::Value::Object(fields) = fields else { panic!("fields are an object") };
            NewRecord { object: object.to_owned(), fields }
        }
        fn check(records: &[NewRecord], refused: bool) {
            let got = check_records(records);
            assert_eq!(got.is_err(), refused, "{records:?}: {got:?}");
            if let Err(e) = got {
                assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
                assert!(!e.to_string().contains("secret value"), "values never reach the message: {e}");
            }
        }
        let lead = record("Lead", serde_json::json!({ "LastName": "山田", "Company": "secret value" }));
        check(&[], false);
        check(std::slice::from_ref(&lead), false);
        check(&vec![lead.clone(); MAX_RECORDS], false);
        check(&vec![lead.clone(); MAX_RECORDS + 1], true);
        check(&[record("Custom__c", serde_json::json!({})), record("ns__Thing__c", serde_json::json!({}))], false);
        check(&[lead.clone(), record("Lead/../Account", serde_json::json!({}))], true);
        check(&[record("", serde_json::json!({}))], true);
        check(&[record("1Lead", serde_json::json!({}))], true);
        check(&[record("Lead?x=1", serde_json::json!({}))], true);
        check(&[record("Lead", serde_json::json!({ "Id": "00Q5g00000A1b2CEAR", "LastName": "secret value" }))], true);
        check(&[record("Lead", serde_json::json!({ "id": "secret value" }))], true);
        check(&[record("Lead", serde_json::json!({ "attributes": { "type": "Account" } }))], true);
    }

    #[test]
    fn a_collections_body_puts_the_type_in_attributes_beside_the_fields() {
        let mut fields = serde_json::Map::new();
        fields.insert("Name".to_owned(), "example.com".into());
        fields.insert("BillingCity".to_owned(), "San Francisco".into());
        let body = CollectionRequest {
            all_or_none: false,
            records: vec![CollectionRecord { attributes: Attributes { object: "Account" }, fields: &fields }],
        };
        assert_eq!(
            serde_json::to_value(&body).expect("serializes"),
            serde_json::json!({"allOrNone":false,"records":[{"attributes":{"type":"Account"},"Name":"example.com","BillingCity":"San Francisco"}]})
        );
    }
}
