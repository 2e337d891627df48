//! A message made before the run that publishes it is known.
//!
//! Pages are read and mapped ahead of publishing, and a catch-up run goes
//! on with the cursor of the run before it, so the run whose id a
//! `customer.upsert` or `customer.removed` carries is only known when the
//! message is sent. [`Pending`] holds such a message: its `import_run_id`
//! cannot be read until [`Pending::in_run`] gives it the publishing run's
//! id, so no message leaves without one.

use fa_messages::{CustomerRemovedV1, CustomerUpsertV1};

/// A message that names the run that published it.
pub trait InRun {
    /// Names `run_id` as the run that publishes the message.
    fn set_import_run_id(&mut self, run_id: &str);
}

impl InRun for CustomerUpsertV1 {
    fn set_import_run_id(&mut self, run_id: &str) {
        run_id.clone_into(&mut self.import_run_id);
    }
}

impl InRun for CustomerRemovedV1 {
    fn set_import_run_id(&mut self, run_id: &str) {
        run_id.clone_into(&mut self.import_run_id);
    }
}

/// A message waiting for the id of the run that publishes it.
#[derive(Debug)]
pub struct Pending<M>(M);

impl<M: InRun> Pending<M> {
    /// `message`, whose `import_run_id` is left for [`Pending::in_run`].
    pub fn new(message: M) -> Self {
        Self(message)
    }

    /// The message as run `run_id` publishes it.
    pub fn in_run(&mut self, run_id: &str) -> &M {
        self.0.set_import_run_id(run_id);
        &self.0
    }

    /// The message as run `run_id` publishes it, taken.
    pub fn into_run(mut self, run_id: &str) -> M {
        self.0.set_import_run_id(run_id);
        self.0
    }

    /// What was read and mapped, for logs; its run is not named yet.
    pub fn content(&self) -> &M {
        &self.0
    }

    /// What was read and mapped, taken, for what keeps the record itself
    /// (the customer index), never for publishing: its run is not named.
    pub fn into_content(self) -> M {
        self.0
    }
}
