//! Salesforce's REST error answers as data, and the one place that decides
//! what a caller does about a failed call ([`Retry`]).
//!
//! A REST error body is a JSON array of `{"message","errorCode","fields"}`,
//! `fields` often absent; sObject Collections items say `statusCode` instead
//! of `errorCode` (docs/salesforce-facts.md §3, §4). A call's error reads into
//! [`ApiError`], one Collections item's into [`ItemError`]; both carry the
//! ids a duplicate rule named (`DUPLICATES_DETECTED` with a
//! `duplicateResult`), and both are judged by the same code→[`Retry`]
//! decision.

use serde::Deserialize;

use crate::limits::ApiUsage;

/// What the caller should do about a failed call. Decided only here, by
/// [`ApiError::retry`], [`ItemError::retry`] and [`Error::retry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Retry {
    /// Try the same call again after a backoff: 5xx, 429,
    /// `SERVER_UNAVAILABLE`, `UNABLE_TO_LOCK_ROW`, `QUERY_TIMEOUT`, and
    /// connections that failed or timed out.
    Transient,
    /// The session expired or was revoked (401 `INVALID_SESSION_ID`): mint a
    /// new token, then retry once.
    RefreshToken,
    /// The org's API allowance is spent (403 `REQUEST_LIMIT_EXCEEDED`): stop
    /// calling for this tenant until the rolling 24 hours free some up.
    PauseTenant,
    /// Retrying cannot help: validation errors, unknown objects or fields,
    /// an API the org or user may not use, a malformed answer.
    Permanent,
}

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident => $text:literal,)*) => {
        /// Salesforce's `errorCode` (or `statusCode` in Collections items).
        ///
        /// The codes the services branch on or count have a variant; any
        /// other code is kept verbatim in [`ErrorCode::Other`].
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* #[doc = concat!("`", $text, "`")] $variant,)*
            /// A code without its own variant, as Salesforce wrote it (empty
            /// when the answer carried no code at all).
            Other(String),
        }

        impl ErrorCode {
            /// The code as Salesforce writes it, e.g. `INVALID_SESSION_ID`.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)*
                    Self::Other(code) => code,
                }
            }

            /// A bounded metric label: the code when it has a variant, else
            /// `other`.
            pub fn label(&self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                    Self::Other(_) => "other",
                }
            }

            /// Reads a code as Salesforce writes it.
            pub fn parse(code: &str) -> Self {
                match code {
                    $($text => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                }
            }
        }
    };
}

error_codes! {
    InvalidSessionId => "INVALID_SESSION_ID",
    RequestLimitExceeded => "REQUEST_LIMIT_EXCEEDED",
    ServerUnavailable => "SERVER_UNAVAILABLE",
    UnableToLockRow => "UNABLE_TO_LOCK_ROW",
    QueryTimeout => "QUERY_TIMEOUT",
    MalformedQuery => "MALFORMED_QUERY",
    InvalidField => "INVALID_FIELD",
    InvalidType => "INVALID_TYPE",
    InvalidQueryLocator => "INVALID_QUERY_LOCATOR",
    NumberOutsideValidRange => "NUMBER_OUTSIDE_VALID_RANGE",
    NotFound => "NOT_FOUND",
    EntityIsDeleted => "ENTITY_IS_DELETED",
    ApiDisabledForOrg => "API_DISABLED_FOR_ORG",
    ApiCurrentlyDisabled => "API_CURRENTLY_DISABLED",
    DuplicatesDetected => "DUPLICATES_DETECTED",
    InactiveOwnerOrUser => "INACTIVE_OWNER_OR_USER",
    RequiredFieldMissing => "REQUIRED_FIELD_MISSING",
    InvalidOrNullForRestrictedPicklist => "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
    MalformedId => "MALFORMED_ID",
    InvalidCrossReferenceKey => "INVALID_CROSS_REFERENCE_KEY",
    FieldCustomValidationException => "FIELD_CUSTOM_VALIDATION_EXCEPTION",
    FieldIntegrityException => "FIELD_INTEGRITY_EXCEPTION",
    InvalidFieldForInsertUpdate => "INVALID_FIELD_FOR_INSERT_UPDATE",
    InsufficientAccessOnCrossReferenceEntity => "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY",
    InsufficientAccessOrReadonly => "INSUFFICIENT_ACCESS_OR_READONLY",
    ProcessingHalted => "PROCESSING_HALTED",
    AllOrNoneOperationRolledBack => "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    ExceededIdLimit => "EXCEEDED_ID_LIMIT",
    InvalidReplicationDate => "INVALID_REPLICATION_DATE",
}

