//! Node power through the node's BMC with FreeIPMI's `ipmi-power`.
//!
//! The IPMI exporter's runner does the work ([`hpcmon_ipmi_exporter::freeipmi::run_tool`]):
//! one process group per call with a deadline, credentials from a module of the exporter's
//! own configuration file (`password_file` / `password_env`) handed to FreeIPMI on its stdin,
//! never on argv. Which BMC belongs to which node comes from a map file, one `node
//! host[:port]` per line; a node without a line cannot be powered through IPMI.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use hpcmon_ipmi_exporter::config::{Config, Module};
use hpcmon_ipmi_exporter::freeipmi::{run_tool, valid_host, Runtime, Target};

/// BMC access for power actions.
pub struct Ipmi {
    rt: Runtime,
    module: Arc<Module>,
    /// node → `host[:port]` of its BMC.
    pub bmcs: BTreeMap<String, String>,
    /// Deadline of each call.
    pub timeout: Duration,
}

impl std::fmt::Debug for Ipmi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ipmi")
            .field("module", &self.module.name)
            .field("bmcs", &self.bmcs.len())
            .finish()
    }
}

/// Parses a BMC map: `node host[:port]` per line, `#` comments.
pub fn parse_bmc_map(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut f = line.split_whitespace();
        let (Some(node), Some(host), None) = (f.next(), f.next(), f.next()) else {
            bail!("line {}: want `node host[:port]`", i + 1);
        };
        let names = hpcmon_kit::hostlist::expand(node, 1)
            .with_context(|| format!("line {}: node {node:?}", i + 1))?;
        if !valid_host(host) {
            bail!("line {}: BMC address {host:?} is not a host[:port]", i + 1);
        }
        if m.insert(names[0].clone(), host.to_string()).is_some() {
            bail!("line {}: node {node} is listed twice", i + 1);
        }
    }
    Ok(m)
}

impl Ipmi {
    /// Loads the exporter configuration's `module` and the BMC map.
    pub fn load(
        config: &Path,
        module: &str,
        map: &Path,
        timeout: Duration,
        max_sessions: usize,
        cache_root: &Path,
    ) -> anyhow::Result<Ipmi> {
        let cfg = Config::load(config)?;
        let Some(m) = cfg.modules.get(module) else {
            bail!(
                "{} has no module {module:?} (it has: {})",
                config.display(),
                cfg.modules.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        };
        let text = std::fs::read_to_string(map)
            .with_context(|| format!("reading the BMC map {}", map.display()))?;
        let bmcs = parse_bmc_map(&text).with_context(|| format!("in {}", map.display()))?;
        Ok(Ipmi {
            rt: Runtime::new(max_sessions, cache_root.to_path_buf(), Default::default()),
            module: Arc::new(m.clone()),
            bmcs,
            timeout,
        })
    }

    fn target(&self, node: &str) -> Result<Target, String> {
        let host = self
            .bmcs
            .get(node)
            .ok_or_else(|| format!("no BMC is configured for node {node} (--ipmi.bmc-map)"))?;
        Ok(Target {
            host: Some(host.clone()),
            module: self.module.clone(),
        })
    }

    /// What the journal shows for a power command (credentials go on stdin).
    pub fn describe(&self, node: &str, on: bool) -> Vec<String> {
        vec![
            "ipmi-power".into(),
            format!(
                "--hostname={}",
                self.bmcs.get(node).map(String::as_str).unwrap_or("?")
            ),
            if on { "--on" } else { "--off" }.into(),
        ]
    }

    /// Whether the node's chassis power is on.
    pub async fn is_on(&self, node: &str) -> Result<bool, String> {
        let t = self.target(node)?;
        let out = run_tool(
            &self.rt,
            &t,
            "ipmi-power",
            &["--stat"],
            false,
            Instant::now() + self.timeout,
        )
        .await
        .map_err(|e| format!("{e:#}"))?;
        // `HOST: on` / `HOST: off`
        match out.trim().rsplit(':').next().map(str::trim) {
            Some("on") => Ok(true),
            Some("off") => Ok(false),
            _ => Err(format!(
                "unexpected ipmi-power --stat output {:?}",
                out.trim()
            )),
        }
    }

    /// Powers the node on or off.
    pub async fn set(&self, node: &str, on: bool) -> Result<(), String> {
        let t = self.target(node)?;
        let out = run_tool(
            &self.rt,
            &t,
            "ipmi-power",
            &[if on { "--on" } else { "--off" }],
            false,
            Instant::now() + self.timeout,
        )
        .await
        .map_err(|e| format!("{e:#}"))?;
        // FreeIPMI answers `HOST: ok`, or `HOST: <error>` with exit status 0 on some errors.
        match out.trim().rsplit(':').next().map(str::trim) {
            Some("ok") => Ok(()),
            _ => Err(format!("ipmi-power said {:?}", out.trim())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bmc_map() {
        let m =
            parse_bmc_map("# node bmc\nn1 10.0.0.1\nn2 bmc-n2.example:623 # comment\n\n").unwrap();
        assert_eq!(m["n1"], "10.0.0.1");
        assert_eq!(m["n2"], "bmc-n2.example:623");
        for bad in [
            "n1",
            "n1 a b",
            "n1 -oProxy",
            "n[1-2] 10.0.0.1",
            "n1 x\nn1 y",
            "n;1 h",
        ] {
            assert!(parse_bmc_map(bad).is_err(), "{bad}");
        }
    }
}
