//! `scontrol show config`: the cluster name, the controller's version, `PrivateData` and
//! `SlurmUser`.

/// What the exporter takes from the configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// `ClusterName`.
    pub cluster: String,
    /// `SLURM_VERSION` (the controller's).
    pub version: String,
    /// `PrivateData` flags, lower-case and sorted (`none`: empty); `None` without the line.
    pub private_data: Option<Vec<String>>,
    /// The uid of `SlurmUser` (`root(0)` -> 0), when printed.
    pub slurm_user_uid: Option<u32>,
}

/// The flags of a `PrivateData` value as Slurm prints them (`jobs,usage,users`): lower-case,
/// sorted, deduplicated; `none` and tokens that are not words are dropped.
fn private_data(v: &str) -> Vec<String> {
    let mut f: Vec<String> = v
        .split(',')
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| {
            !t.is_empty()
                && t != "none"
                && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
        .collect();
    f.sort();
    f.dedup();
    f
}

/// The uid in `name(uid)`.
fn uid(v: &str) -> Option<u32> {
    v.rsplit_once('(')?.1.strip_suffix(')')?.parse().ok()
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
            "PrivateData" => c.private_data = Some(private_data(v)),
            "SlurmUser" => c.slurm_user_uid = uid(v.trim()),
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

    #[test]
    fn private_data_and_slurm_user() {
        let c = super::parse(
            "ClusterName = c\nPrivateData             = none\nSlurmUser               = root(0)\n",
        )
        .unwrap();
        assert_eq!(c.private_data, Some(vec![]));
        assert_eq!(c.slurm_user_uid, Some(0));
        let c =
            super::parse("ClusterName = c\nPrivateData = usage,jobs\nSlurmUser = slurm(64030)\n")
                .unwrap();
        assert_eq!(
            c.private_data,
            Some(vec!["jobs".to_string(), "usage".to_string()])
        );
        assert_eq!(c.slurm_user_uid, Some(64030));
        // Garbage: odd tokens and case are dropped/normalised, a bad SlurmUser is unknown.
        let c =
            super::parse("ClusterName = c\nPrivateData = USERS,, %$#,jobs\nSlurmUser = slurm(x)\n")
                .unwrap();
        assert_eq!(
            c.private_data,
            Some(vec!["jobs".to_string(), "users".to_string()])
        );
        assert_eq!(c.slurm_user_uid, None);
        // No PrivateData line: unknown, not "none".
        let c = super::parse("ClusterName = c\n").unwrap();
        assert_eq!((c.private_data, c.slurm_user_uid), (None, None));
    }
}
