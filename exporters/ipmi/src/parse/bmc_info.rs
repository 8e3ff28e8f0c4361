//! `bmc-info --get-device-id --get-system-info` (or plain `bmc-info`): the BMC's identity.
//!
//! ```text
//! Firmware Revision     : 9.08
//! Manufacturer ID       : MontaVista Software, Inc. (4753)
//! System Firmware Version : 2.6.1
//! ```
//! Only the first occurrence of a key counts (channel blocks repeat keys).

use super::{kv, ParseError};

/// The labels of `ipmi_bmc_info` (ipmi_exporter's set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BmcInfo {
    /// `Firmware Revision`.
    pub firmware_revision: String,
    /// `Manufacturer ID` as printed (name and number).
    pub manufacturer_id: String,
    /// `System Firmware Version`, `N/A` when the BMC does not say.
    pub system_firmware_version: String,
    /// `System GUID`, `N/A` when absent.
    pub guid: String,
}

/// Parses the output; `Firmware Revision` is required.
pub fn parse(text: &str) -> Result<BmcInfo, ParseError> {
    let get = |k: &str| kv(text, k).filter(|v| !v.is_empty()).map(str::to_string);
    let firmware_revision =
        get("Firmware Revision").ok_or_else(|| ParseError("no Firmware Revision line".into()))?;
    Ok(BmcInfo {
        firmware_revision,
        manufacturer_id: get("Manufacturer ID").unwrap_or_else(|| "N/A".into()),
        system_firmware_version: get("System Firmware Version").unwrap_or_else(|| "N/A".into()),
        guid: get("System GUID").unwrap_or_else(|| "N/A".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sample() {
        let b = parse(include_str!("../../testdata/samples/bmc-info.txt")).unwrap();
        assert_eq!(b.firmware_revision, "9.08");
        assert_eq!(b.manufacturer_id, "MontaVista Software, Inc. (4753)");
        assert_eq!(b.system_firmware_version, "N/A");
        assert_eq!(b.guid, "efcdab89-6745-23a1-efcd-ab89674523a1");
    }

    #[test]
    fn edge_cases() {
        assert!(parse("").is_err());
        assert!(parse("bmc-info: connection timeout").is_err());
        let b = parse("Firmware Revision : 1.66\nSystem Firmware Version : 2.6.1\n").unwrap();
        assert_eq!(b.system_firmware_version, "2.6.1");
        assert_eq!(b.manufacturer_id, "N/A");
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") { let _ = parse(&s); }
    }
}
