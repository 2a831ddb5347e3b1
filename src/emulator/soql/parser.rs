//! The recursive-descent parser: tokens to a compiled [`Plan`], resolving every field path
//! against the catalog and converting every literal to its field's type.

use std::str::FromStr;

use rust_decimal::Decimal;

use super::error::{
    bare, located, no_such_column, unknown_object, unknown_relationship, wrong_literal,
    INVALID_FIELD, INVALID_QUERY_FILTER_OPERATOR, INVALID_TYPE, MALFORMED_QUERY,
    NUMBER_OUTSIDE_VALID_RANGE,
};
use super::lexer::{tokenize, CmpOp, Tok, Token};
use super::plan::{
    add_to_projection, fold, fold_str, Expr, FieldRef, Lit, OrderItem, ParentRef, Pat, ProjEntry,
    Target,
};
use super::SoqlError;
use crate::metadata::{id, Catalog, FieldType, ObjectDef};

/// The largest OFFSET the CRM accepts.
pub const MAX_OFFSET: usize = 2000;

/// Everything a query needs at evaluation time.
#[derive(Debug)]
pub(crate) struct Plan {
    pub object: String,
    pub count_only: bool,
    pub projection: Vec<ProjEntry>,
    pub filter: Option<Expr>,
    pub order: Vec<OrderItem>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

struct Parser<'q> {
    query: &'q str,
    catalog: &'q Catalog,
    tokens: Vec<Token>,
    pos: usize,
}

pub(crate) fn parse(query: &str, catalog: &Catalog) -> Result<Plan, SoqlError> {
    let tokens = tokenize(query)?;
    let mut p = Parser {
        query,
        catalog,
        tokens,
        pos: 0,
    };
    p.query_()
}

/// A decoded string literal.
enum Decoded {
    Text(String),
    Pattern(Vec<Pat>),
}

impl<'q> Parser<'q> {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn at_kw(&self, kw: &str) -> bool {
        self.peek().is_kw(self.query, kw)
    }

    fn unexpected(&self, t: &Token) -> SoqlError {
        located(
            self.query,
            t.start,
            MALFORMED_QUERY,
            &format!("unexpected token: '{}'", t.text(self.query)),
        )
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), SoqlError> {
        if self.at_kw(kw) {
            self.next();
            Ok(())
        } else {
            Err(self.unexpected(self.peek()))
        }
    }

    fn expect(&mut self, tok: Tok) -> Result<Token, SoqlError> {
        if self.peek().tok == tok {
            Ok(self.next())
        } else {
            Err(self.unexpected(self.peek()))
        }
    }

    fn query_(&mut self) -> Result<Plan, SoqlError> {
        if !self.at_kw("SELECT") {
            // The CRM reports a query that does not start with SELECT without an excerpt.
            let text = self.peek().text(self.query).to_string();
            return Err(bare(MALFORMED_QUERY, format!("unexpected token: {text}")));
        }
        self.next();
        let mut count_only = false;
        let mut fields: Vec<Token> = Vec::new();
        if self.at_kw("COUNT")
            && self.tokens.get(self.pos + 1).map(|t| &t.tok) == Some(&Tok::LParen)
        {
            self.next();
            self.next();
            self.expect(Tok::RParen)?;
            count_only = true;
        } else {
            loop {
                let t = self.next();
                if t.tok != Tok::Word || is_reserved(t.text(self.query)) {
                    return Err(self.unexpected(&t));
                }
                fields.push(t);
                if self.peek().tok == Tok::Comma {
                    self.next();
                } else {
                    break;
                }
            }
        }
        self.expect_kw("FROM")?;
        let obj_tok = self.next();
        if obj_tok.tok != Tok::Word || is_reserved(obj_tok.text(self.query)) {
            return Err(self.unexpected(&obj_tok));
        }
        let obj_name = obj_tok.text(self.query);
        let object = self.catalog.object(obj_name).ok_or_else(|| {
            located(
                self.query,
                obj_tok.start,
                INVALID_TYPE,
                &unknown_object(obj_name),
            )
        })?;

        let mut projection = Vec::new();
        for f in &fields {
            let r = self.resolve(object, f)?;
            add_to_projection(&mut projection, &r);
        }

        let mut filter = None;
        if self.at_kw("WHERE") {
            self.next();
            filter = Some(self.condition(object)?);
        }
        let mut order = Vec::new();
        if self.at_kw("ORDER") {
            self.next();
            self.expect_kw("BY")?;
            loop {
                order.push(self.order_item(object)?);
                if self.peek().tok == Tok::Comma {
                    self.next();
                } else {
                    break;
                }
            }
        }
        let mut limit = None;
        if self.at_kw("LIMIT") {
            self.next();
            limit = Some(self.count()?.0);
        }
        let mut offset = None;
        if self.at_kw("OFFSET") {
            self.next();
            let (n, at) = self.count()?;
            if n > MAX_OFFSET {
                return Err(located(
                    self.query,
                    at,
                    NUMBER_OUTSIDE_VALID_RANGE,
                    &format!("Maximum SOQL offset allowed is {MAX_OFFSET}"),
                ));
            }
            offset = Some(n);
        }
        let end = self.next();
        if end.tok != Tok::Eof {
            return Err(self.unexpected(&end));
        }
        Ok(Plan {
            object: object.name.clone(),
            count_only,
            projection,
            filter,
            order,
            limit,
            offset,
        })
    }

