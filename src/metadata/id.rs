//! Salesforce record Ids: 15-character case-sensitive base-62 Ids and their 18-character
//! case-insensitive form with a 3-character checksum suffix.

use std::fmt;

const SUFFIX_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a string is not a Salesforce Id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("an Id has 15 or 18 characters, this one has {0}")]
    Length(usize),
    #[error("an Id has only letters and digits, this one has {0:?}")]
    Character(char),
    #[error("the last 3 characters of an 18-character Id are its checksum, expected {expected}")]
    Checksum { expected: String },
}

/// The 3-character checksum of a 15-character Id.
fn checksum(id15: &[u8]) -> [u8; 3] {
    let mut out = [0u8; 3];
    for (i, chunk) in id15.chunks(5).take(3).enumerate() {
        let mut v = 0usize;
        for (j, c) in chunk.iter().enumerate() {
            if c.is_ascii_uppercase() {
                v |= 1 << j;
            }
        }
        out[i] = SUFFIX_ALPHABET[v];
    }
    out
}

/// Returns the 18-character form of a 15- or 18-character Id, checking its characters and,
/// for an 18-character Id, its checksum (compared case-insensitively, as Salesforce does).
pub fn to18(id: &str) -> Result<String, IdError> {
    let bytes = id.as_bytes();
    if let Some(c) = id.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(IdError::Character(c));
    }
    match bytes.len() {
        15 => {
            let sum = checksum(bytes);
            let mut out = id.to_string();
            out.extend(sum.iter().map(|&b| b as char));
            Ok(out)
        }
        18 => {
            let sum = checksum(&bytes[..15]);
            if !bytes[15..].eq_ignore_ascii_case(&sum) {
                return Err(IdError::Checksum {
                    expected: sum.iter().map(|&b| b as char).collect(),
                });
            }
            let mut out = id[..15].to_string();
            out.extend(sum.iter().map(|&b| b as char));
            Ok(out)
        }
        n => Err(IdError::Length(n)),
    }
}

/// Whether `id` is a well-formed 15- or 18-character Id.
pub fn is_valid(id: &str) -> bool {
    to18(id).is_ok()
}

/// The key prefix (first 3 characters) of an Id, which names its object.
pub fn key_prefix(id: &str) -> Option<&str> {
    id.get(..3)
}

/// Makes the 18-character Id for a key prefix, a 3-character instance/pod part and a
/// sequence number, the way an org numbers its records.
pub fn make(prefix: &str, pod: &str, sequence: u64) -> String {
    let mut body = [b'0'; 9];
    let mut n = sequence;
    for slot in body.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    let mut id15 = String::with_capacity(18);
    id15.push_str(prefix);
    id15.push_str(pod);
    id15.extend(body.iter().map(|&b| b as char));
    debug_assert_eq!(id15.len(), 15);
    let sum = checksum(id15.as_bytes());
    id15.extend(sum.iter().map(|&b| b as char));
    id15
}

/// A validated 18-character Id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SfId(String);

impl SfId {
    pub fn parse(id: &str) -> Result<SfId, IdError> {
        to18(id).map(SfId)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_documented_ids() {
        assert_eq!(to18("001D000000IqhSL").unwrap(), "001D000000IqhSLIAZ");
        assert_eq!(to18("003RO0000035WQg").unwrap(), "003RO0000035WQgYAM");
        assert_eq!(to18("a0D30000001n7Pi").unwrap(), "a0D30000001n7PiEAI");
    }

    #[test]
    fn eighteen_char_ids_are_checked_case_insensitively() {
        assert_eq!(to18("001D000000IqhSLiaz").unwrap(), "001D000000IqhSLIAZ");
        assert!(matches!(
            to18("001D000000IqhSLIAA"),
            Err(IdError::Checksum { .. })
        ));
        assert_eq!(to18("001D000000"), Err(IdError::Length(10)));
        assert_eq!(to18("001D000000IqhS-"), Err(IdError::Character('-')));
    }

    #[test]
    fn made_ids_are_valid_and_distinct() {
        let a = make("006", "5e0", 1);
        let b = make("006", "5e0", 62);
        assert_eq!(a.len(), 18);
        assert!(is_valid(&a) && is_valid(&b));
        assert_ne!(a, b);
        assert_eq!(key_prefix(&a), Some("006"));
        // The golden fixture numbers its records this way.
        assert_eq!(make("001", "5e0", 1), "0015e0000000001AAA");
        assert_eq!(make("001", "5e0", 10), "0015e000000000AAAQ");
    }
}
