//! Checks for the metric and label names that configuration files define (SNMP and Modbus
//! modules), and the bound on label values that come from devices.

use anyhow::bail;

/// Longest label value taken from a device (longer ones are cut at a character boundary):
/// a device string must not blow up a series.
pub const MAX_LABEL_VALUE: usize = 256;

/// Whether `s` is a valid Prometheus metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn valid_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Whether `s` is a valid label name that is not reserved (`[a-zA-Z_][a-zA-Z0-9_]*`, not
/// starting with `__`).
pub fn valid_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__")
}

/// Fails unless `name` is a valid metric name.
pub fn check_metric_name(name: &str) -> anyhow::Result<()> {
    if !valid_metric_name(name) {
        bail!("{name:?} is not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)");
    }
    Ok(())
}

/// Fails unless `name` is a valid, unreserved label name.
pub fn check_label_name(name: &str) -> anyhow::Result<()> {
    if !valid_label_name(name) {
        bail!("{name:?} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)");
    }
    Ok(())
}

/// A label value from a device: at most [`MAX_LABEL_VALUE`] bytes, cut at a character
/// boundary.
pub fn bounded(s: &str) -> String {
    if s.len() <= MAX_LABEL_VALUE {
        return s.to_string();
    }
    let mut end = MAX_LABEL_VALUE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["upsBatteryStatus", "room_temperature_celsius", "a:b", "_x"] {
            assert!(valid_metric_name(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a b", "ä"] {
            assert!(!valid_metric_name(bad), "{bad}");
        }
        assert!(valid_label_name("upsInputLineIndex"));
        for bad in ["__name__", "a:b", "", "9"] {
            assert!(!valid_label_name(bad), "{bad}");
        }
        assert_eq!(bounded(&"é".repeat(200)).len(), 256);
        assert_eq!(bounded("short"), "short");
    }
}
