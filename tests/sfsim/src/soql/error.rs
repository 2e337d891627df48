//! Query errors, shaped as Salesforce shapes them.

/// A query Salesforce would refuse: `code` is the REST `errorCode`
/// (`MALFORMED_QUERY`, `INVALID_FIELD`, `INVALID_TYPE`,
/// `NUMBER_OUTSIDE_VALID_RANGE`, `INVALID_QUERY_FILTER_OPERATOR`) and
/// `message` the REST `message`, exactly as Salesforce writes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SoqlError {
    /// The `errorCode`.
    pub code: &'static str,
    /// The `message`.
    pub message: String,
}

impl SoqlError {
    /// An error whose message is given as is.
    pub(crate) fn plain(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

/// The line of `soql` holding byte `at`: (1-based row, byte offset where the
/// line starts, the line).
fn line_of(soql: &str, at: usize) -> (usize, usize, &str) {
    let at = at.min(soql.len());
    let line_start = soql[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = soql[line_start..].find('\n').map_or(soql.len(), |i| line_start + i);
    let row = soql[..at].matches('\n').count() + 1;
    (row, line_start, soql[line_start..line_end].trim_end_matches('\r'))
}

/// Salesforce's four-line form: the line of the statement, a caret under the
/// column, `ERROR at Row:r:Column:c`, and the text.
fn four_lines(code: &'static str, line: &str, row: usize, column: usize, text: &str) -> SoqlError {
    let caret = format!("{}^", " ".repeat(column.saturating_sub(1)));
    SoqlError { code, message: format!("\n{line}\n{caret}\nERROR at Row:{row}:Column:{column}\n{text}") }
}

/// An error pointing at byte `at` of the statement (1-based column of the
/// character there).
pub(crate) fn positioned(code: &'static str, soql: &str, at: usize, text: &str) -> SoqlError {
    let (row, line_start, line) = line_of(soql, at);
    let column = soql[line_start..at.min(soql.len())].chars().count() + 1;
    four_lines(code, line, row, column, text)
}

/// An error of Salesforce's lexer at byte `at`: the text is prefixed with
/// `line r:c`, and, as Salesforce does, the column given is the 0-based
/// position of the offending character (so the caret sits just before it).
pub(crate) fn lexer_error(soql: &str, at: usize, text: &str) -> SoqlError {
    let (row, line_start, line) = line_of(soql, at);
    let column = soql[line_start..at.min(soql.len())].chars().count();
    four_lines("MALFORMED_QUERY", line, row, column, &format!("line {row}:{column} {text}"))
}
