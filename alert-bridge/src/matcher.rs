//! Label matchers in Prometheus syntax: `{instance=~"n.*", job!="x"}` or `node="n1"`.
//!
//! Regular expressions are fully anchored like Prometheus' and evaluated by the `regex`
//! crate (linear time, no backtracking), never by the database: the query layer asks the
//! database for the distinct values of the label and matches them here.

use regex::Regex;

/// A matcher's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Re,
    Nre,
}

/// One label matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: Op,
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}

impl Matcher {
    /// A matcher; fails on an invalid regular expression.
    pub fn new(name: &str, op: Op, value: &str) -> Result<Self, String> {
        let re = match op {
            Op::Re | Op::Nre => Some(
                regex::RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("invalid regular expression {value:?}: {e}"))?,
            ),
            _ => None,
        };
        Ok(Self {
            name: name.to_string(),
            op,
            value: value.to_string(),
            re,
        })
    }

    /// Whether the matcher's regular expression (anchored) matches `v`, whatever the operator
    /// (`false` for `=` and `!=`).
    pub fn regex_matches(&self, v: &str) -> bool {
        self.re.as_ref().is_some_and(|r| r.is_match(v))
    }

    /// For `=~`/`!~`: byte strings every value the regular expression matches starts with (at
    /// most 8, none empty), or `None` when there is no such small set (`.*x`, `(?i)...`).
    /// Lets the query read only those index ranges instead of every value of the label.
    pub fn literal_prefixes(&self) -> Option<Vec<Vec<u8>>> {
        use regex_syntax::hir::literal::{ExtractKind, Extractor};
        self.re.as_ref()?;
        let hir = regex_syntax::ParserBuilder::new()
            .build()
            .parse(&self.value)
            .ok()?;
        let mut ex = Extractor::new();
        ex.kind(ExtractKind::Prefix).limit_total(64);
        let mut seq = ex.extract(&hir);
        seq.dedup();
        let lits = seq.literals()?;
        if lits.len() > 32 || lits.iter().any(|l| l.as_bytes().is_empty()) {
            return None;
        }
        let mut out: Vec<Vec<u8>> = lits.iter().map(|l| l.as_bytes().to_vec()).collect();
        // Few ranges are better than many: shorten the longest literals until at most 8
        // remain (`gpu1[0-9]` -> `gpu1`), dropping prefixes covered by a shorter one.
        loop {
            out.sort();
            let mut kept: Vec<Vec<u8>> = Vec::new();
            for p in out {
                if !kept.iter().any(|k| p.starts_with(k)) {
                    kept.push(p);
                }
            }
            if kept.len() <= 8 {
                return Some(kept);
            }
            let longest = kept.iter().map(Vec::len).max().unwrap_or(0);
            if longest <= 1 {
                return None;
            }
            out = kept
                .into_iter()
                .map(|mut p| {
                    p.truncate(longest - 1);
                    p
                })
                .collect();
        }
    }

    /// Whether a label value (empty = label absent, as in Prometheus) matches.
    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            Op::Eq => v == self.value,
            Op::Ne => v != self.value,
            Op::Re => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            Op::Nre => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Parses `{a="b", c=~"d"}`, `a="b"` or `{}` into matchers.
