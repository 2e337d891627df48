//! Creating, updating and deleting records as Salesforce validates them:
//! unknown and read-only fields, required fields, lengths in UTF-16 units,
//! restricted picklists, lookups, Task rules, duplicate rules, derived
//! fields and timestamps moved by every write.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json, json};
use time::OffsetDateTime;

use crate::{
    error::ApiError,
    ids,
    schema::{self, Field, FieldType, ObjectSchema},
    store::{Locale, Org, OrgData, Sim, lock, write},
    value::{Record, Value, phone_digits, salesforce_length},
};

/// `Name` of a person in the org's locale: `姓 名` for ja_JP.
pub fn compose_name(locale: Locale, first: Option<&str>, last: Option<&str>) -> String {
    let parts: Vec<&str> = match locale {
        Locale::JaJp => vec![last.unwrap_or(""), first.unwrap_or("")],
        Locale::EnUs => vec![first.unwrap_or(""), last.unwrap_or("")],
    };
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect::<Vec<_>>().join(" ")
}

/// A write's outcome: the record's id, or Salesforce's errors for it.
pub type WriteResult = Result<String, Vec<ApiError>>;

fn label(field: &Field) -> String {
    // Salesforce's messages name the field's label; split the API name.
    let mut out = String::new();
    for (i, c) in field.name.trim_end_matches("Id").chars().enumerate() {
        if i > 0 && c.is_ascii_uppercase() {
            out.push(' ');
        }
        out.push(c);
    }
    if field.name.ends_with("Id") && field.name != "Id" { format!("{out} ID") } else { out }
}

/// Reads the JSON body of a create or update into field values, checking
/// each field; `creating` selects the create-time rules.
fn parse_fields(
    object: &'static ObjectSchema,
    body: &Map<String, Json>,
    creating: bool,
    data: &OrgData,
) -> Result<Vec<(&'static Field, Value)>, Vec<ApiError>> {
    let mut values = Vec::new();
    let mut errors = Vec::new();
    let mut not_writable = Vec::new();
    for (name, json) in body {
        if name == "attributes" {
            continue;
        }
        let Some(field) = object.field(name) else {
            errors.push(ApiError::new(
                400,
                "INVALID_FIELD",
                format!("No such column '{name}' on sobject of type {}", object.name),
            ));
            continue;
        };
        if (creating && !field.createable) || (!creating && !field.updateable) {
            not_writable.push(field.name);
            continue;
        }
        let value = match Value::from_json(&field.ty, json) {
            Ok(v) => v,
            Err(problem) => {
                errors.push(ApiError::with_fields(
                    400,
                    "JSON_PARSER_ERROR",
                    format!("Cannot deserialize instance of {} from {problem}", field.name),
                    &[field.name],
                ));
                continue;
            }
        };
        if let Some(e) = check_value(field, &value, data) {
            errors.push(e);
            continue;
        }
        values.push((field, value));
    }
    if !not_writable.is_empty() {
        errors.push(ApiError::with_fields(
            400,
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            format!(
                "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                not_writable.join(", ")
            ),
            &not_writable,
        ));
    }
    if errors.is_empty() { Ok(values) } else { Err(errors) }
}

