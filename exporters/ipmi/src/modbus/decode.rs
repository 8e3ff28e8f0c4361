//! Register decoders: Modbus' 16-bit registers → numbers.
//!
//! A value of `n` registers (1 for 16-bit types, 2 for 32-bit, 4 for 64-bit) is read as
//! bytes in this order: each register's two bytes are swapped first when `byte_order` is
//! `little`, then the registers are reversed when `word_order` is `little` (low word first,
//! "CDAB" for a 32-bit value whose big-endian bytes are "ABCD"), and the resulting bytes are
//! read big-endian. `bool` is one bit (`bit`, 0 = least significant) of one register.
//!
//! Pure functions, property-tested: any input gives a value or an error, never a panic.

use serde::Deserialize;

/// A register value's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    /// One bit of a register (`bit`), or a coil / discrete input.
    Bool,
    /// Signed 16-bit.
    Int16,
    /// Unsigned 16-bit.
    Uint16,
    /// Signed 32-bit (2 registers).
    Int32,
    /// Unsigned 32-bit (2 registers).
    Uint32,
    /// Signed 64-bit (4 registers).
    Int64,
    /// Unsigned 64-bit (4 registers).
    Uint64,
    /// IEEE 754 single precision (2 registers).
    Float32,
    /// IEEE 754 double precision (4 registers).
    Float64,
}

impl DataType {
    /// Registers one value occupies.
    pub fn registers(self) -> u16 {
        match self {
            DataType::Bool | DataType::Int16 | DataType::Uint16 => 1,
            DataType::Int32 | DataType::Uint32 | DataType::Float32 => 2,
            DataType::Int64 | DataType::Uint64 | DataType::Float64 => 4,
        }
    }
}

/// Byte order within a register, or word (register) order within a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Most significant first (Modbus' own order for bytes; "high word first" for words).
    #[default]
    Big,
    /// Least significant first.
    Little,
}

/// How to read one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The type.
    pub data_type: DataType,
    /// Bytes within each register.
    pub byte_order: Order,
    /// Registers within the value.
    pub word_order: Order,
    /// For `bool` from a register: the bit (0..=15).
    pub bit: u8,
}

/// Why registers could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer registers than the type needs.
    #[error("short read: {data_type:?} needs {want} registers, got {got}")]
    Short {
        /// The type.
        data_type: DataType,
        /// Registers needed.
        want: usize,
        /// Registers there.
        got: usize,
    },
    /// A bit number outside 0..=15.
    #[error("bit {0} is not in 0..=15")]
    Bit(u8),
}

/// The bytes of `regs[..n]` in value order (big-endian), after byte and word swaps.
fn ordered_bytes(regs: &[u16], l: &Layout) -> Result<Vec<u8>, DecodeError> {
    let n = usize::from(l.data_type.registers());
    if regs.len() < n {
        return Err(DecodeError::Short {
            data_type: l.data_type,
            want: n,
            got: regs.len(),
        });
    }
    let mut words: Vec<u16> = regs[..n]
        .iter()
        .map(|w| match l.byte_order {
            Order::Big => *w,
            Order::Little => w.swap_bytes(),
        })
        .collect();
    if l.word_order == Order::Little {
        words.reverse();
    }
    Ok(words.iter().flat_map(|w| w.to_be_bytes()).collect())
}

