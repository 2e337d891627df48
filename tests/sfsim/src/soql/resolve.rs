//! Binding a syntax tree to the schema: objects, fields and relationship
//! paths become `&'static` references, literals become typed operands, and
//! everything Salesforce refuses for reasons of meaning is refused here.

use std::{collections::HashSet, sync::LazyLock};

use time::{Date, OffsetDateTime};

use super::error::positioned;
use super::lexer::{CmpOp, illegal_escape};
use super::parser::{Ast, Expr, Lit, LitKind, RelativeDate, SelectItem, Span};
use super::{Query, SoqlError};
use crate::schema::{self, Field, FieldType, ObjectSchema};

/// Salesforce follows at most five relationships in a path.
const MAX_HOPS: usize = 5;
/// The largest OFFSET Salesforce accepts.
const MAX_OFFSET: usize = 2000;

/// How a field's values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Text of any kind: case-insensitive.
    Text,
    /// Record ids: the 15-character case-sensitive key.
    Id,
    Bool,
    Int,
    Double,
    Date,
    DateTime,
}

impl Kind {
    pub fn of(ty: &FieldType) -> Self {
        match ty {
            FieldType::Id | FieldType::Reference { .. } => Kind::Id,
            FieldType::Text { .. }
            | FieldType::TextArea { .. }
            | FieldType::Phone
            | FieldType::Email
            | FieldType::Picklist { .. } => Kind::Text,
            FieldType::Boolean => Kind::Bool,
            FieldType::Int => Kind::Int,
            FieldType::Double => Kind::Double,
            FieldType::Date => Kind::Date,
            FieldType::DateTime => Kind::DateTime,
        }
    }

    /// The type as Salesforce names it in filter errors, and whether its
    /// values are quoted.
    fn describe(self) -> (&'static str, bool) {
        match self {
            Kind::Text => ("string", true),
            Kind::Id => ("id", true),
            Kind::Bool => ("boolean", false),
            Kind::Int => ("integer", false),
            Kind::Double => ("double", false),
            Kind::Date => ("date", false),
            Kind::DateTime => ("dateTime", false),
        }
    }
}

/// One relationship followed by a path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hop {
    /// The lookup field (`AccountId`).
    pub reference: &'static Field,
    /// The relationship name as the schema spells it (`Account`).
    pub name: &'static str,
    /// True for a lookup to several objects (`Who`): the parent is then the
    /// `Name` entity.
    pub polymorphic: bool,
}

/// A field, or a path of relationships ending in a field, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Path {
    pub hops: Vec<Hop>,
    pub leaf: &'static Field,
    /// True when the leaf is a field of the `Name` entity (the path's last
    /// hop is polymorphic).
    pub on_name: bool,
}

impl Path {
    pub fn kind(&self) -> Kind {
        Kind::of(&self.leaf.ty)
    }

    /// The path as the schema spells it, e.g. `Account.Name`.
    pub fn canonical(&self) -> String {
        let mut s = String::new();
        for hop in &self.hops {
            s.push_str(hop.name);
            s.push('.');
        }
        s.push_str(self.leaf.name);
        s
    }
}

/// A literal typed for the field it is compared with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Text(String),
    /// The 15-character, case-sensitive form of an id.
    Id(String),
    Date(Date),
    DateTime(OffsetDateTime),
    /// A relative date literal: an index into [`Query::relative`].
    Relative(usize),
}

/// A LIKE pattern, folded for case-insensitive matching.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LikeTok {
    /// `%`: any run of characters.
    Any,
    /// `_`: one character.
    One,
    Char(char),
}

#[derive(Debug, Clone)]
pub(crate) enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Cmp {
        path: Path,
        kind: Kind,
        op: CmpOp,
        rhs: Operand,
    },
    In {
        path: Path,
        kind: Kind,
        negated: bool,
        rhs: Vec<Operand>,
    },
    /// IN / NOT IN on an id field: the 15-character keys in a set.
    InIds {
        path: Path,
        negated: bool,
        keys: HashSet<String>,
        null: bool,
    },
    Like {
        path: Path,
        pattern: Vec<LikeTok>,
    },
}

/// How an ORDER BY key orders non-null values.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SortKind {
    Plain(Kind),
    /// Picklists sort in the order their values are defined.
    Picklist(&'static [&'static str]),
}

