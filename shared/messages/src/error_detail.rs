//! The error object messages carry when something did not work (`_defs.json#/$defs/error`).

use serde::{Deserialize, Serialize};

/// What went wrong, for Front Agent and for the people reading its screens.
///
/// `C` is the type of `code`: plain text by default, or an enum where a schema narrows the codes
/// (as `activity.failed` does with [`ActivityFailureCode`](crate::ActivityFailureCode)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail<C = String> {
    /// A stable, machine-readable code; must not be empty.
    pub code: C,
    /// What happened, in words; free text that may quote Salesforce.
    pub message: String,
    /// Salesforce's own error code (e.g. `FIELD_CUSTOM_VALIDATION_EXCEPTION`), when Salesforce
    /// caused the error.
    #[serde(default)]
    pub salesforce_error_code: Option<String>,
}
