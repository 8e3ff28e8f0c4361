//! Prometheus HTTP service discovery of the cluster's nodes, served at `/sd/nodes` from the
//! poller's `sinfo` snapshot (no extra Slurm command): Prometheus' `http_sd_configs` (and,
//! saved to a file, `file_sd_configs`) then follows the cluster as nodes come and go, so a
//! 10,000-node scrape config is three lines.
//!
//! `GET /sd/nodes?exporter=node|gpu|ipmi` answers a JSON array of target groups, one per node:
//!
//! ```json
//! [{"targets": ["n1:9100"],
//!   "labels": {"node": "n1", "partition": "debug", "cluster": "hpcmon",
//!              "__meta_slurm_node_state": "idle", "__meta_slurm_node_flags": ",drain,",
//!              "__meta_slurm_node_features": ",cpu,ib,", "__meta_slurm_node_gpus": "0"}}]
//! ```
//!
//! * `node` (default): every node, at `--sd.node-host` (default `{node}`) and `--sd.node-port`;
//! * `gpu`: the nodes with GPUs in their GRES, at `--sd.gpu-port`;
//! * `ipmi`: every node's BMC at `--sd.bmc-host` (e.g. `{node}-bmc`; empty: no targets), for
//!   the IPMI exporter's multi-target `/ipmi?target=` (relabel `__address__` into
//!   `__param_target`).
//!
//! `node`, `partition` (the node's partitions, comma-separated) and `cluster` become target
//! labels. The state and its flags, the features and the GPU count are `__meta_slurm_*`
//! labels: available to relabelling (e.g. drop `powered_down` cloud nodes), but not kept on
//! the series by default, because a node draining would otherwise start new series for every
//! metric it has.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

use crate::parse::sinfo::{Node, Sinfo};
use crate::poller::{Data, Poller, Source};

/// The discovery flags.
#[derive(Debug, Clone, clap::Args)]
pub struct SdFlags {
    /// Serve Prometheus HTTP service discovery of the cluster's nodes at /sd/nodes (built from
    /// the sinfo snapshot, which is then taken even with --no-collector.nodes)
    #[arg(long = "sd.enabled", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub enabled: bool,
    /// Host of a node's exporters in the targets: `{node}` is replaced by the Slurm node name
    /// (e.g. `{node}.cluster.example`)
    #[arg(
        long = "sd.node-host",
        default_value = "{node}",
        value_name = "TEMPLATE"
    )]
    pub node_host: String,
    /// Port of the node exporter (/sd/nodes?exporter=node)
    #[arg(long = "sd.node-port", default_value_t = 9100, value_name = "PORT")]
    pub node_port: u16,
    /// Port of the GPU exporter on nodes with GPUs (/sd/nodes?exporter=gpu)
    #[arg(long = "sd.gpu-port", default_value_t = 9835, value_name = "PORT")]
    pub gpu_port: u16,
    /// A node's BMC host for /sd/nodes?exporter=ipmi, `{node}` replaced by the node name (e.g.
    /// `{node}-bmc`); empty: no IPMI targets
    #[arg(long = "sd.bmc-host", default_value = "", value_name = "TEMPLATE")]
    pub bmc_host: String,
}

/// Which exporter's targets to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exporter {
    /// The node exporter on every node.
    Node,
    /// The GPU exporter on the nodes with GPUs.
    Gpu,
    /// Every node's BMC (the IPMI exporter's remote targets).
    Ipmi,
}

impl Exporter {
    /// Parses the `exporter` query parameter.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "node" => Some(Self::Node),
            "gpu" => Some(Self::Gpu),
            "ipmi" => Some(Self::Ipmi),
            _ => None,
        }
    }
}

/// One target group of the `http_sd_configs` / `file_sd_configs` format.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetGroup {
    /// `host:port` (or, for `ipmi`, the BMC host).
    pub targets: Vec<String>,
    /// Labels of the group's targets.
    pub labels: BTreeMap<String, String>,
}

fn host(template: &str, node: &str) -> String {
    template.replace("{node}", node)
}