#[derive(Debug, Clone)]
pub(crate) struct OrderKey {
    pub path: Path,
    pub sort: SortKind,
    pub desc: bool,
    pub nulls_first: bool,
}

/// The nested shape of a result row.
#[derive(Debug, Clone, Default)]
pub(crate) struct RowNode {
    pub entries: Vec<RowEntry>,
}

#[derive(Debug, Clone)]
pub(crate) enum RowEntry {
    Field { field: &'static Field, on_name: bool },
    Parent { hop: Hop, node: RowNode },
}

/// The entity a polymorphic relationship leads to: the fields Salesforce
/// offers for any of its targets.
static NAME_ENTITY: LazyLock<ObjectSchema> = LazyLock::new(|| {
    let field = |name: &'static str, ty: FieldType| Field {
        name,
        ty,
        required: false,
        createable: false,
        updateable: false,
        filterable: true,
        relationship: None,
        default: None,
    };
    ObjectSchema {
        name: "Name",
        key_prefix: "",
        fields: vec![
            field("Id", FieldType::Id),
            field("Name", FieldType::Text { length: 255 }),
            field("FirstName", FieldType::Text { length: 40 }),
            field("LastName", FieldType::Text { length: 80 }),
            field("Type", FieldType::Text { length: 40 }),
            field("Alias", FieldType::Text { length: 8 }),
            field("Email", FieldType::Email),
            field("Phone", FieldType::Phone),
            field("Title", FieldType::Text { length: 128 }),
            field("IsActive", FieldType::Boolean),
            field("Username", FieldType::Text { length: 80 }),
        ],
    }
});

/// `Name` fields that hold a value only when the related record is a User.
pub(crate) const USER_ONLY_NAME_FIELDS: &[&str] = &["Alias", "Email", "Phone", "Title", "IsActive", "Username"];

/// Resolves a parsed statement against the schema.
pub(crate) fn resolve(soql: &str, ast: Ast) -> Result<Query, SoqlError> {
    if ast.offset.is_some_and(|o| o > MAX_OFFSET) {
        return Err(SoqlError::plain(
            "NUMBER_OUTSIDE_VALID_RANGE",
            format!("Maximum SOQL offset allowed is {MAX_OFFSET}"),
        ));
    }
    let from = ast.from.text(soql);
    let object = schema::object(from).ok_or_else(|| invalid_type(soql, ast.from.start, from))?;
    let r = Resolver { soql, object };

    let mut count = false;
    let mut select: Vec<Path> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for item in &ast.select {
        match item {
            SelectItem::Count(_) => count = true,
            SelectItem::Path(span) => {
                let path = r.path(*span)?;
                let canonical = path.canonical();
                if seen.iter().any(|s| s.eq_ignore_ascii_case(&canonical)) {
                    return Err(SoqlError::plain(
                        "MALFORMED_QUERY",
                        format!("duplicate field selected: {}", span.text(soql)),
                    ));
                }
                seen.push(canonical);
                select.push(path);
            }
        }
    }

    let mut relative = Vec::new();
    let filter = match &ast.filter {
        Some(expr) => Some(r.condition(expr, &mut relative)?),
        None => None,
    };

    let mut order = Vec::new();
    for item in &ast.order {
        let path = r.path(item.path)?;
        if !path.leaf.filterable {
            return Err(positioned(
                "INVALID_FIELD",
                soql,
                item.path.start,
                &format!("field '{}' can not be sorted in a query call", path.leaf.name),
            ));
        }
        let sort = match path.leaf.ty {
            FieldType::Picklist { values, .. } => SortKind::Picklist(values),
            ref ty => SortKind::Plain(Kind::of(ty)),
        };
        // Salesforce puts nulls first by default, which with DESC means last.
        let nulls_first = item.nulls_first.unwrap_or(!item.desc);
        order.push(OrderKey { path, sort, desc: item.desc, nulls_first });
    }

    let mut row = RowNode::default();
    for path in &select {
        insert_row_path(&mut row, &path.hops, RowEntry::Field { field: path.leaf, on_name: path.on_name });
    }

    Ok(Query { object, count, select, row, filter, order, relative, limit: ast.limit, offset: ast.offset.unwrap_or(0) })
}