    /// A non-negative integer (LIMIT, OFFSET) and its position.
    fn count(&mut self) -> Result<(usize, usize), SoqlError> {
        let t = self.next();
        if t.tok == Tok::Num {
            if let Ok(n) = t.text(self.query).parse::<usize>() {
                return Ok((n, t.start));
            }
        }
        Err(self.unexpected(&t))
    }

    fn order_item(&mut self, object: &ObjectDef) -> Result<OrderItem, SoqlError> {
        let t = self.next();
        if t.tok != Tok::Word || is_reserved(t.text(self.query)) {
            return Err(self.unexpected(&t));
        }
        let field = self.resolve(object, &t)?;
        let mut descending = false;
        if self.at_kw("ASC") {
            self.next();
        } else if self.at_kw("DESC") {
            self.next();
            descending = true;
        }
        let mut nulls_first = !descending;
        if self.at_kw("NULLS") {
            self.next();
            if self.at_kw("FIRST") {
                nulls_first = true;
            } else if self.at_kw("LAST") {
                nulls_first = false;
            } else {
                return Err(self.unexpected(self.peek()));
            }
            self.next();
        }
        Ok(OrderItem {
            field,
            descending,
            nulls_first,
        })
    }

    /// `a AND b AND c` or `a OR b OR c`; mixing them needs parentheses, as in SOQL.
    fn condition(&mut self, object: &ObjectDef) -> Result<Expr, SoqlError> {
        let first = self.unary(object)?;
        let joiner = if self.at_kw("AND") {
            "AND"
        } else if self.at_kw("OR") {
            "OR"
        } else {
            return Ok(first);
        };
        let mut parts = vec![first];
        loop {
            if self.at_kw(joiner) {
                self.next();
                parts.push(self.unary(object)?);
            } else if self.at_kw("AND") || self.at_kw("OR") {
                return Err(self.unexpected(self.peek()));
            } else {
                break;
            }
        }
        Ok(if joiner == "AND" {
            Expr::And(parts)
        } else {
            Expr::Or(parts)
        })
    }

    fn unary(&mut self, object: &ObjectDef) -> Result<Expr, SoqlError> {
        if self.at_kw("NOT") {
            self.next();
            return Ok(Expr::Not(Box::new(self.unary(object)?)));
        }
        if self.peek().tok == Tok::LParen {
            self.next();
            let inner = self.condition(object)?;
            self.expect(Tok::RParen)?;
            return Ok(inner);
        }
        self.simple(object)
    }

