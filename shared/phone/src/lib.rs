//! Phone numbers as Front Agent compares them: in E.164 (`+81312345678`).
//!
//! Salesforce stores a phone as whatever someone typed: `03-1234-5678`,
//! `(03)1234-5678`, `+81 3-1234-5678`, full-width `０３－１２３４－５６７８`,
//! sometimes with `内線123` after it. This crate turns such text into one
//! canonical [`E164`] and back into the forms it may have been typed in:
//!
//! - the importer calls [`normalize`] on each phone of a record it publishes
//!   in `customer.upsert`, next to the number as stored (`None` becomes
//!   `null`: the number could not be read);
//! - the activity-writer matches a caller's number against Salesforce records
//!   by comparing [`E164`]s, and, because Salesforce's search index lags,
//!   queries with SOQL equality over [`stored_forms`].
//!
//! Numbers without a country code are read in a default [`Region`], Japan for
//! Front Agent's customers. Parsing and validation are libphonenumber's
//! metadata, through the `phonenumber` crate.

mod e164;
mod forms;
mod japan;
mod normalize;
mod region;
mod valid;

pub use e164::{E164, InvalidE164};
pub use forms::stored_forms;
pub use normalize::normalize;
pub use region::{Region, UnknownRegion};
