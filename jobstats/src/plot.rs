//! A standalone SVG of a scaling [`Analysis`]: three panels side by side — run time,
//! speedup and efficiency against the core count (log₂ axis) — with the measured medians as
//! dots, the fitted Karp–Flatt model as a line, the predictions as rings on it, the ideal
//! (linear) scaling dashed, and the analysis' warnings as footnotes. No dependencies: the
//! SVG is written by hand and opens in any browser.

use std::fmt::Write as _;

use crate::scaling::Analysis;

const W: f64 = 1200.0;
const PANEL_W: f64 = 400.0;
const PLOT_X: f64 = 70.0; // left margin inside a panel
const PLOT_W: f64 = 305.0;
const PLOT_Y: f64 = 125.0;
const FOOT_Y: f64 = 455.0;
const PLOT_H: f64 = 250.0;

const MEASURED: &str = "#d1495b";
const MODEL: &str = "#00798c";
const IDEAL: &str = "#8d99ae";
const GRID: &str = "#e9ecef";
const INK: &str = "#212529";
const MUTED: &str = "#6c757d";

/// Escapes text for XML.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => o.push(c),
        }
    }
    o
}

/// A "nice" step (1, 2, 5 × 10^k) for about `n` intervals over `range`.
fn nice_step(range: f64, n: f64) -> f64 {
    if !(range.is_finite() && range > 0.0) {
        return 1.0;
    }
    let raw = range / n;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// Linear ticks from 0 to a nice maximum at or above `max`; returns (ticks, axis max).
fn ticks(max: f64) -> (Vec<f64>, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let step = nice_step(max, 5.0);
    let top = (max / step).ceil() * step;
    let n = (top / step).round() as usize;
    ((0..=n).map(|i| i as f64 * step).collect(), top)
}

fn label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil() as usize
    };
    format!("{v:.decimals$}")
}

/// Number for an SVG attribute (finite, short).
fn n(v: f64) -> String {
    let v = if v.is_finite() {
        v.clamp(-1e6, 1e6)
    } else {
        0.0
    };
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A number for display text: `?` when not finite.
fn shown(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "?".into()
    }
}

struct Panel<'a> {
    title: &'a str,
    y_label: String,
    /// Measured (p, y).
    measured: Vec<(f64, f64)>,
    /// Model curve (p, y).
    curve: Vec<(f64, f64)>,
    /// Predictions (p, y).
    predicted: Vec<(f64, f64)>,
    /// Ideal curve (p, y), if any.
    ideal: Vec<(f64, f64)>,
    /// Percent labels.
    percent: bool,
}

struct XAxis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl XAxis {
    fn new(ps: &[f64]) -> XAxis {
        let lo = ps.iter().copied().fold(f64::INFINITY, f64::min).max(1.0);
        let hi = ps.iter().copied().fold(1.0, f64::max).max(lo * 2.0);
        let (l2, h2) = (lo.log2().floor(), hi.log2().ceil());
        let count = (h2 - l2) as usize + 1;
        let every = count.div_ceil(9).max(1);
        let ticks = (0..count)
            .step_by(every)
            .map(|i| 2f64.powf(l2 + i as f64))
            .collect();
        // A little room on both sides so that the end points are not on the frame.
        XAxis {
            lo: 2f64.powf(l2 - 0.25),
            hi: 2f64.powf(h2 + 0.25),
            ticks,
        }
    }
    fn x(&self, p: f64) -> f64 {
        PLOT_X + PLOT_W * (p.log2() - self.lo.log2()) / (self.hi.log2() - self.lo.log2())
    }
}