    fn simple(&mut self, object: &ObjectDef) -> Result<Expr, SoqlError> {
        let ft = self.next();
        if ft.tok != Tok::Word || is_reserved(ft.text(self.query)) {
            return Err(self.unexpected(&ft));
        }
        let field = self.resolve(object, &ft)?;
        let name = leaf_name(&field);
        let op_tok = self.next();
        match op_tok.tok {
            Tok::Op(op) => {
                let lt = self.next();
                let mut lit = self.literal(&lt, &field, &name)?;
                let mut op = op;
                if lit == Lit::Null && field.field_type() == FieldType::Boolean {
                    // A boolean field is never null: `= null` means `= false`.
                    lit = Lit::Bool(op != CmpOp::Eq);
                    op = CmpOp::Eq;
                }
                Ok(Expr::Cmp { field, op, lit })
            }
            Tok::Word if op_tok.is_kw(self.query, "IN") || op_tok.is_kw(self.query, "NOT") => {
                let negated = op_tok.is_kw(self.query, "NOT");
                if negated {
                    self.expect_kw("IN")?;
                }
                self.expect(Tok::LParen)?;
                let mut lits = Vec::new();
                loop {
                    let lt = self.next();
                    lits.push(self.literal(&lt, &field, &name)?);
                    if self.peek().tok == Tok::Comma {
                        self.next();
                    } else {
                        break;
                    }
                }
                self.expect(Tok::RParen)?;
                Ok(Expr::In {
                    field,
                    lits,
                    negated,
                })
            }
            Tok::Word if op_tok.is_kw(self.query, "LIKE") => {
                let ty = field.field_type();
                if !ty.is_textual() || matches!(ty, FieldType::Id | FieldType::Reference) {
                    return Err(located(
                        self.query,
                        ft.start,
                        INVALID_QUERY_FILTER_OPERATOR,
                        &format!("invalid operator on {} field: LIKE", ty.as_str()),
                    ));
                }
                let lt = self.next();
                match &lt.tok {
                    Tok::Str { raw } => match self.decode(raw, lt.start, true)? {
                        Decoded::Pattern(pattern) => Ok(Expr::Like { field, pattern }),
                        Decoded::Text(_) => Err(self.unexpected(&lt)),
                    },
                    _ => Err(located(
                        self.query,
                        lt.start,
                        INVALID_FIELD,
                        &wrong_literal(&name, "string", true),
                    )),
                }
            }
            _ => Err(self.unexpected(&op_tok)),
        }
    }

    /// Converts a literal token for comparison with `field`.
    fn literal(&self, t: &Token, field: &FieldRef, name: &str) -> Result<Lit, SoqlError> {
        if t.is_kw(self.query, "NULL") {
            return Ok(Lit::Null);
        }
        if !matches!(
            t.tok,
            Tok::Str { .. } | Tok::Num | Tok::Date(_) | Tok::DateTime(_)
        ) && !t.is_kw(self.query, "TRUE")
            && !t.is_kw(self.query, "FALSE")
        {
            return Err(self.unexpected(t));
        }
        let ty = field.field_type();
        let wrong = |type_name: &str, quoted: bool| {
            located(
                self.query,
                t.start,
                INVALID_FIELD,
                &wrong_literal(name, type_name, quoted),
            )
        };
        match ty {
            FieldType::Id | FieldType::Reference => match &t.tok {
                Tok::Str { raw } => {
                    let text = self.text(raw, t.start)?;
                    let id18 = id::to18(&text).map_err(|_| {
                        located(
                            self.query,
                            t.start,
                            INVALID_QUERY_FILTER_OPERATOR,
                            &format!("invalid ID field: {text}"),
                        )
                    })?;
                    Ok(Lit::Id {
                        id15: id18[..15].to_string(),
                        id18,
                    })
                }
                _ => Err(wrong("id", true)),
            },
            FieldType::Boolean => {
                if t.is_kw(self.query, "TRUE") {
                    Ok(Lit::Bool(true))
                } else if t.is_kw(self.query, "FALSE") {
                    Ok(Lit::Bool(false))
                } else {
                    Err(wrong("boolean", false))
                }
            }
            FieldType::Int | FieldType::Double | FieldType::Currency | FieldType::Percent => {
                let type_name = if ty == FieldType::Int {
                    "integer"
                } else {
                    "double"
                };
                match t.tok {
                    Tok::Num => Decimal::from_str(t.text(self.query))
                        .map(Lit::Num)
                        .map_err(|_| self.unexpected(t)),
                    _ => Err(wrong(type_name, false)),
                }
            }
            FieldType::Date => match &t.tok {
                Tok::Date(d) => Ok(Lit::Date(d.clone())),
                _ => Err(wrong("date", false)),
            },
            FieldType::Datetime => match &t.tok {
                Tok::DateTime(d) => Ok(Lit::DateTime(d.clone())),
                _ => Err(wrong("dateTime", false)),
            },
            FieldType::String
            | FieldType::Textarea
            | FieldType::Picklist
            | FieldType::Email
            | FieldType::Phone
            | FieldType::Url => match &t.tok {
                Tok::Str { raw } => Ok(Lit::Text(fold_str(&self.text(raw, t.start)?))),
                _ => Err(wrong("string", true)),
            },
        }
    }

    fn text(&self, raw: &str, at: usize) -> Result<String, SoqlError> {
        match self.decode(raw, at, false)? {
            Decoded::Text(s) => Ok(s),
            Decoded::Pattern(_) => Err(self.unexpected(&Token {
                tok: Tok::Word,
                start: at,
                end: at + raw.len() + 2,
            })),
        }
    }

