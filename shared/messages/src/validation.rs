//! Checking a message body against its JSON Schema.
//!
//! Meant for tests that want to prove what they publish is what the contract promises, and for
//! consumers that must tell a schema violation (dead-letter at once) from a passing failure.
//!
//! ```
//! let body = serde_json::json!({
//!     "tenant_id": "acme-jp",
//!     "reason": "manual",
//!     "requested_at": "2026-11-25T00:00:00.000Z",
//! });
//! assert_eq!(fa_messages::validation::validate("import.requested.v1", &body), Ok(()));
//!
//! let errors = fa_messages::validation::validate("import.requested.v1", &serde_json::json!({}))
//!     .expect_err("the body is empty");
//! assert!(errors.iter().any(|error| error.contains("tenant_id")));
//! ```

use std::collections::HashMap;
use std::sync::LazyLock;

use jsonschema::{Registry, Resource, Validator};
use serde_json::Value;

use crate::schema::{DEFS, SCHEMAS};

/// The URI `_defs.json` is registered under. Schemas have relative `$id`s (e.g.
/// `customer.upsert.v1.json`), which the validator resolves against `json-schema:///`, so their
/// `_defs.json#/$defs/...` references land here.
const DEFS_URI: &str = "json-schema:///_defs.json";

/// Validators are costly to build, so each is built once; a schema that fails to build keeps its
/// error so every call can report it instead of panicking.
static VALIDATORS: LazyLock<HashMap<&'static str, Result<Validator, String>>> = LazyLock::new(build_all);

fn build_all() -> HashMap<&'static str, Result<Validator, String>> {
    let registry =
        serde_json::from_str::<Value>(DEFS).map_err(|err| format!("_defs.json is not JSON: {err}")).and_then(|defs| {
            Registry::new()
                .add(DEFS_URI, Resource::from_contents(defs))
                .and_then(|builder| builder.prepare())
                .map_err(|err| format!("_defs.json cannot be registered: {err}"))
        });
    SCHEMAS
        .iter()
        .map(|&(type_name, text)| {
            let validator = registry.as_ref().map_err(Clone::clone).and_then(|registry| build_one(registry, text));
            (type_name, validator.map_err(|err| format!("schema {type_name} does not build: {err}")))
        })
        .collect()
}

fn build_one(registry: &Registry<'_>, text: &str) -> Result<Validator, String> {
    let schema: Value = serde_json::from_str(text).map_err(|err| err.to_string())?;
    jsonschema::options()
        .with_registry(registry)
        // `format` is only an annotation in draft 2020-12 by default; the contract means
        // `date-time` as a constraint.
        .should_validate_formats(true)
        // Every reference must resolve from what is embedded; never reach for the network.
        .offline()
        .build(&schema)
        .map_err(|err| err.to_string())
}

/// Checks `body` against the schema of `type_name` (e.g. `"customer.upsert.v1"`).
///
/// # Errors
/// One line per violation, `<JSON pointer>: <what is wrong>`. Values from the body are masked
/// so the lines can be logged without copying customer data. An unknown `type_name` is an error
/// too.
pub fn validate(type_name: &str, body: &Value) -> Result<(), Vec<String>> {
    let Some(validator) = VALIDATORS.get(type_name) else {
        return Err(vec![format!("unknown message type {type_name:?}")]);
    };
    let validator = validator.as_ref().map_err(|err| vec![err.clone()])?;
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|error| {
            let path = error.instance_path().as_str();
            let path = if path.is_empty() { "/" } else { path };
            format!("{path}: {}", error.masked())
        })
        .collect();
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Serialises `message` and validates the result against its type's schema.
///
/// # Errors
/// As [`validate`], or a single line when `message` does not serialise.
pub fn validate_message<M: crate::Message>(message: &M) -> Result<(), Vec<String>> {
    let body = serde_json::to_value(message).map_err(|err| vec![format!("does not serialise: {err}")])?;
    validate(M::TYPE, &body)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::MESSAGE_TYPES;

    #[test]
    fn every_embedded_schema_builds() {
        for type_name in MESSAGE_TYPES {
            assert!(
                matches!(VALIDATORS.get(type_name), Some(Ok(_))),
                "{type_name}: {:?}",
                VALIDATORS.get(type_name).map(|v| v.as_ref().err())
            );
        }
    }

    #[test]
    fn refs_into_defs_are_enforced() {
        let body = json!({
            "tenant_id": "-not a tenant",
            "reason": "manual",
            "requested_at": "2026-11-25T00:00:00Z",
        });
        let errors = validate("import.requested.v1", &body).expect_err("bad tenant_id");
        assert!(errors.iter().any(|line| line.starts_with("/tenant_id:")), "{errors:?}");
    }

    #[test]
    fn date_time_format_is_enforced() {
        let body = json!({ "tenant_id": "acme-jp", "reason": "manual", "requested_at": "yesterday" });
        let errors = validate("import.requested.v1", &body).expect_err("bad timestamp");
        assert!(errors.iter().any(|line| line.starts_with("/requested_at:")), "{errors:?}");
    }

    #[test]
    fn errors_do_not_repeat_the_body() {
        let body =
            json!({ "tenant_id": "secret customer data", "reason": "manual", "requested_at": "2026-11-25T00:00:00Z" });
        let errors = validate("import.requested.v1", &body).expect_err("bad tenant_id");
        assert!(errors.iter().all(|line| !line.contains("secret")), "{errors:?}");
    }

    #[test]
    fn unknown_types_are_an_error() {
        assert!(validate("customer.upsert.v2", &json!({})).is_err());
        assert!(validate("_defs", &json!({})).is_err());
    }
}
