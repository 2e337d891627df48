//! The codes of a failed run's `error` (its `import_runs` row, its
//! `import.completed`), each written once: what a caller matches on is the
//! enum, never the text.

use fa_messages::ErrorDetail;

/// Why a run failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunErrorCode {
    /// Salesforce refused a call for good (`salesforce_error_code` says how).
    SalesforceRejected,
    /// Salesforce kept failing past the run's retries.
    SalesforceUnavailable,
    /// The tenant has no connection.
    NotConnected,
    /// The token-broker could not mint a token (its connection status says why).
    TokenUnavailable,
    /// RabbitMQ stopped confirming part-way.
    BrokerUnavailable,
    /// Stopped (crash, SIGTERM, the lock lost); the next run resumes.
    Interrupted,
    /// The allowance ran out on a page the run had to give up.
    Paused,
}

impl RunErrorCode {
    /// The code on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SalesforceRejected => "salesforce_rejected",
            Self::SalesforceUnavailable => "salesforce_unavailable",
            Self::NotConnected => "not_connected",
            Self::TokenUnavailable => "token_unavailable",
            Self::BrokerUnavailable => "broker_unavailable",
            Self::Interrupted => fa_messages::IMPORT_INTERRUPTED,
            Self::Paused => "paused",
        }
    }

    /// An error with this code, saying `message`.
    pub fn detail(self, message: String) -> ErrorDetail {
        ErrorDetail { code: self.as_str().to_owned(), message, salesforce_error_code: None }
    }
}
