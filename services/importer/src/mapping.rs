//! From a Salesforce record, as [`crate::query`] reads it, to a `customer.upsert.v1`
//! (docs/behaviour.md §3, "Mapping to `customer.upsert.v1`").
//!
//! Pure: the run deserializes each page straight into [`Row`]s (one pass over the JSON, no
//! intermediate tree) and hands every row to [`map`], which either builds the message to publish
//! or says the record has no name and is counted as `skipped`.

use std::fmt;

use fa_messages::{
    CustomerFields, CustomerPhone, CustomerSource, CustomerUpsertV1, InvalidId, SObject, SalesforceId, SourceSystem,
    TenantId,
};
use fa_phone::Region;
use serde::Deserialize;
use time::{OffsetDateTime, UtcOffset};

use crate::{pending::Pending, removal::Life};

/// A Lead as the importer's query returns it. Fields Salesforce answers as `null` are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LeadRow {
    /// The record id (18 characters in REST answers).
    #[serde(rename = "Id")]
    pub id: String,
    /// `SystemModstamp`: the last change of any kind.
    #[serde(rename = "SystemModstamp", with = "fa_salesforce::datetime::field")]
    pub modified_at: OffsetDateTime,
    /// `FirstName`: the given name.
    #[serde(rename = "FirstName", default)]
    pub first_name: Option<String>,
    /// `LastName`: the family name.
    #[serde(rename = "LastName", default)]
    pub last_name: Option<String>,
    /// `Company`.
    #[serde(rename = "Company", default)]
    pub company: Option<String>,
    /// `Email`.
    #[serde(rename = "Email", default)]
    pub email: Option<String>,
    /// `Phone`, as entered (not normalised).
    #[serde(rename = "Phone", default)]
    pub phone: Option<String>,
}

/// A Contact as the importer's query returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ContactRow {
    /// The record id.
    #[serde(rename = "Id")]
    pub id: String,
    /// `SystemModstamp`.
    #[serde(rename = "SystemModstamp", with = "fa_salesforce::datetime::field")]
    pub modified_at: OffsetDateTime,
    /// `FirstName`.
    #[serde(rename = "FirstName", default)]
    pub first_name: Option<String>,
    /// `LastName`.
    #[serde(rename = "LastName", default)]
    pub last_name: Option<String>,
    /// `Email`.
    #[serde(rename = "Email", default)]
    pub email: Option<String>,
    /// `Phone`.
    #[serde(rename = "Phone", default)]
    pub phone: Option<String>,
    /// The parent Account (`Account.Name` in the query); `None` without one, which Salesforce
    /// answers as `"Account": null` (docs/salesforce-facts.md §2).
    #[serde(rename = "Account", default)]
    pub account: Option<ParentAccount>,
}

/// A Contact's parent Account, as a query nests it (with its own `attributes`, ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ParentAccount {
    /// `Account.Name`.
    #[serde(rename = "Name", default)]
    pub name: Option<String>,
}

/// An Account as the importer's query returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccountRow {
    /// The record id.
    #[serde(rename = "Id")]
    pub id: String,
    /// `SystemModstamp`.
    #[serde(rename = "SystemModstamp", with = "fa_salesforce::datetime::field")]
    pub modified_at: OffsetDateTime,
    /// `Name`: the company's name.
    #[serde(rename = "Name", default)]
    pub name: Option<String>,
    /// `Phone`.
    #[serde(rename = "Phone", default)]
    pub phone: Option<String>,
}

/// One row of a page, of any of the three objects.
///
/// Deserializes from a query row by its `attributes.type`, so one page type serves every
/// object: `client.query::<Row>(&query::soql(object, from))`. A row of any other type is a
/// decoding error. The run may compare [`Row::object`] with the object it asked for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "AnyRow")]
pub enum Row {
    /// A Lead.
    Lead(LeadRow),
    /// A Contact.
    Contact(ContactRow),
    /// An Account.
    Account(AccountRow),
}

impl Row {
    /// The record's object.
    pub fn object(&self) -> SObject {
        match self {
            Row::Lead(_) => SObject::Lead,
            Row::Contact(_) => SObject::Contact,
            Row::Account(_) => SObject::Account,
        }
    }