fn insert_row_path(node: &mut RowNode, hops: &[Hop], leaf: RowEntry) {
    let Some((hop, rest)) = hops.split_first() else {
        node.entries.push(leaf);
        return;
    };
    for entry in &mut node.entries {
        if let RowEntry::Parent { hop: h, node: child } = entry
            && std::ptr::eq(h.reference, hop.reference)
        {
            insert_row_path(child, rest, leaf);
            return;
        }
    }
    let mut child = RowNode::default();
    insert_row_path(&mut child, rest, leaf);
    node.entries.push(RowEntry::Parent { hop: *hop, node: child });
}

struct Resolver<'s> {
    soql: &'s str,
    object: &'static ObjectSchema,
}

impl Resolver<'_> {
    fn invalid_field(&self, at: usize, text: &str) -> SoqlError {
        positioned("INVALID_FIELD", self.soql, at, text)
    }

    /// Resolves `Field`, `Rel.Field`, `Rel.Rel.Field`, … (optionally
    /// prefixed with the queried object's name).
    fn path(&self, span: Span) -> Result<Path, SoqlError> {
        let text = span.text(self.soql);
        let mut segments: Vec<&str> = text.split('.').collect();
        if segments.len() > 1
            && segments[0].eq_ignore_ascii_case(self.object.name)
            && self.object.relationship(segments[0]).is_none()
        {
            segments.remove(0);
        }
        let Some((last, rels)) = segments.split_last() else {
            return Err(self.invalid_field(span.start, &no_such_column(text, self.object.name)));
        };
        let mut entity: &'static ObjectSchema = self.object;
        let mut on_name = false;
        let mut hops = Vec::new();
        for rel in rels {
            let not_understood = || {
                self.invalid_field(
                    span.start,
                    &format!(
                        "Didn't understand relationship '{rel}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names."
                    ),
                )
            };
            let reference = entity.relationship(rel).ok_or_else(not_understood)?;
            let (FieldType::Reference { targets }, Some(name)) = (&reference.ty, reference.relationship) else {
                return Err(not_understood());
            };
            let polymorphic = targets.len() > 1;
            entity = if polymorphic {
                &NAME_ENTITY
            } else {
                targets.first().and_then(|t| schema::object(t)).ok_or_else(not_understood)?
            };
            on_name = polymorphic;
            hops.push(Hop { reference, name, polymorphic });
        }
        if hops.len() > MAX_HOPS {
            return Err(self.invalid_field(
                span.start,
                &format!("SOQL statements cannot query more than {MAX_HOPS} levels of relationships"),
            ));
        }
        let leaf =
            entity.field(last).ok_or_else(|| self.invalid_field(span.start, &no_such_column(last, entity.name)))?;
        Ok(Path { hops, leaf, on_name })
    }

    /// A path used in WHERE: it must be filterable.
    fn filter_path(&self, span: Span) -> Result<Path, SoqlError> {
        let path = self.path(span)?;
        if !path.leaf.filterable {
            return Err(self.invalid_field(
                span.start,
                &format!("field '{}' can not be filtered in a query call", path.leaf.name),
            ));
        }
        Ok(path)
    }

    fn condition(&self, expr: &Expr, relative: &mut Vec<RelativeDate>) -> Result<Cond, SoqlError> {
        Ok(match expr {
            Expr::And(items) => Cond::And(items.iter().map(|e| self.condition(e, relative)).collect::<Result<_, _>>()?),
            Expr::Or(items) => Cond::Or(items.iter().map(|e| self.condition(e, relative)).collect::<Result<_, _>>()?),
            Expr::Not(inner) => Cond::Not(Box::new(self.condition(inner, relative)?)),
            Expr::Cmp { path, op, value } => {
                let path = self.filter_path(*path)?;
                let kind = path.kind();
                let rhs = self.operand(&path, kind, value, relative)?;
                Cond::Cmp { path, kind, op: *op, rhs }
            }
            Expr::In { path, negated, values } => {
                let path = self.filter_path(*path)?;
                let kind = path.kind();
                let rhs: Vec<Operand> =
                    values.iter().map(|v| self.operand(&path, kind, v, relative)).collect::<Result<_, _>>()?;
                if kind == Kind::Id {
                    let null = rhs.contains(&Operand::Null);
                    let keys = rhs
                        .into_iter()
                        .filter_map(|o| match o {
                            Operand::Id(key) => Some(key),
                            _ => None,
                        })
                        .collect();
                    Cond::InIds { path, negated: *negated, keys, null }
                } else {
                    Cond::In { path, kind, negated: *negated, rhs }
                }
            }
            Expr::Like { path, value } => {
                let path = self.filter_path(*path)?;
                let kind = path.kind();
                match (&value.kind, kind) {
                    (LitKind::Str(s), Kind::Text | Kind::Id) => {
                        Cond::Like { path, pattern: like_pattern(&s.value, &s.escaped_wildcards) }
                    }
                    _ => return Err(self.type_error(&path, kind, value.at)),
                }
            }
        })
    }

    fn type_error(&self, path: &Path, kind: Kind, at: usize) -> SoqlError {
        let (ty, quoted) = kind.describe();
        let quotes = if quoted { "should be enclosed in quotes" } else { "should not be enclosed in quotes" };
        self.invalid_field(
            at,
            &format!("value of filter criterion for field '{}' must be of type {ty} and {quotes}", path.leaf.name),
        )
    }

    /// Types a literal for a field of `kind`, as Salesforce does: strictly
    /// (a date is no datetime, a quoted `'true'` is no boolean).
    fn operand(
        &self,
        path: &Path,
        kind: Kind,
        lit: &Lit,
        relative: &mut Vec<RelativeDate>,
    ) -> Result<Operand, SoqlError> {
        let mismatch = || self.type_error(path, kind, lit.at);
        if let LitKind::Str(s) = &lit.kind
            && let Some(&first) = s.escaped_wildcards.first()
        {
            // `\%` and `\_` are escapes of LIKE patterns only.
            let what = s.value.chars().nth(first).unwrap_or('%');
            return Err(illegal_escape(self.soql, lit.at, what));
        }
        Ok(match (&lit.kind, kind) {
            (LitKind::Null, _) => Operand::Null,
            (LitKind::Str(s), Kind::Text) => Operand::Text(s.value.clone()),
            (LitKind::Str(s), Kind::Id) => {
                let v = &s.value;
                if !(v.len() == 15 || v.len() == 18) || !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(positioned(
                        "INVALID_QUERY_FILTER_OPERATOR",
                        self.soql,
                        lit.at,
                        &format!("invalid ID field: {v}"),
                    ));
                }
                Operand::Id(v[..15].to_owned())
            }
            (LitKind::Bool(b), Kind::Bool) => Operand::Bool(*b),
            (LitKind::Number { int: Some(i), .. }, Kind::Int) => Operand::Int(*i),
            (LitKind::Number { value, .. }, Kind::Double) => Operand::Double(*value),
            (LitKind::Date(d), Kind::Date) => Operand::Date(*d),
            (LitKind::DateTime(d), Kind::DateTime) => Operand::DateTime(*d),
            (LitKind::Relative(r), Kind::Date | Kind::DateTime) => {
                relative.push(*r);
                Operand::Relative(relative.len() - 1)
            }
            _ => return Err(mismatch()),
        })
    }
}

