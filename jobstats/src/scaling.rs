//! Scaling prediction from accounting history, as ACMS does it: the run times of the same
//! program at several core counts give the speedup, the efficiency and the Karp–Flatt
//! metric; a line fitted to the metric predicts the run time at other core counts.
//!
//! # Method
//!
//! 1. [`group_runs`]: runs of the same user and job name (and batch-script hash, where
//!    Slurm stores it) form a group. Only `COMPLETED` runs of at least [`MIN_RUN_SECONDS`]
//!    count: failed or cancelled runs did not do the whole work, very short ones are
//!    dominated by start-up.
//! 2. For each core count `p` the **median** run time `T(p)` ([`Point`]).
//! 3. `T1` is the median at `p = 1` when there is one. Speedup `S(p) = T1 / T(p)`,
//!    efficiency `E(p) = S(p) / p`, and for `p > 1` the Karp–Flatt metric (the
//!    experimentally determined serial fraction)
//!    `e(p) = (1/S − 1/p) / (1 − 1/p)`, equivalently `e(p) = (p·T(p)/T1 − 1) / (p − 1)`.
//! 4. A least-squares line `e(p) = a + b·p` through the Karp–Flatt values (`b` grows with
//!    parallel overhead; `b = 0` is Amdahl's law with serial fraction `a`). With a single
//!    Karp–Flatt value the slope cannot be known and `b = 0` is assumed (Amdahl).
//! 5. Predictions, from Karp–Flatt solved for the run time:
//!    `T(p) = T1 · (e(p) + (1 − e(p)) / p)`, `S = T1 / T(p)`, `E = S / p`.
//!
//! ## T1 without a 1-core run
//!
//! Then `T1` is a third unknown besides `a` and `b`. For a candidate `T1` the Karp–Flatt
//! values of all measured points are computed, `a` and `b` are refit to them by least
//! squares, and the model's run times are compared with the measured ones; the estimate is
//! the `T1` minimising the sum of squared **relative** errors
//! `Σ ((T_model(p) − T(p)) / T(p))²`. The search runs over
//! `[T(p_min), p_min · T(p_min)]` (between "no speedup at all up to `p_min`" and "perfect
//! speedup up to `p_min`"): a dense logarithmic grid of 400 candidates, then a
//! golden-section refinement around the best one. A changed `T1` adds a term
//! `(c − 1)/(p − 1)` to every `e(p)`, which is not linear in `p`, so with three or more core
//! counts the minimum is unique for data that follow the model. With only two core counts
//! (and no 1-core run) the slope is fixed at `b = 0` (Amdahl) so that two points determine
//! `T1` and `a`; a warning says so. [`Analysis::t1_estimated`] is then `true`.
//!
//! ## Warnings (in [`Analysis::warnings`])
//!
//! - two core counts only: "the fit is exact on two points; treat as rough" (three: the
//!   model still fits them exactly);
//! - noisy data: run times at one core count spread by more than 20% of their median;
//! - super-linear speedup (`S(p) > p`) or a negative Karp–Flatt value: different problem
//!   sizes or inputs suspected;
//! - the model misses a measured point by more than 10%;
//! - predictions beyond twice the largest measured core count (extrapolation);
//! - a `T1` estimate on the edge of its search range;
//! - predictions that come out non-positive (dropped).
//!
//! One core count only is an error ([`ScalingError::OneCoreCount`]), not a prediction.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::model::Run;

/// Runs shorter than this (seconds) are ignored.
pub const MIN_RUN_SECONDS: f64 = 30.0;

/// Relative spread of run times at one core count above which the data are called noisy.
pub const NOISE_SPREAD: f64 = 0.2;

/// The runs of one program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// User name.
    pub user: String,
    /// Job name.
    pub name: String,
    /// Batch-script hash, where Slurm stores it.
    pub script_hash: Option<String>,
    /// The runs, by core count then end time.
    pub runs: Vec<Run>,
}

