//! `ipmi-chassis --get-chassis-status`:
//!
//! ```text
//! System Power                        : off
//! Power overload                      : false
//! Drive Fault                         : false
//! Cooling/fan fault                   : false
//! ```

use super::{kv, ParseError};

/// The parts of the chassis status that are exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChassisStatus {
    /// System power on.
    pub power_on: bool,
    /// Power overload, if reported.
    pub power_overload: Option<bool>,
    /// Main power fault, if reported.
    pub power_fault: Option<bool>,
    /// Drive fault, if reported.
    pub drive_fault: Option<bool>,
    /// Cooling/fan fault, if reported.
    pub cooling_fault: Option<bool>,
    /// Chassis intrusion active, if reported.
    pub intrusion: Option<bool>,
}

fn flag(text: &str, key: &str) -> Option<bool> {
    match kv(text, key)?.to_ascii_lowercase().as_str() {
        "true" | "active" | "on" => Some(true),
        "false" | "inactive" | "off" => Some(false),
        _ => None,
    }
}

/// Parses the status; the `System Power` line is required.
pub fn parse(text: &str) -> Result<ChassisStatus, ParseError> {
    let power_on = match kv(text, "System Power")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("on") => true,
        Some("off") => false,
        other => {
            return Err(ParseError(format!(
                "no System Power on/off line (got {other:?})"
            )))
        }
    };
    Ok(ChassisStatus {
        power_on,
        power_overload: flag(text, "Power overload"),
        power_fault: flag(text, "Power fault"),
        drive_fault: flag(text, "Drive Fault"),
        cooling_fault: flag(text, "Cooling/fan fault"),
        intrusion: flag(text, "Chassis intrusion"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sample() {
        let s = parse(include_str!(
            "../../testdata/samples/ipmi-chassis-status.txt"
        ))
        .unwrap();
        assert!(!s.power_on);
        assert_eq!(s.cooling_fault, Some(false));
        assert_eq!(s.drive_fault, Some(false));
        assert_eq!(s.intrusion, Some(false));
    }

    #[test]
    fn edge_cases() {
        let s =
            parse("System Power : on\nCooling/fan fault : true\nDrive Fault : maybe\n").unwrap();
        assert!(s.power_on);
        assert_eq!(s.cooling_fault, Some(true));
        assert_eq!(s.drive_fault, None);
        assert_eq!(s.power_fault, None);
        assert!(parse("").is_err());
        assert!(parse("System Power : unknown").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") { let _ = parse(&s); }
    }
}
