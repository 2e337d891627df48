//! The JSON Schemas of the message bodies, embedded so they travel with the crate.
//!
//! These files are copies of the contract's `schemas/` (the contract directory is not on CI
//! machines); a test compares them with the contract wherever it is present.

/// Type names of all messages, which are also their schemas' names without `.json`.
pub const MESSAGE_TYPES: [&str; 8] = [
    "assist.completed.v1",
    "customer.upsert.v1",
    "customer.removed.v1",
    "customer.linked.v1",
    "activity.written.v1",
    "activity.failed.v1",
    "import.requested.v1",
    "import.completed.v1",
];

/// The shared definitions every message schema refers to as `_defs.json#/$defs/...`.
pub const DEFS: &str = include_str!("../schemas/_defs.json");

/// `(type name, schema text)` for every message, in the order of [`MESSAGE_TYPES`].
pub const SCHEMAS: [(&str, &str); 8] = [
    ("assist.completed.v1", include_str!("../schemas/assist.completed.v1.json")),
    ("customer.upsert.v1", include_str!("../schemas/customer.upsert.v1.json")),
    ("customer.removed.v1", include_str!("../schemas/customer.removed.v1.json")),
    ("customer.linked.v1", include_str!("../schemas/customer.linked.v1.json")),
    ("activity.written.v1", include_str!("../schemas/activity.written.v1.json")),
    ("activity.failed.v1", include_str!("../schemas/activity.failed.v1.json")),
    ("import.requested.v1", include_str!("../schemas/import.requested.v1.json")),
    ("import.completed.v1", include_str!("../schemas/import.completed.v1.json")),
];

/// The schema text for a message type (e.g. `"customer.upsert.v1"`), or for `"_defs"`.
///
/// The file name works too (`"customer.upsert.v1.json"`, `"_defs.json"`). `None` for anything
/// else.
pub fn schema(type_name: &str) -> Option<&'static str> {
    let name = type_name.strip_suffix(".json").unwrap_or(type_name);
    if name == "_defs" {
        return Some(DEFS);
    }
    SCHEMAS.iter().find(|(known, _)| *known == name).map(|(_, text)| *text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_type_has_its_schema() {
        for type_name in MESSAGE_TYPES {
            let text = schema(type_name).unwrap_or_else(|| panic!("no schema for {type_name}"));
            let parsed: serde_json::Value = serde_json::from_str(text).expect("schema is JSON");
            assert_eq!(parsed["$id"], format!("{type_name}.json"));
            assert_eq!(schema(&format!("{type_name}.json")), Some(text));
        }
    }

    #[test]
    fn defs_are_available_under_both_names() {
        assert_eq!(schema("_defs"), Some(DEFS));
        assert_eq!(schema("_defs.json"), Some(DEFS));
    }

    #[test]
    fn unknown_names_have_no_schema() {
        assert_eq!(schema("customer.upsert.v2"), None);
        assert_eq!(schema(""), None);
        assert_eq!(schema(".json"), None);
    }
}