fn check_value(field: &'static Field, value: &Value, data: &OrgData) -> Option<ApiError> {
    let text = value.as_text()?;
    let too_long = |max: usize| {
        (salesforce_length(text) > max).then(|| {
            ApiError::with_fields(
                400,
                "STRING_TOO_LONG",
                format!("{}: data value too large: {text} (max length={max})", label(field)),
                &[field.name],
            )
        })
    };
    match &field.ty {
        FieldType::Text { length } | FieldType::TextArea { length } => too_long(*length),
        FieldType::Phone => too_long(40),
        FieldType::Email => too_long(80).or_else(|| {
            let valid = text
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !text.contains(' '));
            (!valid).then(|| {
                ApiError::with_fields(
                    400,
                    "INVALID_EMAIL_ADDRESS",
                    format!("{}: invalid email address: {text}", label(field)),
                    &[field.name],
                )
            })
        }),
        FieldType::Picklist { values, restricted: true } if !values.contains(&text) => Some(ApiError::with_fields(
            400,
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            format!("{}: bad value for restricted picklist field: {text}", label(field)),
            &[field.name],
        )),
        FieldType::Reference { targets } => {
            let Some(id) = ids::to_18(text) else {
                return Some(ApiError::with_fields(
                    400,
                    "MALFORMED_ID",
                    format!("{}: id value of incorrect type: {text}", label(field)),
                    &[field.name],
                ));
            };
            match data.records.get(&id) {
                Some(target) if targets.contains(&target.object.name) => None,
                Some(_) => Some(ApiError::with_fields(
                    400,
                    "FIELD_INTEGRITY_EXCEPTION",
                    format!("{}: id value of incorrect type: {text}", label(field)),
                    &[field.name],
                )),
                None if schema::object_by_prefix(&id[..3]).is_some_and(|o| targets.contains(&o.name)) => {
                    Some(ApiError::with_fields(
                        400,
                        "INVALID_CROSS_REFERENCE_KEY",
                        "invalid cross reference id",
                        &[field.name],
                    ))
                }
                None => Some(ApiError::with_fields(
                    400,
                    "MALFORMED_ID",
                    format!("{}: id value of incorrect type: {text}", label(field)),
                    &[field.name],
                )),
            }
        }
        _ => None,
    }
}

/// Derived fields and the record-level rules, checked on the merged record.
fn finish(org: &Org, record: &mut Record, data: &OrgData, now: OffsetDateTime) -> Result<(), Vec<ApiError>> {
    let object = record.object;
    let missing: Vec<&str> = object
        .fields
        .iter()
        .filter(|f| f.required && f.createable && record.get(f.name).is_null())
        .map(|f| f.name)
        .collect();
    if !missing.is_empty() {
        return Err(vec![ApiError::with_fields(
            400,
            "REQUIRED_FIELD_MISSING",
            format!("Required fields are missing: [{}]", missing.join(", ")),
            &missing,
        )]);
    }
    if object.field("Name").is_some_and(|f| !f.createable) && object.field("LastName").is_some() {
        let name = compose_name(org.locale, record.get("FirstName").as_text(), record.get("LastName").as_text());
        record.fields.insert("Name", Value::Text(name));
    }
    if object.name == "Task" {
        let who = record.get("WhoId").as_text().map(str::to_owned);
        let what = record.get("WhatId").as_text().map(str::to_owned);
        if who.as_deref().is_some_and(|w| w.starts_with("00Q")) && what.is_some() {
            return Err(vec![ApiError::with_fields(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                "Related To ID: id value of incorrect type: a Lead cannot be related to another record",
                &["WhatId"],
            )]);
        }
        let account = what.clone().or_else(|| {
            who.as_deref()
                .and_then(|w| data.records.get(w))
                .and_then(|c| c.get("AccountId").as_text().map(str::to_owned))
        });
        record.fields.insert("AccountId", account.map_or(Value::Null, Value::Text));
        let closed = matches!(record.get("Status").as_text(), Some("Completed"));
        record.fields.insert("IsClosed", Value::Bool(closed));
        record.fields.entry("IsArchived").or_insert(Value::Bool(false));
    }
    if let Some(owner) = record.get("OwnerId").as_text() {
        match data.records.get(owner) {
            Some(user) if matches!(user.get("IsActive"), Value::Bool(true)) => {}
            Some(_) => {
                return Err(vec![ApiError::new(
                    400,
                    "INACTIVE_OWNER_OR_USER",
                    format!(
                        "operation performed with inactive user [{owner}] as owner of {}",
                        object.name.to_lowercase()
                    ),
                )]);
            }
            None => {}
        }
    }
    record.fields.insert("SystemModstamp", Value::DateTime(now));
    record.fields.insert("LastModifiedDate", Value::DateTime(now));
    Ok(())
}

