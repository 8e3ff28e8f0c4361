//! Node states: a base state plus flags, from either `sinfo -O StateComplete`
//! (`allocated+drain`, `idle+cloud+powered_down`, 21.08+) or the long `%T` form with its
//! one-character suffixes (`idle*`, `mixed-`, `drain~`, `alloc#`, `down$`, `draining`,
//! `drained`, `maint`, `reserved`, `completing`, `fail`, `inval`, 20.11+).

/// The base states Slurm knows; anything else is kept verbatim (lowercased).
pub const BASE_STATES: &[&str] = &[
    "allocated",
    "down",
    "error",
    "future",
    "idle",
    "mixed",
    "unknown",
];

/// Flags reported for every node count, even when zero.
pub const KNOWN_FLAGS: &[&str] = &[
    "cloud",
    "completing",
    "drain",
    "fail",
    "invalid",
    "maint",
    "not_responding",
    "planned",
    "power_down",
    "powered_down",
    "powering_down",
    "powering_up",
    "reboot_issued",
    "reboot_requested",
    "reserved",
];

/// A parsed node state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeState {
    /// One of [`BASE_STATES`], or the unknown word as given (lowercase).
    pub base: String,
    /// Flags, sorted and without duplicates (names from [`KNOWN_FLAGS`] where known).
    pub flags: Vec<String>,
}

impl NodeState {
    /// Whether `flag` is set.
    pub fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// The name prometheus-slurm-exporter counts this node under (`slurm_nodes_<name>`),
    /// following how `sinfo %T` would print it: drain wins over everything, then fail,
    /// maint, reserved, completing, then the base state.
    pub fn compat_bucket(&self) -> Option<&'static str> {
        if self.has("drain") {
            return Some("drain");
        }
        if self.has("fail") {
            return Some("fail");
        }
        if self.has("maint") {
            return Some("maint");
        }
        if self.has("reserved") {
            return Some("resv");
        }
        if self.has("completing") {
            return Some("comp");
        }
        match self.base.as_str() {
            "allocated" => Some("alloc"),
            "mixed" => Some("mix"),
            "idle" => Some("idle"),
            "down" => Some("down"),
            "error" => Some("err"),
            _ => None,
        }
    }
}

fn suffix_flag(c: char) -> Option<&'static str> {
    Some(match c {
        '*' => "not_responding",
        '~' => "powered_down",
        '#' => "powering_up",
        '%' => "powering_down",
        '!' => "power_down",
        '$' => "maint",
        '@' => "reboot_requested",
        '^' => "reboot_issued",
        '-' => "planned",
        _ => return None,
    })
}

fn sanitize(word: &str) -> String {
    word.chars()
        .filter_map(|c| {
            if c.is_ascii_alphanumeric() {
                Some(c.to_ascii_lowercase())
            } else if c == '_' || c == '-' || c == ' ' {
                Some('_')
            } else {
                None
            }
        })
        .collect()
}

/// Maps one state word (without suffixes) to a base state and/or flag.
fn word(w: &str, base: &mut Option<String>, flags: &mut Vec<String>) {
    let lw = sanitize(w);
    let (b, f): (Option<&str>, Option<&str>) = match lw.as_str() {
        "alloc" | "allocated" => (Some("allocated"), None),
        "idle" => (Some("idle"), None),
        "mix" | "mixed" => (Some("mixed"), None),
        "down" => (Some("down"), None),
        "err" | "error" => (Some("error"), None),
        "futr" | "future" => (Some("future"), None),
        "unk" | "unknown" => (Some("unknown"), None),
        "drain" | "drained" => (None, Some("drain")),
        "drng" | "draining" => (Some("allocated"), Some("drain")),
        "comp" | "completing" => (None, Some("completing")),
        "fail" => (Some("down"), Some("fail")),
        "failg" | "failing" => (Some("allocated"), Some("fail")),
        "maint" | "maintenance" => (None, Some("maint")),
        "resv" | "reserved" => (None, Some("reserved")),
        "inval" | "invalid" | "invalid_reg" => (None, Some("invalid")),
        "npc" | "not_responding" | "no_respond" => (None, Some("not_responding")),
        "pow_dn" | "powered_down" | "power_down" | "powerdown" => (None, Some("powered_down")),
        "pow_up" | "powering_up" | "power_up" => (None, Some("powering_up")),
        "powering_down" => (None, Some("powering_down")),
        "reboot" | "reboot_requested" => (None, Some("reboot_requested")),
        "boot" | "reboot_issued" => (None, Some("reboot_issued")),
        "plnd" | "planned" => (None, Some("planned")),
        "cloud" => (None, Some("cloud")),
        "" => (None, None),
        other => {
            flags.push(other.to_string());
            (None, None)
        }
    };
    if let Some(b) = b {
        if base.is_none() {
            *base = Some(b.to_string());
        }
    }
    if let Some(f) = f {
        flags.push(f.to_string());
    }
}