impl From<String> for ErrorCode {
    fn from(code: String) -> Self {
        Self::parse(&code)
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A call Salesforce answered with an error status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("Salesforce answered {status} {code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The first error's code.
    pub code: ErrorCode,
    /// The first error's message (Salesforce's words, for logs and admins).
    pub message: String,
    /// The fields the first error names; often empty.
    pub fields: Vec<String>,
    /// The allowance the answer's `Sforce-Limit-Info` reported.
    pub limit: Option<ApiUsage>,
    /// The existing records a duplicate rule named (`DUPLICATES_DETECTED`
    /// with a `duplicateResult`), in Salesforce's order; empty otherwise.
    pub duplicates: Vec<String>,
}

/// Why one record of an sObject Collections call was not created: the first
/// error of its item (docs/salesforce-facts.md §4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Salesforce refused the record: {code}: {message}")]
pub struct ItemError {
    /// The first error's `statusCode`.
    pub code: ErrorCode,
    /// The first error's message (Salesforce's words; a validation message
    /// may quote a value of the record, e.g. a bad picklist value).
    pub message: String,
    /// The fields the first error names; often empty.
    pub fields: Vec<String>,
    /// The ids Salesforce names as existing duplicates
    /// (`DUPLICATES_DETECTED` with a `duplicateResult`), empty otherwise.
    /// Collections items may leave `duplicateResult` out even when a rule
    /// fired; a single create of the record names them.
    pub duplicates: Vec<String>,
}

impl ItemError {
    /// What to do about this record: its code judged as a 400 would be
    /// (`UNABLE_TO_LOCK_ROW` transient, `REQUEST_LIMIT_EXCEEDED` pause the
    /// tenant, most others permanent). The same decision as
    /// [`ApiError::retry`].
    pub fn retry(&self) -> Retry {
        classify(ITEM_STATUS, &self.code)
    }

    /// Reads an item's `errors` array: the first error is kept (a record's
    /// several errors share one fate). `None` when the array is empty or not
    /// an array of errors.
    pub(crate) fn from_errors(errors: &serde_json::Value) -> Option<Self> {
        let items = Vec::<ErrorItem>::deserialize(errors).ok()?;
        items.into_iter().next().map(Self::from)
    }
}

/// The status an item error is judged as: Salesforce answers a refused
/// single create of the same record with 400.
const ITEM_STATUS: u16 = 400;

/// One element of a REST error array, or of a Collections item's `errors`.
#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    message: String,
    #[serde(rename = "errorCode", alias = "statusCode")]
    code: ErrorCode,
    #[serde(default, deserialize_with = "null_as_empty")]
    fields: Vec<String>,
    /// Read loosely: a shape we do not expect must not cost the error.
    #[serde(rename = "duplicateResult", default)]
    duplicate_result: Option<serde_json::Value>,
}

impl From<ErrorItem> for ItemError {
    fn from(item: ErrorItem) -> Self {
        let duplicates = item.duplicate_result.as_ref().map(duplicate_ids).unwrap_or_default();
        Self { code: item.code, message: item.message, fields: item.fields, duplicates }
    }
}

/// `fields` may be `null` as well as absent.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(deserializer)?.unwrap_or_default())
}

/// The ids of `duplicateResult.matchResults[].matchRecords[].record.Id`, in
/// order, each once. Anything else in the result is ignored.
fn duplicate_ids(result: &serde_json::Value) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let match_results = result.get("matchResults").and_then(serde_json::Value::as_array);
    for match_result in match_results.into_iter().flatten() {
        let records = match_result.get("matchRecords").and_then(serde_json::Value::as_array);
        for record in records.into_iter().flatten() {
            let id = record.get("record").and_then(|r| r.get("Id")).and_then(serde_json::Value::as_str);
            if let Some(id) = id.filter(|id| !id.is_empty())
                && !ids.iter().any(|known| known == id)
            {
                ids.push(id.to_owned());
            }
        }
    }
    ids
}

