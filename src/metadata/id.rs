//! Salesforce record Ids: 15-character case-sensitive base-62 Ids and their 18-character
//! case-insensitive form with a 3-character checksum suffix, and the check an admin command
//! makes of an Id it is given ([`check`]): well formed, and of the object it expects, told by
//! its 3-character key prefix.

use std::collections::BTreeMap;
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

/// The first 15 characters of an 18-character Id with the case its suffix records, or None
/// when the suffix is not a checksum any Id can have.
fn restore_case(id18: &[u8]) -> Option<Vec<u8>> {
    let mut body = id18[..15].to_vec();
    for (chunk, &c) in id18[15..].iter().enumerate() {
        let bits = SUFFIX_ALPHABET
            .iter()
            .position(|&s| s == c.to_ascii_uppercase())?;
        for (j, b) in body[chunk * 5..chunk * 5 + 5].iter_mut().enumerate() {
            let upper = bits & (1 << j) != 0;
            if b.is_ascii_alphabetic() {
                *b = if upper {
                    b.to_ascii_uppercase()
                } else {
                    b.to_ascii_lowercase()
                };
            } else if upper {
                return None;
            }
        }
    }
    Some(body)
}

/// Returns the 18-character form of a 15- or 18-character Id, checking its characters and,
/// for an 18-character Id, its checksum (compared case-insensitively, as Salesforce does).
/// An 18-character Id whose letters were all upper- or all lower-cased on the way (a
/// spreadsheet, a case-insensitive tool) gets its case back from the checksum, which is what
/// the 18-character form is for; one with mixed case must match its checksum exactly, so a
/// mistyped character is caught.
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
            let body = if bytes[15..].eq_ignore_ascii_case(&sum) {
                Some(bytes[..15].to_vec())
            } else {
                let letters = bytes[..15].iter().filter(|b| b.is_ascii_alphabetic());
                let single_case = letters.clone().all(u8::is_ascii_uppercase)
                    || letters.clone().all(u8::is_ascii_lowercase);
                single_case.then(|| restore_case(bytes)).flatten()
            };
            let Some(body) = body else {
                return Err(IdError::Checksum {
                    expected: sum.iter().map(|&b| b as char).collect(),
                });
            };
            let mut out: String = body.iter().map(|&b| b as char).collect();
            out.extend(checksum(&body).iter().map(|&b| b as char));
            Ok(out)
        }
        n => Err(IdError::Length(n)),
    }
}

/// The 18-character form of an 18-character Id read case-insensitively, as the CRM reads
/// Ids in URLs and queries: its checksum gives the case of the first 15 characters. `None`
/// when the checksum cannot be one (a digit marked upper case, a character outside it).
pub fn case_restored(id18: &str) -> Option<String> {
    if id18.len() != 18 || !id18.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let body = restore_case(id18.as_bytes())?;
    to18(&String::from_utf8(body).ok()?).ok()
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

/// Key prefixes that name the same object in every org. Custom objects get theirs per org,
/// so those are learned from the org (the store's mirror, the CRM's describe).
pub const STANDARD_PREFIXES: &[(&str, &str)] = &[
    ("001", "Account"),
    ("003", "Contact"),
    ("005", "User"),
    ("006", "Opportunity"),
    ("00D", "Organization"),
    ("00Q", "Lead"),
    ("00T", "Task"),
    ("00U", "Event"),
    ("00e", "Profile"),
    ("01t", "Product2"),
    ("500", "Case"),
    ("701", "Campaign"),
    ("800", "Contract"),
];

/// Which object each known key prefix belongs to (prefixes are case-sensitive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefixes {
    by_prefix: BTreeMap<String, String>,
}

impl Prefixes {
    /// The prefixes every org shares.
    pub fn standard() -> Prefixes {
        let mut p = Prefixes::default();
        for (prefix, object) in STANDARD_PREFIXES {
            p.learn(prefix, object);
        }
        p
    }

    /// Records that `object`'s Ids start with `prefix` (a fact of this org).
    pub fn learn(&mut self, prefix: &str, object: &str) {
        if prefix.len() == 3 {
            self.by_prefix
                .insert(prefix.to_string(), object.to_string());
        }
    }

    /// The object whose Ids start with `prefix`.
    pub fn object_of(&self, prefix: &str) -> Option<&str> {
        self.by_prefix.get(prefix).map(String::as_str)
    }

    /// The key prefix of `object` (API name, case-insensitively), when known.
    pub fn prefix_of(&self, object: &str) -> Option<&str> {
        self.by_prefix
            .iter()
            .find(|(_, o)| o.eq_ignore_ascii_case(object))
            .map(|(p, _)| p.as_str())
    }
}

/// Why an Id given to a command cannot be the record it asks for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdCheckError {
    #[error(
        "{input:?} is not a record Id ({why}); {taker} takes {} Id",
        with_article(expected)
    )]
    Malformed {
        input: String,
        why: IdError,
        expected: String,
        taker: String,
    },
    #[error(
        "{id} is {} Id (key prefix {prefix}); {taker} takes {} Id",
        with_article(object),
        with_article(expected)
    )]
    OtherObject {
        id: String,
        prefix: String,
        object: String,
        expected: String,
        taker: String,
    },
    #[error("{id} is not {} Id: those start with {expected_prefix}, this one with {prefix}; {taker} takes {} Id", with_article(expected), with_article(expected))]
    WrongPrefix {
        id: String,
        prefix: String,
        expected: String,
        expected_prefix: String,
        taker: String,
    },
}