/// The existing records a duplicate rule would name for `record`: same
/// e-mail (case-insensitive) or same phone digits.
fn duplicates<'a>(data: &'a OrgData, record: &Record) -> Vec<&'a Record> {
    let email = record.get("Email").as_text().map(str::to_lowercase);
    let phone = record.get("Phone").as_text().map(phone_digits).filter(|d| d.len() >= 6);
    let name = record.get("Name").as_text().map(str::to_owned);
    data.of(record.object)
        .filter(|r| {
            !matches!(r.get("IsDeleted"), Value::Bool(true)) && !matches!(r.get("IsConverted"), Value::Bool(true))
        })
        .filter(|r| {
            email.as_ref().is_some_and(|e| r.get("Email").as_text().is_some_and(|x| x.to_lowercase() == *e))
                || phone.as_ref().is_some_and(|p| r.get("Phone").as_text().is_some_and(|x| phone_digits(x) == *p))
                || (record.object.name == "Account" && name.is_some() && r.get("Name").as_text() == name.as_deref())
        })
        .collect()
}

fn duplicate_error(object: &ObjectSchema, matches: &[&Record], api_version: &str) -> ApiError {
    let records: Vec<Json> = matches
        .iter()
        .map(|r| {
            json!({
                "additionalInformation": [], "fieldDiffs": [], "matchConfidence": 100.0,
                "record": { "attributes": { "type": object.name, "url": format!("/services/data/{api_version}/sobjects/{}/{}", object.name, r.id()) }, "Id": r.id() }
            })
        })
        .collect();
    let mut error = ApiError::new(400, "DUPLICATES_DETECTED", "Use one of these records?");
    error.extra = Some(Box::new((
        "duplicateResult".to_owned(),
        json!({
            "allowSave": false,
            "duplicateRule": format!("Standard_{}_Duplicate_Rule", object.name),
            "duplicateRuleEntityType": object.name,
            "errorMessage": "Use one of these records?",
            "matchResults": [{
                "entityType": object.name, "errorMessage": null, "matchEngine": "FuzzyMatchEngine",
                "matchRecords": records, "rule": format!("Standard_{}_Match_Rule_v1_0", object.name),
                "size": matches.len(), "success": true
            }]
        }),
    )));
    error
}

/// What a create or update is allowed to do beyond the REST rules (seeding
/// through the control API may set read-only fields).
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteMode {
    /// Read-only fields (`SystemModstamp`, `IsConverted`...) may be set.
    pub seeding: bool,
    /// Skip duplicate rules (`Sforce-Duplicate-Rule-Header: allowSave=true`
    /// does this only for alert rules; seeding always does).
    pub skip_duplicate_rules: bool,
}

