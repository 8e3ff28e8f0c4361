//! `scontrol -o show licenses`: one license per line.

use super::{key_values, number};

/// One license.
#[derive(Debug, Clone, PartialEq)]
pub struct License {
    /// Name.
    pub name: String,
    /// Total.
    pub total: f64,
    /// In use.
    pub used: f64,
    /// Free.
    pub free: f64,
    /// Reserved (absent before 22.05: 0).
    pub reserved: f64,
}

/// Parses the output.
pub fn parse(out: &str) -> Vec<License> {
    out.lines()
        .filter_map(|line| {
            let kv = key_values(line.trim());
            let get = |k: &str| {
                kv.iter()
                    .find(|(key, _)| *key == k)
                    .and_then(|(_, v)| number(v))
            };
            let name = kv.iter().find(|(k, _)| *k == "LicenseName")?.1;
            Some(License {
                name: name.to_string(),
                total: get("Total")?,
                used: get("Used").unwrap_or(0.0),
                free: get("Free").unwrap_or(0.0),
                reserved: get("Reserved").unwrap_or(0.0),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licenses() {
        let l = parse("LicenseName=ansys Total=2 Used=0 Free=2 Reserved=0 Remote=no\nLicenseName=matlab Total=4 Used=2 Free=2 Reserved=0 Remote=no\nLicenseName=bad Total=x\n");
        assert_eq!(l.len(), 2);
        assert_eq!(
            (l[1].name.as_str(), l[1].total, l[1].used),
            ("matlab", 4.0, 2.0)
        );
    }
}