    /// The record id, as Salesforce answered it.
    pub fn id(&self) -> &str {
        match self {
            Row::Lead(row) => &row.id,
            Row::Contact(row) => &row.id,
            Row::Account(row) => &row.id,
        }
    }

    /// The record's `SystemModstamp`, as answered (UTC).
    pub fn modified_at(&self) -> OffsetDateTime {
        match self {
            Row::Lead(row) => row.modified_at,
            Row::Contact(row) => row.modified_at,
            Row::Account(row) => row.modified_at,
        }
    }
}

/// The rows of a page of `object` that was read as JSON values
/// (`QueryPage<serde_json::Value>`), each into `object`'s row type.
///
/// Reading the page as `QueryPage<Row>` instead skips the intermediate JSON tree; both give the
/// same rows.
///
/// # Errors
/// Which row (by position) could not be read and why, e.g. a missing `Id` or a `SystemModstamp`
/// that is not a Salesforce datetime.
pub fn parse_rows(object: SObject, records: Vec<serde_json::Value>) -> Result<Vec<Row>, String> {
    let row = |value: serde_json::Value| match object {
        SObject::Lead => serde_json::from_value(value).map(Row::Lead),
        SObject::Contact => serde_json::from_value(value).map(Row::Contact),
        SObject::Account => serde_json::from_value(value).map(Row::Account),
    };
    records
        .into_iter()
        .enumerate()
        .map(|(index, value)| row(value).map_err(|e| format!("{object} row {index}: {e}")))
        .collect()
}

/// A row of any of the three objects, read in one pass; [`Row`] keeps the fields of its type.
#[derive(Deserialize)]
struct AnyRow {
    attributes: Attributes,
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "SystemModstamp", with = "fa_salesforce::datetime::field")]
    modified_at: OffsetDateTime,
    #[serde(rename = "FirstName", default)]
    first_name: Option<String>,
    #[serde(rename = "LastName", default)]
    last_name: Option<String>,
    #[serde(rename = "Name", default)]
    name: Option<String>,
    #[serde(rename = "Company", default)]
    company: Option<String>,
    #[serde(rename = "Email", default)]
    email: Option<String>,
    #[serde(rename = "Phone", default)]
    phone: Option<String>,
    #[serde(rename = "Account", default)]
    account: Option<ParentAccount>,
    // Salesforce always answers these booleans; a null reads as false.
    #[serde(rename = "IsDeleted", default)]
    is_deleted: Option<bool>,
    #[serde(rename = "MasterRecordId", default)]
    master_record_id: Option<String>,
    #[serde(rename = "IsConverted", default)]
    is_converted: Option<bool>,
    #[serde(rename = "ConvertedContactId", default)]
    converted_contact_id: Option<String>,
    #[serde(rename = "ConvertedAccountId", default)]
    converted_account_id: Option<String>,
}

/// A row of the run's `queryAll` cursor: the record, and whether it still
/// lives ([`Life`]), read in the same single pass as [`Row`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "AnyRow")]
pub struct Seen {
    /// The record's fields.
    pub row: Row,
    /// Whether it was deleted, merged or converted.
    pub life: Life,
}

impl TryFrom<AnyRow> for Seen {
    type Error = String;

    fn try_from(mut row: AnyRow) -> Result<Self, String> {
        let life = Life {
            is_deleted: row.is_deleted.unwrap_or(false),
            master_record_id: row.master_record_id.take(),
            is_converted: row.is_converted.unwrap_or(false),
            converted_contact_id: row.converted_contact_id.take(),
            converted_account_id: row.converted_account_id.take(),
        };
        Ok(Self { row: Row::try_from(row)?, life })
    }
}

/// A row's `attributes`; its `url` is not needed.
#[derive(Deserialize)]
struct Attributes {
    #[serde(rename = "type")]
    object: String,
}

impl TryFrom<AnyRow> for Row {
    type Error = String;

