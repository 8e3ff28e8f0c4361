//! Slurm host lists (`n[1-4,7],gpu[01-02]`): expanding them to names under a hard cap, and
//! compressing names back into one.
//!
//! The grammar is Slurm's: comma-separated items, each a host name with bracketed numeric
//! ranges (`rack[1-2]-n[01-10]` is the product of both ranges). A range's lower bound gives
//! the width (`[08-10]` → `08 09 10`). Host names may hold ASCII letters, digits, `.`, `-`
//! and `_`; anything else is refused with the offending character and its position, so a
//! list taken from an alert label can be passed to a tool as one argv element without any
//! surprise. The number of names is computed **before** anything is expanded:
//! `n[1-1000000000]` is refused by the cap, not by running out of memory.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Longest host list accepted (bytes).
pub const MAX_INPUT: usize = 64 * 1024;
/// Longest host name produced (bytes); also bounds the digits of a range.
pub const MAX_NAME: usize = 255;

/// Why a host list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostlistError {
    /// Nothing but whitespace.
    #[error("empty host list")]
    Empty,
    /// Longer than [`MAX_INPUT`].
    #[error("host list is {0} bytes long (at most {MAX_INPUT})")]
    TooLong(usize),
    /// A character no host name may contain.
    #[error("character {ch:?} at byte {pos} is not allowed in a host list (letters, digits, '.', '-', '_', ',' and [ranges] only)")]
    BadChar {
        /// The character.
        ch: char,
        /// Its byte offset.
        pos: usize,
    },
    /// An empty item (`a,,b`, a leading or trailing comma).
    #[error("empty host name at byte {0}")]
    EmptyName(usize),
    /// `[` without `]`, `]` without `[`, or nested brackets.
    #[error("unbalanced brackets at byte {0}")]
    Brackets(usize),
    /// A range that is not `N` or `N-M` with N ≤ M.
    #[error("bad range {0:?}")]
    Range(String),
    /// More names than the caller allows.
    #[error("host list expands to {count} names, more than the limit of {limit}")]
    TooMany {
        /// Names it would expand to (saturated at `u64::MAX`).
        count: u64,
        /// The caller's limit.
        limit: usize,
    },
    /// A name longer than [`MAX_NAME`].
    #[error("host name longer than {MAX_NAME} bytes")]
    NameTooLong,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    /// (lo, hi, width) ranges of one bracket group.
    Ranges(Vec<(u64, u64, usize)>),
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')
}

fn parse_range(s: &str) -> Result<(u64, u64, usize), HostlistError> {
    let bad = || HostlistError::Range(s.to_string());
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (a, b),
        None => (s, s),
    };
    let digits = |x: &str| !x.is_empty() && x.len() <= 18 && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(lo) || !digits(hi) {
        return Err(bad());
    }
    let (l, h): (u64, u64) = (
        lo.parse().map_err(|_| bad())?,
        hi.parse().map_err(|_| bad())?,
    );
    if l > h {
        return Err(bad());
    }
    Ok((l, h, lo.len()))
}

/// Splits one item into text and bracket groups. `base` is the item's byte offset.
fn parse_item(item: &str, base: usize) -> Result<Vec<Part>, HostlistError> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = item;
    let mut off = base;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let close = after.find(']').ok_or(HostlistError::Brackets(off))?;
            let inner = &after[..close];
            if let Some(p) = inner.find('[') {
                return Err(HostlistError::Brackets(off + 1 + p));
            }
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            let ranges = inner
                .split(',')
                .map(|r| parse_range(r.trim()))
                .collect::<Result<Vec<_>, _>>()?;
            parts.push(Part::Ranges(ranges));
            off += close + 2;
            rest = &after[close + 1..];
        } else {
            let c = rest.chars().next().expect("non-empty");
            if c == ']' {
                return Err(HostlistError::Brackets(off));
            }
            text.push(c);
            off += c.len_utf8();
            rest = &rest[c.len_utf8()..];
        }
    }
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(parts)
}