pub fn parse(input: &str) -> Result<Vec<Matcher>, String> {
    let s = input.trim();
    let inner = match s.strip_prefix('{') {
        Some(rest) => rest
            .strip_suffix('}')
            .ok_or_else(|| format!("matcher {input:?}: missing closing '}}'"))?,
        None => s,
    };
    let chars: Vec<char> = inner.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        // Label name.
        let start = i;
        if !is_name_start(chars[i]) {
            return Err(format!(
                "matcher {input:?}: expected a label name at {:?}",
                chars[i..].iter().collect::<String>()
            ));
        }
        while i < chars.len() && is_name_char(chars[i]) {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect();
        skip_ws(&mut i);
        let op = match (chars.get(i), chars.get(i + 1)) {
            (Some('='), Some('~')) => {
                i += 2;
                Op::Re
            }
            (Some('!'), Some('=')) => {
                i += 2;
                Op::Ne
            }
            (Some('!'), Some('~')) => {
                i += 2;
                Op::Nre
            }
            (Some('='), _) => {
                i += 1;
                Op::Eq
            }
            _ => {
                return Err(format!(
                    "matcher {input:?}: expected =, !=, =~ or !~ after {name:?}"
                ))
            }
        };
        skip_ws(&mut i);
        let quote = match chars.get(i) {
            Some(q @ ('"' | '\'' | '`')) => *q,
            _ => {
                return Err(format!(
                    "matcher {input:?}: value of {name:?} must be quoted"
                ))
            }
        };
        i += 1;
        let mut value = String::new();
        loop {
            let Some(&c) = chars.get(i) else {
                return Err(format!("matcher {input:?}: unterminated string"));
            };
            i += 1;
            if c == quote {
                break;
            }
            if c == '\\' && quote != '`' {
                let Some(&e) = chars.get(i) else {
                    return Err(format!("matcher {input:?}: unterminated escape"));
                };
                i += 1;
                if e == 'u' {
                    let hex: String = chars.iter().skip(i).take(4).collect();
                    let c = u32::from_str_radix(&hex, 16)
                        .ok()
                        .filter(|_| hex.len() == 4)
                        .and_then(char::from_u32)
                        .ok_or_else(|| format!("matcher {input:?}: bad \\u escape"))?;
                    i += 4;
                    value.push(c);
                    continue;
                }
                match e {
                    'n' => value.push('\n'),
                    't' => value.push('\t'),
                    'r' => value.push('\r'),
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    '\'' => value.push('\''),
                    // Keep unknown escapes for the regex engine (e.g. `\d`, `\.`).
                    other => {
                        value.push('\\');
                        value.push(other);
                    }
                }
            } else {
                value.push(c);
            }
        }
        out.push(Matcher::new(&name, op, &value)?);
        skip_ws(&mut i);
        match chars.get(i) {
            None => break,
            Some(',') => i += 1,
            Some(c) => return Err(format!("matcher {input:?}: unexpected {c:?}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_prometheus_syntax() {
        let m = parse(r#"{instance=~"n.*", job!="x", node!~'a|b',sev="cr\"it"}"#).unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!((m[0].name.as_str(), m[0].op), ("instance", Op::Re));
        assert_eq!((m[1].name.as_str(), m[1].op), ("job", Op::Ne));
        assert_eq!((m[2].name.as_str(), m[2].op), ("node", Op::Nre));
        assert_eq!(m[3].value, "cr\"it");
        assert!(parse(r#"node="n1""#).unwrap()[0].matches("n1"));
        assert!(parse("{}").unwrap().is_empty());
    }

    #[test]
    fn regex_is_anchored() {
        let m = &parse(r#"{instance=~"n1"}"#).unwrap()[0];
        assert!(m.matches("n1"));
        assert!(!m.matches("n10"));
        let m = &parse(r#"{instance=~"n\d+"}"#).unwrap()[0];
        assert!(m.matches("n10"));
        assert!(!m.matches("xn10"));
        let m = &parse(r#"{instance!~"n.*"}"#).unwrap()[0];
        assert!(m.matches("gpu1"));
        assert!(!m.matches("n1"));
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "{",
            "{a}",
            "{a=}",
            "{a=\"x}",
            "{1a=\"x\"}",
            "{a=~\"(\"}",
            "{a=\"x\" b=\"y\"}",
            "{a==\"x\"}",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn literal_prefixes_bound_every_match() {
        let p = |s: &str| parse(s).unwrap()[0].literal_prefixes();
        assert_eq!(p(r#"{a=~"n00.*"}"#), Some(vec![b"n00".to_vec()]));
        assert_eq!(
            p(r#"{a=~"gpu(1|2)[0-9]"}"#),
            Some(vec![b"gpu1".to_vec(), b"gpu2".to_vec()])
        );
        assert_eq!(p(r#"{a=~"n1|n12"}"#), Some(vec![b"n1".to_vec()]));
        assert_eq!(p(r#"{a=~".*x"}"#), None);
        assert_eq!(p(r#"{a=~"x?y"}"#).map(|v| v.len()), Some(2));
        let ci = p(r#"{a=~"(?i)node"}"#).unwrap();
        assert!(ci.len() <= 8 && ci.contains(&b"nOD".to_vec()), "{ci:?}");
        assert_eq!(p(r#"{a=~"[a-z]+"}"#), None);
        assert_eq!(p(r#"{a="x"}"#), None);
    }

    proptest! {
        #[test]
        fn prefixes_are_sound(re in "[ab.|*?()]{0,8}", v in "[ab]{0,6}") {
            if let Ok(m) = Matcher::new("a", Op::Re, &re) {
                if let (Some(ps), true) = (m.literal_prefixes(), m.regex_matches(&v)) {
                    prop_assert!(ps.iter().any(|p| v.as_bytes().starts_with(p)), "{re} {v} {ps:?}");
                }
            }
        }

        #[test]
        fn never_panics(s in "\\PC{0,60}") {
            let _ = parse(&s);
        }

        #[test]
        fn quoted_values_roundtrip(v in "\\PC{0,30}") {
            let quoted = serde_json::to_string(&v).unwrap();
            let m = parse(&format!("{{a={quoted}}}")).unwrap();
            prop_assert_eq!(&m[0].value, &v);
        }
    }
}
