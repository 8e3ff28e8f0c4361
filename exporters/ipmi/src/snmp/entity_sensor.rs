//! The built-in `entity_sensor` module: ENTITY-SENSOR-MIB (RFC 3433), which PDUs,
//! environment probes and many switches use for their temperature, humidity, current,
//! voltage, power and fan sensors, named by ENTITY-MIB's `entPhysicalName`.
//!
//! Each row of `entPhySensorTable` (1.3.6.1.2.1.99.1.1.1) gives a type, a scale (an SI
//! prefix, 9 = units), a precision (decimal places) and an integer value; the reading is
//! `value × 10^(3·(scale−9)) × 10^(−precision)`, exported per type in base units:
//!
//! | type | family |
//! | --- | --- |
//! | celsius (8) | `entity_sensor_temperature_celsius` |
//! | percentRH (9) | `entity_sensor_humidity_ratio` (0-1) |
//! | amperes (5) | `entity_sensor_current_amperes` |
//! | voltsAC (3), voltsDC (4) | `entity_sensor_voltage_volts{supply="ac"\|"dc"}` |
//! | watts (6) | `entity_sensor_power_watts` |
//! | hertz (7) | `entity_sensor_frequency_hertz` |
//! | rpm (10) | `entity_sensor_fan_speed_rpm` |
//! | cmm (11) | `entity_sensor_airflow_cubic_meters_per_second` |
//! | truthvalue (12) | `entity_sensor_truth_value` (1 true, 0 false) |
//! | other, unknown | `entity_sensor_value{units}` (the row's units text) |
//!
//! all with labels `index` (entPhysicalIndex) and `name` (entPhysicalName, empty when the
//! agent has none), plus `entity_sensor_oper_status{index,name,entity_sensor_oper_status}`
//! (state set: ok, unavailable, nonoperational). A sensor that is not `ok` has no reading.

use hpcmon_kit::MetricSet;

use super::render::{dotted, number, text, under, Answers, Rendered};

/// entPhySensorTable's entry.
pub const SENSOR_TABLE: &[u32] = &[1, 3, 6, 1, 2, 1, 99, 1, 1, 1];
/// entPhysicalName.
pub const PHYSICAL_NAME: &[u32] = &[1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1, 7];

const STATUS: [(i64, &str); 3] = [(1, "ok"), (2, "unavailable"), (3, "nonoperational")];

fn col(data: &Answers, column: u32, index: u32) -> Option<&async_snmp::Value> {
    let mut k = SENSOR_TABLE.to_vec();
    k.push(column);
    k.push(index);
    data.get(&k).filter(|v| !v.is_exception())
}

