//! Recursive-descent parser: tokens to a syntax tree that still holds names
//! as written (resolution against the schema is `resolve`'s job).

use time::{Date, OffsetDateTime};

use super::SoqlError;
use super::error::positioned;
use super::lexer::{CmpOp, StrLit, Tok, Token, tokenize};

/// A byte range of the statement (a name as written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn text(self, soql: &str) -> &str {
        &soql[self.start..self.end]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SelectItem {
    Count(Span),
    Path(Span),
}

/// A relative date literal such as `TODAY` or `LAST_N_DAYS:30`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelativeDate {
    Today,
    Yesterday,
    Tomorrow,
    LastNDays(u32),
    NextNDays(u32),
    NDaysAgo(u32),
    ThisMonth,
    LastMonth,
    NextMonth,
    ThisYear,
    LastYear,
    NextYear,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LitKind {
    Null,
    Bool(bool),
    Number { int: Option<i64>, value: f64 },
    Str(StrLit),
    Date(Date),
    DateTime(OffsetDateTime),
    Relative(RelativeDate),
}

/// A literal and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Lit {
    pub kind: LitKind,
    pub at: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Cmp { path: Span, op: CmpOp, value: Lit },
    Like { path: Span, value: Lit },
    In { path: Span, negated: bool, values: Vec<Lit> },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderItem {
    pub path: Span,
    pub desc: bool,
    pub nulls_first: Option<bool>,
}

/// A parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ast {
    pub select: Vec<SelectItem>,
    pub from: Span,
    pub filter: Option<Expr>,
    pub order: Vec<OrderItem>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

/// Words that cannot name a field or an object.
const RESERVED: &[&str] = &[
    "AND", "ASC", "BY", "DESC", "EXCLUDES", "FALSE", "FIRST", "FROM", "GROUP", "HAVING", "IN", "INCLUDES", "LAST",
    "LIKE", "LIMIT", "NOT", "NULL", "NULLS", "OFFSET", "OR", "ORDER", "SELECT", "TRUE", "USING", "WHERE", "WITH",
];

/// Parses a statement.
pub(crate) fn parse(soql: &str) -> Result<Ast, SoqlError> {
    let tokens = tokenize(soql)?;
    let mut p = Parser { soql, tokens, pos: 0 };
    p.statement()
}