/// Creates a record owned by `user_id`.
pub fn create(
    sim: &Sim,
    org: &Org,
    object: &'static ObjectSchema,
    body: &Map<String, Json>,
    user_id: &str,
    api_version: &str,
    mode: WriteMode,
) -> WriteResult {
    let mut data = write(&org.data);
    create_in(sim, org, &mut data, object, body, user_id, api_version, mode)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn create_in(
    sim: &Sim,
    org: &Org,
    data: &mut OrgData,
    object: &'static ObjectSchema,
    body: &Map<String, Json>,
    user_id: &str,
    api_version: &str,
    mode: WriteMode,
) -> WriteResult {
    if body.keys().any(|k| k.eq_ignore_ascii_case("Id")) && !mode.seeding {
        return Err(vec![ApiError::new(400, "INVALID_FIELD", "Id not specified in an insert call".to_string())]);
    }
    let values = if mode.seeding { parse_seed_fields(object, body)? } else { parse_fields(object, body, true, data)? };
    let now = org.now();
    let id = sim.ids().next(object.key_prefix);
    let mut fields = initial_fields(object);
    fields.insert("Id", Value::Text(id.clone()));
    fields.insert("CreatedDate", Value::DateTime(now));
    fields.insert("CreatedById", Value::Text(user_id.to_owned()));
    fields.insert("LastModifiedById", Value::Text(user_id.to_owned()));
    if object.field("OwnerId").is_some() {
        fields.insert("OwnerId", Value::Text(user_id.to_owned()));
    }
    let mut record = Record { object, fields };
    for (field, value) in values {
        record.fields.insert(field.name, value);
    }
    let explicit_stamp =
        record.fields.get("SystemModstamp").cloned().filter(|_| mode.seeding && body.contains_key("SystemModstamp"));
    let explicit_created = mode.seeding && body.contains_key("CreatedDate");
    finish(org, &mut record, data, now)?;
    if let Some(stamp) = explicit_stamp {
        record.fields.insert("SystemModstamp", stamp.clone());
        if !body.contains_key("LastModifiedDate") {
            record.fields.insert("LastModifiedDate", stamp.clone());
        }
        if !explicit_created {
            record.fields.insert("CreatedDate", stamp);
        }
    }
    if !mode.skip_duplicate_rules && !mode.seeding && lock(&org.duplicate_rules).contains(object.name) {
        let found = duplicates(data, &record);
        if !found.is_empty() {
            return Err(vec![duplicate_error(object, &found, api_version)]);
        }
    }
    data.insert(record);
    Ok(id)
}

/// The fields a new record has before anything is written to it: picklist
/// defaults, and false in every checkbox (checkboxes are never null).
pub fn initial_fields(object: &ObjectSchema) -> BTreeMap<&'static str, Value> {
    let mut fields = BTreeMap::new();
    for field in &object.fields {
        if let Some(default) = field.default {
            fields.insert(field.name, Value::Text(default.to_owned()));
        }
        if matches!(field.ty, FieldType::Boolean) {
            fields.insert(field.name, Value::Bool(false));
        }
    }
    fields
}

/// Seeding takes every field the schema knows, read-only ones included.
fn parse_seed_fields(
    object: &'static ObjectSchema,
    body: &Map<String, Json>,
) -> Result<Vec<(&'static Field, Value)>, Vec<ApiError>> {
    let mut values = Vec::new();
    for (name, json) in body {
        let Some(field) = object.field(name) else {
            return Err(vec![ApiError::new(
                400,
                "INVALID_FIELD",
                format!("No such column '{name}' on sobject of type {}", object.name),
            )]);
        };
        let value = Value::from_json(&field.ty, json)
            .map_err(|e| vec![ApiError::with_fields(400, "JSON_PARSER_ERROR", e, &[field.name])])?;
        values.push((field, value));
    }
    Ok(values)
}

