//! `importer.commands`: each `import.requested` becomes a run of its tenant
//! (see [`crate::run`]). A request for a tenant that is running elsewhere
//! waits and comes back, so it is never lost; one for a tenant without a
//! connection can never succeed and is dead-lettered.

use std::time::Duration;

use fa_amqp::{Code, Failure, FailureCode, Handler, Incoming, Outcome};
use fa_messages::ImportRequestedV1;

use crate::{
    run::{Importer, Started},
    run_error::RunErrorCode,
};

/// How long a request for a busy tenant waits before it is tried again.
const BUSY_RETRY: Duration = Duration::from_secs(30);

/// Why a request did not start a run now (`x-fa-error`'s code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CommandCode {
    /// A run of the tenant is in progress elsewhere; retried.
    TenantBusy,
    /// The run could not start (database, broker); retried.
    ImportUnavailable,
    /// The tenant has no connection; dead-lettered.
    NotConnected,
}

impl FailureCode for CommandCode {
    fn as_str(&self) -> &'static str {
        match self {
            CommandCode::TenantBusy => "tenant_busy",
            CommandCode::ImportUnavailable => "import_unavailable",
            CommandCode::NotConnected => RunErrorCode::NotConnected.as_str(),
        }
    }
}

/// Consumes `import.requested`.
pub struct Commands {
    /// Runs the imports.
    pub importer: Importer,
}

impl Handler for Commands {
    async fn handle(&self, message: &Incoming) -> Outcome {
        let request: ImportRequestedV1 = match message.json() {
            Ok(r) => r,
            Err(failure) => return Outcome::Reject(failure),
        };
        if let Err(errors) = fa_messages::validation::validate_message(&request) {
            return Outcome::Reject(Failure::new(Code::InvalidMessage, errors.join("; ")));
        }
        match self.importer.request(&request.tenant_id, request.reason).await {
            Ok(Started::Ran) | Ok(Started::Paused) => Outcome::Done,
            Ok(Started::Busy) => Outcome::Retry {
                failure: Failure::new(
                    CommandCode::TenantBusy,
                    "a run of this tenant is in progress; this request follows it",
                ),
                after: Some(BUSY_RETRY),
            },
            Ok(Started::NotConnected) => Outcome::Reject(Failure::new(
                CommandCode::NotConnected,
                format!("tenant {} has no Salesforce connection", request.tenant_id),
            )),
            Err(e) => {
                tracing::error!(tenant_id = %request.tenant_id, error = format!("{e:#}"), "the import could not run");
                Outcome::Retry { failure: Failure::new(CommandCode::ImportUnavailable, format!("{e:#}")), after: None }
            }
        }
    }
}