fn no_such_column(name: &str, entity: &str) -> String {
    format!(
        "No such column '{name}' on entity '{entity}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
    )
}

/// Compiles a LIKE pattern: `%` and `_` are wildcards unless escaped;
/// everything else matches case-insensitively.
fn like_pattern(value: &str, escaped: &[usize]) -> Vec<LikeTok> {
    let mut out = Vec::new();
    for (i, c) in value.chars().enumerate() {
        let wild = !escaped.contains(&i);
        match c {
            '%' if wild => {
                if out.last() != Some(&LikeTok::Any) {
                    out.push(LikeTok::Any);
                }
            }
            '_' if wild => out.push(LikeTok::One),
            c => out.push(LikeTok::Char(fold1(c))),
        }
    }
    out
}

/// Case-insensitive folding of one character for LIKE: its upper case when
/// that is one character (so `_` still matches exactly one).
pub(crate) fn fold1(c: char) -> char {
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// Salesforce's answer for a `FROM` object that does not exist, or that the
/// querying user may not read (`from` starts at byte `at`).
pub(crate) fn invalid_type(soql: &str, at: usize, from: &str) -> SoqlError {
    positioned(
        "INVALID_TYPE",
        soql,
        at,
        &format!(
            "sObject type '{from}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
        ),
    )
}
