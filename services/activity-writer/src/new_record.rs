//! The record created for a caller no Salesforce record matched (docs/behaviour.md §4, case 4).
//!
//! The new record lands among the objects the tenant already imports, so the next import and
//! the next match see it: a Lead when the tenant imports Leads (a stranger on the phone is a
//! prospect), else a Contact, else an Account. Its fields come from what Front Agent knows of
//! the customer and nothing else; this module only shapes them to Salesforce's rules
//! (docs/salesforce-facts.md §5): required fields always have a value (`[not provided]` when nothing is
//! known), lengths are cut at whole characters, and an unknown value is left out rather than
//! sent as `null`, which would blank a default.
//!
//! Values are sent as JSON, never spliced into SOQL, so a name like `' OR Name LIKE '%` is just
//! a name.

use fa_messages::{AssistCustomer, SObject};
use serde_json::{Map, Value};

use crate::text;

/// What a required field gets when the customer gives nothing for it.
pub const NOT_PROVIDED: &str = "[not provided]";

/// `Lead.LastName` / `Contact.LastName`, UTF-16 units.
pub const LAST_NAME_MAX: usize = 80;
/// `Lead.FirstName` / `Contact.FirstName`, UTF-16 units.
pub const FIRST_NAME_MAX: usize = 40;
/// `Lead.Company`, UTF-16 units.
pub const COMPANY_MAX: usize = 255;
/// `Account.Name`, UTF-16 units.
pub const ACCOUNT_NAME_MAX: usize = 255;
/// `Phone` of all three objects, UTF-16 units.
pub const PHONE_MAX: usize = 40;
/// `Lead.Email` / `Contact.Email`, UTF-16 units.
pub const EMAIL_MAX: usize = 80;

/// The object to create for a customer of a tenant importing `imported`, and its fields.
///
/// Fields only: no `attributes`, no Id. Without Leads or Contacts among `imported` (Accounts
/// alone, or nothing at all) the record is an Account.
pub fn new_record(customer: &AssistCustomer, imported: &[SObject]) -> (SObject, Map<String, Value>) {
    let object = if imported.contains(&SObject::Lead) {
        SObject::Lead
    } else if imported.contains(&SObject::Contact) {
        SObject::Contact
    } else {
        SObject::Account
    };

    let name = non_blank(customer.name.as_deref());
    let company = non_blank(customer.company.as_deref());
    let phone = customer.phones.iter().flatten().find_map(|phone| non_blank(Some(phone)));
    let email = non_blank(customer.email.as_deref());

    let mut fields = Map::new();
    match object {
        SObject::Lead | SObject::Contact => {
            let (last, first) = match name.map(split_name) {
                Some((last, first)) => (last, first),
                None => (phone.unwrap_or(NOT_PROVIDED).to_owned(), None),
            };
            insert(&mut fields, "LastName", Some(&last), LAST_NAME_MAX);
            insert(&mut fields, "FirstName", first.as_deref(), FIRST_NAME_MAX);
            if object == SObject::Lead {
                insert(&mut fields, "Company", Some(company.unwrap_or(NOT_PROVIDED)), COMPANY_MAX);
            }
            insert(&mut fields, "Phone", phone, PHONE_MAX);
            // A cut address is a wrong address (or someone else's): one too long is left out.
            if let Some(email) = email.filter(|e| text::utf16_len(e) <= EMAIL_MAX) {
                fields.insert("Email".into(), email.into());
            }
        }
        SObject::Account => {
            let account_name = company.or(name).or(phone).unwrap_or(NOT_PROVIDED);
            insert(&mut fields, "Name", Some(account_name), ACCOUNT_NAME_MAX);
            insert(&mut fields, "Phone", phone, PHONE_MAX);
        }
    }
    (object, fields)
}

/// A name written family name first, as `(LastName, FirstName)`.
///
/// The name is split at its first blank, half-width or full-width (`　`, common in Japanese
/// input): `佐藤 花子` and `佐藤　花子` are both `("佐藤", Some("花子"))`. One word is a last name
/// alone. Surrounding blanks are dropped; a blank name gives `("", None)`, which callers
/// replace.
pub fn split_name(name: &str) -> (String, Option<String>) {
    let name = name.trim();
    match name.split_once(char::is_whitespace) {
        Some((last, first)) => {
            let first = first.trim();
            (last.to_owned(), (!first.is_empty()).then(|| first.to_owned()))
        }
        None => (name.to_owned(), None),
    }
}

