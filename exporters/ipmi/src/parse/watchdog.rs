//! `ipmi-raw 0 0x06 0x25` — the IPMI *Get Watchdog Timer* response (IPMI 2.0 §27.7):
//!
//! ```text
//! rcvd: 25 00 44 01 0A 10 58 02 2C 01
//! ```
//! = command, completion code, timer use, timer actions, pre-timeout interval (s),
//! expiration flags, initial countdown (LSB, MSB; 100 ms units), present countdown.
//!
//! FreeIPMI's `bmc-watchdog` only works in-band; the raw command works both in-band and over
//! LAN, so one parser serves local and remote BMCs. Some BMCs (ipmi_sim) return a short
//! response without the present countdown; it is then absent.

use super::ParseError;

/// The decoded watchdog timer.
#[derive(Debug, Clone, PartialEq)]
pub struct Watchdog {
    /// Timer use: `BIOS FRB2`, `BIOS POST`, `OS LOAD`, `SMS/OS`, `OEM` or `reserved`.
    pub timer_use: &'static str,
    /// Timer running.
    pub running: bool,
    /// Timeouts are logged (the "don't log" bit is clear).
    pub logging: bool,
    /// Timeout action: `None`, `Hard Reset`, `Power Down`, `Power Cycle`, `reserved`.
    pub timeout_action: &'static str,
    /// Pre-timeout interrupt: `None`, `SMI`, `NMI / Diagnostic Interrupt`,
    /// `Messaging Interrupt`, `reserved`.
    pub pretimeout_interrupt: &'static str,
    /// Pre-timeout interval in seconds.
    pub pretimeout_interval_seconds: f64,
    /// Initial countdown in seconds.
    pub initial_countdown_seconds: f64,
    /// Present countdown in seconds, when the BMC returned it.
    pub current_countdown_seconds: Option<f64>,
}

/// Timer use names, by code.
pub const TIMER_USES: [&str; 5] = ["BIOS FRB2", "BIOS POST", "OS LOAD", "SMS/OS", "OEM"];
/// Timeout actions, by code.
pub const ACTIONS: [&str; 4] = ["None", "Hard Reset", "Power Down", "Power Cycle"];
/// Pre-timeout interrupts, by code.
pub const INTERRUPTS: [&str; 4] = [
    "None",
    "SMI",
    "NMI / Diagnostic Interrupt",
    "Messaging Interrupt",
];

/// Parses `ipmi-raw`'s `rcvd:` line.
pub fn parse(text: &str) -> Result<Watchdog, ParseError> {
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("rcvd:"))
        .ok_or_else(|| ParseError("no 'rcvd:' line".into()))?;
    let bytes: Vec<u8> = line
        .split_whitespace()
        .map(|h| u8::from_str_radix(h, 16))
        .collect::<Result<_, _>>()
        .map_err(|e| ParseError(format!("bad hex byte: {e}")))?;
    if bytes.len() < 8 {
        return Err(ParseError(format!(
            "response too short: {} bytes",
            bytes.len()
        )));
    }
    if bytes[0] != 0x25 {
        return Err(ParseError(format!(
            "not a Get Watchdog Timer response (cmd {:#04x})",
            bytes[0]
        )));
    }
    if bytes[1] != 0 {
        return Err(ParseError(format!("completion code {:#04x}", bytes[1])));
    }
    let d = &bytes[2..];
    let use_code = (d[0] & 0x07) as usize;
    let action = (d[1] & 0x07) as usize;
    let interrupt = ((d[1] >> 4) & 0x07) as usize;
    let countdown = |lo: u8, hi: u8| f64::from(u16::from_le_bytes([lo, hi])) / 10.0;
    Ok(Watchdog {
        timer_use: use_code
            .checked_sub(1)
            .and_then(|i| TIMER_USES.get(i))
            .copied()
            .unwrap_or("reserved"),
        running: d[0] & 0x40 != 0,
        logging: d[0] & 0x80 == 0,
        timeout_action: ACTIONS.get(action).copied().unwrap_or("reserved"),
        pretimeout_interrupt: INTERRUPTS.get(interrupt).copied().unwrap_or("reserved"),
        pretimeout_interval_seconds: f64::from(d[2]),
        initial_countdown_seconds: countdown(d[4], d[5]),
        current_countdown_seconds: (d.len() >= 8).then(|| countdown(d[6], d[7])),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn samples() {
        let w = parse(include_str!(
            "../../testdata/samples/ipmi-raw-get-watchdog.handmade.txt"
        ))
        .unwrap();
        assert_eq!(w.timer_use, "SMS/OS");
        assert!(w.running && w.logging);
        assert_eq!(w.timeout_action, "Hard Reset");
        assert_eq!(w.pretimeout_interrupt, "None");
        assert_eq!(w.pretimeout_interval_seconds, 10.0);
        assert_eq!(w.initial_countdown_seconds, 60.0);
        assert_eq!(w.current_countdown_seconds, Some(30.0));
        // ipmi_sim (recorded): short response, timer never set.
        let w = parse(include_str!(
            "../../testdata/samples/ipmi-raw-get-watchdog.txt"
        ))
        .unwrap();
        assert_eq!(w.timer_use, "reserved");
        assert!(!w.running);
        assert_eq!(w.current_countdown_seconds, None);
    }

    #[test]
    fn edge_cases() {
        assert!(parse("").is_err());
        assert!(parse("rcvd: 25 00 zz").is_err());
        assert!(parse("rcvd: 25 00 00").is_err());
        assert!(parse("rcvd: 25 C1 00 00 00 00 00 00")
            .unwrap_err()
            .to_string()
            .contains("0xc1"));
        assert!(parse("rcvd: 01 00 00 00 00 00 00 00").is_err());
        let w = parse("rcvd: 25 00 87 77 00 00 FF FF FF FF").unwrap();
        assert_eq!(
            (
                w.timer_use,
                w.logging,
                w.timeout_action,
                w.pretimeout_interrupt
            ),
            ("reserved", false, "reserved", "reserved")
        );
        assert_eq!(w.initial_countdown_seconds, 6553.5);
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") { let _ = parse(&s); }
        #[test]
        fn never_panics_hex(b in proptest::collection::vec(any::<u8>(), 0..12)) {
            let hex: Vec<String> = b.iter().map(|x| format!("{x:02X}")).collect();
            let _ = parse(&format!("rcvd: 25 00 {}", hex.join(" ")));
        }
    }
}
