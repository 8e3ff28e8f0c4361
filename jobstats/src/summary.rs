//! The compact, versioned summary of a finished job's [`Report`], stored at job end in the
//! job's `AdminComment` (through `sacctmgr`) and/or the [`crate::store`] table, so that the
//! report still works after Prometheus has forgotten the job's series.
//!
//! Format: `hpcmon1:` + base32 (RFC 4648 alphabet in **lower case**, no padding) of gzip of
//! a JSON document with short keys. Not base64: Slurm 22.05's `sacctmgr ... set
//! AdminComment=` lower-cases the value (quoted or not; seen on the real test cluster, see
//! `testdata/sacct/README.md`), and `scontrol update` refuses finished jobs, so anything
//! case-sensitive would not survive the epilog. Base32 costs 20% more than base64.
//! [`decode`] accepts either case. The `1` is the format version: [`decode`] refuses a newer
//! one with a clear message rather than guessing. What is kept:
//!
//! * the whole job header (exact: ids, times, limits, memory request);
//! * the usage window and every node's and every GPU's numbers, floats rounded to 3
//!   significant digits (a summary is advice input, not an audit record); node rows and GPU
//!   rows are JSON arrays, not objects, so 1024 nodes do not repeat 1024 sets of keys;
//! * not the notes and not the dashboard link: the reader recomputes them with its own
//!   (possibly newer) rules and Grafana URL. A decoded report has [`Source::Summary`].
//!
//! Only the characters `a-z2-7:` and the digit of the version appear, which `sacctmgr`
//! passes through unchanged (see [`crate::slurm::Slurm::set_admin_comment`]).
//!
//! **Size** (measured by the `sizes` test, `cargo test -p hpcmon-jobstats --lib
//! summary::tests::sizes -- --nocapture`: synthetic jobs, 64-core nodes with varied
//! per-node numbers, 4 GPUs per node with random UUIDs on the GPU jobs):
//!
//! | job | summary | full report JSON |
//! | --- | --- | --- |
//! | 1 node | 400 B | 786 B |
//! | 1 node, 4 GPUs | 637 B | 1.4 KB |
//! | 64 nodes | 1.9 KB | 12.8 KB |
//! | 64 nodes, 256 GPUs | 14.8 KB | 53 KB |
//! | 1024 nodes | 21.8 KB | 196 KB |
//! | 1024 nodes, 4096 GPUs | 224 KB | 844 KB |
//!
//! The GPU UUIDs (random, incompressible) dominate GPU jobs. slurmdbd keeps AdminComment in
//! a MariaDB `TEXT` column that **silently truncates at 65 535 bytes** (measured on the real
//! 22.05 test cluster: `sacctmgr` exits 0 and stores the first 65 535 bytes), so
//! [`crate::slurm::MAX_ADMIN_COMMENT`] refuses longer summaries — GPU jobs beyond roughly
//! 1200 GPUs (300 nodes of 4), CPU jobs beyond roughly 3000 nodes: keep those in the
//! [`crate::store`] table.
//! Typical jobs (up to a few dozen nodes) stay under 15 KB per slurmdbd row.
//!
//! Decoding never panics on any input (property-tested): every failure is a
//! [`SummaryError`] that says what is wrong with the text. A Princeton jobstats summary
//! (`JS1:`) is recognised and reported as "not ours".

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::model::{GpuUsage, JobHeader, NodeUsage, Report, Source, Usage, REPORT_VERSION};

/// The prefix of this version's summaries.
pub const PREFIX: &str = "hpcmon1:";

/// The most a summary may decompress to (a guard against gzip bombs): 64 MiB.
const MAX_JSON: u64 = 64 << 20;

