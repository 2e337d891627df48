//! Putting values into SOQL text safely (docs/salesforce-facts.md §7, "SOQL string literals").
//!
//! Datetimes go in unquoted, see [`crate::datetime`]; the whole query is
//! URL-encoded by [`Client::query`](crate::Client::query).

/// A SOQL string literal: `value` in single quotes with `'`, `\`, `"` and
/// control characters escaped as SOQL wants (`Bob's` → `'Bob\'s'`).
///
/// Nothing in `value` can end the literal early, so it cannot change the
/// query around it. `_` and `%` are left alone: they are wildcards only in
/// LIKE, where a caller escapes them itself if it means them literally.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_escaped() {
        fn check(value: &str, expected: &str) {
            assert_eq!(quote(value), expected, "{value:?}");
        }
        check("Acme", "'Acme'");
        check("Bob's BBQ", r"'Bob\'s BBQ'");
        check(r"C:\temp", r"'C:\\temp'");
        check(r#"say "hi""#, r#"'say \"hi\"'"#);
        check("two\nlines\r\tend", r"'two\nlines\r\tend'");
        check("\u{8}\u{c}\u{0}", r"'\b\f\u0000'");
        check("' OR Id != '", r"'\' OR Id != \''");
        check(r"\' OR '1'='1", r"'\\\' OR \'1\'=\'1'");
        check("株式会社サンプル_50%", "'株式会社サンプル_50%'");
        check("", "''");
    }
}
