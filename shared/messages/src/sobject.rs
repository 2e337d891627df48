//! The Salesforce objects the connector imports and writes Tasks on, and references to records.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::SalesforceId;

/// A Salesforce object a Front Agent customer can come from (`_defs.json#/$defs/sobject`).
///
/// Serialised as the object's API name, exactly `"Lead"`, `"Contact"` or `"Account"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SObject {
    /// A prospect; converted Leads are neither imported nor written to.
    Lead,
    /// A person, usually under an Account.
    Contact,
    /// A company.
    Account,
}

impl SObject {
    /// All three, in the order the activity-writer tries them when matching a customer.
    pub const MATCH_ORDER: [SObject; 3] = [SObject::Contact, SObject::Lead, SObject::Account];

    /// The object's API name, as it appears in messages and in SOQL.
    pub fn as_str(self) -> &'static str {
        match self {
            SObject::Lead => "Lead",
            SObject::Contact => "Contact",
            SObject::Account => "Account",
        }
    }
}

impl fmt::Display for SObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was none of `Lead`, `Contact`, `Account` (case matters, as in the schemas).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSObject(pub String);

impl fmt::Display for UnknownSObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown Salesforce object {:?}: expected Lead, Contact or Account", self.0)
    }
}

impl std::error::Error for UnknownSObject {}

impl FromStr for SObject {
    type Err = UnknownSObject;
    fn from_str(text: &str) -> Result<Self, UnknownSObject> {
        match text {
            "Lead" => Ok(SObject::Lead),
            "Contact" => Ok(SObject::Contact),
            "Account" => Ok(SObject::Account),
            other => Err(UnknownSObject(other.chars().take(64).collect())),
        }
    }
}

/// One Salesforce record: which object and which id (`_defs.json#/$defs/salesforce_ref`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SalesforceRef {
    /// The record's object.
    pub object: SObject,
    /// The record's id, 18 characters.
    pub id: SalesforceId,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<SObject>) {
        assert_eq!(input.parse::<SObject>().ok(), expected, "input {input:?}");
        let from_json = serde_json::from_value::<SObject>(serde_json::Value::from(input)).ok();
        assert_eq!(from_json, expected, "input {input:?} as JSON");
        if let Some(object) = expected {
            assert_eq!(serde_json::to_value(object).expect("serialises"), serde_json::Value::from(input));
            assert_eq!(object.to_string(), input);
        }
    }

    #[test]
    fn objects_are_spelled_as_their_api_names() {
        let cases: &[(&str, Option<SObject>)] = &[
            ("Lead", Some(SObject::Lead)),
            ("Contact", Some(SObject::Contact)),
            ("Account", Some(SObject::Account)),
            ("lead", None),
            ("CONTACT", None),
            ("Task", None),
            ("Opportunity", None),
            ("", None),
        ];
        for &(input, expected) in cases {
            check(input, expected);
        }
    }

    #[test]
    fn a_reference_converts_a_15_character_id() {
        let reference: SalesforceRef =
            serde_json::from_str(r#"{"object": "Account", "id": "0015000000Gv7qJ"}"#).expect("valid reference");
        assert_eq!(reference.id.as_str(), "0015000000Gv7qJAAR");
        assert!(serde_json::from_str::<SalesforceRef>(r#"{"object": "Account"}"#).is_err());
    }
}