/// Adds the sensors found in `data`.
pub fn render(data: &Answers, max_rows: usize, out: &mut MetricSet) -> Rendered {
    let mut r = Rendered::default();
    let mut value_col = SENSOR_TABLE.to_vec();
    value_col.push(4);
    let indexes: Vec<u32> = under(data, &value_col)
        .filter_map(|(rest, _)| match rest {
            [i] => Some(*i),
            _ => None,
        })
        .collect();
    for (n, index) in indexes.into_iter().enumerate() {
        if n >= max_rows {
            r.dropped += 1;
            continue;
        }
        let mut name_key = PHYSICAL_NAME.to_vec();
        name_key.push(index);
        let name = data
            .get(&name_key)
            .and_then(|v| text(v, false))
            .unwrap_or_default();
        let idx = index.to_string();
        let int = |c: u32, default: i64| -> Result<i64, String> {
            match col(data, c, index) {
                None => Ok(default),
                Some(v) => number(v)
                    .filter(|x| x.fract() == 0.0)
                    .map(|x| x as i64)
                    .ok_or_else(|| format!("column {c} is {}, not an integer", v.kind().as_str())),
            }
        };
        let row = (|| -> Result<(), String> {
            let kind = int(1, 1)?;
            let scale = int(2, 9)?;
            let precision = int(3, 0)?;
            let status = int(5, 1)?;
            if !(1..=17).contains(&scale) {
                return Err(format!("scale {scale} is not 1..17"));
            }
            if !(-8..=9).contains(&precision) {
                return Err(format!("precision {precision} is not -8..9"));
            }
            let f = out.gauge(
                "entity_sensor_oper_status",
                "Operational status of an ENTITY-SENSOR-MIB sensor (1 for the current state).",
            );
            for (k, s) in STATUS {
                f.sample(
                    &[
                        ("index", &idx),
                        ("name", &name),
                        ("entity_sensor_oper_status", s),
                    ],
                    if k == status { 1.0 } else { 0.0 },
                );
            }
            if status != 1 {
                return Ok(());
            }
            let raw = col(data, 4, index).ok_or("no value")?;
            let raw = number(raw)
                .ok_or_else(|| format!("value is {}, not a number", raw.kind().as_str()))?;
            // × 10^exp, dividing for negative exponents: exact decimals (see crate::scale).
            let exp = (3 * (scale - 9) - precision) as i32;
            let v = if exp < 0 {
                raw / 10f64.powi(-exp)
            } else {
                raw * 10f64.powi(exp)
            };
            let (family, help, v, extra): (&str, &str, f64, Option<(&str, String)>) = match kind {
                8 => (
                    "entity_sensor_temperature_celsius",
                    "Temperature sensor reading, degrees Celsius.",
                    v,
                    None,
                ),
                9 => (
                    "entity_sensor_humidity_ratio",
                    "Relative humidity sensor reading (0-1).",
                    v / 100.0,
                    None,
                ),
                5 => (
                    "entity_sensor_current_amperes",
                    "Current sensor reading, amperes.",
                    v,
                    None,
                ),
                3 | 4 => (
                    "entity_sensor_voltage_volts",
                    "Voltage sensor reading, volts.",
                    v,
                    Some(("supply", if kind == 3 { "ac" } else { "dc" }.to_string())),
                ),
                6 => (
                    "entity_sensor_power_watts",
                    "Power sensor reading, watts.",
                    v,
                    None,
                ),
                7 => (
                    "entity_sensor_frequency_hertz",
                    "Frequency sensor reading, hertz.",
                    v,
                    None,
                ),
                10 => (
                    "entity_sensor_fan_speed_rpm",
                    "Fan speed sensor reading, revolutions per minute.",
                    v,
                    None,
                ),
                11 => (
                    "entity_sensor_airflow_cubic_meters_per_second",
                    "Airflow sensor reading, cubic meters per second.",
                    v / 60.0,
                    None,
                ),
                12 => (
                    "entity_sensor_truth_value",
                    "Truth-value sensor (1 true, 0 false).",
                    if raw == 1.0 { 1.0 } else { 0.0 },
                    None,
                ),
                _ => (
                    "entity_sensor_value",
                    "Reading of a sensor of another type, in its own units (label units).",
                    v,
                    Some((
                        "units",
                        col(data, 6, index)
                            .and_then(|u| text(u, false))
                            .unwrap_or_default(),
                    )),
                ),
            };
            let mut labels = vec![
                ("index".to_string(), idx.clone()),
                ("name".to_string(), name.clone()),
            ];
            if let Some((k, val)) = extra {
                labels.push((k.to_string(), val));
            }
            out.gauge(family, help).sample_owned(labels, v);
            Ok(())
        })();
        if let Err(e) = row {
            r.errors.push(format!(
                "entPhySensor row {} ({}.*.{index}): {e}",
                idx,
                dotted(SENSOR_TABLE)
            ));
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_snmp::Value;
    use proptest::prelude::*;

    /// One sensor row: `cols` = type, scale, precision, value, status.
    fn row(d: &mut Answers, i: u32, cols: [i32; 5], name: &str) {
        for (c, v) in (1..=5).zip(cols) {
            let mut k = SENSOR_TABLE.to_vec();
            k.extend([c, i]);
            d.insert(k, Value::Integer(v));
        }
        let mut k = PHYSICAL_NAME.to_vec();
        k.push(i);
        d.insert(k, Value::from(name));
    }

    #[test]
    fn readings_in_base_units() {
        let mut d = Answers::new();
        row(&mut d, 1, [8, 9, 1, 245, 1], "Room Temperature");
        row(&mut d, 2, [9, 9, 0, 45, 1], "Room Humidity");
        row(&mut d, 11, [5, 9, 1, 102, 1], "Phase L1 Current");
        row(&mut d, 12, [5, 8, 0, 9800, 1], "Phase L2 Current"); // milli
        row(&mut d, 20, [3, 9, 0, 230, 1], "Inlet");
        row(&mut d, 21, [6, 10, 2, 312, 1], "Total"); // kilo, 2 decimals: 3.12 kW
        row(&mut d, 30, [8, 9, 0, 99, 2], "Broken probe");
        let mut out = MetricSet::new();
        let r = render(&d, 100, &mut out);
        assert_eq!(r, Rendered::default());
        out.normalize();
        let t = hpcmon_kit::metrics::encode_text(&out);
        for want in [
            "entity_sensor_temperature_celsius{index=\"1\",name=\"Room Temperature\"} 24.5\n",
            "entity_sensor_humidity_ratio{index=\"2\",name=\"Room Humidity\"} 0.45\n",
            "entity_sensor_current_amperes{index=\"11\",name=\"Phase L1 Current\"} 10.2\n",
            "entity_sensor_current_amperes{index=\"12\",name=\"Phase L2 Current\"} 9.8\n",
            "entity_sensor_voltage_volts{index=\"20\",name=\"Inlet\",supply=\"ac\"} 230\n",
            "entity_sensor_power_watts{index=\"21\",name=\"Total\"} 3120\n",
            "entity_sensor_oper_status{index=\"30\",name=\"Broken probe\",entity_sensor_oper_status=\"unavailable\"} 1\n",
        ] {
            assert!(t.contains(want), "{want} in\n{t}");
        }
        assert!(!t.contains("Broken probe\"} 99"), "{t}");
    }

    #[test]
    fn golden_probe_walk() {
        let d = crate::snmp::render::tests::parse_walk(include_str!(
            "../../testdata/snmp/entity-sensor.walk"
        ));
        let mut out = MetricSet::new();
        assert_eq!(render(&d, 100, &mut out), Rendered::default());
        out.normalize();
        crate::collector::testutil::golden(
            "snmp/entity_sensor.prom",
            &hpcmon_kit::metrics::encode_text(&out),
        );
    }

    #[test]
    fn malformed_rows_are_reported() {
        let mut d = Answers::new();
        row(&mut d, 1, [8, 40, 0, 1, 1], "x");
        let mut k = SENSOR_TABLE.to_vec();
        k.extend([4, 2]);
        d.insert(k, Value::from("warm"));
        let mut out = MetricSet::new();
        let r = render(&d, 100, &mut out);
        assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
        assert!(r.errors[0].contains("scale 40"), "{:?}", r.errors);
        assert!(r.errors[1].contains("not a number"), "{:?}", r.errors);
    }

    proptest! {
        #[test]
        fn any_rows_never_panic(rows in proptest::collection::vec(
            (1u32..40, any::<i32>(), any::<i32>(), any::<i32>(), any::<i32>(), 0i32..5), 0..30)) {
            let mut d = Answers::new();
            for (i, kind, scale, prec, val, status) in rows {
                row(&mut d, i, [kind.rem_euclid(14), scale.rem_euclid(20), prec.rem_euclid(20) - 10, val, status], "s");
            }
            let mut out = MetricSet::new();
            let r = render(&d, 10, &mut out);
            prop_assert!(r.dropped <= 40);
            for f in out.families() {
                for s in &f.samples {
                    prop_assert!(s.value.is_finite(), "{} {:?}", f.name, s);
                }
            }
        }
    }
}
