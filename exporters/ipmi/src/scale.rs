//! Applying a configured scale factor (SNMP `scale`, Modbus `factor`) to a raw reading.
//!
//! Devices publish decimals as integers (tenths of a degree, hundredths of a hertz), and
//! `245 × 0.1` in binary floating point is `24.500000000000004`: a factor that is the
//! reciprocal of an integer (0.1, 0.01, 0.001…) divides by that integer instead, which gives
//! the nearest double to the decimal the device meant (`245 / 10 = 24.5`).

/// `raw × factor + offset`, dividing by `1/factor` when that is an integer.
pub fn apply(raw: f64, factor: f64, offset: f64) -> f64 {
    let v = if factor != 0.0 && factor.abs() < 1.0 {
        let inv = 1.0 / factor;
        if (inv - inv.round()).abs() < 1e-9 * inv.abs() {
            raw / inv.round()
        } else {
            raw * factor
        }
    } else {
        raw * factor
    };
    v + offset
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decimals_come_out_as_written() {
        assert_eq!(apply(245.0, 0.1, 0.0), 24.5);
        assert_eq!(apply(499.0, 0.1, 0.0), 49.9);
        assert_eq!(apply(102.0, 0.1, 0.0), 10.2);
        assert_eq!(apply(452.0, 0.001, 0.0), 0.452);
        assert_eq!(apply(12345.5, 3.6e6, 0.0), 44_443_800_000.0);
        assert_eq!(apply(-25.0, 0.1, 1.0), -1.5);
        assert_eq!(apply(7.0, 0.25, 0.0), 1.75);
    }

    proptest! {
        #[test]
        fn close_to_the_product(raw in -1e9f64..1e9, f in prop_oneof![Just(0.1), Just(0.01), Just(0.5), Just(3.0), Just(1e-6)]) {
            let want = raw * f;
            prop_assert!((apply(raw, f, 0.0) - want).abs() <= 1e-9 * want.abs().max(1.0));
        }
    }
}