/// Why a text is not a summary this program can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SummaryError {
    /// Not an hpcmon summary at all (empty, free text, another tool's).
    #[error("not an hpcmon-jobstats summary: {0}")]
    NotOurs(String),
    /// Written by a newer hpcmon-jobstats.
    #[error("summary format version {found} is newer than this hpcmon-jobstats reads (version {supported}): upgrade hpcmon-jobstats")]
    NewerVersion {
        /// The version found.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The base32 part is damaged.
    #[error("damaged hpcmon-jobstats summary: bad base32: {0}")]
    BadBase32(String),
    /// The compressed part is damaged.
    #[error("damaged hpcmon-jobstats summary: bad gzip data: {0}")]
    BadGzip(String),
    /// The JSON inside is damaged or not a summary.
    #[error("damaged hpcmon-jobstats summary: bad JSON: {0}")]
    BadJson(String),
}

/// The job header with short keys; every field kept exactly.
#[derive(Serialize, Deserialize)]
struct CJob {
    #[serde(rename = "i")]
    jobid: String,
    #[serde(rename = "r")]
    jobid_raw: String,
    #[serde(rename = "u")]
    user: String,
    #[serde(rename = "a")]
    account: String,
    #[serde(rename = "p")]
    partition: String,
    #[serde(rename = "n")]
    name: String,
    #[serde(rename = "s")]
    state: String,
    #[serde(rename = "l", default)]
    nodelist: String,
    #[serde(rename = "N")]
    nodes: u32,
    #[serde(rename = "c")]
    cpus: u32,
    #[serde(rename = "g", default)]
    gpus: u32,
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    mem: Option<f64>,
    #[serde(rename = "ts", default, skip_serializing_if = "Option::is_none")]
    submit: Option<i64>,
    #[serde(rename = "tb", default, skip_serializing_if = "Option::is_none")]
    start: Option<i64>,
    #[serde(rename = "te", default, skip_serializing_if = "Option::is_none")]
    end: Option<i64>,
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    elapsed: Option<f64>,
    #[serde(rename = "L", default, skip_serializing_if = "Option::is_none")]
    limit: Option<f64>,
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    exit: Option<String>,
}

/// A node row: node, cpus, cores_used, cpu_efficiency, mem_used, mem_peak, mem_limit, ooms.
#[derive(Serialize, Deserialize)]
struct CNode(
    String,
    f64,
    f64,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    f64,
);

/// A GPU row: node, uuid, utilization, mem_used_max, mem_total.
#[derive(Serialize, Deserialize)]
struct CGpu(String, String, Option<f64>, Option<f64>, Option<f64>);

#[derive(Serialize, Deserialize)]
struct CUsage {
    f: i64,
    t: i64,
    #[serde(default)]
    n: Vec<CNode>,
    #[serde(default)]
    g: Vec<CGpu>,
}

#[derive(Serialize, Deserialize)]
struct Compact {
    v: u32,
    j: CJob,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    u: Option<CUsage>,
}

/// `x` rounded to 3 significant digits; a non-finite value (which JSON cannot hold)
/// becomes 0.
pub fn round3(x: f64) -> f64 {
    if !x.is_finite() {
        return 0.0;
    }
    if x == 0.0 {
        return x;
    }
    format!("{x:.2e}").parse().unwrap_or(x)
}

fn finite(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

fn r(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite()).map(round3)
}

fn compact(report: &Report) -> Compact {
    let h = &report.job;
    Compact {
        v: REPORT_VERSION,
        j: CJob {
            jobid: h.jobid.clone(),
            jobid_raw: h.jobid_raw.clone(),
            user: h.user.clone(),
            account: h.account.clone(),
            partition: h.partition.clone(),
            name: h.name.clone(),
            state: h.state.clone(),
            nodelist: h.nodelist.clone(),
            nodes: h.nodes,
            cpus: h.cpus,
            gpus: h.gpus,
            mem: h.mem_requested_bytes.filter(|v| v.is_finite()),
            submit: h.submit_time,
            start: h.start_time,
            end: h.end_time,
            elapsed: h.elapsed_seconds.filter(|v| v.is_finite()),
            limit: h.time_limit_seconds.filter(|v| v.is_finite()),
            exit: h.exit_code.clone(),
        },
        u: report.usage.as_ref().map(|u| CUsage {
            f: u.from,
            t: u.to,
            n: u.nodes
                .iter()
                .map(|n| {
                    CNode(
                        n.node.clone(),
                        finite(n.cpus),
                        round3(n.cores_used),
                        r(n.cpu_efficiency),
                        r(n.mem_used_bytes),
                        r(n.mem_peak_bytes),
                        r(n.mem_limit_bytes),
                        finite(n.oom_kills),
                    )
                })
                .collect(),
            g: u.gpus
                .iter()
                .map(|g| {
                    CGpu(
                        g.node.clone(),
                        g.uuid.clone(),
                        r(g.utilization),
                        r(g.mem_used_max_bytes),
                        r(g.mem_total_bytes),
                    )
                })
                .collect(),
        }),
    }
}

