//! Small readers for `/proc` and `/sys` files shared by the collectors: one attribute file,
//! one number, a sorted directory listing, and Go's number syntaxes (node_exporter parses
//! many sysfs attributes with `strconv.ParseUint(s, 0, 64)`, which accepts `0x1f`, `017`,
//! `0b101`), so that values match node_exporter's on the same files; and node_exporter's
//! metric-name sanitizer for names taken from such files.

use std::path::Path;

use anyhow::Context as _;

/// The whole file as text, with the path in the error.
pub(crate) fn text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// A kernel file kept open between scrapes ([`KeptFile`]), read whole, with the path in the
/// error.
pub(crate) fn kept(file: &KeptFile) -> anyhow::Result<String> {
    file.read_to_string()
        .with_context(|| format!("reading {}", file.path().display()))
}

// Attribute and directory reads live in the kit's sysfs module (one `read(2)` per attribute;
// `sysfs::Dir` reads many attributes of one directory with openat).
pub(crate) use hpcmon_kit::sysfs::{attr, entries, entries_or_empty, KeptFile};

/// Whether reading a sysfs attribute failed only because the driver does not provide it
/// (missing file, EOPNOTSUPP, EINVAL): node_exporter skips such attributes.
pub(crate) fn unsupported(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound
        || matches!(
            e.raw_os_error(),
            Some(libc::EOPNOTSUPP) | Some(libc::EINVAL)
        )
}

/// A file holding one decimal unsigned integer (node_exporter's `readUintFromFile`).
pub(crate) fn u64_file(path: &Path) -> anyhow::Result<u64> {
    let t = attr(path).with_context(|| format!("reading {}", path.display()))?;
    t.parse()
        .with_context(|| format!("invalid number {t:?} in {}", path.display()))
}

/// Go's `strconv.ParseUint(s, 0, 64)`: decimal, `0x`/`0X` hex, `0o`/`0O` or leading-`0`
/// octal, `0b`/`0B` binary. `None` for anything else (signs, empty digits, overflow).
pub(crate) fn go_uint(s: &str) -> Option<u64> {
    let (digits, radix) = if let Some(r) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (r, 16)
    } else if let Some(r) = s.strip_prefix("0b").or_else(|| s.strip_prefix("0B")) {
        (r, 2)
    } else if let Some(r) = s.strip_prefix("0o").or_else(|| s.strip_prefix("0O")) {
        (r, 8)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Go's `strconv.ParseInt(s, 0, 64)`: [`go_uint`]'s syntaxes with an optional sign.
pub(crate) fn go_int(s: &str) -> Option<i64> {
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let v = go_uint(rest)?;
    if neg {
        if v == 1 << 63 {
            Some(i64::MIN)
        } else {
            i64::try_from(v).ok().map(|v| -v)
        }
    } else {
        i64::try_from(v).ok()
    }
}

/// node_exporter's `SanitizeMetricName`: every run of characters outside `[0-9A-Za-z_]`,
/// with the underscores around it, becomes one `_` (`"a__-_b"` → `"a_b"`).
pub(crate) fn sanitize_metric_name(name: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new("_*[^0-9A-Za-z_]+_*").expect("valid regex"))
        .replace_all(name, "_")
        .into_owned()
}

/// Parses white-space separated decimal `u64`s; `None` if any is not one.
pub(crate) fn u64s<'a>(fields: impl IntoIterator<Item = &'a str>) -> Option<Vec<u64>> {
    fields.into_iter().map(|f| f.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn go_number_syntax() {
        assert_eq!(go_uint("0x1F"), Some(31));
        assert_eq!(go_uint("0XFFFFFFFFFFFFFFFF"), Some(u64::MAX));
        assert_eq!(go_uint("017"), Some(15));
        assert_eq!(go_uint("0o17"), Some(15));
        assert_eq!(go_uint("0b101"), Some(5));
        assert_eq!(go_uint("0"), Some(0));
        assert_eq!(go_uint("42"), Some(42));
        assert_eq!(go_uint("08"), None);
        assert_eq!(go_uint("0x"), None);
        assert_eq!(go_uint("+1"), None);
        assert_eq!(go_uint("-1"), None);
        assert_eq!(go_uint(""), None);
        assert_eq!(go_uint("18446744073709551616"), None);
        assert_eq!(go_int("-0x10"), Some(-16));
        assert_eq!(go_int("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(go_int("9223372036854775808"), None);
        assert_eq!(go_int("+7"), Some(7));
        assert_eq!(go_int("-"), None);
    }

    #[test]
    fn sanitize_like_node_exporter() {
        assert_eq!(sanitize_metric_name("a__-_b"), "a_b");
        assert_eq!(sanitize_metric_name("rx-queue.0 bytes"), "rx_queue_0_bytes");
        assert_eq!(sanitize_metric_name("keep__this"), "keep__this");
        assert_eq!(sanitize_metric_name("dram"), "dram");
    }

    #[test]
    fn attr_trims_and_entries_sort() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b"), "  up\n").unwrap();
        std::fs::write(dir.path().join("a"), "7\n").unwrap();
        assert_eq!(attr(&dir.path().join("b")).unwrap(), "up");
        assert_eq!(u64_file(&dir.path().join("a")).unwrap(), 7);
        assert!(u64_file(&dir.path().join("b")).is_err());
        assert!(u64_file(&dir.path().join("missing")).is_err());
        let names: Vec<String> = entries(dir.path())
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["a", "b"]);
    }

    proptest! {
        #[test]
        fn go_parsers_never_panic(s in "\\PC{0,24}") {
            let _ = go_uint(&s);
            let _ = go_int(&s);
        }

        #[test]
        fn go_uint_round_trips(v: u64) {
            prop_assert_eq!(go_uint(&v.to_string()), Some(v));
            prop_assert_eq!(go_uint(&format!("{v:#x}")), Some(v));
            prop_assert_eq!(go_uint(&format!("{v:#o}").replace("0o", "0")), Some(v));
        }
    }
}
