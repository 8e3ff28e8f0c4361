//! `bonding` collector: `node_bonding_slaves{master}` and `node_bonding_active{master}`
//! (slaves whose MII status is `up`) for every bonded interface listed in
//! `/sys/class/net/bonding_masters`, as node_exporter 1.5.
//!
//! A slave's status is `<master>/lower_<slave>/bonding_slave/mii_status` (or `slave_<slave>`
//! on kernels before 4.13). No `bonding_masters` (no bonding driver) fails the collector, as
//! node_exporter reports it; so does a slave without a status.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use hpcmon_kit::{Collector, Context, MetricSet};

use super::read;
use super::Config;

/// `(master, configured slaves, active slaves)` for every master under `net` (`/sys/class/net`).
pub(crate) fn read_bonding(net: &Path) -> anyhow::Result<Vec<(String, u64, u64)>> {
    let masters = read::text(&net.join("bonding_masters"))?;
    let mut out = Vec::new();
    for master in masters.split_ascii_whitespace() {
        let slaves = read::text(&net.join(master).join("bonding").join("slaves"))?;
        let (mut n, mut up) = (0, 0);
        for slave in slaves.split_ascii_whitespace() {
            let lower = net
                .join(master)
                .join(format!("lower_{slave}"))
                .join("bonding_slave/mii_status");
            let state = match read::attr(&lower) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let old = net
                        .join(master)
                        .join(format!("slave_{slave}"))
                        .join("bonding_slave/mii_status");
                    read::attr(&old).with_context(|| format!("reading {}", old.display()))?
                }
                r => r.with_context(|| format!("reading {}", lower.display()))?,
            };
            n += 1;
            if state == "up" {
                up += 1;
            }
        }
        out.push((master.to_owned(), n, up));
    }
    Ok(out)
}

struct Bonding {
    net: PathBuf,
}

/// Builds the `bonding` collector.
pub fn new(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(Bonding {
        net: cfg.paths.sys("class/net"),
    }))
}

impl Collector for Bonding {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        for (master, slaves, active) in read_bonding(&self.net)? {
            out.gauge(
                "node_bonding_slaves",
                "Number of configured slaves per bonding interface.",
            )
            .sample(&[("master", &master)], slaves as f64);
            out.gauge(
                "node_bonding_active",
                "Number of active slaves per bonding interface.",
            )
            .sample(&[("master", &master)], active as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{assert_golden, render, test_config, testdata};

    #[test]
    fn golden() {
        let c = new(&test_config(&testdata().join("fixtures/b-bonding"), &[])).unwrap();
        assert_golden("bonding", &render(&*c).unwrap());
    }

    #[test]
    fn old_slave_links_and_missing_status() {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("sys/class/net");
        std::fs::create_dir_all(net.join("bond0/bonding")).unwrap();
        std::fs::write(net.join("bonding_masters"), "bond0\n").unwrap();
        std::fs::write(net.join("bond0/bonding/slaves"), "eth0 eth1\n").unwrap();
        let s0 = net.join("bond0/slave_eth0/bonding_slave");
        std::fs::create_dir_all(&s0).unwrap();
        std::fs::write(s0.join("mii_status"), "up\n").unwrap();
        let c = new(&test_config(dir.path(), &[])).unwrap();
        assert!(render(&*c).is_err(), "eth1 has no status");
        let s1 = net.join("bond0/lower_eth1/bonding_slave");
        std::fs::create_dir_all(&s1).unwrap();
        std::fs::write(s1.join("mii_status"), "down\n").unwrap();
        assert_eq!(
            read_bonding(&net).unwrap(),
            vec![("bond0".to_owned(), 2, 1)]
        );
        assert!(render(&*new(&test_config(&dir.path().join("x"), &[])).unwrap()).is_err());
    }
}