struct Parser<'s> {
    soql: &'s str,
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        // tokenize always ends with Eof, and pos never passes it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> &Token {
        &self.tokens[(self.pos + ahead).min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn at_keyword(&self, word: &str) -> bool {
        self.peek().is_keyword(self.soql, word)
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        let yes = self.at_keyword(word);
        if yes {
            self.pos += 1;
        }
        yes
    }

    /// `unexpected token: X`, as Salesforce says it: plain for the very first
    /// token, otherwise in the four-line form pointing at the token.
    fn unexpected(&self) -> SoqlError {
        let t = self.peek();
        let message = format!("unexpected token: {}", t.text(self.soql));
        if self.pos == 0 {
            return SoqlError::plain("MALFORMED_QUERY", message);
        }
        let at = if t.tok == Tok::Eof {
            // At the end, Salesforce points at the last character.
            self.soql.trim_end().char_indices().last().map_or(0, |(i, _)| i)
        } else {
            t.start
        };
        positioned("MALFORMED_QUERY", self.soql, at, &message)
    }

    fn expect_keyword(&mut self, word: &str) -> Result<(), SoqlError> {
        if self.eat_keyword(word) { Ok(()) } else { Err(self.unexpected()) }
    }

    fn expect(&mut self, tok: &Tok) -> Result<(), SoqlError> {
        if &self.peek().tok == tok {
            self.advance();
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// A field path or object name (not a reserved word).
    fn name(&mut self) -> Result<Span, SoqlError> {
        let t = self.peek();
        if t.tok == Tok::Ident && !RESERVED.iter().any(|r| t.text(self.soql).eq_ignore_ascii_case(r)) {
            let span = Span { start: t.start, end: t.end };
            self.advance();
            Ok(span)
        } else {
            Err(self.unexpected())
        }
    }

    /// A non-negative integer that fits Salesforce's 32-bit LIMIT/OFFSET.
    fn count(&mut self) -> Result<usize, SoqlError> {
        match self.peek().tok {
            Tok::Number { int: Some(n), .. } if (0..=i64::from(i32::MAX)).contains(&n) => {
                self.advance();
                Ok(n as usize)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn statement(&mut self) -> Result<Ast, SoqlError> {
        self.expect_keyword("SELECT")?;
        let select = self.select_list()?;
        self.expect_keyword("FROM")?;
        let from = self.name()?;
        let filter = if self.eat_keyword("WHERE") { Some(self.condition()?) } else { None };
        let mut order = Vec::new();
        if self.eat_keyword("ORDER") {
            self.expect_keyword("BY")?;
            loop {
                order.push(self.order_item()?);
                if self.peek().tok != Tok::Comma {
                    break;
                }
                self.advance();
            }
        }
        let limit = if self.eat_keyword("LIMIT") { Some(self.count()?) } else { None };
        let offset = if self.eat_keyword("OFFSET") { Some(self.count()?) } else { None };
        if self.peek().tok != Tok::Eof {
            return Err(self.unexpected());
        }
        Ok(Ast { select, from, filter, order, limit, offset })
    }

    fn select_list(&mut self) -> Result<Vec<SelectItem>, SoqlError> {
        let mut items = Vec::new();
        loop {
            let t = self.peek();
            let is_count = t.is_keyword(self.soql, "COUNT") && self.peek_at(1).tok == Tok::LParen;
            // COUNT() must stand alone.
            let mixes_count =
                (is_count && !items.is_empty()) || items.iter().any(|i| matches!(i, SelectItem::Count(_)));
            if mixes_count {
                return Err(self.unexpected());
            }
            if is_count {
                let span = Span { start: t.start, end: t.end };
                self.advance();
                self.advance();
                self.expect(&Tok::RParen)?;
                items.push(SelectItem::Count(span));
            } else {
                items.push(SelectItem::Path(self.name()?));
            }
            if self.peek().tok != Tok::Comma {
                return Ok(items);
            }
            self.advance();
        }
    }

    fn order_item(&mut self) -> Result<OrderItem, SoqlError> {
        let path = self.name()?;
        let desc = if self.eat_keyword("DESC") {
            true
        } else {
            self.eat_keyword("ASC");
            false
        };
        let nulls_first = if self.eat_keyword("NULLS") {
            if self.eat_keyword("FIRST") {
                Some(true)
            } else if self.eat_keyword("LAST") {
                Some(false)
            } else {
                return Err(self.unexpected());
            }
        } else {
            None
        };
        Ok(OrderItem { path, desc, nulls_first })
    }

    /// `NOT operand`, or operands joined by only AND or only OR: SOQL wants
    /// parentheses to mix them, and NOT right after AND/OR.
    fn condition(&mut self) -> Result<Expr, SoqlError> {
        if self.eat_keyword("NOT") {
            return Ok(Expr::Not(Box::new(self.operand()?)));
        }
        let first = self.operand()?;
        let joiner = if self.at_keyword("AND") {
            "AND"
        } else if self.at_keyword("OR") {
            "OR"
        } else {
            return Ok(first);
        };
        let other = if joiner == "AND" { "OR" } else { "AND" };
        let mut operands = vec![first];
        while self.eat_keyword(joiner) {
            operands.push(self.operand()?);
        }
        if self.at_keyword(other) {
            return Err(self.unexpected());
        }
        Ok(if joiner == "AND" { Expr::And(operands) } else { Expr::Or(operands) })
    }

    fn operand(&mut self) -> Result<Expr, SoqlError> {
        if self.peek().tok == Tok::LParen {
            self.advance();
            let inner = self.condition()?;
            self.expect(&Tok::RParen)?;
            return Ok(inner);
        }
        let path = self.name()?;
        let t = self.peek().clone();
        match t.tok {
            Tok::Op(op) => {
                self.advance();
                Ok(Expr::Cmp { path, op, value: self.literal()? })
            }
            _ if t.is_keyword(self.soql, "LIKE") => {
                self.advance();
                Ok(Expr::Like { path, value: self.literal()? })
            }
            _ if t.is_keyword(self.soql, "IN") => {
                self.advance();
                Ok(Expr::In { path, negated: false, values: self.list()? })
            }
            _ if t.is_keyword(self.soql, "NOT") && self.peek_at(1).is_keyword(self.soql, "IN") => {
                self.advance();
                self.advance();
                Ok(Expr::In { path, negated: true, values: self.list()? })
            }
            _ => Err(self.unexpected()),
        }
    }

    fn list(&mut self) -> Result<Vec<Lit>, SoqlError> {
        self.expect(&Tok::LParen)?;
        let mut values = vec![self.literal()?];
        while self.peek().tok == Tok::Comma {
            self.advance();
            values.push(self.literal()?);
        }
        self.expect(&Tok::RParen)?;
        Ok(values)
    }

    fn literal(&mut self) -> Result<Lit, SoqlError> {
        let t = self.peek().clone();
        let kind = match &t.tok {
            Tok::Str(s) => LitKind::Str(s.clone()),
            Tok::Number { int, value } => LitKind::Number { int: *int, value: *value },
            Tok::Date(d) => LitKind::Date(*d),
            Tok::DateTime(d) => LitKind::DateTime(*d),
            Tok::Ident => {
                let word = t.text(self.soql).to_ascii_uppercase();
                let simple = match word.as_str() {
                    "NULL" => Some(LitKind::Null),
                    "TRUE" => Some(LitKind::Bool(true)),
                    "FALSE" => Some(LitKind::Bool(false)),
                    "TODAY" => Some(LitKind::Relative(RelativeDate::Today)),
                    "YESTERDAY" => Some(LitKind::Relative(RelativeDate::Yesterday)),
                    "TOMORROW" => Some(LitKind::Relative(RelativeDate::Tomorrow)),
                    "LAST_90_DAYS" => Some(LitKind::Relative(RelativeDate::LastNDays(90))),
                    "NEXT_90_DAYS" => Some(LitKind::Relative(RelativeDate::NextNDays(90))),
                    "THIS_MONTH" => Some(LitKind::Relative(RelativeDate::ThisMonth)),
                    "LAST_MONTH" => Some(LitKind::Relative(RelativeDate::LastMonth)),
                    "NEXT_MONTH" => Some(LitKind::Relative(RelativeDate::NextMonth)),
                    "THIS_YEAR" => Some(LitKind::Relative(RelativeDate::ThisYear)),
                    "LAST_YEAR" => Some(LitKind::Relative(RelativeDate::LastYear)),
                    "NEXT_YEAR" => Some(LitKind::Relative(RelativeDate::NextYear)),
                    _ => None,
                };
                if let Some(kind) = simple {
                    kind
                } else {
                    let make: fn(u32) -> RelativeDate = match word.as_str() {
                        "LAST_N_DAYS" => RelativeDate::LastNDays,
                        "NEXT_N_DAYS" => RelativeDate::NextNDays,
                        "N_DAYS_AGO" => RelativeDate::NDaysAgo,
                        _ => return Err(self.unexpected()),
                    };
                    self.advance();
                    self.expect(&Tok::Colon)?;
                    let n = match self.peek().tok {
                        Tok::Number { int: Some(n), .. } => u32::try_from(n).map_err(|_| self.unexpected())?,
                        _ => return Err(self.unexpected()),
                    };
                    self.advance();
                    return Ok(Lit { kind: LitKind::Relative(make(n)), at: t.start });
                }
            }
            _ => return Err(self.unexpected()),
        };
        self.advance();
        Ok(Lit { kind, at: t.start })
    }
}