/// Decodes the first registers of `regs` as `l` says.
pub fn decode(regs: &[u16], l: &Layout) -> Result<f64, DecodeError> {
    let b = ordered_bytes(regs, l)?;
    let arr2 = |b: &[u8]| [b[0], b[1]];
    let arr4 = |b: &[u8]| [b[0], b[1], b[2], b[3]];
    let arr8 = |b: &[u8]| [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
    Ok(match l.data_type {
        DataType::Bool => {
            if l.bit > 15 {
                return Err(DecodeError::Bit(l.bit));
            }
            f64::from((u16::from_be_bytes(arr2(&b)) >> l.bit) & 1)
        }
        DataType::Int16 => f64::from(i16::from_be_bytes(arr2(&b))),
        DataType::Uint16 => f64::from(u16::from_be_bytes(arr2(&b))),
        DataType::Int32 => f64::from(i32::from_be_bytes(arr4(&b))),
        DataType::Uint32 => f64::from(u32::from_be_bytes(arr4(&b))),
        DataType::Int64 => i64::from_be_bytes(arr8(&b)) as f64,
        DataType::Uint64 => u64::from_be_bytes(arr8(&b)) as f64,
        DataType::Float32 => f64::from(f32::from_be_bytes(arr4(&b))),
        DataType::Float64 => f64::from_be_bytes(arr8(&b)),
    })
}

/// The registers a device would hold for `bytes` (a value's big-endian bytes) under `l`:
/// the inverse of [`decode`]'s reordering (tests and simulators).
pub fn registers_for(bytes: &[u8], l: &Layout) -> Vec<u16> {
    let mut words: Vec<u16> = bytes
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
        .collect();
    if l.word_order == Order::Little {
        words.reverse();
    }
    words
        .into_iter()
        .map(|w| match l.byte_order {
            Order::Big => w,
            Order::Little => w.swap_bytes(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lay(t: DataType, b: Order, w: Order) -> Layout {
        Layout {
            data_type: t,
            byte_order: b,
            word_order: w,
            bit: 0,
        }
    }

    #[test]
    fn known_values() {
        use DataType::*;
        use Order::*;
        // 23.5 as float32 is 0x41BC0000: ABCD big/big, CDAB big/little.
        assert_eq!(
            decode(&[0x41BC, 0x0000], &lay(Float32, Big, Big)).unwrap(),
            23.5
        );
        assert_eq!(
            decode(&[0x0000, 0x41BC], &lay(Float32, Big, Little)).unwrap(),
            23.5
        );
        assert_eq!(
            decode(&[0xBC41, 0x0000], &lay(Float32, Little, Big)).unwrap(),
            23.5
        );
        assert_eq!(decode(&[0xFF9C], &lay(Int16, Big, Big)).unwrap(), -100.0);
        assert_eq!(decode(&[0xFF9C], &lay(Uint16, Big, Big)).unwrap(), 65436.0);
        // 0x00015A40 = 88640, low word first.
        assert_eq!(
            decode(&[0x5A40, 0x0001], &lay(Uint32, Big, Little)).unwrap(),
            88640.0
        );
        assert_eq!(
            decode(&[0xFFFF, 0xFFFE], &lay(Int32, Big, Big)).unwrap(),
            -2.0
        );
        assert_eq!(
            decode(&[0, 0, 0, 0x2A], &lay(Uint64, Big, Big)).unwrap(),
            42.0
        );
        let mut b = lay(Bool, Big, Big);
        b.bit = 3;
        assert_eq!(decode(&[0b1000], &b).unwrap(), 1.0);
        b.bit = 2;
        assert_eq!(decode(&[0b1000], &b).unwrap(), 0.0);
        b.bit = 16;
        assert_eq!(decode(&[1], &b), Err(DecodeError::Bit(16)));
        assert_eq!(
            decode(&[1], &lay(Float32, Big, Big)),
            Err(DecodeError::Short {
                data_type: Float32,
                want: 2,
                got: 1
            })
        );
        // A float NaN pattern decodes to NaN (a device's "no reading"), not an error.
        assert!(decode(&[0x7FC0, 0], &lay(Float32, Big, Big))
            .unwrap()
            .is_nan());
    }

    fn any_type() -> impl Strategy<Value = DataType> {
        prop_oneof![
            Just(DataType::Bool),
            Just(DataType::Int16),
            Just(DataType::Uint16),
            Just(DataType::Int32),
            Just(DataType::Uint32),
            Just(DataType::Int64),
            Just(DataType::Uint64),
            Just(DataType::Float32),
            Just(DataType::Float64),
        ]
    }

    fn any_order() -> impl Strategy<Value = Order> {
        prop_oneof![Just(Order::Big), Just(Order::Little)]
    }

    proptest! {
        /// Any registers, any layout: a value or an error, never a panic; short input is
        /// always the `Short` error.
        #[test]
        fn never_panics(regs in proptest::collection::vec(any::<u16>(), 0..6),
                        t in any_type(), b in any_order(), w in any_order(), bit in 0u8..20) {
            let l = Layout { data_type: t, byte_order: b, word_order: w, bit };
            match decode(&regs, &l) {
                Ok(_) => prop_assert!(regs.len() >= usize::from(t.registers())),
                Err(DecodeError::Short { .. }) => prop_assert!(regs.len() < usize::from(t.registers())),
                Err(DecodeError::Bit(n)) => prop_assert!(n > 15 && t == DataType::Bool),
            }
        }

        /// What a device stores for a value under a layout decodes back to that value.
        #[test]
        fn round_trip_i32(v in any::<i32>(), b in any_order(), w in any_order()) {
            let l = lay(DataType::Int32, b, w);
            let regs = registers_for(&v.to_be_bytes(), &l);
            prop_assert_eq!(decode(&regs, &l).unwrap(), f64::from(v));
        }

        #[test]
        fn round_trip_u32(v in any::<u32>(), b in any_order(), w in any_order()) {
            let l = lay(DataType::Uint32, b, w);
            let regs = registers_for(&v.to_be_bytes(), &l);
            prop_assert_eq!(decode(&regs, &l).unwrap(), f64::from(v));
        }

        #[test]
        fn round_trip_i16(v in any::<i16>(), b in any_order()) {
            let l = lay(DataType::Int16, b, Order::Big);
            let regs = registers_for(&v.to_be_bytes(), &l);
            prop_assert_eq!(decode(&regs, &l).unwrap(), f64::from(v));
        }

        #[test]
        fn round_trip_i64(v in any::<i64>(), b in any_order(), w in any_order()) {
            let l = lay(DataType::Int64, b, w);
            let regs = registers_for(&v.to_be_bytes(), &l);
            prop_assert_eq!(decode(&regs, &l).unwrap(), v as f64);
        }

        #[test]
        fn round_trip_f32(v in any::<f32>().prop_filter("not NaN", |v| !v.is_nan()),
                          b in any_order(), w in any_order()) {
            let l = lay(DataType::Float32, b, w);
            let regs = registers_for(&v.to_be_bytes(), &l);
            prop_assert_eq!(decode(&regs, &l).unwrap(), f64::from(v));
        }

        #[test]
        fn round_trip_f64(v in any::<f64>().prop_filter("not NaN", |v| !v.is_nan()),
                          b in any_order(), w in any_order()) {
            let l = lay(DataType::Float64, b, w);
            let regs = registers_for(&v.to_be_bytes(), &l);
            prop_assert_eq!(decode(&regs, &l).unwrap(), v);
        }

        /// Byte and word order really matter: a value whose bytes differ decodes to
        /// something else under the swapped layout (no layout is silently ignored).
        #[test]
        fn word_order_is_applied(v in any::<u32>().prop_filter("halves differ", |v| (v >> 16) != (v & 0xFFFF))) {
            let big = lay(DataType::Uint32, Order::Big, Order::Big);
            let little = lay(DataType::Uint32, Order::Big, Order::Little);
            let regs = registers_for(&v.to_be_bytes(), &big);
            prop_assert_ne!(decode(&regs, &little).unwrap(), f64::from(v));
        }
    }
}