    fn try_from(row: AnyRow) -> Result<Self, String> {
        let AnyRow { attributes, id, modified_at, first_name, last_name, name, company, email, phone, account, .. } =
            row;
        match attributes.object.parse::<SObject>().map_err(|e| format!("a row the importer does not read: {e}"))? {
            SObject::Lead => Ok(Row::Lead(LeadRow { id, modified_at, first_name, last_name, company, email, phone })),
            SObject::Contact => {
                Ok(Row::Contact(ContactRow { id, modified_at, first_name, last_name, email, phone, account }))
            }
            SObject::Account => Ok(Row::Account(AccountRow { id, modified_at, name, phone })),
        }
    }
}

/// What becomes of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped<C = CustomerUpsertV1> {
    /// Publish this.
    Customer(C),
    /// The record has no name: it is not imported, and counts as `skipped`.
    NoName,
}

/// A row whose id is not an 18-character Salesforce id. Salesforce's REST answers always carry
/// 18-character ids, so this means the answer is not what the query asked for; the run should
/// fail rather than publish a message the schema refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingError {
    object: SObject,
    reason: InvalidId,
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} row Salesforce answered has an unusable id: {}", self.object, self.reason)
    }
}

impl std::error::Error for MappingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.reason)
    }
}

/// Maps one row to the `customer.upsert.v1` the run publishes for it, as docs/behaviour.md §3's table
/// says:
///
/// - Lead and Contact: the name is `LastName FirstName` (family name first, as in Japan), either
///   part may be missing; Lead's company is `Company`, Contact's the parent `Account.Name`.
/// - Account: name and company are both `Name`, e-mail is null.
/// - Phones: only `Phone`, with its E.164 form read as a Japanese number, or null.
///
/// Text is trimmed of surrounding blanks (the full-width space U+3000 too); what is then empty
/// counts as missing: `null`, no phone, or [`Mapped::NoName`] for the name.
///
/// # Errors
/// [`MappingError`] when the row's id is not an 18-character Salesforce id (never expected).
pub fn map(tenant: &TenantId, run_id: &str, row: &Row) -> Result<Mapped, MappingError> {
    Ok(match map_owned(tenant, row.clone())? {
        Mapped::Customer(pending) => Mapped::Customer(pending.into_run(run_id)),
        Mapped::NoName => Mapped::NoName,
    })
}

/// [`map`], taking the row: its texts move into the message rather than being copied (the run
/// maps every record it reads, and has no use for the row afterwards). The message waits for the
/// id of the run that publishes it ([`Pending`]): pages are read ahead of that run.
///
/// # Errors
/// As [`map`].
pub fn map_owned(tenant: &TenantId, row: Row) -> Result<Mapped<Pending<CustomerUpsertV1>>, MappingError> {
    let object = row.object();
    let (id, modified_at, name, company, email, phone) = match row {
        Row::Lead(lead) => (
            lead.id,
            lead.modified_at,
            person_name(lead.last_name, lead.first_name),
            present(lead.company),
            present(lead.email),
            lead.phone,
        ),
        Row::Contact(contact) => (
            contact.id,
            contact.modified_at,
            person_name(contact.last_name, contact.first_name),
            contact.account.and_then(|account| present(account.name)),
            present(contact.email),
            contact.phone,
        ),
        Row::Account(account) => {
            let name = present(account.name);
            (account.id, account.modified_at, name.clone(), name, None, account.phone)
        }
    };
    let Some(name) = name else {
        return Ok(Mapped::NoName);
    };
    let id = SalesforceId::new_18(&id).map_err(|reason| MappingError { object, reason })?;
    Ok(Mapped::Customer(Pending::new(CustomerUpsertV1 {
        tenant_id: tenant.clone(),
        import_run_id: String::new(),
        source: CustomerSource {
            system: SourceSystem::Salesforce,
            object,
            id,
            modified_at: modified_at.to_offset(UtcOffset::UTC),
        },
        customer: CustomerFields {
            name,
            company,
            email,
            phones: present(phone).map(customer_phone).into_iter().collect(),
        },
    })))
}

/// `last first`, each trimmed; one space only between two non-empty parts.
fn person_name(last: Option<String>, first: Option<String>) -> Option<String> {
    match (present(last), present(first)) {
        (Some(last), Some(first)) => Some(format!("{last} {first}")),
        (Some(one), None) | (None, Some(one)) => Some(one),
        (None, None) => None,
    }
}