/// `an Account`, `a Task`.
fn with_article(object: &str) -> String {
    let vowel = object
        .chars()
        .next()
        .is_some_and(|c| "AEIOUaeiou".contains(c));
    format!("{} {object}", if vowel { "an" } else { "a" })
}

/// Checks an Id a user gave `taker` (a command or an option, for messages) for a record of
/// `expected`: 15 or 18 letters and digits, a valid checksum, and a key prefix that is
/// `expected`'s (when known) and no other known object's. Returns the 18-character form.
/// An Id whose prefix nothing in `prefixes` names passes: the record lookup decides.
pub fn check(
    input: &str,
    expected: &str,
    taker: &str,
    prefixes: &Prefixes,
) -> Result<String, IdCheckError> {
    let trimmed = input.trim();
    let id = to18(trimmed).map_err(|why| IdCheckError::Malformed {
        input: trimmed.to_string(),
        why,
        expected: expected.to_string(),
        taker: taker.to_string(),
    })?;
    let prefix = &id[..3];
    let expected_prefix = prefixes.prefix_of(expected);
    if expected_prefix == Some(prefix) {
        return Ok(id);
    }
    match prefixes.object_of(prefix) {
        Some(object) if object.eq_ignore_ascii_case(expected) => Ok(id),
        Some(object) => Err(IdCheckError::OtherObject {
            prefix: prefix.to_string(),
            object: object.to_string(),
            expected: expected.to_string(),
            taker: taker.to_string(),
            id,
        }),
        None => match expected_prefix {
            Some(expected_prefix) => Err(IdCheckError::WrongPrefix {
                prefix: prefix.to_string(),
                expected: expected.to_string(),
                expected_prefix: expected_prefix.to_string(),
                taker: taker.to_string(),
                id,
            }),
            None => Ok(id),
        },
    }
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
    fn checksums_of_made_and_documented_ids_table() {
        // (15-character Id, its 18-character form)
        let table = [
            ("001D000000IqhSL", "001D000000IqhSLIAZ"),
            ("003RO0000035WQg", "003RO0000035WQgYAM"),
            ("a0D30000001n7Pi", "a0D30000001n7PiEAI"),
            ("000000000000000", "000000000000000AAA"),
            ("ABCDEABCDEABCDE", "ABCDEABCDEABCDE555"),
            ("abcdeabcdeabcde", "abcdeabcdeabcdeAAA"),
            ("0015e0000000001", "0015e0000000001AAA"),
        ];
        for (id15, id18) in table {
            assert_eq!(to18(id15).unwrap(), id18, "{id15}");
            assert_eq!(to18(id18).unwrap(), id18, "{id18}");
        }
    }

    #[test]
    fn a_case_mangled_eighteen_character_id_gets_its_case_back() {
        assert_eq!(to18("001d000000iqhsliaz").unwrap(), "001D000000IqhSLIAZ");
        assert_eq!(to18("001D000000IQHSLIAZ").unwrap(), "001D000000IqhSLIAZ");
        assert_eq!(to18("A0D30000001N7PIEAI").unwrap(), "a0D30000001n7PiEAI");
        // A suffix claiming an upper-case digit is no checksum.
        assert!(matches!(
            to18("001D000000IQHSL5AZ"),
            Err(IdError::Checksum { .. })
        ));
        // Mixed case that the suffix contradicts is a typo, not a case change.
        assert!(matches!(
            to18("001D000000IqhSLIAY"),
            Err(IdError::Checksum { .. })
        ));
    }

    #[test]
    fn check_table() {
        let mut prefixes = Prefixes::standard();
        prefixes.learn("a0P", "Account_Plan__c");
        let plan = make("a0P", "5e0", 7);
        let account = make("001", "5e0", 7);
        // (input, expected object, Ok(18-character Id) or the error's text)
        let table: Vec<(&str, &str, Result<String, &str>)> = vec![
            (&account, "Account", Ok(account.clone())),
            (&account[..15], "Account", Ok(account.clone())),
            (&plan, "Account_Plan__c", Ok(plan.clone())),
            (
                &plan,
                "Account",
                Err("is an Account_Plan__c Id (key prefix a0P); --x takes an Account Id"),
            ),
            (
                &account,
                "Account_Plan__c",
                Err("is an Account Id (key prefix 001); --x takes an Account_Plan__c Id"),
            ),
            ("006000000000001AAA", "Account", Err("is an Opportunity Id")),
            ("00T000000000001", "Opportunity", Err("is a Task Id")),
            ("00U000000000001", "Contact", Err("is an Event Id")),
            (
                "a0X000000000001",
                "Account",
                Err("is not an Account Id: those start with 001, this one with a0X"),
            ),
            (
                "not-an-id",
                "Opportunity",
                Err("\"not-an-id\" is not a record Id"),
            ),
            (
                "006000000000001",
                "Opportunity",
                Ok("006000000000001AAA".into()),
            ),
            ("0060000000000", "Opportunity", Err("15 or 18 characters")),
            ("006000000000001AAB", "Opportunity", Err("checksum")),
            // A custom object's prefix the org has not told: the lookup decides.
            (
                "a0X000000000001",
                "Deal__c",
                Ok("a0X000000000001EAA".into()),
            ),
        ];
        for (input, expected, want) in table {
            let got = check(input, expected, "--x", &prefixes);
            match (got, want) {
                (Ok(id), Ok(want)) => assert_eq!(id, want, "{input}"),
                (Err(e), Err(text)) => {
                    assert!(e.to_string().contains(text), "{input}: {e}")
                }
                (got, want) => panic!("{input} as {expected}: got {got:?}, want {want:?}"),
            }
        }
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