/// Updates a record.
pub fn update(
    org: &Org,
    object: &'static ObjectSchema,
    id: &str,
    body: &Map<String, Json>,
    user_id: &str,
) -> Result<(), Vec<ApiError>> {
    let mut data = write(&org.data);
    let Some(existing) = data.records.get(id).filter(|r| r.object.name == object.name) else {
        return Err(vec![ApiError::with_fields(
            404,
            "NOT_FOUND",
            "Provided external ID field does not exist or is not accessible: ".to_owned() + id,
            &[],
        )]);
    };
    if matches!(existing.get("IsDeleted"), Value::Bool(true)) {
        return Err(vec![ApiError::with_fields(404, "ENTITY_IS_DELETED", "entity is deleted", &[])]);
    }
    if matches!(existing.get("IsConverted"), Value::Bool(true)) {
        return Err(vec![ApiError::new(400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")]);
    }
    let values = parse_fields(object, body, false, &data)?;
    let mut record = existing.clone();
    for (field, value) in values {
        record.fields.insert(field.name, value);
    }
    record.fields.insert("LastModifiedById", Value::Text(user_id.to_owned()));
    finish(org, &mut record, &data, org.now())?;
    data.records.insert(id.to_owned(), record);
    Ok(())
}

/// Deletes a record: into the recycle bin and the delete log, visible to
/// `queryAll` with `IsDeleted` until purged ([`crate::recycle_bin`]).
pub fn delete(org: &Org, object: &'static ObjectSchema, id: &str) -> Result<(), ApiError> {
    let mut data = write(&org.data);
    match data.records.get(id).filter(|r| r.object.name == object.name) {
        Some(r) if matches!(r.get("IsDeleted"), Value::Bool(true)) => {
            Err(ApiError::with_fields(404, "ENTITY_IS_DELETED", "entity is deleted", &[]))
        }
        Some(_) => {
            crate::recycle_bin::delete(&mut data, id, org.now());
            Ok(())
        }
        None => Err(ApiError::not_found()),
    }
}

/// Converts a Lead: creates its Account and Contact and marks it converted,
/// as Salesforce's Lead conversion does. Returns `(contact id, account id)`.
pub fn convert_lead(sim: &Sim, org: &Org, lead_id: &str) -> Result<(String, String), ApiError> {
    let mut data = write(&org.data);
    let lead =
        data.records.get(lead_id).filter(|r| r.object.name == "Lead").cloned().ok_or_else(ApiError::not_found)?;
    if matches!(lead.get("IsConverted"), Value::Bool(true)) {
        return Err(ApiError::new(400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead"));
    }
    let owner = lead.get("OwnerId").as_text().unwrap_or_default().to_owned();
    let text = |name: &str| lead.get(name).to_json();
    let account_body: Map<String, Json> =
        [("Name".to_owned(), text("Company")), ("Phone".to_owned(), text("Phone"))].into_iter().collect();
    let mode = WriteMode { seeding: false, skip_duplicate_rules: true };
    let schema_of = |n: &str| schema::object(n).ok_or_else(|| ApiError::new(500, "UNKNOWN_EXCEPTION", n.to_owned()));
    let account_id = create_in(sim, org, &mut data, schema_of("Account")?, &account_body, &owner, "v61.0", mode)
        .map_err(|mut e| e.remove(0))?;
    let contact_body: Map<String, Json> = [
        ("FirstName".to_owned(), text("FirstName")),
        ("LastName".to_owned(), text("LastName")),
        ("Email".to_owned(), text("Email")),
        ("Phone".to_owned(), text("Phone")),
        ("AccountId".to_owned(), Json::String(account_id.clone())),
    ]
    .into_iter()
    .collect();
    let contact_id = create_in(sim, org, &mut data, schema_of("Contact")?, &contact_body, &owner, "v61.0", mode)
        .map_err(|mut e| e.remove(0))?;
    let now = org.now();
    if let Some(lead) = data.records.get_mut(lead_id) {
        lead.fields.insert("IsConverted", Value::Bool(true));
        lead.fields.insert("Status", Value::Text("Closed - Converted".to_owned()));
        lead.fields.insert("ConvertedDate", Value::Date(now.date()));
        lead.fields.insert("ConvertedContactId", Value::Text(contact_id.clone()));
        lead.fields.insert("ConvertedAccountId", Value::Text(account_id.clone()));
        lead.fields.insert("SystemModstamp", Value::DateTime(now));
        lead.fields.insert("LastModifiedDate", Value::DateTime(now));
    }
    Ok((contact_id, account_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_locale() {
        fn check(locale: Locale, first: Option<&str>, last: Option<&str>, expected: &str) {
            assert_eq!(compose_name(locale, first, last), expected);
        }
        check(Locale::JaJp, Some("花子"), Some("佐藤"), "佐藤 花子");
        check(Locale::EnUs, Some("Hanako"), Some("Sato"), "Hanako Sato");
        check(Locale::JaJp, None, Some("佐藤"), "佐藤");
        check(Locale::JaJp, Some(""), Some("佐藤"), "佐藤");
    }

    #[test]
    fn labels_read_like_salesforce_labels() {
        let lead = schema::object("Lead").expect("Lead");
        assert_eq!(label(lead.field("LastName").expect("field")), "Last Name");
        assert_eq!(label(lead.field("OwnerId").expect("field")), "Owner ID");
    }
}