/// How much of an unreadable error body is kept in [`ApiError::message`].
const MAX_RAW_MESSAGE: usize = 200;

impl ApiError {
    /// Reads an error answer: its status, body and allowance.
    ///
    /// The body is normally an array of errors, of which the first is kept
    /// (a record's several validation errors share one fate). A single
    /// object is read as well. A body that is neither (a proxy's HTML page,
    /// an empty 503) gives [`ErrorCode::Other`] with an empty code and the
    /// start of the body as the message, and is classified by its status.
    pub fn from_body(status: u16, body: &[u8], limit: Option<ApiUsage>) -> Self {
        let first = serde_json::from_slice::<Vec<ErrorItem>>(body)
            .ok()
            .and_then(|items| items.into_iter().next())
            .or_else(|| serde_json::from_slice::<ErrorItem>(body).ok());
        match first.map(ItemError::from) {
            Some(item) => Self {
                status,
                code: item.code,
                message: item.message,
                fields: item.fields,
                limit,
                duplicates: item.duplicates,
            },
            None => {
                let text = String::from_utf8_lossy(body);
                let message = match text.char_indices().nth(MAX_RAW_MESSAGE) {
                    Some((cut, _)) => format!("{}…", &text[..cut]),
                    None => text.into_owned(),
                };
                Self {
                    status,
                    code: ErrorCode::Other(String::new()),
                    message,
                    fields: Vec::new(),
                    limit,
                    duplicates: Vec::new(),
                }
            }
        }
    }

    /// What to do about this error. The code decides first, then the status.
    pub fn retry(&self) -> Retry {
        classify(self.status, &self.code)
    }
}

/// The one code→[`Retry`] decision, for a call's error and a Collections
/// item's alike: the code decides first, then the status.
fn classify(status: u16, code: &ErrorCode) -> Retry {
    match code {
        ErrorCode::RequestLimitExceeded => Retry::PauseTenant,
        ErrorCode::InvalidSessionId => Retry::RefreshToken,
        ErrorCode::ServerUnavailable | ErrorCode::UnableToLockRow | ErrorCode::QueryTimeout => Retry::Transient,
        _ if status == 401 => Retry::RefreshToken,
        _ if status == 429 || status >= 500 => Retry::Transient,
        _ => Retry::Permanent,
    }
}

/// Why a call to Salesforce failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Salesforce answered with an error.
    #[error(transparent)]
    Api(ApiError),
    /// No answer: could not connect, timed out, or the body could not be
    /// read to its end. Transient.
    #[error("no answer from Salesforce: {0}")]
    Transport(String),
    /// A success answer whose body is not what Salesforce sends. Permanent.
    #[error("could not read Salesforce's answer: {0}")]
    Decode(String),
    /// The call was not made: an input could not be put into a request
    /// safely (a malformed record id, a `nextRecordsUrl` that is not a
    /// path). Permanent.
    #[error("refused to call Salesforce: {0}")]
    InvalidInput(String),
}

impl Error {
    /// What to do about this error (see [`Retry`]).
    pub fn retry(&self) -> Retry {
        match self {
            Self::Api(e) => e.retry(),
            Self::Transport(_) => Retry::Transient,
            Self::Decode(_) | Self::InvalidInput(_) => Retry::Permanent,
        }
    }