/// Sets `field` to `value` cut to `max` units, unless there is no value.
fn insert(fields: &mut Map<String, Value>, field: &str, value: Option<&str>, max: usize) {
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        fields.insert(field.to_owned(), text::cut(value, max, "").into_owned().into());
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

    #[test]
    fn names_split_at_the_first_blank() {
        fn check(name: &str, expected: (&str, Option<&str>)) {
            let (last, first) = split_name(name);
            assert_eq!((last.as_str(), first.as_deref()), expected, "name {name:?}");
        }
        check("佐藤 花子", ("佐藤", Some("花子")));
        check("佐藤　花子", ("佐藤", Some("花子")));
        check(" 　佐藤　花子　 ", ("佐藤", Some("花子")));
        check("佐藤　 花子", ("佐藤", Some("花子")));
        check("佐藤", ("佐藤", None));
        check("佐藤 ", ("佐藤", None));
        check("Tanaka Ichiro Jr", ("Tanaka", Some("Ichiro Jr")));
        check("", ("", None));
        check(" 　", ("", None));
        check("' OR Name LIKE '%", ("'", Some("OR Name LIKE '%")));
    }

    fn customer(name: Option<&str>, company: Option<&str>, email: Option<&str>, phones: &[&str]) -> AssistCustomer {
        AssistCustomer {
            id: "c-55012".to_owned(),
            name: name.map(str::to_owned),
            company: company.map(str::to_owned),
            email: email.map(str::to_owned),
            phones: (!phones.is_empty()).then(|| phones.iter().map(|p| p.to_string()).collect()),
            salesforce: None,
        }
    }

    fn check(customer: &AssistCustomer, imported: &[SObject], expected: (SObject, Value)) {
        let (object, fields) = new_record(customer, imported);
        assert_eq!((object, Value::Object(fields)), expected, "{customer:?} importing {imported:?}");
    }

    const ALL: &[SObject] = &[SObject::Lead, SObject::Contact, SObject::Account];

    #[test]
    fn the_object_is_a_lead_else_a_contact_else_an_account() {
        let known = customer(
            Some("佐藤 花子"),
            Some("株式会社サンプル商事"),
            Some("hanako.sato@sample-shoji.co.jp"),
            &["03-1234-5678", "090-8765-4321"],
        );
        let lead = json!({
            "LastName": "佐藤",
            "FirstName": "花子",
            "Company": "株式会社サンプル商事",
            "Phone": "03-1234-5678",
            "Email": "hanako.sato@sample-shoji.co.jp",
        });
        let contact = json!({
            "LastName": "佐藤",
            "FirstName": "花子",
            "Phone": "03-1234-5678",
            "Email": "hanako.sato@sample-shoji.co.jp",
        });
        let account = json!({ "Name": "株式会社サンプル商事", "Phone": "03-1234-5678" });
        check(&known, ALL, (SObject::Lead, lead.clone()));
        check(&known, &[SObject::Account, SObject::Lead], (SObject::Lead, lead));
        check(&known, &[SObject::Contact, SObject::Account], (SObject::Contact, contact));
        check(&known, &[SObject::Account], (SObject::Account, account.clone()));
        check(&known, &[], (SObject::Account, account));
    }

    #[test]
    fn missing_values_fall_back_or_are_left_out() {
        let unknown_caller = customer(Some(""), None, None, &["090-8765-4321"]);
        check(
            &unknown_caller,
            ALL,
            (
                SObject::Lead,
                json!({ "LastName": "090-8765-4321", "Company": "[not provided]", "Phone": "090-8765-4321" }),
            ),
        );
        check(
            &unknown_caller,
            &[SObject::Contact],
            (SObject::Contact, json!({ "LastName": "090-8765-4321", "Phone": "090-8765-4321" })),
        );
        check(
            &unknown_caller,
            &[SObject::Account],
            (SObject::Account, json!({ "Name": "090-8765-4321", "Phone": "090-8765-4321" })),
        );

        let nothing = customer(None, Some(" "), Some(""), &[" "]);
        check(&nothing, ALL, (SObject::Lead, json!({ "LastName": "[not provided]", "Company": "[not provided]" })));
        check(&nothing, &[SObject::Contact], (SObject::Contact, json!({ "LastName": "[not provided]" })));
        check(&nothing, &[SObject::Account], (SObject::Account, json!({ "Name": "[not provided]" })));

        let person_only = customer(Some("　佐藤　花子　"), None, Some(" hanako@example.jp "), &[" 03-1234-5678 "]);
        check(
            &person_only,
            &[SObject::Account],
            (SObject::Account, json!({ "Name": "佐藤　花子", "Phone": "03-1234-5678" })),
        );
        check(
            &person_only,
            ALL,
            (
                SObject::Lead,
                json!({
                    "LastName": "佐藤",
                    "FirstName": "花子",
                    "Company": "[not provided]",
                    "Phone": "03-1234-5678",
                    "Email": "hanako@example.jp",
                }),
            ),
        );
    }

    #[test]
    fn values_are_cut_to_salesforce_lengths() {
        let long = customer(
            Some(&format!("{} {}", "あ".repeat(81), "い".repeat(41))),
            Some(&"社".repeat(256)),
            Some(&format!("{}@example.jp", "a".repeat(70))),
            &[&format!("03-1234-5678 内線{}", "9".repeat(30))],
        );
        let phone = format!("03-1234-5678 内線{}", "9".repeat(25));
        check(
            &long,
            ALL,
            (
                SObject::Lead,
                json!({
                    "LastName": "あ".repeat(80),
                    "FirstName": "い".repeat(40),
                    "Company": "社".repeat(255),
                    "Phone": phone,
                }),
            ),
        );
        check(&long, &[SObject::Account], (SObject::Account, json!({ "Name": "社".repeat(255), "Phone": phone })));

        let emoji_name =
            customer(Some(&format!("{}😀", "あ".repeat(79))), None, Some(&format!("{}@ex.jp", "a".repeat(74))), &[]);
        check(
            &emoji_name,
            &[SObject::Contact],
            (SObject::Contact, json!({ "LastName": "あ".repeat(79), "Email": format!("{}@ex.jp", "a".repeat(74)) })),
        );
    }

    #[test]
    fn an_injection_shaped_name_is_kept_literally() {
        let sly = customer(Some("' OR Name LIKE '%"), Some("x' OR '1'='1"), None, &[]);
        check(
            &sly,
            ALL,
            (SObject::Lead, json!({ "LastName": "'", "FirstName": "OR Name LIKE '%", "Company": "x' OR '1'='1" })),
        );
        check(&sly, &[SObject::Account], (SObject::Account, json!({ "Name": "x' OR '1'='1" })));
        let no_company = customer(Some("' OR Name LIKE '%"), None, None, &[]);
        check(&no_company, &[SObject::Account], (SObject::Account, json!({ "Name": "' OR Name LIKE '%" })));
    }
}