/// Groups runs by user, job name and script hash; keeps `COMPLETED` runs of at least
/// [`MIN_RUN_SECONDS`] with a core count. Groups sorted by user, name, hash.
pub fn group_runs(runs: &[Run]) -> Vec<Group> {
    let mut groups: BTreeMap<(String, String, Option<String>), Vec<Run>> = BTreeMap::new();
    for r in runs.iter().filter(|r| usable(r)) {
        groups
            .entry((r.user.clone(), r.name.clone(), r.script_hash.clone()))
            .or_default()
            .push(r.clone());
    }
    groups
        .into_iter()
        .map(|((user, name, script_hash), mut runs)| {
            runs.sort_by(|a, b| a.cpus.cmp(&b.cpus).then(a.end_time.cmp(&b.end_time)));
            Group {
                user,
                name,
                script_hash,
                runs,
            }
        })
        .collect()
}

fn usable(r: &Run) -> bool {
    r.state == "COMPLETED" && valid(r) && r.elapsed_seconds >= MIN_RUN_SECONDS
}

fn valid(r: &Run) -> bool {
    r.cpus > 0 && r.elapsed_seconds.is_finite() && r.elapsed_seconds > 0.0
}

/// The median run time at one core count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Cores.
    pub cpus: u32,
    /// Median run time, seconds.
    pub seconds: f64,
    /// Runs behind the median.
    pub n: usize,
}

/// The model's run time at one core count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Cores.
    pub cpus: u32,
    /// Predicted run time, seconds.
    pub seconds: f64,
    /// `T1 / seconds`.
    pub speedup: f64,
    /// `speedup / cpus`.
    pub efficiency: f64,
}

/// The result of [`analyse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Measured points, by core count.
    pub points: Vec<Point>,
    /// The 1-core run time, seconds (measured, or estimated when `t1_estimated`).
    pub t1: f64,
    /// Whether `t1` comes from the fit (no 1-core run).
    pub t1_estimated: bool,
    /// Karp–Flatt value of each measured point with more than one core.
    pub karp_flatt: Vec<(u32, f64)>,
    /// `a` of the fit `e(p) = a + b·p`.
    pub e_intercept: f64,
    /// `b` of the fit `e(p) = a + b·p`.
    pub e_slope: f64,
    /// Predictions at the requested core counts.
    pub predictions: Vec<Prediction>,
    /// Plain warnings about the data and the predictions.
    pub warnings: Vec<String>,
}

impl Analysis {
    /// The model's Karp–Flatt value at `p`.
    pub fn e_at(&self, p: f64) -> f64 {
        self.e_intercept + self.e_slope * p
    }
    /// The model's run time at `p` cores: `T1 · (e(p) + (1 − e(p)) / p)`.
    pub fn time_at(&self, p: f64) -> f64 {
        model_time(self.t1, self.e_intercept, self.e_slope, p)
    }
}

/// Why no prediction could be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScalingError {
    /// No usable run.
    #[error("no usable runs (finished runs with a core count and a run time)")]
    NoRuns,
    /// All runs at one core count.
    #[error("all {runs} run(s) used {cpus} cores: a prediction needs run times at two or more core counts")]
    OneCoreCount {
        /// The only core count.
        cpus: u32,
        /// Runs at it.
        runs: usize,
    },
    /// The numbers do not allow a fit.
    #[error("the run times do not allow a fit: {0}")]
    Degenerate(String),
}

fn model_time(t1: f64, a: f64, b: f64, p: f64) -> f64 {
    let e = a + b * p;
    t1 * (e + (1.0 - e) / p)
}

/// Karp–Flatt value at `p > 1` from `T1` and `T(p)`.
fn karp_flatt(t1: f64, p: f64, tp: f64) -> f64 {
    (p * tp / t1 - 1.0) / (p - 1.0)
}

/// Least-squares line through (x, y); with one x (or `flat`) the slope is 0.
fn fit_line(xy: &[(f64, f64)], flat: bool) -> (f64, f64) {
    let n = xy.len() as f64;
    let mx = xy.iter().map(|p| p.0).sum::<f64>() / n;
    let my = xy.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = xy.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if flat || xy.len() < 2 || sxx == 0.0 {
        return (my, 0.0);
    }
    let sxy: f64 = xy.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let b = sxy / sxx;
    (my - b * mx, b)
}

