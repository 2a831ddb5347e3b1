//! The compiled form of a query and its evaluation over records: field paths resolved to
//! canonical names (parent hops included), literals converted to the field's type, LIKE
//! patterns pre-folded. Evaluation reads records in place and allocates only in projection.

use std::cmp::Ordering;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::lexer::CmpOp;
use super::{Lookup, Record};
use crate::metadata::FieldType;

/// A resolved field path from the query's object.
#[derive(Debug, Clone)]
pub(crate) enum FieldRef {
    Direct { name: String, ty: FieldType },
    Parent(Box<ParentRef>),
}

/// One hop through a reference field.
#[derive(Debug, Clone)]
pub(crate) struct ParentRef {
    /// Canonical reference field name (`AccountId`).
    pub ref_field: String,
    /// Canonical relationship name (`Account`).
    pub relationship: String,
    /// Possible parent objects; several for polymorphic lookups (`What`, `Who`).
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub object: String,
    pub prefix: String,
    /// The rest of the path on this object; `None` when this object lacks the field.
    pub next: Option<FieldRef>,
}

impl ParentRef {
    /// The parent record and its target, if the lookup is set and resolves.
    fn parent<'a>(
        &'a self,
        record: &'a Record,
        lookup: &'a dyn Lookup,
    ) -> Option<(&'a Target, &'a Record)> {
        let id = record.get(&self.ref_field)?.as_str()?;
        let target = if self.targets.len() == 1 {
            &self.targets[0]
        } else {
            self.targets.iter().find(|t| id.starts_with(&t.prefix))?
        };
        Some((target, lookup.get(&target.object, id)?))
    }
}

impl FieldRef {
    /// The field's value, `None` for null or absent.
    pub fn value<'a>(&'a self, record: &'a Record, lookup: &'a dyn Lookup) -> Option<&'a Value> {
        match self {
            FieldRef::Direct { name, .. } => record.get(name).filter(|v| !v.is_null()),
            FieldRef::Parent(p) => {
                let (target, parent) = p.parent(record, lookup)?;
                target.next.as_ref()?.value(parent, lookup)
            }
        }
    }

    /// The leaf field's type (the first target's that has it, for polymorphic paths).
    pub fn field_type(&self) -> FieldType {
        match self {
            FieldRef::Direct { ty, .. } => *ty,
            FieldRef::Parent(p) => p
                .targets
                .iter()
                .find_map(|t| t.next.as_ref())
                .map_or(FieldType::String, FieldRef::field_type),
        }
    }
}

/// A literal converted for comparison against one field type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Null,
    /// Case-folded text.
    Text(String),
    /// An Id: its case-sensitive 15-character form and its 18-character form.
    Id {
        id15: String,
        id18: String,
    },
    Num(Decimal),
    Bool(bool),
    /// `YYYY-MM-DD`, compared as text.
    Date(String),
    /// `YYYY-MM-DDThh:mm:ss.SSS+0000`, compared as text.
    DateTime(String),
}

/// One element of a LIKE pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Pat {
    /// A case-folded character.
    Char(char),
    /// `_`
    One,
    /// `%`
    Any,
}

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Cmp {
        field: FieldRef,
        op: CmpOp,
        lit: Lit,
    },
    In {
        field: FieldRef,
        lits: Vec<Lit>,
        negated: bool,
    },
    Like {
        field: FieldRef,
        pattern: Vec<Pat>,
    },
}

