//! The sObjects sfsim knows, with the fields a connector touches, described
//! as Salesforce describes them (docs/salesforce-facts.md §5 and §6): types, lengths,
//! required fields, restricted picklists, what may be created, updated or
//! filtered, and the relationship names of lookups. Fields §5 does not describe (`Title`,
//! `Department`, `Website`, `BillingCity`, the User fields other than §6's) follow Salesforce's
//! object reference, not the facts page; lengths count UTF-16 units (docs/behaviour.md §4,
//! "Lengths").

use std::sync::LazyLock;

/// A field's type, as far as behaviour depends on it.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldType {
    /// The record's own 18-character id.
    Id,
    /// A lookup to one of `targets` (e.g. `WhoId` to Lead or Contact).
    Reference { targets: &'static [&'static str] },
    /// Text of at most `length` characters (UTF-16 code units, as Salesforce counts: docs/behaviour.md §4).
    Text { length: usize },
    /// Long text; `filterable` is false for Task `Description`.
    TextArea { length: usize },
    /// A phone number, stored as entered, at most 40 characters.
    Phone,
    /// An e-mail address, at most 80 characters.
    Email,
    /// A picklist; a restricted one refuses values not listed.
    Picklist { values: &'static [&'static str], restricted: bool },
    /// true or false, never null.
    Boolean,
    /// An integer.
    Int,
    /// A number with a fraction.
    Double,
    /// `YYYY-MM-DD`.
    Date,
    /// A UTC instant, written `2026-11-20T01:02:03.000+0000`.
    DateTime,
}

/// One field of an sObject.
#[derive(Debug, Clone)]
pub struct Field {
    /// The API name, e.g. `LastName`.
    pub name: &'static str,
    /// Its type.
    pub ty: FieldType,
    /// Must be given on create (and may not be blanked on update).
    pub required: bool,
    /// May be set on create.
    pub createable: bool,
    /// May be changed on update.
    pub updateable: bool,
    /// May appear in WHERE and ORDER BY.
    pub filterable: bool,
    /// For a lookup: the name used in SOQL paths (`Account` for `AccountId`).
    pub relationship: Option<&'static str>,
    /// Set on create when not given.
    pub default: Option<&'static str>,
}

impl Field {
    const fn new(name: &'static str, ty: FieldType) -> Self {
        Self {
            name,
            ty,
            required: false,
            createable: true,
            updateable: true,
            filterable: true,
            relationship: None,
            default: None,
        }
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn read_only(mut self) -> Self {
        self.createable = false;
        self.updateable = false;
        self
    }
    const fn create_only(mut self) -> Self {
        self.updateable = false;
        self
    }
    const fn unfilterable(mut self) -> Self {
        self.filterable = false;
        self
    }
    const fn relationship(mut self, name: &'static str) -> Self {
        self.relationship = Some(name);
        self
    }
    const fn default(mut self, value: &'static str) -> Self {
        self.default = Some(value);
        self
    }
}

/// An sObject type.
#[derive(Debug)]
pub struct ObjectSchema {
    /// The API name, e.g. `Lead`.
    pub name: &'static str,
    /// The first three characters of its ids, e.g. `00Q`.
    pub key_prefix: &'static str,
    /// Its fields.
    pub fields: Vec<Field>,
}

impl ObjectSchema {
    /// A field by name, case-insensitive as SOQL is.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// A lookup by its relationship name (`Account`, `Who`, `Owner`),
    /// case-insensitive.
    pub fn relationship(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.relationship.is_some_and(|r| r.eq_ignore_ascii_case(name)))
    }
}

const USER: &[&str] = &["User"];
const LEAD_STATUS: &[&str] =
    &["Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted"];
const TASK_STATUS: &[&str] = &["Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred"];
const PRIORITY: &[&str] = &["High", "Normal", "Low"];
const SUBTYPE: &[&str] = &["Task", "Email", "List Email", "Cadence", "Call", "LinkedIn"];
const CALL_TYPE: &[&str] = &["Inbound", "Internal", "Outbound"];
const SALUTATION: &[&str] = &["Mr.", "Ms.", "Mrs.", "Dr.", "Prof."];
const USER_TYPE: &[&str] = &["Standard", "PowerPartner", "CsnOnly", "Guest", "AutomatedProcess"];

fn system_fields() -> Vec<Field> {
    use FieldType::*;
    vec![
        Field::new("Id", Id).read_only(),
        Field::new("IsDeleted", Boolean).read_only(),
        Field::new("CreatedDate", DateTime).read_only(),
        Field::new("CreatedById", Reference { targets: USER }).read_only().relationship("CreatedBy"),
        Field::new("LastModifiedDate", DateTime).read_only(),
        Field::new("LastModifiedById", Reference { targets: USER }).read_only().relationship("LastModifiedBy"),
        Field::new("SystemModstamp", DateTime).read_only(),
    ]
}

fn person_fields() -> Vec<Field> {
    use FieldType::*;
    vec![
        Field::new("Salutation", Picklist { values: SALUTATION, restricted: false }),
        Field::new("FirstName", Text { length: 40 }),
        Field::new("MiddleName", Text { length: 40 }),
        Field::new("LastName", Text { length: 80 }).required(),
        // 121 is FirstName (40), a blank and LastName (80) only: not docs/salesforce-facts.md §5's
        // documented "up to 203", which also counts MiddleName and Suffix. Read-only, so no write is
        // checked against it.
        Field::new("Name", Text { length: 121 }).read_only(),
        Field::new("Title", Text { length: 128 }),
        Field::new("Email", Email),
        Field::new("Phone", Phone),
        Field::new("MobilePhone", Phone),
        Field::new("Fax", Phone),
        Field::new("OwnerId", Reference { targets: USER }).relationship("Owner"),
    ]
}