/// The text trimmed of surrounding whitespace (`str::trim` counts U+3000 as whitespace), or
/// `None` when nothing is left. Text with nothing to trim is kept as it is, not copied.
fn present(text: Option<String>) -> Option<String> {
    let text = text?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        None
    } else if trimmed.len() == text.len() {
        Some(text)
    } else {
        Some(trimmed.to_owned())
    }
}

/// A phone as stored (trimmed), with its E.164 form when it is a valid number.
fn customer_phone(number: String) -> CustomerPhone {
    let e164 = fa_phone::normalize(&number, Region::JAPAN).map(|e164| e164.to_string());
    CustomerPhone { number, e164 }
}

#[cfg(test)]
mod tests {
    use fa_messages::validation::validate_message;
    use serde_json::{Value, json};

    use super::*;

    fn tenant() -> TenantId {
        TenantId::new("acme").expect("tenant")
    }

    /// Maps `row` and compares the message with `expected` (`null` for a record skipped for
    /// having no name); every message must satisfy the schema.
    fn check(row: Value, expected: Value) {
        let parsed: Row = serde_json::from_value(row.clone()).expect("a row");
        let mapped = map(&tenant(), "run-1", &parsed).expect("maps");
        let actual = match mapped {
            Mapped::NoName => Value::Null,
            Mapped::Customer(message) => {
                if let Err(errors) = validate_message(&message) {
                    panic!("{row}: the message breaks the schema: {errors:?}");
                }
                serde_json::to_value(&message).expect("serialises")
            }
        };
        assert_eq!(actual, expected, "row {row}");
    }

    fn lead(fields: Value) -> Value {
        row("Lead", "00Q5j00000AbCdEEAV", fields)
    }

    fn contact(fields: Value) -> Value {
        row("Contact", "0035j00000XyZabAAF", fields)
    }

    fn account(fields: Value) -> Value {
        row("Account", "0015j00000QwErTAAV", fields)
    }

    /// A row as Salesforce answers it: `attributes`, `Id`, the fields, `SystemModstamp`.
    fn row(object: &str, id: &str, fields: Value) -> Value {
        let mut row = json!({
            "attributes": { "type": object, "url": format!("/services/data/v61.0/sobjects/{object}/{id}") },
            "Id": id,
        });
        let map = row.as_object_mut().expect("an object");
        map.extend(fields.as_object().expect("fields").clone());
        map.insert("SystemModstamp".to_owned(), json!("2026-11-20T01:02:03.000+0000"));
        row
    }

    fn upsert(object: &str, id: &str, customer: Value) -> Value {
        json!({
            "tenant_id": "acme",
            "import_run_id": "run-1",
            "source": { "system": "salesforce", "object": object, "id": id, "modified_at": "2026-11-20T01:02:03.000Z" },
            "customer": customer,
        })
    }

    fn lead_customer(customer: Value) -> Value {
        upsert("Lead", "00Q5j00000AbCdEEAV", customer)
    }