/// A list as Prometheus' service discoveries write it into a `__meta_` label: every item
/// between commas, with a leading and a trailing one, so `.*,drain,.*` matches exactly.
fn meta_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.into_iter().filter(|s| !s.is_empty()).collect();
    if items.is_empty() {
        String::new()
    } else {
        format!(",{},", items.join(","))
    }
}

fn group(n: &Node, cluster: &str, target: String) -> TargetGroup {
    let mut labels = BTreeMap::new();
    labels.insert("node".to_string(), n.name.clone());
    labels.insert("partition".to_string(), n.partitions.join(","));
    if !cluster.is_empty() {
        labels.insert("cluster".to_string(), cluster.to_string());
    }
    labels.insert("__meta_slurm_node_state".to_string(), n.state.base.clone());
    labels.insert(
        "__meta_slurm_node_flags".to_string(),
        meta_list(n.state.flags.iter().map(String::as_str)),
    );
    labels.insert(
        "__meta_slurm_node_features".to_string(),
        meta_list(n.features.as_deref().unwrap_or("").split(',')),
    );
    labels.insert(
        "__meta_slurm_node_gpus".to_string(),
        format!("{}", n.gpus_total),
    );
    TargetGroup {
        targets: vec![target],
        labels,
    }
}

/// The target groups of `exporter` for the nodes of `sinfo` (sorted by node name).
pub fn target_groups(
    sinfo: &Sinfo,
    cluster: &str,
    exporter: Exporter,
    flags: &SdFlags,
) -> Vec<TargetGroup> {
    sinfo
        .nodes
        .values()
        .filter_map(|n| {
            let target = match exporter {
                Exporter::Node => {
                    format!("{}:{}", host(&flags.node_host, &n.name), flags.node_port)
                }
                Exporter::Gpu if n.gpus_total > 0.0 => {
                    format!("{}:{}", host(&flags.node_host, &n.name), flags.gpu_port)
                }
                Exporter::Gpu => return None,
                Exporter::Ipmi if flags.bmc_host.is_empty() => return None,
                Exporter::Ipmi => host(&flags.bmc_host, &n.name),
            };
            Some(group(n, cluster, target))
        })
        .collect()
}

struct SdState {
    poller: Poller,
    flags: SdFlags,
}

#[derive(serde::Deserialize)]
struct SdQuery {
    exporter: Option<String>,
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, format!("{}\n", msg.into())).into_response()
}

