//! What the consumer tests share: the failure codes their handlers give.

/// A handler's codes in these tests: one that can never succeed, one that
/// passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestCode {
    InvalidEvent,
    SalesforceUnavailable,
}

impl fa_amqp::FailureCode for TestCode {
    fn as_str(&self) -> &'static str {
        match self {
            TestCode::InvalidEvent => "invalid_event",
            TestCode::SalesforceUnavailable => "salesforce_unavailable",
        }
    }
}