fn panel(o: &mut String, idx: usize, pn: &Panel, xa: &XAxis) {
    let ox = idx as f64 * PANEL_W;
    let ymax_data = pn
        .measured
        .iter()
        .chain(&pn.predicted)
        .map(|v| v.1)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let (yt, ytop) = if pn.percent {
        // Efficiency: 0..100% in 20% steps (further when super-linear).
        let top = if ymax_data > 1.05 {
            (ymax_data * 1.04 / 0.2).ceil() * 0.2
        } else {
            1.1
        };
        let k = (top / 0.2 + 1e-9).floor() as usize;
        ((0..=k).map(|i| i as f64 * 0.2).collect::<Vec<_>>(), top)
    } else {
        ticks(ymax_data * 1.08)
    };
    let step = if yt.len() > 1 { yt[1] - yt[0] } else { 1.0 };
    let y = |v: f64| PLOT_Y + PLOT_H - PLOT_H * v / ytop;
    let _ = writeln!(o, r#"<g transform="translate({},0)">"#, n(ox));
    let _ = writeln!(
        o,
        r#"<text x="{}" y="{}" class="ptitle">{}</text>"#,
        n(PLOT_X + PLOT_W / 2.0),
        n(PLOT_Y - 14.0),
        esc(pn.title)
    );
    let _ = writeln!(
        o,
        r#"<clipPath id="clip{idx}"><rect x="{}" y="{}" width="{}" height="{}"/></clipPath>"#,
        n(PLOT_X),
        n(PLOT_Y),
        n(PLOT_W),
        n(PLOT_H)
    );
    let _ = writeln!(
        o,
        r##"<rect x="{}" y="{}" width="{}" height="{}" fill="#ffffff" stroke="{GRID}"/>"##,
        n(PLOT_X),
        n(PLOT_Y),
        n(PLOT_W),
        n(PLOT_H)
    );
    // Grid and y ticks.
    for t in &yt {
        let yy = y(*t);
        let _ = writeln!(
            o,
            r#"<line x1="{}" y1="{yy}" x2="{}" y2="{yy}" stroke="{GRID}"/>"#,
            n(PLOT_X),
            n(PLOT_X + PLOT_W),
            yy = n(yy)
        );
        let text = if pn.percent {
            format!("{}%", label(t * 100.0, step * 100.0))
        } else {
            label(*t, step)
        };
        let _ = writeln!(
            o,
            r#"<text x="{}" y="{}" class="ytick">{}</text>"#,
            n(PLOT_X - 6.0),
            n(yy + 4.0),
            esc(&text)
        );
    }
    // x ticks.
    for t in &xa.ticks {
        let xx = xa.x(*t);
        let _ = writeln!(
            o,
            r#"<line x1="{xx}" y1="{}" x2="{xx}" y2="{}" stroke="{GRID}"/>"#,
            n(PLOT_Y),
            n(PLOT_Y + PLOT_H),
            xx = n(xx)
        );
        let _ = writeln!(
            o,
            r#"<line x1="{xx}" y1="{}" x2="{xx}" y2="{}" stroke="{INK}"/>"#,
            n(PLOT_Y + PLOT_H),
            n(PLOT_Y + PLOT_H + 5.0),
            xx = n(xx)
        );
        let _ = writeln!(
            o,
            r#"<text x="{}" y="{}" class="xtick">{}</text>"#,
            n(xx),
            n(PLOT_Y + PLOT_H + 19.0),
            label(*t, 1.0)
        );
    }
    // Axes.
    let _ = writeln!(
        o,
        r#"<path d="M{} {} V{} H{}" fill="none" stroke="{INK}"/>"#,
        n(PLOT_X),
        n(PLOT_Y),
        n(PLOT_Y + PLOT_H),
        n(PLOT_X + PLOT_W)
    );
    let _ = writeln!(
        o,
        r#"<text x="{}" y="{}" class="xlabel">cores (log₂ scale)</text>"#,
        n(PLOT_X + PLOT_W / 2.0),
        n(PLOT_Y + PLOT_H + 40.0)
    );
    let cy = PLOT_Y + PLOT_H / 2.0;
    let _ = writeln!(
        o,
        r#"<text x="{}" y="{}" class="ylabel" transform="rotate(-90 {} {})">{}</text>"#,
        n(22.0),
        n(cy),
        n(22.0),
        n(cy),
        esc(&pn.y_label)
    );
    // Curves, clipped to the plot area.
    let _ = writeln!(o, r#"<g clip-path="url(#clip{idx})">"#);
    let poly = |pts: &[(f64, f64)]| -> String {
        pts.iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(p, v)| format!("{},{}", n(xa.x(*p)), n(y(*v))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if pn.ideal.len() > 1 {
        let _ = writeln!(
            o,
            r#"<polyline class="ideal" points="{}" fill="none" stroke="{IDEAL}" stroke-width="1.5" stroke-dasharray="6 4"/>"#,
            poly(&pn.ideal)
        );
    }
    if pn.curve.len() > 1 {
        let _ = writeln!(
            o,
            r#"<polyline class="model" points="{}" fill="none" stroke="{MODEL}" stroke-width="2.5" stroke-linejoin="round"/>"#,
            poly(&pn.curve)
        );
    }
    for (p, v) in pn.predicted.iter().filter(|(_, v)| v.is_finite()) {
        let _ = writeln!(
            o,
            r##"<circle class="pred" cx="{}" cy="{}" r="3.5" fill="#ffffff" stroke="{MODEL}" stroke-width="1.5"/>"##,
            n(xa.x(*p)),
            n(y(*v))
        );
    }
    o.push_str("</g>\n");
    // Measured points on top, unclipped (they are inside by construction of the axes).
    for (p, v) in pn.measured.iter().filter(|(_, v)| v.is_finite()) {
        let _ = writeln!(
            o,
            r##"<circle class="measured" cx="{}" cy="{}" r="5" fill="{MEASURED}" stroke="#ffffff" stroke-width="1.5"><title>{} cores: {}</title></circle>"##,
            n(xa.x(*p)),
            n(y(*v)),
            p,
            esc(&if pn.percent {
                format!("{}%", shown(v * 100.0, 1))
            } else {
                shown(*v, 3)
            })
        );
    }
    o.push_str("</g>\n");
}

/// The scaling plot with the default title.
pub fn svg(a: &Analysis) -> String {
    svg_titled(a, "Scaling: measured and predicted")
}

/// The scaling plot with a given title (e.g. the user and job name).
pub fn svg_titled(a: &Analysis, title: &str) -> String {
    let t1 = a.t1;
    let mut ps: Vec<f64> = a.points.iter().map(|p| p.cpus as f64).collect();
    ps.extend(a.predictions.iter().map(|p| p.cpus as f64));
    ps.push(1.0);
    let xa = XAxis::new(&ps);
    // Model curve over the whole axis (from 1 core), 160 samples evenly in log₂ p.
    let (l, h) = (1f64.max(xa.lo).log2(), xa.hi.log2());
    let samples: Vec<f64> = (0..=160)
        .map(|i| 2f64.powf(l + (h - l) * i as f64 / 160.0))
        .collect();
    let model: Vec<(f64, f64)> = samples
        .iter()
        .map(|p| (*p, a.time_at(*p)))
        .filter(|(_, t)| t.is_finite() && *t > 0.0)
        .collect();
    // Time unit by magnitude.
    let tmax = a
        .points
        .iter()
        .map(|p| p.seconds)
        .chain(a.predictions.iter().map(|p| p.seconds))
        .fold(0.0, f64::max);
    let (unit, div) = if tmax >= 3.0 * 3600.0 {
        ("hours", 3600.0)
    } else if tmax >= 180.0 {
        ("minutes", 60.0)
    } else {
        ("seconds", 1.0)
    };
    let time = Panel {
        title: "Run time",
        y_label: format!("run time ({unit})"),
        measured: a
            .points
            .iter()
            .map(|p| (p.cpus as f64, p.seconds / div))
            .collect(),
        curve: model.iter().map(|(p, t)| (*p, t / div)).collect(),
        predicted: a
            .predictions
            .iter()
            .map(|p| (p.cpus as f64, p.seconds / div))
            .collect(),
        ideal: samples.iter().map(|p| (*p, t1 / p / div)).collect(),
        percent: false,
    };
    let measured_speedup: Vec<(f64, f64)> = a
        .points
        .iter()
        .map(|p| (p.cpus as f64, t1 / p.seconds))
        .collect();
    let speedup = Panel {
        title: "Speedup",
        y_label: "speedup T1 / T(p)".into(),
        measured: measured_speedup.clone(),
        curve: model.iter().map(|(p, t)| (*p, t1 / t)).collect(),
        predicted: a
            .predictions
            .iter()
            .map(|p| (p.cpus as f64, p.speedup))
            .collect(),
        ideal: samples.iter().map(|p| (*p, *p)).collect(),
        percent: false,
    };
    let efficiency = Panel {
        title: "Parallel efficiency",
        y_label: "efficiency S(p) / p".into(),
        measured: measured_speedup.iter().map(|(p, s)| (*p, s / p)).collect(),
        curve: model.iter().map(|(p, t)| (*p, t1 / t / p)).collect(),
        predicted: a
            .predictions
            .iter()
            .map(|p| (p.cpus as f64, p.efficiency))
            .collect(),
        ideal: samples.iter().map(|p| (*p, 1.0)).collect(),
        percent: true,
    };

    let warnings: Vec<&String> = a.warnings.iter().take(4).collect();
    let height =
        FOOT_Y + 18.0 * warnings.len() as f64 + if warnings.is_empty() { 0.0 } else { 6.0 };
    let mut o = String::new();
    o.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif">"#,
        w = n(W),
        h = n(height)
    );
    let _ = writeln!(o, "<title>{}</title>", esc(title));
    let _ = writeln!(
        o,
        "<style>text{{fill:{INK}}} .title{{font-size:20px;font-weight:600}} .sub{{font-size:13px;fill:{MUTED}}} .ptitle{{font-size:14px;font-weight:600;text-anchor:middle}} .xtick{{font-size:11px;text-anchor:middle;fill:{MUTED}}} .ytick{{font-size:11px;text-anchor:end;fill:{MUTED}}} .xlabel,.ylabel{{font-size:12px;text-anchor:middle}} .legend{{font-size:12px}} .warn{{font-size:12px;fill:#9a3412}}</style>"
    );
    let _ = writeln!(o, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        o,
        r#"<text x="24" y="32" class="title">{}</text>"#,
        esc(title)
    );
    let t1_text = if a.t1_estimated {
        format!(
            "T1 = {} s, estimated from the fit (no 1-core run)",
            shown(a.t1, 0)
        )
    } else {
        format!("T1 = {} s, measured on 1 core", shown(a.t1, 0))
    };
    let sign = if a.e_slope < 0.0 && shown(a.e_slope.abs(), 6) != "0.000000" {
        "−"
    } else {
        "+"
    };
    let _ = writeln!(
        o,
        r#"<text x="24" y="54" class="sub">Karp–Flatt fit e(p) = {} {sign} {}·p;  T(p) = T1·(e + (1 − e)/p);  {}</text>"#,
        shown(a.e_intercept, 4),
        shown(a.e_slope.abs(), 6),
        esc(&t1_text)
    );
    // Legend, top right.
    let lx = 28.0;
    let ly = 80.0;
    let _ = writeln!(
        o,
        r#"<g class="legend" transform="translate({},{})">"#,
        n(lx),
        n(ly)
    );
    let _ = writeln!(
        o,
        r#"<circle cx="6" cy="0" r="5" fill="{MEASURED}"/><text x="16" y="4">measured (median)</text>"#
    );
    let _ = writeln!(
        o,
        r#"<line x1="140" y1="0" x2="166" y2="0" stroke="{MODEL}" stroke-width="2.5"/><text x="172" y="4">model</text>"#
    );
    let _ = writeln!(
        o,
        r##"<circle cx="230" cy="0" r="3.5" fill="#ffffff" stroke="{MODEL}" stroke-width="1.5"/><text x="240" y="4">predicted</text>"##
    );
    let _ = writeln!(
        o,
        r#"<line x1="318" y1="0" x2="344" y2="0" stroke="{IDEAL}" stroke-width="1.5" stroke-dasharray="6 4"/><text x="350" y="4">ideal (linear)</text>"#
    );
    o.push_str("</g>\n");
    for (i, p) in [time, speedup, efficiency].iter().enumerate() {
        panel(&mut o, i, p, &xa);
    }
    for (i, w) in warnings.iter().enumerate() {
        let mut w = w.to_string();
        if w.chars().count() > 170 {
            w = w.chars().take(167).collect::<String>() + "...";
        }
        let _ = writeln!(
            o,
            r#"<text x="24" y="{}" class="warn">⚠ {}</text>"#,
            n(FOOT_Y + 12.0 + 18.0 * i as f64),
            esc(&w)
        );
    }
    o.push_str("</svg>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Run;
    use crate::scaling::{analyse, Group};

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

    fn amdahl() -> Analysis {
        // T(p) = 1000 (0.1 + 0.9/p) at 1, 2, 4, 8 cores.
        let runs = [1, 2, 4, 8]
            .iter()
            .map(|p| run(*p, 1000.0 * (0.1 + 0.9 / *p as f64)))
            .collect();
        analyse(
            &Group {
                user: "u".into(),
                name: "n".into(),
                script_hash: None,
                runs,
            },
            &[],
        )
        .unwrap()
    }

    /// A minimal XML well-formedness check: balanced, properly nested tags, quoted
    /// attributes, no stray `<` or `&` in text.
    fn check_xml(s: &str) -> Result<usize, String> {
        let mut stack: Vec<String> = Vec::new();
        let mut i = 0;
        let b = s.as_bytes();
        let mut elements = 0;
        let mut roots = 0;
        while i < b.len() {
            if b[i] == b'<' {
                let end = s[i..].find('>').ok_or("unclosed <")? + i;
                let tag = &s[i + 1..end];
                if tag.starts_with('?') {
                    if !tag.ends_with('?') {
                        return Err(format!("bad PI {tag}"));
                    }
                } else if let Some(name) = tag.strip_prefix('/') {
                    let open = stack.pop().ok_or(format!("close without open: {name}"))?;
                    if open != name.trim() {
                        return Err(format!("</{name}> closes <{open}>"));
                    }
                } else {
                    let self_closing = tag.ends_with('/');
                    let body = tag.trim_end_matches('/');
                    let name: String = body.chars().take_while(|c| !c.is_whitespace()).collect();
                    if name.is_empty()
                        || !name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':')
                    {
                        return Err(format!("bad tag name in <{tag}>"));
                    }
                    if !body.matches('"').count().is_multiple_of(2) || body.contains('<') {
                        return Err(format!("bad attributes in <{tag}>"));
                    }
                    if stack.is_empty() {
                        roots += 1;
                    }
                    elements += 1;
                    if !self_closing {
                        stack.push(name);
                    }
                }
                i = end + 1;
            } else {
                if b[i] == b'&' {
                    let semi = s[i..].find(';').ok_or("bare &")?;
                    let ent = &s[i + 1..i + semi];
                    if !["amp", "lt", "gt", "quot", "apos"].contains(&ent) {
                        return Err(format!("unknown entity &{ent};"));
                    }
                }
                if b[i] == b'>' {
                    return Err("stray >".into());
                }
                i += 1;
            }
        }
        if !stack.is_empty() {
            return Err(format!("unclosed: {stack:?}"));
        }
        if roots != 1 {
            return Err(format!("{roots} root elements"));
        }
        Ok(elements)
    }

    #[test]
    fn well_formed_with_points() {
        let a = amdahl();
        let s = svg(&a);
        check_xml(&s).unwrap_or_else(|e| panic!("{e}\n{s}"));
        assert!(s.starts_with("<?xml"));
        assert!(s.contains(r#"<svg xmlns="http://www.w3.org/2000/svg""#));
        assert!(s.trim_end().ends_with("</svg>"));
        assert!(!s.contains("NaN") && !s.contains("inf"), "{s}");
        // 4 measured points in each of the 3 panels, 6 predictions (1..32) in each.
        assert_eq!(s.matches(r#"class="measured""#).count(), 12);
        assert_eq!(s.matches(r#"class="pred""#).count(), 18);
        assert_eq!(s.matches(r#"class="model""#).count(), 3);
        assert_eq!(s.matches(r#"class="ideal""#).count(), 3);
        for want in [
            "Run time",
            "Speedup",
            "Parallel efficiency",
            "measured (median)",
            "cores (log₂ scale)",
            "8 cores: 4.706",
            "8 cores: 58.8%",
            "T1 = 1000 s, measured",
        ] {
            assert!(s.contains(want), "missing {want}");
        }
        // x ticks at powers of two 1..32.
        for t in ["1", "2", "4", "8", "16", "32"] {
            assert!(
                s.contains(&format!(r#"class="xtick">{t}</text>"#)),
                "tick {t}"
            );
        }
        // The extrapolation warning is a footnote.
        assert!(s.contains("⚠ predictions at 32 cores"));
    }

    #[test]
    fn escapes_and_odd_analyses() {
        let mut a = amdahl();
        a.warnings.push("a <b> & \"c\"".into());
        let s = svg_titled(&a, "alice / <sim> & co");
        check_xml(&s).unwrap();
        assert!(s.contains("alice / &lt;sim&gt; &amp; co"));
        // Degenerate numbers never produce NaN or broken XML.
        let mut a = amdahl();
        a.t1 = f64::NAN;
        a.e_slope = f64::INFINITY;
        a.predictions.clear();
        let s = svg(&a);
        check_xml(&s).unwrap();
        assert!(!s.contains("NaN"));
        assert!(check_xml("<a><b></a></b>").is_err());
        assert!(check_xml("<a x=\"1></a>").is_err());
    }

    #[test]
    fn nice_numbers() {
        assert_eq!(ticks(17.0).1, 20.0);
        assert_eq!(ticks(0.93).0.len(), 6);
        assert_eq!(nice_step(1000.0, 5.0), 200.0);
        assert_eq!(label(0.25, 0.05), "0.25");
        assert_eq!(n(f64::NAN), "0");
    }
}
