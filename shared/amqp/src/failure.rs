//! Why a delivery did not succeed: a code the service chose from its own
//! enum, and the words for whoever reads the dead-letter queue.
//!
//! The code is a value of the caller's type, not text: its wire form (the
//! `code` of `x-fa-error`) is written once, in [`FailureCode::as_str`], and a
//! service that gets its failure back (in `dead_lettered`) reads its own
//! enum out with [`Failure::code_as`] instead of parsing the text.

use std::{any::Any, fmt, sync::Arc};

/// A failure code: one enum per service (or per queue), whose variants are
/// the codes it dead-letters and retries with.
pub trait FailureCode: Any + fmt::Debug + Send + Sync {
    /// The code as written into `x-fa-error` and the logs, e.g.
    /// `"invalid_event"`.
    fn as_str(&self) -> &'static str;
}

/// The codes fa-amqp gives on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The body is not the message the queue carries ([`crate::Incoming::json`]).
    InvalidMessage,
    /// The code handling it panicked; retried, since the panic may pass.
    HandlerPanicked,
    /// A batch handler returned too few or too many outcomes.
    HandlerBug,
    /// Passing failures went on for longer than the queue's retry policy.
    RetriesExhausted,
}

impl FailureCode for Code {
    fn as_str(&self) -> &'static str {
        match self {
            Code::InvalidMessage => "invalid_message",
            Code::HandlerPanicked => "handler_panicked",
            Code::HandlerBug => "handler_bug",
            Code::RetriesExhausted => "retries_exhausted",
        }
    }
}

/// Why a delivery did not succeed, as written into `x-fa-error`.
#[derive(Clone, serde::Serialize)]
pub struct Failure {
    /// A stable machine-readable code, e.g. `invalid_event`.
    #[serde(serialize_with = "wire_code")]
    code: Arc<dyn FailureCode>,
    /// What happened and, where it helps, what to do.
    pub message: String,
    /// The Salesforce error code that refused the data (e.g.
    /// `FIELD_CUSTOM_VALIDATION_EXCEPTION`), when Salesforce is why: the
    /// person reading the dead-letter queue then knows which rule of the
    /// customer's org to look at without parsing `message`. Absent from
    /// `x-fa-error` when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub salesforce_error_code: Option<String>,
}

fn wire_code<S: serde::Serializer>(code: &Arc<dyn FailureCode>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(code.as_str())
}

impl Failure {
    /// A failure with `code` and `message`.
    pub fn new(code: impl FailureCode, message: impl Into<String>) -> Self {
        Self { code: Arc::new(code), message: message.into(), salesforce_error_code: None }
    }

    /// The same failure, naming the Salesforce error code behind it.
    pub fn with_salesforce_error_code(self, code: impl Into<String>) -> Self {
        Self { salesforce_error_code: Some(code.into()), ..self }
    }

    /// The code's wire form, for logs and metrics.
    pub fn code(&self) -> &'static str {
        self.code.as_str()
    }

    /// The code as the caller's own enum `C`, if it is one of `C`'s.
    pub fn code_as<C: FailureCode + Copy>(&self) -> Option<C> {
        let code: &dyn Any = &*self.code;
        code.downcast_ref::<C>().copied()
    }

    /// What a delivery is retried with when the code handling it panicked:
    /// the panic may have been passing, and if it is not, the retries run
    /// out and the message is dead-lettered with it.
    pub(crate) fn handler_panicked() -> Self {
        Self::new(Code::HandlerPanicked, "the handler panicked; see the service's log")
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failure")
            .field("code", &self.code())
            .field("message", &self.message)
            .field("salesforce_error_code", &self.salesforce_error_code)
            .finish()
    }
}

/// Two failures are equal when they read the same in `x-fa-error`.
impl PartialEq for Failure {
    fn eq(&self, other: &Self) -> bool {
        self.code() == other.code()
            && self.message == other.message
            && self.salesforce_error_code == other.salesforce_error_code
    }
}

impl Eq for Failure {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Mine {
        InvalidEvent,
        SalesforceRefused,
    }

    impl FailureCode for Mine {
        fn as_str(&self) -> &'static str {
            match self {
                Mine::InvalidEvent => "invalid_event",
                Mine::SalesforceRefused => "salesforce_refused",
            }
        }
    }

    #[test]
    fn x_fa_error_names_a_salesforce_code_only_when_there_is_one() {
        fn check(failure: Failure, expected: serde_json::Value) {
            assert_eq!(serde_json::to_value(&failure).expect("serialises"), expected);
        }
        check(Failure::new(Mine::InvalidEvent, "no"), serde_json::json!({ "code": "invalid_event", "message": "no" }));
        check(
            Failure::new(Mine::SalesforceRefused, "no").with_salesforce_error_code("INVALID_EMAIL_ADDRESS"),
            serde_json::json!({
                "code": "salesforce_refused",
                "message": "no",
                "salesforce_error_code": "INVALID_EMAIL_ADDRESS",
            }),
        );
    }

    #[test]
    fn a_failure_gives_its_code_back_as_the_type_it_was_made_with() {
        let failure = Failure::new(Mine::SalesforceRefused, "no");
        assert_eq!(failure.code_as::<Mine>(), Some(Mine::SalesforceRefused));
        assert_eq!(failure.code_as::<Code>(), None, "another enum's code is not read as this one's");
        assert_eq!(Failure::handler_panicked().code_as::<Code>(), Some(Code::HandlerPanicked));
        assert_eq!(failure.code(), "salesforce_refused");
    }
}
