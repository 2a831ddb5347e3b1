//! Ids, timestamps, numbers and names in the forms the CRM stores and sends them.

use chrono::{DateTime, Datelike, Utc};
use rust_decimal::Decimal;
use serde_json::{Number, Value};

use crate::metadata::{id, FieldDef, ObjectDef};

/// Formats a timestamp as the CRM does: `2024-05-08T21:20:00.000+0000`.
pub fn format_datetime(t: DateTime<Utc>) -> String {
    use chrono::Timelike;
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.timestamp_subsec_millis().min(999)
    )
}

/// Runs `f` with the ASCII-lowercased `name`, without allocating for short names.
pub(super) fn with_lowercase<R>(name: &str, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 64];
    if name.len() <= buf.len() {
        let bytes = &mut buf[..name.len()];
        bytes.copy_from_slice(name.as_bytes());
        bytes.make_ascii_lowercase();
        if let Ok(lower) = std::str::from_utf8(bytes) {
            return f(lower);
        }
    }
    f(&name.to_ascii_lowercase())
}

/// The field named `name` (any case) of `def`.
pub(super) fn field_of<'a>(def: &'a ObjectDef, name: &str) -> Option<&'a FieldDef> {
    with_lowercase(name, |key| def.fields.get(key))
}

/// Parses a datetime in the forms clients send: RFC 3339 (`Z`, `+00:00`) or the CRM's own
/// `+0000` form, with or without fractional seconds.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    None
}

/// Normalises a 15- or 18-character Id to its 18-character form. An 18-character Id is
/// case-insensitive: its checksum restores the case of the first 15 characters.
pub fn normalize_id(raw: &str) -> Option<String> {
    match raw.len() {
        15 => id::to18(raw).ok(),
        18 => id::case_restored(raw),
        _ => None,
    }
}

pub(super) fn decode_sequence(id18: &str) -> Option<u64> {
    const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let body = id18.get(6..15)?;
    let mut n: u64 = 0;
    for c in body.bytes() {
        let d = BASE62.iter().position(|&b| b == c)? as u64;
        n = n.checked_mul(62)?.checked_add(d)?;
    }
    Some(n)
}

/// A decimal as a JSON number in its shortest form (null if it cannot be one).
pub(crate) fn number(d: Decimal) -> Value {
    let text = d.normalize().to_string();
    match text.parse::<Number>() {
        Ok(n) => Value::Number(n),
        Err(_) => Value::Null,
    }
}

pub(super) fn decimal_of(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => {
            let s = n.to_string();
            s.parse::<Decimal>()
                .ok()
                .or_else(|| Decimal::from_scientific(&s).ok())
        }
        Value::String(s) => {
            let s = s.trim();
            s.parse::<Decimal>()
                .ok()
                .or_else(|| Decimal::from_scientific(s).ok())
        }
        _ => None,
    }
}

pub(super) fn text_of(v: &Value) -> Option<&str> {
    v.as_str()
}

pub(super) fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) fn digits_before_point(d: Decimal) -> u32 {
    let whole = d.trunc().abs();
    if whole.is_zero() {
        0
    } else {
        whole.to_string().len() as u32
    }
}