    #[test]
    fn leads_map_family_name_first() {
        let tokyo = json!([{ "number": "03-1234-5678", "e164": "+81312345678" }]);
        check(
            lead(json!({
                "FirstName": "花子", "LastName": "山田", "Company": "株式会社テスト",
                "Email": "hanako@example.jp", "Phone": "03-1234-5678",
            })),
            lead_customer(json!({
                "name": "山田 花子", "company": "株式会社テスト", "email": "hanako@example.jp", "phones": tokyo,
            })),
        );
        check(
            lead(
                json!({ "FirstName": null, "LastName": "山田", "Company": "株式会社テスト", "Email": null, "Phone": null }),
            ),
            lead_customer(json!({ "name": "山田", "company": "株式会社テスト", "email": null, "phones": [] })),
        );
        check(
            lead(json!({ "LastName": "Yamada", "Company": "Test KK" })),
            lead_customer(json!({ "name": "Yamada", "company": "Test KK", "email": null, "phones": [] })),
        );
        check(
            lead(json!({ "FirstName": "  ", "LastName": " Yamada ", "Company": "Test KK" })),
            lead_customer(json!({ "name": "Yamada", "company": "Test KK", "email": null, "phones": [] })),
        );
        check(
            lead(
                json!({ "FirstName": "\u{3000}花子\u{3000}", "LastName": "\u{3000}山田 ", "Company": " 株式会社テスト\u{3000}" }),
            ),
            lead_customer(json!({ "name": "山田 花子", "company": "株式会社テスト", "email": null, "phones": [] })),
        );
        check(
            lead(json!({ "FirstName": "Hanako", "LastName": "\u{3000}", "Company": "Test KK" })),
            lead_customer(json!({ "name": "Hanako", "company": "Test KK", "email": null, "phones": [] })),
        );
        check(
            lead(json!({ "FirstName": "Hanako", "LastName": "Yamada", "Company": "", "Email": "" })),
            lead_customer(json!({ "name": "Yamada Hanako", "company": null, "email": null, "phones": [] })),
        );
        check(
            lead(
                json!({ "FirstName": " \u{3000}", "LastName": "\u{3000}", "Company": "Test KK", "Phone": "03-1234-5678" }),
            ),
            Value::Null,
        );
        check(lead(json!({ "FirstName": null, "LastName": null, "Company": "Test KK" })), Value::Null);
    }

    #[test]
    fn contacts_take_their_company_from_the_parent_account() {
        let customer = |company: Value| {
            upsert(
                "Contact",
                "0035j00000XyZabAAF",
                json!({
                    "name": "鈴木 太郎", "company": company, "email": "taro@example.jp",
                    "phones": [{ "number": "090-1234-5678", "e164": "+819012345678" }],
                }),
            )
        };
        let fields = |account: Value| {
            json!({
                "FirstName": "太郎", "LastName": "鈴木", "Email": "taro@example.jp", "Phone": "090-1234-5678",
                "Account": account,
            })
        };
        let parent = json!({
            "attributes": { "type": "Account", "url": "/services/data/v61.0/sobjects/Account/0015j00000QwErTAAV" },
            "Name": "株式会社テスト",
        });
        check(contact(fields(parent)), customer(json!("株式会社テスト")));
        check(contact(fields(Value::Null)), customer(Value::Null));
        check(contact(fields(json!({ "attributes": { "type": "Account" }, "Name": " " }))), customer(Value::Null));
        check(contact(json!({ "FirstName": null, "LastName": " ", "Account": null })), Value::Null);
    }

    #[test]
    fn accounts_are_named_after_the_company() {
        let customer = |phones: Value| {
            upsert(
                "Account",
                "0015j00000QwErTAAV",
                json!({ "name": "株式会社テスト", "company": "株式会社テスト", "email": null, "phones": phones }),
            )
        };
        check(
            account(json!({ "Name": " 株式会社テスト ", "Phone": "03-1234-5678" })),
            customer(json!([{ "number": "03-1234-5678", "e164": "+81312345678" }])),
        );
        check(account(json!({ "Name": "株式会社テスト", "Phone": null })), customer(json!([])));
        check(account(json!({ "Name": "\u{3000}", "Phone": "03-1234-5678" })), Value::Null);
        check(account(json!({ "Name": null })), Value::Null);
    }

    #[test]
    fn phones_keep_the_stored_text_and_add_e164_where_possible() {
        let check_phone = |stored: Value, expected: Value| {
            let customer =
                json!({ "name": "株式会社テスト", "company": "株式会社テスト", "email": null, "phones": expected });
            check(
                account(json!({ "Name": "株式会社テスト", "Phone": stored })),
                upsert("Account", "0015j00000QwErTAAV", customer),
            );
        };
        let one = |number: &str, e164: Option<&str>| json!([{ "number": number, "e164": e164 }]);
        check_phone(json!("03-1234-5678"), one("03-1234-5678", Some("+81312345678")));
        check_phone(json!("０９０－１２３４－５６７８"), one("０９０－１２３４－５６７８", Some("+819012345678")));
        check_phone(json!("(03)1234-5678"), one("(03)1234-5678", Some("+81312345678")));
        check_phone(json!("+81 3-1234-5678"), one("+81 3-1234-5678", Some("+81312345678")));
        check_phone(json!(" 03-1234-5678\u{3000}"), one("03-1234-5678", Some("+81312345678")));
        check_phone(json!("なし"), one("なし", None));
        check_phone(json!("03-1234"), one("03-1234", None));
        check_phone(json!(""), json!([]));
        check_phone(json!("  "), json!([]));
        check_phone(Value::Null, json!([]));
    }