/// Parses a node state as `sinfo` prints it (any of the forms above). Never fails: an empty
/// string is `unknown`; a flag-only state (`drained`, `maint`, `reserved`, `completing`) gets
/// the base state `sinfo` implies (`idle`, or `allocated` for `completing`).
pub fn parse_node_state(s: &str) -> NodeState {
    let s = s.trim();
    let mut base = None;
    let mut flags = Vec::new();
    for part in s.split('+') {
        let mut w = part.trim();
        while let Some(c) = w.chars().last() {
            match suffix_flag(c) {
                Some(f) => {
                    flags.push(f.to_string());
                    w = &w[..w.len() - c.len_utf8()];
                }
                None => break,
            }
        }
        word(w, &mut base, &mut flags);
    }
    flags.sort();
    flags.dedup();
    let base = base.unwrap_or_else(|| {
        if flags.iter().any(|f| f == "completing") {
            "allocated".to_string()
        } else if s.is_empty() {
            "unknown".to_string()
        } else {
            "idle".to_string()
        }
    });
    NodeState { base, flags }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(s: &str) -> (String, Vec<String>) {
        let n = parse_node_state(s);
        (n.base, n.flags)
    }
    fn v(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn long_forms_with_suffixes() {
        assert_eq!(st("idle"), ("idle".into(), v(&[])));
        assert_eq!(st("idle*"), ("idle".into(), v(&["not_responding"])));
        assert_eq!(st("mixed-"), ("mixed".into(), v(&["planned"])));
        assert_eq!(
            st("drained~"),
            ("idle".into(), v(&["drain", "powered_down"]))
        );
        assert_eq!(st("allocated#"), ("allocated".into(), v(&["powering_up"])));
        assert_eq!(st("down$"), ("down".into(), v(&["maint"])));
        assert_eq!(st("down*"), ("down".into(), v(&["not_responding"])));
        assert_eq!(st("draining"), ("allocated".into(), v(&["drain"])));
        assert_eq!(st("drng"), ("allocated".into(), v(&["drain"])));
        assert_eq!(st("maint"), ("idle".into(), v(&["maint"])));
        assert_eq!(st("reserved"), ("idle".into(), v(&["reserved"])));
        assert_eq!(st("resv"), ("idle".into(), v(&["reserved"])));
        assert_eq!(st("completing"), ("allocated".into(), v(&["completing"])));
        assert_eq!(st("comp"), ("allocated".into(), v(&["completing"])));
        assert_eq!(st("fail"), ("down".into(), v(&["fail"])));
        assert_eq!(st("inval"), ("idle".into(), v(&["invalid"])));
        assert_eq!(st("idle@"), ("idle".into(), v(&["reboot_requested"])));
        assert_eq!(st("mix%"), ("mixed".into(), v(&["powering_down"])));
    }

    #[test]
    fn complete_forms() {
        assert_eq!(st("allocated+drain"), ("allocated".into(), v(&["drain"])));
        assert_eq!(
            st("down+not_responding"),
            ("down".into(), v(&["not_responding"]))
        );
        assert_eq!(
            st("idle+cloud+powered_down"),
            ("idle".into(), v(&["cloud", "powered_down"]))
        );
        assert_eq!(
            st("mixed+completing+drain"),
            ("mixed".into(), v(&["completing", "drain"]))
        );
        assert_eq!(
            st("idle+maintenance+reserved"),
            ("idle".into(), v(&["maint", "reserved"]))
        );
        assert_eq!(
            st("idle+dynamic_future"),
            ("idle".into(), v(&["dynamic_future"]))
        );
        assert_eq!(st("WEIRD"), ("idle".into(), v(&["weird"])));
        assert_eq!(st(""), ("unknown".into(), v(&[])));
    }

    #[test]
    fn compat_buckets_follow_sinfo() {
        assert_eq!(
            parse_node_state("allocated+drain").compat_bucket(),
            Some("drain")
        );
        assert_eq!(
            parse_node_state("idle+maint").compat_bucket(),
            Some("maint")
        );
        assert_eq!(parse_node_state("mixed").compat_bucket(), Some("mix"));
        assert_eq!(parse_node_state("down*").compat_bucket(), Some("down"));
        assert_eq!(
            parse_node_state("idle+reserved").compat_bucket(),
            Some("resv")
        );
        assert_eq!(
            parse_node_state("allocated+completing").compat_bucket(),
            Some("comp")
        );
        assert_eq!(parse_node_state("error").compat_bucket(), Some("err"));
        assert_eq!(parse_node_state("future").compat_bucket(), None);
    }
}