async fn nodes(State(st): State<Arc<SdState>>, Query(q): Query<SdQuery>) -> Response {
    let name = q.exporter.as_deref().unwrap_or("node");
    let Some(exporter) = Exporter::parse(name) else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("unknown exporter {name:?}: one of node, gpu, ipmi"),
        );
    };
    // No snapshot yet: 503, and Prometheus keeps the targets it has.
    let sinfo = st.poller.state(Source::Sinfo).and_then(|s| s.data);
    let Some(sinfo) = sinfo else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "no sinfo snapshot yet");
    };
    let Data::Sinfo(sinfo) = sinfo.as_ref() else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "sinfo snapshot of the wrong kind",
        );
    };
    let cluster = match st
        .poller
        .state(Source::Config)
        .and_then(|s| s.data)
        .as_deref()
    {
        Some(Data::Config(c)) => c.cluster.clone(),
        _ => String::new(),
    };
    let groups = target_groups(sinfo, &cluster, exporter, &st.flags);
    match serde_json::to_vec(&groups) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The `/sd/nodes` route (served behind the web config's TLS and auth like `/metrics`).
pub fn routes(poller: Poller, flags: SdFlags) -> Router {
    Router::new()
        .route("/sd/nodes", get(nodes))
        .with_state(Arc::new(SdState { poller, flags }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::sinfo;

    const SAMPLE: &str = include_str!("../testdata/sinfo.txt");

    fn flags() -> SdFlags {
        SdFlags {
            enabled: true,
            node_host: "{node}".into(),
            node_port: 9100,
            gpu_port: 9835,
            bmc_host: String::new(),
        }
    }

    #[test]
    fn node_gpu_and_ipmi_targets_of_the_captured_cluster() {
        let s = sinfo::parse(SAMPLE);
        let nodes = target_groups(&s, "hpcmon", Exporter::Node, &flags());
        let targets: Vec<&str> = nodes.iter().map(|g| g.targets[0].as_str()).collect();
        assert_eq!(
            targets,
            [
                "gpu1:9100",
                "gpu2:9100",
                "n1:9100",
                "n2:9100",
                "n3:9100",
                "n4:9100"
            ]
        );
        let n4 = &nodes[5].labels;
        assert_eq!(n4["node"], "n4");
        assert_eq!(n4["partition"], "debug");
        assert_eq!(n4["cluster"], "hpcmon");
        assert!(n4["__meta_slurm_node_flags"].contains(",drain,"), "{n4:?}");

        let gpu = target_groups(&s, "hpcmon", Exporter::Gpu, &flags());
        let targets: Vec<&str> = gpu.iter().map(|g| g.targets[0].as_str()).collect();
        assert_eq!(targets, ["gpu1:9835", "gpu2:9835"]);
        assert_eq!(gpu[0].labels["__meta_slurm_node_gpus"], "2");

        assert!(target_groups(&s, "hpcmon", Exporter::Ipmi, &flags()).is_empty());
        let mut f = flags();
        f.bmc_host = "{node}-bmc.example".into();
        let ipmi = target_groups(&s, "", Exporter::Ipmi, &f);
        assert_eq!(ipmi[2].targets, ["n1-bmc.example"]);
        assert!(!ipmi[2].labels.contains_key("cluster"));
    }

    #[test]
    fn host_template_and_meta_lists() {
        let s = sinfo::parse(SAMPLE);
        let mut f = flags();
        f.node_host = "127.0.0.1".into();
        f.node_port = 19100;
        let g = target_groups(&s, "c", Exporter::Node, &f);
        assert!(g.iter().all(|g| g.targets == ["127.0.0.1:19100"]));
        assert_eq!(meta_list(["a", "", "b"]), ",a,b,");
        assert_eq!(meta_list([""]), "");
    }

    proptest::proptest! {
        /// Whatever sinfo prints, every node gives one group per exporter, as JSON whose
        /// label values are strings (Prometheus refuses the whole answer otherwise).
        #[test]
        fn any_sinfo_output_gives_valid_groups(lines in proptest::collection::vec(
            "[a-z0-9\\[\\]\"{}:-]{1,12}\\|[a-z*]{0,6}\\|[a-z+~#]{0,20}\\|[0-9]/[0-9]/[0-9]/[0-9]\\|.{0,8}\\|.{0,4}\\|.{0,4}\\|.{0,4}\\|[a-z0-9:()]{0,12}\\|.{0,8}\\|[a-z,]{0,10}\\|.{0,10}",
            0..20,
        )) {
            let s = sinfo::parse(&lines.join("\n"));
            for exporter in [Exporter::Node, Exporter::Gpu, Exporter::Ipmi] {
                let mut f = flags();
                f.bmc_host = "{node}-bmc".into();
                let g = target_groups(&s, "c\"x", exporter, &f);
                proptest::prop_assert!(g.len() <= s.nodes.len());
                let v: serde_json::Value = serde_json::from_slice(&serde_json::to_vec(&g).unwrap()).unwrap();
                for group in v.as_array().unwrap() {
                    proptest::prop_assert_eq!(group["targets"].as_array().unwrap().len(), 1);
                    proptest::prop_assert!(group["labels"].as_object().unwrap().values().all(|x| x.is_string()));
                }
            }
        }
    }

    #[test]
    fn json_is_the_http_sd_format() {
        let s = sinfo::parse(SAMPLE);
        let g = target_groups(&s, "hpcmon", Exporter::Gpu, &flags());
        let v: serde_json::Value = serde_json::to_value(&g).unwrap();
        assert_eq!(v[0]["targets"][0], "gpu1:9835");
        assert_eq!(v[0]["labels"]["partition"], "gpu");
        assert!(v[0]["labels"]
            .as_object()
            .unwrap()
            .values()
            .all(|x| x.is_string()));
    }
}