    /// Decodes a string literal's escapes; `like` also allows `\_`, `\%` and makes a pattern.
    fn decode(&self, raw: &str, at: usize, like: bool) -> Result<Decoded, SoqlError> {
        let mut text = String::with_capacity(raw.len());
        let mut pattern = Vec::new();
        let mut chars = raw.char_indices();
        let illegal = |seq: &str| {
            located(
                self.query,
                at,
                MALFORMED_QUERY,
                &format!(
                    "Invalid string literal '{raw}'. Illegal character sequence '{seq}' in string literal."
                ),
            )
        };
        while let Some((i, c)) = chars.next() {
            let (ch, literal) = if c == '\\' {
                let Some((_, e)) = chars.next() else {
                    return Err(illegal("\\"));
                };
                let ch = match e {
                    'n' | 'N' => '\n',
                    'r' | 'R' => '\r',
                    't' | 'T' => '\t',
                    'b' | 'B' => '\u{8}',
                    'f' | 'F' => '\u{c}',
                    '"' | '\'' | '\\' => e,
                    '_' | '%' if like => e,
                    'u' => {
                        let hex = raw.get(i + 2..i + 6).unwrap_or_default();
                        let code = (hex.len() == 4 && hex.chars().all(|h| h.is_ascii_hexdigit()))
                            .then(|| u32::from_str_radix(hex, 16).ok())
                            .flatten()
                            .and_then(char::from_u32)
                            .ok_or_else(|| illegal(&raw[i..(i + 6).min(raw.len())]))?;
                        for _ in 0..4 {
                            chars.next();
                        }
                        code
                    }
                    _ => return Err(illegal(&format!("\\{e}"))),
                };
                (ch, true)
            } else {
                (c, false)
            };
            if like {
                pattern.push(match ch {
                    '%' if !literal => Pat::Any,
                    '_' if !literal => Pat::One,
                    ch => Pat::Char(fold(ch)),
                });
            } else {
                text.push(ch);
            }
        }
        Ok(if like {
            Decoded::Pattern(pattern)
        } else {
            Decoded::Text(text)
        })
    }

    /// Resolves a (dotted) field path token on `object`.
    fn resolve(&self, object: &ObjectDef, t: &Token) -> Result<FieldRef, SoqlError> {
        resolve_path(self.catalog, object, t.text(self.query))
            .map_err(|(code, why)| located(self.query, t.start, code, &why))
    }
}

type Failure = (&'static str, String);

fn resolve_path(catalog: &Catalog, object: &ObjectDef, path: &str) -> Result<FieldRef, Failure> {
    let Some((head, rest)) = path.split_once('.') else {
        let f = object
            .field(path)
            .ok_or_else(|| (INVALID_FIELD, no_such_column(path, &object.name)))?;
        return Ok(FieldRef::Direct {
            name: f.name.clone(),
            ty: f.field_type,
        });
    };
    let rel = object
        .relationship(head)
        .ok_or_else(|| (INVALID_FIELD, unknown_relationship(head)))?;
    let mut targets = Vec::new();
    let mut first_error = None;
    for name in &rel.reference_to {
        let Some(parent) = catalog.object(name) else {
            continue;
        };
        let next = match resolve_path(catalog, parent, rest) {
            Ok(n) => Some(n),
            Err(e) => {
                first_error.get_or_insert(e);
                None
            }
        };
        targets.push(Target {
            object: parent.name.clone(),
            prefix: parent.key_prefix.clone(),
            next,
        });
    }
    if targets.is_empty() {
        return Err((INVALID_FIELD, unknown_relationship(head)));
    }
    if targets.iter().all(|t| t.next.is_none()) {
        return Err(first_error.unwrap_or_else(|| (INVALID_FIELD, unknown_relationship(head))));
    }
    Ok(FieldRef::Parent(Box::new(ParentRef {
        ref_field: rel.name.clone(),
        relationship: rel
            .relationship_name
            .clone()
            .unwrap_or_else(|| head.to_string()),
        targets,
    })))
}

/// The canonical name of a path's last field, for error messages.
fn leaf_name(field: &FieldRef) -> String {
    match field {
        FieldRef::Direct { name, .. } => name.clone(),
        FieldRef::Parent(p) => p
            .targets
            .iter()
            .find_map(|t| t.next.as_ref())
            .map_or_else(String::new, leaf_name),
    }
}

/// Words that cannot name a field or object.
fn is_reserved(word: &str) -> bool {
    const RESERVED: &[&str] = &[
        "AND", "ASC", "DESC", "FROM", "IN", "LIKE", "LIMIT", "NOT", "NULL", "NULLS", "OFFSET",
        "OR", "ORDER", "SELECT", "WHERE", "TRUE", "FALSE",
    ];
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}
