//! SOQL: parsing and evaluating the queries a connector sends, answering as
//! Salesforce does (docs/salesforce-facts.md §2, §3, §7).
//!
//! A statement is lexed ([`lexer`]), parsed by recursive descent into a
//! syntax tree ([`parser`]), then resolved against the schema ([`resolve`]):
//! names become `&'static` fields, literals become operands typed for their
//! field, and every refusal Salesforce makes at query time is made here.
//! Evaluation ([`eval`]) then only follows references.
//!
//! Supported: `SELECT <fields | parent paths | COUNT()> FROM <object>
//! [WHERE …] [ORDER BY …] [LIMIT n] [OFFSET n]`, with AND / OR / NOT,
//! comparisons, IN / NOT IN, LIKE, null, booleans, numbers, strings with
//! SOQL's escapes, date and datetime literals, and the relative date
//! literals TODAY, YESTERDAY, TOMORROW, LAST_N_DAYS:n, NEXT_N_DAYS:n,
//! N_DAYS_AGO:n, LAST_90_DAYS, NEXT_90_DAYS, THIS/LAST/NEXT_MONTH and
//! THIS/LAST/NEXT_YEAR. Anything else (subqueries, GROUP BY, aggregates
//! other than `COUNT()`, TYPEOF, aliases, week and fiscal literals) fails
//! with MALFORMED_QUERY.

mod error;
mod eval;
mod lexer;
mod parser;
mod resolve;

#[cfg(test)]
mod tests;

use time::{OffsetDateTime, UtcOffset};

pub use error::SoqlError;

use crate::schema::ObjectSchema;
use crate::value::Record;
use parser::RelativeDate;
use resolve::{Cond, OrderKey, Path, RowNode};

/// When a query runs and for whom: relative date literals (`TODAY`,
/// `LAST_N_DAYS:n`) are days in the querying user's time zone.
#[derive(Debug, Clone, Copy)]
pub struct EvalContext {
    /// The current instant.
    pub now: OffsetDateTime,
    /// The querying user's UTC offset.
    pub user_offset: UtcOffset,
}

/// Finds a record by id anywhere in the org (to follow lookups).
pub trait Lookup {
    /// The record with this id, if it exists.
    fn record(&self, id: &str) -> Option<&Record>;
}

/// A SOQL statement, parsed and resolved against the schema.
#[derive(Debug, Clone)]
pub struct Query {
    object: &'static ObjectSchema,
    count: bool,
    select: Vec<Path>,
    row: RowNode,
    filter: Option<Cond>,
    order: Vec<OrderKey>,
    /// The relative date literals of WHERE, in order; operands refer to
    /// them by index.
    relative: Vec<RelativeDate>,
    limit: Option<usize>,
    offset: usize,
}

/// Parses and resolves a statement; the error is what Salesforce answers.
pub fn parse(soql: &str) -> Result<Query, SoqlError> {
    let ast = parser::parse(soql)?;
    resolve::resolve(soql, ast)
}

/// What Salesforce answers a query on an object the user has no read
/// access to: the same `INVALID_TYPE` as for an object that does not exist.
pub fn not_readable(soql: &str, query: &Query) -> SoqlError {
    let name = query.object.name;
    let lower = soql.to_ascii_lowercase();
    let at = lower
        .match_indices(&name.to_ascii_lowercase())
        .map(|(at, _)| at)
        .find(|&at| lower[..at].trim_end().ends_with("from"))
        .unwrap_or(0);
    resolve::invalid_type(soql, at, &soql[at..at + name.len()])
}

impl Query {
    /// The queried sObject.
    pub fn object(&self) -> &'static ObjectSchema {
        self.object
    }

    /// True for `SELECT COUNT() FROM …`.
    pub fn is_count(&self) -> bool {
        self.count
    }

    /// LIMIT, if given.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// OFFSET, 0 when not given.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The selected fields as the schema spells them, in SELECT order
    /// (`Account.Name` for a parent field); empty for `COUNT()`.
    pub fn selected(&self) -> Vec<String> {
        self.select.iter().map(Path::canonical).collect()
    }

    /// True when the record satisfies WHERE.
    pub fn matches(&self, record: &Record, lookup: &dyn Lookup, ctx: &EvalContext) -> bool {
        match &self.filter {
            None => true,
            Some(cond) => eval::eval(cond, record, lookup, &eval::day_ranges(&self.relative, ctx)),
        }
    }

    /// Sorts by ORDER BY (stable; Salesforce's default null order is NULLS
    /// FIRST for ASC and NULLS LAST for DESC; text compares
    /// case-insensitively, ids by their case-sensitive key, picklists in
    /// the order of their values).
    pub fn sort(&self, records: &mut [&Record], lookup: &dyn Lookup, _ctx: &EvalContext) {
        eval::sort(&self.order, records, lookup);
    }

    /// filter + sort + offset + limit, in that order.
    pub fn run<'a>(
        &self,
        records: impl Iterator<Item = &'a Record>,
        lookup: &dyn Lookup,
        ctx: &EvalContext,
    ) -> Vec<&'a Record> {
        let ranges = eval::day_ranges(&self.relative, ctx);
        let found: Vec<&'a Record> = match &self.filter {
            None => records.collect(),
            Some(cond) => records.filter(|r| eval::eval(cond, r, lookup, &ranges)).collect(),
        };
        let keep = self.limit.map(|l| self.offset.saturating_add(l));
        let mut page = eval::sorted(&self.order, &found, lookup, keep);
        page.drain(..self.offset.min(page.len()));
        page
    }

    /// Writes [`Query::row`] as JSON text into `out`, for answers of many
    /// rows (no intermediate JSON tree).
    pub fn write_row(&self, record: &Record, lookup: &dyn Lookup, api_version: &str, out: &mut Vec<u8>) {
        let prefix = eval::data_prefix(api_version);
        eval::render_into(&self.row, record, record.object.name, lookup, &prefix, out);
    }

    /// The record as a query result row: `attributes`, then the selected
    /// fields in SELECT order with their schema spelling, parents as nested
    /// objects with their own `attributes` (or `null` when the lookup is
    /// empty). `api_version` is `v61.0` or `61.0`.
    pub fn row(&self, record: &Record, lookup: &dyn Lookup, api_version: &str) -> serde_json::Value {
        let prefix = eval::data_prefix(api_version);
        eval::render(&self.row, record, record.object.name, lookup, &prefix).into()
    }
}