fn expand(c: Compact) -> Report {
    let j = c.j;
    Report {
        version: REPORT_VERSION,
        job: JobHeader {
            jobid: j.jobid,
            jobid_raw: j.jobid_raw,
            user: j.user,
            account: j.account,
            partition: j.partition,
            name: j.name,
            state: j.state,
            nodelist: j.nodelist,
            nodes: j.nodes,
            cpus: j.cpus,
            gpus: j.gpus,
            mem_requested_bytes: j.mem,
            submit_time: j.submit,
            start_time: j.start,
            end_time: j.end,
            elapsed_seconds: j.elapsed,
            time_limit_seconds: j.limit,
            exit_code: j.exit,
        },
        source: Source::Summary,
        usage: c.u.map(|u| Usage {
            allocated_cpus: f64::from(j.cpus),
            from: u.f,
            to: u.t,
            nodes: u
                .n
                .into_iter()
                .map(|n| NodeUsage {
                    node: n.0,
                    cpus: n.1,
                    cores_used: n.2,
                    cpu_efficiency: n.3,
                    mem_used_bytes: n.4,
                    mem_peak_bytes: n.5,
                    mem_limit_bytes: n.6,
                    oom_kills: n.7,
                })
                .collect(),
            gpus: u
                .g
                .into_iter()
                .map(|g| GpuUsage {
                    node: g.0,
                    uuid: g.1,
                    utilization: g.2,
                    mem_used_max_bytes: g.3,
                    mem_total_bytes: g.4,
                })
                .collect(),
        }),
        notes: Vec::new(),
        dashboard_url: None,
    }
}

/// The summary of `report` (see the module docs for the format and its size). The notes
/// and the dashboard link are left out; usage floats are rounded to 3 significant digits.
pub fn encode(report: &Report) -> String {
    let json = serde_json::to_vec(&compact(report)).expect("summary JSON");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&json).expect("in-memory gzip");
    let bytes = gz.finish().expect("in-memory gzip");
    let mut out = String::with_capacity(PREFIX.len() + bytes.len() * 8 / 5 + 1);
    out.push_str(PREFIX);
    base32_encode(&bytes, &mut out);
    out
}

/// The report stored in `text` (an [`encode`] output, surrounding whitespace allowed, any
/// letter case), with `source` [`Source::Summary`], no notes and no dashboard link.
pub fn decode(text: &str) -> Result<Report, SummaryError> {
    let t = text.trim();
    let body = match t.get(..PREFIX.len()) {
        Some(p) if p.eq_ignore_ascii_case(PREFIX) => &t[PREFIX.len()..],
        _ => return Err(not_ours(t)),
    };
    let bytes = base32_decode(body).map_err(SummaryError::BadBase32)?;
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(bytes.as_slice())
        .take(MAX_JSON + 1)
        .read_to_end(&mut json)
        .map_err(|e| SummaryError::BadGzip(e.to_string()))?;
    if json.len() as u64 > MAX_JSON {
        return Err(SummaryError::BadGzip(format!(
            "decompresses to more than {} MiB",
            MAX_JSON >> 20
        )));
    }
    // The version first, so a newer layout is reported as such, not as bad JSON.
    #[derive(Deserialize)]
    struct V {
        v: u32,
    }
    let v: V = serde_json::from_slice(&json).map_err(|e| SummaryError::BadJson(e.to_string()))?;
    if v.v > REPORT_VERSION {
        return Err(SummaryError::NewerVersion {
            found: v.v,
            supported: REPORT_VERSION,
        });
    }
    let c: Compact =
        serde_json::from_slice(&json).map_err(|e| SummaryError::BadJson(e.to_string()))?;
    Ok(expand(c))
}

