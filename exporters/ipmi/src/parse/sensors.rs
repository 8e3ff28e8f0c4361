//! `ipmi-sensors --comma-separated-output --output-sensor-state --output-sensor-thresholds`
//! (and `ipmimonitoring --comma-separated-output`, which has the same columns minus the
//! thresholds). Columns are found by their header names, so either tool's output parses.
//!
//! ```text
//! ID,Name,Type,State,Reading,Units,Lower NR,Lower C,Lower NC,Upper NC,Upper C,Upper NR,Event
//! 3,CPU1 Temp,Temperature,Critical,95.00,C,N/A,N/A,N/A,80.00,90.00,100.00,'At or Above (>=) Upper Critical Threshold'
//! ```

use super::{number, split_csv, ParseError};

/// A sensor's state as FreeIPMI interprets it (its `sensor_state.conf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Nominal.
    Nominal,
    /// Warning.
    Warning,
    /// Critical.
    Critical,
    /// N/A or anything else.
    Unknown,
}

impl State {
    /// ipmi_exporter's encoding: 0 nominal, 1 warning, 2 critical, NaN otherwise.
    pub fn value(self) -> f64 {
        match self {
            State::Nominal => 0.0,
            State::Warning => 1.0,
            State::Critical => 2.0,
            State::Unknown => f64::NAN,
        }
    }

    /// Parses FreeIPMI's state word.
    pub fn parse(s: &str) -> State {
        match s.trim().to_ascii_lowercase().as_str() {
            "nominal" => State::Nominal,
            "warning" => State::Warning,
            "critical" => State::Critical,
            _ => State::Unknown,
        }
    }

    /// Lower-case name, for labels.
    pub fn name(self) -> &'static str {
        match self {
            State::Nominal => "nominal",
            State::Warning => "warning",
            State::Critical => "critical",
            State::Unknown => "unknown",
        }
    }
}

/// Threshold levels, in the order FreeIPMI prints them, with their `level` label values.
pub const LEVELS: [(&str, &str); 6] = [
    ("Lower NR", "lower_non_recoverable"),
    ("Lower C", "lower_critical"),
    ("Lower NC", "lower_non_critical"),
    ("Upper NC", "upper_non_critical"),
    ("Upper C", "upper_critical"),
    ("Upper NR", "upper_non_recoverable"),
];

/// One sensor row.
#[derive(Debug, Clone, PartialEq)]
pub struct Sensor {
    /// Record ID (ipmi_exporter's `id` label).
    pub id: String,
    /// Sensor name.
    pub name: String,
    /// Sensor type, e.g. `Temperature`, `Power Supply`.
    pub kind: String,
    /// Interpreted state.
    pub state: State,
    /// Reading in `unit`; `None` for N/A (discrete sensors).
    pub reading: Option<f64>,
    /// Unit as printed: `C`, `RPM`, `V`, `A`, `W`, `%`, `N/A`.
    pub unit: String,
    /// Readable thresholds: (`level` label, value in `unit`).
    pub thresholds: Vec<(&'static str, f64)>,
    /// The event text, e.g. `'OK'`.
    pub event: String,
}

/// Parsed output: the sensors and the number of rows that could not be read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sensors {
    /// Sensors in output order.
    pub sensors: Vec<Sensor>,
    /// Rows skipped as malformed.
    pub skipped: usize,
}