/// `MasterRecordId`: on the loser of a merge, the record it was merged into;
/// null on every live record. Read-only, as Salesforce describes it.
fn master_record(object: &'static [&'static str]) -> Field {
    Field::new("MasterRecordId", FieldType::Reference { targets: object }).read_only().relationship("MasterRecord")
}

static OBJECTS: LazyLock<Vec<ObjectSchema>> = LazyLock::new(|| {
    use FieldType::*;
    let with = |mut own: Vec<Field>| {
        let mut fields = system_fields();
        fields.append(&mut own);
        fields
    };
    vec![
        ObjectSchema {
            name: "Lead",
            key_prefix: "00Q",
            fields: with({
                let mut f = person_fields();
                f.extend([
                    master_record(&["Lead"]),
                    Field::new("Company", Text { length: 255 }).required(),
                    Field::new("Status", Picklist { values: LEAD_STATUS, restricted: true })
                        .required()
                        .default("Open - Not Contacted"),
                    Field::new(
                        "LeadSource",
                        Picklist { values: &["Web", "Phone Inquiry", "Partner Referral", "Other"], restricted: false },
                    ),
                    Field::new("IsConverted", Boolean).read_only(),
                    Field::new("ConvertedDate", Date).read_only(),
                    Field::new("ConvertedContactId", Reference { targets: &["Contact"] })
                        .read_only()
                        .relationship("ConvertedContact"),
                    Field::new("ConvertedAccountId", Reference { targets: &["Account"] })
                        .read_only()
                        .relationship("ConvertedAccount"),
                    // Null here: sfsim has no Opportunity, and conversion creates none.
                    Field::new("ConvertedOpportunityId", Reference { targets: &["Opportunity"] }).read_only(),
                ]);
                f
            }),
        },
        ObjectSchema {
            name: "Contact",
            key_prefix: "003",
            fields: with({
                let mut f = person_fields();
                f.extend([
                    master_record(&["Contact"]),
                    Field::new("AccountId", Reference { targets: &["Account"] }).relationship("Account"),
                    Field::new("Department", Text { length: 80 }),
                ]);
                f
            }),
        },
        ObjectSchema {
            name: "Account",
            key_prefix: "001",
            fields: with(vec![
                master_record(&["Account"]),
                Field::new("Name", Text { length: 255 }).required(),
                Field::new("Phone", Phone),
                Field::new("Fax", Phone),
                Field::new("Website", Text { length: 255 }),
                Field::new(
                    "Industry",
                    Picklist {
                        values: &["Manufacturing", "Retail", "Technology", "Finance", "Other"],
                        restricted: false,
                    },
                ),
                Field::new("BillingCity", Text { length: 40 }),
                Field::new("OwnerId", Reference { targets: USER }).relationship("Owner"),
            ]),
        },
        ObjectSchema {
            name: "User",
            key_prefix: "005",
            fields: with(vec![
                Field::new("Username", Text { length: 80 }).required(),
                Field::new("FirstName", Text { length: 40 }),
                Field::new("LastName", Text { length: 80 }).required(),
                Field::new("Name", Text { length: 121 }).read_only(),
                Field::new("Email", Email).required(),
                Field::new("Alias", Text { length: 8 }),
                Field::new("IsActive", Boolean),
                Field::new("UserType", Picklist { values: USER_TYPE, restricted: true }).read_only(),
                Field::new("LanguageLocaleKey", Text { length: 40 }),
                Field::new("LocaleSidKey", Text { length: 40 }),
                Field::new("TimeZoneSidKey", Text { length: 40 }),
            ]),
        },
        ObjectSchema {
            name: "Task",
            key_prefix: "00T",
            fields: with(vec![
                Field::new("Subject", Text { length: 255 }),
                Field::new("Description", TextArea { length: 32000 }).unfilterable(),
                Field::new("ActivityDate", Date),
                Field::new("Status", Picklist { values: TASK_STATUS, restricted: false })
                    .required()
                    .default("Not Started"),
                Field::new("Priority", Picklist { values: PRIORITY, restricted: false }).required().default("Normal"),
                Field::new("TaskSubtype", Picklist { values: SUBTYPE, restricted: true }).create_only(),
                Field::new("Type", Picklist { values: &["Call", "Meeting", "Email", "Other"], restricted: false }),
                Field::new("CallType", Picklist { values: CALL_TYPE, restricted: true }),
                Field::new("CallDurationInSeconds", Int),
                Field::new("CallObject", Text { length: 255 }),
                Field::new("CallDisposition", Text { length: 255 }),
                Field::new("WhoId", Reference { targets: &["Lead", "Contact"] }).relationship("Who"),
                Field::new("WhatId", Reference { targets: &["Account"] }).relationship("What"),
                Field::new("AccountId", Reference { targets: &["Account"] }).read_only().relationship("Account"),
                Field::new("OwnerId", Reference { targets: USER }).relationship("Owner"),
                Field::new("IsClosed", Boolean).read_only(),
                Field::new("IsArchived", Boolean).read_only(),
            ]),
        },
    ]
});

/// An sObject by name, case-insensitive.
pub fn object(name: &str) -> Option<&'static ObjectSchema> {
    OBJECTS.iter().find(|o| o.name.eq_ignore_ascii_case(name))
}

/// The sObject whose ids start with `prefix`.
pub fn object_by_prefix(prefix: &str) -> Option<&'static ObjectSchema> {
    OBJECTS.iter().find(|o| o.key_prefix == prefix)
}

/// Every sObject sfsim knows.
pub fn objects() -> &'static [ObjectSchema] {
    &OBJECTS
}
