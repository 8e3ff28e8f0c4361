//! `ipmi-dcmi --get-system-power-statistics`:
//!
//! ```text
//! Current Power                        : 354 Watts
//! Minimum Power over sampling duration : 6 watts
//! Maximum Power over sampling duration : 1013 watts
//! Average Power over sampling duration : 335 watts
//! Power Measurement                    : Active
//! ```
//! `ipmi_sim` has no DCMI; tests use recorded and hand-made outputs.

use super::{kv, number, ParseError};

/// The power statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerStatistics {
    /// Current power in watts.
    pub current: f64,
    /// Minimum over the sampling period.
    pub minimum: Option<f64>,
    /// Maximum over the sampling period.
    pub maximum: Option<f64>,
    /// Average over the sampling period.
    pub average: Option<f64>,
    /// `Power Measurement : Active`; readings are meaningless otherwise.
    pub active: bool,
}

fn watts(text: &str, key: &str) -> Option<f64> {
    let v = kv(text, key)?;
    let n = v.split_whitespace().next()?;
    number(n)
}

/// Parses the statistics; `Current Power` is required.
pub fn parse(text: &str) -> Result<PowerStatistics, ParseError> {
    let current = watts(text, "Current Power").ok_or_else(|| {
        ParseError(format!(
            "no Current Power line: {:?}",
            text.trim().chars().take(100).collect::<String>()
        ))
    })?;
    Ok(PowerStatistics {
        current,
        minimum: watts(text, "Minimum Power over sampling duration"),
        maximum: watts(text, "Maximum Power over sampling duration"),
        average: watts(text, "Average Power over sampling duration"),
        active: kv(text, "Power Measurement").is_some_and(|v| v.eq_ignore_ascii_case("active")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn samples() {
        let p = parse(include_str!(
            "../../testdata/samples/ipmi-dcmi-power-statistics.handmade.txt"
        ))
        .unwrap();
        assert_eq!(p.current, 354.0);
        assert_eq!(
            (p.minimum, p.maximum, p.average),
            (Some(6.0), Some(1013.0), Some(335.0))
        );
        assert!(p.active);
        let p = parse(include_str!(
            "../../testdata/samples/ipmi-dcmi-power-inactive.handmade.txt"
        ))
        .unwrap();
        assert!(!p.active);
        // ipmi_sim's answer (recorded): no DCMI at all.
        let e = parse(include_str!("../../testdata/samples/ipmi-dcmi.txt")).unwrap_err();
        assert!(e.to_string().contains("invalid or unsupported"), "{e}");
    }

    #[test]
    fn edge_cases() {
        assert!(parse("").is_err());
        assert!(parse("Current Power : N/A Watts").is_err());
        let p = parse("Current Power : 12.5 Watts").unwrap();
        assert_eq!((p.current, p.minimum, p.active), (12.5, None, false));
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") { let _ = parse(&s); }
    }
}
