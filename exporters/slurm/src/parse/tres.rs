//! TRES strings (`cpu=4,mem=8G,node=1,billing=4,gres/gpu=2`, `gres/gpu:a100=2`) and GRES
//! strings (`gpu:a100:2(S:0-1)`, `gpu:2`, `gres:gpu:a100:1`, `gpu:a100:1(IDX:0,2)`).

use super::{memory_bytes, number, split_outside_parens, MB};

/// The resources of one TRES string that the exporter reports.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Tres {
    /// `cpu=`
    pub cpus: f64,
    /// `mem=`, in bytes.
    pub memory_bytes: f64,
    /// `node=`
    pub nodes: f64,
    /// `gres/gpu=`, or the sum of the typed `gres/gpu:TYPE=` entries when the untyped total
    /// is absent.
    pub gpus: f64,
}

/// Parses a TRES string; unknown or malformed entries are ignored.
pub fn parse_tres(s: &str) -> Tres {
    let mut t = Tres::default();
    let mut gpu_total = None;
    let mut gpu_typed = 0.0;
    for item in s.trim().split(',') {
        let Some((k, v)) = item.split_once('=') else {
            continue;
        };
        match k.trim() {
            "cpu" => t.cpus = number(v).unwrap_or(0.0),
            "mem" => t.memory_bytes = memory_bytes(v, MB).unwrap_or(0.0),
            "node" => t.nodes = number(v).unwrap_or(0.0),
            "gres/gpu" => gpu_total = number(v),
            k if k.starts_with("gres/gpu:") => gpu_typed += number(v).unwrap_or(0.0),
            _ => {}
        }
    }
    t.gpus = gpu_total.unwrap_or(gpu_typed);
    t
}

/// Number of GPUs in a GRES string (`sinfo %G`/`GresUsed`, `squeue tres-per-node`): the
/// count of every `gpu` entry, with or without a type and a `gres:`/`gres/` prefix.
pub fn gres_gpus(s: &str) -> f64 {
    gres_gpu_types(s).iter().map(|(_, n)| n).sum()
}

fn add_type(v: &mut Vec<(String, f64)>, t: &str, n: f64) {
    match v.iter_mut().find(|(k, _)| k == t) {
        Some(e) => e.1 += n,
        None => v.push((t.to_string(), n)),
    }
}

/// GPUs of a GRES string by GRES type (`gpu:a100:2,gpu:v100:1`); untyped entries
/// (`gpu:2`) under the type `""`.
pub fn gres_gpu_types(s: &str) -> Vec<(String, f64)> {
    let mut v = Vec::new();
    if super::non_empty(s).is_none() || !s.contains("gpu") {
        return v;
    }
    for item in split_outside_parens(s.trim(), ',') {
        let item = item.split('(').next().unwrap_or("").trim();
        let item = item
            .strip_prefix("gres:")
            .or_else(|| item.strip_prefix("gres/"))
            .unwrap_or(item);
        let mut parts = item.split(':');
        if parts.next() != Some("gpu") {
            continue;
        }
        let rest: Vec<&str> = parts.collect();
        // `gpu` alone means 1; `gpu:a100` is a type without a count (1).
        let (ty, count) = match rest.as_slice() {
            [] => ("", 1.0),
            [c] => match number(c) {
                Some(n) => ("", n),
                None => (*c, 1.0),
            },
            [t, .., c] => (*t, number(c).unwrap_or(0.0)),
        };
        add_type(&mut v, ty, count);
    }
    v
}

/// GPUs of a TRES string by GRES type: the typed `gres/gpu:TYPE=` entries, and whatever
/// of the untyped `gres/gpu=` total they do not cover under the type `""`.
pub fn tres_gpu_types(s: &str) -> Vec<(String, f64)> {
    let mut v = Vec::new();
    let mut total = None;
    for item in s.trim().split(',') {
        let Some((k, n)) = item.split_once('=') else {
            continue;
        };
        match k.trim() {
            "gres/gpu" => total = number(n),
            k => {
                if let Some(t) = k.strip_prefix("gres/gpu:") {
                    add_type(&mut v, t, number(n).unwrap_or(0.0));
                }
            }
        }
    }
    let typed: f64 = v.iter().map(|(_, n)| n).sum();
    if let Some(t) = total {
        if t > typed {
            add_type(&mut v, "", t - typed);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tres_strings() {
        let t = parse_tres("cpu=4,mem=8G,node=1,billing=4,gres/gpu=2");
        assert_eq!(
            t,
            Tres {
                cpus: 4.0,
                memory_bytes: 8.0 * 1024.0 * MB,
                nodes: 1.0,
                gpus: 2.0
            }
        );
        let t = parse_tres("cpu=2,mem=500M,node=1,billing=2,gres/gpu=2,gres/gpu:a100=2");
        assert_eq!(t.gpus, 2.0);
        let t = parse_tres("cpu=2,gres/gpu:a100=2,gres/gpu:v100=1");
        assert_eq!(t.gpus, 3.0);
        let t = parse_tres("cpu=1,mem=1500,node=1");
        assert_eq!(t.memory_bytes, 1500.0 * MB);
        assert_eq!(parse_tres(""), Tres::default());
        assert_eq!(parse_tres("N/A"), Tres::default());
        assert_eq!(parse_tres("cpu=abc,=,,mem"), Tres::default());
    }

    #[test]
    fn gres_strings() {
        assert_eq!(gres_gpus("gpu:a100:2"), 2.0);
        assert_eq!(gres_gpus("gpu:a100:2(S:0-1)"), 2.0);
        assert_eq!(gres_gpus("gpu:a100:1(IDX:0,2),mps:100"), 1.0);
        assert_eq!(gres_gpus("gpu:2,gpu:v100:1"), 3.0);
        assert_eq!(gres_gpus("gres:gpu:2"), 2.0);
        assert_eq!(gres_gpus("gres/gpu:a100:1"), 1.0);
        assert_eq!(gres_gpus("gpu:0"), 0.0);
        assert_eq!(gres_gpus("(null)"), 0.0);
        assert_eq!(gres_gpus("N/A"), 0.0);
        assert_eq!(gres_gpus("mps:100"), 0.0);
        assert_eq!(gres_gpus("gpu:a100"), 1.0);
    }

    #[test]
    fn gpu_types() {
        let t = |v: &[(&str, f64)]| {
            v.iter()
                .map(|(k, n)| (k.to_string(), *n))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            gres_gpu_types("gpu:a100:2(S:0-1),gpu:v100:1,gpu:2"),
            t(&[("a100", 2.0), ("v100", 1.0), ("", 2.0)])
        );
        assert_eq!(
            gres_gpu_types("gres:gpu:a100:1(IDX:0),mps:100"),
            t(&[("a100", 1.0)])
        );
        assert_eq!(gres_gpu_types("(null)"), t(&[]));
        assert_eq!(
            tres_gpu_types("cpu=2,gres/gpu=3,gres/gpu:a100=2"),
            t(&[("a100", 2.0), ("", 1.0)])
        );
        assert_eq!(
            tres_gpu_types("gres/gpu:a100=2,gres/gpu:v100=1"),
            t(&[("a100", 2.0), ("v100", 1.0)])
        );
        assert_eq!(tres_gpu_types("cpu=1,gres/gpu=2"), t(&[("", 2.0)]));
        assert_eq!(tres_gpu_types("cpu=1"), t(&[]));
    }
}