/// Fits e(p) for a given T1 over the points with p > 1; returns (a, b).
fn fit_for(t1: f64, pts: &[(f64, f64)], flat: bool) -> (f64, f64) {
    let kf: Vec<(f64, f64)> = pts
        .iter()
        .filter(|(p, _)| *p > 1.0)
        .map(|(p, t)| (*p, karp_flatt(t1, *p, *t)))
        .collect();
    fit_line(&kf, flat)
}

fn rel_error(t1: f64, pts: &[(f64, f64)], flat: bool) -> f64 {
    let (a, b) = fit_for(t1, pts, flat);
    pts.iter()
        .map(|(p, t)| ((model_time(t1, a, b, *p) - t) / t).powi(2))
        .sum()
}

/// Estimates T1 (see the module docs); returns (T1, on the edge of the range).
fn estimate_t1(pts: &[(f64, f64)], flat: bool) -> (f64, bool) {
    let (pmin, tmin) = pts[0];
    let (lo, hi) = (tmin, pmin * tmin);
    let (llo, lhi) = (lo.ln(), hi.ln());
    const N: usize = 400;
    let x = |i: usize| (llo + (lhi - llo) * i as f64 / N as f64).exp();
    let f = |t1: f64| {
        let v = rel_error(t1, pts, flat);
        if v.is_finite() {
            v
        } else {
            f64::INFINITY
        }
    };
    let mut best = 0;
    let mut best_v = f64::INFINITY;
    for i in 0..=N {
        let v = f(x(i));
        if v < best_v {
            best_v = v;
            best = i;
        }
    }
    // Golden-section search in log T1 over the neighbouring grid cells.
    let (mut a, mut b) = (x(best.saturating_sub(1)).ln(), x((best + 1).min(N)).ln());
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let mut c = b - g * (b - a);
    let mut d = a + g * (b - a);
    let (mut fc, mut fd) = (f(c.exp()), f(d.exp()));
    for _ in 0..200 {
        if (b - a).abs() < 1e-13 {
            break;
        }
        if fc <= fd {
            b = d;
            d = c;
            fd = fc;
            c = b - g * (b - a);
            fc = f(c.exp());
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + g * (b - a);
            fd = f(d.exp());
        }
    }
    let mut t1 = ((a + b) / 2.0).exp();
    if f(x(best)) < f(t1) {
        t1 = x(best);
    }
    let edge = (best == 0 || best == N) && (t1 / lo - 1.0 < 1e-3 || 1.0 - t1 / hi < 1e-3);
    (t1, edge)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Default prediction core counts: the measured ones, plus powers of two up to 4× the
/// largest measured.
fn default_counts(points: &[Point]) -> Vec<u32> {
    let max = points.iter().map(|p| p.cpus).max().unwrap_or(1) as u64;
    let mut v: Vec<u32> = points.iter().map(|p| p.cpus).collect();
    let mut p: u64 = 1;
    while p <= max.saturating_mul(4) && p <= u32::MAX as u64 {
        v.push(p as u32);
        p *= 2;
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// Analyses a group's runs and predicts the run time at `predict_at` core counts (empty:
/// the measured counts plus powers of two up to 4× the largest measured).
pub fn analyse(group: &Group, predict_at: &[u32]) -> Result<Analysis, ScalingError> {
    let mut by_p: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    for r in group.runs.iter().filter(|r| valid(r)) {
        by_p.entry(r.cpus).or_default().push(r.elapsed_seconds);
    }
    let mut warnings = Vec::new();
    let mut points = Vec::new();
    for (p, mut ts) in by_p {
        let n = ts.len();
        let m = median(&mut ts);
        let spread = (ts[n - 1] - ts[0]) / m;
        if n > 1 && spread > NOISE_SPREAD {
            warnings.push(format!(
                "noisy data: the {n} runs at {p} cores differ by {:.0}% of their median ({:.0} to {:.0} s); predictions are uncertain",
                spread * 100.0,
                ts[0],
                ts[n - 1]
            ));
        }
        points.push(Point {
            cpus: p,
            seconds: m,
            n,
        });
    }
    match points.as_slice() {
        [] => return Err(ScalingError::NoRuns),
        [only] => {
            return Err(ScalingError::OneCoreCount {
                cpus: only.cpus,
                runs: only.n,
            })
        }
        _ => {}
    }
    let pts: Vec<(f64, f64)> = points.iter().map(|p| (p.cpus as f64, p.seconds)).collect();
    let k = points.len();
    let (t1, t1_estimated, flat) = if points[0].cpus == 1 {
        // One Karp–Flatt value (p = 1 and one other count): slope unknown, Amdahl.
        (points[0].seconds, false, k == 2)
    } else {
        let flat = k == 2;
        let (t1, edge) = estimate_t1(&pts, flat);
        if edge {
            warnings.push(format!(
                "the estimate of T1 ({t1:.0} s) lies on the edge of its plausible range [{:.0}, {:.0}] s: the run times do not follow the model; add a run on fewer cores",
                pts[0].1,
                pts[0].0 * pts[0].1
            ));
        }
        if flat {
            warnings.push(
                "no 1-core run and two core counts only: a constant serial fraction (Amdahl, e(p) = a) was assumed to estimate T1".into(),
            );
        }
        (t1, true, flat)
    };
    if !(t1.is_finite() && t1 > 0.0) {
        return Err(ScalingError::Degenerate(format!("T1 = {t1}")));
    }
    let (a, b) = fit_for(t1, &pts, flat);
    if !(a.is_finite() && b.is_finite()) {
        return Err(ScalingError::Degenerate(
            "the Karp–Flatt fit is not finite".into(),
        ));
    }
    if k == 2 {
        warnings.insert(
            0,
            format!(
                "only two core counts ({} and {}): the fit is exact on two points; treat the predictions as rough",
                points[0].cpus, points[1].cpus
            ),
        );
    } else if k == 3 {
        warnings.insert(0, "only three core counts: the model fits them exactly, nothing checks it; treat the predictions as rough".into());
    }
    let karp_flatt: Vec<(u32, f64)> = points
        .iter()
        .filter(|p| p.cpus > 1)
        .map(|p| (p.cpus, karp_flatt(t1, p.cpus as f64, p.seconds)))
        .collect();
    let superlinear: Vec<String> = points
        .iter()
        .filter(|p| p.cpus > 1 && t1 / p.seconds > p.cpus as f64 * 1.02)
        .map(|p| format!("{} cores (speedup {:.2})", p.cpus, t1 / p.seconds))
        .collect();
    let negative: Vec<String> = karp_flatt
        .iter()
        .filter(|(_, e)| *e < -0.01)
        .map(|(p, e)| format!("{p} cores (e = {e:.3})"))
        .collect();
    if !superlinear.is_empty() {
        warnings.push(format!(
            "super-linear speedup at {}: different problem sizes or inputs suspected; check that the runs did the same work",
            superlinear.join(", ")
        ));
    } else if !negative.is_empty() {
        warnings.push(format!(
            "negative Karp–Flatt value at {}: different problem sizes or inputs suspected",
            negative.join(", ")
        ));
    }
    let misses: Vec<String> = pts
        .iter()
        .filter_map(|(p, t)| {
            let m = model_time(t1, a, b, *p);
            let r = (m - t) / t;
            (r.abs() > 0.1).then(|| format!("{p} cores ({:+.0}%)", r * 100.0))
        })
        .collect();
    if !misses.is_empty() {
        warnings.push(format!(
            "the model misses measured run times at {}: the program does not follow a linear Karp–Flatt trend; predictions are uncertain",
            misses.join(", ")
        ));
    }
    let counts = if predict_at.is_empty() {
        default_counts(&points)
    } else {
        predict_at.to_vec()
    };
    let mut counts: Vec<u32> = counts.into_iter().filter(|c| *c > 0).collect();
    counts.sort_unstable();
    counts.dedup();
    let max_measured = points.iter().map(|p| p.cpus).max().unwrap_or(1);
    let mut predictions = Vec::new();
    let mut dropped = Vec::new();
    for c in counts {
        let p = c as f64;
        let t = model_time(t1, a, b, p);
        if t.is_finite() && t > 0.0 {
            let s = t1 / t;
            predictions.push(Prediction {
                cpus: c,
                seconds: t,
                speedup: s,
                efficiency: s / p,
            });
        } else {
            dropped.push(c.to_string());
        }
    }
    if !dropped.is_empty() {
        warnings.push(format!(
            "no prediction at {} cores: the fitted model gives no positive run time there",
            dropped.join(", ")
        ));
    }
    let far: Vec<String> = predictions
        .iter()
        .filter(|p| p.cpus as u64 > 2 * max_measured as u64)
        .map(|p| p.cpus.to_string())
        .collect();
    if !far.is_empty() {
        warnings.push(format!(
            "predictions at {} cores are extrapolations beyond twice the largest measured count ({max_measured}); measure there before relying on them",
            far.join(", ")
        ));
    }
    Ok(Analysis {
        points,
        t1,
        t1_estimated,
        karp_flatt,
        e_intercept: a,
        e_slope: b,
        predictions,
        warnings,
    })
}

/// Seconds as `[D-]HH:MM:SS`.
fn hms(s: f64) -> String {
    crate::advice::duration(s)
}

/// The analysis as text: measured points, fit, predictions and warnings.
pub fn text(a: &Analysis) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Measured (median run time per core count):");
    let _ = writeln!(
        o,
        "  {:>6} {:>5} {:>12} {:>10} {:>8} {:>10} {:>12}",
        "cores", "runs", "time", "seconds", "speedup", "efficiency", "Karp-Flatt e"
    );
    for p in &a.points {
        let s = a.t1 / p.seconds;
        let e = a
            .karp_flatt
            .iter()
            .find(|(c, _)| *c == p.cpus)
            .map(|(_, e)| format!("{e:.4}"))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            o,
            "  {:>6} {:>5} {:>12} {:>10.1} {:>8.2} {:>9.1}% {:>12}",
            p.cpus,
            p.n,
            hms(p.seconds),
            p.seconds,
            s,
            100.0 * s / p.cpus as f64,
            e
        );
    }
    let _ = writeln!(o);
    if a.t1_estimated {
        let _ = writeln!(
            o,
            "T1 = {:.1} s ({}), estimated from the fit (no 1-core run)",
            a.t1,
            hms(a.t1)
        );
    } else {
        let _ = writeln!(o, "T1 = {:.1} s ({}), measured on 1 core", a.t1, hms(a.t1));
    }
    let _ = writeln!(
        o,
        "Karp-Flatt fit: e(p) = {:.5} {} {:.6}*p   (serial fraction at 1 core: {:.1}%)",
        a.e_intercept,
        if a.e_slope < 0.0 && format!("{:.6}", a.e_slope.abs()) != "0.000000" {
            "-"
        } else {
            "+"
        },
        a.e_slope.abs(),
        100.0 * a.e_at(1.0)
    );
    let _ = writeln!(o, "Model: T(p) = T1 * (e(p) + (1 - e(p)) / p)");
    let _ = writeln!(o);
    let _ = writeln!(o, "Predicted:");
    let _ = writeln!(
        o,
        "  {:>6} {:>12} {:>10} {:>8} {:>10}",
        "cores", "time", "seconds", "speedup", "efficiency"
    );
    for p in &a.predictions {
        let measured = if a.points.iter().any(|m| m.cpus == p.cpus) {
            "  (measured)"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "  {:>6} {:>12} {:>10.1} {:>8.2} {:>9.1}%{measured}",
            p.cpus,
            hms(p.seconds),
            p.seconds,
            p.speedup,
            100.0 * p.efficiency
        );
    }
    if !a.warnings.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "Warnings:");
        for w in &a.warnings {
            let _ = writeln!(o, "  ! {w}");
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<Run> {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/scaling/");
        let text = std::fs::read_to_string(format!("{p}{name}")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn one_group(name: &str) -> Group {
        let mut g = group_runs(&fixture(name));
        assert_eq!(g.len(), 1, "{name}: {g:?}");
        g.remove(0)
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-12)
    }

    fn pred(a: &Analysis, p: u32) -> &Prediction {
        a.predictions.iter().find(|x| x.cpus == p).unwrap()
    }

    #[test]
    fn grouping_filters_and_keys() {
        // amdahl.json: 4 good runs of alice/amdahl (hash h1), a CANCELLED run at 16 cores,
        // a 10 s run, a FAILED run, one run of bob and one of alice with another hash.
        let groups = group_runs(&fixture("amdahl.json"));
        let keys: Vec<(&str, &str, Option<&str>, usize)> = groups
            .iter()
            .map(|g| {
                (
                    g.user.as_str(),
                    g.name.as_str(),
                    g.script_hash.as_deref(),
                    g.runs.len(),
                )
            })
            .collect();
        assert_eq!(
            keys,
            vec![
                ("alice", "amdahl", Some("h1"), 4),
                ("alice", "amdahl", Some("h2"), 1),
                ("bob", "amdahl", Some("h1"), 1)
            ]
        );
        let cpus: Vec<u32> = groups[0].runs.iter().map(|r| r.cpus).collect();
        assert_eq!(cpus, vec![1, 2, 4, 8]);
    }

    #[test]
    fn amdahl_serial_fraction_0_1() {
        // T(p) = 1000 (0.1 + 0.9/p): T1 = 1000, T2 = 550, T4 = 325, T8 = 212.5.
        // Karp–Flatt: e(p) = (p T(p)/T1 − 1)/(p − 1); p = 2: (1.1 − 1)/1 = 0.1;
        // p = 4: (1.3 − 1)/3 = 0.1; p = 8: (1.7 − 1)/7 = 0.1. So a = 0.1, b = 0.
        // T(16) = 1000 (0.1 + 0.9/16) = 156.25, S = 6.4, E = 0.4;
        // T(32) = 1000 (0.1 + 0.9/32) = 128.125.
        let a = analyse(&group_runs(&fixture("amdahl.json"))[0], &[]).unwrap();
        assert!(!a.t1_estimated);
        assert_eq!(a.t1, 1000.0);
        assert_eq!(
            a.points
                .iter()
                .map(|p| (p.cpus, p.seconds))
                .collect::<Vec<_>>(),
            vec![(1, 1000.0), (2, 550.0), (4, 325.0), (8, 212.5)]
        );
        for (_, e) in &a.karp_flatt {
            assert!(close(*e, 0.1, 1e-12), "{e}");
        }
        assert!(close(a.e_intercept, 0.1, 1e-9), "{}", a.e_intercept);
        assert!(a.e_slope.abs() < 1e-12, "{}", a.e_slope);
        // Default counts: measured 1, 2, 4, 8 plus powers of two up to 4 × 8 = 32.
        assert_eq!(
            a.predictions.iter().map(|p| p.cpus).collect::<Vec<_>>(),
            vec![1, 2, 4, 8, 16, 32]
        );
        let p16 = pred(&a, 16);
        assert!(close(p16.seconds, 156.25, 1e-9));
        assert!(close(p16.speedup, 6.4, 1e-9));
        assert!(close(p16.efficiency, 0.4, 1e-9));
        assert!(close(pred(&a, 32).seconds, 128.125, 1e-9));
        assert!(close(pred(&a, 8).seconds, 212.5, 1e-9));
        // 32 > 2 × 8: extrapolation warning, nothing else.
        assert_eq!(a.warnings.len(), 1, "{:?}", a.warnings);
        assert!(
            a.warnings[0].contains("32 cores are extrapolations"),
            "{:?}",
            a.warnings
        );
        // Explicit counts.
        let a = analyse(&group_runs(&fixture("amdahl.json"))[0], &[12, 0, 12]).unwrap();
        assert_eq!(a.predictions.len(), 1);
        // 1000 (0.1 + 0.9/12) = 175.
        assert!(close(a.predictions[0].seconds, 175.0, 1e-9));
    }

    #[test]
    fn no_one_core_run_recovers_t1() {
        // no_t1.json: the same program at 2, 4, 8, 16 cores: 550, 325, 212.5, 156.25 s.
        // At the true T1 = 1000 every e(p) = 0.1 and the model is exact; another T1 = 1000/c
        // gives e'(p) = c·0.1 + (c − 1)/(p − 1), not linear in p, so the error is > 0.
        let a = analyse(&one_group("no_t1.json"), &[]).unwrap();
        assert!(a.t1_estimated);
        assert!(close(a.t1, 1000.0, 0.02), "T1 = {}", a.t1);
        assert!(close(a.t1, 1000.0, 1e-4), "T1 = {}", a.t1);
        assert!(close(a.e_intercept, 0.1, 1e-3), "{}", a.e_intercept);
        assert!(a.e_slope.abs() < 1e-4, "{}", a.e_slope);
        // T(32) = 1000 (0.1 + 0.9/32) = 128.125; T(1) = T1.
        assert!(close(pred(&a, 32).seconds, 128.125, 1e-3));
        assert!(close(pred(&a, 1).seconds, a.t1, 1e-12));
        assert!(text(&a).contains("estimated from the fit"));
    }

    #[test]
    fn overhead_growing_linearly() {
        // overhead.json: e(p) = 0.05 + 0.01 p, T1 = 2000; T(p) = 2000 (e + (1 − e)/p):
        // p=2: e=0.07, 2000 (0.07 + 0.93/2) = 1070; p=4: e=0.09, 2000 (0.09 + 0.91/4) = 635;
        // p=8: e=0.13, 2000 (0.13 + 0.87/8) = 477.5; p=16: e=0.21, 2000 (0.21 + 0.79/16) = 518.75.
        // Karp–Flatt gives back 0.07, 0.09, 0.13, 0.21: the fit is a = 0.05, b = 0.01.
        // T(32): e = 0.37, 2000 (0.37 + 0.63/32) = 779.375, S = 2000/779.375 = 2.5662;
        // T(64): e = 0.69, 2000 (0.69 + 0.31/64) = 1389.6875.
        let g = one_group("overhead.json");
        let a = analyse(&g, &[32, 64]).unwrap();
        assert!(!a.t1_estimated);
        let want = [(2, 0.07), (4, 0.09), (8, 0.13), (16, 0.21)];
        for ((p, e), (wp, we)) in a.karp_flatt.iter().zip(want) {
            assert_eq!(*p, wp);
            assert!(close(*e, we, 1e-9), "{p}: {e}");
        }
        assert!(close(a.e_intercept, 0.05, 1e-9), "{}", a.e_intercept);
        assert!(close(a.e_slope, 0.01, 1e-9), "{}", a.e_slope);
        assert!(close(pred(&a, 32).seconds, 779.375, 1e-9));
        assert!(close(pred(&a, 32).speedup, 2000.0 / 779.375, 1e-9));
        assert!(close(pred(&a, 64).seconds, 1389.6875, 1e-9));
        // Without the 1-core run T1 is estimated from 2, 4, 8, 16 (three unknowns, four points).
        let mut g2 = g.clone();
        g2.runs.retain(|r| r.cpus > 1);
        let a = analyse(&g2, &[32]).unwrap();
        assert!(a.t1_estimated);
        assert!(close(a.t1, 2000.0, 0.02), "T1 = {}", a.t1);
        assert!(close(a.e_slope, 0.01, 0.02), "{}", a.e_slope);
        assert!(close(pred(&a, 32).seconds, 779.375, 0.01));
    }

    #[test]
    fn noisy_data_warns() {
        // noisy.json: 1 core: 1000, 1010 (median 1005); 2 cores: 500, 560, 700 (median 560,
        // spread (700 − 500)/560 = 36%); 4 cores: 330, 340 (median 335).
        let a = analyse(&one_group("noisy.json"), &[]).unwrap();
        assert_eq!(
            a.points[1],
            Point {
                cpus: 2,
                seconds: 560.0,
                n: 3
            }
        );
        assert_eq!(a.points[0].seconds, 1005.0);
        let w = a.warnings.join("\n");
        assert!(
            w.contains("noisy data: the 3 runs at 2 cores differ by 36%"),
            "{w}"
        );
        assert!(!w.contains("runs at 1 cores"), "{w}");
    }

    #[test]
    fn one_point_is_an_error() {
        let e = analyse(&one_group("one_point.json"), &[]).unwrap_err();
        assert_eq!(e, ScalingError::OneCoreCount { cpus: 4, runs: 3 });
        assert!(e.to_string().contains("two or more core counts"));
        let empty = Group {
            user: "u".into(),
            name: "n".into(),
            script_hash: None,
            runs: vec![],
        };
        assert_eq!(analyse(&empty, &[]).unwrap_err(), ScalingError::NoRuns);
    }

    fn run(cpus: u32, secs: f64) -> Run {
        Run {
            jobid: "1".into(),
            user: "u".into(),
            name: "n".into(),
            cpus,
            nodes: 1,
            elapsed_seconds: secs,
            state: "COMPLETED".into(),
            script_hash: None,
            end_time: None,
        }
    }

    fn group(runs: Vec<Run>) -> Group {
        Group {
            user: "u".into(),
            name: "n".into(),
            script_hash: None,
            runs,
        }
    }

    #[test]
    fn two_points_exact_fit() {
        // T1 = 1000, T4 = 325: e(4) = (4·0.325 − 1)/3 = 0.1, one value: a = 0.1, b = 0.
        let a = analyse(&group(vec![run(1, 1000.0), run(4, 325.0)]), &[8]).unwrap();
        assert!(close(a.e_intercept, 0.1, 1e-12) && a.e_slope == 0.0);
        // T(8) = 1000 (0.1 + 0.9/8) = 212.5.
        assert!(close(a.predictions[0].seconds, 212.5, 1e-12));
        assert!(
            a.warnings[0]
                .contains("the fit is exact on two points; treat the predictions as rough"),
            "{:?}",
            a.warnings
        );
        // Without a 1-core run, two points and b = 0: T2 = 550, T8 = 212.5 determine T1 = 1000.
        let a = analyse(&group(vec![run(2, 550.0), run(8, 212.5)]), &[]).unwrap();
        assert!(close(a.t1, 1000.0, 0.02), "{}", a.t1);
        assert!(
            a.warnings.iter().any(|w| w.contains("Amdahl")),
            "{:?}",
            a.warnings
        );
    }

    #[test]
    fn superlinear_warns() {
        // S(2) = 1000/400 = 2.5 > 2; e(2) = (2·0.4 − 1)/1 = −0.2.
        let a = analyse(
            &group(vec![run(1, 1000.0), run(2, 400.0), run(4, 260.0)]),
            &[],
        )
        .unwrap();
        assert!(
            a.warnings
                .iter()
                .any(|w| w.contains("super-linear") && w.contains("different problem sizes")),
            "{:?}",
            a.warnings
        );
        assert!(close(a.karp_flatt[0].1, -0.2, 1e-12));
    }

    #[test]
    fn invalid_runs_ignored_and_weird_numbers_do_not_panic() {
        let g = group(vec![
            run(0, 100.0),
            run(2, f64::NAN),
            run(2, f64::INFINITY),
            run(4, -1.0),
        ]);
        assert_eq!(analyse(&g, &[]).unwrap_err(), ScalingError::NoRuns);
        // Wildly inconsistent data: whatever comes out is finite or an error.
        for runs in [
            vec![run(2, 1e-300), run(4, 1e300)],
            vec![run(1, 100.0), run(1000, 1e9), run(2, 1.0)],
            vec![run(3, 100.0), run(5, 100.0), run(7, 100.0)],
            vec![run(u32::MAX, 100.0), run(1, 50.0)],
        ] {
            if let Ok(a) = analyse(&group(runs), &[]) {
                assert!(a.t1.is_finite());
                for p in &a.predictions {
                    assert!(p.seconds.is_finite() && p.seconds > 0.0);
                }
                let _ = text(&a);
            }
        }
    }

    #[test]
    fn text_lists_points_predictions_and_warnings() {
        let a = analyse(&group_runs(&fixture("amdahl.json"))[0], &[]).unwrap();
        let t = text(&a);
        assert!(t.contains("measured on 1 core"), "{t}");
        assert!(t.contains("e(p) = 0.10000 + 0.000000*p"), "{t}");
        assert!(
            t.contains("     16     00:02:36      156.2     6.40      40.0%"),
            "{t}"
        );
        assert!(
            t.contains("      8     1     00:03:33      212.5     4.71      58.8%       0.1000"),
            "{t}"
        );
        assert!(t.contains("Warnings:\n  ! predictions at 32 cores"), "{t}");
    }
}