    #[test]
    fn modified_at_is_the_system_modstamp_in_utc() {
        let row: Row = serde_json::from_value(lead(json!({ "LastName": "山田" }))).expect("a row");
        assert_eq!(row.modified_at(), time::macros::datetime!(2026-11-20 01:02:03 UTC));
        let Mapped::Customer(message) = map(&tenant(), "run-1", &row).expect("maps") else {
            panic!("a named Lead is imported");
        };
        let json = serde_json::to_value(&message).expect("serialises");
        assert_eq!(json["source"]["modified_at"], "2026-11-20T01:02:03.000Z");

        let mut row = lead(json!({ "LastName": "山田" }));
        row["SystemModstamp"] = json!("2026-11-20T10:02:03.250+0900");
        let row: Row = serde_json::from_value(row).expect("a row");
        let Mapped::Customer(message) = map(&tenant(), "run-1", &row).expect("maps") else {
            panic!("a named Lead is imported");
        };
        assert_eq!(message.source.modified_at.offset(), UtcOffset::UTC);
        let json = serde_json::to_value(&message).expect("serialises");
        assert_eq!(json["source"]["modified_at"], "2026-11-20T01:02:03.250Z");
    }

    #[test]
    fn a_page_of_rows_deserializes_by_attributes_type() {
        let rows: Vec<Row> = serde_json::from_value(json!([
            lead(json!({ "LastName": "山田", "MobilePhone": "090-0000-0000" })),
            contact(json!({ "LastName": "鈴木", "Account": null })),
            account(json!({ "Name": "株式会社テスト" })),
        ]))
        .expect("rows");
        let objects: Vec<(SObject, &str)> = rows.iter().map(|row| (row.object(), row.id())).collect();
        assert_eq!(
            objects,
            [
                (SObject::Lead, "00Q5j00000AbCdEEAV"),
                (SObject::Contact, "0035j00000XyZabAAF"),
                (SObject::Account, "0015j00000QwErTAAV")
            ]
        );
        for refused in [
            row("Task", "00T5j00000AbCdEAAV", json!({})),
            json!({ "Id": "00Q5j00000AbCdEEAV", "SystemModstamp": "2026-11-20T01:02:03.000+0000" }),
            json!({ "attributes": { "type": "Lead" }, "Id": "00Q5j00000AbCdEEAV", "SystemModstamp": "yesterday" }),
        ] {
            assert!(serde_json::from_value::<Row>(refused.clone()).is_err(), "{refused}");
        }
    }

    #[test]
    fn rows_read_as_json_values_are_the_same_rows() {
        let records = vec![lead(json!({ "FirstName": "花子", "LastName": "山田", "Phone": "03-1234-5678" }))];
        let typed: Vec<Row> = serde_json::from_value(Value::Array(records.clone())).expect("rows");
        assert_eq!(parse_rows(SObject::Lead, records.clone()), Ok(typed));
        let contacts = parse_rows(SObject::Contact, vec![contact(json!({ "LastName": "鈴木", "Account": null }))]);
        assert_eq!(contacts.expect("rows")[0].object(), SObject::Contact);
        let err = parse_rows(SObject::Lead, vec![records[0].clone(), json!({ "Id": "00Q5j00000AbCdEEAV" })])
            .expect_err("no SystemModstamp");
        assert!(err.starts_with("Lead row 1: "), "{err}");
    }

    #[test]
    fn an_id_that_is_not_18_characters_is_an_error() {
        for id in ["00Q5j00000AbCdE", "00Q5j00000AbCdEEAV!", ""] {
            let row: Row = serde_json::from_value(row("Lead", id, json!({ "LastName": "山田" }))).expect("a row");
            let err = map(&tenant(), "run-1", &row).expect_err("refused");
            assert!(err.to_string().contains("Lead"), "{err}");
        }
    }
}