/// Parses the CSV output with its header line. Empty output is no sensors; output without
/// an `ID,Name,...` header is an error.
pub fn parse(text: &str) -> Result<Sensors, ParseError> {
    let mut lines = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Ok(Sensors::default());
    };
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    let col = |n: &str| cols.iter().position(|c| c.eq_ignore_ascii_case(n));
    let (Some(id), Some(name), Some(kind), Some(reading), Some(units)) = (
        col("ID"),
        col("Name"),
        col("Type"),
        col("Reading"),
        col("Units"),
    ) else {
        return Err(ParseError(format!(
            "no ID,Name,Type,Reading,Units header in {:?}",
            header.chars().take(80).collect::<String>()
        )));
    };
    let state = col("State");
    let event = col("Event");
    let thresholds: Vec<(usize, &'static str)> = LEVELS
        .iter()
        .filter_map(|(h, l)| col(h).map(|i| (i, *l)))
        .collect();
    let mut out = Sensors::default();
    for line in lines {
        let Some(f) = split_csv(line, cols.len()) else {
            out.skipped += 1;
            continue;
        };
        let id_s = f[id].trim();
        if id_s.is_empty() || !id_s.bytes().all(|b| b.is_ascii_digit()) {
            out.skipped += 1;
            continue;
        }
        out.sensors.push(Sensor {
            id: id_s.to_string(),
            name: f[name].trim().to_string(),
            kind: f[kind].trim().to_string(),
            state: state.map_or(State::Unknown, |i| State::parse(f[i])),
            reading: number(f[reading]),
            unit: f[units].trim().to_string(),
            thresholds: thresholds
                .iter()
                .filter_map(|(i, l)| number(f[*i]).map(|v| (*l, v)))
                .collect(),
            event: event.map_or(String::new(), |i| f[i].trim().to_string()),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOMINAL: &str = include_str!("../../testdata/samples/ipmi-sensors.csv");
    const CRITICAL: &str = include_str!("../../testdata/samples/ipmi-sensors-critical.csv");
    const MONITORING: &str = include_str!("../../testdata/samples/ipmimonitoring.csv");

    #[test]
    fn nominal_sample() {
        let s = parse(NOMINAL).unwrap();
        assert_eq!(s.skipped, 0);
        assert_eq!(s.sensors.len(), 5);
        let cpu = &s.sensors[0];
        assert_eq!(
            (cpu.id.as_str(), cpu.name.as_str(), cpu.kind.as_str()),
            ("3", "CPU1 Temp", "Temperature")
        );
        assert_eq!(cpu.state, State::Nominal);
        assert_eq!(cpu.reading, Some(45.0));
        assert_eq!(cpu.unit, "C");
        assert_eq!(
            cpu.thresholds,
            vec![
                ("upper_non_critical", 80.0),
                ("upper_critical", 90.0),
                ("upper_non_recoverable", 100.0)
            ]
        );
        let fan = &s.sensors[1];
        assert_eq!(fan.reading, Some(4800.0));
        assert_eq!(
            fan.thresholds,
            vec![("lower_critical", 500.0), ("lower_non_critical", 1000.0)]
        );
        let psu = &s.sensors[4];
        assert_eq!(psu.reading, None);
        assert_eq!(psu.kind, "Power Supply");
        assert_eq!(psu.event, "'Presence detected'");
    }

    #[test]
    fn critical_sample() {
        let s = parse(CRITICAL).unwrap();
        let states: Vec<State> = s.sensors.iter().map(|x| x.state).collect();
        assert_eq!(
            states,
            vec![
                State::Critical,
                State::Critical,
                State::Nominal,
                State::Nominal,
                State::Critical
            ]
        );
        assert_eq!(s.sensors[1].reading, Some(400.0));
        assert!(s.sensors[4].event.contains("Power Supply Failure detected"));
    }

    #[test]
    fn ipmimonitoring_columns() {
        let s = parse(MONITORING).unwrap();
        assert_eq!(s.sensors.len(), 5);
        assert!(s.sensors.iter().all(|x| x.thresholds.is_empty()));
        assert_eq!(s.sensors[2].reading, Some(12.0));
    }

    #[test]
    fn edge_cases() {
        assert_eq!(parse("").unwrap().sensors.len(), 0);
        assert!(parse("ipmi-sensors: connection timeout\n").is_err());
        // A short row and a non-numeric ID are skipped; an event with commas is kept whole;
        // a warning state and an unparseable reading.
        let t = "ID,Name,Type,State,Reading,Units,Event\n\
                 1,Short,Fan\n\
                 x,Bad,Fan,Nominal,1,RPM,'OK'\n\
                 9,PS Redundancy,Power Supply,Warning,garbage,N/A,'a, b' 'c'\n";
        let s = parse(t).unwrap();
        assert_eq!(s.skipped, 2);
        assert_eq!(s.sensors.len(), 1);
        assert_eq!(s.sensors[0].state, State::Warning);
        assert_eq!(s.sensors[0].reading, None);
        assert_eq!(s.sensors[0].event, "'a, b' 'c'");
        assert!(State::Unknown.value().is_nan());
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_with_header(s in "[0-9A-Za-z,./' \n-]*") {
            let _ = parse(&format!("ID,Name,Type,State,Reading,Units,Lower NR,Upper C,Event\n{s}"));
        }
    }
}
