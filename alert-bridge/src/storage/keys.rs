//! How arbitrary strings are stored so that no value can fail an insert on any backend.
//!
//! Label values are whatever the sender put there: NUL bytes (PostgreSQL's `text` cannot hold
//! them), 100 kB strings (longer than a B-tree index entry may be: ~2.7 kB on PostgreSQL,
//! 3 kB on InnoDB), any Unicode. So:
//!
//! * indexed text columns (`fingerprint`, `alertname`, `severity`, `instance`) hold an
//!   [`index_key`]: the string itself when it is at most [`KEY_MAX`] bytes without NUL,
//!   else a prefix plus a SHA-256 digest of the whole string — queries apply the same
//!   function to what they look for, so equality still works;
//! * other text columns hold [`plain_text`] (NUL replaced by U+FFFD);
//! * label pairs keep the exact value as bytes, are unique by [`pair_hash`], and are range
//!   scanned by [`value_prefix`];
//! * label and annotation sets are stored as JSON, which escapes everything exactly.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

/// Longest indexed text value kept verbatim, in bytes.
pub const KEY_MAX: usize = 255;

/// Bytes of a label value kept in `label_pairs.vprefix` (the range-scanned index column).
pub const VPREFIX: usize = 128;

/// Replaces NUL (which PostgreSQL text cannot store) by U+FFFD.
pub fn plain_text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The first `max` characters of `s`.
pub fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The value stored in an indexed text column for `s` (at most [`KEY_MAX`] bytes, no NUL).
pub fn index_key(s: &str) -> Cow<'_, str> {
    if s.len() <= KEY_MAX && !s.contains('\0') {
        return Cow::Borrowed(s);
    }
    let digest = Sha256::digest(s.as_bytes());
    let head = plain_text(truncate_bytes(s, 180)).into_owned();
    // U+FFFD takes 3 bytes where NUL took 1: cut again so the key stays short.
    let head = truncate_bytes(&head, 180).to_string();
    Cow::Owned(format!("{head}…#{}", hex(&digest[..16])))
}

/// Identity of a label pair: SHA-256 of the name, a 0xFF byte (never in UTF-8), the value.
pub fn pair_hash(name: &str, value: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0xFF]);
    h.update(value.as_bytes());
    h.finalize().to_vec()
}

/// The indexed prefix of a label value.
pub fn value_prefix(value: &str) -> &[u8] {
    &value.as_bytes()[..value.len().min(VPREFIX)]
}

/// The smallest byte string greater than every string starting with `p`, or `None` when
/// there is none (`p` is empty or all 0xFF).
pub fn prefix_upper_bound(p: &[u8]) -> Option<Vec<u8>> {
    let mut v = p.to_vec();
    while let Some(last) = v.pop() {
        if last < 0xFF {
            v.push(last + 1);
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_keys_are_verbatim_long_ones_hashed() {
        assert_eq!(index_key("NodeDown"), "NodeDown");
        let long = "x".repeat(100_000);
        let k = index_key(&long);
        assert!(k.len() <= KEY_MAX, "{}", k.len());
        assert_ne!(index_key(&format!("{long}y")), k);
        let nul = "a\0b";
        assert!(!index_key(nul).contains('\0'));
        assert_ne!(index_key(nul), index_key("a\u{FFFD}b"));
        assert_eq!(plain_text(nul), "a\u{FFFD}b");
    }

    #[test]
    fn prefix_bounds() {
        assert_eq!(prefix_upper_bound(b"n00"), Some(b"n01".to_vec()));
        assert_eq!(prefix_upper_bound(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_upper_bound(b"\xff\xff"), None);
        assert_eq!(prefix_upper_bound(b""), None);
    }

    #[test]
    fn pair_hash_separates_name_and_value() {
        assert_ne!(pair_hash("ab", "c"), pair_hash("a", "bc"));
    }

    proptest! {
        #[test]
        fn keys_are_bounded_and_injective_enough(a in "\\PC{0,400}", b in "\\PC{0,400}") {
            let (ka, kb) = (index_key(&a), index_key(&b));
            prop_assert!(ka.len() <= KEY_MAX);
            prop_assert!(!ka.contains('\0'));
            if a != b { prop_assert_ne!(ka, kb); }
        }

        #[test]
        fn truncation_keeps_char_boundaries(s in "\\PC{0,50}", n in 0usize..60) {
            prop_assert!(truncate_bytes(&s, n).len() <= n);
            prop_assert!(truncate_chars(&s, n).chars().count() <= n);
        }
    }
}