const B32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// RFC 4648 base32, lower case, no padding.
fn base32_encode(data: &[u8], out: &mut String) {
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    for &b in data {
        acc = (acc << 8) | u64::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(B32[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(B32[((acc << (5 - bits)) & 31) as usize] as char);
    }
}

/// Inverse of [`base32_encode`]; either case, `=` padding tolerated.
fn base32_decode(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    for (i, c) in s.bytes().enumerate() {
        let v = match c {
            b'a'..=b'z' => c - b'a',
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => {
                return Err(format!(
                    "invalid character {:?} at offset {i}",
                    s[i..].chars().next().unwrap_or('?')
                ))
            }
        };
        acc = (acc << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    // A valid encoding leaves fewer than 5 bits, all zero.
    if bits >= 5 || acc & ((1 << bits) - 1) != 0 {
        return Err("truncated or not a base32 encoding".into());
    }
    Ok(out)
}

fn not_ours(t: &str) -> SummaryError {
    if t.is_empty() {
        return SummaryError::NotOurs("the text is empty".into());
    }
    if t.starts_with("JS1:") {
        return SummaryError::NotOurs(
            "it is a Princeton jobstats summary (JS1:); read it with Princeton's jobstats".into(),
        );
    }
    if let Some(rest) = t.strip_prefix("hpcmon") {
        if let Some((n, _)) = rest.split_once(':') {
            if let Ok(found) = n.parse::<u32>() {
                if found > REPORT_VERSION {
                    return SummaryError::NewerVersion {
                        found,
                        supported: REPORT_VERSION,
                    };
                }
            }
        }
    }
    let mut head: String = t.chars().take(24).collect();
    if head.len() < t.len() {
        head.push('…');
    }
    SummaryError::NotOurs(format!("it does not start with {PREFIX:?} ({head:?})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Note, Severity};
    use proptest::prelude::*;

    /// A small deterministic generator (no rand dependency).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 11
        }
        fn unit(&mut self) -> f64 {
            (self.next() % 1_000_000) as f64 / 1_000_000.0
        }
    }

    fn report(nodes: usize, gpus_per_node: usize) -> Report {
        let mut g = Lcg(nodes as u64 * 31 + gpus_per_node as u64);
        let mut usage = Usage {
            allocated_cpus: 64.0 * nodes as f64,
            from: 1_795_661_727,
            to: 1_795_665_327,
            ..Default::default()
        };
        for i in 0..nodes {
            let node = format!("cn{:04}", i + 1);
            usage.nodes.push(NodeUsage {
                node: node.clone(),
                cpus: 64.0,
                cores_used: 64.0 * g.unit(),
                cpu_efficiency: Some(g.unit()),
                mem_used_bytes: Some(256e9 * g.unit()),
                mem_peak_bytes: Some(256e9 * g.unit()),
                mem_limit_bytes: Some(256.0 * 1024.0 * 1024.0 * 1024.0),
                oom_kills: 0.0,
            });
            for _ in 0..gpus_per_node {
                let uuid = format!(
                    "GPU-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                    g.next() as u32,
                    g.next() as u16,
                    g.next() as u16,
                    g.next() as u16,
                    g.next() & 0xffff_ffff_ffff
                );
                usage.gpus.push(GpuUsage {
                    node: node.clone(),
                    uuid,
                    utilization: Some(g.unit()),
                    mem_used_max_bytes: Some(80e9 * g.unit()),
                    mem_total_bytes: Some(85_899_345_920.0),
                });
            }
        }
        Report {
            version: REPORT_VERSION,
            job: JobHeader {
                jobid: "5_3".into(),
                jobid_raw: "5".into(),
                user: "alice".into(),
                account: "phys".into(),
                partition: "gpu".into(),
                name: "weird|name \"x\" é".into(),
                state: "COMPLETED".into(),
                nodelist: format!("cn[0001-{nodes:04}]"),
                nodes: nodes as u32,
                cpus: 64 * nodes as u32,
                gpus: (gpus_per_node * nodes) as u32,
                mem_requested_bytes: Some(512.0 * 1048576.0 * nodes as f64),
                submit_time: Some(1_795_661_700),
                start_time: Some(1_795_661_727),
                end_time: Some(1_795_665_327),
                elapsed_seconds: Some(3600.0),
                time_limit_seconds: Some(7200.0),
                exit_code: Some("0:0".into()),
            },
            source: Source::Prometheus,
            usage: Some(usage),
            notes: vec![Note {
                rule: "cpu".into(),
                severity: Severity::Warning,
                message: "use fewer cores".into(),
            }],
            dashboard_url: Some("https://grafana/d/job?var-jobid=5".into()),
        }
    }

    /// What decode(encode(r)) must give: rounded usage, no notes/link, source Summary.
    fn expected(r: &Report) -> Report {
        let mut e = r.clone();
        e.source = Source::Summary;
        e.notes.clear();
        e.dashboard_url = None;
        if let Some(u) = &mut e.usage {
            for n in &mut u.nodes {
                n.cores_used = round3(n.cores_used);
                n.cpu_efficiency = n.cpu_efficiency.map(round3);
                n.mem_used_bytes = n.mem_used_bytes.map(round3);
                n.mem_peak_bytes = n.mem_peak_bytes.map(round3);
                n.mem_limit_bytes = n.mem_limit_bytes.map(round3);
            }
            for g in &mut u.gpus {
                g.utilization = g.utilization.map(round3);
                g.mem_used_max_bytes = g.mem_used_max_bytes.map(round3);
                g.mem_total_bytes = g.mem_total_bytes.map(round3);
            }
        }
        e
    }

    #[test]
    fn roundtrip() {
        for (n, g) in [(1, 0), (3, 2)] {
            let r = report(n, g);
            let text = encode(&r);
            assert!(text.starts_with("hpcmon1:"));
            assert!(
                text[PREFIX.len()..]
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)),
                "{text}"
            );
            let d = decode(&text).unwrap();
            assert_eq!(d, expected(&r));
            // Survives sacctmgr's lower-casing (a no-op), an upper-cased copy and whitespace.
            assert_eq!(decode(&format!("  {}\n", text.to_uppercase())).unwrap(), d);
        }
        // No usage at all.
        let mut r = report(1, 0);
        r.usage = None;
        r.source = Source::None;
        assert_eq!(decode(&encode(&r)).unwrap(), expected(&r));
        // Non-finite numbers do not break the JSON.
        let mut r = report(1, 1);
        r.usage.as_mut().unwrap().nodes[0].cores_used = f64::NAN;
        r.usage.as_mut().unwrap().gpus[0].utilization = Some(f64::INFINITY);
        let d = decode(&encode(&r)).unwrap();
        assert_eq!(d.usage.as_ref().unwrap().nodes[0].cores_used, 0.0);
        assert_eq!(d.usage.as_ref().unwrap().gpus[0].utilization, None);
    }

    #[test]
    fn rounding() {
        assert_eq!(round3(0.123456), 0.123);
        assert_eq!(round3(123456789.0), 123000000.0);
        assert_eq!(round3(0.0), 0.0);
        assert_eq!(round3(-2.3456), -2.35);
        assert_eq!(round3(64.0), 64.0);
        assert_eq!(round3(f64::NAN), 0.0);
    }

    #[test]
    fn base32_known_vectors() {
        // RFC 4648 test vectors, lower case, without padding.
        for (i, o) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            let mut s = String::new();
            base32_encode(i.as_bytes(), &mut s);
            assert_eq!(s, o);
            assert_eq!(base32_decode(o).unwrap(), i.as_bytes());
            assert_eq!(base32_decode(&o.to_uppercase()).unwrap(), i.as_bytes());
        }
        assert!(base32_decode("m").is_err());
        assert!(base32_decode("mz").is_err(), "non-zero trailing bits");
        assert!(base32_decode("mzx!").is_err());
    }

    #[test]
    fn sizes() {
        let mut lines = Vec::new();
        for (n, g) in [(1, 0), (1, 4), (64, 0), (64, 4), (1024, 0), (1024, 4)] {
            let r = report(n, g);
            let text = encode(&r);
            let json = serde_json::to_vec(&r).unwrap().len();
            lines.push(format!(
                "{n:>5} nodes, {g} GPUs/node: summary {:>7} bytes (full report JSON {json} bytes)",
                text.len()
            ));
            assert_eq!(decode(&text).unwrap(), expected(&r));
        }
        println!("{}", lines.join("\n"));
        // The module docs quote these; keep them honest.
        assert!(encode(&report(1, 0)).len() < 1_000);
        assert!(encode(&report(64, 4)).len() < 30_000);
        assert!(encode(&report(1024, 0)).len() < crate::slurm::MAX_ADMIN_COMMENT);
        assert!(encode(&report(1024, 4)).len() > crate::slurm::MAX_ADMIN_COMMENT);
    }

    #[test]
    fn errors_are_clear() {
        let e = decode("").unwrap_err();
        assert_eq!(e, SummaryError::NotOurs("the text is empty".into()));
        let e = decode("JS1:H4sIAAAAAAAAA6tWKkktLlGyUlAqS8wpTVWqBQA=").unwrap_err();
        assert!(matches!(e, SummaryError::NotOurs(_)));
        assert!(e.to_string().contains("Princeton jobstats"), "{e}");
        let e = decode("please rerun with more memory").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("not an hpcmon-jobstats summary: it does not start with \"hpcmon1:\""),
            "{e}"
        );
        let e = decode("hpcmon2:abc").unwrap_err();
        assert_eq!(
            e,
            SummaryError::NewerVersion {
                found: 2,
                supported: 1
            }
        );
        assert!(e.to_string().contains("upgrade"), "{e}");
        let e = decode("hpcmon1:abc!").unwrap_err();
        assert!(matches!(e, SummaryError::BadBase32(_)), "{e}");
        let mut s = String::from(PREFIX);
        base32_encode(b"not gzip at all", &mut s);
        assert!(matches!(decode(&s).unwrap_err(), SummaryError::BadGzip(_)));
        let gz = |j: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(j).unwrap();
            let mut s = String::from(PREFIX);
            base32_encode(&e.finish().unwrap(), &mut s);
            s
        };
        assert!(matches!(
            decode(&gz(b"{\"v\":1}")).unwrap_err(),
            SummaryError::BadJson(_)
        ));
        assert!(matches!(
            decode(&gz(b"[1,2]")).unwrap_err(),
            SummaryError::BadJson(_)
        ));
        assert_eq!(
            decode(&gz(b"{\"v\":7,\"z\":[]}")).unwrap_err(),
            SummaryError::NewerVersion {
                found: 7,
                supported: 1
            }
        );
        // A gzip bomb is refused, not inflated into memory.
        let big = vec![b' '; (MAX_JSON + 10) as usize];
        assert!(matches!(
            decode(&gz(&big)).unwrap_err(),
            SummaryError::BadGzip(_)
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_text_never_panics(s in ".*") {
            let _ = decode(&s);
            let _ = decode(&format!("hpcmon1:{s}"));
        }

        #[test]
        fn base32ish_text_never_panics(s in "[a-z2-7A-Z=]{0,200}") {
            let _ = decode(&format!("hpcmon1:{s}"));
        }

        #[test]
        fn corrupted_encodings_never_panic(pos in 0usize..10_000, byte in any::<u8>(), cut in 0usize..10_000) {
            let good = encode(&report(2, 1));
            let mut b = good.clone().into_bytes();
            let i = pos % b.len();
            b[i] = byte;
            let s = String::from_utf8_lossy(&b).into_owned();
            match decode(&s) {
                Ok(r) => prop_assert_eq!(r.source, Source::Summary),
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
            let _ = decode(&good[..cut % good.len()]);
        }
    }
}
