//! `bmc` collector: `bmc-info --get-device-id --get-system-info` →
//! `ipmi_bmc_info{firmware_revision,manufacturer_id,system_firmware_version} 1`
//! (ipmi_exporter's labels; `N/A` where the BMC does not say).

use std::time::Instant;

use hpcmon_kit::MetricSet;

use crate::freeipmi::{run_tool, Runtime, Target};
use crate::parse::bmc_info::{parse, BmcInfo};

/// The `bmc` collector of `/metrics` (the local BMC).
pub fn new(cfg: &super::Config) -> anyhow::Result<std::sync::Arc<dyn hpcmon_kit::Collector>> {
    Ok(super::LocalBmc::shared("bmc", cfg))
}

/// Runs `bmc-info` and adds its metric.
pub async fn collect(
    rt: &Runtime,
    t: &Target,
    deadline: Instant,
    out: &mut MetricSet,
) -> anyhow::Result<()> {
    let text = run_tool(
        rt,
        t,
        "bmc-info",
        &["--get-device-id", "--get-system-info"],
        false,
        deadline,
    )
    .await?;
    add_metrics(&parse(&text)?, out);
    Ok(())
}

/// Adds `ipmi_bmc_info`.
pub fn add_metrics(b: &BmcInfo, out: &mut MetricSet) {
    out.gauge(
        "ipmi_bmc_info",
        "Constant metric with value '1' providing details about the BMC.",
    )
    .sample(
        &[
            ("firmware_revision", b.firmware_revision.as_str()),
            ("manufacturer_id", b.manufacturer_id.as_str()),
            (
                "system_firmware_version",
                b.system_firmware_version.as_str(),
            ),
        ],
        1.0,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::{golden, text};

    #[test]
    fn golden_sample() {
        let mut out = MetricSet::new();
        add_metrics(
            &parse(include_str!("../../testdata/samples/bmc-info.txt")).unwrap(),
            &mut out,
        );
        golden("bmc.prom", &text(out));
    }
}