/// Splits at top-level commas (not those inside brackets), with each item's byte offset.
fn split_items(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push((start, &s[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push((start, &s[start..]));
    out
}

fn item_count(parts: &[Part]) -> u64 {
    parts.iter().fold(1u64, |acc, p| match p {
        Part::Text(_) => acc,
        Part::Ranges(r) => {
            let n = r
                .iter()
                .fold(0u64, |a, (l, h, _)| a.saturating_add(h - l + 1));
            acc.saturating_mul(n)
        }
    })
}

fn parse_all(list: &str) -> Result<Vec<Vec<Part>>, HostlistError> {
    if list.len() > MAX_INPUT {
        return Err(HostlistError::TooLong(list.len()));
    }
    if list.trim().is_empty() {
        return Err(HostlistError::Empty);
    }
    for (pos, ch) in list.char_indices() {
        if !(name_char(ch) || matches!(ch, ',' | '[' | ']')) {
            return Err(HostlistError::BadChar { ch, pos });
        }
    }
    split_items(list)
        .into_iter()
        .map(|(off, item)| {
            if item.is_empty() {
                return Err(HostlistError::EmptyName(off));
            }
            parse_item(item, off)
        })
        .collect()
}

/// How many names `list` stands for (duplicates counted), without expanding it.
pub fn count(list: &str) -> Result<u64, HostlistError> {
    Ok(parse_all(list)?
        .iter()
        .fold(0u64, |a, p| a.saturating_add(item_count(p))))
}

/// Expands `list` into host names, in order, duplicates removed. Refused without
/// expanding anything when it stands for more than `limit` names.
pub fn expand(list: &str, limit: usize) -> Result<Vec<String>, HostlistError> {
    let items = parse_all(list)?;
    let total = items
        .iter()
        .fold(0u64, |a, p| a.saturating_add(item_count(p)));
    if total > limit as u64 {
        return Err(HostlistError::TooMany {
            count: total,
            limit,
        });
    }
    let mut out = Vec::with_capacity(total as usize);
    let mut seen = std::collections::HashSet::with_capacity(total as usize);
    for parts in &items {
        let mut names = vec![String::new()];
        for p in parts {
            match p {
                Part::Text(t) => names.iter_mut().for_each(|n| n.push_str(t)),
                Part::Ranges(r) => {
                    let mut next = Vec::new();
                    for n in &names {
                        for &(l, h, w) in r {
                            for i in l..=h {
                                let mut s = n.clone();
                                let _ = write!(s, "{i:0w$}");
                                next.push(s);
                            }
                        }
                    }
                    names = next;
                }
            }
            if names.iter().any(|n| n.len() > MAX_NAME) {
                return Err(HostlistError::NameTooLong);
            }
        }
        for n in names {
            if seen.insert(n.clone()) {
                out.push(n);
            }
        }
    }
    Ok(out)
}

/// Compresses host names into one host list (`n1,n2,n3,gpu01` → `gpu01,n[1-3]`): names
/// grouped by their prefix before the trailing digits and the digits' zero padding, sorted.
/// `expand(compress(names))` gives the same set of names back.
pub fn compress<S: AsRef<str>>(names: &[S]) -> String {
    // (prefix, width: 0 = unpadded) -> numbers; names without trailing digits kept as is.
    let mut groups: BTreeMap<(String, usize), Vec<u64>> = BTreeMap::new();
    let mut plain: Vec<String> = Vec::new();
    for n in names {
        let n = n.as_ref();
        let digits = n.bytes().rev().take_while(|b| b.is_ascii_digit()).count();
        let (prefix, num) = n.split_at(n.len() - digits);
        // Padded numbers keep their width; very long digit runs are left alone.
        match num.parse::<u64>() {
            Ok(v) if !num.is_empty() && num.len() <= 18 => {
                let width = if num.len() > 1 && num.starts_with('0') {
                    num.len()
                } else {
                    0
                };
                groups
                    .entry((prefix.to_string(), width))
                    .or_default()
                    .push(v);
            }
            _ => plain.push(n.to_string()),
        }
    }
    plain.sort();
    plain.dedup();
    let mut out: Vec<String> = plain;
    for ((prefix, width), mut nums) in groups {
        nums.sort_unstable();
        nums.dedup();
        // An unpadded group must not print a number with a leading zero; a padded group
        // holds only numbers whose padded form has exactly `width` digits.
        let fmt = |v: u64| {
            if width > 0 {
                format!("{v:0width$}")
            } else {
                v.to_string()
            }
        };
        if nums.len() == 1 {
            out.push(format!("{prefix}{}", fmt(nums[0])));
            continue;
        }
        let mut ranges = Vec::new();
        let mut i = 0;
        while i < nums.len() {
            let mut j = i;
            while j + 1 < nums.len() && nums[j + 1] == nums[j] + 1 {
                j += 1;
            }
            // A padded range's bounds must print with the same width (`[08-10]`), which
            // holds because every number of the group prints `width` digits.
            ranges.push(if i == j {
                fmt(nums[i])
            } else {
                format!("{}-{}", fmt(nums[i]), fmt(nums[j]))
            });
            i = j + 1;
        }
        out.push(format!("{prefix}[{}]", ranges.join(",")));
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn expands_slurm_lists() {
        assert_eq!(expand("n1", 10).unwrap(), ["n1"]);
        assert_eq!(
            expand("n[1-3,5],gpu[01-02]", 10).unwrap(),
            ["n1", "n2", "n3", "n5", "gpu01", "gpu02"]
        );
        assert_eq!(expand("n[08-10]", 10).unwrap(), ["n08", "n09", "n10"]);
        assert_eq!(
            expand("r[1-2]-n[1-2]", 10).unwrap(),
            ["r1-n1", "r1-n2", "r2-n1", "r2-n2"]
        );
        assert_eq!(expand("n1,n1,n[1-2]", 10).unwrap(), ["n1", "n2"]);
        assert_eq!(count("n[1-10000],x").unwrap(), 10001);
    }

    #[test]
    fn refuses_hostile_and_malformed_lists() {
        for (bad, want) in [
            ("n1; rm -rf /", "';'"),
            ("$(touch /tmp/x)", "'$'"),
            ("n1 n2", "' '"),
            ("`id`", "'`'"),
            ("n1\nn2", "'\\n'"),
            ("-rf", ""),
        ] {
            let e = expand(bad, 100);
            if want.is_empty() {
                // A leading dash is a valid Slurm name character; callers that pass names
                // as `NodeName=...` are not confused by it.
                assert!(e.is_ok(), "{bad}");
                continue;
            }
            let e = e.unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
        assert_eq!(expand("", 1), Err(HostlistError::Empty));
        assert!(matches!(
            expand("a,,b", 9),
            Err(HostlistError::EmptyName(2))
        ));
        assert!(matches!(
            expand("n[1-2", 9),
            Err(HostlistError::Brackets(1))
        ));
        assert!(matches!(
            expand("n1-2]", 9),
            Err(HostlistError::Brackets(4))
        ));
        assert!(matches!(
            expand("n[[1]]", 9),
            Err(HostlistError::Brackets(_))
        ));
        assert!(matches!(expand("n[3-1]", 9), Err(HostlistError::Range(_))));
        assert!(matches!(expand("n[a-b]", 9), Err(HostlistError::Range(_))));
        assert!(matches!(expand("n[]", 9), Err(HostlistError::Range(_))));
    }

    #[test]
    fn huge_lists_are_refused_before_expanding() {
        let e = expand("n[1-10000]", 64).unwrap_err();
        assert_eq!(
            e,
            HostlistError::TooMany {
                count: 10000,
                limit: 64
            }
        );
        assert!(e.to_string().contains("10000 names"));
        // Products and sums saturate instead of overflowing.
        let e = expand(
            "a[1-999999999999999999]b[1-999999999999999999]c[1-999999999999999999]",
            64,
        )
        .unwrap_err();
        assert!(matches!(
            e,
            HostlistError::TooMany {
                count: u64::MAX,
                ..
            }
        ));
        assert!(matches!(
            expand(&"n".repeat(MAX_INPUT + 1), 1),
            Err(HostlistError::TooLong(_))
        ));
    }

    #[test]
    fn compresses() {
        assert_eq!(compress(&["n1", "n2", "n3", "n5"]), "n[1-3,5]");
        assert_eq!(compress(&["gpu02", "gpu01", "login"]), "login,gpu[01-02]");
        assert_eq!(compress(&["n9", "n10", "n08"]), "n[9-10],n08");
        assert_eq!(compress(&["x"]), "x");
        assert_eq!(compress::<&str>(&[]), "");
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,64}") {
            let _ = expand(&s, 1000);
            let _ = count(&s);
        }

        #[test]
        fn bracket_soup_never_panics(s in "[a-z0-9\\[\\],-]{0,40}") {
            let _ = expand(&s, 1000);
        }

        #[test]
        fn compress_round_trips(names in proptest::collection::vec("[a-c]{1,2}(0?[0-9]{1,3})?", 0..40)) {
            let mut want: Vec<String> = names.clone();
            want.sort();
            want.dedup();
            let list = compress(&names);
            let mut got = if list.is_empty() { vec![] } else { expand(&list, 10_000).unwrap() };
            got.sort();
            prop_assert_eq!(got, want, "list {}", list);
        }
    }
}
