//! `scontrol show config`: only the cluster name and the controller's version.

/// What the exporter takes from the configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// `ClusterName`.
    pub cluster: String,
    /// `SLURM_VERSION` (the controller's).
    pub version: String,
}

/// Parses `Key = value` lines.
pub fn parse(out: &str) -> Option<Config> {
    let mut c = Config::default();
    for line in out.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k.trim() {
            "ClusterName" => c.cluster = v.trim().to_string(),
            "SLURM_VERSION" => c.version = v.trim().to_string(),
            _ => {}
        }
    }
    (!c.cluster.is_empty() || !c.version.is_empty()).then_some(c)
}

#[cfg(test)]
mod tests {
    #[test]
    fn config() {
        let c = super::parse("Configuration data as of x\nClusterName             = hpcmon\nSLURM_VERSION           = 22.05.8\n").unwrap();
        assert_eq!(
            (c.cluster.as_str(), c.version.as_str()),
            ("hpcmon", "22.05.8")
        );
        assert!(super::parse("garbage").is_none());
    }
}
