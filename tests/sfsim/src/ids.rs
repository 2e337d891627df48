//! Salesforce record ids: 15 case-sensitive characters plus a 3-character
//! checksum suffix that makes the 18-character form case-insensitive.

use std::sync::atomic::{AtomicU64, Ordering};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SUFFIX: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// The 3-character suffix of a 15-character id.
pub fn checksum(id15: &str) -> String {
    id15.as_bytes()
        .chunks(5)
        .map(|chunk| {
            let bits =
                chunk.iter().enumerate().fold(0usize, |acc, (i, b)| acc | (usize::from(b.is_ascii_uppercase()) << i));
            char::from(SUFFIX[bits])
        })
        .collect()
}

/// The 18-character form of a 15- or 18-character id; `None` when it is
/// neither.
pub fn to_18(id: &str) -> Option<String> {
    if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    match id.len() {
        15 => Some(format!("{id}{}", checksum(id))),
        18 => Some(format!("{}{}", &id[..15], checksum(&id[..15]))),
        _ => None,
    }
}

/// Hands out fresh ids, like a Salesforce pod (`5j` here).
#[derive(Debug, Default)]
pub struct IdGenerator {
    next: AtomicU64,
}

impl IdGenerator {
    /// A new 18-character id with the key prefix of its object (`00Q`).
    pub fn next(&self, key_prefix: &str) -> String {
        let mut n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut tail = [b'0'; 7];
        for slot in tail.iter_mut().rev() {
            *slot = BASE62[(n % 62) as usize];
            n /= 62;
        }
        let id15 = format!("{key_prefix}5j000{}", String::from_utf8_lossy(&tail));
        format!("{id15}{}", checksum(&id15))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_salesforce() {
        fn check(id15: &str, expected: &str) {
            assert_eq!(to_18(id15).as_deref(), Some(expected));
        }
        // Known pairs from Salesforce documentation and orgs.
        check("001D000000IqhSL", "001D000000IqhSLIAZ");
        check("a01B0000009ZjAm", "a01B0000009ZjAmIAK");
        check("005xx000001SwiU", "005xx000001SwiUAAS");
    }

    #[test]
    fn fresh_ids_are_unique_valid_and_carry_the_prefix() {
        let ids = IdGenerator::default();
        let a = ids.next("00Q");
        let b = ids.next("00Q");
        assert_ne!(a, b);
        assert_eq!(a.len(), 18);
        assert!(a.starts_with("00Q"));
        assert_eq!(to_18(&a[..15]).as_deref(), Some(a.as_str()));
    }
}
