//! `/search`: SOSL as a connector uses it to find people by phone or e-mail
//! (`FIND {0312345678} IN PHONE FIELDS RETURNING Lead(Id, Phone),
//! Contact(Id, Phone, AccountId)`). Phone digits match regardless of how
//! the number was typed; the index lags new records by the org's
//! `search_lag_secs`.

use axum::{
    Extension,
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{
    api::Ctx,
    error::{ApiError, json_response},
    schema::{self, FieldType},
    soql,
    store::{lock, read},
    value::{Record, Value, phone_digits},
};

/// Where a SOSL term is looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    All,
    Name,
    Email,
    Phone,
}

/// One `RETURNING` object with its field list and optional WHERE / LIMIT.
#[derive(Debug)]
struct Returning {
    query: soql::Query,
}

#[derive(Debug)]
struct Sosl {
    term: String,
    scope: Scope,
    returning: Vec<Returning>,
    limit: Option<usize>,
}

fn malformed(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "MALFORMED_SEARCH", message)
}

/// Removes SOSL's escapes from a term: `\-` is `-`.
fn unescape(term: &str) -> String {
    let mut out = String::new();
    let mut chars = term.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn parse(text: &str) -> Result<Sosl, ApiError> {
    let trimmed = text.trim();
    let rest =
        trimmed.get(..4).filter(|k| k.eq_ignore_ascii_case("FIND")).map(|_| trimmed[4..].trim_start()).ok_or_else(
            || malformed(format!("unexpected token: {}", trimmed.split_whitespace().next().unwrap_or("<EOF>"))),
        )?;
    let (term, rest) = if let Some(body) = rest.strip_prefix('{') {
        // The term ends at the first unescaped closing brace.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '}' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let end = end.ok_or_else(|| malformed("unexpected token: <EOF>"))?;
        (unescape(&body[..end]), body[end + 1..].trim_start())
    } else {
        return Err(malformed("unexpected token: the search term must be enclosed in braces"));
    };
    let upper = rest.to_ascii_uppercase();
    let mut scope = Scope::All;
    let mut cursor = rest;
    if upper.starts_with("IN ") {
        let words: Vec<&str> = cursor.splitn(4, char::is_whitespace).collect();
        if words.len() < 3 || !words[2].eq_ignore_ascii_case("FIELDS") {
            return Err(malformed(format!("unexpected token: {}", words.get(2).unwrap_or(&"<EOF>"))));
        }
        scope = match words[1].to_ascii_uppercase().as_str() {
            "ALL" => Scope::All,
            "NAME" => Scope::Name,
            "EMAIL" => Scope::Email,
            "PHONE" => Scope::Phone,
            other => return Err(malformed(format!("unexpected token: {other}"))),
        };
        cursor = words.get(3).copied().unwrap_or("").trim_start();
    }
    let mut returning = Vec::new();
    let mut limit = None;
    if cursor.get(..9).is_some_and(|k| k.eq_ignore_ascii_case("RETURNING")) {
        let mut list = cursor[9..].trim_start();
        loop {
            let name_end = list.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(list.len());
            let name = &list[..name_end];
            if name.is_empty() {
                return Err(malformed("unexpected token: <EOF>"));
            }
            let object = schema::object(name).ok_or_else(|| {
                ApiError::new(400, "INVALID_TYPE", format!("sObject type '{name}' is not supported."))
            })?;
            list = list[name_end..].trim_start();
            let mut inner = "Id".to_owned();
            if let Some(body) = list.strip_prefix('(') {
                let close = body.find(')').ok_or_else(|| malformed("unexpected token: <EOF>"))?;
                inner = body[..close].to_owned();
                list = body[close + 1..].trim_start();
            }
            // `Id, Phone WHERE x LIMIT 5` becomes a SOQL query on the object.
            let upper_inner = inner.to_ascii_uppercase();
            let split = [" WHERE ", " ORDER BY ", " LIMIT "].iter().filter_map(|k| upper_inner.find(k)).min();
            let (fields, tail) = match split {
                Some(i) => (&inner[..i], &inner[i..]),
                None => (inner.as_str(), ""),
            };
            let soql = format!("SELECT {fields} FROM {}{tail}", object.name);
            let query = soql::parse(&soql).map_err(|e| ApiError::new(400, e.code, e.message))?;
            returning.push(Returning { query });
            match list.strip_prefix(',') {
                Some(more) => list = more.trim_start(),
                None => break,
            }
        }
        cursor = list;
    }
    if cursor.get(..5).is_some_and(|k| k.eq_ignore_ascii_case("LIMIT")) {
        limit = cursor[5..].trim().parse().ok();
    }
    if returning.is_empty() {
        for name in ["Account", "Contact", "Lead"] {
            if let Ok(query) = soql::parse(&format!("SELECT Id FROM {name}")) {
                returning.push(Returning { query });
            }
        }
    }
    if term.trim().chars().filter(|c| c.is_alphanumeric()).count() < 2 {
        return Err(ApiError::new(400, "INVALID_SEARCH", "search term must be longer than one character"));
    }
    Ok(Sosl { term, scope, returning, limit })
}

fn matches(record: &Record, sosl: &Sosl, term_digits: &str, term_lower: &str) -> bool {
    record.object.fields.iter().any(|field| {
        let Value::Text(text) = record.get(field.name) else { return false };
        match (&field.ty, sosl.scope) {
            (FieldType::Phone, Scope::Phone | Scope::All) => {
                !term_digits.is_empty() && phone_digits(text) == term_digits
            }
            (FieldType::Email, Scope::Email | Scope::All) => text.to_lowercase() == term_lower,
            (FieldType::Text { .. }, Scope::Name | Scope::All)
                if field.name.ends_with("Name") || field.name == "Company" =>
            {
                text.to_lowercase().contains(term_lower)
            }
            _ => false,
        }
    })
}

/// `GET /search?q=`.
pub async fn search(Extension(ctx): Extension<Ctx>, q: Option<&str>) -> Response {
    let sosl = match q.map(parse) {
        Some(Ok(s)) => s,
        Some(Err(e)) => return e.into_response(),
        None => return malformed("A search string has to be specified").into_response(),
    };
    let lag = time::Duration::seconds(i64::try_from(lock(&ctx.org.faults).search_lag_secs).unwrap_or(0));
    let indexed_before = ctx.org.now() - lag;
    let data = read(&ctx.org.data);
    let eval = ctx.org.eval_context();
    let term_digits = phone_digits(&sosl.term);
    let term_lower = sosl.term.trim().to_lowercase();
    let mut rows = Vec::new();
    for returning in &sosl.returning {
        let candidates = data.of(returning.query.object()).filter(|r| {
            !matches!(r.get("IsDeleted"), Value::Bool(true))
                && !matches!(r.get("IsConverted"), Value::Bool(true))
                && matches!(r.get("CreatedDate"), Value::DateTime(t) if *t <= indexed_before)
                && matches(r, &sosl, &term_digits, &term_lower)
        });
        for record in returning.query.run(candidates, &*data, &eval) {
            rows.push(returning.query.row(record, &*data, &ctx.version));
        }
    }
    if let Some(limit) = sosl.limit {
        rows.truncate(limit);
    }
    json_response(200, &json!({ "searchRecords": rows }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_searches_parse_with_their_returning_lists() {
        let sosl =
            parse("FIND {03\\-1234\\-5678} IN PHONE FIELDS RETURNING Lead(Id, Phone), Contact(Id, Phone, AccountId)")
                .expect("parses");
        assert_eq!(sosl.term, "03-1234-5678");
        assert_eq!(sosl.scope, Scope::Phone);
        assert_eq!(sosl.returning.len(), 2);
        assert_eq!(phone_digits(&sosl.term), "0312345678");
        assert_eq!(phone_digits("０３－１２３４－５６７８"), "0312345678");
    }

    #[test]
    fn malformed_searches_are_refused() {
        for bad in ["SEARCH {x}", "FIND 0312345678", "FIND {03} IN PHONES FIELDS", "FIND {x} RETURNING Foo(Id)"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
