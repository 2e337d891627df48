//! sfsim: a local Salesforce that answers as the real one does, for
//! development, demos, tests and benchmarks.
//!
//! Layout:
//! - [`schema`], [`value`], [`ids`]: the sObjects, their values and ids.
//! - [`store`]: orgs, apps, users, records, sessions, allowances, faults.
//! - [`write`]: creates, updates, deletes with Salesforce's validation.
//! - [`recycle_bin`], [`merge`], [`replication`]: what deletes and merges
//!   leave behind, and the replication API's deleted list.
//! - [`soql`], [`search`]: queries and SOSL.
//! - [`oauth`], [`keygen`]: the JWT bearer flow and the admin's key pair.
//! - [`api`], [`composite`]: the REST routes; [`control`]: the `/sfsim/` API.
//! - [`generate`]: realistic Japanese data; [`fixture`]: a ready org.
//! - [`server`]: running it in-process or as the `sfsim` binary.

pub mod api;
pub mod composite;
pub mod control;
pub mod error;
pub mod fixture;
pub mod generate;
pub mod ids;
pub mod keygen;
pub mod merge;
pub mod oauth;
pub mod recycle_bin;
pub mod replication;
pub mod schema;
pub mod search;
pub mod server;
pub mod soql;
pub mod store;
pub mod value;
pub mod write;