impl Expr {
    /// See [`super::Query::modstamp_floor`].
    pub fn modstamp_floor(&self) -> Option<&str> {
        match self {
            Expr::Cmp {
                field: FieldRef::Direct { name, .. },
                op: CmpOp::Ge | CmpOp::Gt,
                lit: Lit::DateTime(at),
            } if name == "SystemModstamp" => Some(at.as_str()),
            Expr::And(terms) => terms.iter().filter_map(Expr::modstamp_floor).max(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct OrderItem {
    pub field: FieldRef,
    pub descending: bool,
    pub nulls_first: bool,
}

/// One entry of the projected record.
#[derive(Debug, Clone)]
pub(crate) enum ProjEntry {
    Field(String),
    Parent {
        ref_field: String,
        relationship: String,
        targets: Vec<ProjTarget>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct ProjTarget {
    pub object: String,
    pub prefix: String,
    pub entries: Vec<ProjEntry>,
}

/// Adds a selected field path to a projection tree, merging shared relationships.
pub(crate) fn add_to_projection(entries: &mut Vec<ProjEntry>, field: &FieldRef) {
    match field {
        FieldRef::Direct { name, .. } => {
            if !entries
                .iter()
                .any(|e| matches!(e, ProjEntry::Field(n) if n == name))
            {
                entries.push(ProjEntry::Field(name.clone()));
            }
        }
        FieldRef::Parent(p) => {
            let pos = entries.iter().position(
                |e| matches!(e, ProjEntry::Parent { relationship, .. } if *relationship == p.relationship),
            );
            let pos = pos.unwrap_or_else(|| {
                entries.push(ProjEntry::Parent {
                    ref_field: p.ref_field.clone(),
                    relationship: p.relationship.clone(),
                    targets: p
                        .targets
                        .iter()
                        .map(|t| ProjTarget {
                            object: t.object.clone(),
                            prefix: t.prefix.clone(),
                            entries: Vec::new(),
                        })
                        .collect(),
                });
                entries.len() - 1
            });
            if let ProjEntry::Parent { targets, .. } = &mut entries[pos] {
                for (pt, t) in targets.iter_mut().zip(&p.targets) {
                    if let Some(next) = &t.next {
                        add_to_projection(&mut pt.entries, next);
                    }
                }
            }
        }
    }
}

/// The record as the query returns it.
pub(crate) fn project(
    entries: &[ProjEntry],
    object: &str,
    record: &Record,
    lookup: &dyn Lookup,
    api_version: &str,
) -> Value {
    let mut out = Map::with_capacity(entries.len() + 1);
    let mut attributes = Map::with_capacity(2);
    attributes.insert("type".into(), Value::String(object.to_string()));
    let id = record.get("Id").and_then(Value::as_str).unwrap_or_default();
    attributes.insert(
        "url".into(),
        Value::String(format!(
            "/services/data/v{api_version}/sobjects/{object}/{id}"
        )),
    );
    out.insert("attributes".into(), Value::Object(attributes));
    for entry in entries {
        match entry {
            ProjEntry::Field(name) => {
                out.insert(
                    name.clone(),
                    record.get(name).cloned().unwrap_or(Value::Null),
                );
            }
            ProjEntry::Parent {
                ref_field,
                relationship,
                targets,
            } => {
                let parent = record
                    .get(ref_field)
                    .and_then(Value::as_str)
                    .and_then(|id| {
                        let target = if targets.len() == 1 {
                            &targets[0]
                        } else {
                            targets.iter().find(|t| id.starts_with(&t.prefix))?
                        };
                        Some((target, lookup.get(&target.object, id)?))
                    });
                let value = match parent {
                    Some((t, rec)) => project(&t.entries, &t.object, rec, lookup, api_version),
                    None => Value::Null,
                };
                out.insert(relationship.clone(), value);
            }
        }
    }
    Value::Object(out)
}

/// Case folding of one character, as string comparisons use it.
#[inline]
pub(crate) fn fold(c: char) -> char {
    if c.is_ascii() {
        c.to_ascii_lowercase()
    } else {
        c.to_lowercase().next().unwrap_or(c)
    }
}

pub(crate) fn fold_str(s: &str) -> String {
    s.chars().map(fold).collect()
}

/// Compares `a` case-insensitively with already folded `b`.
fn cmp_folded(a: &str, b_folded: &str) -> Ordering {
    a.chars().map(fold).cmp(b_folded.chars())
}

fn cmp_fold_both(a: &str, b: &str) -> Ordering {
    a.chars().map(fold).cmp(b.chars().map(fold))
}

fn decimal(v: &Value) -> Option<Decimal> {
    let n = match v {
        Value::Number(n) => n,
        _ => return None,
    };
    let s = n.as_str();
    Decimal::from_str(s)
        .ok()
        .or_else(|| Decimal::from_scientific(s).ok())
}

/// How a stored value compares with a literal; `None` when they cannot be compared.
fn cmp_lit(v: &Value, lit: &Lit) -> Option<Ordering> {
    match lit {
        Lit::Null => None,
        Lit::Text(t) => Some(cmp_folded(v.as_str()?, t)),
        Lit::Id { id15, id18 } => {
            let s = v.as_str()?;
            if s.get(..15) == Some(id15.as_str()) {
                Some(Ordering::Equal)
            } else {
                Some(s.cmp(id18.as_str()))
            }
        }
        Lit::Num(d) => Some(decimal(v)?.cmp(d)),
        Lit::Bool(b) => Some(v.as_bool()?.cmp(b)),
        Lit::Date(d) | Lit::DateTime(d) => Some(v.as_str()?.cmp(d.as_str())),
    }
}

fn test_op(op: CmpOp, ord: Ordering) -> bool {
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
    }
}

/// A boolean field's value: Salesforce treats null as false.
fn value_of<'a>(
    field: &'a FieldRef,
    record: &'a Record,
    lookup: &'a dyn Lookup,
) -> Option<&'a Value> {
    static FALSE: Value = Value::Bool(false);
    match field.value(record, lookup) {
        None if field.field_type() == FieldType::Boolean => Some(&FALSE),
        v => v,
    }
}

impl Expr {
    pub fn eval(&self, record: &Record, lookup: &dyn Lookup) -> bool {
        match self {
            Expr::And(xs) => xs.iter().all(|x| x.eval(record, lookup)),
            Expr::Or(xs) => xs.iter().any(|x| x.eval(record, lookup)),
            Expr::Not(x) => !x.eval(record, lookup),
            Expr::Cmp { field, op, lit } => match (value_of(field, record, lookup), lit) {
                (None, Lit::Null) => *op == CmpOp::Eq,
                (Some(_), Lit::Null) => *op == CmpOp::Ne,
                (None, _) => false,
                (Some(v), lit) => cmp_lit(v, lit).is_some_and(|o| test_op(*op, o)),
            },
            Expr::In {
                field,
                lits,
                negated,
            } => {
                let v = value_of(field, record, lookup);
                let found = lits.iter().any(|lit| match (v, lit) {
                    (None, Lit::Null) => true,
                    (Some(v), lit) => cmp_lit(v, lit) == Some(Ordering::Equal),
                    (None, _) => false,
                });
                if *negated {
                    v.is_some() && !found
                } else {
                    found
                }
            }
            Expr::Like { field, pattern } => field
                .value(record, lookup)
                .and_then(Value::as_str)
                .is_some_and(|s| like(s, pattern)),
        }
    }
}

/// Case-insensitive LIKE with `%` and `_`, backtracking only to the last `%`.
pub(crate) fn like(text: &str, pattern: &[Pat]) -> bool {
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        match text[ti..].chars().next() {
            Some(c) => {
                let step = c.len_utf8();
                match pattern.get(pi) {
                    Some(Pat::Any) => {
                        star = Some((pi + 1, ti));
                        pi += 1;
                        continue;
                    }
                    Some(Pat::One) => {
                        ti += step;
                        pi += 1;
                        continue;
                    }
                    Some(Pat::Char(p)) if fold(c) == *p => {
                        ti += step;
                        pi += 1;
                        continue;
                    }
                    _ => {}
                }
                match star {
                    Some((sp, st)) => {
                        let skip = text[st..].chars().next().map_or(1, char::len_utf8);
                        star = Some((sp, st + skip));
                        pi = sp;
                        ti = st + skip;
                    }
                    None => return false,
                }
            }
            None => return pattern[pi..].iter().all(|p| *p == Pat::Any),
        }
    }
}

/// Orders two stored values of a field of type `ty`.
fn cmp_values(a: &Value, b: &Value, ty: FieldType) -> Ordering {
    match (a, b) {
        (Value::String(x), Value::String(y)) => match ty {
            FieldType::Id | FieldType::Reference | FieldType::Date | FieldType::Datetime => {
                x.cmp(y)
            }
            _ => cmp_fold_both(x, y),
        },
        (Value::Number(_), Value::Number(_)) => decimal(a).cmp(&decimal(b)),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

impl OrderItem {
    pub fn compare(&self, a: &Record, b: &Record, lookup: &dyn Lookup) -> Ordering {
        match (self.field.value(a, lookup), self.field.value(b, lookup)) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) if self.nulls_first => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) if self.nulls_first => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => {
                let o = cmp_values(x, y, self.field.field_type());
                if self.descending {
                    o.reverse()
                } else {
                    o
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> Vec<Pat> {
        s.chars()
            .map(|c| match c {
                '%' => Pat::Any,
                '_' => Pat::One,
                c => Pat::Char(fold(c)),
            })
            .collect()
    }

    #[test]
    fn like_wildcards() {
        assert!(like("Acme Corp", &pat("acme%")));
        assert!(like("Acme Corp", &pat("%CORP")));
        assert!(like("Acme Corp", &pat("%me%co%")));
        assert!(like("Acme", &pat("a_me")));
        assert!(!like("Acme", &pat("a_e")));
        assert!(like("", &pat("%")));
        assert!(!like("", &pat("_")));
        assert!(like("aXbXc", &pat("a%b%c")));
        assert!(!like("abcab", &pat("%abc")));
        assert!(like("Ærø", &pat("ær_")));
    }
}