    /// The Salesforce error, when Salesforce answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(e) => Some(e),
            _ => None,
        }
    }

    /// A bounded metric label for the outcome: the error code (or `other`),
    /// `transport`, `decode` or `invalid_input`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Api(e) => e.code.label(),
            Self::Transport(_) => "transport",
            Self::Decode(_) => "decode",
            Self::InvalidInput(_) => "invalid_input",
        }
    }
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, body: &str, expected: Retry) {
        let error = ApiError::from_body(status, body.as_bytes(), None);
        assert_eq!(error.retry(), expected, "{status} {body}");
        assert_eq!(Error::Api(error).retry(), expected, "{status} {body}");
    }

    #[test]
    fn transient_errors() {
        check(503, r#"[{"message":"Server Unavailable","errorCode":"SERVER_UNAVAILABLE"}]"#, Retry::Transient);
        check(
            400,
            r#"[{"message":"unable to obtain exclusive access to this record or 1 records: 0035cFAKEIDAQBGAA4","errorCode":"UNABLE_TO_LOCK_ROW","fields":[]}]"#,
            Retry::Transient,
        );
        check(
            400,
            r#"[{"message":"Your query request was running for too long.","errorCode":"QUERY_TIMEOUT"}]"#,
            Retry::Transient,
        );
        check(
            500,
            r#"[{"message":"An error has occurred within Lightning Platform","errorCode":"UNKNOWN_EXCEPTION"}]"#,
            Retry::Transient,
        );
        check(502, "<html><body>Bad Gateway</body></html>", Retry::Transient);
        check(503, "", Retry::Transient);
        check(429, "", Retry::Transient);
    }

    #[test]
    fn refresh_token_errors() {
        check(
            401,
            r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#,
            Retry::RefreshToken,
        );
        check(401, "", Retry::RefreshToken);
    }

    #[test]
    fn pause_tenant_errors() {
        check(
            403,
            r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
            Retry::PauseTenant,
        );
        check(
            403,
            r#"[{"message":"ConcurrentPerOrgLongTxn Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
            Retry::PauseTenant,
        );
    }

    #[test]
    fn permanent_errors() {
        check(400, r#"[{"message":"unexpected token: SELEKT","errorCode":"MALFORMED_QUERY"}]"#, Retry::Permanent);
        check(
            400,
            r#"[{"message":"Required fields are missing: [Website__c]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Website__c"]}]"#,
            Retry::Permanent,
        );
        check(
            404,
            r#"[{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}]"#,
            Retry::Permanent,
        );
        check(
            404,
            r#"[{"message":"entity is deleted","errorCode":"ENTITY_IS_DELETED","fields":[]}]"#,
            Retry::Permanent,
        );
        check(
            403,
            r#"[{"message":"The REST API is not enabled for this Organization.","errorCode":"API_DISABLED_FOR_ORG"}]"#,
            Retry::Permanent,
        );
        check(
            403,
            r#"[{"message":"API is disabled for this User","errorCode":"API_CURRENTLY_DISABLED"}]"#,
            Retry::Permanent,
        );
        check(400, r#"[{"message":"invalid query locator","errorCode":"INVALID_QUERY_LOCATOR"}]"#, Retry::Permanent);
        check(400, r#"[{"message":"a rule","errorCode":"FIELD_CUSTOM_VALIDATION_EXCEPTION"}]"#, Retry::Permanent);
        check(400, r#"[{"message":"new","errorCode":"SOME_FUTURE_CODE"}]"#, Retry::Permanent);
        check(404, "Not Found", Retry::Permanent);
    }

    #[test]
    fn bodies_are_read_as_data() {
        fn check(status: u16, body: &str, code: ErrorCode, message: &str, fields: &[&str]) {
            let error = ApiError::from_body(status, body.as_bytes(), None);
            assert_eq!(error.status, status);
            assert_eq!(error.code, code, "{body}");
            assert_eq!(error.message, message, "{body}");
            assert_eq!(error.fields, fields, "{body}");
        }
        check(
            400,
            r#"[{"message":"Rating: bad value for restricted picklist field: Terrible","errorCode":"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST","fields":["Rating__c"]}]"#,
            ErrorCode::InvalidOrNullForRestrictedPicklist,
            "Rating: bad value for restricted picklist field: Terrible",
            &["Rating__c"],
        );
        // The first of several errors is kept.
        check(
            400,
            r#"[{"message":"a","errorCode":"REQUIRED_FIELD_MISSING","fields":["LastName"]},{"message":"b","errorCode":"INVALID_FIELD"}]"#,
            ErrorCode::RequiredFieldMissing,
            "a",
            &["LastName"],
        );
        // A Collections item error says statusCode.
        check(
            200,
            r#"[{"statusCode":"DUPLICATES_DETECTED","message":"Use one of these records?","fields":[]}]"#,
            ErrorCode::DuplicatesDetected,
            "Use one of these records?",
            &[],
        );
        // A duplicateResult that names no record costs nothing.
        check(
            400,
            r#"[{"message":"Use one of these records?","errorCode":"DUPLICATES_DETECTED","duplicateResult":{"allowSave":false}}]"#,
            ErrorCode::DuplicatesDetected,
            "Use one of these records?",
            &[],
        );
        check(400, r#"[{"message":"m","errorCode":"INVALID_FIELD","fields":null}]"#, ErrorCode::InvalidField, "m", &[]);
        check(400, r#"{"message":"one","errorCode":"MALFORMED_ID"}"#, ErrorCode::MalformedId, "one", &[]);
        check(400, r#"[{"message":"x","errorCode":"NEW_CODE"}]"#, ErrorCode::Other("NEW_CODE".into()), "x", &[]);
        check(502, "Bad Gateway", ErrorCode::Other(String::new()), "Bad Gateway", &[]);
        check(400, "[]", ErrorCode::Other(String::new()), "[]", &[]);
    }

    /// A duplicate rule's answer to a single create, as Salesforce sends it
    /// (docs/salesforce-facts.md §3, DUPLICATES_DETECTED), naming `ids`.
    fn duplicate_body(ids: &[&str]) -> String {
        let records: Vec<String> = ids
            .iter()
            .map(|id| {
                format!(
                    r#"{{"additionalInformation":[],"fieldDiffs":[],"matchConfidence":100.0,"record":{{"attributes":{{"type":"Lead","url":"/services/data/v61.0/sobjects/Lead/{id}"}},"Id":"{id}"}}}}"#
                )
            })
            .collect();
        format!(
            r#"[{{"duplicateResult":{{"allowSave":false,"duplicateRule":"Standard_Lead_Duplicate_Rule","duplicateRuleEntityType":"Lead","errorMessage":"Use one of these records?","matchResults":[{{"entityType":"Lead","errorMessage":null,"matchEngine":"FuzzyMatchEngine","matchRecords":[{}],"rule":"Standard_Lead_Match_Rule_v1_0","size":{},"success":true}}]}},"errorCode":"DUPLICATES_DETECTED","fields":[],"message":"Use one of these records?"}}]"#,
            records.join(","),
            ids.len()
        )
    }

    #[test]
    fn a_duplicate_rules_answer_names_the_existing_records() {
        fn check(body: &str, code: ErrorCode, duplicates: &[&str]) {
            let error = ApiError::from_body(400, body.as_bytes(), None);
            assert_eq!(error.code, code, "{body}");
            assert_eq!(error.duplicates, duplicates, "{body}");
            assert_eq!(error.retry(), Retry::Permanent, "{body}");
        }
        check(&duplicate_body(&["00Q5g00000A1b2CEAR"]), ErrorCode::DuplicatesDetected, &["00Q5g00000A1b2CEAR"]);
        check(
            &duplicate_body(&["00Q5g00000A1b2CEAR", "00Q5g00000A1b2DEAR"]),
            ErrorCode::DuplicatesDetected,
            &["00Q5g00000A1b2CEAR", "00Q5g00000A1b2DEAR"],
        );
        check(&duplicate_body(&[]), ErrorCode::DuplicatesDetected, &[]);
        // Two match rules naming one record name it once.
        check(
            r#"[{"errorCode":"DUPLICATES_DETECTED","message":"Use one of these records?","duplicateResult":{"matchResults":[
                {"matchRecords":[{"record":{"Id":"003RM0000068xVCYAY"}}]},
                {"matchRecords":[{"record":{"Id":"003RM0000068xVCYAY"}},{"record":{"Id":"003RM0000068xVDYAY"}}]}]}}]"#,
            ErrorCode::DuplicatesDetected,
            &["003RM0000068xVCYAY", "003RM0000068xVDYAY"],
        );
        // Without a duplicateResult (as Collections items may be), no names.
        check(
            r#"[{"message":"Use one of these records?","errorCode":"DUPLICATES_DETECTED","fields":[]}]"#,
            ErrorCode::DuplicatesDetected,
            &[],
        );
        // Shapes we do not expect lose the names, never the error.
        check(
            r#"[{"errorCode":"DUPLICATES_DETECTED","message":"m","duplicateResult":{"matchResults":null}}]"#,
            ErrorCode::DuplicatesDetected,
            &[],
        );
        check(
            r#"[{"errorCode":"DUPLICATES_DETECTED","message":"m","duplicateResult":{"matchResults":[{"matchRecords":[{"record":null},{"record":{"Id":7}},{"record":{"Id":"00Q5g00000A1b2CEAR"}}]}]}}]"#,
            ErrorCode::DuplicatesDetected,
            &["00Q5g00000A1b2CEAR"],
        );
        check(
            r#"[{"errorCode":"DUPLICATES_DETECTED","message":"m","duplicateResult":"yes"}]"#,
            ErrorCode::DuplicatesDetected,
            &[],
        );
        // Only the first error's duplicates count.
        check(
            &format!(
                r#"[{{"message":"a","errorCode":"REQUIRED_FIELD_MISSING","fields":["Company"]}},{}]"#,
                duplicate_body(&["00Q5g00000A1b2CEAR"]).trim_start_matches('[').trim_end_matches(']')
            ),
            ErrorCode::RequiredFieldMissing,
            &[],
        );
    }

    #[test]
    fn an_item_error_is_judged_as_a_400_with_its_code() {
        fn check(code: &str, expected: Retry) {
            let item = ItemError {
                code: ErrorCode::parse(code),
                message: String::new(),
                fields: Vec::new(),
                duplicates: Vec::new(),
            };
            assert_eq!(item.retry(), expected, "{code}");
            let body = format!(r#"[{{"message":"m","errorCode":"{code}"}}]"#);
            assert_eq!(ApiError::from_body(400, body.as_bytes(), None).retry(), expected, "{code} as a 400");
        }
        check("UNABLE_TO_LOCK_ROW", Retry::Transient);
        check("SERVER_UNAVAILABLE", Retry::Transient);
        check("REQUEST_LIMIT_EXCEEDED", Retry::PauseTenant);
        check("INVALID_SESSION_ID", Retry::RefreshToken);
        check("DUPLICATES_DETECTED", Retry::Permanent);
        check("REQUIRED_FIELD_MISSING", Retry::Permanent);
        check("INACTIVE_OWNER_OR_USER", Retry::Permanent);
        check("ENTITY_IS_DELETED", Retry::Permanent);
        check("FIELD_INTEGRITY_EXCEPTION", Retry::Permanent);
        check("ALL_OR_NONE_OPERATION_ROLLED_BACK", Retry::Permanent);
        check("UNKNOWN_EXCEPTION", Retry::Permanent);
        check("", Retry::Permanent);
    }

    #[test]
    fn codes_round_trip_and_labels_stay_bounded() {
        fn check(text: &str, label: &str) {
            let code = ErrorCode::parse(text);
            assert_eq!(code.as_str(), text);
            assert_eq!(code.label(), label);
        }
        check("INVALID_SESSION_ID", "INVALID_SESSION_ID");
        check("REQUEST_LIMIT_EXCEEDED", "REQUEST_LIMIT_EXCEEDED");
        check("ALL_OR_NONE_OPERATION_ROLLED_BACK", "ALL_OR_NONE_OPERATION_ROLLED_BACK");
        check("SOMETHING_NEW", "other");
        check("", "other");
    }

    #[test]
    fn other_errors_are_classified_by_kind() {
        assert_eq!(Error::Transport("connection refused".into()).retry(), Retry::Transient);
        assert_eq!(Error::Decode("expected value".into()).retry(), Retry::Permanent);
        assert_eq!(Error::InvalidInput("bad id".into()).retry(), Retry::Permanent);
    }

    #[test]
    fn an_unreadable_body_is_cut_short_in_the_message() {
        let body = "x".repeat(10_000);
        let error = ApiError::from_body(502, body.as_bytes(), None);
        assert_eq!(error.message.chars().count(), MAX_RAW_MESSAGE + 1);
    }
}
